/*
 * table.c - the subcommands kvbench offers. Only commands that work are listed here.
 */
#include "cmd/cmd.h"

#include <stddef.h>

int cmd_run(int argc, char **argv);
int cmd_serve(int argc, char **argv);

const struct cmd CMD_TABLE[] = {
    {"run", cmd_run,
     "one benchmark run (a scenario of phases) against an OpenAI-compatible server"},
    {"serve", cmd_serve, "run the embedded engine: OpenAI-compatible server with tiered KV cache"},
    {NULL, NULL, NULL},
};
