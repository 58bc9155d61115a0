/*
 * run.c - `kvbench run`: one benchmark run; exit 0 for a valid run, 1 for an invalid one, 2 for
 * a usage error (nothing written).
 */
#include "cmd/cmd.h"
#include "cmd/runflags.h"
#include "util/err.h"
#include "util/log.h"

#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>

static const char USAGE[] = "kvbench run [options]";
static const char DESCRIPTION[] =
    "One benchmark run against an OpenAI-compatible server: a scenario made of phases\n"
    "(standard: warmup, main; eviction_replay: warmup, warm_A, pressure_B, replay_A;\n"
    "reuse_verify: reuse_1..3; multi_turn: warmup, round_1..R; trace: warmup, window_1..),\n"
    "each run by --concurrency closed-loop workers, with KV metrics snapshots and block-device\n"
    "counters before and after. Writes\n"
    "<results-root>/<run-id>/{config.json, prompts_manifest.jsonl, requests.jsonl,\n"
    "kvbm_metrics_snapshots.jsonl, summary.json, report.md, report.html}: report.html is the\n"
    "verdict and charts on one self-contained page (open it in a browser); 'kvbench report\n"
    "RUN_DIR' prints report.md again and 'kvbench report RUN_DIR --html' draws report.html again.\n"
    "Exit status: 0 valid run, 1 invalid run, 2 usage error.";

int cmd_run(int argc, char **argv)
{
    struct run_flags f;
    memset(&f, 0, sizeof f);
    struct opt opts[RUN_FLAGS_MAX + 1];
    memset(opts, 0, sizeof opts);
    size_t n = 0;
    f.shard_allowed = true; /* the one command that sends a part of a run */
    run_flags_add(&f, opts, &n, RUN_FLAGS_MAX, NULL);
    int rc = cmd_parse("run", USAGE, DESCRIPTION, opts, argc, argv, NULL);
    if (rc >= 0) {
        opts_free(opts);
        return rc;
    }
    cmd_set_log_level(f.log_level);
    char err[ERR_LEN];
    struct run_config cfg;
    if (run_flags_config(&f, opts, &cfg, err) < 0) {
        fprintf(stderr, "kvbench run: %s\n", err);
        opts_free(opts);
        return EXIT_USAGE;
    }
    cmd_catch_signals();

    struct run_outcome out;
    rc = bench_run(&cfg, &cmd_interrupted, &out, err);
    run_flags_release(&cfg);
    opts_free(opts);
    if (rc == RUN_USAGE) {
        fprintf(stderr, "kvbench run: %s\n", err);
        return EXIT_USAGE;
    }
    if (rc == RUN_FAILED) {
        fprintf(stderr, "kvbench run: %s\n", err);
        return 1;
    }
    /* name only the files that are there (a full results disk may have kept some out) */
    const char *files[] = {"summary.json", cfg.report_filename, "report.html"};
    char list[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[PATH_MAX + 256];
        snprintf(path, sizeof path, "%s/%s", out.run_dir, files[i]);
        if (access(path, R_OK) == 0 && used < sizeof list)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "",
                                     files[i]);
    }
    char status[160], who[160];
    if (cfg.shard.spec.count)
        snprintf(who, sizeof who, "%s, shard %zu of %zu", cfg.run_id, cfg.shard.spec.index,
                 cfg.shard.spec.count);
    else
        snprintf(who, sizeof who, "%s", cfg.run_id);
    if (out.valid)
        snprintf(status, sizeof status, "valid");
    else
        snprintf(status, sizeof status, "INVALID (%s)", out.invalid_reason);
    if (used)
        printf("run %s: %s, %zu requests; results in %s (%s)\n", who, status, out.requests_sent,
               out.run_dir, list);
    else
        printf("run %s: %s, %zu requests; no summary or report could be written in %s\n", who,
               status, out.requests_sent, out.run_dir);
    return out.valid ? 0 : 1;
}
