/*
 * runner.c - orchestration of one run.
 *
 * Everything measured is written as it happens: requests.jsonl row by row, every metrics
 * snapshot to kvbm_metrics_snapshots.jsonl as it is taken. summary.json and report.md are
 * written at the end whatever happened (an invalid or interrupted run still gets them), so
 * nothing measured is lost.
 */
#include "run/runner.h"

#include "report/html.h"
#include "run/runnodes.h"
#include "scenario/pressure.h"
#include "scenario/runstate.h"
#include "report/report.h"
#include "run/shard.h"
#include "scenario/scenario.h"
#include "verdict/summary.h"

#include "probe/server.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/log.h"
#include "model/tokenizer.h"
#include "model/tokserver.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A main set this large is produced while the run sends (SPEC §3.1): sending starts at once and
 * prompt texts live only until they are sent. */
#define LAZY_PROMPTS_MIN 20000
/* ... or one whose texts would take this much memory at once (long prompts: ~1,400 of them) */
#define LAZY_BYTES_MIN  ((size_t)256 << 20)
#define BYTES_PER_TOKEN 6 /* an upper estimate for kvbench's synthetic text */
/* How far the producer may run ahead of the requests taken: enough that a sender never waits on
 * a producer that keeps up, few enough that memory follows the concurrency, not --requests. */
#define LAZY_AHEAD_MIN        1024
#define LAZY_AHEAD_PER_STREAM 8

struct lazy_set {
    struct prompt *ps; /* ids set up front; the rest once ready > i */
    size_t n;
    char prefix[16], set[8];
    uint64_t seed;
    struct workload_params wp;
    atomic_size_t ready;
    atomic_size_t claimed; /* requests the load generator has taken (phase_plan.claimed) */
    size_t ahead;          /* the producer stays below claimed + ahead */
    size_t ring;           /* prompts kept: ps[i % ring] (n when a --duration-s run cycles) */
    atomic_bool done;
    atomic_int stop;
    pthread_t tid;
    bool started, failed;
    FILE *manifest;
    char err[ERR_LEN];
};

struct ctx {
    const struct run_config *cfg;
    struct scen_config scfg; /* what the scenarios, the summary and the reports read of cfg */
    const volatile sig_atomic_t *interrupted;
    struct run_state rs;
    char dir[PATH_MAX];
    FILE *snapshots;
    struct validity v;
    json_t *notes;
    struct prompt **sets; /* every prompt set of the run (freed at the end) */
    size_t *set_n;
    size_t n_sets, cap_sets;
    bool manifest_written; /* later sets append their rows */
    struct later {         /* prompts made while the run goes, for the preflight */
        char what[48];
        size_t n, max_tokens;
    } later[4];
    size_t n_later;
    struct planner planner; /* kept for the scenario's before_phase */
    char salt[160];
    struct loadgen lg;
    bool lg_ready;
    struct telemetry *tel;
    struct prompt_form form;       /* how prompts are written (decide_bos, decide_chat_template) */
    json_t *chat_template;         /* config.json chat_template: {name, evidence}, or NULL */
    const struct tokenizer *tok;   /* the one in use */
    const struct tokenizer *owned; /* resolved here (auto), freed at the end */
    json_t *last_metrics;          /* the last snapshot's metrics that were read, not carried */
    size_t cap_phases;             /* rs.phases allocated */
    struct tier_caps caps;         /* --pressure auto: the tiers' capacities */
    json_t *pressure_plan;         /* eviction_replay: how set B was sized (config.json) */
    size_t write_failures;         /* artifact writes that failed */
    json_t *write_errors;          /* [{file, error}] of the first few */
    bool write_reported;           /* artifact_write_failed is in the validity */
    struct lazy_set lazy;
    bool has_lazy;
    struct run_nodes *nodes; /* --scrape, --prometheus-url; NULL without */
    struct shard_run *shard; /* --shard: this process's part and the barrier; NULL: whole run */
};

/* The parts of the run's configuration that the scenarios, the summary and the reports read
 * (scenario/runstate.h): they live below the runner and never see struct run_config. */
static void scen_config_of(const struct run_config *cfg, struct scen_config *o)
{
    *o = cfg->scen; /* the scenarios' part of the flags, as parsed */
    o->gp = &cfg->gp;
    o->slo = &cfg->slo;
}

static void path_in(const struct ctx *c, const char *name, char out[PATH_MAX])
{
    snprintf(out, PATH_MAX, "%s/%s", c->dir, name);
}

int run_id_valid(const char *id, char *err)
{
    if (!*id)
        return err_set(err, "--run-id must not be empty");
    if (strchr(id, '/') || strstr(id, ".."))
        return err_set(err, "--run-id must not contain '/' or '..' (got '%s')", id);
    if (strlen(id) >= 128)
        return err_set(err, "--run-id is longer than 127 characters");
    for (const char *p = id; *p; p++)
        if ((unsigned char)*p < 0x20)
            return err_set(err, "--run-id contains a control character");
    return 0;
}

static void write_failed(struct ctx *c, const char *file, const char *why);

static void note(struct ctx *c, const char *text)
{
    json_array_append_new(c->notes, json_string(text));
}

/* ------------------------------------------------------------ plan */

static bool is_lazy(const struct ctx *c, const struct prompt *set);

/* Keep a set for the end (freed then); once the manifest is written, its rows go there now. */
static int keep_set(struct ctx *c, struct prompt *ps, size_t n, char *err)
{
    if (c->n_sets == c->cap_sets) {
        size_t cap = c->cap_sets ? c->cap_sets * 2 : 8;
        struct prompt **ns = realloc(c->sets, cap * sizeof *ns);
        if (ns)
            c->sets = ns;
        size_t *nn = ns ? realloc(c->set_n, cap * sizeof *nn) : NULL;
        if (!nn)
            return err_set(err, "out of memory");
        c->set_n = nn;
        c->cap_sets = cap;
    }
    c->sets[c->n_sets] = ps;
    c->set_n[c->n_sets] = n;
    c->n_sets++;
    if (!c->manifest_written || is_lazy(c, ps))
        return 0;
    char path[PATH_MAX], werr[ERR_LEN] = "";
    path_in(c, "prompts_manifest.jsonl", path);
    FILE *f = fopen(path, "a");
    int rc = f ? 0 : -1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_t *row = prompt_manifest_json(&ps[i]);
        rc = json_write_line(f, row, werr);
        json_decref(row);
    }
    if ((f && fclose(f) != 0) || rc < 0)
        write_failed(c, "prompts_manifest.jsonl", werr[0] ? werr : strerror(errno));
    return 0;
}

static struct prompt *make_set(struct ctx *c, const char *prefix, const char *set, uint64_t seed,
                               size_t n, char *err)
{
    const struct run_config *cfg = c->cfg;
    struct workload_params wp = {
        .seed = (uint64_t)cfg->seed,
        .short_range = cfg->short_range,
        .long_range = cfg->long_range,
        .salt = c->salt,
        .form = c->form,
        .tok = c->tok,
        .stop = c->interrupted,
    };
    struct prompt *ps = NULL;
    bool large = n >= LAZY_PROMPTS_MIN ||
                 n * (workload_max_target(&wp, set) + 63) * BYTES_PER_TOKEN >= LAZY_BYTES_MIN;
    if (large && strcmp(prefix, "main") == 0 && !c->has_lazy) {
        size_t streams = (size_t)c->cfg->scen.concurrency;
        if (c->cfg->scen.max_concurrency > streams)
            streams = c->cfg->scen.max_concurrency;
        size_t ahead = streams * LAZY_AHEAD_PER_STREAM;
        if (ahead < LAZY_AHEAD_MIN)
            ahead = LAZY_AHEAD_MIN;
        /* a ring of `ahead` prompts: the producer writes prompt i once every request below
         * i - ahead was sent. A --duration-s run cycles its prompts: with a ring smaller than
         * the set the producer goes on past n, request seq getting prompt seq % n made again,
         * so memory follows the concurrency, never the run's length */
        n = shard_count(n, &cfg->shard.spec); /* made for this shard's positions only */
        size_t ring = ahead > n ? n : ahead;
        ps = calloc(ring ? ring : 1, sizeof *ps);
        if (!ps) {
            err_set(err, "out of memory");
            return NULL;
        }
        for (size_t i = 0; i < ring; i++)
            workload_id(prefix, shard_pos(i, &cfg->shard.spec), &ps[i]);
        struct lazy_set *z = &c->lazy;
        memset(z, 0, sizeof *z);
        z->ahead = ahead;
        z->ring = ring;
        z->ps = ps;
        z->n = n;
        snprintf(z->prefix, sizeof z->prefix, "%s", prefix);
        snprintf(z->set, sizeof z->set, "%s", set);
        z->seed = seed;
        z->wp = wp;
        z->wp.stop = NULL;
        c->has_lazy = true;
    } else if (workload_make(&wp, prefix, set, seed, n, &ps, err) < 0) {
        return NULL;
    }
    if (keep_set(c, ps, n, err) < 0) {
        prompts_free(ps, n);
        return NULL;
    }
    return ps;
}

/* Phase `name` of n requests, ps[0..n) (ps NULL: filled later, fill_phase), at concurrency conc.
 * The one place where a shard takes its part of every scenario's phases: positions p % N == I
 * (a large set is made of those alone: make_set) and conc split over the shards. */
static int add_phase(struct ctx *c, const char *name, size_t conc, struct prompt *ps, size_t n,
                     bool included, const char *set, char *err)
{
    struct run_state *rs = &c->rs;
    const struct shard_spec *sh = &c->cfg->shard.spec;
    bool lazy = c->has_lazy && ps && ps == c->lazy.ps;
    if (c->shard) {
        shard_note_phase(c->shard, rs->n_phases, name, n, conc);
        n = shard_count(n, sh);
        /* 0 for a shard with no share (a timed trace window of fewer rows than shards): the
         * shards' planned concurrencies add up to the run's; the load generator runs one
         * stream for a phase at 0 */
        conc = shard_split(conc, sh);
    }
    if (rs->n_phases == c->cap_phases) {
        size_t cap = c->cap_phases ? c->cap_phases * 2 : 8;
        struct phase_state *np = realloc(rs->phases, cap * sizeof *np);
        if (!np)
            return err_set(err, "out of memory");
        rs->phases = np;
        c->cap_phases = cap;
    }
    struct phase_state *p = &rs->phases[rs->n_phases++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->concurrency = conc;
    p->n = n;
    p->included = included;
    p->set = set;
    p->models_after = -1;
    p->ring = lazy && c->lazy.ring < n ? c->lazy.ring : 0;
    size_t entries = p->ring ? p->ring : n;
    p->prompts = calloc(entries ? entries : 1, sizeof *p->prompts);
    if (!p->prompts)
        return err_set(err, "out of memory");
    /* ps NULL: the scenario fills the prompts in before the phase runs (before_phase) */
    for (size_t i = 0; ps && i < entries; i++)
        p->prompts[i] = &ps[lazy ? i : shard_pos(i, sh)];
    if (n && ps)
        snprintf(p->first_prompt_id, sizeof p->first_prompt_id, "%s", p->prompts[0]->id);
    return 0;
}

/* the planner's callbacks (scenario/scenario.h) */
static struct prompt *plan_make_set(void *ctx, const char *prefix, const char *set, uint64_t seed,
                                    size_t n, char *err)
{
    return make_set(ctx, prefix, set, seed, n, err);
}

static int plan_add_phase(void *ctx, const char *name, size_t conc, struct prompt *ps, size_t n,
                          bool included, const char *set, char *err)
{
    return add_phase(ctx, name, conc, ps, n, included, set, err);
}

static int plan_add_set(void *ctx, struct prompt *ps, size_t n, char *err)
{
    return keep_set(ctx, ps, n, err);
}

static void plan_fill_phase(void *ctx, size_t phase, struct prompt *ps, size_t n)
{
    struct ctx *c = ctx;
    struct phase_state *p = &c->rs.phases[phase];
    (void)n; /* add_phase sized the phase from it: p->n of its positions are this process's */
    for (size_t k = 0; k < p->n; k++)
        p->prompts[k] = &ps[shard_pos(k, &c->cfg->shard.spec)];
    if (p->n)
        snprintf(p->first_prompt_id, sizeof p->first_prompt_id, "%s", p->prompts[0]->id);
}

static int plan_set_schedule(void *ctx, size_t phase, const double *schedule, size_t n, char *err)
{
    struct ctx *c = ctx;
    const double *own = c->shard ? shard_schedule(c->shard, schedule, n) : schedule;
    if (!own)
        return err_set(err, "out of memory");
    c->rs.phases[phase].schedule = own;
    return 0;
}

static void plan_bound(void *ctx, const char *what, size_t n, size_t max_tokens)
{
    struct ctx *c = ctx;
    if (c->n_later == sizeof c->later / sizeof c->later[0])
        return;
    struct later *l = &c->later[c->n_later++];
    snprintf(l->what, sizeof l->what, "%s", what);
    l->n = n;
    l->max_tokens = max_tokens;
}

static int plan(struct ctx *c, char *err)
{
    const struct run_config *cfg = c->cfg;
    uint64_t seed = (uint64_t)cfg->seed;
    uint64_t warm_seed = seed + 100003u; /* warmup: a different seed */
    uint64_t b_seed = seed + 10000019u;  /* set B: far from set A */
    const struct scenario *sc = scenario_find(cfg->scen.scenario);
    if (!sc)
        return err_set(err, "unknown scenario '%s'", cfg->scen.scenario);
    c->planner = (struct planner){
        .cfg = &c->scfg,
        .seed = seed,
        .warm_seed = warm_seed,
        .b_seed = b_seed,
        .ctx = c,
        .make_set = plan_make_set,
        .add_phase = plan_add_phase,
        .caps = &c->caps,
        .pressure_plan = &c->pressure_plan,
        .rs = &c->rs,
        .tok = c->tok,
        .salt = c->salt,
        .form = &c->form,
        .add_set = plan_add_set,
        .bound = plan_bound,
        .fill_phase = plan_fill_phase,
        .set_schedule = plan_set_schedule,
    };
    return sc->plan(&c->planner, err);
}

static void reset_plan(struct ctx *c);

/* plan(), where SIGINT during synthesis is no failure: nothing is sent and the run is written as
 * interrupted. Returns 0 (*go false when interrupted) or -1 (the run cannot start, err). */
static int plan_run(struct ctx *c, bool *go, char *err)
{
    if (plan(c, err) == 0)
        return 0;
    if (!*c->interrupted)
        return -1;
    log_warn("%s", err);
    reset_plan(c);
    *go = false;
    return 0;
}

/* Undo plan(): the prompt sets, the phases and the scenario's state. */
static void reset_plan(struct ctx *c)
{
    const struct scenario *sc = scenario_find(c->cfg->scen.scenario);
    if (sc && sc->free_state && c->rs.scenario_state)
        sc->free_state(c->rs.scenario_state);
    c->rs.scenario_state = NULL;
    c->n_later = 0;
    for (size_t i = 0; i < c->rs.n_phases; i++)
        free(c->rs.phases[i].prompts);
    free(c->rs.phases);
    c->rs.phases = NULL;
    c->rs.n_phases = 0;
    c->cap_phases = 0;
    for (size_t s = 0; s < c->n_sets; s++)
        prompts_free(c->sets[s], is_lazy(c, c->sets[s]) ? c->lazy.ring : c->set_n[s]);
    c->n_sets = 0;
    c->has_lazy = false;
}

static bool is_lazy(const struct ctx *c, const struct prompt *set)
{
    return c->has_lazy && set == c->lazy.ps;
}

static void *produce(void *arg)
{
    struct ctx *c = arg;
    struct lazy_set *z = &c->lazy;
    /* a --duration-s run whose set outgrows the ring goes on until stopped (request i, prompt
     * i % n); otherwise every prompt once */
    bool cycle = c->cfg->duration_s > 0 && z->ring < z->n;
    for (size_t i = 0; cycle || i < z->n; i++) {
        /* far enough ahead (and, for a ring, the entry's last prompt sent): wait for the senders */
        while (i >= atomic_load(&z->claimed) + z->ahead && !atomic_load(&z->stop)) {
            struct timespec ts = {0, 500000};
            nanosleep(&ts, NULL);
        }
        if (atomic_load(&z->stop)) /* set by the phase on SIGINT, or when the run ends */
            break;
        struct prompt *slot = &z->ps[i % z->ring];
        prompt_drop_text(slot); /* an earlier prompt of this entry that was never sent */
        size_t at = shard_pos(i % z->n, &c->cfg->shard.spec); /* its position in the set */
        if (workload_make_one(&z->wp, z->prefix, z->set, z->seed, at, slot) < 0) {
            z->failed = true;
            snprintf(z->err, sizeof z->err, "out of memory synthesising prompt %zu", at);
            break;
        }
        if (z->manifest && !z->err[0] && i < z->n) { /* a prompt made again is not a new row */
            json_t *row = prompt_manifest_json(slot);
            json_write_line(z->manifest, row, z->err);
            json_decref(row);
        }
        atomic_store(&z->ready, i + 1);
    }
    atomic_store(&z->done, true);
    return NULL;
}

/* Start producing the large set's prompts, their manifest rows appended as they come. */
static void lazy_start(struct ctx *c)
{
    if (!c->has_lazy)
        return;
    struct lazy_set *z = &c->lazy;
    char path[PATH_MAX];
    path_in(c, "prompts_manifest.jsonl", path);
    z->manifest = fopen(path, "a");
    if (!z->manifest)
        snprintf(z->err, sizeof z->err, "cannot append to %s: %s", path, strerror(errno));
    int e = pthread_create(&z->tid, NULL, produce, c);
    if (e != 0) {
        z->failed = true;
        snprintf(z->err, sizeof z->err, "cannot start the prompt producer: %s", strerror(e));
        atomic_store(&z->done, true);
        return;
    }
    z->started = true;
    log_info("prompts of %s: %zu, produced while the run sends", z->prefix, z->n);
}

static void write_failed(struct ctx *c, const char *file, const char *why);

static void lazy_join(struct ctx *c)
{
    struct lazy_set *z = &c->lazy;
    if (!c->has_lazy || !z->started)
        return;
    atomic_store(&z->stop, 1);
    pthread_join(z->tid, NULL);
    z->started = false;
    if (z->manifest && fclose(z->manifest) != 0 && !z->err[0])
        snprintf(z->err, sizeof z->err, "prompts_manifest.jsonl: %s", strerror(errno));
    z->manifest = NULL;
    if (z->failed)
        log_error("%s", z->err);
    else if (z->err[0])
        write_failed(c, "prompts_manifest.jsonl", z->err);
}

/* config.json phases: name, concurrency, requests, include_in_overall (the reference harness's)
 * and kvbench's prompt_set and first_prompt_id. */
static json_t *plan_json(const struct ctx *c)
{
    json_t *a = json_array();
    for (size_t i = 0; i < c->rs.n_phases; i++) {
        const struct phase_state *p = &c->rs.phases[i];
        json_array_append_new(a, json_pack("{s:s, s:I, s:I, s:b, s:s, s:s}", "name", p->name,
                                           "concurrency", (json_int_t)p->concurrency, "requests",
                                           (json_int_t)p->n, "include_in_overall", p->included,
                                           "prompt_set", p->set, "first_prompt_id",
                                           p->first_prompt_id));
    }
    return a;
}

static int write_manifest(struct ctx *c, char *err)
{
    char path[PATH_MAX];
    path_in(c, "prompts_manifest.jsonl", path);
    FILE *f = fopen(path, "w");
    if (!f)
        return err_set(err, "cannot create %s: %s", path, strerror(errno));
    int rc = 0;
    for (size_t s = 0; s < c->n_sets && rc == 0; s++) {
        if (is_lazy(c, c->sets[s]))
            continue; /* its rows are appended as its prompts are made */
        for (size_t i = 0; i < c->set_n[s] && rc == 0; i++) {
            json_t *row = prompt_manifest_json(&c->sets[s][i]);
            rc = json_write_line(f, row, err);
            json_decref(row);
        }
    }
    if (fclose(f) != 0 && rc == 0)
        rc = err_set(err, "cannot write %s", path);
    c->manifest_written = true;
    return rc;
}

/* ------------------------------------------------------------ preflight */

/* What the preflight found against the input ceiling. */
struct preflight_tally {
    long long ceiling;
    json_t *errors; /* "<prompt id>: estimated_tokens=N exceeds ceiling=C" */
    size_t n_off, checked;
    long long max_est;
};

/* A prompt (or a bound on prompts not made yet) of est tokens standing for n prompts. */
static bool tally_fits(struct preflight_tally *t, long long est, size_t n)
{
    t->checked += n;
    if (est > t->max_est)
        t->max_est = est;
    return est <= t->ceiling;
}

/* Every prompt set made, the lazy one by its bound, and the prompts made while the run goes
 * (c->later), against the ceiling. */
static void preflight_sets(const struct ctx *c, struct preflight_tally *t)
{
    for (size_t s = 0; s < c->n_sets; s++) {
        if (is_lazy(c, c->sets[s])) {
            /* not made yet: tuning keeps a prompt below its target + 64, so the largest target
             * bounds them all */
            size_t bound = workload_max_target(&c->lazy.wp, c->lazy.set) + 63;
            if (!tally_fits(t, (long long)bound, c->set_n[s])) {
                char e[200];
                snprintf(e, sizeof e,
                         "%s-*: up to %zu estimated tokens (largest target + 63) exceeds "
                         "ceiling=%lld",
                         c->lazy.prefix, bound, t->ceiling);
                json_array_append_new(t->errors, json_string(e));
                t->n_off += c->set_n[s];
            }
            continue;
        }
        for (size_t i = 0; i < c->set_n[s]; i++) {
            const struct prompt *p = &c->sets[s][i];
            if (tally_fits(t, (long long)p->est_tokens, 1))
                continue;
            if (t->n_off < 20) {
                char e[160];
                snprintf(e, sizeof e, "%s: estimated_tokens=%zu exceeds ceiling=%lld", p->id,
                         p->est_tokens, t->ceiling);
                json_array_append_new(t->errors, json_string(e));
            }
            t->n_off++;
        }
    }
    for (size_t k = 0; k < c->n_later; k++) {
        const struct later *l = &c->later[k];
        if (!tally_fits(t, (long long)l->max_tokens, l->n)) {
            char e[200];
            snprintf(e, sizeof e, "%s: up to %zu estimated tokens exceeds ceiling=%lld", l->what,
                     l->max_tokens, t->ceiling);
            json_array_append_new(t->errors, json_string(e));
            t->n_off += l->n;
        }
    }
}

static bool preflight(struct ctx *c)
{
    const struct run_config *cfg = c->cfg;
    long long ceiling =
        cfg->engine_max_input_tokens - cfg->gp.max_tokens - cfg->input_token_safety_margin;
    /* the server's own context must hold prompt + max_tokens */
    json_int_t srv = json_integer_value(json_object_get(c->rs.ctx_limit, "tokens"));
    bool srv_bound = srv > 0 && srv - cfg->gp.max_tokens < ceiling;
    if (srv_bound)
        ceiling = srv - cfg->gp.max_tokens;
    struct preflight_tally t = {.ceiling = ceiling, .errors = json_array()};
    preflight_sets(c, &t);
    json_t *errors = t.errors;
    size_t n_off = t.n_off, checked = t.checked;
    long long max_est = t.max_est;
    bool ok = ceiling > 0 && n_off == 0;
    /* failed / ceiling_tokens / errors / failure_count are the reference harness's */
    c->rs.preflight = json_pack(
        "{s:b, s:I, s:O, s:I, s:I, s:I, s:I, s:I, s:I, s:s}", "failed", !ok, "ceiling_tokens",
        (json_int_t)ceiling, "errors", errors, "failure_count", (json_int_t)n_off,
        "engine_max_input_tokens", (json_int_t)cfg->engine_max_input_tokens, "max_tokens",
        (json_int_t)cfg->gp.max_tokens, "input_token_safety_margin",
        (json_int_t)cfg->input_token_safety_margin, "prompts_checked", (json_int_t)checked,
        "max_prompt_tokens_est", (json_int_t)max_est, "tokenizer", c->tok->kind);
    if (srv_bound) {
        json_object_set_new(c->rs.preflight, "server_context_limit", json_integer(srv));
        json_object_set(c->rs.preflight, "server_context_limit_source",
                        json_object_get(c->rs.ctx_limit, "source"));
    }
    if (!ok && srv_bound) {
        char msg[400];
        snprintf(msg, sizeof msg,
                 "%zu prompts would not fit the server's context of %lld tokens (%s) with "
                 "max_tokens %lld: ceiling %lld, largest prompt %lld",
                 n_off, (long long)srv, json_get_str(c->rs.ctx_limit, "source", "?"),
                 cfg->gp.max_tokens, ceiling, max_est);
        validity_add(&c->v, "prompt_preflight_failed",
                     json_pack("{s:s, s:O, s:I, s:s}", "message", msg, "errors", errors,
                               "server_context_limit", srv, "source",
                               json_get_str(c->rs.ctx_limit, "source", "?")));
        log_error("preflight failed: %s", msg);
    } else if (!ok) {
        char msg[256];
        if (ceiling <= 0)
            snprintf(msg, sizeof msg,
                     "input ceiling is %lld tokens (engine max input %lld - max tokens %lld - "
                     "margin %lld): no prompt can be sent",
                     ceiling, cfg->engine_max_input_tokens, cfg->gp.max_tokens,
                     cfg->input_token_safety_margin);
        else
            snprintf(msg, sizeof msg,
                     "%zu prompts are estimated above the input ceiling of %lld tokens (largest "
                     "%lld)",
                     n_off, ceiling, max_est);
        validity_add(&c->v, "prompt_preflight_failed",
                     json_pack("{s:s, s:O}", "message", msg, "errors", errors));
        log_error("preflight failed: %s", msg);
    }
    json_decref(errors);
    return ok;
}

/* ------------------------------------------------------------ snapshots */

static void add_write_validity(struct ctx *c)
{
    if (!c->write_failures || c->write_reported)
        return;
    c->write_reported = true;
    /* the errors list is shared: later failures show up in it */
    validity_add(&c->v, "artifact_write_failed",
                 json_pack("{s:s, s:O}", "message",
                           "an artifact could not be written completely (disk full or I/O "
                           "error): what was measured is not all on disk",
                           "errors", c->write_errors));
}

/* An artifact could not be written completely: the run cannot be trusted as measured. */
static void write_failed(struct ctx *c, const char *file, const char *why)
{
    if (c->write_failures++ < 8)
        json_array_append_new(c->write_errors, json_pack("{s:s, s:s}", "file", file, "error", why));
    add_write_validity(c);
}

static void warn(struct ctx *c, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A finding that does not make the run invalid: summary.json `warnings`, atop report.md. */
static void warn(struct ctx *c, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_warn("%s", msg);
    json_array_append_new(c->rs.warnings, json_pack("{s:s, s:s}", "code", code, "message", msg));
}

static void snapshot(struct ctx *c, const char *label, struct kv_snapshot *out)
{
    kvsnap_take(c->rs.metrics_url, c->cfg->kvbm_metrics_timeout_s, label, c->rs.engine->families,
                out);
    if (!out->success && out->wrong_families && c->rs.engine->carry_empty && c->last_metrics) {
        /* trtllm-serve drains its statistics on every poll: no iteration since the last one
         * means the cumulative counters are where they were. */
        out->success = true;
        out->carried = true;
        out->metrics = json_deep_copy(c->last_metrics);
        out->error[0] = '\0';
    }
    if (out->success && !out->carried) {
        json_decref(c->last_metrics);
        c->last_metrics = json_incref(out->metrics);
    }
    c->rs.snapshot_count++;
    if (out->success)
        c->rs.snapshot_ok++;
    else
        log_debug("metrics snapshot %s failed: %s", label, out->error);
    json_t *row = kvsnap_json(out);
    char err[ERR_LEN];
    if (json_write_line(c->snapshots, row, err) < 0) {
        log_error("kvbm_metrics_snapshots.jsonl: %s", err);
        write_failed(c, "kvbm_metrics_snapshots.jsonl", err);
    }
    json_decref(row);
}

static bool io_read(struct ctx *c, struct blockdev_stat *st)
{
    if (!c->rs.device)
        return false;
    char err[ERR_LEN];
    if (blockdev_read(c->cfg->sysfs_root, c->rs.device, st, err) < 0) {
        log_warn("block device counters: %s", err);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------ model */

/* Nothing answered at the start: the run sends nothing (SPEC §4.5, server_unreachable). */
static void unreachable_at_start(struct ctx *c, const char *err, double waited_s)
{
    const struct run_config *cfg = c->cfg;
    char msg[ERR_LEN + 160];
    snprintf(msg, sizeof msg, "nothing answered at %s (waited %.0f s): %s", cfg->base_url, waited_s,
             err);
    validity_add(&c->v, "server_unreachable",
                 json_pack("{s:s, s:s, s:s, s:f, s:I}", "phase", "preflight", "message", msg,
                           "last_error", err, "waited_s", waited_s, "requests_sent",
                           (json_int_t)0));
    log_error("%s; nothing was sent", msg);
}

static int resolve_model(struct ctx *c)
{
    const struct run_config *cfg = c->cfg;
    char err[ERR_LEN] = "";
    uint64_t t0 = clock_now_ns();
    if (strcmp(cfg->model_id, "auto") != 0) {
        snprintf(c->rs.model, sizeof c->rs.model, "%s", cfg->model_id);
        /* one look: a server that does not list models is fine, one that is not there is not */
        if (server_models(cfg->base_url, cfg->api_key, 10, NULL, 0, NULL, err) ==
            SERVER_UNREACHABLE) {
            unreachable_at_start(c, err, (double)(clock_now_ns() - t0) / 1e9);
            return -1;
        }
        return 0;
    }
    uint64_t deadline = t0 + (uint64_t)(cfg->model_resolve_timeout_s * 1e9);
    bool answered = false;
    for (;;) {
        int n = server_models(cfg->base_url, cfg->api_key, 10, c->rs.model, sizeof c->rs.model,
                              NULL, err);
        if (n > 0) {
            log_info("model: %s", c->rs.model);
            return 0;
        }
        answered |= n != SERVER_UNREACHABLE;
        if (n == 0)
            snprintf(err, sizeof err, "/v1/models lists no model");
        if (*c->interrupted || clock_now_ns() >= deadline)
            break;
        log_info("waiting for a model at %s/v1/models: %s", cfg->base_url, err);
        uint64_t wait = (uint64_t)(cfg->model_resolve_poll_s * 1e9);
        uint64_t left = deadline - clock_now_ns();
        clock_sleep_ns(wait < left ? wait : left, (const volatile int *)c->interrupted);
    }
    c->rs.model[0] = '\0';
    if (*c->interrupted)
        return -1;
    if (!answered) {
        unreachable_at_start(c, err, (double)(clock_now_ns() - t0) / 1e9);
        return -1;
    }
    validity_add(&c->v, "runtime_exception",
                 json_pack("{s:s, s:s, s:f}", "message", "the model never resolved", "last_error",
                           err, "model_resolve_timeout_s", cfg->model_resolve_timeout_s));
    log_error("no model resolved at %s within %.0f s: %s", cfg->base_url,
              cfg->model_resolve_timeout_s, err);
    return -1;
}

/* ------------------------------------------------------------ engine, model list, BOS */

static void resolve_engine(struct ctx *c)
{
    const struct run_config *cfg = c->cfg;
    const struct engine_profile *p = engine_profile_find(cfg->engine);
    char err[ERR_LEN], *models = NULL, *health = NULL, url[600], server_hdr[128] = "";
    server_get(cfg->base_url, "/v1/models", cfg->api_key, 10, &models, server_hdr,
               sizeof server_hdr, err);
    if (p) {
        engine_named(p, &c->rs.engine_id);
        c->rs.engine_id.embedded = strncmp(server_hdr, "kvbench-serve/", 14) == 0;
        if (c->rs.engine_id.embedded)
            snprintf(c->rs.engine_id.title, sizeof c->rs.engine_id.title,
                     "kvbench serve (%s personality)", p->name);
    } else {
        server_health(cfg->base_url, cfg->api_key, 10, &health, err);
        snprintf(url, sizeof url, "%s/metrics", cfg->base_url);
        struct kv_snapshot ms, ks;
        kvsnap_take(url, 10, "engine_detect", NULL, &ms);
        kvsnap_take(cfg->scen.kvbm_metrics_url, cfg->kvbm_metrics_timeout_s, "engine_detect", NULL,
                    &ks);
        json_t *mj = models ? json_loads(models, 0, NULL) : NULL;
        struct engine_seen seen = {.models = mj,
                                   .health_body = health,
                                   .metrics = ms.success ? ms.metrics : NULL,
                                   .kvbm_metrics = ks.success ? ks.metrics : NULL,
                                   .server_header = server_hdr};
        engine_detect(&seen, &c->rs.engine_id);
        p = c->rs.engine_id.profile;
        json_decref(mj);
        kvsnap_free(&ms);
        kvsnap_free(&ks);
        free(health);
    }
    free(models);
    c->rs.kv_modes_apply = engine_kv_modes_apply(&c->rs.engine_id);
    c->rs.engine = p;
    if (cfg->kvbm_metrics_url_given || !p->metrics_url)
        snprintf(c->rs.metrics_url, sizeof c->rs.metrics_url, "%s", cfg->scen.kvbm_metrics_url);
    else
        snprintf(c->rs.metrics_url, sizeof c->rs.metrics_url, "%s%s", cfg->base_url,
                 p->metrics_url);
    log_info("engine: %s (%s); KV metrics from %s", c->rs.engine_id.title, c->rs.engine_id.evidence,
             c->rs.metrics_url);
}

/* The server's own context limit, where the engine publishes it (its catalogue row), for the
 * preflight and config.json's server_context_limit. */
static void read_ctx_limit(struct ctx *c)
{
    const struct run_config *cfg = c->cfg;
    const struct engine_profile *p = c->rs.engine;
    char tried[400] = "";
    size_t used = 0;
    for (const struct ctx_limit_source *src = p ? p->ctx_limits : NULL; src && src->path; src++) {
        char err[ERR_LEN], *body = NULL;
        long st = server_get(cfg->base_url, src->path, cfg->api_key, 10, &body, NULL, 0, err);
        json_t *j = st == 200 && body ? json_loads(body, 0, NULL) : NULL;
        free(body);
        long long n = engine_ctx_limit_in(src, j, c->rs.model);
        json_decref(j);
        char where[200];
        snprintf(where, sizeof where, "GET %s %s", src->path, src->key);
        if (n > 0) {
            c->rs.ctx_limit = json_pack("{s:I, s:s}", "tokens", (json_int_t)n, "source", where);
            log_info("server context limit: %lld tokens (%s)", n, where);
            return;
        }
        used += (size_t)snprintf(tried + used, used < sizeof tried ? sizeof tried - used : 0,
                                 "%s%s (%s)", used ? "; " : "", where,
                                 st == 200 ? "absent"
                                 : st      ? "HTTP error"
                                           : "no answer");
        if (used >= sizeof tried)
            used = sizeof tried - 1;
    }
    char reason[520];
    snprintf(reason, sizeof reason, "%s%s",
             p && p->ctx_limits ? "not published where the engine's profile looks: "
                                : "the engine publishes none that kvbench knows of",
             tried);
    c->rs.ctx_limit = json_pack("{s:n, s:s}", "tokens", "reason", reason);
}

/* --pressure auto: the tiers' capacities from the flags, else from the engine's metrics (its KV
 * metrics endpoint and the API's /metrics). */
static void read_tier_caps(struct ctx *c)
{
    const struct run_config *cfg = c->cfg;
    pressure_caps_init(&c->caps, cfg->tier_blocks, cfg->kv_block_tokens);
    bool known = cfg->kv_block_tokens > 0;
    for (int t = 0; t < TIER_COUNT; t++)
        known = known && cfg->tier_blocks[t] >= 0;
    if (known)
        return;
    char url[600];
    snprintf(url, sizeof url, "%s/metrics", cfg->base_url);
    struct kv_snapshot kv, api;
    kvsnap_take(c->rs.metrics_url, cfg->kvbm_metrics_timeout_s, "pressure_plan", NULL, &kv);
    kvsnap_take(url, cfg->kvbm_metrics_timeout_s, "pressure_plan", NULL, &api);
    pressure_caps_from_metrics(&c->caps, kv.success ? kv.metrics : NULL,
                               api.success ? api.metrics : NULL);
    kvsnap_free(&kv);
    kvsnap_free(&api);
}

/* An explicit --model-id that /v1/models does not list: many servers ignore the field and
 * answer with their own model, so the run measures something else than it says. */
static void check_model_listed(struct ctx *c)
{
    const struct run_config *cfg = c->cfg;
    if (strcmp(cfg->model_id, "auto") == 0)
        return;
    char err[ERR_LEN], *body = NULL;
    int n = server_models(cfg->base_url, cfg->api_key, 10, NULL, 0, &body, err);
    json_t *j = body ? json_loads(body, 0, NULL) : NULL;
    free(body);
    if (n < 0 || !j) {
        json_decref(j);
        return;
    }
    bool listed = false;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(j, "data"), i, m)
    {
        const char *id = json_get_str(m, "id", NULL);
        listed = listed || (id && strcmp(id, cfg->model_id) == 0);
    }
    const char *first = json_get_str(json_array_get(json_object_get(j, "data"), 0), "id", "none");
    if (!listed)
        warn(c, "model_not_listed",
             "--model-id %s is not listed by %s/v1/models (it lists %s); a server that ignores "
             "the model field answers with its own model",
             cfg->model_id, cfg->base_url, first);
    json_decref(j);
}

/* --add-bos: does the Llama 3 template carry <|begin_of_text|>? auto sends one short probe and
 * compares usage.prompt_tokens with kvbench's own count: one more means the server puts its own
 * BOS first, and the template must not add a second. */
static void decide_bos(struct ctx *c)
{
    const struct run_config *cfg = c->cfg;
    bool template_bos = false;
    struct tokserver_bos b = {.verdict = TOKSERVER_BOS_NOT_ASKED};
    if (cfg->scen.endpoint == ENDPOINT_CHAT)
        snprintf(b.evidence, sizeof b.evidence,
                 "--endpoint chat: the server's chat template writes its BOS");
    else if (!cfg->scen.llama3_template)
        snprintf(b.evidence, sizeof b.evidence, "--prompt-template none");
    else
        template_bos = tokserver_template_bos(cfg->add_bos ? cfg->add_bos : "auto", cfg->base_url,
                                              c->rs.model, cfg->api_key, c->tok, 30, &b);
    if (b.verdict == TOKSERVER_BOS_UNDECIDED)
        warn(c, "bos_undecided",
             "could not tell whether the server adds its own BOS (%s); set --add-bos yes|no",
             b.evidence);
    c->form.no_bos = c->form.llama3 && !template_bos;
    c->rs.bos = json_pack("{s:s, s:b, s:s}", "mode", cfg->add_bos ? cfg->add_bos : "auto",
                          "template_bos", template_bos, "evidence", b.evidence);
    log_info("BOS: %s in the template (%s)", template_bos ? "<|begin_of_text|>" : "no BOS",
             b.evidence);
}

/* ------------------------------------------------------------ phases */

/* Sleep until t (clock_now_ns time; 0 or past: not at all), waking for an interrupt. */
static void wait_until(uint64_t t, const volatile sig_atomic_t *interrupted)
{
    for (;;) {
        uint64_t now = clock_now_ns();
        if (!t || now >= t || *interrupted)
            return;
        uint64_t step = t - now < 50000000u ? t - now : 50000000u;
        clock_sleep_ns(step, NULL);
    }
}

static void judge_rate(struct ctx *c, const struct phase_state *ps);

/* The progress line's disk figures, with --collect-telemetry. */
static void progress_disk(void *user, char *out, size_t cap)
{
    struct ctx *c = user;
    double r, w;
    if (c->tel && telemetry_disk_now(c->tel, &r, &w))
        snprintf(out, cap, "  disk r %.1f w %.1f MB/s", r, w);
}

/* The phase's "before" readings: the cache, the KV snapshot, the block device, the nodes (a
 * scrape may take seconds). Returns whether the block device was read. */
static bool phase_before(struct ctx *c, struct phase_state *ps)
{
    char label[64];
    snprintf(label, sizeof label, "before_%s", ps->name);
    if (c->tel) {
        telemetry_cache_snapshot(c->tel, label);
        telemetry_set_label(c->tel, ps->name);
    }
    snapshot(c, label, &ps->before);
    bool io0 = io_read(c, &ps->io_before);
    run_nodes_before(c->nodes);
    return io0;
}

/* Phase ps, its "before" readings taken (io0: the block device's). */
static void run_phase(struct ctx *c, struct phase_state *ps, bool io0)
{
    char label[64], err[ERR_LEN];
    const struct run_config *cfg = c->cfg;
    bool open_rate = cfg->request_rate > 0 && strcmp(ps->name, "warmup") != 0;
    char cap[48] = "";
    if (c->lg.max_concurrency) /* this process's (a shard's share) */
        snprintf(cap, sizeof cap, ", at most %zu in flight", c->lg.max_concurrency);
    if (ps->schedule)
        log_info("phase %s: %zu requests on the scenario's schedule (open loop%s)", ps->name, ps->n,
                 cap);
    else if (open_rate && isinf(cfg->request_rate))
        log_info("phase %s: %zu requests all at once (open loop%s)", ps->name, ps->n, cap);
    else if (open_rate)
        log_info("phase %s: %zu requests at %g requests/s (open loop, %s arrivals%s)", ps->name,
                 ps->n, c->lg.request_rate, names_name(ARRIVAL_TABLE, cfg->scen.shape.arrival),
                 cap);
    else
        log_info("phase %s: %zu requests at concurrency %zu", ps->name, ps->n, ps->concurrency);
    struct phase_plan pp = {
        .name = ps->name,
        .prompts = (const struct prompt *const *)ps->prompts,
        .n = ps->n,
        .concurrency = ps->concurrency,
        .open_loop = cfg->request_rate > 0 && strcmp(ps->name, "warmup") != 0,
        .duration_s = strcmp(ps->name, "main") == 0 ? cfg->duration_s : 0,
        .schedule = ps->schedule,
        .t0_ns = ps->t0_ns,
        .keep_text = ps->keep_text,
    };
    ps->t_start_ns = clock_now_ns();
    ps->wall_start_s = (double)clock_wall_ns() / 1e9;
    if (c->shard) /* the barrier's time had passed: the schedule starts now, not in the past */
        pp.t0_ns = ps->t0_ns = shard_started(c->shard, ps->t0_ns, ps->t_start_ns, ps->wall_start_s);
    if (ps->n && is_lazy(c, ps->prompts[0])) {
        pp.ready = &c->lazy.ready;
        pp.producer_done = &c->lazy.done;
        pp.claimed = &c->lazy.claimed;
        pp.ring = ps->ring;
    }
    if (loadgen_run_phase(&c->lg, &pp, &ps->res, err) < 0) {
        log_error("phase %s: %s", ps->name, err);
        validity_add(&c->v, "runtime_exception",
                     json_pack("{s:s, s:s}", "phase", ps->name, "message", err));
    }
    ps->ran = true;
    ps->wall_end_s = (double)clock_wall_ns() / 1e9;
    bool io1 = io_read(c, &ps->io_after);
    snprintf(label, sizeof label, "after_%s", ps->name);
    snapshot(c, label, &ps->after);
    run_nodes_after(c->nodes, ps);
    if (c->tel) {
        telemetry_set_label(c->tel, "between");
        telemetry_cache_snapshot(c->tel, label);
    }
    ps->have_snaps = true;
    ps->io_ok = io0 && io1;
    if (ps->io_ok)
        ps->io_delta = blockdev_delta_json(&ps->io_before, &ps->io_after);
    ps->kv_delta = kvsnap_phase_delta(c->rs.engine, &ps->before, &ps->after, ps->res.duration_s);
    log_info("phase %s: %zu requests, %zu errors, %.1f s (%zu %s thread%s)", ps->name, ps->res.n,
             ps->res.errors, ps->res.duration_s, ps->res.threads,
             ps->res.transport ? ps->res.transport : "-", ps->res.threads == 1 ? "" : "s");
    judge_rate(c, ps);
    for (size_t i = 0; i < ps->res.n_aggs; i++)
        for (int m = AGG_LATENCY; m <= AGG_CLIENT_LAG; m++)
            if (phase_agg_store(&ps->res.aggs[i], (enum agg_metric)m)->failed) {
                write_failed(c, "measured values",
                             "a spill file of measured values could not be written; the "
                             "phase's statistics are incomplete");
                return;
            }
}

/* After an open-loop phase: did the client keep the schedule, and was the rate reached? */
static void judge_rate(struct ctx *c, const struct phase_state *ps)
{
    const struct phase_result *r = &ps->res;
    if (!r->open_loop || r->interrupted || r->n == 0)
        return;
    struct phase_agg *parts[64];
    size_t n_parts = r->n_aggs < 64 ? r->n_aggs : 64;
    for (size_t i = 0; i < n_parts; i++)
        parts[i] = &r->aggs[i];
    struct dstats st;
    phase_agg_stats(parts, n_parts, AGG_CLIENT_LAG, &st);
    bool late = st.n && st.p99 > LOADGEN_CLIENT_LAG_BOUND_MS;
    bool short_rate = !isinf(r->target_rate) && !isnan(r->achieved_rate) &&
                      r->achieved_rate < 0.95 * r->target_rate;
    if (late)
        warn(c, "client_limited_rate",
             "phase %s: the client sent requests late while it had a free slot (client lag p99 "
             "%.1f ms > %.0f ms); achieved %.1f of %.1f requests/s: the load generator is the "
             "limit (try --threads, or a lower --request-rate)",
             ps->name, st.p99, LOADGEN_CLIENT_LAG_BOUND_MS, r->achieved_rate, r->target_rate);
    else if (short_rate)
        warn(c, "rate_not_achieved",
             "phase %s: achieved %.1f of %.1f requests/s (below 95 %%) with the client on time: "
             "requests waited for a free slot (--max-concurrency) or the server was slower than "
             "the rate",
             ps->name, r->achieved_rate, r->target_rate);
}

/* --pressure auto: say what the plan could not do. A plan whose requests cannot fit the device
 * tier sends nothing (prompt_preflight_failed, naming the capacity); otherwise the run still goes
 * on (its verdict then names the cause with the figures). Returns false to send nothing. */
static bool pressure_fits(struct ctx *c)
{
    if (!c->cfg->scen.pressure_auto || !c->pressure_plan ||
        !json_is_false(json_object_get(c->pressure_plan, "fits_device")))
        return true;
    const char *why = json_get_str(c->pressure_plan, "reason", "?");
    validity_add(&c->v, "prompt_preflight_failed",
                 json_pack("{s:s, s:s}", "phase", "preflight", "message", why));
    log_error("--pressure auto: %s; nothing is sent", why);
    return false;
}

static void judge_pressure(struct ctx *c)
{
    if (!c->cfg->scen.pressure_auto || !c->pressure_plan ||
        json_is_false(json_object_get(c->pressure_plan, "fits_device")))
        return; /* refused by pressure_fits */
    const json_t *f = json_object_get(c->pressure_plan, "feasible");
    const char *why = json_string_value(json_object_get(c->pressure_plan, "reason"));
    const json_t *b = json_object_get(c->pressure_plan, "set_b");
    if (!b)
        warn(c, "pressure_auto_unavailable", "--pressure auto: %s", why ? why : "?");
    else if (json_is_false(f))
        warn(c, "pressure_impossible",
             "--pressure auto: the tiers make a disk read-back impossible: %s", why ? why : "?");
    else
        log_info("--pressure auto: set B of %lld requests: %s",
                 (long long)json_integer_value(json_object_get(b, "requests")), why ? why : "");
}

/* Whether a reason is already recorded (a detail carries it). */
static bool has_reason(const struct validity *v, const char *reason)
{
    size_t i;
    const json_t *d;
    json_array_foreach(v->details, i, d)
    {
        if (strcmp(json_get_str(d, "reason", ""), reason) == 0)
            return true;
    }
    return false;
}

/* Nothing answered the end-of-run /v1/models query: the server went away after the last phase
 * had its answers, or during its last requests, too few in a row to count as an outage there (a
 * stream the server's exit cut off ends with its status 200 already read). A run whose server
 * is gone is never valid: server_unreachable, unless an outage already said it. */
static void judge_gone_at_end(struct ctx *c, const char *why)
{
    if (has_reason(&c->v, "server_unreachable"))
        return;
    char msg[ERR_LEN + 200];
    snprintf(msg, sizeof msg,
             "the server did not answer after the last phase (GET /v1/models: %s): it went away "
             "before the run ended",
             why);
    validity_add(&c->v, "server_unreachable",
                 json_pack("{s:s, s:s, s:b}", "phase", "run_end", "message", msg, "recovered", 0));
    log_error("%s", msg);
}

/* The server went away during the phase (loadgen's outage bookkeeping): server_unreachable,
 * with when, for how long, the requests it cost and what /health says now. Returns true when it
 * came back (the run goes on, still invalid: its caches may be gone). */
static bool judge_outage(struct ctx *c, const struct phase_state *ps)
{
    const struct phase_outage *o = &ps->res.outage;
    char when[CLOCK_ISO_MS_LEN], herr[ERR_LEN] = "", msg[512];
    clock_iso_utc_ms(o->since_wall_ns, when); /* comparable with the rows' start_ts */
    long health = server_health(c->cfg->base_url, c->cfg->api_key, 5, NULL, herr);
    snprintf(msg, sizeof msg,
             "the server stopped answering in phase %s at %s: %zu requests refused or cut off, "
             "away %.1f s%s; /health now %s",
             ps->name, when, o->requests_failed, o->down_s,
             o->recovered ? " (it came back, its caches may not have)"
             : o->gave_up ? " (phase ended after --unreachable-timeout-s)"
                          : "",
             health > 0 ? (health == 200 ? "answers 200" : "fails") : "unreachable");
    /* a --duration-s phase plans no count: what it did not send is unknown */
    json_t *not_sent = c->cfg->duration_s > 0 && strcmp(ps->name, "main") == 0
                           ? json_null()
                           : json_integer((json_int_t)(ps->n > ps->res.n ? ps->n - ps->res.n : 0));
    validity_add(&c->v, "server_unreachable",
                 json_pack("{s:s, s:s, s:s, s:f, s:I, s:I, s:b, s:b, s:I, s:I, s:o}", "phase",
                           ps->name, "message", msg, "went_away_utc", when, "away_s", o->down_s,
                           "requests_failed", (json_int_t)o->requests_failed, "outages",
                           (json_int_t)o->outages, "recovered", o->recovered, "gave_up", o->gave_up,
                           "health_status", (json_int_t)health, "requests_sent",
                           (json_int_t)ps->res.n, "requests_not_sent", not_sent));
    log_error("%s", msg);
    return o->recovered && health == 200;
}

/* A measured phase's error rate against --max-error-rate: error_rate_exceeded with its counts and
 * first errors. */
static void judge_error_rate(struct ctx *c, const struct phase_state *ps)
{
    size_t total = 0, errors = 0;
    json_t *first = json_array();
    for (size_t i = 0; i < ps->res.n_aggs; i++) {
        const struct phase_agg *a = &ps->res.aggs[i];
        total += a->total;
        errors += a->err;
        for (size_t k = 0; k < a->n_errs && json_array_size(first) < LOADGEN_ERROR_SAMPLES; k++)
            json_array_append_new(first, json_pack("{s:I, s:s}", "request_index",
                                                   (json_int_t)a->errs[k].request_index, "error",
                                                   a->errs[k].text));
    }
    double rate = total ? (double)errors / (double)total : 0;
    if (!ps->included || !total || !errors || rate <= c->cfg->max_error_rate) {
        json_decref(first);
        return;
    }
    char msg[ERR_LEN + 200];
    snprintf(msg, sizeof msg,
             "phase %s: %zu of %zu requests failed (%.1f %% > --max-error-rate %g %%)%s%s",
             ps->name, errors, total, 100.0 * rate, 100.0 * c->cfg->max_error_rate,
             json_array_size(first) ? "; first: " : "",
             json_get_str(json_array_get(first, 0), "error", ""));
    validity_add(&c->v, "error_rate_exceeded",
                 json_pack("{s:s, s:s, s:I, s:I, s:f, s:f, s:o}", "phase", ps->name, "message", msg,
                           "requests", (json_int_t)total, "errors", (json_int_t)errors,
                           "error_rate", rate, "max_error_rate", c->cfg->max_error_rate,
                           "first_errors", first));
    log_error("%s", msg);
}

static bool judge_model(struct ctx *c, struct phase_state *ps);

/* After a phase: the invalidation rules that stop the run. Returns true to go on. */
static bool judge_phase(struct ctx *c, struct phase_state *ps)
{
    if (ps->res.outage.seen && !judge_outage(c, ps)) {
        judge_error_rate(c, ps);
        log_error("the server is gone; remaining phases skipped");
        return false;
    }
    bool go_on = judge_model(c, ps); /* the more specific reasons first */
    judge_error_rate(c, ps);
    return go_on;
}

/* The engine's prompt limit, or the model gone (404/500 and /v1/models empty). Returns true to
 * go on. */
static bool judge_model(struct ctx *c, struct phase_state *ps)
{
    bool saw_404_500 = false;
    const char *limit_error = NULL;
    for (size_t i = 0; i < ps->res.n_aggs; i++) {
        const struct phase_agg *a = &ps->res.aggs[i];
        saw_404_500 |= a->saw_404_500;
        if (a->limit_error && !limit_error)
            limit_error = a->limit_error;
    }
    if (limit_error) {
        validity_add(&c->v, "engine_prompt_limit_exceeded",
                     json_pack("{s:s, s:s}", "phase", ps->name, "error", limit_error));
        log_error("the engine refused a prompt over max_num_tokens; remaining phases skipped");
        return false;
    }
    if (saw_404_500) {
        char err[ERR_LEN];
        int n = server_models(c->cfg->base_url, c->cfg->api_key, 10, NULL, 0, NULL, err);
        ps->models_after = n;
        if (n == 0) {
            validity_add(&c->v, "model_dropped",
                         json_pack("{s:s, s:s}", "phase", ps->name, "message",
                                   "the phase saw 404/500 answers and /v1/models then listed no "
                                   "model"));
            log_error("the model dropped during %s; remaining phases skipped", ps->name);
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------ telemetry */

static void start_telemetry(struct ctx *c)
{
    const struct run_config *cfg = c->cfg;
    static __thread char dev[BLOCKDEV_NAME_LEN];
    const char *how = NULL;
    char dev_err[ERR_LEN] = "", err[ERR_LEN], dir[PATH_MAX];
    bool have_dev = blockdev_resolve(cfg->sysfs_root, cfg->iostat_device, cfg->kvbm_cache_dir, dev,
                                     &how, dev_err) == 0;
    path_in(c, "telemetry", dir);
    struct telemetry_config tc = {
        .out_dir = dir,
        .interval_s = cfg->telemetry_interval_s,
        .device = have_dev ? dev : NULL,
        .device_error = dev_err,
        .pid_spec = cfg->telemetry_pid,
        .metrics_url = c->rs.metrics_url, /* the engine profile's */
        .metrics_timeout_s = cfg->kvbm_metrics_timeout_s,
        .cache_dir = cfg->kvbm_cache_dir,
        .container = cfg->scen.container_name,
        .procfs = cfg->procfs_root,
        .container_timeout_s = 60,
    };
    tc.nodes = run_nodes_targets(c->nodes, &tc.n_nodes);
    c->tel = telemetry_start(&tc, err);
    if (!c->tel) {
        log_warn("telemetry disabled: %s", err);
        note(c, "telemetry could not start; see the log");
        return;
    }
    telemetry_cache_snapshot(c->tel, "run_start");
}

static void finish_telemetry(struct ctx *c)
{
    telemetry_set_label(c->tel, "end");
    telemetry_cache_snapshot(c->tel, "run_end");
    telemetry_stop(c->tel);
    json_t *churn = json_object();
    for (size_t i = 0; i < c->rs.n_phases; i++) {
        struct phase_state *ps = &c->rs.phases[i];
        if (!ps->ran)
            continue;
        char b[64], a[64];
        snprintf(b, sizeof b, "before_%s", ps->name);
        snprintf(a, sizeof a, "after_%s", ps->name);
        json_t *ch = telemetry_cache_churn(c->tel, b, a);
        json_object_set(churn, ps->name, ch);
        ps->telemetry = json_pack("{s:o, s:o}", "disk", telemetry_label_stats(c->tel, ps->name),
                                  "cache_churn", ch);
        json_t *gpu = telemetry_label_gpu(c->tel, ps->name);
        if (gpu)
            json_object_set_new(ps->telemetry, "gpu", gpu);
    }
    json_object_set_new(churn, "run", telemetry_cache_churn(c->tel, "run_start", "run_end"));
    char err[ERR_LEN];
    if (telemetry_write_reports(c->tel, churn, err) < 0)
        log_error("telemetry reports: %s", err);
    char path[PATH_MAX];
    path_in(c, "telemetry/telemetry_report.json", path);
    json_t *rep = json_read_file(path, NULL);
    c->rs.telemetry = json_pack("{s:b, s:s, s:O, s:o}", "enabled", 1, "dir", "telemetry",
                                "cache_churn", churn, "report", rep ? rep : json_null());
    json_decref(churn);
    c->rs.container = telemetry_container(c->tel);
}

/* ------------------------------------------------------------ artifacts */

static json_t *config_json(const struct ctx *c)
{
    const struct run_config *cfg = c->cfg;
    const struct gen_params *gp = &cfg->gp;
    json_t *o = json_object();
    json_put_str(o, "run_id", c->rs.run_id);
    json_put_str(o, "created_utc", c->rs.created_utc);
    json_put_str(o, "base_url", cfg->base_url);
    json_put(o, "model_id", c->rs.model[0] ? json_string(c->rs.model) : json_null());
    json_put_str(o, "model_id_requested", cfg->model_id);
    json_put_str(o, "scenario", cfg->scen.scenario);
    json_put_str(o, "prompt_set", cfg->scen.prompt_set);
    json_put(
        o, "short_range",
        json_pack("[I,I]", (json_int_t)cfg->short_range.min, (json_int_t)cfg->short_range.max));
    json_put(o, "long_range",
             json_pack("[I,I]", (json_int_t)cfg->long_range.min, (json_int_t)cfg->long_range.max));
    const struct tokenizer *tk = c->tok ? c->tok : tokenizer_heuristic();
    json_put_str(o, "tokenizer", tk->kind); /* the counter used, as the reference names it */
    json_put(o, "tokenizer_file",
             json_pack("{s:s, s:o, s:o}", "spec",
                       cfg->tokenizer_spec ? cfg->tokenizer_spec : "heuristic", "path",
                       tk->path ? json_string(tk->path) : json_null(), "sha256",
                       tk->sha256[0] ? json_string(tk->sha256) : json_null()));
    json_put_str(o, "prompt_salt", c->salt);
    json_put_str(o, "prompt_template", cfg->scen.llama3_template ? "llama3" : "none");
    json_put_str(o, "endpoint", names_name(ENDPOINT_NAMES, cfg->scen.endpoint));
    json_put(o, "chat_template", c->chat_template ? json_incref(c->chat_template) : json_null());
    json_put(o, "kv_mode", summary_kv_mode_json(&c->scfg, &c->rs));
    json_put(o, "server_context_limit",
             c->rs.ctx_limit ? json_incref(c->rs.ctx_limit) : json_null());
    json_put(o, "preflight", c->rs.preflight ? json_incref(c->rs.preflight) : json_null());
    if (c->pressure_plan)
        json_put(o, "pressure_plan", json_incref(c->pressure_plan));
    json_t *stop = json_array();
    for (size_t i = 0; i < gp->n_stop; i++)
        json_array_append_new(stop, json_string(gp->stop[i]));
    json_put(o, "client_request_parameters",
             json_pack("{s:I, s:f, s:f, s:o, s:o, s:b}", "max_tokens", (json_int_t)gp->max_tokens,
                       "temperature", gp->temperature, "top_p", gp->top_p, "request_seed",
                       gp->has_seed ? json_integer(gp->seed) : json_null(), "stop", stop, "stream",
                       gp->stream));
    json_put_bool(o, "api_key_set", cfg->api_key != NULL);
    json_put(o, "args", json_incref(cfg->flags));
    json_put(o, "slo", cfg->slo.any ? slo_json(&cfg->slo) : json_null());
    json_put(o, "phases", plan_json(c));
    if (c->rs.engine)
        json_put(o, "engine",
                 json_pack("{s:s, s:s, s:s, s:s}", "name", c->rs.engine->name, "requested",
                           cfg->engine ? cfg->engine : "auto", "evidence", c->rs.engine_id.evidence,
                           "metrics_url", c->rs.metrics_url));
    json_put(o, "bos", c->rs.bos ? json_incref(c->rs.bos) : json_null());
    json_put(o, "block_device", summary_block_device_json(&c->rs));
    if (c->shard)
        json_put(o, "shard", shard_json(c->shard));
    return o;
}

/* What the load generator and the snapshots wrote as the run went: closed, and every loss counted
 * as a failed artifact (rows or response files lost, a snapshot file that did not flush). */
static void close_streams(struct ctx *c)
{
    char err[ERR_LEN];
    c->rs.n_header_keys = c->lg.n_header_keys;
    if (loadgen_close_rows(&c->lg, err) < 0)
        write_failed(c, "requests.jsonl", err);
    size_t lost_responses = atomic_load(&c->lg.response_write_failures);
    if (lost_responses) {
        char why[120];
        snprintf(why, sizeof why, "%zu response files could not be written", lost_responses);
        write_failed(c, "responses/", why);
    }
    if (c->lg.row_errors) {
        char why[200];
        snprintf(why, sizeof why, "%zu rows lost: %s", c->lg.row_errors, c->lg.row_error);
        write_failed(c, "requests.jsonl", why);
    }
    if (c->snapshots) {
        FILE *f = c->snapshots;
        c->snapshots = NULL;
        if (fclose(f) != 0) {
            snprintf(err, sizeof err, "kvbm_metrics_snapshots.jsonl: %s", strerror(errno));
            log_error("%s", err);
            write_failed(c, "kvbm_metrics_snapshots.jsonl", err);
        }
    }
}

/* One JSON artifact of the run directory; a failure is the run's (artifact_write_failed). */
static int write_json_artifact(struct ctx *c, const char *name, const json_t *v)
{
    char path[PATH_MAX], err[ERR_LEN];
    path_in(c, name, path);
    if (json_write_file(path, v, err) == 0)
        return 0;
    log_error("%s", err);
    write_failed(c, name, err);
    return -1;
}

/* report.md (the --report-filename) from the summary and config.json. */
static int write_report(struct ctx *c, const json_t *summary, const json_t *config)
{
    char path[PATH_MAX], err[ERR_LEN];
    const char *name = c->cfg->report_filename;
    char *md = report_markdown(summary, config); /* NULL: its buffer failed */
    path_in(c, name, path);
    int rc = md ? fs_write_atomic(path, md, strlen(md), err) : -1;
    if (rc < 0) {
        log_error("%s", md ? err : "cannot build the report");
        write_failed(c, name, md ? err : "out of memory");
    }
    free(md);
    return rc;
}

/* config.json, report.md and summary.json, each written atomically (temp + rename) and each
 * attempted whatever happened before; summary.json after the others, so that it can say whether
 * they were written, and written again when report.html (drawn from it) could not be. Returns
 * the number of files that could not be written. */
static int write_artifacts(struct ctx *c)
{
    char err[ERR_LEN];
    int failed = 0;
    close_streams(c);
    json_t *config = config_json(c);
    json_t *summary = summary_build(&c->rs, &c->v, c->notes);
    size_t failures_in_summary = c->write_failures;
    failed -= write_json_artifact(c, "config.json", config);
    failed -= write_report(c, summary, config);
    if (c->write_failures != failures_in_summary) { /* config or report failed: say so */
        json_decref(summary);
        summary = summary_build(&c->rs, &c->v, c->notes);
    }
    int summary_rc = write_json_artifact(c, "summary.json", summary);
    failed -= summary_rc;
    json_decref(summary);
    if (summary_rc < 0) {
        /* report.html is drawn from summary.json: not there, nothing to draw (its failure was
         * said once; a full disk is not reported again file by file) */
        write_failed(c, "report.html", "not drawn: summary.json could not be written");
        json_decref(config);
        return failed + 1;
    }
    /* report.html is drawn from the files just written (nothing measured depends on it); when it
     * cannot be, summary.json and report.md are written again to say the run's files are not
     * whole, so the three never disagree */
    if (html_write_run(c->dir, err) < 0) {
        log_error("report.html: %s", err);
        write_failed(c, "report.html", err);
        failed++;
        summary = summary_build(&c->rs, &c->v, c->notes);
        failed -= write_report(c, summary, config);
        failed -= write_json_artifact(c, "summary.json", summary);
        json_decref(summary);
    }
    json_decref(config);
    return failed;
}

/* --shard, once the phases are over: no other shard waits for a phase this one will not run, and
 * summary.json gets the shard object. */
static void end_shard(struct ctx *c)
{
    if (!c->shard)
        return;
    shard_finish(c->shard, c->rs.n_phases);
    c->rs.shard = shard_json(c->shard);
}

/* --shard: the barrier's directory and this shard's part (RUN_OK without --shard); RUN_USAGE for
 * a directory holding this shard's files of an earlier run, RUN_FAILED when it cannot be made. */
static int open_shard(struct ctx *c, char *err)
{
    const struct run_config *cfg = c->cfg;
    if (!cfg->shard.spec.count)
        return RUN_OK;
    /* the sync directory is named after the id: refuse a bad one before making anything */
    if (run_id_valid(cfg->run_id, err) < 0)
        return RUN_USAGE;
    struct shard_open o = {
        .cfg = &cfg->shard,
        .base_run_id = cfg->run_id,
        .results_root = cfg->results_root,
        .warnings = c->rs.warnings,
        .request_rate = cfg->request_rate,
        .concurrency = cfg->scen.concurrency,
        .max_concurrency = cfg->scen.max_concurrency,
        .arrival = cfg->scen.shape.arrival,
    };
    if (shard_config_sha256(cfg->flags, o.config_sha256) < 0) {
        err_set(err, "config_sha256: out of memory");
        return RUN_FAILED;
    }
    int rc = shard_run_open(&o, &c->shard, err);
    return rc == SHARD_REFUSED ? RUN_USAGE : rc < 0 ? RUN_FAILED : RUN_OK;
}

/* The run directory, new, with the files written as the run goes (requests.jsonl through the
 * load generator, the snapshots, responses/); the run id and the prompt salt. Returns RUN_OK,
 * RUN_USAGE (a refused run id, an existing directory) or RUN_FAILED (err). */
static int open_run_dir(struct ctx *c, struct run_outcome *out, char *err)
{
    const struct run_config *cfg = c->cfg;
    char shard_id[sizeof c->rs.run_id];
    const char *id = cfg->run_id; /* a shard's directory is named after the base id */
    if (cfg->shard.spec.count) {
        if (shard_dir_name(cfg->run_id, &cfg->shard.spec, shard_id, sizeof shard_id) < 0) {
            err_set(err, "--run-id is too long for a shard's directory name");
            return RUN_USAGE;
        }
        id = shard_id;
    }
    if (run_id_valid(id, err) < 0)
        return RUN_USAGE;
    snprintf(c->rs.run_id, sizeof c->rs.run_id, "%s", id);
    clock_iso_utc_ms(clock_wall_ns(), c->rs.created_utc);
    snprintf(c->dir, sizeof c->dir, "%s/%s", cfg->results_root, id);
    snprintf(out->run_dir, sizeof out->run_dir, "%s", c->dir);
    int rc = fs_mkdir_new(c->dir, err);
    if (rc < 0)
        return rc == FS_EEXIST ? RUN_USAGE : RUN_FAILED;
    if (strcmp(cfg->prompt_salt, "run") == 0) /* a shard's: the base id, as every shard's */
        snprintf(c->salt, sizeof c->salt, "%s", cfg->run_id);
    else if (strcmp(cfg->prompt_salt, "none") != 0)
        snprintf(c->salt, sizeof c->salt, "%s", cfg->prompt_salt);

    char path[PATH_MAX];
    path_in(c, "requests.jsonl", path);
    c->lg.gp = &cfg->gp;
    if (loadgen_init(&c->lg, err) < 0)
        return RUN_FAILED;
    c->lg_ready = true;
    if (loadgen_open_rows(&c->lg, path, err) < 0)
        return RUN_FAILED;
    path_in(c, "kvbm_metrics_snapshots.jsonl", path);
    c->snapshots = fopen(path, "w");
    if (!c->snapshots) {
        err_set(err, "cannot create files in %s: %s", c->dir, strerror(errno));
        return RUN_FAILED;
    }
    if (cfg->store_responses) {
        path_in(c, "responses", path);
        if (fs_mkdir_p(path, err) < 0)
            return RUN_FAILED;
    }
    return RUN_OK;
}

/* What the settings leave unmeasured, said once in the notes and warnings. */
static void note_settings(struct ctx *c)
{
    const struct run_config *cfg = c->cfg;
    if (!cfg->gp.stream)
        note(c, "stream off: TTFT, ITL and TPOT are not measured (use --stream)");
    if (cfg->scen.kv_mode == KV_MODE_OFF)
        note(c, "kv mode off: KV metrics are recorded when available but not required");
    char slo_why[256];
    if (cfg->slo.any && !slo_judgeable(&cfg->slo, cfg->gp.stream, slo_why, sizeof slo_why))
        warn(c, "slo_not_judged", "--slo: %s; goodput attainment is null", slo_why);
}

/* The block device for the phases' I/O deltas, or why there is none. */
static void resolve_device(struct ctx *c)
{
    const struct run_config *cfg = c->cfg;
    char dev_err[ERR_LEN] = "";
    static __thread char dev_name[BLOCKDEV_NAME_LEN];
    if (blockdev_resolve(cfg->sysfs_root, cfg->phase_io_device, cfg->kvbm_cache_dir, dev_name,
                         &c->rs.device_how, dev_err) == 0) {
        c->rs.device = dev_name;
        log_info("block device for I/O deltas: %s (%s)", dev_name, c->rs.device_how);
    } else {
        snprintf(c->rs.device_error, sizeof c->rs.device_error, "%s", dev_err);
        log_warn("block device for I/O deltas unavailable: %s", dev_err);
        note(c, "block-device counters unavailable: no I/O deltas");
    }
}

/* The tokenizer once the model is known: the server's (--tokenizer server) or the one found for
 * the model (auto); a given one stays. Returns 0, or -1 (err) when the server's cannot be used. */
static int resolve_tokenizer(struct ctx *c, char *err)
{
    const struct run_config *cfg = c->cfg;
    if (!cfg->tok && cfg->tokenizer_spec && strcmp(cfg->tokenizer_spec, "server") == 0) {
        c->owned = tokenizer_server(cfg->base_url, c->rs.model, cfg->api_key, err);
        if (!c->owned)
            return -1;
        c->tok = c->owned;
        c->lg.tok = c->tok;
        note(c, "token counts from the server's /tokenize (--tokenizer server)");
    } else if (!cfg->tok) {
        char note_text[512], terr[ERR_LEN];
        c->owned = tokenizer_resolve("auto", c->rs.model[0] ? c->rs.model : NULL, note_text,
                                     sizeof note_text, terr);
        c->tok = c->owned ? c->owned : tokenizer_heuristic();
        c->lg.tok = c->tok;
        note(c, note_text);
    }
    return 0;
}

/* --endpoint chat: the chat template the server applies, which the prompts are rendered and
 * counted through: --chat-template when named; else the model's own (tokenizer_config.json or
 * chat_template.jinja beside the tokenizer.json in use), else its family by the model id; else
 * plain, with a warning that counts may be off by the template's markup. */
static void decide_chat_template(struct ctx *c)
{
    const struct run_config *cfg = c->cfg;
    c->form.chat = cfg->scen.endpoint == ENDPOINT_CHAT;
    c->form.llama3 = !c->form.chat && cfg->scen.llama3_template;
    if (!c->form.chat)
        return;
    char evidence[600] = "";
    int t = cfg->scen.chat_template;
    if (t >= 0) {
        snprintf(evidence, sizeof evidence, "--chat-template %s",
                 names_name(CHAT_TEMPLATE_NAMES, t));
    } else {
        const struct tokenizer *tk = c->tok;
        char why[512];
        t = chat_template_of_tokenizer(tk && tk->bpe ? tk->path : NULL, why, sizeof why);
        if (t >= 0)
            snprintf(evidence, sizeof evidence, "%s", why);
        if (t < 0 && (t = chat_template_of_model(c->rs.model)) >= 0)
            snprintf(evidence, sizeof evidence, "the model id %s (%s)", c->rs.model, why);
        if (t < 0) {
            t = CHAT_TPL_PLAIN;
            snprintf(evidence, sizeof evidence, "unknown: %s, and the model id %s names no family",
                     why, c->rs.model[0] ? c->rs.model : "(none)");
            warn(c, "chat_template_unknown",
                 "the server's chat template is unknown (%s): prompts are counted through the "
                 "plain template and may be off by its markup; name it with --chat-template or "
                 "count with --tokenizer server",
                 evidence);
        }
    }
    c->form.tpl = (enum chat_template)t;
    c->chat_template =
        json_pack("{s:s, s:s}", "name", names_name(CHAT_TEMPLATE_NAMES, t), "evidence", evidence);
    log_info("chat template: %s (%s)", names_name(CHAT_TEMPLATE_NAMES, t), evidence);
}

/* The phases planned and preflighted; *go false when nothing may be sent. Prompts are planned
 * with the BOS text first (an upper bound by one token), so that a failed preflight sends
 * nothing at all; only then may the BOS probe go out, and a server that adds its own BOS gets
 * the prompts planned again without it. Returns 0, or -1 (err) when the run cannot start. */
static int plan_checked(struct ctx *c, bool *go, char *err)
{
    if (plan_run(c, go, err) < 0)
        return -1;
    *go = preflight(c) && *go;
    *go = *go && pressure_fits(c);
    if (!*go || *c->interrupted)
        return 0;
    decide_bos(c);
    if (!c->form.no_bos)
        return 0;
    reset_plan(c);
    json_decref(c->rs.preflight);
    c->rs.preflight = NULL;
    if (plan_run(c, go, err) < 0)
        return -1;
    *go = preflight(c) && *go;
    *go = *go && pressure_fits(c);
    return 0;
}

/* Every planned phase in turn, with a snapshot around the whole; a phase that may not run (a
 * failed one before it, the scenario's before_phase, SIGINT) is skipped. */
static void run_phases(struct ctx *c, const struct scenario *sc, struct run_outcome *out, char *err)
{
    const struct run_config *cfg = c->cfg;
    bool go = true;
    lazy_start(c);
    struct kv_snapshot start;
    snapshot(c, "run_start", &start);
    kvsnap_free(&start);
    for (size_t i = 0; i < c->rs.n_phases; i++) {
        struct phase_state *ps = &c->rs.phases[i];
        if (!go || *c->interrupted) {
            ps->skipped = true;
            continue;
        }
        if (sc && sc->before_phase && sc->before_phase(&c->planner, i, err) < 0) {
            log_error("phase %s: %s", ps->name, err);
            validity_add(&c->v, "runtime_exception",
                         json_pack("{s:s, s:s}", "phase", ps->name, "message", err));
            ps->skipped = true;
            go = false;
            continue;
        }
        if (c->shard && shard_gate(c->shard, i, ps->name, c->interrupted, &c->v, &ps->t0_ns) < 0) {
            ps->skipped = true; /* interrupted, or a shard did not come (shard_missing) */
            go = false;
            continue;
        }
        /* a shard reads the "before" figures once the barrier has passed and before the phase's
         * common start, so that the node scrapes do not delay its schedule; one process reads
         * them once its phase is due, as always */
        bool io0 = c->shard ? phase_before(c, ps) : false;
        wait_until(ps->t0_ns, c->interrupted);
        if (*c->interrupted) {
            ps->skipped = true;
            continue;
        }
        if (!c->shard)
            io0 = phase_before(c, ps);
        run_phase(c, ps, io0);
        bool told = !c->shard || shard_done(c->shard, i, ps->wall_end_s, &c->v) == 0;
        out->requests_sent += ps->res.n;
        if (*c->interrupted)
            continue;
        go = judge_phase(c, ps) && told; /* a shard the others cannot see goes no further */
        if (c->lg.row_errors || atomic_load(&c->lg.response_write_failures)) {
            /* the results disk failed: nothing more can be measured and kept */
            log_error("the results could not be written (%s); remaining phases skipped",
                      c->lg.row_errors ? c->lg.row_error : "a response file");
            go = false;
        }
    }
    lazy_join(c);
    struct kv_snapshot end;
    snapshot(c, "run_end", &end);
    kvsnap_free(&end);
    size_t under = atomic_load(&c->lg.usage_below_events);
    if (under)
        warn(c, "usage_below_stream",
             "%zu streamed answers reported usage.completion_tokens below the number of their "
             "events that carried output (each carries a token or more): the server's usage "
             "under-counts, so the *_usage output rates are low and TPOT (from usage) high; "
             "output_tokens_est counts from the stream",
             under);
    char merr[ERR_LEN];
    c->rs.model_count_end = server_models(cfg->base_url, cfg->api_key, 10, NULL, 0, NULL, merr);
    if (c->rs.model_count_end == SERVER_UNREACHABLE) {
        judge_gone_at_end(c, merr);
        c->rs.model_count_end = -1;
    }
    /* a Prometheus server is read once the phases are over (its windows are theirs) */
    run_nodes_prometheus(c->nodes, &c->rs, c->dir, c->interrupted, c->rs.warnings);
}

/* Requests sent in every phase; *refused: of them, those that never connected. */
static size_t count_requests(const struct ctx *c, size_t *refused)
{
    size_t total = 0;
    *refused = 0;
    for (size_t i = 0; i < c->rs.n_phases; i++)
        for (size_t k = 0; k < c->rs.phases[i].res.n_aggs; k++) {
            total += c->rs.phases[i].res.aggs[k].total;
            *refused += c->rs.phases[i].res.aggs[k].refused;
        }
    return total;
}

/* Nothing measured succeeded, and prompts the server truncated (SPEC §4.5). */
static void judge_requests(struct ctx *c)
{
    size_t measured = 0, measured_ok = 0, truncated = 0;
    json_t *trunc_rows = json_array();
    for (size_t i = 0; i < c->rs.n_phases; i++) {
        const struct phase_state *ps = &c->rs.phases[i];
        for (size_t k = 0; k < ps->res.n_aggs; k++) {
            const struct phase_agg *a = &ps->res.aggs[k];
            for (size_t t = 0; t < a->n_trunc; t++)
                if (json_array_size(trunc_rows) < LOADGEN_TRUNC_SAMPLES)
                    json_array_append_new(
                        trunc_rows,
                        json_pack("{s:s, s:s, s:I, s:I}", "phase", ps->name, "prompt_id",
                                  a->trunc[t].prompt_id, "prompt_tokens_sent",
                                  (json_int_t)a->trunc[t].sent, "usage_prompt_tokens",
                                  (json_int_t)a->trunc[t].usage));
            truncated += a->truncated;
            if (!ps->included)
                continue;
            measured += a->total;
            measured_ok += a->ok;
        }
    }
    /* nothing succeeded: that, not the error rate it implies, is the reason */
    if (measured_ok == 0 && measured > 0 && c->v.reason &&
        strcmp(c->v.reason, "error_rate_exceeded") == 0)
        c->v.reason = NULL;
    if (measured_ok == 0 && !*c->interrupted && (measured > 0 || !c->v.reason))
        validity_add(
            &c->v, "no_successful_requests",
            json_pack("{s:s, s:I}", "message",
                      measured ? "no measured request succeeded" : "no measured request was sent",
                      "measured_requests", (json_int_t)measured));
    if (truncated)
        validity_add(&c->v, "server_truncated_prompts",
                     json_pack("{s:s, s:I, s:s, s:o}", "message",
                               "the server reported fewer prompt tokens than were sent: it "
                               "truncated prompts, so their TTFT belongs to shorter prompts",
                               "requests", (json_int_t)truncated, "tolerance",
                               strcmp(c->tok->kind, "heuristic") == 0
                                   ? "20% (heuristic token counts)"
                                   : "1 token (exact tokenizer)",
                               "examples", trunc_rows));
    else
        json_decref(trunc_rows);
}

/* No KV metrics snapshot succeeded: reuse the responses reported (cached tokens, timings) is
 * evidence in its own right, so with it such a run is valid and only its tier detail is
 * missing; without it the run is invalid unless --allow-missing-kvbm-metrics. */
static void judge_metrics(struct ctx *c, size_t total)
{
    const struct run_config *cfg = c->cfg;
    bool per_response = false;
    for (size_t i = 0; i < c->rs.n_phases; i++)
        for (size_t k = 0; k < c->rs.phases[i].res.n_aggs; k++)
            per_response |= c->rs.phases[i].included && c->rs.phases[i].res.aggs[k].any_cached;
    if (total > 0 && cfg->scen.kv_mode != KV_MODE_OFF && c->rs.snapshot_ok == 0 && per_response)
        warn(c, "tier_detail_unavailable",
             "no KV metrics snapshot succeeded (%s): reuse is read from the responses' own "
             "fields (cached_tokens_source in requests.jsonl); which tier served it, and blocks "
             "offloaded or onboarded, are unavailable",
             c->rs.metrics_url[0] ? c->rs.metrics_url : "no metrics URL");
    else if (total > 0 && cfg->scen.kv_mode != KV_MODE_OFF && !cfg->allow_missing_kvbm_metrics &&
             c->rs.snapshot_ok == 0)
        validity_add(&c->v, "kvbm_metrics_unavailable",
                     json_pack("{s:s, s:s, s:I}", "message",
                               "no KV metrics snapshot succeeded (use --allow-missing-kvbm-metrics "
                               "to accept this)",
                               "metrics_url", c->rs.metrics_url, "snapshots",
                               (json_int_t)c->rs.snapshot_count));
}

/* The run as a whole, once every phase ran: the rules of SPEC §4.5 that need all of it. */
static void judge_run(struct ctx *c)
{
    size_t refused;
    size_t total = count_requests(c, &refused);
    /* Connection refused throughout: nothing ever reached the server. */
    if (total > 0 && refused == total && !c->v.reason)
        validity_add(&c->v, "server_unreachable",
                     json_pack("{s:s, s:I}", "message",
                               "every request failed to connect to the server", "requests",
                               (json_int_t)total));
    judge_requests(c);
    judge_metrics(c, total);
}

static void free_ctx(struct ctx *c)
{
    lazy_join(c); /* never left running, whatever path ends the run */
    for (size_t i = 0; i < c->rs.n_phases; i++) {
        struct phase_state *p = &c->rs.phases[i];
        free(p->prompts);
        phase_result_free(&p->res);
        kvsnap_free(&p->before);
        kvsnap_free(&p->after);
        json_decref(p->kv_delta);
        json_decref(p->io_delta);
        json_decref(p->telemetry);
        json_decref(p->nodes);
    }
    free(c->rs.phases);
    for (size_t s = 0; s < c->n_sets; s++)
        prompts_free(c->sets[s], is_lazy(c, c->sets[s]) ? c->lazy.ring : c->set_n[s]);
    free(c->sets);
    free(c->set_n);
    const struct scenario *sc = scenario_find(c->cfg->scen.scenario);
    if (sc && sc->free_state && c->rs.scenario_state)
        sc->free_state(c->rs.scenario_state);
    json_decref(c->rs.preflight);
    json_decref(c->rs.ctx_limit);
    json_decref(c->rs.telemetry);
    tokenizer_free(c->owned);
    telemetry_free(c->tel);
    run_nodes_free(c->nodes);
    json_decref(c->notes);
    json_decref(c->pressure_plan);
    json_decref(c->rs.warnings);
    json_decref(c->rs.bos);
    json_decref(c->chat_template);
    json_decref(c->last_metrics);
    json_decref(c->write_errors);
    json_decref(c->rs.shard);
    shard_run_free(c->shard);
    validity_free(&c->v);
    if (c->lg_ready)
        loadgen_free(&c->lg);
    if (c->snapshots)
        fclose(c->snapshots);
}

/* Other nodes (--scrape, --prometheus-url); values the flags did not check leave them out. */
static void start_nodes(struct ctx *c)
{
    const struct run_config *cfg = c->cfg;
    struct run_nodes_config nc = {cfg->scrape,
                                  cfg->n_scrape,
                                  cfg->prometheus_url,
                                  cfg->prometheus_match,
                                  cfg->prometheus_timeout_s,
                                  cfg->kvbm_metrics_timeout_s};
    char err[ERR_LEN] = "";
    c->nodes = run_nodes_new(&nc, err);
    if (!c->nodes && *err) {
        log_error("other nodes: %s", err);
        note(c, "other nodes' metrics not read: see the log");
    }
}

static void ctx_init(struct ctx *c, const struct run_config *cfg,
                     const volatile sig_atomic_t *interrupted)
{
    memset(c, 0, sizeof *c);
    c->cfg = cfg;
    c->interrupted = interrupted;
    scen_config_of(cfg, &c->scfg);
    c->rs.cfg = &c->scfg;
    c->rs.model_count_end = -1;
    validity_init(&c->v);
    c->notes = json_array();
    c->rs.warnings = json_array();
    c->write_errors = json_array();
    start_nodes(c);
}

/* The outcome the command reports: valid or why not; failed artifact writes said in one line. */
static void outcome_of(const struct ctx *c, struct run_outcome *out)
{
    out->valid = c->v.reason == NULL;
    if (c->write_failures) {
        const json_t *e0 = json_array_get(c->write_errors, 0);
        log_error("the run is invalid: %zu artifact writes failed (first: %s: %s)",
                  c->write_failures, json_get_str(e0, "file", "?"), json_get_str(e0, "error", "?"));
    }
    if (c->v.reason)
        snprintf(out->invalid_reason, sizeof out->invalid_reason, "%s", c->v.reason);
}

int bench_run(const struct run_config *cfg, const volatile sig_atomic_t *interrupted,
              struct run_outcome *out, char *err)
{
    memset(out, 0, sizeof *out);
    struct ctx c;
    ctx_init(&c, cfg, interrupted);
    int rc = open_shard(&c, err);
    if (rc == RUN_OK)
        rc = open_run_dir(&c, out, err);
    if (rc != RUN_OK) {
        free_ctx(&c);
        return rc;
    }
    char responses_dir[PATH_MAX];
    path_in(&c, "responses", responses_dir);
    c.lg.model = c.rs.model;
    c.lg.api_key = cfg->api_key;
    c.lg.timeout_s = cfg->timeout_s;
    c.lg.gp = &cfg->gp;
    c.lg.run_id = c.rs.run_id;
    c.lg.responses_dir = cfg->store_responses ? responses_dir : NULL;
    c.lg.interrupted = interrupted;
    c.lg.grace_s = cfg->interrupt_grace_s;
    c.lg.max_response_bytes = cfg->max_response_bytes;
    c.lg.unreachable_timeout_s = cfg->unreachable_timeout_s;
    c.tok = cfg->tok ? cfg->tok : tokenizer_heuristic();
    c.lg.tok = c.tok;
    c.lg.threads = cfg->threads;
    c.lg.transport = cfg->transport;
    c.lg.progress = cfg->progress;
    c.lg.color = cfg->progress;
    c.lg.also_stop = &c.lazy.stop;
    c.lg.spill_dir = c.dir; /* measured values of long phases spill beside the artifacts */
    c.lg.progress_extra = progress_disk;
    c.lg.progress_user = &c;
    c.lg.request_rate = cfg->request_rate;
    c.lg.shape = cfg->scen.shape;
    c.lg.max_concurrency = cfg->scen.max_concurrency;
    c.lg.arrival_seed = (uint64_t)cfg->seed * 0x9e3779b97f4a7c15ull + 17;
    c.lg.slo = cfg->slo.any ? &cfg->slo : NULL;
    c.lg.endpoint = cfg->scen.endpoint;
    shard_load(c.shard, &c.lg); /* --shard: its part of the open loop */
    snprintf(c.lg.completions_url, sizeof c.lg.completions_url, "%s%s", cfg->base_url,
             endpoint_path(cfg->scen.endpoint));
    memcpy(c.rs.params_sha256, c.lg.params_sha256, sizeof c.rs.params_sha256);
    c.rs.header_keys = (const char *const *)c.lg.header_key_list;

    note_settings(&c);
    resolve_device(&c);

    resolve_engine(&c); /* where the KV metrics are, for the snapshots and the telemetry */
    if (cfg->collect_telemetry)
        start_telemetry(&c);
    /* The model first: with --tokenizer auto its id finds the tokenizer, which sizes prompts. */
    bool go = resolve_model(&c) == 0;
    if (resolve_tokenizer(&c, err) < 0) {
        free_ctx(&c);
        return RUN_FAILED;
    }
    if (go) {
        check_model_listed(&c);
        read_ctx_limit(&c);
    }
    decide_chat_template(&c);
    const struct scenario *sc = scenario_find(cfg->scen.scenario);
    if (cfg->scen.pressure_auto || (sc && sc->tiers))
        read_tier_caps(&c);
    if (plan_checked(&c, &go, err) < 0) {
        free_ctx(&c);
        return RUN_FAILED;
    }
    judge_pressure(&c);
    if (write_manifest(&c, err) < 0) {
        /* nothing sent can be recorded on this disk: send nothing, write what can be written */
        log_error("%s", err);
        write_failed(&c, "prompts_manifest.jsonl", err);
        go = false;
    }
    json_t *config = config_json(&c);
    write_json_artifact(&c, "config.json", config); /* written again at the end */
    json_decref(config);

    if (go && !*interrupted)
        run_phases(&c, sc, out, err);
    end_shard(&c);
    if (c.tel)
        finish_telemetry(&c);
    if (*interrupted)
        validity_add(&c.v, "interrupted",
                     json_pack("{s:s, s:I}", "message", "interrupted by SIGINT/SIGTERM",
                               "requests_recorded", (json_int_t)out->requests_sent));
    judge_run(&c);
    write_artifacts(&c);
    outcome_of(&c, out);
    free_ctx(&c);
    return RUN_OK;
}
