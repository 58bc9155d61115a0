/*
 * Unit tests for bench/scenario: the table's names and flags, and each scenario's phase plan as
 * the runner would carry it out (the planner's callbacks record the sets and phases), including
 * --pressure auto sizing set B and a set that cannot be made failing the plan.
 */
#include "test_common.h"

#include "bench/runner.h"
#include "bench/scenario.h"

struct record {
    char phases[16][32];
    size_t conc[16], n[16];
    bool included[16];
    size_t n_phases;
    char sets[8][16];
    size_t n_sets;
    struct prompt *made[8];
    bool fail_set; /* make_set fails (out of memory) */
};

static struct prompt *rec_make_set(void *ctx, const char *prefix, const char *set, uint64_t seed,
                                   size_t n, char *err)
{
    (void)set;
    (void)seed;
    struct record *r = ctx;
    if (r->fail_set) {
        snprintf(err, 64, "out of memory");
        return NULL;
    }
    struct prompt *p = calloc(n, sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i].est_tokens = 1030; /* 32 full blocks of 32 tokens */
    snprintf(r->sets[r->n_sets], sizeof r->sets[0], "%s", prefix);
    r->made[r->n_sets++] = p;
    return p;
}

static int rec_add_phase(void *ctx, const char *name, size_t conc, struct prompt *ps, size_t n,
                         bool included, const char *set, char *err)
{
    (void)ps;
    (void)set;
    (void)err;
    struct record *r = ctx;
    snprintf(r->phases[r->n_phases], sizeof r->phases[0], "%s", name);
    r->conc[r->n_phases] = conc;
    r->n[r->n_phases] = n;
    r->included[r->n_phases++] = included;
    return 0;
}

static void record_free(struct record *r)
{
    for (size_t i = 0; i < r->n_sets; i++)
        free(r->made[i]);
}

static int run_plan(const char *scenario, const struct run_config *cfg, struct record *r,
                    json_t **plan_out, const struct tier_caps *caps)
{
    const struct scenario *sc = scenario_find(scenario);
    assert_non_null(sc);
    char err[128] = "";
    struct planner p = {.cfg = cfg,
                        .seed = 1,
                        .warm_seed = 2,
                        .b_seed = 3,
                        .ctx = r,
                        .make_set = rec_make_set,
                        .add_phase = rec_add_phase,
                        .caps = caps,
                        .pressure_plan = plan_out};
    return sc->plan(&p, err);
}

static void test_table(void **state)
{
    (void)state;
    const char *const *names = scenario_names();
    size_t n = 0;
    for (; names[n]; n++)
        assert_ptr_equal(scenario_find(names[n])->name, names[n]);
    assert_int_equal(n, 3);
    assert_null(scenario_find("multi_turn")); /* not built yet: never pretended */
    assert_null(scenario_find(NULL));
    assert_true(scenario_find("standard")->duration);
    assert_false(scenario_find("eviction_replay")->duration);
    assert_true(scenario_find("eviction_replay")->pressure);
    assert_string_equal(scenario_find("reuse_verify")->identity_key, "reuse_verify_identity");
    assert_null(scenario_find("standard")->kvbm_key);
}

static void test_plans(void **state)
{
    (void)state;
    struct run_config cfg = {.prompt_set = "short",
                             .requests = 40,
                             .warmup = 4,
                             .concurrency = 4,
                             .evict_a = 2,
                             .evict_b = 7,
                             .reuse_repeat = 3,
                             .reuse_prompt_set = "short"};
    json_t *plan = NULL;
    struct record r = {0};
    assert_int_equal(run_plan("standard", &cfg, &r, &plan, NULL), 0);
    assert_int_equal(r.n_phases, 2);
    assert_string_equal(r.phases[0], "warmup");
    assert_false(r.included[0]);
    assert_string_equal(r.phases[1], "main");
    assert_int_equal(r.n[1], 40);
    record_free(&r);

    memset(&r, 0, sizeof r);
    assert_int_equal(run_plan("eviction_replay", &cfg, &r, &plan, NULL), 0);
    assert_int_equal(r.n_phases, 4);
    assert_string_equal(r.phases[2], "pressure_B");
    assert_int_equal(r.n[2], 7);    /* --eviction-b-requests */
    assert_int_equal(r.conc[2], 8); /* max(A concurrency, 2 x --concurrency) */
    assert_string_equal(r.phases[3], "replay_A");
    assert_string_equal(json_string_value(json_object_get(plan, "mode")), "fixed");
    record_free(&r);

    memset(&r, 0, sizeof r);
    assert_int_equal(run_plan("reuse_verify", &cfg, &r, &plan, NULL), 0);
    assert_int_equal(r.n_phases, 3);
    assert_string_equal(r.phases[2], "reuse_3");
    assert_int_equal(r.conc[0], 1);
    record_free(&r);
    json_decref(plan);
}

static void test_pressure_auto_sizes_b(void **state)
{
    (void)state;
    struct run_config cfg = {.concurrency = 1, .evict_a = 2, .evict_b = 64, .pressure_auto = true};
    long long blocks[3] = {64, 128, 4096};
    struct tier_caps caps;
    pressure_caps_init(&caps, blocks, 32);
    json_t *plan = NULL;
    struct record r = {0};
    assert_int_equal(run_plan("eviction_replay", &cfg, &r, &plan, &caps), 0);
    assert_string_equal(r.phases[1], "pressure_B");
    assert_int_equal(r.n[1], 9); /* not the 64 given */
    assert_string_equal(json_string_value(json_object_get(plan, "mode")), "auto");
    record_free(&r);
    /* a set that cannot be made fails the plan */
    memset(&r, 0, sizeof r);
    r.fail_set = true;
    assert_int_equal(run_plan("eviction_replay", &cfg, &r, &plan, &caps), -1);
    assert_int_equal(r.n_phases, 0);
    json_decref(plan);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_plans),
        cmocka_unit_test(test_pressure_auto_sizes_b),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
