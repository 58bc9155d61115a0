/*
 * Unit tests for bench/scenario: the table's names and flags, and each scenario's phase plan as
 * the runner would carry it out (the planner's callbacks record the sets and phases), including
 * --pressure auto sizing set B and a set that cannot be made failing the plan.
 */
#include "test_common.h"

#include "scenario/scenario.h"

static const struct gen_params GP0 = {.max_tokens = 0};
struct record {
    char phases[128][32];
    size_t conc[128], n[128];
    bool included[128];
    size_t n_phases;
    char sets[8][16];
    size_t n_sets;
    struct prompt *made[8];
    bool fail_set; /* make_set fails (out of memory) */
    /* multi_turn: the phases as the runner keeps them, the sets handed over, the bounds */
    struct run_state *rs;
    struct prompt *added[128];
    size_t added_n[128], n_added;
    char bound_what[48];
    size_t bound_n, bound_max;
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
    if (r->rs) {
        struct phase_state *ph = &r->rs->phases[r->rs->n_phases++];
        memset(ph, 0, sizeof *ph);
        snprintf(ph->name, sizeof ph->name, "%s", name);
        ph->n = n;
        ph->prompts = calloc(n, sizeof *ph->prompts);
        for (size_t i = 0; ps && i < n; i++)
            ph->prompts[i] = &ps[i];
    }
    snprintf(r->phases[r->n_phases], sizeof r->phases[0], "%s", name);
    r->conc[r->n_phases] = conc;
    r->n[r->n_phases] = n;
    r->included[r->n_phases++] = included;
    return 0;
}

static int rec_add_set(void *ctx, struct prompt *ps, size_t n, char *err)
{
    (void)err;
    struct record *r = ctx;
    r->added[r->n_added] = ps;
    r->added_n[r->n_added++] = n;
    return 0;
}

/* as the runner fills a phase of one process (no --shard): every position */
static void rec_fill_phase(void *ctx, size_t phase, struct prompt *ps, size_t n)
{
    struct record *r = ctx;
    struct phase_state *ph = &r->rs->phases[phase];
    for (size_t k = 0; k < n && k < ph->n; k++)
        ph->prompts[k] = &ps[k];
    snprintf(ph->first_prompt_id, sizeof ph->first_prompt_id, "%s", ps[0].id);
}

static int rec_set_schedule(void *ctx, size_t phase, const double *schedule, size_t n, char *err)
{
    (void)n;
    (void)err;
    struct record *r = ctx;
    r->rs->phases[phase].schedule = schedule;
    return 0;
}

static void rec_bound(void *ctx, const char *what, size_t n, size_t max_tokens)
{
    struct record *r = ctx;
    snprintf(r->bound_what, sizeof r->bound_what, "%s", what);
    r->bound_n = n;
    r->bound_max = max_tokens;
}

static void record_free(struct record *r)
{
    for (size_t i = 0; i < r->n_sets; i++)
        free(r->made[i]);
    for (size_t i = 0; i < r->n_added; i++)
        prompts_free(r->added[i], r->added_n[i]);
}

static int run_plan(const char *scenario, const struct scen_config *cfg, struct record *r,
                    json_t **plan_out, const struct tier_caps *caps)
{
    const struct scenario *sc = scenario_find(scenario);
    assert_non_null(sc);
    char err[128] = "";
    static const struct prompt_form form = {.llama3 = true};
    struct planner p = {.cfg = cfg,
                        .form = &form,
                        .seed = 1,
                        .warm_seed = 2,
                        .b_seed = 3,
                        .ctx = r,
                        .make_set = rec_make_set,
                        .add_phase = rec_add_phase,
                        .caps = caps,
                        .pressure_plan = plan_out,
                        .rs = r->rs,
                        .tok = tokenizer_heuristic(),
                        .salt = "",
                        .add_set = rec_add_set,
                        .bound = rec_bound,
                        .fill_phase = rec_fill_phase,
                        .set_schedule = rec_set_schedule};
    return sc->plan(&p, err);
}

static void test_table(void **state)
{
    (void)state;
    const char *const *names = scenario_names();
    size_t n = 0;
    for (; names[n]; n++)
        assert_ptr_equal(scenario_find(names[n])->name, names[n]);
    assert_int_equal(n, 6);
    assert_true(scenario_find("breakeven")->tiers);
    assert_string_equal(scenario_find("breakeven")->extra_key, "breakeven");
    assert_true(scenario_find("breakeven")->answers("L4096_disk_r2"));
    assert_false(scenario_find("breakeven")->answers("L4096_cold_r2"));
    assert_false(scenario_find("breakeven")->answers("L4096_fill_host_r1"));
    assert_false(scenario_find("breakeven")->answers("L4096_prime_r1"));
    assert_null(scenario_find("nope"));
    assert_string_equal(scenario_find("trace")->extra_key, "trace");
    assert_true(scenario_find("multi_turn")->tiers);
    assert_string_equal(scenario_find("multi_turn")->extra_key, "multi_turn");
    assert_non_null(scenario_find("multi_turn")->before_phase);
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
    struct scen_config cfg = {.prompt_set = "short",
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
    struct scen_config cfg = {
        .concurrency = 1, .evict_a = 2, .evict_b = 64, .pressure_auto = true, .gp = &GP0};
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

/* multi_turn: one phase per round; round 1 made with the plan, each later one before it runs,
 * from the answers of the round before (matched to their users by prompt). */
static void test_multi_turn(void **state)
{
    (void)state;
    struct scen_config cfg = {.users = 2,
                              .rounds = 3,
                              .system_prompt_tokens = 50,
                              .history_tokens = 100,
                              .answer_tokens = 10,
                              .llama3_template = true,
                              .kv_mode = KV_MODE_CPU_DISK};
    struct run_state rs = {.cfg = &cfg};
    rs.phases = calloc(8, sizeof *rs.phases);
    struct record r = {.rs = &rs};
    json_t *plan = NULL;
    const struct scenario *sc = scenario_find("multi_turn");
    assert_int_equal(run_plan("multi_turn", &cfg, &r, &plan, NULL), 0);
    assert_int_equal(r.n_phases, 3);
    assert_string_equal(r.phases[0], "round_1");
    assert_string_equal(r.phases[2], "round_3");
    assert_int_equal(r.conc[1], 2);
    assert_true(r.included[1]);
    assert_int_equal(r.n_added, 1); /* round 1 only, so far */
    assert_non_null(rs.phases[0].prompts[1]);
    assert_null(rs.phases[1].prompts[0]);
    assert_true(rs.phases[0].keep_text && rs.phases[1].keep_text && !rs.phases[2].keep_text);
    assert_null(rs.phases[0].schedule); /* no --user-qps: all at once */
    assert_string_equal(r.bound_what, "turn-*-r002..r003");
    assert_int_equal(r.bound_n, 4);
    assert_true(r.bound_max > 50 + 100 + 3 * 32 + 2 * 10);

    /* round 1's answers, in the order they finished (user 1 first); round 2 is made from them */
    struct req_result res[2] = {{.ok = true, .prompt = rs.phases[0].prompts[1], .text = "B1"},
                                {.ok = true, .prompt = rs.phases[0].prompts[0], .text = "A1"}};
    rs.phases[0].res.reqs = res;
    rs.phases[0].res.n = 2;
    static const struct prompt_form form = {.llama3 = true};
    struct planner p = {.cfg = &cfg,
                        .ctx = &r,
                        .rs = &rs,
                        .add_set = rec_add_set,
                        .form = &form,
                        .fill_phase = rec_fill_phase,
                        .set_schedule = rec_set_schedule};
    char err[128];
    assert_int_equal(sc->before_phase(&p, 0, err), 0); /* round 1: made already */
    assert_int_equal(r.n_added, 1);
    assert_int_equal(sc->before_phase(&p, 1, err), 0);
    assert_int_equal(r.n_added, 2);
    for (size_t u = 0; u < 2; u++) {
        const struct prompt *a = rs.phases[0].prompts[u], *b = rs.phases[1].prompts[u];
        assert_memory_equal(b->text, a->text, a->len);
        assert_memory_equal(b->text + a->len, u ? "B1<|eot_id|>" : "A1<|eot_id|>", 12);
    }
    assert_string_equal(rs.phases[1].first_prompt_id, "turn-u00000-r002");
    json_t *mt = sc->extra(&rs);
    assert_int_equal(json_integer_value(json_object_get(mt, "users")), 2);
    assert_int_equal(json_array_size(json_object_get(mt, "rounds")), 0); /* none ran */
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(mt, "verdict"), "signal")),
        "unavailable");
    json_decref(mt);
    rs.phases[0].res.reqs = NULL;
    for (size_t i = 0; i < rs.n_phases; i++)
        free(rs.phases[i].prompts);
    free(rs.phases);
    sc->free_state(rs.scenario_state);
    record_free(&r);
    json_decref(plan);
}

/* breakeven: run the plan over a run state, return the scenario's summary (nothing ran). */
static json_t *bk_plan(struct scen_config *cfg, struct run_state *rs, struct record *r,
                       const struct tier_caps *caps, int want)
{
    json_t *plan = NULL;
    memset(rs, 0, sizeof *rs);
    rs->cfg = cfg;
    rs->phases = calloc(128, sizeof *rs->phases);
    memset(r, 0, sizeof *r);
    r->rs = rs;
    assert_int_equal(run_plan("breakeven", cfg, r, &plan, caps), want);
    json_decref(plan);
    return want == 0 ? scenario_find("breakeven")->extra(rs) : NULL;
}

static void bk_done(struct run_state *rs, struct record *r, json_t *sum)
{
    json_decref(sum);
    for (size_t i = 0; i < rs->n_phases; i++)
        free(rs->phases[i].prompts);
    free(rs->phases);
    scenario_find("breakeven")->free_state(rs->scenario_state);
    record_free(r);
}

static const char *bk_skip(const json_t *sum, size_t rung, const char *src)
{
    const json_t *g = json_array_get(json_object_get(sum, "ladder"), rung);
    if (!src)
        return json_string_value(json_object_get(g, "reason"));
    return json_string_value(json_object_get(json_object_get(g, "skipped"), src));
}

/* The phase list of a ladder, bounded by the input ceiling; fillers sized from the tiers. */
static void test_breakeven_plan(void **state)
{
    (void)state;
    static const struct gen_params gp = {.max_tokens = 2};
    struct scen_config cfg = {.gp = &gp,
                              .kv_mode = KV_MODE_CPU_DISK,
                              .breakeven_lengths = {1024, 2048, 16384},
                              .n_breakeven_lengths = 3,
                              .breakeven_repeats = 2,
                              .input_ceiling = 8448};
    long long blocks[3] = {300, 700, 4000};
    struct tier_caps caps;
    pressure_caps_init(&caps, blocks, 32);
    struct run_state rs;
    struct record r;
    json_t *sum = bk_plan(&cfg, &rs, &r, &caps, 0);
    static const char *const RUNG[] = {"cold", "prime",     "device", "fill_host",
                                       "host", "fill_disk", "disk"};
    assert_int_equal(r.n_phases, 2 * 2 * 7); /* 2 lengths measured, 2 repeats */
    for (size_t i = 0; i < r.n_phases; i++) {
        char want[32];
        snprintf(want, sizeof want, "L%d_%s_r%zu", i % 14 < 7 ? 1024 : 2048, RUNG[i % 7],
                 i / 14 + 1);
        assert_string_equal(r.phases[i], want);
        assert_int_equal(r.conc[i], 1);
        /* the prime and the fillers are not in the overall figures */
        assert_int_equal(r.included[i], i % 7 != 1 && i % 7 != 3 && i % 7 != 5);
    }
    /* host filler: (300 + 300/16) blocks of 32 tokens, in prompts of at most the ceiling's
     * whole blocks (8448); disk filler: (700 + 700/16) blocks */
    assert_int_equal(r.n[3], 2);
    assert_int_equal(r.n[5], 3);
    size_t tok = 0;
    for (size_t i = 0; i < 2; i++)
        tok += rs.phases[3].prompts[i]->est_tokens;
    assert_int_equal(tok, 318 * 32);
    /* one prompt per length and repeat, of exactly its length, max_tokens small; the same one
     * for each of its sources */
    assert_int_equal(rs.phases[0].prompts[0]->est_tokens, 1024);
    assert_int_equal(rs.phases[0].prompts[0]->max_tokens, 2);
    assert_ptr_equal(rs.phases[6].prompts[0], rs.phases[0].prompts[0]);
    assert_ptr_not_equal(rs.phases[14].prompts[0], rs.phases[0].prompts[0]);
    assert_string_not_equal(rs.phases[14].prompts[0]->sha256, rs.phases[0].prompts[0]->sha256);
    assert_false(json_is_true(
        json_object_get(json_array_get(json_object_get(sum, "ladder"), 2), "measured")));
    assert_non_null(strstr(bk_skip(sum, 2, NULL), "past the input ceiling of 8448 tokens"));
    assert_int_equal(json_array_size(json_object_get(sum, "rows")), 0); /* nothing ran */
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(sum, "verdict"), "signal")),
        "unavailable");
    bk_done(&rs, &r, sum);
}

/* Tiers skipped with their reasons: kv mode, unknown capacities, a host tier too small for the
 * prefix and its filler, a length past the device tier; none measurable fails the plan. */
static void test_breakeven_skips(void **state)
{
    (void)state;
    static const struct gen_params gp = {.max_tokens = 2};
    struct scen_config cfg = {.gp = &gp,
                              .kv_mode = KV_MODE_CPU_ONLY,
                              .breakeven_lengths = {1024},
                              .n_breakeven_lengths = 1,
                              .breakeven_repeats = 1};
    struct run_state rs;
    struct record r;
    long long blocks[3] = {300, 700, 4000};
    struct tier_caps caps;
    pressure_caps_init(&caps, blocks, 32);
    json_t *sum = bk_plan(&cfg, &rs, &r, &caps, 0);
    assert_string_equal(bk_skip(sum, 0, "disk"), "kv mode cpu_only: no disk tier");
    assert_null(bk_skip(sum, 0, "host"));
    assert_int_equal(r.n_phases, 5);
    bk_done(&rs, &r, sum);

    cfg.kv_mode = KV_MODE_OFF;
    sum = bk_plan(&cfg, &rs, &r, &caps, 0);
    assert_string_equal(bk_skip(sum, 0, "host"), "kv mode off: no host tier");
    assert_int_equal(r.n_phases, 3); /* cold, prime, device */
    bk_done(&rs, &r, sum);

    cfg.kv_mode = KV_MODE_CPU_DISK;
    sum = bk_plan(&cfg, &rs, &r, NULL, 0); /* no capacities */
    assert_non_null(strstr(bk_skip(sum, 0, "host"), "device tier's capacity is unknown"));
    assert_non_null(strstr(bk_skip(sum, 0, "disk"), "device tier's capacity is unknown"));
    bk_done(&rs, &r, sum);

    long long unknown_host[3] = {300, -1, 4000};
    pressure_caps_init(&caps, unknown_host, 32);
    sum = bk_plan(&cfg, &rs, &r, &caps, 0);
    assert_non_null(strstr(bk_skip(sum, 0, "disk"), "host tier's capacity is unknown"));
    bk_done(&rs, &r, sum);

    long long small[3] = {100, 150, 0};
    pressure_caps_init(&caps, small, 32);
    long long ladder[] = {1024, 2048, 4096};
    memcpy(cfg.breakeven_lengths, ladder, sizeof ladder);
    cfg.n_breakeven_lengths = 3;
    sum = bk_plan(&cfg, &rs, &r, &caps, 0);
    assert_null(bk_skip(sum, 0, "host")); /* 106 + 32 blocks fit 150 */
    assert_non_null(strstr(bk_skip(sum, 1, "host"), "host tier (150 blocks) cannot hold"));
    assert_string_equal(bk_skip(sum, 0, "disk"), "the disk tier has 0 blocks");
    assert_non_null(strstr(bk_skip(sum, 2, NULL), "does not fit the device tier (100 blocks"));
    bk_done(&rs, &r, sum);

    long long ladder2[] = {4096};
    memcpy(cfg.breakeven_lengths, ladder2, sizeof ladder2);
    cfg.n_breakeven_lengths = 1;
    bk_plan(&cfg, &rs, &r, &caps, -1);
    bk_done(&rs, &r, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_plans),
        cmocka_unit_test(test_pressure_auto_sizes_b),
        cmocka_unit_test(test_multi_turn),
        cmocka_unit_test(test_breakeven_plan),
        cmocka_unit_test(test_breakeven_skips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
