/*
 * report.c - report.md: what a reader needs from summary.json alone. Status and validity, the
 * machine, the KV mode, one table of the phases (requests, errors, rate, latency and TTFT
 * percentiles, disk MiB, KV moves), a plain-language account of the KV cache per phase, the
 * scenario's own section (written by its row of the scenario table, scenario/scen_<name>.c), and
 * what was sent as distinct hashes; with --slo, a goodput table per phase and overall. The
 * buffer is checked once: a report that could not be built whole is none (NULL), never short.
 */
#include "report/report.h"

#include "analysis/signals.h"

#include "scenario/scenario.h"

#include "model/engines.h"
#include "util/buf.h"
#include "util/json.h"

#include <math.h>
#include <string.h>

static void cell_num(struct buf *b, const json_t *o, const char *key, const char *fmt)
{
    scenario_md_num(b, o, key, fmt, "–");
}

static void cell_stat(struct buf *b, const json_t *phase, const char *metric, const char *p)
{
    buf_append_str(b, " | ");
    cell_num(b, json_object_get(phase, metric), p, "%.1f");
}

static double kv(const json_t *delta, const char *key)
{
    return json_get_num(delta, key, 0);
}

static void phase_row(struct buf *b, const json_t *ps)
{
    buf_printf(b, "| %s | %lld | %lld | ", json_get_str(ps, "phase", "?"),
               json_get_int(ps, "concurrency", 0), json_get_int(ps, "total_requests", 0));
    buf_printf(b, "%lld | ", json_get_int(ps, "error_requests", 0));
    cell_num(b, ps, "req_per_s", "%.2f");
    cell_stat(b, ps, "latency_ms", "p50");
    cell_stat(b, ps, "latency_ms", "p95");
    cell_stat(b, ps, "latency_ms", "p99");
    cell_stat(b, ps, "ttft_ms", "p50");
    cell_stat(b, ps, "ttft_ms", "p95");
    cell_stat(b, ps, "ttft_ms", "p99");
    const json_t *io = json_object_get(ps, "io_delta");
    buf_append_str(b, " | ");
    cell_num(b, io, "read_mib_delta", "%.1f");
    buf_append_str(b, " | ");
    cell_num(b, io, "write_mib_delta", "%.1f");
    const json_t *d = json_object_get(ps, "kvbm_metrics_delta");
    const json_t *ed = json_object_get(d, "engine_delta");
    if (json_get_bool(d, "available", false)) {
        /* absent figures show as –, never as 0 */
        buf_append_str(b, " | ");
        cell_num(b, d, "offload_blocks_total_delta", "%.0f");
        buf_append_str(b, " | ");
        cell_num(b, d, "onboard_blocks_total_delta", "%.0f");
        buf_append_str(b, " | ");
        cell_num(b, d, KVBM_ONBOARD_D2D "_delta", "%.0f");
        buf_append_str(b, " | ");
        if (ed)
            cell_num(b, ed, "reused_tokens", "%.0f");
        else
            cell_num(b, d, KVBM_MATCHED_TOKENS "_delta", "%.0f");
        buf_append_str(b, " |\n");
    } else {
        buf_append_str(b, " | – | – | – | – |\n");
    }
}

static void kv_story(struct buf *b, const json_t *ps)
{
    const json_t *d = json_object_get(ps, "kvbm_metrics_delta");
    const char *name = json_get_str(ps, "phase", "?");
    if (!json_get_bool(d, "available", false)) {
        buf_printf(b, "- **%s**: KV metrics not available.\n", name);
        return;
    }
    const json_t *ed = json_object_get(d, "engine_delta");
    const char *dynamo = ENGINE_DYNAMO.name; /* KVBM's own keys are printed below instead */
    if (ed && strcmp(json_get_str(ed, "engine", dynamo), dynamo) != 0) {
        /* another engine: what its counters said, and what it does not report */
        buf_printf(b, "- **%s** (%s):", name, json_get_str(ed, "engine", "?"));
        struct buf missing = BUF_INIT;
        for (int f = 0; f < KF_COUNT; f++) {
            const json_t *v = json_object_get(ed, KV_FIELD_NAMES[f]);
            if (json_is_number(v))
                buf_printf(b, " %s %.4g;", KV_FIELD_NAMES[f], json_number_value(v));
            else
                buf_printf(&missing, "%s%s", missing.len ? ", " : "", KV_FIELD_NAMES[f]);
        }
        buf_printf(b, " not reported by this engine: %s.\n", buf_cstr(&missing));
        buf_free(&missing);
        return;
    }
    buf_printf(b,
               "- **%s**: offloaded %.0f blocks (%.0f device→host, %.0f host→disk, %.0f "
               "device→disk); evicted %.0f from host/disk tiers; brought back %.0f blocks (%.0f "
               "from disk, %.0f from host memory); reused %.0f prompt tokens; disk tier wrote "
               "%.1f MiB and read %.1f MiB.\n",
               name, kv(d, "offload_blocks_total_delta"), kv(d, KVBM_OFFLOAD_D2H "_delta"),
               kv(d, KVBM_OFFLOAD_H2D "_delta"), kv(d, KVBM_OFFLOAD_D2D "_delta"),
               kv(d, KVBM_CACHE_EVICTIONS "_delta"), kv(d, "onboard_blocks_total_delta"),
               kv(d, KVBM_ONBOARD_D2D "_delta"), kv(d, KVBM_ONBOARD_H2D "_delta"),
               kv(d, KVBM_MATCHED_TOKENS "_delta"), kv(d, "disk_write_mib_delta"),
               kv(d, "disk_read_mib_delta"));
}

static void telemetry_row(struct buf *b, const json_t *ps)
{
    const json_t *t = json_object_get(ps, "telemetry");
    if (!t)
        return;
    const json_t *d = json_object_get(t, "disk");
    const json_t *c = json_object_get(t, "cache_churn");
    buf_printf(b, "| %s | ", json_get_str(ps, "phase", "?"));
    const char *dk[] = {"peak_read_mb_s", "peak_write_mb_s", "mean_read_mb_s", "mean_write_mb_s",
                        "peak_util_pct"};
    for (int k = 0; k < 5; k++) {
        if (json_get_int(d, "samples", 0) > 0)
            cell_num(b, d, dk[k], "%.1f");
        else
            buf_append_str(b, "–");
        buf_append_str(b, " | ");
    }
    if (json_get_bool(c, "available", false))
        buf_printf(b, "%lld | %lld | %lld | %.1f | %.1f |\n", json_get_int(c, "files_created", 0),
                   json_get_int(c, "files_deleted", 0), json_get_int(c, "files_grown", 0),
                   (double)json_get_int(c, "bytes_added", 0) / 1048576.0,
                   (double)json_get_int(c, "bytes_removed", 0) / 1048576.0);
    else
        buf_append_str(b, "– | – | – | – | – |\n");
}

/* One row of the GPU table: memory and utilisation sampled (telemetry.gpu) and the engine's own
 * G1 copy counters (kvbm_metrics_delta.gpu_copies); "–" where a source is missing. */
static void gpu_row(struct buf *b, const json_t *ps)
{
    const json_t *g = json_object_get(json_object_get(ps, "telemetry"), "gpu");
    const json_t *c = json_object_get(json_object_get(ps, "kvbm_metrics_delta"), "gpu_copies");
    if (!g && !c)
        return;
    buf_printf(b, "| %s | ", json_get_str(ps, "phase", "?"));
    bool sampled = json_get_int(g, "samples", 0) > 0;
    const char *gk[] = {"peak_mem_used_mib", "mean_util_pct"};
    for (int k = 0; k < 2; k++) {
        if (sampled)
            cell_num(b, g, gk[k], "%.0f");
        else
            buf_append_str(b, "–");
        buf_append_str(b, " | ");
    }
    const char *ck[] = {"h2d_bytes", "h2d_gb_per_s", "d2h_bytes", "d2h_gb_per_s", "copy_errors"};
    for (int k = 0; k < 5; k++) {
        const json_t *v = json_object_get(c, ck[k]);
        if (!json_is_number(v))
            buf_append_str(b, "–");
        else if (k == 0 || k == 2)
            buf_printf(b, "%.1f", json_number_value(v) / 1048576.0);
        else
            buf_printf(b, k == 4 ? "%.0f" : "%.2f", json_number_value(v));
        buf_append_str(b, k == 4 ? " |\n" : " | ");
    }
}

/* One row of the nodes table: a node's (or the cluster's) figures in one phase; MiB. */
static void node_row(struct buf *b, const char *phase, const char *name, const json_t *n,
                     const char *source)
{
    buf_printf(b, "| %s | %s | %s | ", phase, name, source);
    if (json_object_get(n, "available") && !json_get_bool(n, "available", false)) {
        buf_printf(b, "– | – | – | – | – | – | – | – | unavailable: %s |\n",
                   json_get_str(n, "reason", "?"));
        return;
    }
    const json_t *d = json_object_get(n, "disk"), *net = json_object_get(n, "network");
    const json_t *kv = json_object_get(n, "kv");
    cell_num(b, d, "read_mib_delta", "%.1f");
    buf_append_str(b, " | ");
    cell_num(b, d, "write_mib_delta", "%.1f");
    buf_append_str(b, " | ");
    cell_num(b, d, "read_mb_s", "%.1f");
    buf_append_str(b, " | ");
    cell_num(b, d, "write_mb_s", "%.1f");
    buf_append_str(b, " | ");
    const char *nk[] = {"receive_bytes", "transmit_bytes"};
    for (int k = 0; k < 2; k++) {
        const json_t *v = json_object_get(net, nk[k]);
        if (json_is_number(v))
            buf_printf(b, "%.1f", json_number_value(v) / 1048576.0);
        else
            buf_append_str(b, "–");
        buf_append_str(b, " | ");
    }
    cell_num(b, kv, "disk_read_mib_delta", "%.1f");
    buf_append_str(b, " | ");
    cell_num(b, kv, "disk_write_mib_delta", "%.1f");
    const json_t *devs = json_object_get(d, "devices");
    buf_append_str(b, " | ");
    size_t i;
    const json_t *dev;
    json_array_foreach(devs, i, dev)
        buf_printf(b, "%s%s", i ? ", " : "disks ", json_string_value(dev));
    buf_append_str(b, " |\n");
}

/* Other nodes (--scrape, --prometheus-url): each node's disk, network and KV figures per phase,
 * and the cluster's sums. */
static void nodes_section(struct buf *b, const json_t *phases)
{
    size_t i;
    const json_t *ps;
    bool any = false;
    json_array_foreach(phases, i, ps) any |= json_object_get(ps, "nodes") != NULL;
    if (!any)
        return;
    buf_append_str(b, "\n## Other nodes per phase\n\nEach node's counters before and after the "
                      "phase (`--scrape`: its exporter read by kvbench; `--prometheus-url`: the "
                      "server's samples at the phase's ends). Disk totals count physical disks "
                      "only (device-mapper, md, loop and partitions are in by_device); KV from the "
                      "node's KVBM counters (docs/TELEMETRY.md).\n\n| phase | node | source | "
                      "disk read MiB | disk write MiB | read MB/s | write MB/s | net rx MiB | net "
                      "tx MiB | KV disk read MiB | KV disk write MiB | note |\n"
                      "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    json_array_foreach(phases, i, ps)
    {
        const char *phase = json_get_str(ps, "phase", "?");
        const char *name;
        const json_t *n;
        json_object_foreach(json_object_get(ps, "nodes"), name, n)
        {
            node_row(b, phase, name, n, json_get_str(n, "source", "?"));
        }
        const json_t *cl = json_object_get(ps, "cluster");
        if (json_object_size(json_object_get(ps, "nodes")) > 1 && cl)
            node_row(b, phase, "**cluster**", cl, "sum");
    }
}

/* One row of the goodput table: a phase's (or the overall) goodput object. */
static void goodput_row(struct buf *b, const char *name, const json_t *g)
{
    buf_printf(b, "| %s | %lld | ", name, json_get_int(g, "requests", 0));
    if (!json_is_number(json_object_get(g, "attainment"))) {
        buf_printf(b, "– | – | – | – | – | not judged: %s |\n", json_get_str(g, "reason", "?"));
        return;
    }
    buf_printf(b, "%lld | ", json_get_int(g, "met", 0));
    cell_num(b, g, "attainment", "%.4f");
    buf_append_str(b, " | ");
    cell_num(b, g, "goodput_req_per_s", "%.3f");
    buf_append_str(b, " | ");
    cell_num(b, g, "goodput_tokens_per_s", "%.1f");
    buf_append_str(b, " | ");
    const char *k;
    const json_t *v;
    size_t n = 0;
    json_object_foreach((json_t *)json_object_get(g, "failed"), k, v)
    {
        buf_printf(b, "%s%s %lld", n++ ? ", " : "", k, (long long)json_integer_value(v));
    }
    buf_printf(b, " | %s%s |\n", json_get_str(g, "failed_most", "–"),
               json_is_true(json_object_get(g, "corrected")) ? " (TTFT and latency corrected)"
                                                             : "");
}

/* Goodput against --slo: per phase and overall, when the run had objectives. */
static void goodput_section(struct buf *b, const json_t *s)
{
    const json_t *phases = json_object_get(s, "phase_summaries"), *ps;
    const json_t *ov = json_object_get(s, "overall_summary");
    const json_t *slo = NULL;
    size_t i;
    json_array_foreach(phases, i, ps) if (!slo) slo =
        json_object_get(json_object_get(ps, "goodput"), "slo");
    if (!slo)
        slo = json_object_get(json_object_get(ov, "goodput"), "slo");
    if (!slo)
        return;
    buf_append_str(b, "\n## Goodput against the SLOs\n\nA request meets the SLOs when it "
                      "succeeded and every objective holds:");
    const char *k;
    const json_t *v;
    size_t n = 0;
    json_object_foreach((json_t *)slo, k, v)
    {
        buf_printf(b, "%s %s ≤ %g ms", n++ ? "," : "", k, json_number_value(v));
    }
    buf_append_str(b, " (in an open loop TTFT and latency count from the intended send; "
                      "docs/GOODPUT.md).\n\n| phase | requests | met | attainment | goodput "
                      "req/s | goodput tokens/s | failed per SLO | failed most |\n"
                      "|---|---|---|---|---|---|---|---|\n");
    json_array_foreach(phases, i, ps)
    {
        const json_t *g = json_object_get(ps, "goodput");
        if (g)
            goodput_row(b, json_get_str(ps, "phase", "?"), g);
    }
    const json_t *g = json_object_get(ov, "goodput");
    if (g)
        goodput_row(b, "**overall**", g);
}

/* The heading and the run's facts: status, warnings, engine, scenario, model, KV mode, machine,
 * block device. */
static void md_header(struct buf *b, const json_t *s, const json_t *config)
{
    bool valid = json_get_bool(s, "run_valid", false);
    buf_printf(b, "# kvbench run %s\n\n", json_get_str(s, "run_id", "?"));
    buf_printf(b, "- **Status:** %s", valid ? "valid" : "INVALID");
    if (!valid)
        buf_printf(b, " — `%s`", json_get_str(s, "invalid_reason", "?"));
    buf_append_str(b, "\n");
    const json_t *mg = json_object_get(s, "merge");
    if (mg) /* kvbench merge: one run from its shards (docs/MERGE.md) */
        buf_printf(b,
                   "- **Merged:** %zu of %lld shards of `%s` (kvbench merge); the phases' "
                   "starts lay %.3f s apart at most; what one shard stands for is in "
                   "summary.json merge.notes\n",
                   json_array_size(json_object_get(mg, "shards")), json_get_int(mg, "count", 0),
                   json_get_str(mg, "base_run_id", "?"), json_get_num(mg, "skew_s", 0));
    size_t wi;
    const json_t *w;
    json_array_foreach(json_object_get(s, "warnings"), wi, w)
    {
        buf_printf(b, "- **Warning (`%s`):** %s\n", json_get_str(w, "code", "?"),
                   json_get_str(w, "message", ""));
    }
    const json_t *eng = json_object_get(s, "engine");
    if (eng)
        buf_printf(b, "- **Engine:** %s (%s); KV metrics from %s\n",
                   json_get_str(eng, "title", "?"), json_get_str(eng, "evidence", "?"),
                   json_get_str(eng, "metrics_url", "?"));
    const json_t *sh = json_object_get(s, "shard");
    if (sh)
        buf_printf(b,
                   "- **Shard:** %lld of %lld (numbered from 0) of run `%s`: this process sent "
                   "its part of every phase; `kvbench merge` joins the shards' directories\n",
                   json_get_int(sh, "index", -1), json_get_int(sh, "count", -1),
                   json_get_str(sh, "base_run_id", "?"));
    buf_printf(b, "- **Scenario:** %s, stream %s\n", json_get_str(s, "scenario", "?"),
               json_get_bool(s, "stream", false) ? "on" : "off (no TTFT/ITL)");
    buf_printf(b, "- **Model:** %s at %s\n", json_get_str(s, "model_id", "(unresolved)"),
               json_get_str(config, "base_url", "?"));
    const json_t *ct = json_object_get(config, "chat_template");
    if (strcmp(json_get_str(config, "endpoint", "completions"), "chat") == 0)
        buf_printf(b,
                   "- **Endpoint:** /v1/chat/completions, messages counted through the %s chat "
                   "template (%s)\n",
                   json_get_str(ct, "name", "?"), json_get_str(ct, "evidence", "?"));
    else
        buf_printf(b, "- **Endpoint:** /v1/completions, prompt template %s\n",
                   json_get_str(config, "prompt_template", "?"));
    const json_t *km = json_object_get(s, "kv_mode");
    if (json_is_false(json_object_get(km, "applies")))
        buf_printf(b, "- **KV mode:** %s\n", json_get_str(km, "not_applicable", "not applicable"));
    else
        buf_printf(b, "- **KV mode:** %s (host cache %.0f GB, disk cache %.0f GB)\n",
                   json_get_str(km, "mode", "?"), json_get_num(km, "cpu_cache_gb", 0),
                   json_get_num(km, "disk_cache_gb", 0));
    const json_t *fp = json_object_get(s, "fingerprint");
    buf_printf(b, "- **Machine:** %s, kernel %s, %s, %lld CPUs; kvbench %s (%s)\n",
               json_get_str(fp, "host", "?"), json_get_str(fp, "kernel", "?"),
               json_get_str(fp, "cpu_model", "?"), json_get_int(fp, "cpu_count", 0),
               json_get_str(fp, "kvbench_version", "?"), json_get_str(fp, "git_sha", "?"));
    const json_t *bd = json_object_get(s, "block_device");
    buf_printf(b, "- **Block device:** %s\n", json_get_str(bd, "name", "unavailable"));
}

/* Why an invalid run is invalid: the rule, then each detail. */
static void md_invalid(struct buf *b, const json_t *s)
{
    buf_append_str(b, "\n## Why the run is invalid\n\n");
    const struct validity_rule *rule = validity_rule(json_get_str(s, "invalid_reason", NULL));
    if (rule)
        buf_printf(b, "`%s`: %s.\n\n", rule->reason, rule->when);
    size_t i;
    const json_t *d;
    json_array_foreach(json_object_get(s, "invalid_details"), i, d)
    {
        /* the reasons are text (the reference's strings); anything else as JSON */
        if (json_is_string(d)) {
            buf_printf(b, "- %s\n", json_string_value(d));
            continue;
        }
        char *t = json_text(d, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        buf_printf(b, "- `%s`\n", t ? t : "(unprintable)");
        free(t);
    }
}

static bool is_open_loop(const json_t *ps)
{
    return strcmp(json_get_str(json_object_get(ps, "load"), "mode", ""), "open") == 0;
}

/* Open-loop phases: the schedule against what was achieved, and the corrected figures. */
static void md_open_loop(struct buf *b, const json_t *phases)
{
    size_t i;
    const json_t *ps;
    bool any_open = false;
    json_array_foreach(phases, i, ps) any_open |= is_open_loop(ps);
    if (!any_open)
        return;
    buf_append_str(b, "\n## Open loop: the schedule and coordinated omission\n\n"
                      "Requests were due at the arrival process's times. *Corrected* figures "
                      "count from when a request was due, not from when it went out, so time "
                      "spent waiting for a free slot is not hidden (docs/RUN.md).\n\n"
                      "| phase | target req/s | achieved | lag p50 ms | lag p99 | client lag "
                      "p99 | TTFT p50 | corrected | TTFT p95 | corrected | latency p50 | "
                      "corrected |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    json_array_foreach(phases, i, ps)
    {
        if (!is_open_loop(ps))
            continue;
        buf_printf(b, "| %s | ", json_get_str(ps, "phase", "?"));
        const json_t *tr = json_object_get(ps, "target_rate");
        if (json_is_string(tr))
            buf_append_str(b, json_string_value(tr));
        else
            cell_num(b, ps, "target_rate", "%.1f");
        buf_append_str(b, " | ");
        cell_num(b, ps, "achieved_rate", "%.1f");
        cell_stat(b, ps, "schedule_lag_ms", "p50");
        cell_stat(b, ps, "schedule_lag_ms", "p99");
        cell_stat(b, ps, "client_lag_ms", "p99");
        cell_stat(b, ps, "ttft_ms", "p50");
        cell_stat(b, ps, "ttft_ms_corrected", "p50");
        cell_stat(b, ps, "ttft_ms", "p95");
        cell_stat(b, ps, "ttft_ms_corrected", "p95");
        cell_stat(b, ps, "latency_ms", "p50");
        cell_stat(b, ps, "latency_ms_corrected", "p50");
        buf_append_str(b, " |\n");
    }
}

/* The phases' table, the open loop, the overall line, goodput, telemetry and the KV story. */
static void md_phases(struct buf *b, const json_t *s)
{
    const json_t *phases = json_object_get(s, "phase_summaries");
    buf_append_str(b, "\n## Phases\n\n| phase | conc | requests | errors | req/s | lat p50 ms | "
                      "lat p95 | lat p99 | TTFT p50 ms | TTFT p95 | TTFT p99 | disk read MiB | "
                      "disk write MiB | KV offload blocks | KV onboard blocks | from disk | "
                      "reused tokens |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
                      "---|---|---|\n");
    size_t i;
    const json_t *ps;
    json_array_foreach(phases, i, ps) phase_row(b, ps);
    md_open_loop(b, phases);
    const json_t *ov = json_object_get(s, "overall_summary");
    if (!json_get_bool(ov, "excluded", false)) {
        buf_append_str(b, "\nOverall (included phases): ");
        buf_printf(b, "%lld requests, %lld errors, ", json_get_int(ov, "total_requests", 0),
                   json_get_int(ov, "error_requests", 0));
        cell_num(b, ov, "req_per_s", "%.2f req/s");
        buf_append_str(b, ", latency p50 ");
        cell_num(b, json_object_get(ov, "latency_ms"), "p50", "%.1f ms");
        buf_append_str(b, ", TTFT p50 ");
        cell_num(b, json_object_get(ov, "ttft_ms"), "p50", "%.1f ms");
        buf_append_str(b, ".\n");
    }
    goodput_section(b, s);
    bool any_tel = false;
    json_array_foreach(phases, i, ps) any_tel |= json_object_get(ps, "telemetry") != NULL;
    if (any_tel) {
        buf_append_str(b, "\n## Disk and cache directory per phase (telemetry)\n\n| phase | "
                          "peak read MB/s | peak write MB/s | mean read MB/s | mean write MB/s | "
                          "peak util % | files created | files deleted | files grown | MiB "
                          "added | MiB removed |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
        json_array_foreach(phases, i, ps) telemetry_row(b, ps);
    }
    nodes_section(b, phases);
    bool any_gpu = false;
    json_array_foreach(phases, i, ps)
    {
        const json_t *g = json_object_get(json_object_get(ps, "telemetry"), "gpu");
        any_gpu |= json_object_get(json_object_get(ps, "kvbm_metrics_delta"), "gpu_copies") ||
                   json_get_int(g, "samples", 0) > 0;
    }
    if (any_gpu) {
        buf_append_str(
            b, "\n## GPU per phase\n\nMemory and utilisation sampled from the GPU "
               "(`--collect-telemetry`); copies between device and host memory from "
               "the engine's own counters (`kvbench serve --g1 cuda`), with their "
               "effective rate: bytes over the transfers' wall time, disk reads and "
               "checksum checks of the blocks included (`kvbench tiers` measures the "
               "bare link).\n\n| phase | GPU mem peak MiB | GPU util "
               "mean % | host→device MiB | host→device GB/s eff. | device→host MiB | "
               "device→host GB/s eff. | copy errors |\n|---|---|---|---|---|---|---|---|\n");
        json_array_foreach(phases, i, ps) gpu_row(b, ps);
    }
    buf_append_str(b, "\n## What happened to the KV cache\n\n");
    json_array_foreach(phases, i, ps) kv_story(b, ps);
}

/* The scenario's own section (its table row's report), then, for every scenario, what was sent
 * as distinct hashes (the reference's section) and the notes. */
static void md_signals(struct buf *b, const json_t *s, const json_t *config)
{
    buf_append_str(b, "\n## Signals\n\n");
    const json_t *ov = json_object_get(s, "overall_summary");
    const json_t *src =
        json_get_bool(ov, "excluded", false) ? json_object_get(s, "kvbm_metrics") : ov;
    const struct scenario *sc = scenario_find(json_get_str(s, "scenario", ""));
    if (sc && sc->report)
        sc->report(b, s, src, config);
    const json_t *ri = json_object_get(s, "request_identity");
    buf_append_str(b, "## Request identity\n\n");
    buf_printf(b,
               "- Requests: %lld\n- Unique prompt hashes: %lld\n- Unique generation parameter "
               "hashes: %lld\n- Unique request identity hashes: %lld\n- Unique payload hashes: "
               "%lld\n\n",
               json_get_int(ri, "total_requests", 0),
               json_get_int(ri, "unique_prompt_sha256_count", 0),
               json_get_int(ri, "unique_generation_params_sha256_count", 0),
               json_get_int(ri, "unique_request_identity_sha256_count", 0),
               json_get_int(ri, "unique_request_payload_sha256_count", 0));
    const json_t *notes = json_object_get(s, "notes");
    if (json_array_size(notes)) {
        buf_append_str(b, "## Notes\n\n");
        size_t i;
        const json_t *n;
        json_array_foreach(notes, i, n) buf_printf(b, "- %s\n", json_string_value(n));
    }
}

char *report_markdown(const json_t *s, const json_t *config)
{
    struct buf b = BUF_INIT;
    md_header(&b, s, config);
    if (!json_get_bool(s, "run_valid", false))
        md_invalid(&b, s);
    md_phases(&b, s);
    md_signals(&b, s, config);
    if (buf_failed(&b)) { /* never a short report */
        buf_free(&b);
        return NULL;
    }
    return buf_detach(&b);
}
