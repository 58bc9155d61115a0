/*
 * metrics.c - Prometheus text exposition of the engine.
 *
 * The API port's /metrics carries frontend metrics under Dynamo's names
 * (dynamo_frontend_*); the metrics port carries the KV manager's counters and gauges under
 * KVBM's names (kvbm_*), plus a few kvbench_* extras (tier occupancy, error counters) that KVBM
 * has no name for. Histograms use fixed bucket bounds; one mutex guards them, taken once per
 * observation.
 */
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

void metrics_render_kvbm(struct engine *e, struct buf *o)
{
    struct kvbm_counters c;
    struct kvbm_gauges g;
    if (!e->kv) {
        buf_append_str(o, "# KV block manager starting\n");
        return;
    }
    kvbm_get_counters(e->kv, &c);
    kvbm_get_gauges(e->kv, &g);
    counter(o, "kvbm_offload_blocks_d2h", "Blocks offloaded from device (G1) to host (G2)",
            c.offload_d2h);
    counter(o, "kvbm_offload_blocks_h2d", "Blocks offloaded from host (G2) to disk (G3)",
            c.offload_h2d);
    counter(o, "kvbm_offload_blocks_d2d", "Blocks offloaded from device (G1) to disk (G3)",
            c.offload_d2d);
    counter(o, "kvbm_onboard_blocks_h2d", "Blocks onboarded from host (G2) to device (G1)",
            c.onboard_h2d);
    counter(o, "kvbm_onboard_blocks_d2d", "Blocks onboarded from disk (G3) to device (G1)",
            c.onboard_d2d);
    counter(o, "kvbm_matched_tokens", "Prompt tokens found in a KV tier instead of recomputed",
            c.matched_tokens);
    counter(o, "kvbm_disk_bytes_read", "Bytes read from the disk tier", c.disk_bytes_read);
    counter(o, "kvbm_disk_bytes_written", "Bytes written to the disk tier", c.disk_bytes_written);
    head(o, "kvbm_cache_evictions", "counter", "Blocks evicted (LRU) from a KVBM tier");
    buf_printf(o, "kvbm_cache_evictions{tier=\"host\"} %llu\n", (unsigned long long)c.evictions_g2);
    buf_printf(o, "kvbm_cache_evictions{tier=\"disk\"} %llu\n", (unsigned long long)c.evictions_g3);
    counter(o, "kvbm_cache_prefetches", "Blocks read from disk kept in host memory (G3 to G2)",
            c.prefetches);
    gauge(o, "kvbm_host_cache_hit_rate", "Share of host-tier lookups that hit", g.host_hit_rate);
    gauge(o, "kvbm_disk_cache_hit_rate", "Share of disk-tier lookups that hit", g.disk_hit_rate);
    gauge(o, "kvbm_disk_fetch_p50_ms", "Median measured disk block read time (last 1024)",
          g.fetch_p50_ms);
    gauge(o, "kvbm_disk_fetch_p95_ms", "95th percentile disk block read time (last 1024)",
          g.fetch_p95_ms);
    gauge(o, "kvbm_disk_fetch_p99_ms", "99th percentile disk block read time (last 1024)",
          g.fetch_p99_ms);
    counter(o, "kvbench_gpu_cache_evictions", "Cached blocks evicted from device memory (G1)",
            c.evictions_g1);
    counter(o, "kvbench_checksum_failures",
            "Onboards refused because the block failed its checksum", c.checksum_failures);
    counter(o, "kvbench_disk_read_errors", "Disk tier reads that failed", c.disk_read_errors);
    counter(o, "kvbench_disk_write_errors", "Disk tier writes that failed (block kept out of G3)",
            c.disk_write_errors);
    counter(o, "kvbench_disk_refused_files",
            "Block files refused because they are not regular files (FIFO, link, device); also in "
            "the read/write error counts",
            c.disk_refused);
    const struct kvbm_config *cfg = kvbm_config(e->kv);
    head(o, "kvbench_tier_blocks", "gauge", "Blocks held per tier");
    buf_printf(o, "kvbench_tier_blocks{tier=\"g1\"} %zu\n", c.g1_used);
    buf_printf(o, "kvbench_tier_blocks{tier=\"g2\"} %zu\n", c.g2_blocks);
    buf_printf(o, "kvbench_tier_blocks{tier=\"g3\"} %zu\n", c.g3_blocks);
    head(o, "kvbench_tier_capacity_blocks", "gauge", "Capacity per tier in blocks (0 = tier off)");
    bool g2 = cfg->mode >= KV_MODE_CPU_ONLY, g3 = cfg->mode == KV_MODE_CPU_DISK;
    buf_printf(o, "kvbench_tier_capacity_blocks{tier=\"g1\"} %zu\n", cfg->g1_blocks);
    buf_printf(o, "kvbench_tier_capacity_blocks{tier=\"g2\"} %zu\n", g2 ? cfg->g2_blocks : 0);
    buf_printf(o, "kvbench_tier_capacity_blocks{tier=\"g3\"} %zu\n", g3 ? cfg->g3_blocks : 0);
    gauge(o, "kvbench_offload_queue_blocks", "Disk offloads queued or in flight",
          (double)c.g3_queued);
}

/* ------------------------------------------------------------ personalities' API /metrics */

struct engine_figures {
    uint64_t prompt, generation, queries, hit_dev, hit_host, hit_disk, hit_blocks, miss_blocks;
    uint64_t ok, running;
    double usage; /* share of device blocks in use */
    size_t g1_used, g1_total, block_tokens;
};

static void figures(struct engine *e, struct engine_figures *f)
{
    memset(f, 0, sizeof *f);
    struct front_metrics *m = &e->fm;
    pthread_mutex_lock(&m->lock);
    f->prompt = m->prompt_tokens;
    f->generation = m->generation_tokens;
    f->queries = m->prefix_query_tokens;
    f->hit_dev = m->hit_tokens_device;
    f->hit_host = m->hit_tokens_host;
    f->hit_disk = m->hit_tokens_disk;
    f->hit_blocks = m->hit_blocks;
    f->miss_blocks = m->miss_blocks;
    f->ok = m->req_ok_stream + m->req_ok_unary;
    f->running = m->inflight;
    pthread_mutex_unlock(&m->lock);
    f->g1_total = e->cfg.kv.g1_blocks;
    f->block_tokens = e->cfg.kv.block_tokens;
    if (e->kv) {
        struct kvbm_counters c;
        kvbm_get_counters(e->kv, &c);
        f->g1_used = c.g1_used;
    }
    f->usage = f->g1_total ? (double)f->g1_used / (double)f->g1_total : 0;
}

static void lcounter(struct buf *o, const char *name, const char *help, const char *labels,
                     uint64_t v)
{
    head(o, name, "counter", help);
    buf_printf(o, "%s{%s} %llu\n", name, labels, (unsigned long long)v);
}

static void lgauge(struct buf *o, const char *name, const char *help, const char *labels, double v)
{
    head(o, name, "gauge", help);
    buf_printf(o, "%s{%s} %.9g\n", name, labels, v);
}

/* vLLM (v1 engine): prefix-cache queries and hits count tokens; hits in a KV connector's
 * (offload) cache are the external_ pair. */
static void render_vllm(struct engine *e, struct buf *o)
{
    struct engine_figures f;
    figures(e, &f);
    char l[256];
    snprintf(l, sizeof l, "model_name=\"%s\",engine=\"0\"", e->cfg.model_id);
    lcounter(o, "vllm:prompt_tokens_total", "Number of prefill tokens processed.", l, f.prompt);
    lcounter(o, "vllm:generation_tokens_total", "Number of generation tokens processed.", l,
             f.generation);
    lcounter(o, "vllm:request_success_total", "Count of successfully processed requests.", l, f.ok);
    lgauge(o, "vllm:num_requests_running", "Number of requests in model execution batches.", l,
           (double)f.running);
    lgauge(o, "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", l, f.usage);
    lcounter(o, "vllm:prefix_cache_queries_total",
             "Prefix cache queries, in terms of number of queried tokens.", l, f.queries);
    lcounter(o, "vllm:prefix_cache_hits_total",
             "Prefix cache hits, in terms of number of cached tokens.", l, f.hit_dev);
    if (e->cfg.kv.mode != KV_MODE_OFF) {
        lcounter(o, "vllm:external_prefix_cache_queries_total",
                 "External prefix cache queries from KV connector, in terms of queried tokens.", l,
                 f.queries - f.hit_dev);
        lcounter(o, "vllm:external_prefix_cache_hits_total",
                 "External prefix cache hits from KV connector, in terms of cached tokens.", l,
                 f.hit_host + f.hit_disk);
    }
    lcounter(o, "vllm:num_preemptions_total", "Cumulative number of preemption from the engine.", l,
             0);
}

/* SGLang: cached tokens by where they came from (HiCache: device, host, storage). */
static void render_sglang(struct engine *e, struct buf *o)
{
    struct engine_figures f;
    figures(e, &f);
    char l[256];
    snprintf(l, sizeof l, "model_name=\"%s\"", e->cfg.model_id);
    lcounter(o, "sglang:prompt_tokens_total", "Number of prefill tokens processed.", l, f.prompt);
    lcounter(o, "sglang:generation_tokens_total", "Number of generation tokens processed.", l,
             f.generation);
    head(o, "sglang:cached_tokens_total", "counter", "Number of cached prompt tokens.");
    buf_printf(o, "sglang:cached_tokens_total{%s,cache_source=\"device\"} %llu\n", l,
               (unsigned long long)f.hit_dev);
    if (e->cfg.kv.mode != KV_MODE_OFF)
        buf_printf(o, "sglang:cached_tokens_total{%s,cache_source=\"host\"} %llu\n", l,
                   (unsigned long long)f.hit_host);
    if (e->cfg.kv.mode == KV_MODE_CPU_DISK)
        buf_printf(o, "sglang:cached_tokens_total{%s,cache_source=\"storage_file\"} %llu\n", l,
                   (unsigned long long)f.hit_disk);
    double hits = (double)(f.hit_dev + f.hit_host + f.hit_disk);
    lgauge(o, "sglang:cache_hit_rate", "The prefix cache hit rate.", l,
           f.queries ? hits / (double)f.queries : 0);
    lgauge(o, "sglang:token_usage", "The token usage.", l, f.usage);
    lgauge(o, "sglang:num_running_reqs", "The number of running requests.", l, (double)f.running);
    lcounter(o, "sglang:num_retracted_reqs_total", "Requests retracted (preempted).", l, 0);
}

/* llama.cpp (--metrics): prompt_tokens_total counts evaluated prompt tokens, not reused ones. */
static void render_llamacpp(struct engine *e, struct buf *o)
{
    struct engine_figures f;
    figures(e, &f);
    uint64_t hits = f.hit_dev + f.hit_host + f.hit_disk;
    counter(o, "llamacpp:prompt_tokens_total", "Number of prompt tokens processed.",
            f.prompt - hits);
    counter(o, "llamacpp:tokens_predicted_total", "Number of generation tokens processed.",
            f.generation);
    gauge(o, "llamacpp:kv_cache_usage_ratio", "KV-cache usage. 1 means 100 percent usage.",
          f.usage);
    gauge(o, "llamacpp:kv_cache_tokens", "KV-cache tokens.", (double)(f.g1_used * f.block_tokens));
    gauge(o, "llamacpp:requests_processing", "Number of requests processing.", (double)f.running);
}

/* trtllm-serve's /metrics: a JSON list of iteration statistics, each with kvCacheStats (block
 * counters of the KV cache manager, cumulative since start). The real server returns the
 * iterations since the last poll; this one returns the current one. */
static void render_trtllm(struct engine *e, struct buf *o)
{
    struct engine_figures f;
    figures(e, &f);
    uint64_t total = f.hit_blocks + f.miss_blocks;
    char ts[CLOCK_ISO_LEN];
    clock_iso_utc(clock_wall_ns(), ts);
    buf_printf(o,
               "[{\"timestamp\":\"%s\",\"iter\":%llu,\"numActiveRequests\":%llu,"
               "\"kvCacheStats\":{\"maxNumBlocks\":%zu,\"freeNumBlocks\":%zu,\"usedNumBlocks\":%zu,"
               "\"tokensPerBlock\":%zu,\"allocTotalBlocks\":%llu,\"allocNewBlocks\":%llu,"
               "\"reusedBlocks\":%llu,\"missedBlocks\":%llu,\"cacheHitRate\":%.6f}}]",
               ts, (unsigned long long)f.ok, (unsigned long long)f.running, f.g1_total,
               f.g1_total - f.g1_used, f.g1_used, f.block_tokens, (unsigned long long)total,
               (unsigned long long)f.miss_blocks, (unsigned long long)f.hit_blocks,
               (unsigned long long)f.miss_blocks, total ? (double)f.hit_blocks / (double)total : 0);
}

void metrics_render_api(struct engine *e, struct buf *o, bool *json_out)
{
    *json_out = false;
    enum metrics_style st = e->cfg.personality ? e->cfg.personality->metrics : METRICS_DYNAMO;
    switch (st) {
    case METRICS_VLLM:
        render_vllm(e, o);
        break;
    case METRICS_SGLANG:
        render_sglang(e, o);
        break;
    case METRICS_LLAMACPP:
        render_llamacpp(e, o);
        break;
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
