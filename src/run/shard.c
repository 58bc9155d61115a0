/*
 * shard.c - a shard's part of a run and the barrier that lines its phases up with the others'
 * (see shard.h).
 *
 * The split is arithmetic on positions, the same in every phase, so that replay_A replays this
 * shard's own part of set A and the union of the shards' requests is the single process's. The
 * barrier is files, not sockets: a Kubernetes Indexed Job's pods share a volume more easily than
 * they find each other, and a file says what happened after the fact. Each file is written
 * whole (temp + rename) and names the configuration hash, so a shard started with other flags
 * is told from a slow one. A shard that stops early marks its remaining phases skipped, so that
 * the others go on without waiting out --shard-wait-s; one that never comes is waited for that
 * long and named (shard_missing). The phases' start times are wall-clock seconds that every
 * shard computes alike from the files (the latest end + SHARD_BARRIER_MARGIN_S), turned into
 * this process's monotonic time once, just before the wait.
 */
#include "run/shard.h"

#include "util/clock.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* How often a waiting shard looks for the others' files. */
#define SHARD_POLL_NS 100000000ull

/* The per-shard flags' keys, then the host-local ones (docs/RUN.md "Several client hosts"): how
 * this host logs, where its files and devices are, what it samples. They change nothing of the
 * load the shards send together: a shard at --log-level DEBUG is still a shard of the run. */
const char *const SHARD_PER_SHARD_ARGS[] = {
    "shard", "run_id", "results_root", "start_at", "shard_sync", "shard_wait_s", NULL};
const char *const SHARD_HOST_ARGS[] = {
    "log_level",      "no_progress",    "collect_telemetry", "telemetry_interval_s",
    "telemetry_pid",  "iostat_device",  "phase_io_device",   "tokenizer",
    "kvbm_cache_dir", "container_name", "report_filename",   NULL};

struct shard_run {
    struct shard_open o; /* what the run is (its strings the run's) */
    const struct shard_config *cfg;
    struct shard_spec sp;
    char dir[PATH_MAX];
    char sha[65];
    json_t *warnings;    /* borrowed: summary.json's */
    size_t next;         /* phases 0..next-1 have this shard's file */
    bool started;        /* start.shard<I> written (no --start-at) */
    double own_end;      /* this shard's end of the last phase it ran */
    double clock_offset; /* this host's clock minus the sync directory's (clock.shard<I>'s mtime) */
    char clock_why[ERR_LEN + PATH_MAX]; /* why clock_offset is not known ("" when it is) */
    bool *stopped;                      /* per shard: it marked phases skipped (warned once) */
    json_t *phases;                     /* the whole run's plan: [{name, requests, concurrency}] */
    json_t *barriers;                   /* [{phase, after, ready_at, start_at}] as the run went */
    double **scheds;                    /* filtered schedules handed out (shard_schedule) */
    size_t n_scheds, cap_scheds;
};

/* ------------------------------------------------------------ the split */

/* A decimal number of at most 9 digits filling [p, end). */
static bool decimal(const char *p, const char *end, size_t *out)
{
    if (p == end || end - p > 9)
        return false;
    size_t v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (size_t)(*p - '0');
    }
    *out = v;
    return true;
}

int shard_parse(const char *text, struct shard_spec *out, char *err)
{
    const char *slash = text ? strchr(text, '/') : NULL;
    size_t i, n;
    if (!slash || !decimal(text, slash, &i) || !decimal(slash + 1, slash + strlen(slash), &n))
        return err_set(err,
                       "--shard: expected I/N (this shard's index from 0, and the number of "
                       "shards), e.g. 0/3, got '%s'",
                       text ? text : "");
    if (n < 1 || n > SHARD_COUNT_MAX)
        return err_set(err, "--shard %s: N must be 1 to %d", text, SHARD_COUNT_MAX);
    if (i >= n)
        return err_set(err, "--shard %s: I must be below N (the shards are 0 to %zu)", text, n - 1);
    out->index = i;
    out->count = n;
    return 0;
}

size_t shard_split(size_t total, const struct shard_spec *s)
{
    if (!s || s->count == 0)
        return total;
    return total / s->count + (s->index < total % s->count);
}

size_t shard_count(size_t n, const struct shard_spec *s)
{
    if (!s || s->count == 0)
        return n;
    return n > s->index ? (n - s->index - 1) / s->count + 1 : 0;
}

size_t shard_pos(size_t k, const struct shard_spec *s)
{
    if (!s || s->count == 0)
        return k;
    return s->index + k * s->count;
}

int shard_dir_name(const char *base, const struct shard_spec *s, char *out, size_t cap)
{
    int w = snprintf(out, cap, "%s-shard%zuof%zu", base, s->index, s->count);
    return w < 0 || (size_t)w >= cap ? -1 : 0;
}

size_t shard_skip_args(const char **out, size_t cap)
{
    size_t n = 0;
    for (const char *const *k = SHARD_PER_SHARD_ARGS; *k && n + 1 < cap; k++)
        out[n++] = *k;
    for (const char *const *k = SHARD_HOST_ARGS; *k && n + 1 < cap; k++)
        out[n++] = *k;
    if (cap)
        out[n] = NULL;
    return n;
}

int shard_config_sha256(const json_t *args, char out[65])
{
    json_t *a = json_deep_copy(args);
    if (!a)
        return -1;
    for (const char *const *k = SHARD_PER_SHARD_ARGS; *k; k++)
        json_object_del(a, *k);
    for (const char *const *k = SHARD_HOST_ARGS; *k; k++)
        json_object_del(a, *k);
    int rc = json_canonical_sha256(a, out);
    json_decref(a);
    return rc;
}

void shard_load(const struct shard_run *s, struct loadgen *lg)
{
    if (!s)
        return;
    const struct shard_spec *sp = &s->sp;
    if (lg->request_rate > 0 && !isinf(lg->request_rate))
        lg->request_rate /= (double)sp->count;
    if (lg->max_concurrency) {
        size_t m = shard_split(lg->max_concurrency, sp);
        lg->max_concurrency = m ? m : 1;
    }
    if (lg->shape.arrival == ARRIVAL_CONSTANT)
        lg->arrival_offset = (double)sp->index / (double)sp->count;
    else /* streams of their own: N independent processes of R/N add up to one of R */
        lg->arrival_seed += (uint64_t)sp->index * 0x9e3779b97f4a7c15ull;
}

void shard_note_phase(struct shard_run *s, size_t k, const char *name, size_t requests,
                      size_t concurrency)
{
    json_t *row = json_pack("{s:s, s:I, s:I}", "name", name, "requests", (json_int_t)requests,
                            "concurrency", (json_int_t)concurrency);
    if (k < json_array_size(s->phases)) /* planned again (the BOS decision) */
        json_array_set_new(s->phases, k, row);
    else
        json_array_append_new(s->phases, row);
}

const double *shard_schedule(struct shard_run *s, const double *schedule, size_t n)
{
    if (s->n_scheds == s->cap_scheds) {
        size_t cap = s->cap_scheds ? 2 * s->cap_scheds : 8;
        double **ns = realloc(s->scheds, cap * sizeof *ns);
        if (!ns)
            return NULL;
        s->scheds = ns;
        s->cap_scheds = cap;
    }
    size_t m = shard_count(n, &s->sp);
    double *out = malloc((m ? m : 1) * sizeof *out);
    if (!out)
        return NULL;
    for (size_t k = 0; k < m; k++)
        out[k] = schedule[shard_pos(k, &s->sp)];
    s->scheds[s->n_scheds++] = out;
    return out;
}

/* ------------------------------------------------------------ the barrier's files */

/* The file of shard j at `stem` (start, phase<k>). */
static void mark_path(const struct shard_run *s, const char *stem, size_t j, char out[PATH_MAX])
{
    snprintf(out, PATH_MAX, "%s/%s.shard%zu", s->dir, stem, j);
}

/* Write this shard's file at stem: {shard, count, config_sha256, <key>: at, skipped}. Returns 0,
 * or -1 with err (the path and why). */
static int mark_write(struct shard_run *s, const char *stem, const char *key, double at,
                      bool skipped, char *err)
{
    char path[PATH_MAX], why[ERR_LEN];
    mark_path(s, stem, s->sp.index, path);
    json_t *o =
        json_pack("{s:I, s:I, s:s, s:f, s:b}", "shard", (json_int_t)s->sp.index, "count",
                  (json_int_t)s->sp.count, "config_sha256", s->sha, key, at, "skipped", skipped);
    int rc = 0;
    if (!o || json_write_file(path, o, why) < 0) {
        rc = err_set(err, "%s: %s", path, o ? why : "out of memory");
        log_error("shard barrier: %s (the other shards will wait for it)", err);
    }
    json_decref(o);
    return rc;
}

/* This shard could not write its barrier file: the others will miss it, so it is missing too. */
static void unwritten_validity(struct shard_run *s, const char *phase, const char *err,
                               struct validity *v)
{
    char msg[ERR_LEN + 400];
    snprintf(msg, sizeof msg,
             "shard %zu of %zu could not write its barrier file (%s) at phase %s: the other "
             "shards will not see it and go on without it (shard_missing); this shard skipped "
             "the remaining phases",
             s->sp.index, s->sp.count, err, phase);
    log_error("%s", msg);
    validity_add(v, "shard_missing",
                 json_pack("{s:s, s:s, s:[{s:I, s:s}], s:s}", "message", msg, "phase", phase,
                           "missing", "shard", (json_int_t)s->sp.index, "reason", err, "sync_dir",
                           s->dir));
}

/* What a shard's file says. */
enum mark { MARK_ABSENT, MARK_HERE, MARK_SKIPPED, MARK_OTHER_RUN };

static enum mark mark_read(const struct shard_run *s, const char *stem, size_t j, const char *key,
                           double *at, char *why, size_t why_cap)
{
    char path[PATH_MAX], err[ERR_LEN];
    mark_path(s, stem, j, path);
    if (!fs_exists(path))
        return MARK_ABSENT;
    json_t *o = json_read_file(path, err);
    const char *sha = json_get_str(o, "config_sha256", "");
    long long count = json_get_int(o, "count", -1);
    enum mark m = MARK_HERE;
    if (!o) {
        snprintf(why, why_cap, "%s is not JSON: %s", path, err);
        m = MARK_OTHER_RUN;
    } else if (count != (long long)s->sp.count) {
        snprintf(why, why_cap,
                 "its file %s says it is one of %lld shards, this shard is one of %zu: it was "
                 "started with another --shard I/N",
                 path, count, s->sp.count);
        m = MARK_OTHER_RUN;
    } else if (strcmp(sha, s->sha) != 0) {
        snprintf(why, why_cap,
                 "its file %s has config_sha256 %.12s, this shard's is %.12s: it was started "
                 "with other flags",
                 path, sha, s->sha);
        m = MARK_OTHER_RUN;
    } else if (!json_get_num_strict(o, key, at)) {
        snprintf(why, why_cap, "%s has no %s", path, key);
        m = MARK_OTHER_RUN;
    } else if (json_get_bool(o, "skipped", false)) {
        m = MARK_SKIPPED;
    }
    json_decref(o);
    return m;
}

/* Files of this shard left by an earlier run with the same id: its barrier would pass at once. */
static int stale_check(const struct shard_run *s, char *err)
{
    DIR *d = opendir(s->dir);
    if (!d)
        return 0;
    char suffix[32];
    snprintf(suffix, sizeof suffix, ".shard%zu", s->sp.index);
    size_t sl = strlen(suffix);
    const struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > sl && strcmp(e->d_name + l - sl, suffix) == 0 && e->d_name[0] != '.')
            rc = err_set(err,
                         "--shard-sync %s already holds shard %zu's %s of an earlier run: give "
                         "another --run-id or remove the directory",
                         s->dir, s->sp.index, e->d_name);
    }
    closedir(d);
    return rc;
}

/* This host's clock against the sync directory's: write clock.shard<I> there and read back the
 * modification time its file system gave it (on a network file system, the server's clock), so
 * that the shards' offsets can be compared (kvbench merge: shard_skew). */
static void clock_probe(struct shard_run *s)
{
    char path[PATH_MAX], text[96];
    mark_path(s, "clock", s->sp.index, path);
    double at = (double)clock_wall_ns() / 1e9;
    int n = snprintf(text, sizeof text, "{\"shard\": %zu, \"wall\": %.3f}\n", s->sp.index, at);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    struct stat st;
    const char *step = fd < 0                                     ? "open"
                       : write(fd, text, (size_t)n) != (ssize_t)n ? "write"
                       : fsync(fd) < 0                            ? "fsync"
                       : fstat(fd, &st) < 0                       ? "fstat"
                                                                  : NULL;
    if (step)
        snprintf(s->clock_why, sizeof s->clock_why, "%s %s: %s", step, path, strerror(errno));
    else
        s->clock_offset = at - ((double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9);
    if (fd >= 0)
        close(fd);
}

int shard_run_open(const struct shard_open *o, struct shard_run **out, char *err)
{
    *out = NULL;
    struct shard_run *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(err, "out of memory");
    const struct shard_config *cfg = o->cfg;
    s->o = *o;
    s->cfg = cfg;
    s->sp = cfg->spec;
    s->warnings = o->warnings;
    snprintf(s->sha, sizeof s->sha, "%s", o->config_sha256);
    s->stopped = calloc(s->sp.count, sizeof *s->stopped);
    s->phases = json_array();
    s->barriers = json_array();
    int w = cfg->sync_dir
                ? snprintf(s->dir, sizeof s->dir, "%s", cfg->sync_dir)
                : snprintf(s->dir, sizeof s->dir, "%s/%s.sync", o->results_root, o->base_run_id);
    int rc = 0;
    if (!s->stopped || !s->phases || !s->barriers)
        rc = err_set(err, "out of memory");
    else if (w < 0 || (size_t)w >= sizeof s->dir)
        rc = err_set(err, "--shard-sync: the path is too long");
    else if (fs_mkdir_p(s->dir, err) < 0)
        rc = -1;
    else if (stale_check(s, err) < 0)
        rc = SHARD_REFUSED;
    if (rc < 0) {
        shard_run_free(s);
        return rc;
    }
    clock_probe(s);
    log_info("shard %zu of %zu (run %s): barrier files in %s", s->sp.index, s->sp.count,
             o->base_run_id, s->dir);
    *out = s;
    return 0;
}

void shard_run_free(struct shard_run *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_scheds; i++)
        free(s->scheds[i]);
    free(s->scheds);
    free(s->stopped);
    json_decref(s->phases);
    json_decref(s->barriers);
    free(s);
}

/* ------------------------------------------------------------ waiting */

static void shard_warn(struct shard_run *s, const char *code, const char *msg)
{
    log_warn("%s", msg);
    json_array_append_new(s->warnings, json_pack("{s:s, s:s}", "code", code, "message", msg));
}

/* The name of phase k of the plan ("?" when unknown). */
static const char *phase_name(const struct shard_run *s, size_t k)
{
    return json_get_str(json_array_get(s->phases, k), "name", "?");
}

/* What a round of looking for the others' files found. */
struct await {
    bool *seen;
    double latest;   /* the latest time of the shards that did not skip */
    size_t latest_j; /* whose it is */
    json_t *missing; /* [{shard, reason}] once given up */
};

/* One look at every shard not seen yet. Returns the number still absent, or -1 when a file is of
 * another run (a->missing says which). */
static long await_look(struct shard_run *s, const char *stem, const char *key, const char *after,
                       struct await *a)
{
    long absent = 0;
    for (size_t j = 0; j < s->sp.count; j++) {
        if (a->seen[j])
            continue;
        double at = 0;
        char why[PATH_MAX + 200] = "";
        enum mark m = mark_read(s, stem, j, key, &at, why, sizeof why);
        if (m == MARK_OTHER_RUN) {
            json_array_append_new(a->missing,
                                  json_pack("{s:I, s:s}", "shard", (json_int_t)j, "reason", why));
            return -1;
        }
        if (m == MARK_ABSENT) {
            absent++;
            continue;
        }
        a->seen[j] = true;
        if (m == MARK_HERE && at > a->latest) {
            a->latest = at;
            a->latest_j = j;
        }
        if (m == MARK_SKIPPED && !s->stopped[j]) {
            s->stopped[j] = true;
            char msg[300];
            snprintf(msg, sizeof msg,
                     "shard %zu of %zu stopped %s: its part of the run is missing from there on "
                     "(its own summary says why); this shard goes on",
                     j, s->sp.count, after);
            shard_warn(s, "shard_peer_stopped", msg);
        }
    }
    return absent;
}

/* Wait until every shard's file at stem is there (this shard's own value is `own`). Returns 0
 * with *latest, 1 when interrupted, -1 when a shard did not come (*missing: who and why). */
static int await_all(struct shard_run *s, const char *stem, const char *key, const char *after,
                     double own, const volatile sig_atomic_t *interrupted, double *latest,
                     size_t *latest_j, json_t **missing)
{
    struct await a = {
        .seen = calloc(s->sp.count, sizeof(bool)), .latest = own, .latest_j = s->sp.index};
    a.missing = json_array();
    if (!a.seen || !a.missing) {
        free(a.seen);
        *missing = a.missing;
        return -1;
    }
    a.seen[s->sp.index] = true;
    uint64_t deadline = clock_now_ns() + (uint64_t)(s->cfg->wait_s * 1e9);
    int rc = 0;
    for (;;) {
        long absent = await_look(s, stem, key, after, &a);
        if (absent <= 0) {
            rc = absent < 0 ? -1 : 0;
            break;
        }
        if (*interrupted) {
            rc = 1;
            break;
        }
        if (clock_now_ns() >= deadline) {
            for (size_t j = 0; j < s->sp.count; j++)
                if (!a.seen[j])
                    json_array_append_new(a.missing, json_pack("{s:I, s:s}", "shard", (json_int_t)j,
                                                               "reason", "no barrier file"));
            rc = -1;
            break;
        }
        clock_sleep_ns(SHARD_POLL_NS, (const volatile int *)interrupted);
    }
    free(a.seen);
    *latest = a.latest;
    *latest_j = a.latest_j;
    *missing = a.missing;
    return rc;
}

/* shard_missing: who did not come to the barrier before `phase`, and why. */
static void missing_validity(struct shard_run *s, const char *phase, const char *barrier,
                             json_t *missing, double waited_s, struct validity *v)
{
    char who[200] = "";
    size_t used = 0, i;
    const json_t *m;
    json_array_foreach(missing, i, m)
    {
        int w = snprintf(who + used, sizeof who - used, "%s%lld", i ? ", " : "",
                         json_get_int(m, "shard", -1));
        if (w < 0 || (size_t)w >= sizeof who - used)
            break;
        used += (size_t)w;
    }
    const char *why = json_get_str(json_array_get(missing, 0), "reason", "no barrier file");
    char msg[ERR_LEN + 600];
    snprintf(msg, sizeof msg,
             "shard%s %s of %zu did not reach the barrier before phase %s (%s) within "
             "--shard-wait-s %g s in %s: %s; this shard skipped the remaining phases",
             json_array_size(missing) > 1 ? "s" : "", who, s->sp.count, phase, barrier,
             s->cfg->wait_s, s->dir, why);
    log_error("%s", msg);
    validity_add(v, "shard_missing",
                 json_pack("{s:s, s:s, s:s, s:O, s:f, s:s}", "message", msg, "phase", phase,
                           "barrier", barrier, "missing", missing, "waited_s", waited_s, "sync_dir",
                           s->dir));
}

/* The barrier's start is further ahead of this host's clock than any shard's end can be (they all
 * wrote their files before this shard read them): a clock is off. shard_skew naming the shard
 * whose file is ahead, rather than sleeping until then. Returns whether it was. */
static bool skew_check(struct shard_run *s, const char *phase, const char *barrier, double at,
                       size_t whose, struct validity *v)
{
    double now = (double)clock_wall_ns() / 1e9, ahead = at - now;
    double limit = shard_ahead_limit_s(s->cfg->wait_s);
    if (ahead <= limit)
        return false;
    char msg[ERR_LEN + 400];
    snprintf(msg, sizeof msg,
             "shard %zu of %zu wrote a time %.1f s ahead of this host's clock in its barrier file "
             "before phase %s (%s) in %s: its clock (or this host's) is off by more than %g s, "
             "so the shards' phases cannot be lined up; this shard skipped the remaining phases "
             "(synchronise the clocks: NTP/chrony)",
             whose, s->sp.count, ahead - SHARD_BARRIER_MARGIN_S, phase, barrier, s->dir,
             limit - SHARD_BARRIER_MARGIN_S);
    log_error("%s", msg);
    validity_add(v, "shard_skew",
                 json_pack("{s:s, s:s, s:s, s:I, s:f, s:f, s:s}", "message", msg, "phase", phase,
                           "barrier", barrier, "shard", (json_int_t)whose, "ahead_s",
                           round((ahead - SHARD_BARRIER_MARGIN_S) * 1000) / 1000, "limit_s",
                           limit - SHARD_BARRIER_MARGIN_S, "sync_dir", s->dir));
    return true;
}

double shard_ahead_limit_s(double wait_s)
{
    return (wait_s < SHARD_AHEAD_MAX_S ? wait_s : SHARD_AHEAD_MAX_S) + SHARD_BARRIER_MARGIN_S;
}

/* Wall-clock epoch seconds → this process's monotonic time (now when past). */
static uint64_t mono_of_wall(double at)
{
    uint64_t m = clock_now_ns();
    double w = (double)clock_wall_ns() / 1e9;
    return at > w ? m + (uint64_t)((at - w) * 1e9) : m;
}

/* --start-at for phase 0: late by more than a second is said (start_late), and the run goes. */
static double start_at(struct shard_run *s)
{
    double at = s->cfg->start_at, now = (double)clock_wall_ns() / 1e9;
    if (now - at > 1) {
        char msg[300];
        snprintf(msg, sizeof msg,
                 "--start-at %.3f had passed %.1f s before this shard was ready (model, "
                 "tokenizer, preflight): its first phase started %.1f s after the others'",
                 at, now - at, now - at);
        shard_warn(s, "start_late", msg);
    } else if (at > now) {
        log_info("shard %zu of %zu: waiting %.1f s for --start-at %.3f", s->sp.index, s->sp.count,
                 at - now, at);
    }
    return at;
}

int shard_gate(struct shard_run *s, size_t k, const char *phase,
               const volatile sig_atomic_t *interrupted, struct validity *v, uint64_t *t0_ns)
{
    double at;
    double t_wait = (double)clock_wall_ns() / 1e9;
    char barrier[80];
    if (k == 0 && s->cfg->start_at > 0) {
        at = start_at(s);
        snprintf(barrier, sizeof barrier, "--start-at");
    } else {
        char stem[32], after[80];
        double own = s->own_end;
        if (k == 0) {
            snprintf(stem, sizeof stem, "start");
            snprintf(after, sizeof after, "before its first phase");
            snprintf(barrier, sizeof barrier, "every shard ready");
            own = t_wait;
            char err[ERR_LEN + PATH_MAX];
            if (mark_write(s, stem, "ready", own, false, err) < 0) {
                unwritten_validity(s, phase, err, v);
                return -1;
            }
            s->started = true;
        } else {
            snprintf(stem, sizeof stem, "phase%zu", k - 1);
            snprintf(after, sizeof after, "before the end of phase %s", phase_name(s, k - 1));
            snprintf(barrier, sizeof barrier, "the end of %s", phase_name(s, k - 1));
        }
        double latest;
        size_t whose;
        json_t *missing = NULL;
        int rc = await_all(s, stem, k == 0 ? "ready" : "end", after, own, interrupted, &latest,
                           &whose, &missing);
        if (rc < 0)
            missing_validity(s, phase, barrier, missing, (double)clock_wall_ns() / 1e9 - t_wait, v);
        json_decref(missing);
        if (rc != 0)
            return -1;
        at = latest + SHARD_BARRIER_MARGIN_S;
        if (skew_check(s, phase, barrier, at, whose, v))
            return -1;
    }
    uint64_t t = mono_of_wall(at);
    if (t > *t0_ns)
        *t0_ns = t;
    /* ready_at: when this shard got here; start_at before it: the shard was late */
    json_array_append_new(s->barriers, json_pack("{s:s, s:s, s:f, s:f}", "phase", phase, "after",
                                                 barrier, "ready_at", round(t_wait * 1000) / 1000,
                                                 "start_at", round(at * 1000) / 1000));
    return 0;
}

uint64_t shard_started(struct shard_run *s, uint64_t t0_ns, uint64_t now_ns, double now_wall_s)
{
    json_t *b = json_array_get(s->barriers, json_array_size(s->barriers) - 1);
    double late = now_ns > t0_ns ? (double)(now_ns - t0_ns) / 1e9 : 0;
    json_put_real(b, "started_at", round(now_wall_s * 1000) / 1000);
    json_put_real(b, "late_s", round(late * 1000) / 1000);
    if (late <= SHARD_BARRIER_MARGIN_S) /* on time: the common schedule, any lag its own */
        return t0_ns;
    char msg[300];
    snprintf(msg, sizeof msg,
             "phase %s started %.1f s after the barrier's time: the readings before it (KV "
             "snapshot, node scrapes) took that long; its schedule starts when its load does",
             json_get_str(b, "phase", "?"), late);
    shard_warn(s, "shard_phase_late", msg);
    return now_ns;
}

int shard_done(struct shard_run *s, size_t k, double end_wall_s, struct validity *v)
{
    char stem[32], err[ERR_LEN + PATH_MAX];
    snprintf(stem, sizeof stem, "phase%zu", k);
    s->own_end = end_wall_s;
    if (mark_write(s, stem, "end", end_wall_s, false, err) < 0) {
        unwritten_validity(s, phase_name(s, k), err, v);
        return -1; /* not s->next: shard_finish tries again, as skipped */
    }
    s->next = k + 1;
    return 0;
}

void shard_finish(struct shard_run *s, size_t n_phases)
{
    double now = (double)clock_wall_ns() / 1e9;
    char err[ERR_LEN + PATH_MAX]; /* logged: the others wait for it, then name it */
    if (s->cfg->start_at <= 0 && !s->started) {
        (void)mark_write(s, "start", "ready", now, true, err);
        s->started = true;
    }
    for (size_t k = s->next; k < n_phases; k++) {
        char stem[32];
        snprintf(stem, sizeof stem, "phase%zu", k);
        (void)mark_write(s, stem, "end", now, true, err);
    }
    if (s->next < n_phases)
        s->next = n_phases;
}

/* How the open loop and the concurrency were divided. */
static json_t *split_json(const struct shard_run *s)
{
    const struct shard_open *o = &s->o;
    const struct shard_spec *sp = &s->sp;
    double r = o->request_rate;
    json_t *rate =
        r > 0 ? json_pack("{s:o, s:o}", "run", isinf(r) ? json_string("inf") : json_real(r),
                          "shard", isinf(r) ? json_string("inf") : json_real(r / (double)sp->count))
              : json_null();
    size_t mc = o->max_concurrency, mcs = shard_split(mc, sp);
    json_t *j = json_object();
    json_put(j, "request_rate", rate);
    json_put(j, "concurrency",
             json_pack("{s:I, s:I}", "run", (json_int_t)o->concurrency, "shard",
                       (json_int_t)shard_split((size_t)o->concurrency, sp)));
    json_put(
        j, "max_concurrency",
        mc ? json_pack("{s:I, s:I}", "run", (json_int_t)mc, "shard", (json_int_t)(mcs ? mcs : 1))
           : json_null());
    bool constant = r > 0 && !isinf(r) && o->arrival == ARRIVAL_CONSTANT;
    json_put(j, "arrival_offset_s", constant ? json_real((double)sp->index / r) : json_null());
    json_put_str(j, "requests",
                 "positions p with p % count == index of every phase's requests "
                 "(multi_turn: users; trace: rows)");
    return j;
}

json_t *shard_json(const struct shard_run *s)
{
    const struct shard_config *cfg = s->cfg;
    json_t *o = json_object();
    json_put_int(o, "index", (long long)s->sp.index);
    json_put_int(o, "count", (long long)s->sp.count);
    json_put_str(o, "base_run_id", s->o.base_run_id);
    json_put(o, "start_at", cfg->start_at > 0 ? json_real(cfg->start_at) : json_null());
    json_put_str(o, "sync_dir", s->dir);
    json_put_real(o, "wait_s", cfg->wait_s);
    json_put_str(o, "config_sha256", s->sha);
    /* own wall clock − the sync directory's file time; a spread across shards is clock skew */
    json_put(o, "clock_offset_s",
             s->clock_why[0] ? json_null() : json_real(round(s->clock_offset * 1000) / 1000));
    if (s->clock_why[0])
        json_put_str(o, "clock_offset_error", s->clock_why);
    json_put(o, "split", split_json(s));
    json_put(o, "phases", json_deep_copy(s->phases));
    json_put(o, "barriers", json_deep_copy(s->barriers));
    return o;
}
