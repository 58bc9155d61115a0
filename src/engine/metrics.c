/*
 * metrics.c - Prometheus text exposition of the engine.
 *
 * The API port's /metrics carries frontend metrics under Dynamo's names
 * (dynamo_frontend_*); the metrics port carries the KV manager's counters and gauges under
 * KVBM's names (kvbm_*), plus a few kvbench_* extras (tier occupancy, error counters, G1's
 * backend and its device copies) that KVBM has no name for. Histograms use fixed bucket bounds; one
 * mutex guards them, taken once per observation.
 */
#include "engine/metrics.h"

#include "engine/internal.h"

#include "util/clock.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double TIME_BOUNDS[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                     0.5,   1,      2.5,   5,    10,    30,   60,  120};
static const double TOKEN_BOUNDS[] = {16,   32,   64,   128,   256,   512,   1024,
                                      2048, 4096, 8192, 16384, 32768, 65536, 131072};

static int histo_init(struct histo *h, const double *bounds, size_t n)
{
    memset(h, 0, sizeof *h);
    h->bounds = bounds;
    h->n_bounds = n;
    h->counts = calloc(n + 1, sizeof *h->counts);
    return h->counts ? 0 : -1;
}

void histo_observe(struct histo *h, double v)
{
    size_t i = 0;
    while (i < h->n_bounds && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

int metrics_init(struct front_metrics *m)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
    size_t nt = sizeof TIME_BOUNDS / sizeof TIME_BOUNDS[0];
    size_t nk = sizeof TOKEN_BOUNDS / sizeof TOKEN_BOUNDS[0];
    if (histo_init(&m->ttft, TIME_BOUNDS, nt) < 0 || histo_init(&m->itl, TIME_BOUNDS, nt) < 0 ||
        histo_init(&m->isl, TOKEN_BOUNDS, nk) < 0 || histo_init(&m->osl, TOKEN_BOUNDS, nk) < 0 ||
        histo_init(&m->cached, TOKEN_BOUNDS, nk) < 0) {
        metrics_free(m);
        return -1;
    }
    return 0;
}

void metrics_free(struct front_metrics *m)
{
    free(m->ttft.counts);
    free(m->itl.counts);
    free(m->isl.counts);
    free(m->osl.counts);
    free(m->cached.counts);
    m->ttft.counts = m->itl.counts = m->isl.counts = m->osl.counts = m->cached.counts = NULL;
    pthread_mutex_destroy(&m->lock);
}

static void head(struct buf *o, const char *name, const char *type, const char *help)
{
    buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_histo(struct buf *o, const char *name, const char *help, const char *labels,
                         const struct histo *h)
{
    head(o, name, "histogram", help);
    uint64_t cum = 0;
    for (size_t i = 0; i <= h->n_bounds; i++) {
        cum += h->counts[i];
        if (i < h->n_bounds)
            buf_printf(o, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels, h->bounds[i],
                       (unsigned long long)cum);
        else
            buf_printf(o, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels,
                       (unsigned long long)cum);
    }
    buf_printf(o, "%s_sum{%s} %.9g\n%s_count{%s} %llu\n", name, labels, h->sum, name, labels,
               (unsigned long long)h->count);
}

void metrics_render_frontend(struct engine *e, struct buf *o)
{
    char labels[256];
    snprintf(labels, sizeof labels, "model=\"%s\"", e->cfg.model_id);
    struct front_metrics *m = &e->fm;
    pthread_mutex_lock(&m->lock);
    head(o, "dynamo_frontend_requests_total", "counter", "Completion requests by outcome");
    const char *types[2] = {"stream", "unary"};
    uint64_t ok[2] = {m->req_ok_stream, m->req_ok_unary};
    uint64_t bad[2] = {m->req_err_stream, m->req_err_unary};
    for (int i = 0; i < 2; i++) {
        buf_printf(o,
                   "dynamo_frontend_requests_total{%s,endpoint=\"completions\",request_type=\"%s\","
                   "status=\"success\"} %llu\n",
                   labels, types[i], (unsigned long long)ok[i]);
        buf_printf(o,
                   "dynamo_frontend_requests_total{%s,endpoint=\"completions\",request_type=\"%s\","
                   "status=\"error\"} %llu\n",
                   labels, types[i], (unsigned long long)bad[i]);
    }
    head(o, "dynamo_frontend_inflight_requests", "gauge", "Requests being processed");
    buf_printf(o, "dynamo_frontend_inflight_requests{%s} %llu\n", labels,
               (unsigned long long)m->inflight);
    render_histo(o, "dynamo_frontend_time_to_first_token_seconds", "Time to first token", labels,
                 &m->ttft);
    render_histo(o, "dynamo_frontend_inter_token_latency_seconds", "Gap between output tokens",
                 labels, &m->itl);
    render_histo(o, "dynamo_frontend_input_sequence_tokens", "Prompt tokens per request", labels,
                 &m->isl);
    render_histo(o, "dynamo_frontend_output_sequence_tokens", "Output tokens per request", labels,
                 &m->osl);
    render_histo(o, "dynamo_frontend_cached_tokens", "Prompt tokens served from the KV cache",
                 labels, &m->cached);
    pthread_mutex_unlock(&m->lock);
    static const struct {
        const char *name, *help;
        size_t off;
    } CONN[] = {
        {"kvbench_refused_connections_total",
         "Connections closed at accept: every --max-connections slot serving a request",
         offsetof(struct engine, refused_connections)},
        {"kvbench_evicted_connections_total",
         "Idle or header-trickling connections closed to make room at --max-connections",
         offsetof(struct engine, evicted_connections)},
        {"kvbench_header_timeouts_total",
         "Connections closed at the request-header deadline (--request-read-timeout-s)",
         offsetof(struct engine, header_timeouts)},
        {"kvbench_non_http_connections_total",
         "Connections closed at once: their first byte cannot begin an HTTP request",
         offsetof(struct engine, non_http_closed)},
    };
    for (size_t i = 0; i < sizeof CONN / sizeof CONN[0]; i++) {
        _Atomic unsigned long long *v = (_Atomic unsigned long long *)((char *)e + CONN[i].off);
        head(o, CONN[i].name, "counter", CONN[i].help);
        buf_printf(o, "%s %llu\n", CONN[i].name, (unsigned long long)atomic_load(v));
    }
    head(o, "dynamo_frontend_model_kv_cache_block_size", "gauge", "Tokens per KV block");
    buf_printf(o, "dynamo_frontend_model_kv_cache_block_size{%s} %zu\n", labels,
               e->cfg.kv.block_tokens);
    head(o, "dynamo_frontend_model_total_kv_blocks", "gauge", "KV blocks in device memory (G1)");
    buf_printf(o, "dynamo_frontend_model_total_kv_blocks{%s} %zu\n", labels, e->cfg.kv.g1_blocks);
}

static void counter(struct buf *o, const char *name, const char *help, uint64_t v)
{
    head(o, name, "counter", help);
    buf_printf(o, "%s %llu\n", name, (unsigned long long)v);
}

static void gauge(struct buf *o, const char *name, const char *help, double v)
{
    head(o, name, "gauge", help);
    buf_printf(o, "%s %.9g\n", name, v);
}

/* The tiers a kv mode has, as the catalogue's served rows ask (SERVED_WITH_*). */
static enum served_when tiers_of(enum kv_mode mode)
{
    return mode == KV_MODE_CPU_DISK   ? SERVED_WITH_DISK
           : mode >= KV_MODE_CPU_ONLY ? SERVED_WITH_OFFLOAD
                                      : SERVED_ALWAYS;
}

void metrics_write_rows(const struct served_metric *rows, const char *labels,
                        enum served_when tiers, const struct metric_figures *f, struct buf *o)
{
    const char *family = NULL;
    for (const struct served_metric *r = rows; r->name; r++) {
        if (r->when > tiers)
            continue;
        if (!family || strcmp(family, r->name) != 0)
            head(o, r->name, r->type == METRIC_GAUGE ? "gauge" : "counter", r->help);
        family = r->name;
        buf_append_str(o, r->name);
        if (labels || r->label)
            buf_printf(o, "{%s%s%s}", labels ? labels : "", labels && r->label ? "," : "",
                       r->label ? r->label : "");
        if (r->type == METRIC_GAUGE)
            buf_printf(o, " %.9g\n", f->gauge[r->figure]);
        else
            buf_printf(o, " %llu\n", (unsigned long long)f->count[r->figure]);
    }
}

/* G1's backend and, with --g1 cuda, its real copies. The model copies nothing: it serves no copy
 * families at all (absent, not 0, so no reader takes a modelled tier for an idle link). */
static void write_g1(const struct kvbm_counters *c, const struct kvbm_config *cfg, struct buf *o)
{
    static const char *const DIR[2] = {"h2d", "d2h"};
    head(o, "kvbench_g1_backend_info", "gauge",
         "Where G1 (device KV blocks) lives: model (capacity only) or cuda (device memory)");
    if (cfg->g1 == KVBM_G1_CUDA)
        buf_printf(o, "kvbench_g1_backend_info{backend=\"cuda\",device=\"%d\"} 1\n",
                   cfg->cuda_device);
    else
        buf_printf(o, "kvbench_g1_backend_info{backend=\"model\",device=\"none\"} 1\n");
    if (cfg->g1 != KVBM_G1_CUDA)
        return;
    /* one family per direction (no label), so a reader that sums a family's series by name
     * (kvbench's own harness among them) keeps the directions apart */
    static const char *const WHAT[2] = {"host memory to G1 (onboards)",
                                        "G1 to host memory (offloads)"};
    for (int d = 0; d < 2; d++) {
        char name[64], help[160];
        snprintf(name, sizeof name, "kvbench_g1_%s_bytes_total", DIR[d]);
        snprintf(help, sizeof help, "Bytes of KV blocks copied from %s", WHAT[d]);
        counter(o, name, help, c->g1_copy_bytes[d]);
        snprintf(name, sizeof name, "kvbench_g1_%s_seconds_total", DIR[d]);
        snprintf(help, sizeof help,
                 "Measured time of the copies from %s (first submission to last sync)", WHAT[d]);
        head(o, name, "counter", help);
        buf_printf(o, "%s %.9g\n", name, c->g1_copy_s[d]);
        snprintf(name, sizeof name, "kvbench_g1_%s_batches_total", DIR[d]);
        snprintf(help, sizeof help,
                 "Batches of up to 16 block copies from %s (one stream each, up to 4 in flight)",
                 WHAT[d]);
        counter(o, name, help, c->g1_copy_batches[d]);
    }
    counter(o, "kvbench_g1_copy_errors_total",
            "Block copies to or from G1 that failed (the block recomputed or not offloaded)",
            c->g1_copy_errors);
    counter(o, "kvbench_g1_fill_bytes_total",
            "Bytes of computed blocks written into G1 by the device itself (not offload traffic)",
            c->g1_fill_bytes);
    gauge(o, "kvbench_g1_device_bytes", "Device memory G1 holds (0 with the model)",
          (double)c->g1_device_bytes);
}

void metrics_write_kvbm(const struct kvbm_counters *c, const struct kvbm_gauges *g,
                        const struct kvbm_config *cfg, struct buf *o)
{
    struct metric_figures f = {0};
    f.count[EF_OFFLOAD_D2H] = c->offload_d2h;
    f.count[EF_OFFLOAD_H2D] = c->offload_h2d;
    f.count[EF_OFFLOAD_D2D] = c->offload_d2d;
    f.count[EF_ONBOARD_H2D] = c->onboard_h2d;
    f.count[EF_ONBOARD_D2D] = c->onboard_d2d;
    f.count[EF_MATCHED_TOKENS] = c->matched_tokens;
    f.count[EF_DISK_BYTES_READ] = c->disk_bytes_read;
    f.count[EF_DISK_BYTES_WRITTEN] = c->disk_bytes_written;
    metrics_write_rows(KVBM_SERVED, NULL, SERVED_ALWAYS, &f, o);
    head(o, KVBM_CACHE_EVICTIONS, "counter", "Blocks evicted (LRU) from a KVBM tier");
    buf_printf(o, KVBM_CACHE_EVICTIONS "{tier=\"host\"} %llu\n",
               (unsigned long long)c->evictions_g2);
    buf_printf(o, KVBM_CACHE_EVICTIONS "{tier=\"disk\"} %llu\n",
               (unsigned long long)c->evictions_g3);
    counter(o, KVBM_CACHE_PREFETCHES, "Blocks read from disk kept in host memory (G3 to G2)",
            c->prefetches);
    gauge(o, KVBM_HOST_HIT_RATE, "Share of host-tier lookups that hit", g->host_hit_rate);
    gauge(o, KVBM_DISK_HIT_RATE, "Share of disk-tier lookups that hit", g->disk_hit_rate);
    gauge(o, KVBM_DISK_FETCH_P50_MS, "Median measured disk block read time (last 1024)",
          g->fetch_p50_ms);
    gauge(o, KVBM_DISK_FETCH_P95_MS, "95th percentile disk block read time (last 1024)",
          g->fetch_p95_ms);
    gauge(o, KVBM_DISK_FETCH_P99_MS, "99th percentile disk block read time (last 1024)",
          g->fetch_p99_ms);
    counter(o, "kvbench_gpu_cache_evictions", "Cached blocks evicted from device memory (G1)",
            c->evictions_g1);
    counter(o, "kvbench_checksum_failures",
            "Onboards refused because the block failed its checksum", c->checksum_failures);
    counter(o, "kvbench_disk_read_errors", "Disk tier reads that failed", c->disk_read_errors);
    counter(o, "kvbench_disk_write_errors", "Disk tier writes that failed (block kept out of G3)",
            c->disk_write_errors);
    counter(o, "kvbench_disk_refused_files",
            "Block files refused because they are not regular files (FIFO, link, device); also in "
            "the read/write error counts",
            c->disk_refused);
    head(o, KVBENCH_TIER_BLOCKS, "gauge", "Blocks held per tier");
    buf_printf(o, KVBENCH_TIER_BLOCKS "{tier=\"g1\"} %zu\n", c->g1_used);
    buf_printf(o, KVBENCH_TIER_BLOCKS "{tier=\"g2\"} %zu\n", c->g2_blocks);
    buf_printf(o, KVBENCH_TIER_BLOCKS "{tier=\"g3\"} %zu\n", c->g3_blocks);
    head(o, KVBENCH_TIER_CAPACITY, "gauge", "Capacity per tier in blocks (0 = tier off)");
    bool g2 = cfg->mode >= KV_MODE_CPU_ONLY, g3 = cfg->mode == KV_MODE_CPU_DISK;
    buf_printf(o, KVBENCH_TIER_CAPACITY "{tier=\"g1\"} %zu\n", cfg->g1_blocks);
    buf_printf(o, KVBENCH_TIER_CAPACITY "{tier=\"g2\"} %zu\n", g2 ? cfg->g2_blocks : 0);
    buf_printf(o, KVBENCH_TIER_CAPACITY "{tier=\"g3\"} %zu\n", g3 ? cfg->g3_blocks : 0);
    gauge(o, "kvbench_offload_queue_blocks", "Disk offloads queued or in flight",
          (double)c->g3_queued);
    write_g1(c, cfg, o);
}

void metrics_render_kvbm(struct engine *e, struct buf *o)
{
    struct kvbm_counters c;
    struct kvbm_gauges g;
    struct kvbm *kv = e->kv;
    if (!kv) {
        buf_append_str(o, "# KV block manager starting\n");
        return;
    }
    kvbm_get_counters(kv, &c);
    kvbm_get_gauges(kv, &g);
    metrics_write_kvbm(&c, &g, kvbm_config(kv), o);
}

/* ------------------------------------------------------------ personalities' API /metrics */

/* The figures every personality's rows are made of, from the engine's counters. */
static void figures(struct engine *e, struct metric_figures *f, size_t *g1_used)
{
    memset(f, 0, sizeof *f);
    struct front_metrics *m = &e->fm;
    pthread_mutex_lock(&m->lock);
    uint64_t prompt = m->prompt_tokens, queries = m->prefix_query_tokens;
    uint64_t dev = m->hit_tokens_device, host = m->hit_tokens_host, disk = m->hit_tokens_disk;
    f->count[EF_PROMPT_TOKENS] = prompt;
    f->count[EF_GENERATION_TOKENS] = m->generation_tokens;
    f->count[EF_REQUESTS_OK] = m->req_ok_stream + m->req_ok_unary;
    f->count[EF_RUNNING] = m->inflight;
    f->count[EF_REUSED_BLOCKS] = m->hit_blocks;
    f->count[EF_MISSED_BLOCKS] = m->miss_blocks;
    pthread_mutex_unlock(&m->lock);
    f->count[EF_PREFIX_QUERIES] = queries;
    f->count[EF_HITS_DEVICE] = dev;
    f->count[EF_HITS_HOST] = host;
    f->count[EF_HITS_DISK] = disk;
    f->count[EF_HITS_OFFLOAD] = host + disk;
    f->count[EF_QUERIES_OFFLOAD] = queries - dev;
    f->count[EF_EVALUATED] = prompt - (dev + host + disk);
    f->count[EF_PREEMPTIONS] = 0;
    size_t g1_total = e->cfg.kv.g1_blocks, used = 0;
    struct kvbm *kv = e->kv;
    if (kv) {
        struct kvbm_counters c;
        kvbm_get_counters(kv, &c);
        used = c.g1_used;
    }
    *g1_used = used;
    f->gauge[EF_RUNNING] = (double)f->count[EF_RUNNING];
    f->gauge[EF_CACHE_USAGE] = g1_total ? (double)used / (double)g1_total : 0;
    f->gauge[EF_CACHE_TOKENS] = (double)(used * e->cfg.kv.block_tokens);
    double hits = (double)(dev + host + disk);
    f->gauge[EF_HIT_RATE] = queries ? hits / (double)queries : 0;
}

/* trtllm-serve's /metrics: a JSON list of iteration statistics, each with kvCacheStats (block
 * counters of the KV cache manager, cumulative since start). The real server returns the
 * iterations since the last poll; this one returns the current one. */
void metrics_write_trtllm(const struct trtllm_figures *t, const char *timestamp, struct buf *o)
{
    uint64_t total = t->reused_blocks + t->missed_blocks;
    buf_printf(o,
               "[{\"timestamp\":\"%s\",\"iter\":%llu,\"numActiveRequests\":%llu,"
               "\"" TRTLLM_KV_STATS "\":{\"maxNumBlocks\":%zu,\"freeNumBlocks\":%zu,"
               "\"usedNumBlocks\":%zu,\"" TRTLLM_TOKENS_PER_BLOCK "\":%zu,"
               "\"allocTotalBlocks\":%llu,\"allocNewBlocks\":%llu,"
               "\"" TRTLLM_REUSED_BLOCKS "\":%llu,\"" TRTLLM_MISSED_BLOCKS "\":%llu,"
               "\"cacheHitRate\":%.6f}}]",
               timestamp, (unsigned long long)t->iter, (unsigned long long)t->active, t->max_blocks,
               t->max_blocks - t->used_blocks, t->used_blocks, t->tokens_per_block,
               (unsigned long long)total, (unsigned long long)t->missed_blocks,
               (unsigned long long)t->reused_blocks, (unsigned long long)t->missed_blocks,
               total ? (double)t->reused_blocks / (double)total : 0);
}

static void render_trtllm(struct engine *e, struct buf *o)
{
    struct metric_figures f;
    size_t used;
    figures(e, &f, &used);
    struct trtllm_figures t = {
        .iter = f.count[EF_REQUESTS_OK],
        .active = f.count[EF_RUNNING],
        .max_blocks = e->cfg.kv.g1_blocks,
        .used_blocks = used,
        .tokens_per_block = e->cfg.kv.block_tokens,
        .reused_blocks = f.count[EF_REUSED_BLOCKS],
        .missed_blocks = f.count[EF_MISSED_BLOCKS],
    };
    char ts[CLOCK_ISO_LEN];
    clock_iso_utc(clock_wall_ns(), ts);
    metrics_write_trtllm(&t, ts, o);
}

void metrics_render_api(struct engine *e, struct buf *o, bool *json_out)
{
    *json_out = false;
    const struct personality *p = e->cfg.personality ? e->cfg.personality : ENGINE_DYNAMO.serve;
    switch (p->metrics) {
    case METRICS_PROMETHEUS: {
        struct metric_figures f;
        size_t used;
        figures(e, &f, &used);
        char labels[256];
        snprintf(labels, sizeof labels, "%s=\"%s\"%s%s", p->model_label ? p->model_label : "",
                 e->cfg.model_id, p->extra_labels ? "," : "",
                 p->extra_labels ? p->extra_labels : "");
        metrics_write_rows(p->served, p->model_label ? labels : NULL, tiers_of(e->cfg.kv.mode), &f,
                           o);
        break;
    }
    case METRICS_TRTLLM:
        *json_out = true;
        render_trtllm(e, o);
        break;
    case METRICS_DYNAMO:
    default:
        metrics_render_frontend(e, o);
        break;
    }
}
