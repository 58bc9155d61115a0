/*
 * bench_engine - figures for the embedded engine (issue: engine benchmark).
 *
 *  1. Request and streamed-token throughput of `kvbench serve` with no modelled time
 *     (--speedup 0), driven over loopback by the project's libcurl multi client at a fixed
 *     concurrency: unary requests with max_tokens 1 (requests/s), and streams of 256 tokens
 *     (tokens/s, SSE events parsed).
 *  2. Disk-tier bandwidth against raw O_DIRECT bandwidth of the same directory in the same run:
 *     the tier writes and reads one file per block (open, O_DIRECT transfer, close); raw writes
 *     and reads the same bytes sequentially in one preallocated file. Target ratio >= 0.8.
 *
 * Prints figures and ratios; never fails on time. Usage:
 *   bench_engine [--dir DIR] [--blocks N] [--block-kib K] [--seconds S] [--concurrency C]
 */
#include "engine/disktier.h"
#include "engine/engine.h"
#include "engine/kvbm.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fs.h"
#include "net/http.h"
#include "net/sse.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct load {
    struct http_client *client;
    struct http_req *reqs;
    struct sse_parser *parsers;
    size_t conc;
    uint64_t deadline;
    size_t done, errors, events;
    const char *url, *body;
};

static int count_event(void *user, const char *event, const char *data, size_t len)
{
    (void)event;
    struct load *l = user;
    if (!(len == 6 && memcmp(data, "[DONE]", 6) == 0))
        l->events++;
    return 0;
}

static int on_data(struct http_req *r, const char *d, size_t n, uint64_t t)
{
    (void)t;
    struct load *l = r->user;
    size_t i = (size_t)(r - l->reqs);
    return sse_feed(&l->parsers[i], d, n) < 0;
}

static void on_done(struct http_req *r)
{
    struct load *l = r->user;
    if (r->error != HTTP_OK || r->status != 200)
        l->errors++;
    else
        l->done++;
    if (clock_now_ns() < l->deadline) {
        size_t i = (size_t)(r - l->reqs);
        sse_reset(&l->parsers[i]);
        http_client_start(l->client, r, NULL);
    }
}

static double run_load(const char *url, const char *body, bool stream, size_t conc, double seconds,
                       struct load *l)
{
    memset(l, 0, sizeof *l);
    char err[ERR_LEN];
    l->client = http_client_new(conc, err);
    l->reqs = calloc(conc, sizeof *l->reqs);
    l->parsers = calloc(conc, sizeof *l->parsers);
    l->conc = conc;
    uint64_t t0 = clock_now_ns();
    l->deadline = t0 + (uint64_t)(seconds * 1e9);
    for (size_t i = 0; i < conc; i++) {
        struct http_req *r = &l->reqs[i];
        http_req_init(r);
        r->url = url;
        r->body = body;
        r->body_len = strlen(body);
        r->timeout_s = 30;
        r->user = l;
        r->on_done = on_done;
        if (stream)
            r->on_data = on_data;
        sse_init(&l->parsers[i], count_event, l);
        http_req_add_header(r, "Content-Type: application/json");
        http_client_start(l->client, r, err);
    }
    while (http_client_poll(l->client, 100) > 0) {
    }
    double elapsed = (double)(clock_now_ns() - t0) / 1e9;
    for (size_t i = 0; i < conc; i++) {
        http_req_cleanup(&l->reqs[i]);
        sse_free(&l->parsers[i]);
    }
    free(l->reqs);
    free(l->parsers);
    http_client_free(l->client);
    return elapsed;
}

static double now_s(void)
{
    return (double)clock_now_ns() / 1e9;
}

/* Let the filesystem finish deferred work of the last round (freeing a deleted round's blocks,
 * journal commits) before the next timed round, so it is not charged to whichever round happens
 * to run next. */
static void settle(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        syncfs(fd);
        close(fd);
    }
}

static int raw_direct(const char *dir, size_t block, size_t n, double *wbw, double *rbw)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/raw-direct.bin", dir);
    void *buf = NULL;
    if (posix_memalign(&buf, 4096, block) != 0)
        return -1;
    memset(buf, 0x5a, block);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0644);
    if (fd < 0) {
        free(buf);
        return -1;
    }
    double t0 = now_s();
    for (size_t i = 0; i < n; i++)
        if (pwrite(fd, buf, block, (off_t)(i * block)) != (ssize_t)block)
            goto fail;
    double t1 = now_s();
    for (size_t i = 0; i < n; i++)
        if (pread(fd, buf, block, (off_t)(i * block)) != (ssize_t)block)
            goto fail;
    double t2 = now_s();
    *wbw = (double)(block * n) / (t1 - t0) / 1e6;
    *rbw = (double)(block * n) / (t2 - t1) / 1e6;
    close(fd);
    unlink(path);
    free(buf);
    return 0;
fail:
    close(fd);
    unlink(path);
    free(buf);
    return -1;
}

static int tier_io(const char *dir, size_t block, size_t n, double *wbw, double *rbw,
                   const char **mode)
{
    struct disktier d;
    char err[ERR_LEN];
    if (disktier_open(&d, dir, block, err) < 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    *mode = disktier_mode(&d);
    void *buf = disktier_alloc(&d);
    int rc = buf ? 0 : -1;
    if (buf)
        kvblock_fill(buf, d.file_bytes, 1);
    double t0 = now_s();
    for (size_t i = 0; i < n && rc == 0; i++)
        if (disktier_write(&d, i + 1, buf) < 0)
            rc = -1;
    double t1 = now_s();
    for (size_t i = 0; i < n && rc == 0; i++)
        if (disktier_read(&d, i + 1, buf) < 0)
            rc = -1;
    double t2 = now_s();
    if (rc == 0) {
        *wbw = (double)(d.file_bytes * n) / (t1 - t0) / 1e6;
        *rbw = (double)(d.file_bytes * n) / (t2 - t1) / 1e6;
    }
    for (size_t i = 0; i < n; i++) /* our own files, as the engine removes its blocks */
        disktier_remove(&d, i + 1);
    disktier_close(&d); /* the directory's lock: the next round opens it again */
    free(buf);
    return rc;
}

static double median3(const double v[3])
{
    double a = v[0], b = v[1], c = v[2];
    if ((a <= b && b <= c) || (c <= b && b <= a))
        return b;
    if ((b <= a && a <= c) || (c <= a && a <= b))
        return a;
    return c;
}

int main(int argc, char **argv)
{
    const char *dir = "bench/out/disktier";
    size_t blocks = 256, block_kib = 2048, conc = 32;
    double seconds = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--dir") == 0)
            dir = argv[i + 1];
        else if (strcmp(argv[i], "--blocks") == 0)
            blocks = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--block-kib") == 0)
            block_kib = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--concurrency") == 0)
            conc = strtoul(argv[i + 1], NULL, 10);
    }
    char err[ERR_LEN];
    http_global_init();

    /* 1. engine throughput */
    struct engine_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.metrics_port = -1;
    cfg.model = *profile_model("tiny");
    cfg.hw = *profile_hw("gb10");
    cfg.model_id = "bench";
    cfg.endpoint = "dyn://bench.engine.generate";
    cfg.max_body_bytes = 1 << 20;
    cfg.max_num_tokens = 8192;
    cfg.max_tokens_limit = 8192;
    cfg.max_connections = 1024;
    cfg.http_threads = 2;
    cfg.speedup = 0;
    cfg.max_num_seqs = 256;
    cfg.drop_model_after = -1;
    cfg.kv = (struct kvbm_config){
        .block_tokens = 32, .block_bytes = 32 * 1024, .g1_blocks = 65536, .mode = KV_MODE_OFF};
    struct engine *e;
    if (engine_start(&cfg, &e, err) < 0) {
        fprintf(stderr, "engine: %s\n", err);
        return 1;
    }
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/completions", engine_port(e));
    struct load l;
    printf("engine throughput (tiny profile, --speedup 0, kv mode off, concurrency %zu, %.0f s "
           "each)\n",
           conc, seconds);
    double el =
        run_load(url, "{\"prompt\":\"hello there\",\"max_tokens\":1}", false, conc, seconds, &l);
    printf("  unary max_tokens=1:      %10.0f requests/s   (%zu ok, %zu errors)\n",
           (double)l.done / el, l.done, l.errors);
    el = run_load(url,
                  "{\"prompt\":\"hello there\",\"max_tokens\":256,\"ignore_eos\":true,"
                  "\"stream\":true}",
                  true, conc, seconds, &l);
    printf("  stream max_tokens=256:   %10.0f tokens/s     (%zu streams, %.0f streams/s, %zu "
           "errors)\n",
           (double)l.events / el, l.done, (double)l.done / el, l.errors);
    engine_begin_drain(e);
    engine_wait_idle(e, 5);
    engine_stop(e);

    /* 2. disk tier vs raw O_DIRECT */
    if (fs_mkdir_p(dir, err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    size_t block = block_kib * 1024;
    enum { ROUNDS = 3 };
    double rws[ROUNDS], rrs[ROUNDS], tws[ROUNDS], trs[ROUNDS];
    const char *mode = "?";
    /* Alternate raw and tier rounds and take medians: a VM disk is noisy. */
    for (int k = 0; k < ROUNDS; k++) {
        settle(dir);
        if (raw_direct(dir, block, blocks, &rws[k], &rrs[k]) < 0) {
            printf("disk tier: O_DIRECT is not available in %s (%s); no raw baseline\n", dir,
                   strerror(errno));
            return 0;
        }
        settle(dir);
        if (tier_io(dir, block, blocks, &tws[k], &trs[k], &mode) < 0) {
            printf("disk tier: I/O failed in %s\n", dir);
            return 1;
        }
    }
    double rw = median3(rws), rr = median3(rrs), tw = median3(tws), tr = median3(trs);
    printf("disk tier in %s: %zu blocks of %zu KiB, tier mode %s, median of %d rounds\n", dir,
           blocks, block_kib, mode, ROUNDS);
    printf("  write: tier %8.0f MB/s   raw O_DIRECT %8.0f MB/s   ratio %.2f (target >= 0.8)\n", tw,
           rw, tw / rw);
    printf("  read:  tier %8.0f MB/s   raw O_DIRECT %8.0f MB/s   ratio %.2f (target >= 0.8)\n", tr,
           rr, tr / rr);
    return 0;
}
