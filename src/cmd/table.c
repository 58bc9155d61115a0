/*
 * table.c - the subcommands kvbench offers. Only commands that work are listed here.
 */
#include "cmd/cmd.h"

#include <stddef.h>

const struct cmd CMD_TABLE[] = {
    {NULL, NULL, NULL},
};
