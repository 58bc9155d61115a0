/*
 * merge.c - `kvbench merge DIR...`: one run directory from the run directories of the shards of
 * one run (kvbench run --shard I/N, docs/MERGE.md). Exit 0 for a valid merged run, 1 for an
 * invalid one (still written: a missing, unfinished or invalid shard, or phases that started too
 * far apart), 2 when nothing was written (bad flags, directories that are not shards of one run,
 * a malformed artifact, an existing run directory).
 */
#include "cmd/cmd.h"
#include "cmd/runargs.h"
#include "run/merge.h"
#include "run/shard.h"
#include "util/err.h"
#include "util/json.h"
#include "util/log.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MERGE_DIRS_MAX 4096

static const char USAGE[] =
    "kvbench merge DIR... [--results-root R] [--run-id ID] [--max-skew-s S]";
static const char DESCRIPTION[] =
    "One run from the run directories of its shards (kvbench run --shard I/N on several\n"
    "client hosts). Checks that they are shards of one run (the same config_sha256 and count,\n"
    "no index twice) and writes <results-root>/<run-id> like any run: requests.jsonl with every\n"
    "shard's rows once (in start order, each naming its shard), summary.json built by the run's\n"
    "own summary code with every statistic recomputed from the union of the rows (percentiles\n"
    "of the union, never averaged; counts summed; rates over the union's span), the engine's KV\n"
    "deltas once per phase (the earliest before- and latest after-snapshot across the shards),\n"
    "report.md and report.html. The run is valid when every shard is: a missing index, a shard\n"
    "without summary.json (killed), an invalid shard or a phase whose shards started more than\n"
    "--max-skew-s apart makes it invalid, naming the shard (docs/MERGE.md).\n"
    "Exit status: 0 valid, 1 invalid (written), 2 nothing written (usage, not shards of one\n"
    "run, a malformed artifact: FILE:LINE).";

/* The run's configuration from the reference shard's config.json args; notes say what of args
 * this kvbench does not know. Returns 0 or -1 (printed). */
static int rebuild_config(const struct merge_set *set, struct run_args *ra, json_t *notes)
{
    char err[ERR_LEN];
    const json_t *args = json_object_get(set->ref->config, "args");
    /* each shard's own and each host's own, as config_sha256 leaves them out (run/shard.h): the
     * tokenizer path, the cache directory need not exist on this machine, and no one shard's
     * stands for the run */
    const char *skip[64];
    shard_skip_args(skip, sizeof skip / sizeof skip[0]);
    if (run_args_config(args, skip, ra, err) < 0) {
        fprintf(stderr, "kvbench merge: %s/config.json args: %s\n", set->ref->dir, err);
        return -1;
    }
    char text[1024];
    snprintf(text, sizeof text,
             "the run's configuration is shard %lld's config.json args (%s), without the "
             "per-shard and the host-local ones (each client's log level, progress, telemetry, "
             "tokenizer path, KV cache directory and container name: at their defaults)",
             set->ref->index, set->ref->dir);
    json_array_append_new(notes, json_string(text));
    if (json_array_size(ra->ignored)) {
        char *keys = json_text(ra->ignored, JSON_COMPACT);
        snprintf(text, sizeof text, "args not known to this kvbench, left out: %s",
                 keys ? keys : "?");
        free(keys);
        json_array_append_new(notes, json_string(text));
    }
    return 0;
}

/* The files the merged run has, for the closing line. */
static void files_line(const char *dir, const char *report, char *list, size_t cap)
{
    const char *files[] = {"summary.json", report, "report.html", "requests.jsonl"};
    size_t used = 0;
    list[0] = '\0';
    for (size_t i = 0; i < sizeof files / sizeof files[0] && used < cap; i++) {
        char path[PATH_MAX + 256];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (access(path, R_OK) == 0)
            used += (size_t)snprintf(list + used, cap - used, "%s%s", used ? ", " : "", files[i]);
    }
}

static int merge_dirs(const char *const *dirs, size_t n, const struct merge_options *flags)
{
    char err[ERR_LEN];
    struct merge_set set;
    if (merge_open(dirs, n, &set, err) < 0) {
        fprintf(stderr, "kvbench merge: %s\n", err);
        merge_close(&set);
        return EXIT_USAGE;
    }
    struct run_args ra;
    json_t *notes = json_array();
    if (rebuild_config(&set, &ra, notes) < 0) {
        run_args_release(&ra);
        json_decref(notes);
        merge_close(&set);
        return EXIT_USAGE;
    }
    struct merge_options o = *flags;
    o.cfg = &ra.cfg;
    o.notes = notes;
    struct merge_outcome out;
    int rc = merge_write(&set, &o, &out, err);
    int code = rc == RUN_USAGE ? EXIT_USAGE : rc == RUN_FAILED ? 1 : out.valid ? 0 : 1;
    if (rc != RUN_OK) {
        fprintf(stderr, "kvbench merge: %s\n", err);
    } else {
        char list[256];
        files_line(out.run_dir, ra.cfg.report_filename, list, sizeof list);
        printf("merge %s: %s%s%s, %zu requests from %zu of %lld shards; results in %s (%s)\n",
               o.run_id ? o.run_id : set.base_run_id, out.valid ? "valid" : "INVALID (",
               out.valid ? "" : out.invalid_reason, out.valid ? "" : ")", out.requests, set.n,
               set.count, out.run_dir, list);
    }
    run_args_release(&ra);
    json_decref(notes);
    merge_close(&set);
    return code;
}

int cmd_merge(int argc, char **argv)
{
    struct merge_options o = {0};
    int log_level = -1;
    struct opt opts[] = {
        CMD_OPT_RESULTS_ROOT(.dest = &o.results_root, "where the merged run directory goes"),
        {.name = "run-id",
         .type = OPT_STR,
         .dest = &o.run_id,
         .metavar = "ID",
         .help = "the merged run's directory name (default: the shards' base_run_id)"},
        {.name = "max-skew-s",
         .type = OPT_DURATION,
         .dest = &o.max_skew_s,
         .def = "2",
         .min = 0,
         .max = 86400,
         .help = "a phase whose shards started further apart than this (their own started_at) "
                 "makes the merged run invalid (shard_skew)"},
        CMD_OPT_LOG_LEVEL(.dest = &log_level, "INFO", "log verbosity"),
        {0},
    };
    static const char *items[MERGE_DIRS_MAX];
    struct opt_positional pos = {.metavar = "DIR", .max = MERGE_DIRS_MAX, .items = items};
    int rc = cmd_parse("merge", USAGE, DESCRIPTION, opts, argc, argv, &pos);
    if (rc >= 0)
        return rc;
    cmd_set_log_level(log_level);
    if (pos.n == 0) {
        fprintf(stderr, "kvbench merge: expected the shards' run directories (see --help)\n");
        return EXIT_USAGE;
    }
    return merge_dirs(items, pos.n, &o);
}
