/* Unit tests for run/shard: --shard's parse, the split of positions and concurrency, the
 * directory name, config_sha256, and the file barrier between two shards in one process (real
 * files in a temporary directory). */
#include "test_common.h"

#include "run/shard.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/json.h"

#include <limits.h>
#include <math.h>

static void test_parse(void **state)
{
    (void)state;
    struct shard_spec s;
    char err[ERR_LEN];
    assert_int_equal(shard_parse("0/3", &s, err), 0);
    assert_int_equal(s.index, 0);
    assert_int_equal(s.count, 3);
    assert_int_equal(shard_parse("4095/4096", &s, err), 0);
    assert_int_equal(s.index, 4095);
    assert_int_equal(shard_parse("0/1", &s, err), 0);
    static const char *const bad[] = {"3/3",  "1",     "/3",     "3/",          "a/3",  "-1/3",
                                      "1/-3", "0/0",   "0/4097", "1/2/3",       " 1/2", "1/2 ",
                                      "+1/2", "0x1/2", "",       "9999999999/2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(shard_parse(bad[i], &s, err), -1);
        assert_non_null(strstr(err, "--shard"));
        assert_null(strchr(err, '\n'));
    }
    assert_int_equal(shard_parse(NULL, &s, err), -1);
}

/* Every position 0..n-1 belongs to exactly one shard, in order within it, and the concurrency's
 * shares add up to the whole, the remainder on the lowest indices. */
static void test_split(void **state)
{
    (void)state;
    for (size_t count = 1; count <= 7; count++) {
        for (size_t n = 0; n <= 30; n++) {
            unsigned char *seen = calloc(n + 1, 1);
            size_t sum = 0, total = 0;
            for (size_t i = 0; i < count; i++) {
                struct shard_spec s = {i, count};
                size_t m = shard_count(n, &s);
                total += m;
                for (size_t k = 0; k < m; k++) {
                    size_t p = shard_pos(k, &s);
                    assert_true(p < n);
                    assert_int_equal(p % count, i);
                    seen[p]++;
                }
                size_t share = shard_split(n, &s);
                sum += share;
                assert_true(share == n / count || share == n / count + 1);
                assert_int_equal(share, n / count + (i < n % count));
            }
            assert_int_equal(total, n);
            assert_int_equal(sum, n);
            for (size_t p = 0; p < n; p++)
                assert_int_equal(seen[p], 1);
            free(seen);
        }
    }
    struct shard_spec none = {0, 0};
    assert_int_equal(shard_count(13, &none), 13);
    assert_int_equal(shard_pos(5, &none), 5);
    assert_int_equal(shard_split(4, &none), 4);
    struct shard_spec s = {1, 3};
    assert_int_equal(shard_split(4, &s), 1); /* 2, 1, 1 */
    assert_int_equal(shard_split(5, &s), 2); /* 2, 2, 1 */
}

static void test_dir_name(void **state)
{
    (void)state;
    struct shard_spec s = {2, 3};
    char out[32];
    assert_int_equal(shard_dir_name("run", &s, out, sizeof out), 0);
    assert_string_equal(out, "run-shard2of3");
    assert_int_equal(shard_dir_name("a-rather-long-run-id", &s, out, 20), -1);
}

/* The per-shard flags leave the hash alone; any other flag changes it. */
static void test_config_sha(void **state)
{
    (void)state;
    json_t *a = json_pack("{s:s, s:s, s:s, s:f, s:s, s:f, s:i, s:s}", "shard", "0/3", "run_id", "x",
                          "results_root", "r0", "start_at", 1e9, "shard_sync", "/s", "shard_wait_s",
                          600.0, "requests", 64, "scenario", "standard");
    json_t *b = json_pack("{s:s, s:s, s:s, s:n, s:n, s:f, s:i, s:s}", "shard", "2/3", "run_id", "y",
                          "results_root", "r1", "start_at", "shard_sync", "shard_wait_s", 5.0,
                          "requests", 64, "scenario", "standard");
    char ha[65], hb[65];
    assert_int_equal(shard_config_sha256(a, ha), 0);
    assert_int_equal(shard_config_sha256(b, hb), 0);
    assert_string_equal(ha, hb);
    assert_int_equal(strlen(ha), 64);
    /* host-local settings: another shard of the same run */
    json_t *local =
        json_pack("{s:s, s:b, s:b, s:f, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "log_level", "DEBUG",
                  "no_progress", 1, "collect_telemetry", 1, "telemetry_interval_s", 0.5,
                  "telemetry_pid", "123", "iostat_device", "sdb", "phase_io_device", "nvme1n1",
                  "tokenizer", "/host2/tokenizer.json", "kvbm_cache_dir", "/mnt/x",
                  "container_name", "c2", "report_filename", "r.md");
    json_object_update(b, local);
    json_decref(local);
    assert_int_equal(shard_config_sha256(b, hb), 0);
    assert_string_equal(ha, hb);
    size_t n = 0;
    for (const char *const *k = SHARD_HOST_ARGS; *k; k++)
        n++;
    assert_int_equal(n, 11);
    json_object_set_new(b, "requests", json_integer(65));
    assert_int_equal(shard_config_sha256(b, hb), 0);
    assert_string_not_equal(ha, hb);
    assert_non_null(json_object_get(a, "shard")); /* the args themselves are left whole */
    json_decref(a);
    json_decref(b);
}

struct pair {
    char *dir;
    struct shard_config cfg[2];
    json_t *warnings[2];
    struct shard_run *s[2];
};

static struct shard_run *open_shard(struct pair *p, size_t i, const char *sha)
{
    p->cfg[i] = (struct shard_config){.spec = {i, 2}, .sync_dir = p->dir, .wait_s = 0.3};
    struct shard_open o = {.cfg = &p->cfg[i],
                           .base_run_id = "u",
                           .results_root = p->dir,
                           .warnings = p->warnings[i],
                           .concurrency = 4};
    snprintf(o.config_sha256, sizeof o.config_sha256, "%s", sha);
    char err[ERR_LEN];
    struct shard_run *s = NULL;
    assert_int_equal(shard_run_open(&o, &s, err), 0);
    return s;
}

static void pair_init(struct pair *p, const char *sha1)
{
    memset(p, 0, sizeof *p);
    p->dir = test_tmpdir();
    for (size_t i = 0; i < 2; i++)
        p->warnings[i] = json_array();
    p->s[0] = open_shard(p, 0, "aaaa");
    p->s[1] = open_shard(p, 1, sha1);
    for (size_t i = 0; i < 2; i++)
        shard_note_phase(p->s[i], 0, "one", 4, 4);
    for (size_t i = 0; i < 2; i++)
        shard_note_phase(p->s[i], 1, "two", 4, 4);
}

static void pair_free(struct pair *p)
{
    for (size_t i = 0; i < 2; i++) {
        shard_run_free(p->s[i]);
        json_decref(p->warnings[i]);
    }
    test_rmtree(p->dir);
    free(p->dir);
}

/* Phase 1 starts at the latest end of phase 0 + the margin, whoever wrote it. */
static void test_barrier_latest_end(void **state)
{
    (void)state;
    struct pair p;
    pair_init(&p, "aaaa");
    volatile sig_atomic_t stop = 0;
    struct validity v;
    validity_init(&v);
    assert_int_equal(shard_done(p.s[1], 0, 1000.25, &v), 0);
    assert_int_equal(shard_done(p.s[0], 0, 1000.0, &v), 0);
    uint64_t t0 = 0, before = clock_now_ns();
    assert_int_equal(shard_gate(p.s[0], 1, "two", &stop, &v, &t0), 0);
    assert_true(t0 >= before); /* long past: at once */
    assert_null(v.reason);
    json_t *j = shard_json(p.s[0]);
    const json_t *b = json_array_get(json_object_get(j, "barriers"), 0);
    assert_string_equal(json_get_str(b, "phase", ""), "two");
    assert_true(json_get_num(b, "start_at", 0) == 1000.75);
    assert_string_equal(json_get_str(j, "config_sha256", ""), "aaaa");
    assert_int_equal(
        json_get_int(json_object_get(json_object_get(j, "split"), "concurrency"), "shard", -1), 2);
    json_decref(j);
    /* a start in the future becomes the phase's t0, later than the scenario's own */
    p.cfg[0].wait_s = 30; /* the start may be up to 10 s ahead (shard_ahead_limit_s) */
    assert_int_equal(shard_done(p.s[1], 1, (double)clock_wall_ns() / 1e9 + 5, &v), 0);
    assert_int_equal(shard_done(p.s[0], 1, 1000.0, &v), 0);
    t0 = clock_now_ns();
    uint64_t own = t0;
    assert_int_equal(shard_gate(p.s[0], 2, "three", &stop, &v, &t0), 0);
    assert_true(t0 > own + (uint64_t)5e9);
    validity_free(&v);
    pair_free(&p);
}

/* A shard whose clock is ahead writes an end in the future: past shard_ahead_limit_s the waiting
 * shard fails at once with shard_skew naming it, instead of sleeping until then. */
static void test_barrier_clock_ahead(void **state)
{
    (void)state;
    struct pair p;
    pair_init(&p, "aaaa");
    p.cfg[0].wait_s = 600;
    assert_true(shard_ahead_limit_s(600) == SHARD_AHEAD_MAX_S + SHARD_BARRIER_MARGIN_S);
    assert_true(shard_ahead_limit_s(2) == 2 + SHARD_BARRIER_MARGIN_S);
    volatile sig_atomic_t stop = 0;
    struct validity v;
    validity_init(&v);
    double now = (double)clock_wall_ns() / 1e9;
    assert_int_equal(shard_done(p.s[1], 0, now + 120, &v), 0);
    assert_int_equal(shard_done(p.s[0], 0, now, &v), 0);
    uint64_t t0 = 0;
    assert_int_equal(shard_gate(p.s[0], 1, "two", &stop, &v, &t0), -1);
    assert_int_equal(t0, 0);
    assert_string_equal(v.reason, "shard_skew");
    const json_t *d = json_array_get(v.details, 0);
    assert_int_equal(json_get_int(d, "shard", -1), 1);
    assert_string_equal(json_get_str(d, "phase", ""), "two");
    assert_true(json_get_num(d, "ahead_s", 0) > 100);
    assert_non_null(strstr(json_get_str(d, "message", ""), "shard 1 of 2"));
    assert_non_null(strstr(json_get_str(d, "message", ""), "ahead of this host's clock"));
    validity_free(&v);
    /* a shorter --shard-wait-s bounds it further */
    validity_init(&v);
    p.cfg[1].wait_s = 2;
    assert_int_equal(shard_done(p.s[0], 1, now + 5, &v), 0);
    assert_int_equal(shard_done(p.s[1], 1, now, &v), 0);
    assert_int_equal(shard_gate(p.s[1], 2, "three", &stop, &v, &t0), -1);
    assert_string_equal(v.reason, "shard_skew");
    assert_int_equal(json_get_int(json_array_get(v.details, 0), "shard", -1), 0);
    validity_free(&v);
    pair_free(&p);
}

/* Each shard measures its clock against the sync directory's file times: clock.shard<I> there,
 * and shard.clock_offset_s (here one host: within a second of 0). */
static void test_clock_offset(void **state)
{
    (void)state;
    struct pair p;
    pair_init(&p, "aaaa");
    for (size_t i = 0; i < 2; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/clock.shard%zu", p.dir, i);
        assert_true(fs_exists(path));
        json_t *j = shard_json(p.s[i]);
        const json_t *off = json_object_get(j, "clock_offset_s");
        assert_true(json_is_number(off));
        assert_true(fabs(json_number_value(off)) < 1);
        assert_null(json_object_get(j, "clock_offset_error"));
        json_decref(j);
    }
    pair_free(&p);
}

/* A shard's file that says another count (--shard 1/4 beside 0/2) is another run's: named, not
 * passed. */
static void test_barrier_other_count(void **state)
{
    (void)state;
    struct pair p;
    pair_init(&p, "aaaa");
    volatile sig_atomic_t stop = 0;
    struct validity v;
    validity_init(&v);
    char path[PATH_MAX], err[ERR_LEN];
    snprintf(path, sizeof path, "%s/phase0.shard1", p.dir);
    json_t *f = json_pack("{s:i, s:i, s:s, s:f, s:b}", "shard", 1, "count", 4, "config_sha256",
                          "aaaa", "end", 1000.0, "skipped", 0);
    assert_int_equal(json_write_file(path, f, err), 0);
    json_decref(f);
    assert_int_equal(shard_done(p.s[0], 0, 1000.0, &v), 0);
    uint64_t t0 = 0;
    assert_int_equal(shard_gate(p.s[0], 1, "two", &stop, &v, &t0), -1);
    assert_string_equal(v.reason, "shard_missing");
    const json_t *m = json_array_get(json_object_get(json_array_get(v.details, 0), "missing"), 0);
    assert_int_equal(json_get_int(m, "shard", -1), 1);
    assert_non_null(strstr(json_get_str(m, "reason", ""), "one of 4 shards"));
    validity_free(&v);
    pair_free(&p);
}

/* A barrier file this shard cannot write (here a directory holds its name): it is invalid itself,
 * shard_missing naming itself, the file and why, instead of going on unseen by the others. */
static void test_barrier_unwritable(void **state)
{
    (void)state;
    struct pair p;
    pair_init(&p, "aaaa");
    struct validity v;
    validity_init(&v);
    char path[PATH_MAX], err[ERR_LEN];
    snprintf(path, sizeof path, "%s/phase0.shard0/x", p.dir);
    assert_int_equal(fs_mkdir_p(path, err), 0);
    assert_int_equal(shard_done(p.s[0], 0, 1000.0, &v), -1);
    assert_string_equal(v.reason, "shard_missing");
    const json_t *d = json_array_get(v.details, 0);
    const json_t *m = json_array_get(json_object_get(d, "missing"), 0);
    assert_int_equal(json_get_int(m, "shard", -1), 0);
    assert_non_null(strstr(json_get_str(m, "reason", ""), "phase0.shard0"));
    assert_string_equal(json_get_str(d, "phase", ""), "one");
    assert_non_null(strstr(json_get_str(d, "message", ""), "could not write its barrier file"));
    validity_free(&v);
    /* the ready barrier's file too */
    volatile sig_atomic_t stop = 0;
    validity_init(&v);
    snprintf(path, sizeof path, "%s/start.shard1/x", p.dir);
    assert_int_equal(fs_mkdir_p(path, err), 0);
    uint64_t t0 = 0;
    assert_int_equal(shard_gate(p.s[1], 0, "one", &stop, &v, &t0), -1);
    assert_string_equal(v.reason, "shard_missing");
    validity_free(&v);
    pair_free(&p);
}

/* A shard that never writes: shard_missing after --shard-wait-s, naming it and the phase. */
static void test_barrier_missing(void **state)
{
    (void)state;
    struct pair p;
    pair_init(&p, "aaaa");
    volatile sig_atomic_t stop = 0;
    struct validity v;
    validity_init(&v);
    assert_int_equal(shard_done(p.s[0], 0, 1000.0, &v), 0);
    uint64_t t0 = 0;
    assert_int_equal(shard_gate(p.s[0], 1, "two", &stop, &v, &t0), -1);
    assert_string_equal(v.reason, "shard_missing");
    const json_t *d = json_array_get(v.details, 0);
    assert_string_equal(json_get_str(d, "phase", ""), "two");
    assert_int_equal(json_get_int(json_array_get(json_object_get(d, "missing"), 0), "shard", -1),
                     1);
    assert_non_null(strstr(json_get_str(d, "message", ""), "shard 1 of 2"));
    validity_free(&v);
    /* interrupted while waiting: no verdict of its own */
    validity_init(&v);
    stop = 1;
    assert_int_equal(shard_gate(p.s[0], 1, "two", &stop, &v, &t0), -1);
    assert_null(v.reason);
    validity_free(&v);
    pair_free(&p);
}

/* A shard started with other flags is told at once; one that stopped is passed and said. */
static void test_barrier_other_run_and_stopped(void **state)
{
    (void)state;
    struct pair p;
    pair_init(&p, "bbbb");
    volatile sig_atomic_t stop = 0;
    struct validity v;
    validity_init(&v);
    assert_int_equal(shard_done(p.s[1], 0, 1000.0, &v), 0);
    assert_int_equal(shard_done(p.s[0], 0, 1000.0, &v), 0);
    uint64_t t0 = 0;
    assert_int_equal(shard_gate(p.s[0], 1, "two", &stop, &v, &t0), -1);
    assert_string_equal(v.reason, "shard_missing");
    const json_t *m = json_array_get(json_object_get(json_array_get(v.details, 0), "missing"), 0);
    assert_non_null(strstr(json_get_str(m, "reason", ""), "other flags"));
    validity_free(&v);
    pair_free(&p);

    pair_init(&p, "aaaa");
    validity_init(&v);
    assert_int_equal(shard_done(p.s[0], 0, 1000.0, &v), 0);
    shard_finish(p.s[1], 2); /* it ran nothing: start, phase0 and phase1 skipped */
    assert_int_equal(shard_gate(p.s[0], 1, "two", &stop, &v, &t0), 0);
    assert_null(v.reason);
    assert_string_equal(json_get_str(json_array_get(p.warnings[0], 0), "code", ""),
                        "shard_peer_stopped");
    validity_free(&v);
    /* the same shard again over these files: refused (its barrier would pass at once) */
    struct shard_config cfg = {.spec = {1, 2}, .sync_dir = p.dir, .wait_s = 1};
    struct shard_open o = {.cfg = &cfg, .base_run_id = "u", .results_root = p.dir};
    struct shard_run *again = NULL;
    char err[ERR_LEN];
    assert_int_equal(shard_run_open(&o, &again, err), SHARD_REFUSED);
    assert_null(again);
    assert_non_null(strstr(err, "already holds shard 1's"));
    pair_free(&p);
}

/* The open loop's split: R/N, the max-concurrency's share, constant arrivals offset by I/N gaps,
 * other arrivals on a seed of their own. */
static void test_load(void **state)
{
    (void)state;
    struct pair p;
    pair_init(&p, "aaaa");
    struct loadgen lg = {.request_rate = 30, .max_concurrency = 3, .arrival_seed = 7};
    lg.shape.arrival = ARRIVAL_CONSTANT;
    shard_load(p.s[1], &lg);
    assert_true(lg.request_rate == 15);
    assert_int_equal(lg.max_concurrency, 1);
    assert_true(lg.arrival_offset == 0.5);
    assert_int_equal(lg.arrival_seed, 7);
    struct loadgen pg = {.request_rate = 30, .arrival_seed = 7};
    pg.shape.arrival = ARRIVAL_POISSON;
    shard_load(p.s[1], &pg);
    assert_true(pg.arrival_offset == 0);
    assert_true(pg.arrival_seed != 7);
    assert_int_equal(pg.max_concurrency, 0);
    shard_load(NULL, &pg); /* not sharded: nothing */
    assert_true(pg.request_rate == 15);
    pair_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_dir_name),
        cmocka_unit_test(test_config_sha),
        cmocka_unit_test(test_barrier_latest_end),
        cmocka_unit_test(test_barrier_missing),
        cmocka_unit_test(test_barrier_clock_ahead),
        cmocka_unit_test(test_clock_offset),
        cmocka_unit_test(test_barrier_other_count),
        cmocka_unit_test(test_barrier_unwritable),
        cmocka_unit_test(test_barrier_other_run_and_stopped),
        cmocka_unit_test(test_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
