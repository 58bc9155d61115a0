/*
 * table.c - the subcommands kvbench offers. Only commands that work are listed here.
 */
#include "cmd/cmd.h"

#include <stddef.h>

int cmd_serve(int argc, char **argv);

const struct cmd CMD_TABLE[] = {
    {"serve", cmd_serve, "run the embedded engine: OpenAI-compatible server with tiered KV cache"},
    {NULL, NULL, NULL},
};
