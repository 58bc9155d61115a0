/*
 * container.c - the docker CLI, run through util/proc with timeouts.
 */
#include "probe/container.h"

#include "util/err.h"
#include "util/fs.h"
#include "util/proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int container_docker_present(void)
{
    const char *path = getenv("PATH");
    if (!path)
        return 0;
    char full[4096];
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, ":");
        snprintf(full, sizeof full, "%.*s/docker", (int)n, p);
        if (access(full, X_OK) == 0)
            return 1;
        p += n;
        if (*p == ':')
            p++;
    }
    return 0;
}

static int docker(char *const argv[], double timeout_s, size_t cap, struct proc_result *res,
                  char *err)
{
    if (proc_run(argv, NULL, timeout_s, cap, 0, res, err) < 0)
        return -1;
    if (res->timed_out) {
        err_set(err, "%s %s timed out after %.0f s", argv[0], argv[1], timeout_s);
        proc_result_free(res);
        return -1;
    }
    if (!res->exited || res->exit_code != 0) {
        const struct buf *e = res->err_out.len ? &res->err_out : &res->out;
        err_set(err, "%s %s failed: %.200s", argv[0], argv[1], buf_cstr(e));
        for (char *c = err; c && *c; c++)
            if (*c == '\n')
                *c = ' ';
        proc_result_free(res);
        return -1;
    }
    return 0;
}

json_t *container_inspect(const char *name, double timeout_s, char *err)
{
    char *argv[] = {"docker",     "inspect", "--format", "{{.Config.Image}}|{{.Image}}",
                    (char *)name, NULL};
    struct proc_result res;
    if (docker(argv, timeout_s, 4096, &res, err) < 0)
        return NULL;
    char *text = buf_detach(&res.out);
    proc_result_free(&res);
    if (!text) {
        err_set(err, "out of memory");
        return NULL;
    }
    text[strcspn(text, "\n")] = '\0';
    char *bar = strchr(text, '|');
    json_t *o;
    if (bar) {
        *bar = '\0';
        o = json_pack("{s:s, s:s, s:s}", "container", name, "image", text, "image_id", bar + 1);
    } else {
        o = json_pack("{s:s, s:s, s:n}", "container", name, "image", text, "image_id");
    }
    free(text);
    return o;
}

int container_logs(const char *name, const char *path, double timeout_s, char *err)
{
    char *argv[] = {"docker", "logs", (char *)name, NULL};
    struct proc_result res;
    if (proc_run(argv, NULL, timeout_s, (size_t)256 << 20, PROC_MERGE_STDERR, &res, err) < 0)
        return -1;
    int rc = 0;
    if (res.timed_out)
        rc = err_set(err, "docker logs timed out after %.0f s (partial log kept)", timeout_s);
    else if (!res.exited || res.exit_code != 0)
        rc = err_set(err, "docker logs exited with status %d", res.exit_code);
    char werr[ERR_LEN];
    if (fs_write_buf(path, &res.out, werr) < 0)
        rc = err_set(err, "%s", werr);
    proc_result_free(&res);
    return rc;
}

int container_copy(const char *name, const char *src, const char *dest, double timeout_s, char *err)
{
    char from[1024];
    snprintf(from, sizeof from, "%s:%s", name, src);
    char *argv[] = {"docker", "cp", from, (char *)dest, NULL};
    struct proc_result res;
    if (docker(argv, timeout_s, 4096, &res, err) < 0)
        return -1;
    proc_result_free(&res);
    return 0;
}
