/*
 * cmd.c - helpers shared by the subcommands.
 */
#include "cmd/cmd.h"

#include "util/err.h"
#include "util/log.h"
#include "util/redact.h"
#include "util/json.h"

#include <signal.h>
#include <string.h>

const struct cmd *cmd_find(const char *name)
{
    for (const struct cmd *c = CMD_TABLE; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
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
    for (struct opt *op = opts; op->name; op++) {
        if (op->type != OPT_STR || strcmp(op->name, "base-url") != 0 || !*(const char **)op->dest)
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
        if (op->type == OPT_STR && strcmp(op->name, "api-key") == 0 && *(const char **)op->dest)
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

json_t *cmd_opts_json(const struct opt *opts, const char *const *exclude)
{
    json_t *o = json_object();
    for (const struct opt *op = opts; op->name; op++) {
        bool skip = false;
        for (const char *const *x = exclude; x && *x && !skip; x++)
            skip = strcmp(*x, op->name) == 0;
        if (skip)
            continue;
        json_t *v = NULL;
        switch (op->type) {
        case OPT_BOOL:
            v = json_boolean(*(bool *)op->dest);
            break;
        case OPT_STR:
        case OPT_ENUM: {
            const char *s = *(const char **)op->dest;
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

void cmd_set_log_level(const char *name)
{
    enum log_level lvl;
    if (log_level_parse(name, &lvl) == 0)
        log_set_level(lvl);
}
