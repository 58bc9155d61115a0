/*
 * merge.c - kvbench merge: one run directory from its shards.
 *
 * A merged run is judged by the code that judges any run. The shards' artifacts are read back
 * into the record a run keeps (struct run_state): every requests.jsonl row becomes the struct
 * req_result it was written from (load/rowread.h) and is added to its phase's aggregate with the
 * load generator's own phase_agg_add (one aggregate per shard, as a run has one per thread), so
 * counts are summed and every percentile is the union's, never an average of the shards'; the
 * kept results the scenarios' verdicts read are the union's rows too. summary_build then writes
 * summary.json as for a run. What no row carries is taken once:
 *   - the engine's KV deltas of a phase, from the earliest successful before-snapshot and the
 *     latest successful after-snapshot across the shards (the shards' phases overlap, so that
 *     window holds all of them), through the run's own kvsnap_phase_delta;
 *   - what only one client saw (its block device, node and client telemetry, the engine's
 *     identity, the preflight) from the reference shard (merge_set.ref), each said in
 *     summary.json merge.notes.
 * A scenario's own object (multi_turn's rounds, a trace's windows, and their verdict) is written
 * by the scenario's own code over a state it rebuilds (scenario.merge_state) from every shard's
 * object: what only the conversations or the trace knew (the tokens each round or window could
 * reuse) adds up over the shards, the rest is the union's phases. When it cannot be rebuilt (a
 * shard missing or unfinished, an older kvbench's object) the object says so, its verdict
 * unavailable, never one shard's figures as the run's.
 * Durations are the union's span (the earliest shard's phase start to the latest shard's phase
 * end), so rates are the union's requests over it. A run is valid when every shard is: a missing
 * or unfinished shard, an invalid one or phases that started too far apart make it invalid,
 * naming the shard. Nothing is written until every input has been read: a malformed row stops
 * the merge with its FILE:LINE and leaves no directory behind.
 */
#include "run/merge.h"
#include "run/shard.h"

#include "load/rowread.h"
#include "report/html.h"
#include "report/report.h"
#include "scenario/scenario.h"
#include "verdict/summary.h"

#include "util/clock.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ the shards */

static int read_shard(const char *dir, struct merge_shard *s, char *err)
{
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    if (!fs_is_dir(dir))
        return err_set(err, "%s: not a directory (a shard's run directory is expected)", dir);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (!fs_exists(path))
        return err_set(err, "%s: no config.json: not a run directory", dir);
    if (!(s->config = json_read_file(path, err)))
        return -1;
    const json_t *sh = json_object_get(s->config, "shard");
    if (!json_is_object(sh))
        return err_set(err, "%s: config.json has no shard object: not a run of kvbench run --shard",
                       dir);
    long long count = json_get_int(sh, "count", 0);
    s->index = json_get_int(sh, "index", -1);
    if (count < 1 || s->index < 0 || s->index >= count ||
        !json_is_string(json_object_get(sh, "config_sha256")) ||
        !json_is_string(json_object_get(sh, "base_run_id")))
        return err_set(err,
                       "%s: config.json shard is not {index, count, base_run_id, config_sha256} "
                       "with 0 <= index < count",
                       dir);
    snprintf(path, sizeof path, "%s/summary.json", dir);
    if (fs_exists(path) && !(s->summary = json_read_file(path, err)))
        return -1;
    return 0;
}

static int cmp_shard(const void *a, const void *b)
{
    const struct merge_shard *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

/* The shards agree on what run they are of. */
static int check_set(struct merge_set *set, char *err)
{
    const struct merge_shard *s0 = &set->shards[0];
    const json_t *sh0 = json_object_get(s0->config, "shard");
    set->count = json_get_int(sh0, "count", 0);
    snprintf(set->base_run_id, sizeof set->base_run_id, "%s", json_get_str(sh0, "base_run_id", ""));
    for (size_t i = 1; i < set->n; i++) {
        const struct merge_shard *s = &set->shards[i];
        const json_t *sh = json_object_get(s->config, "shard");
        const char *h0 = json_get_str(sh0, "config_sha256", ""),
                   *h = json_get_str(sh, "config_sha256", "");
        if (strcmp(h, h0) != 0)
            return err_set(err,
                           "%s: config_sha256 %.12s… differs from %s's %.12s…: not shards of one "
                           "run (the flags differ)",
                           s->dir, h, s0->dir, h0);
        if (json_get_int(sh, "count", 0) != set->count)
            return err_set(err, "%s: a shard of %lld, %s a shard of %lld: not shards of one run",
                           s->dir, json_get_int(sh, "count", 0), s0->dir, set->count);
        if (strcmp(json_get_str(sh, "base_run_id", ""), set->base_run_id) != 0)
            return err_set(err, "%s: base_run_id '%s', %s '%s': not shards of one run", s->dir,
                           json_get_str(sh, "base_run_id", ""), s0->dir, set->base_run_id);
        if (s->index == set->shards[i - 1].index)
            return err_set(err, "%s and %s are both shard %lld of %lld", set->shards[i - 1].dir,
                           s->dir, s->index, set->count);
    }
    set->ref = &set->shards[0];
    for (size_t i = 0; i < set->n; i++)
        if (set->shards[i].summary) {
            set->ref = &set->shards[i];
            break;
        }
    return 0;
}

int merge_open(const char *const *dirs, size_t n, struct merge_set *set, char *err)
{
    memset(set, 0, sizeof *set);
    if (n == 0)
        return err_set(err, "no shard directory given");
    if (!(set->shards = calloc(n, sizeof *set->shards)))
        return err_set(err, "out of memory");
    set->n = n;
    for (size_t i = 0; i < n; i++)
        if (read_shard(dirs[i], &set->shards[i], err) < 0)
            return -1;
    qsort(set->shards, n, sizeof *set->shards, cmp_shard);
    return check_set(set, err);
}

void merge_close(struct merge_set *set)
{
    for (size_t i = 0; set->shards && i < set->n; i++) {
        json_decref(set->shards[i].config);
        json_decref(set->shards[i].summary);
    }
    free(set->shards);
    memset(set, 0, sizeof *set);
}

/* ------------------------------------------------------------ the merged record */

/* A result kept for the scenarios' verdicts, with the prompt fields it points at. */
struct kept {
    struct req_result q;
    struct prompt p;
    char cached_source[64];
    double start_s;
    size_t shard;
};

/* What the merge gathers for one phase beside its struct phase_state. */
struct mphase {
    struct kept *kept;
    size_t n_kept, cap_kept;
    bool too_many; /* more rows than LOADGEN_KEEP_RESULTS: none kept, as a run keeps none */
    /* the kept results' prompts and reuse sources (phase_state.res.reqs point into them) */
    struct prompt *prompts;
    char (*sources)[64];
    double rows_t0, rows_t1; /* the span of the rows of shards without a summary */
    /* the snapshots around it: the earliest before, the latest after (index into snaps) */
    long before, after;
};

/* One row of requests.jsonl, for writing them in start order. */
struct row_ref {
    double start_s;
    size_t shard;
    long long off;
    size_t len;
};

/* One snapshot row of a shard. */
struct snap {
    json_t *row; /* the row as written, "shard" added */
    size_t shard;
    double at; /* when: the phase's started_at / ended_at where known, else its timestamp */
};

struct mctx {
    const struct merge_set *set;
    const struct merge_options *o;
    struct scen_config scfg;
    struct run_state rs;
    struct validity v;
    json_t *notes;     /* summary.json notes (the reference shard's) */
    json_t *mnotes;    /* summary.json merge.notes */
    json_t *container; /* {image, image_id} of the reference shard's fingerprint */
    json_t *merged_by; /* the fingerprint of the machine that merged */
    struct mphase *mp; /* one per rs.phases */
    struct row_ref *rows;
    size_t n_rows, cap_rows;
    size_t *shard_rows; /* rows per shard (merge_set order) */
    const char *header_keys[LOADGEN_MAX_HEADER_KEYS];
    struct snap *snaps;
    size_t n_snaps, cap_snaps;
    long run_start, run_end; /* index into snaps, -1: none */
    double skew_s;
    /* the shards' clock offsets (shard.clock_offset_s, merge_set order), when every shard
     * recorded one: the phases' starts are then compared on the sync directory's clock */
    double *offsets;
    bool offsets_known;
    double clock_spread_s;
    char dir[PATH_MAX];
};

static void mnote(struct mctx *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void mnote(struct mctx *m, const char *fmt, ...)
{
    char text[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    json_array_append_new(m->mnotes, json_string(text));
}

/* The shard's phase summary of phase name, or NULL (no summary, or the phase is not in it). */
static const json_t *shard_phase(const struct merge_shard *s, const char *name)
{
    size_t i;
    const json_t *ps;
    json_array_foreach(json_object_get(s->summary, "phase_summaries"), i, ps)
    {
        if (strcmp(json_get_str(ps, "phase", ""), name) == 0)
            return ps;
    }
    return NULL;
}

static long phase_index(const struct mctx *m, const char *name)
{
    for (size_t i = 0; i < m->rs.n_phases; i++)
        if (strcmp(m->rs.phases[i].name, name) == 0)
            return (long)i;
    return -1;
}

/* The phases as the reference shard planned them (config.json phases), with every shard's
 * concurrency and planned requests summed. */
static int plan_phases(struct mctx *m, char *err)
{
    const json_t *plan = json_object_get(m->set->ref->config, "phases");
    size_t n = json_array_size(plan);
    m->rs.phases = calloc(n ? n : 1, sizeof *m->rs.phases);
    m->mp = calloc(n ? n : 1, sizeof *m->mp);
    if (!m->rs.phases || !m->mp)
        return err_set(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *p = json_array_get(plan, i);
        struct phase_state *ps = &m->rs.phases[m->rs.n_phases++];
        snprintf(ps->name, sizeof ps->name, "%s", json_get_str(p, "name", "?"));
        ps->included = json_get_bool(p, "include_in_overall", false);
        ps->set = json_get_str(p, "prompt_set", "");
        snprintf(ps->first_prompt_id, sizeof ps->first_prompt_id, "%s",
                 json_get_str(p, "first_prompt_id", ""));
        ps->models_after = -1;
        m->mp[i].before = m->mp[i].after = -1;
        m->mp[i].rows_t0 = INFINITY;
        m->mp[i].rows_t1 = -INFINITY;
        if (!(ps->res.aggs = calloc(m->set->n, sizeof *ps->res.aggs)))
            return err_set(err, "out of memory");
        ps->res.n_aggs = m->set->n;
        for (size_t k = 0; k < m->set->n; k++)
            phase_agg_init(&ps->res.aggs[k], NULL); /* spills to $TMPDIR: no directory yet */
    }
    for (size_t k = 0; k < m->set->n; k++) {
        size_t i;
        const json_t *p;
        json_array_foreach(json_object_get(m->set->shards[k].config, "phases"), i, p)
        {
            long pi = phase_index(m, json_get_str(p, "name", ""));
            if (pi < 0)
                return err_set(err, "%s: config.json plans phase '%s', which %s does not",
                               m->set->shards[k].dir, json_get_str(p, "name", ""),
                               m->set->ref->dir);
            m->rs.phases[pi].concurrency += (size_t)json_get_int(p, "concurrency", 0);
            m->rs.phases[pi].n += (size_t)json_get_int(p, "requests", 0);
        }
    }
    return 0;
}

/* ------------------------------------------------------------ rows */

static void drop_kept(struct mphase *mp)
{
    for (size_t i = 0; i < mp->n_kept; i++)
        free(mp->kept[i].q.error);
    free(mp->kept);
    mp->kept = NULL;
    mp->n_kept = mp->cap_kept = 0;
}

/* Keep the row's result for the verdicts (its error moves into the kept one), as a run keeps
 * the results of a phase of at most LOADGEN_KEEP_RESULTS requests. */
static int keep_result(struct mphase *mp, struct row_read *r, size_t shard, char *err)
{
    if (mp->too_many)
        return 0;
    if (mp->n_kept == LOADGEN_KEEP_RESULTS) {
        drop_kept(mp);
        mp->too_many = true;
        return 0;
    }
    if (mp->n_kept == mp->cap_kept) {
        size_t cap = mp->cap_kept ? mp->cap_kept * 2 : 64;
        struct kept *nk = realloc(mp->kept, cap * sizeof *nk);
        if (!nk)
            return err_set(err, "out of memory");
        mp->kept = nk;
        mp->cap_kept = cap;
    }
    struct kept *k = &mp->kept[mp->n_kept++];
    k->q = r->q;
    k->p = r->prompt;
    snprintf(k->cached_source, sizeof k->cached_source, "%s", r->cached_source);
    k->start_s = r->start_s;
    k->shard = shard;
    r->q.error = NULL;
    return 0;
}

static int add_row_ref(struct mctx *m, double start_s, size_t shard, long long off, size_t len,
                       char *err)
{
    if (m->n_rows == m->cap_rows) {
        size_t cap = m->cap_rows ? m->cap_rows * 2 : 1024;
        struct row_ref *nr = realloc(m->rows, cap * sizeof *nr);
        if (!nr)
            return err_set(err, "out of memory");
        m->rows = nr;
        m->cap_rows = cap;
    }
    m->rows[m->n_rows++] = (struct row_ref){start_s, shard, off, len};
    return 0;
}

/* One row into its phase: its shard's aggregate (as a request into its thread's), the results
 * kept for the verdicts, the rows to write. */
static int take_row(struct mctx *m, size_t shard, struct row_read *r, long long off, size_t len,
                    const struct slo *slo, char *err)
{
    long pi = phase_index(m, r->phase);
    if (pi < 0)
        return err_set(err, "phase '%s' is not among %s's config.json phases", r->phase,
                       m->set->ref->dir);
    struct phase_state *ps = &m->rs.phases[pi];
    struct mphase *mp = &m->mp[pi];
    phase_agg_add(&ps->res.aggs[shard], slo, &r->q, r->itl.v, r->itl.n);
    ps->res.n++;
    ps->res.errors += !r->q.ok;
    if (!m->set->shards[shard].summary) { /* its phases' times are unknown: its rows' span */
        mp->rows_t0 = r->start_s < mp->rows_t0 ? r->start_s : mp->rows_t0;
        mp->rows_t1 = r->end_s > mp->rows_t1 ? r->end_s : mp->rows_t1;
    }
    if (!m->rs.params_sha256[0])
        snprintf(m->rs.params_sha256, sizeof m->rs.params_sha256, "%s", r->params_sha256);
    if (keep_result(mp, r, shard, err) < 0)
        return -1;
    return add_row_ref(m, r->start_s, shard, off, len, err);
}

/* A shard's requests.jsonl, row by row. The last line of a shard that did not finish may be torn
 * (killed while writing): it is left out and said. Anywhere else a row that cannot be read stops
 * the merge with its FILE:LINE. */
static int read_rows(struct mctx *m, size_t shard, const struct slo *slo, char *err)
{
    const struct merge_shard *s = &m->set->shards[shard];
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/requests.jsonl", s->dir);
    FILE *f = fopen(path, "r");
    if (!f && errno == ENOENT && !s->summary)
        return 0; /* killed before it sent anything */
    if (!f)
        return err_set(err, "%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    long long off = 0;
    ssize_t len;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) > 0) {
        lineno++;
        bool torn = line[len - 1] != '\n';
        size_t body = (size_t)len - !torn;
        struct row_read r;
        char rerr[ERR_LEN];
        if (row_read(line, body, &r, rerr) < 0) {
            if (torn && !s->summary)
                mnote(m, "%s:%zu: a torn last row of a shard that did not finish, left out", path,
                      lineno);
            else
                rc = err_set(err, "%s:%zu: %s", path, lineno, rerr);
        } else if (take_row(m, shard, &r, off, body, slo, rerr) < 0) {
            rc = err_set(err, "%s:%zu: %s", path, lineno, rerr);
        } else {
            m->shard_rows[shard]++;
        }
        row_read_free(&r);
        off += len;
    }
    if (rc == 0 && ferror(f))
        rc = err_set(err, "%s: %s", path, strerror(errno));
    free(line);
    fclose(f);
    return rc;
}

/* ------------------------------------------------------------ snapshots */

static int add_snap(struct mctx *m, json_t *row, size_t shard, double at, char *err)
{
    if (m->n_snaps == m->cap_snaps) {
        size_t cap = m->cap_snaps ? m->cap_snaps * 2 : 32;
        struct snap *ns = realloc(m->snaps, cap * sizeof *ns);
        if (!ns)
            return err_set(err, "out of memory");
        m->snaps = ns;
        m->cap_snaps = cap;
    }
    json_object_set_new(row, "shard", json_integer(m->set->shards[shard].index));
    m->snaps[m->n_snaps++] = (struct snap){row, shard, at};
    return 0;
}

/* A snapshot row: an object with a label and a UTC timestamp. Returns the row (new reference),
 * or NULL with err. */
static json_t *snap_row(const char *line, size_t len, double *at, char *err)
{
    json_error_t je;
    json_t *o = json_loadb(line, len, 0, &je);
    if (!o) {
        err_set(err, "not JSON: %s", je.text);
        return NULL;
    }
    if (!json_is_string(json_object_get(o, "label")) ||
        clock_parse_iso(json_get_str(o, "timestamp_utc", ""), at) < 0) {
        json_decref(o);
        err_set(err, "not a metrics snapshot (no label, or no UTC timestamp_utc)");
        return NULL;
    }
    return o;
}

/* A shard's kvbm_metrics_snapshots.jsonl, as read_rows reads its rows. */
static int read_snaps(struct mctx *m, size_t shard, char *err)
{
    const struct merge_shard *s = &m->set->shards[shard];
    char path[PATH_MAX + 40];
    snprintf(path, sizeof path, "%s/kvbm_metrics_snapshots.jsonl", s->dir);
    FILE *f = fopen(path, "r");
    if (!f && errno == ENOENT) {
        mnote(m, "%s: none; this shard's snapshots are not among those merged", path);
        return 0;
    }
    if (!f)
        return err_set(err, "%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) > 0) {
        lineno++;
        bool torn = line[len - 1] != '\n';
        double at;
        char rerr[ERR_LEN];
        json_t *row = snap_row(line, (size_t)len - !torn, &at, rerr);
        if (!row && torn && !s->summary)
            mnote(m, "%s:%zu: a torn last snapshot of a shard that did not finish, left out", path,
                  lineno);
        else if (!row)
            rc = err_set(err, "%s:%zu: %s", path, lineno, rerr);
        else if (add_snap(m, row, shard, at, rerr) < 0) {
            json_decref(row);
            rc = err_set(err, "%s", rerr);
        }
    }
    if (rc == 0 && ferror(f))
        rc = err_set(err, "%s: %s", path, strerror(errno));
    free(line);
    fclose(f);
    return rc;
}

static bool snap_ok(const struct mctx *m, long j)
{
    return json_is_true(json_object_get(m->snaps[j].row, "success"));
}

/* Whether snapshot j is to stand rather than cur: a successful one over a failed one, then the
 * earlier one (earliest) or the later one. */
static bool snap_better(const struct mctx *m, long cur, long j, bool earliest)
{
    if (cur < 0)
        return true;
    if (snap_ok(m, cur) != snap_ok(m, j))
        return snap_ok(m, j);
    return earliest ? m->snaps[j].at < m->snaps[cur].at : m->snaps[j].at > m->snaps[cur].at;
}

/* The snapshots that stand for the run: the earliest run_start and before_<phase>, the latest
 * after_<phase> and run_end. */
static void choose_snaps(struct mctx *m)
{
    m->run_start = m->run_end = -1;
    for (long j = 0; j < (long)m->n_snaps; j++) {
        const char *label = json_get_str(m->snaps[j].row, "label", "");
        long *slot = NULL;
        bool earliest = true;
        if (strcmp(label, "run_start") == 0) {
            slot = &m->run_start;
        } else if (strcmp(label, "run_end") == 0) {
            slot = &m->run_end;
            earliest = false;
        } else if (strncmp(label, "before_", 7) == 0 && phase_index(m, label + 7) >= 0) {
            slot = &m->mp[phase_index(m, label + 7)].before;
        } else if (strncmp(label, "after_", 6) == 0 && phase_index(m, label + 6) >= 0) {
            slot = &m->mp[phase_index(m, label + 6)].after;
            earliest = false;
        }
        if (slot && snap_better(m, *slot, j, earliest))
            *slot = j;
    }
}

/* A snapshot row back into a struct kv_snapshot (kvsnap_json's fields). */
static void snap_of(const json_t *row, struct kv_snapshot *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->label, sizeof out->label, "%s", json_get_str(row, "label", ""));
    snprintf(out->time, sizeof out->time, "%s", json_get_str(row, "timestamp_utc", ""));
    const json_t *metrics = json_object_get(row, "metrics");
    out->success = json_is_true(json_object_get(row, "success")) && json_is_object(metrics);
    snprintf(out->error, sizeof out->error, "%s", json_get_str(row, "error", ""));
    out->metrics = out->success ? json_incref((json_t *)metrics) : NULL;
    out->malformed_lines = (size_t)json_get_int(row, "malformed_lines", 0);
    out->wrong_families = json_get_bool(row, "wrong_families", false);
    out->carried = json_get_bool(row, "carried", false);
}

/* ------------------------------------------------------------ phases */

/* The span a phase covers across the shards: each finished shard's [started_at, started_at +
 * duration_s], and the rows of those that did not finish. */
struct span {
    double t0, t1, only; /* only: the duration when one shard's interval is all there is */
    size_t parts;
};

static void span_add(struct span *sp, double t0, double t1, double dur)
{
    if (!(t1 >= t0))
        return;
    sp->t0 = sp->parts ? fmin(sp->t0, t0) : t0;
    sp->t1 = sp->parts ? fmax(sp->t1, t1) : t1;
    sp->only = dur;
    sp->parts++;
}

/* A finished shard's phase summary into the merged phase: when, its rates and threads. */
static void take_phase_load(struct phase_state *ps, const json_t *sp, struct span *span,
                            bool *achieved_known)
{
    struct phase_result *r = &ps->res;
    double st = json_get_num(sp, "started_at", 0), dur = json_get_num(sp, "duration_s", 0);
    if (st > 0) {
        span_add(span, st, st + dur, dur);
        ps->wall_start_s = ps->wall_start_s > 0 ? fmin(ps->wall_start_s, st) : st;
        ps->wall_end_s = fmax(ps->wall_end_s, json_get_num(sp, "ended_at", st + dur));
    }
    const json_t *tr = json_object_get(sp, "target_rate");
    if (tr) { /* an open loop: the shards' rates add up to the run's */
        r->open_loop = true;
        r->target_rate += json_is_number(tr) ? json_number_value(tr) : INFINITY;
        double a;
        if (json_get_num_strict(sp, "achieved_rate", &a))
            r->achieved_rate = (isnan(r->achieved_rate) ? 0 : r->achieved_rate) + a;
        else
            *achieved_known = false;
    }
    const json_t *load = json_object_get(sp, "load");
    r->threads += (size_t)json_get_int(load, "threads", 0);
    if (!r->transport)
        r->transport = json_get_str(load, "transport", NULL);
}

/* The phase's clock and load from the shards' phase summaries: whether it ran, when it started
 * and ended, the union's span (its duration_s), how the load was made. */
static void phase_load(struct mctx *m, size_t i)
{
    struct phase_state *ps = &m->rs.phases[i];
    const struct mphase *mp = &m->mp[i];
    struct span span = {0};
    bool any = false, skipped = false, achieved_known = true;
    ps->res.achieved_rate = NAN;
    for (size_t k = 0; k < m->set->n; k++) {
        const json_t *sp = shard_phase(&m->set->shards[k], ps->name);
        if (sp && json_get_bool(sp, "skipped", false))
            skipped = true;
        else if (sp) {
            any = true;
            take_phase_load(ps, sp, &span, &achieved_known);
        }
    }
    if (isfinite(mp->rows_t0)) /* rows of shards that did not finish */
        span_add(&span, mp->rows_t0, mp->rows_t1, mp->rows_t1 - mp->rows_t0);
    ps->ran = any || ps->res.n > 0;
    ps->skipped = !ps->ran && skipped;
    ps->res.duration_s = span.parts == 1 ? span.only : span.parts ? span.t1 - span.t0 : 0;
    if (!achieved_known)
        ps->res.achieved_rate = NAN;
}

static int cmp_kept(const void *a, const void *b)
{
    const struct kept *x = a, *y = b;
    if (x->start_s != y->start_s)
        return x->start_s < y->start_s ? -1 : 1;
    if (x->shard != y->shard)
        return x->shard < y->shard ? -1 : 1;
    return (x->q.request_index > y->q.request_index) - (x->q.request_index < y->q.request_index);
}

/* The kept results become the phase's results (phase_result.reqs), in start order. */
static int finish_kept(struct mphase *mp, struct phase_result *r, char *err)
{
    size_t n = mp->n_kept;
    if (mp->too_many || n == 0)
        return 0;
    qsort(mp->kept, n, sizeof *mp->kept, cmp_kept);
    r->reqs = calloc(n, sizeof *r->reqs);
    mp->prompts = calloc(n, sizeof *mp->prompts);
    mp->sources = calloc(n, sizeof *mp->sources);
    if (!r->reqs || !mp->prompts || !mp->sources)
        return err_set(err, "out of memory");
    for (size_t k = 0; k < n; k++) {
        r->reqs[k] = mp->kept[k].q;
        mp->prompts[k] = mp->kept[k].p;
        memcpy(mp->sources[k], mp->kept[k].cached_source, sizeof mp->sources[k]);
        r->reqs[k].prompt = &mp->prompts[k];
        r->reqs[k].cached_source = mp->sources[k][0] ? mp->sources[k] : NULL;
    }
    free(mp->kept); /* the errors moved into r->reqs */
    mp->kept = NULL;
    mp->n_kept = 0;
    return 0;
}

/* What only the reference shard saw of the phase: its block device's deltas, its node and
 * client telemetry, the model list after it. */
static void phase_ref(struct mctx *m, struct phase_state *ps)
{
    const json_t *sp = shard_phase(m->set->ref, ps->name);
    if (!sp)
        return;
    const json_t *v;
    if ((v = json_object_get(sp, "io_delta")) && json_is_object(v))
        ps->io_delta = json_incref((json_t *)v);
    if ((v = json_object_get(sp, "telemetry")) && json_is_object(v))
        ps->telemetry = json_incref((json_t *)v);
    if ((v = json_object_get(sp, "nodes")) && json_is_object(v))
        ps->nodes = json_incref((json_t *)v);
    ps->models_after = json_get_int(sp, "models_visible_after_phase", -1);
}

/* The engine's KV deltas of the phase, once: from the earliest before- and the latest
 * after-snapshot across the shards, by the run's own code. */
static void phase_kv(struct mctx *m, size_t i)
{
    struct phase_state *ps = &m->rs.phases[i];
    const struct mphase *mp = &m->mp[i];
    if (!ps->ran)
        return;
    if (mp->before >= 0)
        snap_of(m->snaps[mp->before].row, &ps->before);
    if (mp->after >= 0)
        snap_of(m->snaps[mp->after].row, &ps->after);
    ps->have_snaps = mp->before >= 0 && mp->after >= 0;
    ps->kv_delta = kvsnap_phase_delta(m->rs.engine, mp->before >= 0 ? &ps->before : NULL,
                                      mp->after >= 0 ? &ps->after : NULL, ps->res.duration_s);
}

static int finish_phases(struct mctx *m, char *err)
{
    choose_snaps(m);
    for (size_t i = 0; i < m->rs.n_phases; i++) {
        struct phase_state *ps = &m->rs.phases[i];
        phase_load(m, i);
        if (finish_kept(&m->mp[i], &ps->res, err) < 0)
            return -1;
        if (ps->ran)
            phase_ref(m, ps);
        phase_kv(m, i);
    }
    return 0;
}

/* ------------------------------------------------------------ the run's record */

/* v (a new reference), or null when absent. */
static json_t *or_null(const json_t *v)
{
    return v ? json_incref((json_t *)v) : json_null();
}

/* Who answered: the engine the reference shard identified (its evidence, its metrics URL). */
static void record_engine(struct mctx *m)
{
    const json_t *se = json_object_get(m->set->ref->summary, "engine"),
                 *ce = json_object_get(m->set->ref->config, "engine");
    const char *name = json_get_str(se, "name", json_get_str(ce, "name", NULL));
    const struct engine_profile *p = engine_profile_find(name);
    if (!p)
        p = &ENGINE_UNKNOWN;
    struct engine_id *id = &m->rs.engine_id;
    m->rs.engine = p;
    id->profile = p;
    snprintf(id->title, sizeof id->title, "%s", json_get_str(se, "title", p->title));
    snprintf(id->evidence, sizeof id->evidence, "%s",
             json_get_str(se, "evidence", json_get_str(ce, "evidence", "")));
    id->embedded = strncmp(id->title, "kvbench serve", 13) == 0;
    m->rs.kv_modes_apply = engine_kv_modes_apply(id);
    snprintf(m->rs.metrics_url, sizeof m->rs.metrics_url, "%s",
             json_get_str(se, "metrics_url", json_get_str(ce, "metrics_url", "")));
}

/* Every shard's warnings, each naming its shard; and the union of the response header names. */
static void record_shards(struct mctx *m)
{
    for (size_t k = 0; k < m->set->n; k++) {
        const struct merge_shard *s = &m->set->shards[k];
        size_t i;
        const json_t *w;
        json_array_foreach(json_object_get(s->summary, "warnings"), i, w)
        {
            json_t *c = json_deep_copy(w);
            json_object_set_new(c, "shard", json_integer(s->index));
            json_array_append_new(m->rs.warnings, c);
        }
        const json_t *keys = json_object_get(json_object_get(s->summary, "request_identity"),
                                             "response_header_keys_all");
        json_array_foreach(keys, i, w)
        {
            const char *key = json_string_value(w);
            bool seen = !key;
            for (size_t j = 0; j < m->rs.n_header_keys && !seen; j++)
                seen = strcmp(m->header_keys[j], key) == 0;
            if (!seen && m->rs.n_header_keys < LOADGEN_MAX_HEADER_KEYS)
                m->header_keys[m->rs.n_header_keys++] = key;
        }
        const char *created =
            json_get_str(s->summary, "created_utc", json_get_str(s->config, "created_utc", NULL));
        if (created && (!m->rs.created_utc[0] || strcmp(created, m->rs.created_utc) < 0))
            snprintf(m->rs.created_utc, sizeof m->rs.created_utc, "%s", created); /* the first */
    }
    m->rs.header_keys = m->header_keys;
}

/* What one record stands for: the reference shard's model, block device, telemetry, container
 * and notes, each said in merge.notes. */
static void record_ref(struct mctx *m)
{
    const struct merge_shard *ref = m->set->ref;
    const json_t *s = ref->summary;
    snprintf(m->rs.model, sizeof m->rs.model, "%s",
             json_get_str(s, "model_id", json_get_str(ref->config, "model_id", "")));
    m->rs.model_count_end = json_get_int(s, "model_count_end", -1);
    const json_t *bd = json_object_get(s, "block_device");
    m->rs.device = json_get_str(bd, "name", NULL);
    m->rs.device_how = json_get_str(bd, "resolved_by", "");
    snprintf(m->rs.device_error, sizeof m->rs.device_error, "%s",
             json_get_str(bd, "unavailable", "the reference shard has no summary.json"));
    const json_t *tel = json_object_get(s, "telemetry");
    if (json_get_bool(tel, "enabled", false)) {
        m->rs.telemetry = json_deep_copy(tel);
        char dir[PATH_MAX + 16];
        snprintf(dir, sizeof dir, "%s/telemetry", ref->dir);
        json_object_set_new(m->rs.telemetry, "dir", json_string(dir));
    }
    const json_t *fp = json_object_get(s, "fingerprint");
    m->container = json_pack("{s:o, s:o}", "image", or_null(json_object_get(fp, "container_image")),
                             "image_id", or_null(json_object_get(fp, "container_image_digest")));
    m->rs.container = m->container;
    const json_t *notes = json_object_get(s, "notes");
    m->notes = json_is_array(notes) ? json_deep_copy(notes) : json_array();
    mnote(m,
          "shard %lld (%s) stands for the run where one record is taken: the engine's identity, "
          "the model, the client's machine (fingerprint) and block device (io_delta), node and "
          "client telemetry, the preflight and the notes",
          ref->index, ref->dir);
    mnote(m,
          "phase_summaries[].nodes, io_delta and the I/O verdict are shard %lld's phase windows "
          "(its started_at .. ended_at), not the span of all shards (duration_s): not queried "
          "again",
          ref->index);
}

/* ------------------------------------------------------------ validity */

/* Every index 0..N-1 has its directory. */
static void judge_missing(struct mctx *m)
{
    const struct merge_set *set = m->set;
    size_t k = 0;
    for (long long i = 0; i < set->count; i++) {
        while (k < set->n && set->shards[k].index < i)
            k++;
        if (k < set->n && set->shards[k].index == i)
            continue;
        char msg[400], expected[200];
        snprintf(expected, sizeof expected, "%s-shard%lldof%lld", set->base_run_id, i, set->count);
        snprintf(msg, sizeof msg,
                 "shard %lld of %lld missing: no directory was given for it (kvbench run --shard "
                 "%lld/%lld writes <results-root>/%s)",
                 i, set->count, i, set->count, expected);
        validity_add(&m->v, "shard_incomplete",
                     json_pack("{s:s, s:I, s:I, s:n, s:s}", "message", msg, "index", (json_int_t)i,
                               "count", (json_int_t)set->count, "dir", "expected_dir", expected));
    }
}

/* Every shard finished, and is valid. */
static void judge_shards(struct mctx *m)
{
    const struct merge_set *set = m->set;
    for (size_t k = 0; k < set->n; k++) {
        const struct merge_shard *s = &set->shards[k];
        char msg[PATH_MAX + 300];
        if (!s->summary) {
            snprintf(msg, sizeof msg,
                     "%s: shard %lld of %lld did not finish (no summary.json: killed, or still "
                     "running); its %zu rows are merged",
                     s->dir, s->index, set->count, m->shard_rows[k]);
            validity_add(&m->v, "shard_incomplete",
                         json_pack("{s:s, s:s, s:I, s:I, s:I}", "message", msg, "dir", s->dir,
                                   "index", (json_int_t)s->index, "count", (json_int_t)set->count,
                                   "requests", (json_int_t)m->shard_rows[k]));
        }
    }
    for (size_t k = 0; k < set->n; k++) {
        const struct merge_shard *s = &set->shards[k];
        if (!s->summary || json_get_bool(s->summary, "run_valid", false))
            continue;
        const char *why = json_get_str(s->summary, "invalid_reason", "unknown");
        char msg[PATH_MAX + 300];
        snprintf(msg, sizeof msg, "%s: shard %lld of %lld is invalid: %s", s->dir, s->index,
                 set->count, why);
        validity_add(&m->v, "shard_invalid",
                     json_pack("{s:s, s:s, s:I, s:I, s:s, s:o}", "message", msg, "dir", s->dir,
                               "index", (json_int_t)s->index, "count", (json_int_t)set->count,
                               "shard_reason", why, "shard_details",
                               or_null(json_object_get(s->summary, "invalid_details"))));
    }
}

static json_t *shard_at(const struct merge_shard *s, double at)
{
    return json_pack("{s:s, s:I, s:f}", "dir", s->dir, "index", (json_int_t)s->index, "started_at",
                     at);
}

/* A shard's clock offset (its wall clock minus the shared sync directory's file-time clock, as
 * kvbench run --shard records it): summary.json shard.clock_offset_s, else config.json's. false
 * when neither has a number (an older kvbench, or a clock it could not read). */
static bool shard_offset(const struct merge_shard *s, double *off)
{
    const json_t *v = json_object_get(json_object_get(s->summary, "shard"), "clock_offset_s");
    if (!json_is_number(v))
        v = json_object_get(json_object_get(s->config, "shard"), "clock_offset_s");
    if (!json_is_number(v))
        return false;
    *off = json_number_value(v);
    return true;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The shards whose offset lies more than half of --max-skew-s from the median offset: those
 * whose clock is off (with a spread over --max-skew-s there is at least one). */
static json_t *clock_outliers(const struct mctx *m, struct buf *names)
{
    size_t n = m->set->n;
    double *sorted = malloc(n * sizeof *sorted);
    if (!sorted)
        return json_array();
    memcpy(sorted, m->offsets, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_double);
    double median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    free(sorted);
    json_t *out = json_array();
    for (size_t k = 0; k < n; k++) {
        const struct merge_shard *s = &m->set->shards[k];
        if (!(fabs(m->offsets[k] - median) > m->o->max_skew_s / 2))
            continue;
        json_array_append_new(out,
                              json_pack("{s:s, s:I, s:f}", "dir", s->dir, "index",
                                        (json_int_t)s->index, "clock_offset_s", m->offsets[k]));
        buf_printf(names, "%s%s (shard %lld, %+g s)", names->len ? ", " : "", s->dir, s->index,
                   m->offsets[k]);
    }
    return out;
}

/* The shards' clocks agree within --max-skew-s (the spread of their clock offsets), when every
 * shard recorded its offset; an older shard's missing offset leaves them unjudged, said. */
static void judge_clocks(struct mctx *m)
{
    const struct merge_set *set = m->set;
    struct buf none = BUF_INIT;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t k = 0; k < set->n; k++) {
        if (!shard_offset(&set->shards[k], &m->offsets[k]))
            buf_printf(&none, "%s%lld", none.len ? ", " : "", set->shards[k].index);
        lo = fmin(lo, m->offsets[k]);
        hi = fmax(hi, m->offsets[k]);
    }
    m->offsets_known = none.len == 0;
    if (!m->offsets_known) {
        mnote(m,
              "the shards' clocks are not judged: shard %s recorded no clock_offset_s (an older "
              "kvbench, or its sync directory's clock unread); the phases' started_at are "
              "compared as each shard's own clock read them",
              buf_failed(&none) ? "?" : none.data);
        buf_free(&none);
        return;
    }
    buf_free(&none);
    m->clock_spread_s = round_to(hi - lo, 3);
    mnote(m, "the phases' started_at are compared on the sync directory's clock (each shard's less "
             "its clock_offset_s)");
    if (!(hi - lo > m->o->max_skew_s))
        return;
    struct buf names = BUF_INIT;
    json_t *outliers = clock_outliers(m, &names);
    json_t *offsets = json_array();
    for (size_t k = 0; k < set->n; k++)
        json_array_append_new(offsets,
                              json_pack("{s:I, s:f}", "index", (json_int_t)set->shards[k].index,
                                        "clock_offset_s", m->offsets[k]));
    char msg[2048];
    snprintf(msg, sizeof msg,
             "the shards' clocks differ by %.3f s (more than --max-skew-s %g; each shard's clock "
             "less the sync directory's): off are %s",
             hi - lo, m->o->max_skew_s, buf_failed(&names) ? "?" : names.data);
    buf_free(&names);
    validity_add(&m->v, "shard_skew",
                 json_pack("{s:s, s:f, s:f, s:o, s:o}", "message", msg, "clock_spread_s",
                           m->clock_spread_s, "max_skew_s", m->o->max_skew_s, "outliers", outliers,
                           "clock_offsets", offsets));
}

/* The shards started each phase within --max-skew-s of each other: their own started_at, on the
 * sync directory's clock when every shard's offset is known (a shard whose clock is behind starts
 * a --start-at phase late, at the same time on its own clock). */
static void judge_skew(struct mctx *m)
{
    const struct merge_set *set = m->set;
    for (size_t i = 0; i < m->rs.n_phases; i++) {
        const char *name = m->rs.phases[i].name;
        long first = -1, last = -1;
        double t_first = 0, t_last = 0;
        for (size_t k = 0; k < set->n; k++) {
            double t = json_get_num(shard_phase(&set->shards[k], name), "started_at", 0);
            if (!(t > 0))
                continue;
            if (m->offsets_known)
                t -= m->offsets[k];
            if (first < 0 || t < t_first)
                first = (long)k, t_first = t;
            if (last < 0 || t > t_last)
                last = (long)k, t_last = t;
        }
        double spread = first >= 0 ? t_last - t_first : 0;
        if (spread > m->skew_s)
            m->skew_s = spread;
        if (!(spread > m->o->max_skew_s))
            continue;
        char msg[2 * PATH_MAX + 300];
        snprintf(msg, sizeof msg,
                 "phase %s: the shards started %.3f s apart (more than --max-skew-s %g): %s "
                 "(shard %lld) first, %s (shard %lld) last",
                 name, spread, m->o->max_skew_s, set->shards[first].dir, set->shards[first].index,
                 set->shards[last].dir, set->shards[last].index);
        validity_add(&m->v, "shard_skew",
                     json_pack("{s:s, s:s, s:f, s:f, s:o, s:o}", "message", msg, "phase", name,
                               "skew_s", round_to(spread, 3), "max_skew_s", m->o->max_skew_s,
                               "earliest", shard_at(&set->shards[first], t_first), "latest",
                               shard_at(&set->shards[last], t_last)));
    }
}

/* ------------------------------------------------------------ the documents */

/* summary.json and config.json `merge`: the shards, the skew, what was taken once. */
static json_t *merge_json(const struct mctx *m)
{
    json_t *shards = json_array();
    for (size_t k = 0; k < m->set->n; k++) {
        const struct merge_shard *s = &m->set->shards[k];
        const json_t *valid = json_object_get(s->summary, "run_valid");
        double off;
        json_array_append_new(
            shards, json_pack("{s:s, s:I, s:o, s:o, s:I, s:o}", "dir", s->dir, "index",
                              (json_int_t)s->index, "valid", or_null(valid), "invalid_reason",
                              or_null(json_object_get(s->summary, "invalid_reason")), "requests",
                              (json_int_t)m->shard_rows[k], "clock_offset_s",
                              shard_offset(s, &off) ? json_real(off) : json_null()));
    }
    return json_pack("{s:I, s:s, s:o, s:f, s:f, s:o, s:O, s:o}", "count", (json_int_t)m->set->count,
                     "base_run_id", m->set->base_run_id, "shards", shards, "skew_s",
                     round_to(m->skew_s, 3), "max_skew_s", m->o->max_skew_s, "clock_spread_s",
                     m->offsets_known ? json_real(m->clock_spread_s) : json_null(), "notes",
                     m->mnotes, "merged_by", or_null(m->merged_by));
}

/* config.json: the reference shard's, as the run's: its run id, the phases' planned requests
 * and concurrency summed over the shards, no shard object (write_docs adds the merge). */
static json_t *config_of(const struct mctx *m, const char *id)
{
    json_t *c = json_deep_copy(m->set->ref->config);
    json_object_del(c, "shard");
    json_put_str(c, "run_id", id);
    json_put_str(c, "created_utc", m->rs.created_utc);
    json_t *args = json_object_get(c, "args");
    for (const char *const *k = SHARD_PER_SHARD_ARGS; *k; k++)
        json_object_del(args, *k);
    if (json_is_object(args)) {
        json_put_str(args, "run_id", id);
        json_put_str(args, "results_root", m->o->results_root);
    }
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(c, "phases"), i, p)
    {
        long pi = phase_index(m, json_get_str(p, "name", ""));
        if (pi < 0)
            continue;
        json_put_int(p, "concurrency", (long long)m->rs.phases[pi].concurrency);
        json_put_int(p, "requests", (long long)m->rs.phases[pi].n);
    }
    return c;
}

/* summary.json client: the clients' own cost, the shards' (not the merge's): the largest peak
 * RSS, CPU time summed. */
static json_t *clients_json(const struct mctx *m)
{
    double rss = 0, user = 0, sys = 0;
    size_t n = 0;
    for (size_t k = 0; k < m->set->n; k++) {
        const json_t *c = json_object_get(m->set->shards[k].summary, "client");
        if (!c)
            continue;
        rss = fmax(rss, json_get_num(c, "peak_rss_kib", 0));
        user += json_get_num(c, "cpu_user_s", 0);
        sys += json_get_num(c, "cpu_sys_s", 0);
        n++;
    }
    return json_pack("{s:I, s:f, s:f, s:I}", "peak_rss_kib", (json_int_t)rss, "cpu_user_s", user,
                     "cpu_sys_s", sys, "clients", (json_int_t)n);
}

/* The scenario's own state (multi_turn's conversations, a trace's windows) rebuilt by the
 * scenario over the union from every shard's summary object, so that summary_build writes the
 * union's object and verdict; else *why says why not. */
static void scenario_state_of(struct mctx *m, const struct scenario *sc, char *why)
{
    const struct merge_set *set = m->set;
    const json_t **parts = calloc(set->n, sizeof *parts);
    if (!parts) {
        err_set(why, "out of memory");
        return;
    }
    size_t n = 0;
    for (size_t k = 0; k < set->n && !why[0]; k++) {
        const json_t *x = json_object_get(set->shards[k].summary, sc->extra_key);
        if (!set->shards[k].summary)
            err_set(why, "shard %lld did not finish (no summary.json)", set->shards[k].index);
        else if (!json_is_object(x))
            err_set(why, "shard %lld's summary.json has no %s", set->shards[k].index,
                    sc->extra_key);
        else
            parts[n++] = x;
    }
    if (set->n < (size_t)set->count && !why[0])
        err_set(why, "%lld of %lld shards given", (long long)set->n, set->count);
    char err[ERR_LEN];
    if (!why[0] && sc->merge_state(&m->rs, parts, n, err) < 0)
        err_set(why, "%s", err);
    free(parts);
}

/* A scenario object the merge could not rebuild: no figure of one shard presented as the run's;
 * its verdict says why it is unavailable, and each shard's object stands beside it, named. */
static json_t *unrebuilt_extra(const struct mctx *m, const struct scenario *sc, const char *why)
{
    char text[600];
    snprintf(text, sizeof text,
             "the merge could not rebuild the run's %s from its shards (%s): each shard's own "
             "figures are in shards[], over its own part of the load only",
             sc->extra_key, why);
    json_t *shards = json_array();
    for (size_t k = 0; k < m->set->n; k++) {
        const struct merge_shard *s = &m->set->shards[k];
        json_array_append_new(
            shards, json_pack("{s:I, s:s, s:o}", "index", (json_int_t)s->index, "dir", s->dir,
                              sc->extra_key, or_null(json_object_get(s->summary, sc->extra_key))));
    }
    return json_pack("{s:{s:s, s:s}, s:o}", "verdict", "signal", "unavailable", "interpretation",
                     text, "shards", shards);
}

/* summary.json by the run's summary code; a scenario's own object (multi_turn's rounds, a
 * trace's windows) by the scenario's own code over a state rebuilt from the shards' objects. */
static json_t *summary_of(struct mctx *m)
{
    const struct scenario *sc = scenario_find(m->scfg.scenario);
    char why[ERR_LEN] = "";
    if (sc && sc->extra_key && sc->merge_state)
        scenario_state_of(m, sc, why);
    else if (sc && sc->extra_key)
        err_set(why, "the scenario cannot rebuild it");
    json_t *s = summary_build(&m->rs, &m->v, m->notes);
    json_object_set_new(s, "client", clients_json(m));
    const json_t *fp = json_object_get(m->set->ref->summary, "fingerprint");
    if (fp) { /* the client's machine; the merging one is merge.merged_by */
        m->merged_by = json_incref(json_object_get(s, "fingerprint"));
        json_object_set(s, "fingerprint", (json_t *)fp);
    }
    if (!sc || !sc->extra_key)
        return s;
    if (m->rs.scenario_state) {
        mnote(m,
              "summary.json %s rebuilt by the scenario's own code over the union of the shards' "
              "rows (each round's or window's reusable tokens summed over the shards' objects), "
              "its verdict the union's",
              sc->extra_key);
        return s;
    }
    json_object_set_new(s, sc->extra_key, unrebuilt_extra(m, sc, why));
    mnote(m,
          "summary.json %s not rebuilt (%s): its verdict is unavailable, each shard's own "
          "object in %s.shards[]",
          sc->extra_key, why, sc->extra_key);
    return s;
}

/* ------------------------------------------------------------ writing */

static int cmp_row(const void *a, const void *b)
{
    const struct row_ref *x = a, *y = b;
    if (x->start_s != y->start_s)
        return x->start_s < y->start_s ? -1 : 1;
    if (x->shard != y->shard)
        return x->shard < y->shard ? -1 : 1;
    return (x->off > y->off) - (x->off < y->off);
}

/* One row as its shard wrote it, with "shard" added before its closing brace. */
static int copy_row(struct mctx *m, const struct row_ref *r, int fd, char *line, struct buf *out,
                    char *err)
{
    const struct merge_shard *s = &m->set->shards[r->shard];
    ssize_t got = pread(fd, line, r->len, (off_t)r->off);
    if (got != (ssize_t)r->len)
        return err_set(err, "%s/requests.jsonl: changed while it was merged", s->dir);
    size_t end = r->len;
    while (end && line[end - 1] != '}')
        end--;
    if (!end)
        return err_set(err, "%s/requests.jsonl: changed while it was merged", s->dir);
    buf_append(out, line, end - 1);
    buf_printf(out, ",\"shard\":%lld}\n", s->index);
    return 0;
}

/* requests.jsonl: every shard's rows once, in the order they were sent (start_ts). */
static int write_rows(struct mctx *m, FILE *f, char *err)
{
    qsort(m->rows, m->n_rows, sizeof *m->rows, cmp_row);
    size_t max = 1;
    for (size_t i = 0; i < m->n_rows; i++)
        max = m->rows[i].len > max ? m->rows[i].len : max;
    int *fds = calloc(m->set->n, sizeof *fds);
    char *line = malloc(max);
    struct buf out = BUF_INIT;
    int rc = fds && line ? 0 : err_set(err, "out of memory");
    for (size_t k = 0; fds && k < m->set->n; k++) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/requests.jsonl", m->set->shards[k].dir);
        fds[k] = m->shard_rows[k] ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        if (m->shard_rows[k] && fds[k] < 0 && rc == 0)
            rc = err_set(err, "%s: %s", path, strerror(errno));
    }
    for (size_t i = 0; rc == 0 && i < m->n_rows; i++) {
        rc = copy_row(m, &m->rows[i], fds[m->rows[i].shard], line, &out, err);
        if (rc == 0 && (out.len >= (1u << 20) || i + 1 == m->n_rows)) {
            if (buf_failed(&out) || fwrite(out.data, 1, out.len, f) != out.len)
                rc = err_set(err, "requests.jsonl: %s",
                             buf_failed(&out) ? "out of memory" : strerror(errno));
            buf_reset(&out);
        }
    }
    for (size_t k = 0; fds && k < m->set->n; k++)
        if (fds[k] >= 0)
            close(fds[k]);
    free(fds);
    free(line);
    buf_free(&out);
    return rc;
}

/* kvbm_metrics_snapshots.jsonl: the snapshots that stand for the run (run_start, each phase's
 * before and after, run_end), each naming its shard. */
static int write_snaps(struct mctx *m, FILE *f, char *err)
{
    long order[2];
    int rc = 0;
    size_t count = 0, ok = 0;
    for (size_t i = 0; rc == 0 && i <= m->rs.n_phases + 1; i++) {
        size_t n = 0;
        if (i == 0)
            order[n++] = m->run_start;
        else if (i == m->rs.n_phases + 1)
            order[n++] = m->run_end;
        else if (m->rs.phases[i - 1].ran) {
            order[n++] = m->mp[i - 1].before;
            order[n++] = m->mp[i - 1].after;
        }
        for (size_t j = 0; rc == 0 && j < n; j++) {
            if (order[j] < 0)
                continue;
            rc = json_write_line(f, m->snaps[order[j]].row, err);
            count++;
            ok += snap_ok(m, order[j]);
        }
    }
    m->rs.snapshot_count = count;
    m->rs.snapshot_ok = ok;
    return rc;
}

/* A file of the run directory written by fn. */
static int write_stream(struct mctx *m, const char *name, int (*fn)(struct mctx *, FILE *, char *),
                        char *err)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", m->dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return err_set(err, "cannot create %s: %s", path, strerror(errno));
    int rc = fn(m, f, err);
    if (fclose(f) != 0 && rc == 0)
        rc = err_set(err, "cannot write %s: %s", path, strerror(errno));
    return rc;
}

/* config.json, summary.json, the report (report.md, or --report-filename) and report.html. */
static int write_docs(struct mctx *m, const json_t *config, char *err)
{
    json_t *summary = summary_of(m);
    json_t *merge = merge_json(m);
    json_object_set(summary, "merge", merge);
    json_object_set((json_t *)config, "merge", merge);
    json_decref(merge);
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/config.json", m->dir);
    int rc = json_write_file(path, config, err);
    snprintf(path, sizeof path, "%s/summary.json", m->dir);
    if (rc == 0)
        rc = json_write_file(path, summary, err);
    char *md = rc == 0 ? report_markdown(summary, config) : NULL;
    snprintf(path, sizeof path, "%s/%s", m->dir, m->o->cfg->report_filename);
    if (rc == 0)
        rc = md ? fs_write_atomic(path, md, strlen(md), err) : err_set(err, "out of memory");
    free(md);
    json_decref(summary);
    if (rc == 0 && html_write_run(m->dir, err) < 0)
        rc = -1;
    return rc;
}

/* ------------------------------------------------------------ the merge */

static int init_ctx(struct mctx *m, const struct merge_set *set, const struct merge_options *o,
                    char *err)
{
    memset(m, 0, sizeof *m);
    m->set = set;
    m->o = o;
    m->scfg = o->cfg->scen; /* as the runner's scen_config_of */
    m->scfg.gp = &o->cfg->gp;
    m->scfg.slo = &o->cfg->slo;
    m->rs.cfg = &m->scfg;
    m->rs.model_count_end = -1;
    m->run_start = m->run_end = -1;
    validity_init(&m->v);
    m->mnotes = json_array();
    m->rs.warnings = json_array();
    m->shard_rows = calloc(set->n, sizeof *m->shard_rows);
    m->offsets = calloc(set->n, sizeof *m->offsets);
    if (!m->mnotes || !m->rs.warnings || !m->shard_rows || !m->offsets || !m->v.details)
        return err_set(err, "out of memory");
    size_t i;
    const json_t *n;
    json_array_foreach(o->notes, i, n)
    {
        json_array_append(m->mnotes, (json_t *)n);
    }
    return 0;
}

static void free_ctx(struct mctx *m)
{
    for (size_t i = 0; i < m->rs.n_phases; i++) {
        struct phase_state *ps = &m->rs.phases[i];
        phase_result_free(&ps->res);
        kvsnap_free(&ps->before);
        kvsnap_free(&ps->after);
        json_decref(ps->kv_delta);
        json_decref(ps->io_delta);
        json_decref(ps->telemetry);
        json_decref(ps->nodes);
        if (m->mp) {
            drop_kept(&m->mp[i]);
            free(m->mp[i].prompts);
            free(m->mp[i].sources);
        }
    }
    free(m->rs.phases);
    free(m->mp);
    free(m->rows);
    free(m->shard_rows);
    free(m->offsets);
    for (size_t j = 0; j < m->n_snaps; j++)
        json_decref(m->snaps[j].row);
    free(m->snaps);
    json_decref(m->notes);
    json_decref(m->mnotes);
    json_decref(m->container);
    json_decref(m->merged_by);
    json_decref(m->rs.warnings);
    json_decref(m->rs.telemetry);
    const struct scenario *sc = m->scfg.scenario ? scenario_find(m->scfg.scenario) : NULL;
    if (sc && sc->free_state && m->rs.scenario_state)
        sc->free_state(m->rs.scenario_state);
    validity_free(&m->v);
}

/* Everything read and judged, nothing written: the phases from every shard's rows and
 * snapshots, the record, the validity. */
static int gather(struct mctx *m, char *err)
{
    const struct run_config *cfg = m->o->cfg;
    char why[256];
    const struct slo *slo =
        cfg->slo.any && slo_judgeable(&cfg->slo, cfg->gp.stream, why, sizeof why) ? &cfg->slo
                                                                                  : NULL;
    if (plan_phases(m, err) < 0)
        return -1;
    record_engine(m);
    for (size_t k = 0; k < m->set->n; k++)
        if (read_rows(m, k, slo, err) < 0 || read_snaps(m, k, err) < 0)
            return -1;
    if (finish_phases(m, err) < 0)
        return -1;
    record_shards(m);
    record_ref(m);
    judge_missing(m);
    judge_shards(m);
    judge_clocks(m);
    judge_skew(m);
    return 0;
}

int merge_write(const struct merge_set *set, const struct merge_options *o,
                struct merge_outcome *out, char *err)
{
    memset(out, 0, sizeof *out);
    const char *id = o->run_id ? o->run_id : set->base_run_id;
    if (run_id_valid(id, err) < 0)
        return RUN_USAGE;
    struct mctx m;
    if (init_ctx(&m, set, o, err) < 0) {
        free_ctx(&m);
        return RUN_FAILED;
    }
    snprintf(m.dir, sizeof m.dir, "%s/%s", o->results_root, id);
    snprintf(m.rs.run_id, sizeof m.rs.run_id, "%s", id);
    snprintf(out->run_dir, sizeof out->run_dir, "%s", m.dir);
    int rc = RUN_OK;
    if (fs_exists(m.dir)) {
        err_set(err, "%s exists: a run directory is never overwritten (give --run-id)", m.dir);
        rc = RUN_USAGE;
    } else if (gather(&m, err) < 0) {
        rc = RUN_USAGE;
    } else if ((rc = fs_mkdir_new(m.dir, err)) < 0) {
        rc = rc == FS_EEXIST ? RUN_USAGE : RUN_FAILED;
    }
    json_t *config = rc == RUN_OK ? config_of(&m, id) : NULL;
    if (rc == RUN_OK && (write_stream(&m, "requests.jsonl", write_rows, err) < 0 ||
                         write_stream(&m, "kvbm_metrics_snapshots.jsonl", write_snaps, err) < 0 ||
                         write_docs(&m, config, err) < 0))
        rc = RUN_FAILED;
    json_decref(config);
    out->valid = rc == RUN_OK && !m.v.reason;
    if (m.v.reason)
        snprintf(out->invalid_reason, sizeof out->invalid_reason, "%s", m.v.reason);
    out->requests = m.n_rows;
    free_ctx(&m);
    return rc;
}
