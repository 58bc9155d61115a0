/*
 * runnodes.c - other nodes' metrics around a run's phases.
 *
 * Scraped nodes are read right beside the engine's own snapshots (before: after the engine's
 * KV snapshot and the local block device; after: likewise), so a node's disk delta and the
 * engine's disk counters cover the same moments. A Prometheus server is asked only when the
 * phases are over: it adds no load while they run, and by then it has scraped past their ends;
 * its windows are the phases' own wall-clock starts and ends (phase_state.wall_start_s /
 * wall_end_s).
 */
#include "run/runnodes.h"

#include "probe/promapi.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/log.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct run_nodes {
    struct run_nodes_config cfg;
    struct node_target *targets;
    struct node_snap *before; /* one per target, taken by run_nodes_before */
    size_t n;
};

struct run_nodes *run_nodes_new(const struct run_nodes_config *cfg, char *err)
{
    if (!cfg->n_scrape && !cfg->prometheus_url)
        return NULL;
    struct run_nodes *rn = calloc(1, sizeof *rn);
    if (!rn || (cfg->n_scrape && (!(rn->targets = calloc(cfg->n_scrape, sizeof *rn->targets)) ||
                                  !(rn->before = calloc(cfg->n_scrape, sizeof *rn->before))))) {
        run_nodes_free(rn);
        err_set(err, "out of memory");
        return NULL;
    }
    rn->cfg = *cfg;
    for (; rn->n < cfg->n_scrape; rn->n++) {
        if (nodes_target_parse(cfg->scrape[rn->n], &rn->targets[rn->n], err) < 0) {
            run_nodes_free(rn);
            return NULL;
        }
    }
    return rn;
}

const struct node_target *run_nodes_targets(const struct run_nodes *rn, size_t *n)
{
    *n = rn ? rn->n : 0;
    return rn ? rn->targets : NULL;
}

void run_nodes_before(struct run_nodes *rn)
{
    for (size_t i = 0; rn && i < rn->n; i++) {
        node_snap_free(&rn->before[i]);
        nodes_scrape(rn->targets[i].url, rn->cfg.scrape_timeout_s, &rn->before[i]);
        if (!rn->before[i].ok)
            log_warn("node %s: %s", rn->targets[i].name, rn->before[i].error);
    }
}

void run_nodes_after(struct run_nodes *rn, struct phase_state *ps)
{
    if (!rn || !rn->n)
        return;
    json_t *nodes = json_object();
    for (size_t i = 0; i < rn->n; i++) {
        struct node_snap after;
        nodes_scrape(rn->targets[i].url, rn->cfg.scrape_timeout_s, &after);
        if (!after.ok)
            log_warn("node %s: %s", rn->targets[i].name, after.error);
        json_t *o = json_pack("{s:s, s:s}", "source", "scrape", "url", rn->targets[i].url);
        json_t *fig = nodes_phase_json(&rn->before[i], &after);
        json_object_update(o, fig);
        json_decref(fig);
        json_object_set_new(nodes, rn->targets[i].name, o);
        node_snap_free(&after);
        node_snap_free(&rn->before[i]);
    }
    json_decref(ps->nodes);
    ps->nodes = nodes;
}

static void warn_to(json_t *warnings, const char *code, const char *msg)
{
    log_warn("%s", msg);
    json_array_append_new(warnings, json_pack("{s:s, s:s}", "code", code, "message", msg));
}

/* The servers' answers, {family: {phase: answer}}, one file per family under telemetry/. */
static void write_raw(const char *run_dir, const json_t *raw, json_t *warnings)
{
    char dir[PATH_MAX], path[PATH_MAX + 128], err[ERR_LEN];
    snprintf(dir, sizeof dir, "%s/telemetry", run_dir);
    if (fs_mkdir_p(dir, err) < 0) {
        warn_to(warnings, "prometheus_raw_not_written", err);
        return;
    }
    const char *family;
    const json_t *by_phase;
    json_object_foreach((json_t *)raw, family, by_phase)
    {
        snprintf(path, sizeof path, "%s/prometheus_%s.json", dir, family);
        if (json_write_file(path, by_phase, err) < 0) {
            warn_to(warnings, "prometheus_raw_not_written", err);
            return;
        }
    }
}

/* The window's nodes into ps->nodes; a name a scraped node has already gets "prometheus:". */
static void merge_nodes(struct phase_state *ps, json_t *found)
{
    if (!ps->nodes)
        ps->nodes = json_object();
    const char *name;
    json_t *node;
    json_object_foreach(found, name, node)
    {
        char key[NODE_NAME_MAX * 2 + 16];
        snprintf(key, sizeof key, "%s%s", json_object_get(ps->nodes, name) ? "prometheus:" : "",
                 name);
        json_object_set(ps->nodes, key, node);
    }
}

void run_nodes_prometheus(struct run_nodes *rn, struct run_state *rs, const char *run_dir,
                          const volatile sig_atomic_t *stop, json_t *warnings)
{
    if (!rn || !rn->cfg.prometheus_url)
        return;
    struct promapi_config pc = {rn->cfg.prometheus_url, rn->cfg.prometheus_match,
                                rn->cfg.prometheus_timeout_s, stop};
    double last_end = 0;
    for (size_t i = 0; i < rs->n_phases; i++)
        if (rs->phases[i].ran && rs->phases[i].wall_end_s > last_end)
            last_end = rs->phases[i].wall_end_s;
    if (last_end == 0)
        return;
    char err[ERR_LEN], msg[ERR_LEN + 96], q[512];
    log_info("prometheus: waiting until %s has scraped past the last phase", pc.url);
    int state = promapi_wait_past(&pc, last_end, q, sizeof q, err);
    if (state == PROMAPI_BEHIND) {
        snprintf(msg, sizeof msg, "--prometheus-url: %s; the phases are read as they are", err);
        warn_to(warnings, "prometheus_behind", msg);
    } else if (state == PROMAPI_UNAVAILABLE) {
        snprintf(msg, sizeof msg, "--prometheus-url: %s; no node figures from it", err);
        warn_to(warnings, "prometheus_unavailable", msg);
    }
    json_t *raw = json_object();
    for (size_t i = 0; i < rs->n_phases; i++) {
        struct phase_state *ps = &rs->phases[i];
        if (!ps->ran || ps->wall_end_s <= ps->wall_start_s)
            continue;
        json_t *answers = json_object();
        json_t *found =
            state == PROMAPI_UNAVAILABLE
                ? json_pack("{s:{s:s, s:s, s:b, s:s, s:s}}", "prometheus", "source", "prometheus",
                            "url", pc.url, "available", 0, "reason", err, "query", q)
                : promapi_window_nodes(&pc, ps->wall_start_s, ps->wall_end_s, answers);
        merge_nodes(ps, found);
        const char *family;
        json_t *answer;
        json_object_foreach(answers, family, answer)
        {
            json_t *f = json_object_get(raw, family);
            if (!f)
                json_object_set_new(raw, family, f = json_object());
            json_object_set(f, ps->name, answer);
        }
        json_decref(answers);
        json_decref(found);
    }
    write_raw(run_dir, raw, warnings);
    json_decref(raw);
}

void run_nodes_free(struct run_nodes *rn)
{
    if (!rn)
        return;
    for (size_t i = 0; rn->before && i < rn->n; i++)
        node_snap_free(&rn->before[i]);
    free(rn->before);
    free(rn->targets);
    free(rn);
}
