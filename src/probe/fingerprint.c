/*
 * fingerprint.c - reads uname(2), /proc/cpuinfo, /proc/meminfo and /etc/os-release.
 */
#include "probe/fingerprint.h"

#include "util/json.h"

#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

/* The value after "key" and a separator (':' or '=') on the first matching line, unquoted. */
static json_t *file_field(const char *path, const char *key, char sep)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return json_null();
    char line[512];
    size_t klen = strlen(key);
    json_t *out = json_null();
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) != 0)
            continue;
        char *p = line + klen;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != sep)
            continue;
        p++;
        while (*p == ' ' || *p == '\t' || *p == '"')
            p++;
        size_t n = strcspn(p, "\"\n");
        json_decref(out);
        out = json_string_lossy(p, n);
        break;
    }
    fclose(f);
    return out;
}

static json_t *mem_total_bytes(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return json_null();
    char line[256];
    json_t *out = json_null();
    while (fgets(line, sizeof line, f)) {
        unsigned long long kb;
        if (sscanf(line, "MemTotal: %llu kB", &kb) == 1) {
            out = json_integer((json_int_t)(kb * 1024));
            break;
        }
    }
    fclose(f);
    return out;
}

json_t *fingerprint_json(const char *version, const char *git_sha, const char *timestamp_utc)
{
    json_t *o = json_object();
    struct utsname u;
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    json_put_str(o, "host", host);
    if (uname(&u) == 0) {
        json_put_str(o, "kernel", u.release);
        json_put_str(o, "kernel_version", u.version);
        json_put_str(o, "arch", u.machine);
    }
    json_put(o, "os", file_field("/etc/os-release", "PRETTY_NAME", '='));
    json_t *cpu = file_field("/proc/cpuinfo", "model name", ':');
    if (json_is_null(cpu)) {
        json_decref(cpu);
        cpu = file_field("/proc/cpuinfo", "Model", ':'); /* arm64 */
    }
    json_put(o, "cpu_model", cpu);
    json_put_int(o, "cpu_count", sysconf(_SC_NPROCESSORS_ONLN));
    json_put(o, "memory_total_bytes", mem_total_bytes());
    json_put_str(o, "kvbench_version", version);
    /* the reference harness's names: the benchmark's own commit, the platform string */
    json_put(o, "timestamp_utc", timestamp_utc ? json_string(timestamp_utc) : json_null());
    json_put(o, "git_sha", git_sha && *git_sha ? json_string(git_sha) : json_null());
    json_put(o, "git_branch", json_null());     /* not recorded at build time */
    json_put(o, "python_version", json_null()); /* no Python here */
    char platform[512] = "";
    if (uname(&u) == 0)
        snprintf(platform, sizeof platform, "%s-%s-%s", u.sysname, u.release, u.machine);
    json_put(o, "host_platform", platform[0] ? json_string(platform) : json_null());
    return o;
}
