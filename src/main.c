/*
 * main.c - `kvbench`: git-style subcommands.
 *
 * The table in cmd/cmd.c (CMD_TABLE) maps each subcommand to its cmd_<name>() entry point; main
 * only handles the global forms (--help, --version, help CMD) and dispatch.
 */
#include "cmd/cmd.h"

#include <stdio.h>
#include <string.h>

static void print_usage(FILE *out)
{
    fprintf(out,
            "Usage: kvbench <command> [options]\n\n"
            "Benchmark what KV-cache offload (GPU -> host memory -> disk) does to LLM serving.\n\n"
            "Commands:\n");
    for (const struct cmd *c = CMD_TABLE; c->name; c++)
        fprintf(out, "  %-10s %s\n", c->name, c->summary);
    fprintf(out, "\nA run writes <results-root>/<run-id>/ with summary.json, report.md and\n"
                 "report.html (the verdict and charts on one self-contained page: open it in a\n"
                 "browser); 'kvbench report RUN_DIR' prints report.md again, 'kvbench report\n"
                 "RUN_DIR --html' draws report.html again.\n"
                 "\nRun 'kvbench help <command>' or 'kvbench <command> --help' for its options.\n"
                 "Other forms: kvbench --help, kvbench --version\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        print_usage(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("kvbench %s (git %s)\n", KVBENCH_VERSION, KVBENCH_GIT_SHA);
        return 0;
    }
    if (strcmp(name, "help") == 0) {
        if (argc < 3) {
            print_usage(stdout);
            return 0;
        }
        const struct cmd *c = cmd_find(argv[2]);
        if (!c) {
            fprintf(stderr, "kvbench: unknown command '%s' (see 'kvbench --help')\n", argv[2]);
            return EXIT_USAGE;
        }
        char *help_argv[] = {"--help", NULL};
        return c->run(1, help_argv);
    }
    if (name[0] == '-') {
        fprintf(stderr, "kvbench: unknown option '%s' (see 'kvbench --help')\n", name);
        return EXIT_USAGE;
    }
    const struct cmd *c = cmd_find(name);
    if (!c) {
        fprintf(stderr, "kvbench: unknown command '%s' (see 'kvbench --help')\n", name);
        return EXIT_USAGE;
    }
    return cmd_dispatch(c, argc - 2, argv + 2);
}
