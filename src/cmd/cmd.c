/*
 * cmd.c - helpers shared by the subcommands.
 */
#include "cmd/cmd.h"

#include "util/err.h"

#include <string.h>

const struct cmd *cmd_find(const char *name)
{
    for (const struct cmd *c = CMD_TABLE; c->name; c++)
        if (strcmp(c->name, name) == 0) return c;
    return NULL;
}

int cmd_parse(const char *name, const char *usage, const char *description, struct opt *opts,
              int argc, char **argv, struct opt_positional *pos)
{
    char err[ERR_LEN];
    int rc = opts_parse(opts, argc, argv, pos, err);
    if (rc == OPTS_HELP) {
        opts_help(stdout, usage, description, opts);
        return 0;
    }
    if (rc == OPTS_ERROR) {
        fprintf(stderr, "kvbench %s: %s\n", name, err);
        return EXIT_USAGE;
    }
    return -1;
}
