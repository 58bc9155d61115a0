/*
 * comparison.c - `kvbench compare` (SPEC §2): the same workload once per KV mode, or --repeats
 * times per mode interleaved (A B A B ...), each run preceded by the restart hook and the
 * readiness wait. Analysis decides (verdict/compare.c, verdict.c) and report/ renders
 * (comparison.md, report.html); this file only runs the modes and writes the directory, and a
 * file that cannot be written fails the comparison.
 */
#include "run/comparison.h"

#include "verdict/compare.h"
#include "verdict/verdict.h"
#include "report/html.h"
#include "report/report.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void event(const struct compare_config *c, const char *ev, const char *mode,
                  const char *detail)
{
    if (c->event)
        c->event(ev, mode, detail, c->event_user);
}

int compare_prepare_mode(const struct compare_config *c, const char *mode, char *e)
{
    if (c->interrupted && *c->interrupted) {
        snprintf(e, ERR_LEN, "interrupted");
        return -1;
    }
    if (c->restart) {
        event(c, "restart", mode, NULL);
        if (c->restart(mode, c->restart_user, e) < 0) {
            event(c, "failed", mode, e);
            return -1;
        }
    }
    if (!c->skip_ready) {
        event(c, "ready", mode, NULL);
        if (ready_wait(&c->ready, NULL, NULL) < 0) {
            snprintf(e, ERR_LEN, "the server was not ready within %.0f s", c->ready.timeout_s);
            event(c, "failed", mode, e);
            return -1;
        }
    }
    return 0;
}

/* One run of mode: restart, readiness, the run. Its summary (new reference), or NULL with e. */
static json_t *one_run(const struct compare_config *c, const char *mode, const char *run_id,
                       struct compare_outcome *out, char *e)
{
    if (compare_prepare_mode(c, mode, e) < 0) {
        out->all_valid = false;
        return NULL;
    }
    struct run_config rc_mode = c->run;
    if (kv_mode_parse(mode, &rc_mode.scen.kv_mode) < 0) { /* the command checked every name */
        snprintf(e, ERR_LEN, "unknown kv mode '%s'", mode);
        event(c, "failed", mode, e);
        out->all_valid = false;
        return NULL;
    }
    rc_mode.run_id = run_id;
    struct run_outcome ro;
    event(c, "run", mode, run_id);
    int r = bench_run(&rc_mode, c->interrupted, &ro, e);
    if (r != RUN_OK) {
        event(c, "failed", mode, e);
        out->all_valid = false;
        return NULL;
    }
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/summary.json", ro.run_dir);
    json_t *s = json_read_file(path, e);
    if (!ro.valid || !s)
        out->all_valid = false;
    event(c, "done", mode, ro.valid ? "valid" : ro.invalid_reason);
    return s;
}

/* comparison.json's per-mode entries, before any run: {mode, label, run_id} (and, with repeats,
 * the lists of their runs). A mode named twice (an A/A comparison) gets a label and run ids of
 * its own per side. Returns the entries, or NULL (out of memory). */
static json_t *mode_entries(const struct compare_config *c, size_t repeats, char (*labels)[80])
{
    json_t *modes = json_array();
    if (!modes)
        return NULL;
    for (size_t i = 0; i < c->n_modes; i++)
        compare_label(c->modes, c->n_modes, i, labels[i], sizeof labels[i]);
    for (size_t i = 0; i < c->n_modes; i++) {
        char run_id[256];
        if (repeats > 1)
            snprintf(run_id, sizeof run_id, "%s_%s_r1", c->compare_id, labels[i]);
        else
            snprintf(run_id, sizeof run_id, "%s_%s", c->compare_id, labels[i]);
        json_t *entry =
            json_pack("{s:s, s:s, s:s}", "mode", c->modes[i], "label", labels[i], "run_id", run_id);
        if (repeats > 1) {
            json_object_set_new(entry, "repeats", json_array());
            json_object_set_new(entry, "run_ids", json_array());
        }
        json_array_append_new(modes, entry);
    }
    return modes;
}

/* Every run, interleaved: every mode once, then every mode again, so that drift over time
 * (thermal, the page cache, other load) falls on all modes alike. */
static void run_modes(const struct compare_config *c, size_t repeats, char (*labels)[80],
                      json_t *modes, struct compare_outcome *out)
{
    for (size_t rep = 0; rep < repeats; rep++) {
        for (size_t i = 0; i < c->n_modes; i++) {
            const char *mode = c->modes[i];
            json_t *entry = json_array_get(modes, i);
            char run_id[256], e[ERR_LEN] = "";
            if (repeats > 1)
                snprintf(run_id, sizeof run_id, "%s_%s_r%zu", c->compare_id, labels[i], rep + 1);
            else
                snprintf(run_id, sizeof run_id, "%s_%s", c->compare_id, labels[i]);
            json_t *s = one_run(c, mode, run_id, out, e);
            if (rep == 0) {
                if (s)
                    json_object_set(entry, "summary", s);
                else
                    json_object_set_new(entry, "error", json_string(e));
            }
            if (repeats > 1) {
                json_array_append_new(json_object_get(entry, "run_ids"), json_string(run_id));
                json_array_append(json_object_get(entry, "repeats"), s ? s : json_null());
            }
            json_decref(s);
        }
    }
}

/* The comparison's warnings: KV modes that mean nothing on the engine, compared without a
 * restart that set each. New reference. */
static json_t *mode_warnings(const struct compare_config *c, const json_t *modes)
{
    json_t *warnings = json_array();
    const json_t *km = NULL;
    for (size_t i = 0; i < json_array_size(modes) && !km; i++) {
        const json_t *k =
            json_object_get(json_object_get(json_array_get(modes, i), "summary"), "kv_mode");
        if (json_is_false(json_object_get(k, "applies")))
            km = k;
    }
    if (km && !c->restart_sets_mode) {
        char msg[700];
        snprintf(msg, sizeof msg,
                 "the modes are %s, and no --restart-cmd set each mode ({mode} or "
                 "$BENCH_KV_MODE): both sides ran the same server configuration, so a difference "
                 "here is noise",
                 json_get_str(km, "not_applicable", "not applicable on this engine"));
        json_array_append_new(
            warnings, json_pack("{s:s, s:s}", "code", "kv_modes_not_applicable", "message", msg));
        log_warn("compare: %s", msg);
    }
    return warnings;
}

/* comparison.json from the runs: the analysis, the warnings, the decision and the gains asked
 * for. New reference. */
static json_t *comparison_of(const struct compare_config *c, const json_t *modes,
                             struct compare_outcome *out)
{
    json_t *cmp = compare_build(modes);
    json_t *warnings = mode_warnings(c, modes);
    json_object_set_new(cmp, "warnings", warnings);
    /* the decision again, now that the warnings are known */
    json_object_set_new(cmp, "decision",
                        verdict_decide(json_object_get(cmp, "phases"), modes, warnings));
    snprintf(out->decision, sizeof out->decision, "%s",
             json_get_str(json_object_get(cmp, "decision"), "line", ""));
    json_t *gains = json_array();
    for (size_t k = 0; k < c->n_expect; k++) {
        json_t *g = verdict_expect_gain(json_object_get(cmp, "phases"), modes, &c->expect[k]);
        out->gains_shown &= json_get_bool(g, "shown", false);
        json_array_append_new(gains, g);
    }
    json_object_set_new(cmp, "expect_gain", gains);
    json_object_set_new(cmp, "compare_id", json_string(c->compare_id));
    json_object_set_new(cmp, "scenario", json_string(c->run.scen.scenario));
    json_object_set_new(cmp, "base_url", json_string(c->run.base_url));
    json_object_set_new(cmp, "all_valid", json_boolean(out->all_valid));
    return cmp;
}

/* comparison.json, comparison.md and report.html in dir; the first failure stops and fails. */
static int write_comparison(const char *dir, const json_t *cmp, char *err)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/comparison.json", dir);
    if (json_write_file(path, cmp, err) < 0)
        return -1;
    char *md = compare_markdown(cmp);
    if (!md)
        return err_set(err, "comparison.md: out of memory");
    snprintf(path, sizeof path, "%s/comparison.md", dir);
    int rc = fs_write_atomic(path, md, strlen(md), err);
    free(md);
    if (rc < 0)
        return -1;
    return html_write_compare(dir, err) < 0 ? -1 : 0;
}

int compare_run(const struct compare_config *c, struct compare_outcome *out, char *err)
{
    memset(out, 0, sizeof *out);
    snprintf(out->dir, sizeof out->dir, "%s/%s", c->run.results_root, c->compare_id);
    if (fs_mkdir_new(out->dir, err) < 0)
        return -1;
    out->all_valid = true;
    out->gains_shown = true;
    size_t repeats = c->repeats > 1 ? c->repeats : 1;
    char(*labels)[80] = calloc(c->n_modes ? c->n_modes : 1, sizeof *labels);
    json_t *modes = labels ? mode_entries(c, repeats, labels) : NULL;
    if (!modes) {
        free(labels);
        return err_set(err, "out of memory");
    }
    run_modes(c, repeats, labels, modes, out);
    free(labels);
    json_t *cmp = comparison_of(c, modes, out);
    int rc = write_comparison(out->dir, cmp, err);
    json_decref(cmp);
    json_decref(modes);
    return rc;
}
