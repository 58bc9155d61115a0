/*
 * cmd.c - the subcommand table and the helpers the subcommands share: option parsing with the
 * --base-url / --api-key edge rules, config.json `args` from the option rows, signals, and the
 * few printing helpers that several commands use (a server answer, a table over runs).
 */
#include "cmd/cmd.h"

#include "net/http.h"
#include "util/err.h"
#include "util/log.h"
#include "util/redact.h"
#include "util/json.h"
#include "report/sumtable.h"

#include <stdio.h>
#include <stdlib.h>

#include <signal.h>
#include <string.h>

const struct cmd CMD_TABLE[] = {
    {"run", cmd_run,
     "one benchmark run (a scenario of phases) against an OpenAI-compatible server"},
    {"serve", cmd_serve, "run the embedded engine: OpenAI-compatible server with tiered KV cache"},
    {"ready", cmd_ready, "wait until a server is ready (models listed, health, streak, timeout)"},
    {"health", cmd_health, "print /health and /v1/models; non-zero when not healthy"},
    {"smoke", cmd_smoke, "one Llama 3 templated completion; prints the text"},
    {"compare", cmd_compare, "the same workload per kv mode, restarting the server between modes"},
    {"sweep", cmd_sweep, "capacity at SLO per kv mode: the highest offered load meeting --slo"},
    {"matrix", cmd_matrix,
     "the runbook's matrix: short and long sweeps and an eviction/replay run"},
    {"merge", cmd_merge,
     "one run from its shards' run directories (kvbench run --shard I/N on several hosts)"},
    {"report", cmd_report,
     "print a run's report.md again, draw its report.html (--html), or export it as CSV (--csv)"},
    {"summary", cmd_summary, "one table over many runs' summary.json (paths, directories, globs)"},
    {"tiers", cmd_tiers,
     "measure this machine's KV paths (GPU, host memory, disk) at the model's block size"},
    {"tokenize", cmd_tokenize, "encode, count or decode tokens with a model's tokenizer.json"},
    {"demo", cmd_demo,
     "the whole story on the embedded engine: reuse, eviction/replay, mode compare"},
    {NULL, NULL, NULL},
};

const struct cmd *cmd_find(const char *name)
{
    for (const struct cmd *c = CMD_TABLE; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

int cmd_dispatch(const struct cmd *c, int argc, char **argv)
{
    if (http_global_init() < 0) {
        fprintf(stderr, "kvbench: libcurl initialisation failed\n");
        return 1;
    }
    return c->run(argc, argv);
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
    for (struct opt *op = opts; op->name; op++) {
        if (op->type != OPT_STR || !(op->flags & OPTF_SERVER_URL) || !*(const char **)op->dest)
            continue;
        const char *in = *(const char **)op->dest;
        static char norm[1024];
        bool had_v1 = false;
        if (base_url_normalize(in, norm, sizeof norm, &had_v1) < 0) {
            fprintf(stderr,
                    "kvbench %s: --base-url: expected http(s)://HOST[:PORT] with a port from 1 to "
                    "65535, got '%s'\n",
                    name, in);
            return EXIT_USAGE;
        }
        if (had_v1)
            fprintf(stderr,
                    "kvbench %s: note: --base-url is the server root; using %s (the /v1 suffix "
                    "was dropped, kvbench adds /v1/... itself)\n",
                    name, norm);
        *(const char **)op->dest = norm;
    }
    for (struct opt *op = opts; op->name; op++) /* --api-key never reaches a file or a log */
        if (op->type == OPT_STR && (op->flags & OPTF_SECRET) && *(const char **)op->dest)
            redact_add_secret(*(const char **)op->dest);
    return -1;
}

int base_url_normalize(const char *in, char *out, size_t len, bool *had_v1)
{
    *had_v1 = false;
    if (strncmp(in, "http://", 7) != 0 && strncmp(in, "https://", 8) != 0)
        return -1;
    size_t n = strlen(in);
    size_t host_at = strncmp(in, "https://", 8) == 0 ? 8 : 7;
    if (n >= len || n == host_at)
        return -1;
    /* the authority: host, [v6], then an optional :port that must be 1..65535 */
    const char *auth = in + host_at, *end = auth + strcspn(auth, "/?#");
    const char *colon = NULL;
    if (*auth == '[') {
        const char *close = memchr(auth, ']', (size_t)(end - auth));
        if (!close)
            return -1;
        colon = close + 1 < end ? close + 1 : NULL;
        if (colon && *colon != ':')
            return -1;
    } else {
        colon = memchr(auth, ':', (size_t)(end - auth));
    }
    if (colon == auth || end == auth)
        return -1; /* no host */
    if (colon) {
        long port = 0;
        const char *d = colon + 1;
        if (d == end)
            return -1; /* "host:" with no port */
        for (; d < end; d++) {
            if (*d < '0' || *d > '9' || port > 65535)
                return -1;
            port = port * 10 + (*d - '0');
        }
        if (port < 1 || port > 65535)
            return -1;
    }
    memcpy(out, in, n + 1);
    for (;;) {
        while (n > host_at && out[n - 1] == '/')
            out[--n] = '\0';
        if (n > host_at + 3 && strcmp(out + n - 3, "/v1") == 0) {
            n -= 3;
            out[n] = '\0';
            *had_v1 = true;
            continue;
        }
        break;
    }
    return n > host_at ? 0 : -1;
}

/* One option's value as JSON (NULL when out of memory). */
static json_t *opt_value_json(const struct opt *op)
{
    json_t *v = NULL;
    switch (op->type) {
    case OPT_BOOL:
        v = json_boolean(*(bool *)op->dest);
        break;
    case OPT_STR:
    case OPT_CHOICE: {
        const char *s = *(const char **)op->dest;
        v = s ? json_string(s) : json_null();
        break;
    }
    case OPT_ENUM: {
        const char *s = names_name(op->names, *(const int *)op->dest);
        v = s ? json_string(s) : json_null();
        break;
    }
    case OPT_INT:
        v = json_integer(*(long long *)op->dest);
        break;
    case OPT_FLOAT:
    case OPT_DURATION:
        v = json_real_or_null(*(double *)op->dest, true);
        break;
    case OPT_RANGE: {
        const struct opt_range *r = op->dest;
        char text[64]; /* "MIN:MAX", as typed (and as the reference harness records it) */
        snprintf(text, sizeof text, "%lld:%lld", (long long)r->min, (long long)r->max);
        v = json_string(text);
        break;
    }
    case OPT_LIST: {
        const struct opt_list *l = op->dest;
        v = json_array();
        for (size_t i = 0; i < l->n; i++)
            json_array_append_new(v, json_string(l->items[i]));
        break;
    }
    }
    return v;
}

json_t *cmd_opts_json(const struct opt *opts)
{
    json_t *o = json_object();
    for (const struct opt *op = opts; o && op->name; op++) {
        if (op->flags & OPTF_SECRET)
            continue;
        json_t *v = opt_value_json(op);
        char key[64]; /* --long-range -> long_range: the reference harness's argparse names */
        snprintf(key, sizeof key, "%s", op->name);
        for (char *p = key; *p; p++)
            if (*p == '-')
                *p = '_';
        json_object_set_new(o, key, v ? v : json_null());
    }
    return o;
}

volatile sig_atomic_t cmd_interrupted;

static void on_signal(int sig)
{
    (void)sig;
    cmd_interrupted = 1;
}

void cmd_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

void cmd_set_log_level(int level)
{
    if (names_name(LOG_LEVEL_NAMES, level))
        log_set_level((enum log_level)level);
}

void cmd_print_body(const char *title, long status, const char *body)
{
    printf("== %s", title);
    if (status > 0)
        printf(" (HTTP %ld)", status);
    printf("\n");
    json_t *j = body ? json_loads(body, 0, NULL) : NULL;
    if (j) {
        char *s = json_text(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", s ? s : "");
        free(s);
        json_decref(j);
    } else {
        printf("%s\n", body && *body ? body : "(no answer)");
    }
}

int cmd_split_list(const struct opt_list *l, char ***out, size_t *n_out)
{
    size_t n = 0, cap = 8;
    char **v = malloc(cap * sizeof *v);
    if (!v)
        return -1;
    for (size_t i = 0; i < l->n; i++) {
        char *copy = strdup(l->items[i]), *save = NULL;
        if (!copy)
            goto fail;
        for (char *t = strtok_r(copy, " ,", &save); t; t = strtok_r(NULL, " ,", &save)) {
            if (n == cap) {
                char **nv = realloc(v, 2 * cap * sizeof *nv);
                if (!nv) {
                    free(copy);
                    goto fail;
                }
                v = nv;
                cap *= 2;
            }
            if (!(v[n] = strdup(t))) {
                free(copy);
                goto fail;
            }
            n++;
        }
        free(copy);
    }
    *out = v;
    *n_out = n;
    return 0;
fail:
    cmd_free_list(v, n);
    *out = NULL;
    *n_out = 0;
    return -1;
}

void cmd_free_list(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

void cmd_print_runs_table(const char *results_root, char *const *ids, size_t n)
{
    json_t *rows = json_array();
    bool oom = !rows;
    for (size_t i = 0; rows && i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s/summary.json", results_root, ids[i]);
        json_t *s = json_read_file(path, NULL);
        if (s) {
            oom |= json_array_append_new(rows, sumtable_row(s)) < 0; /* a NULL row fails too */
            json_decref(s);
        }
    }
    struct buf b = BUF_INIT;
    if (!oom)
        sumtable_render(rows, &b);
    if (oom || buf_failed(&b))
        fprintf(stderr, "kvbench: out of memory building the runs' table\n");
    else
        fputs(buf_cstr(&b), stdout);
    buf_free(&b);
    json_decref(rows);
}
