/*
 * table.c - the subcommands kvbench offers. Only commands that work are listed here.
 */
#include "cmd/cmd.h"

#include <stddef.h>

int cmd_run(int argc, char **argv);
int cmd_ready(int argc, char **argv);
int cmd_health(int argc, char **argv);
int cmd_smoke(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_matrix(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_report(int argc, char **argv);

const struct cmd CMD_TABLE[] = {
    {"run", cmd_run,
     "one benchmark run (a scenario of phases) against an OpenAI-compatible server"},
    {"serve", cmd_serve, "run the embedded engine: OpenAI-compatible server with tiered KV cache"},
    {"ready", cmd_ready, "wait until a server is ready (models listed, health, streak, timeout)"},
    {"health", cmd_health, "print /health and /v1/models; non-zero when not healthy"},
    {"smoke", cmd_smoke, "one Llama 3 templated completion; prints the text"},
    {"compare", cmd_compare, "the same workload per kv mode, restarting the server between modes"},
    {"matrix", cmd_matrix,
     "the runbook's matrix: short and long sweeps and an eviction/replay run"},
    {"report", cmd_report,
     "print a run's report.md again, draw its report.html (--html), or export it as CSV (--csv)"},
    {"summary", cmd_summary, "one table over many runs' summary.json (paths, directories, globs)"},
    {"tokenize", cmd_tokenize, "encode, count or decode tokens with a model's tokenizer.json"},
    {"demo", cmd_demo,
     "the whole story on the embedded engine: reuse, eviction/replay, mode compare"},
    {NULL, NULL, NULL},
};
