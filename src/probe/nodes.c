/*
 * nodes.c - other nodes' metrics: the known families, series keys, scraping a node's exporter,
 * and the per-phase figures of a node and of the cluster.
 *
 * A node is read as series, not as sums by name (as probe/prom.c's prom_parse sums an engine's
 * counters): a node's disks, interfaces and GPUs must stay apart, both to show them and to leave
 * out the devices that would count one byte twice. The text is read by prom.c's own line scanner
 * (prom_scan); a Prometheus server's answers (probe/promapi.c) become the same struct node_snap,
 * so one function turns two snaps into a phase's figures whatever their source.
 *
 * Disk totals add up physical devices only: device-mapper (dm-*) and md (md*) devices sit on
 * other block devices, loop devices on files of other disks, ram and zram devices in memory, and
 * a partition's bytes are its disk's too; each of these is kept in by_device and left out of the
 * total, so a read counted by LVM and by the NVMe under it is one read. The network totals leave
 * out the loopback interface (a client and a server on one host).
 */
#include "probe/nodes.h"

#include "probe/kvsnap.h"
#include "probe/prom.h"
#include "model/engines.h"
#include "net/http.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/json.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct node_family NODE_FAMILIES[] = {
    /* node_exporter */
    {"node_disk_read_bytes_total", NODE_COUNTER, NODE_DISK},
    {"node_disk_written_bytes_total", NODE_COUNTER, NODE_DISK},
    {"node_disk_reads_completed_total", NODE_COUNTER, NODE_DISK},
    {"node_disk_writes_completed_total", NODE_COUNTER, NODE_DISK},
    {"node_network_receive_bytes_total", NODE_COUNTER, NODE_NETWORK},
    {"node_network_transmit_bytes_total", NODE_COUNTER, NODE_NETWORK},
    {"node_memory_MemAvailable_bytes", NODE_GAUGE, NODE_MEMORY},
    {"node_memory_Cached_bytes", NODE_GAUGE, NODE_MEMORY},
    {"node_memory_Dirty_bytes", NODE_GAUGE, NODE_MEMORY},
    /* dcgm-exporter (its PCIe figures are rates: gauges) */
    {"DCGM_FI_DEV_GPU_UTIL", NODE_GAUGE, NODE_GPU},
    {"DCGM_FI_DEV_FB_USED", NODE_GAUGE, NODE_GPU},
    {"DCGM_FI_PROF_PCIE_TX_BYTES", NODE_GAUGE, NODE_GPU},
    {"DCGM_FI_PROF_PCIE_RX_BYTES", NODE_GAUGE, NODE_GPU},
    /* KVBM (a Dynamo worker's metrics port, kvbench serve's): KV_COUNTERS and KV_GAUGES */
    {KVBM_OFFLOAD_D2H, NODE_COUNTER, NODE_KV},
    {KVBM_OFFLOAD_H2D, NODE_COUNTER, NODE_KV},
    {KVBM_OFFLOAD_D2D, NODE_COUNTER, NODE_KV},
    {KVBM_ONBOARD_D2D, NODE_COUNTER, NODE_KV},
    {KVBM_ONBOARD_H2D, NODE_COUNTER, NODE_KV},
    {KVBM_MATCHED_TOKENS, NODE_COUNTER, NODE_KV},
    {KVBM_DISK_BYTES_READ, NODE_COUNTER, NODE_KV},
    {KVBM_DISK_BYTES_WRITTEN, NODE_COUNTER, NODE_KV},
    {KVBM_CACHE_EVICTIONS, NODE_COUNTER, NODE_KV},
    {KVBM_CACHE_PREFETCHES, NODE_COUNTER, NODE_KV},
    {KVBM_HOST_HIT_RATE, NODE_GAUGE, NODE_KV},
    {KVBM_DISK_HIT_RATE, NODE_GAUGE, NODE_KV},
    {KVBM_DISK_FETCH_P50_MS, NODE_GAUGE, NODE_KV},
    {KVBM_DISK_FETCH_P95_MS, NODE_GAUGE, NODE_KV},
    {KVBM_DISK_FETCH_P99_MS, NODE_GAUGE, NODE_KV},
    /* kvbench serve's own extras */
    {"kvbench_disk_read_errors", NODE_COUNTER, NODE_KV},
    {"kvbench_disk_write_errors", NODE_COUNTER, NODE_KV},
    {"kvbench_g1_h2d_bytes_total", NODE_COUNTER, NODE_KV},
    {"kvbench_g1_d2h_bytes_total", NODE_COUNTER, NODE_KV},
    {NULL, NODE_COUNTER, NODE_DISK},
};

const struct node_family *nodes_family(const char *name, size_t len)
{
    for (const struct node_family *f = NODE_FAMILIES; f->name; f++) {
        size_t fl = strlen(f->name);
        if (fl == len && memcmp(f->name, name, len) == 0)
            return f;
        /* family + _total, where the family does not end in _total already (no x_total_total) */
        if (len == fl + 6 && memcmp(f->name, name, fl) == 0 &&
            memcmp(name + fl, "_total", 6) == 0 &&
            !(fl > 6 && memcmp(f->name + fl - 6, "_total", 6) == 0))
            return f;
        if (fl == len + 6 && memcmp(f->name, name, len) == 0 &&
            memcmp(f->name + len, "_total", 6) == 0)
            return f;
    }
    return NULL;
}

int nodes_target_parse(const char *spec, struct node_target *out, char *err)
{
    memset(out, 0, sizeof *out);
    const char *eq = strchr(spec, '=');
    if (!eq)
        return err_set(err, "--scrape: expected NAME=URL, got '%s'", spec);
    size_t n = (size_t)(eq - spec);
    if (n == 0)
        return err_set(err, "--scrape: the node's name before '=' is empty in '%s'", spec);
    if (n >= NODE_NAME_MAX)
        return err_set(err, "--scrape: the node's name is longer than %d characters in '%s'",
                       NODE_NAME_MAX - 1, spec);
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)spec[i]) && !strchr("_.-", spec[i]))
            return err_set(err,
                           "--scrape: the node's name may hold letters, digits, '_', '.' and '-' "
                           "only (it names a file), got '%.*s'",
                           (int)n, spec);
    const char *url = eq + 1;
    if ((strncmp(url, "http://", 7) != 0 || !url[7]) &&
        (strncmp(url, "https://", 8) != 0 || !url[8]))
        return err_set(err, "--scrape %.*s: expected an http:// or https:// URL, got '%s'", (int)n,
                       spec, url);
    memcpy(out->name, spec, n);
    out->url = url;
    return 0;
}

/* ------------------------------------------------------------ series keys */

static bool target_label(const char *name, size_t len)
{
    static const char *const DROP[] = {"instance", "job", "__name__"};
    for (size_t i = 0; i < 3; i++)
        if (strlen(DROP[i]) == len && memcmp(DROP[i], name, len) == 0)
            return true;
    return false;
}

static int cmp_label(const void *a, const void *b)
{
    const struct node_label *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

int nodes_series_key(struct buf *out, const char *family, struct node_label *labels, size_t n)
{
    qsort(labels, n, sizeof *labels, cmp_label);
    buf_append_str(out, family);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (target_label(labels[i].name, labels[i].name_len))
            continue;
        buf_append_char(out, kept++ ? ',' : '{');
        buf_append(out, labels[i].name, labels[i].name_len);
        buf_append_str(out, "=\"");
        for (const char *v = labels[i].value; *v; v++) {
            if (*v == '\n') {
                buf_append_str(out, "\\n");
                continue;
            }
            if (*v == '\\' || *v == '"')
                buf_append_char(out, '\\');
            buf_append_char(out, *v);
        }
        buf_append_char(out, '"');
    }
    if (kept)
        buf_append_char(out, '}');
    return buf_failed(out) ? -1 : 0;
}

bool nodes_key_label(const char *key, const char *label, char *out, size_t cap)
{
    const char *p = strchr(key, '{');
    if (!p)
        return false;
    const char *end = key + strlen(key), *name;
    size_t nl, ll = strlen(label);
    while (prom_label_next(&p, end, &name, &nl, out, cap))
        if (nl == ll && memcmp(name, label, ll) == 0)
            return true;
    return false;
}

/* ------------------------------------------------------------ scraping */

#define LABELS_MAX 32
#define VALUE_MAX  256

struct parse_state {
    json_t *series;
    struct buf key;
    size_t collided;
    bool failed;
};

static int take_sample(const struct prom_sample *s, void *user)
{
    struct parse_state *ps = user;
    const struct node_family *f = nodes_family(s->name, s->name_len);
    if (!f)
        return 0;
    struct node_label labels[LABELS_MAX];
    char values[LABELS_MAX][VALUE_MAX];
    size_t n = 0;
    const char *p = s->labels;
    while (p && n < LABELS_MAX &&
           prom_label_next(&p, s->labels_end, &labels[n].name, &labels[n].name_len, values[n],
                           VALUE_MAX)) {
        labels[n].value = values[n];
        n++;
    }
    buf_reset(&ps->key);
    if (nodes_series_key(&ps->key, f->name, labels, n) < 0) {
        ps->failed = true;
        return -1;
    }
    const char *k = buf_cstr(&ps->key);
    /* a key seen already is another series that reads the same here (only instance or job
     * differs, or labels or values were cut): adding it would sum two counters that are not one */
    if (json_object_get(ps->series, k)) {
        ps->collided++;
        return 0;
    }
    json_object_set_new(ps->series, k, isfinite(s->value) ? json_real(s->value) : json_null());
    return 0;
}

void nodes_parse(const char *body, size_t len, struct node_snap *out)
{
    out->ok = false;
    out->error[0] = '\0';
    out->collided = 0;
    struct parse_state ps = {.series = json_object()};
    struct prom_scan_stats st;
    if (!ps.series || prom_scan(body, len, take_sample, &ps, &st) != 0 || ps.failed) {
        snprintf(out->error, sizeof out->error, "out of memory reading the metrics");
        json_decref(ps.series);
        buf_free(&ps.key);
        return;
    }
    buf_free(&ps.key);
    if (json_object_size(ps.series) == 0) {
        snprintf(out->error, sizeof out->error,
                 "the endpoint answered (%zu samples) but carries none of the known families "
                 "(node_exporter's node_disk_*, node_network_*, node_memory_*; dcgm-exporter's "
                 "DCGM_FI_*; KVBM's kvbm_*)",
                 st.samples);
        json_decref(ps.series);
        return;
    }
    out->series = ps.series;
    out->collided = ps.collided;
    out->ok = true;
}

void nodes_scrape(const char *url, double timeout_s, struct node_snap *out)
{
    memset(out, 0, sizeof *out);
    struct http_req req;
    char err[ERR_LEN];
    double t0 = (double)clock_wall_ns() / 1e9;
    int rc = http_get(&req, url, timeout_s, 32u << 20, err);
    out->wall_s = (t0 + (double)clock_wall_ns() / 1e9) / 2;
    if (rc < 0)
        snprintf(out->error, sizeof out->error, "%s", err);
    else
        nodes_parse(buf_cstr(&req.body_buf), req.body_buf.len, out);
    http_req_cleanup(&req);
}

void node_snap_free(struct node_snap *s)
{
    json_decref(s->series);
    s->series = NULL;
}

/* ------------------------------------------------------------ a phase's figures */

/* The family part of a series key equals name. */
static bool key_is(const char *key, const char *name)
{
    size_t n = strlen(name);
    return strncmp(key, name, n) == 0 && (key[n] == '\0' || key[n] == '{');
}

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/* A device whose bytes another device of the node counts too (or that is not a disk). */
static bool stacked_device(const char *dev, const json_t *devices)
{
    static const char *const VIRTUAL[] = {"dm-", "md", "loop", "ram", "zram"};
    for (size_t i = 0; i < sizeof VIRTUAL / sizeof VIRTUAL[0]; i++)
        if (has_prefix(dev, VIRTUAL[i]))
            return true;
    /* sda1 of sda, nvme0n1p2 of nvme0n1, mmcblk0p1 of mmcblk0 */
    const char *other;
    const json_t *v;
    json_object_foreach((json_t *)devices, other, v)
    {
        (void)v;
        size_t ol = strlen(other);
        if (ol >= strlen(dev) || strncmp(dev, other, ol) != 0)
            continue;
        const char *rest = dev + ol;
        /* a disk named with a trailing digit numbers its partitions after a 'p' */
        if (isdigit((unsigned char)other[ol - 1]) && *rest++ != 'p')
            continue;
        bool digits = *rest != '\0';
        for (; *rest; rest++)
            digits &= isdigit((unsigned char)*rest) != 0;
        if (digits)
            return true;
    }
    return false;
}

/* What a phase's counters said besides their deltas: the series that went back (resets) and
 * those with no value before the phase (unstarted). */
struct phase_notes {
    json_t *resets, *unstarted;
};

/* A counter's increase into *delta: from 0 when it went back (a restart). False (the series
 * named in unstarted) when it had no value before the phase: it began during it (a disk
 * attached, a counter first exported, a Prometheus series whose first sample is after the
 * start), and counting it from 0 would count everything since the node booted. */
static bool counter_delta(const json_t *before, const char *key, double after,
                          struct phase_notes *notes, double *delta)
{
    const json_t *b = json_object_get(before, key);
    if (!json_is_number(b)) {
        json_array_append_new(notes->unstarted, json_string(key));
        return false;
    }
    double vb = json_number_value(b);
    if (after >= vb) {
        *delta = after - vb;
        return true;
    }
    json_array_append_new(notes->resets, json_string(key));
    *delta = after;
    return true;
}

/* Per-device deltas of counter families into by_device[dev][field]; *have: any series with a
 * delta. */
static void device_deltas(const struct node_snap *b, const struct node_snap *a, const char *family,
                          const char *label, const char *field, json_t *by_device,
                          struct phase_notes *notes, bool *have)
{
    const char *key;
    const json_t *v;
    json_object_foreach(a->series, key, v)
    {
        char dev[VALUE_MAX];
        double delta;
        if (!key_is(key, family) || !json_is_number(v) ||
            !counter_delta(b->series, key, json_number_value(v), notes, &delta))
            continue;
        if (!nodes_key_label(key, label, dev, sizeof dev))
            snprintf(dev, sizeof dev, "(none)");
        json_t *d = json_object_get(by_device, dev);
        if (!d) {
            d = json_object();
            json_object_set_new(by_device, dev, d);
        }
        json_object_set_new(d, field, json_real(json_get_num(d, field, 0) + delta));
        *have = true;
    }
}

/* The totals of fields[] over by_device, leaving out the devices skip() says. */
static void device_totals(json_t *o, const json_t *by_device, const char *const *fields,
                          const bool *have, size_t n, bool (*skip)(const char *, const json_t *))
{
    double sum[8] = {0};
    json_t *counted = json_array();
    const char *dev;
    const json_t *d;
    json_object_foreach((json_t *)by_device, dev, d)
    {
        if (skip(dev, by_device))
            continue;
        json_array_append_new(counted, json_string(dev));
        for (size_t i = 0; i < n; i++)
            sum[i] += json_get_num(d, fields[i], 0);
    }
    for (size_t i = 0; i < n; i++)
        json_put(o, fields[i], json_real_or_null(sum[i], have[i]));
    json_put(o, "devices", counted);
}

static json_t *disk_json(const struct node_snap *b, const struct node_snap *a, double secs,
                         struct phase_notes *notes)
{
    static const char *const FAM[] = {"node_disk_read_bytes_total", "node_disk_written_bytes_total",
                                      "node_disk_reads_completed_total",
                                      "node_disk_writes_completed_total"};
    static const char *const FIELD[] = {"read_bytes", "written_bytes", "reads_completed",
                                        "writes_completed"};
    json_t *by = json_object();
    bool have[4] = {false};
    for (size_t i = 0; i < 4; i++)
        device_deltas(b, a, FAM[i], "device", FIELD[i], by, notes, &have[i]);
    if (!have[0] && !have[1] && !have[2] && !have[3]) {
        json_decref(by);
        return json_null();
    }
    json_t *o = json_object();
    device_totals(o, by, FIELD, have, 4, stacked_device);
    double rd = json_get_num(o, "read_bytes", 0), wr = json_get_num(o, "written_bytes", 0);
    json_put(o, "read_mib_delta", json_real_or_null(rd / 1048576.0, have[0]));
    json_put(o, "write_mib_delta", json_real_or_null(wr / 1048576.0, have[1]));
    json_put(o, "read_mb_s", json_real_or_null(rd / 1e6 / secs, have[0] && secs > 0));
    json_put(o, "write_mb_s", json_real_or_null(wr / 1e6 / secs, have[1] && secs > 0));
    json_put(o, "by_device", by);
    return o;
}

static bool loopback(const char *dev, const json_t *all)
{
    (void)all;
    return strcmp(dev, "lo") == 0;
}

static json_t *network_json(const struct node_snap *b, const struct node_snap *a,
                            struct phase_notes *notes)
{
    static const char *const FAM[] = {"node_network_receive_bytes_total",
                                      "node_network_transmit_bytes_total"};
    static const char *const FIELD[] = {"receive_bytes", "transmit_bytes"};
    json_t *by = json_object();
    bool have[2] = {false};
    for (size_t i = 0; i < 2; i++)
        device_deltas(b, a, FAM[i], "device", FIELD[i], by, notes, &have[i]);
    if (!have[0] && !have[1]) {
        json_decref(by);
        return json_null();
    }
    json_t *o = json_object();
    device_totals(o, by, FIELD, have, 2, loopback);
    json_put(o, "by_device", by);
    return o;
}

/* Gauges of a section after the phase: <family>_after, summed over its series (averaged for
 * families named in mean[]); *any: the node has one of them. With by_label, also per value of
 * that label (per GPU). */
static json_t *gauges_json(const struct node_snap *a, enum node_section sec,
                           const char *const *mean, const char *by_label)
{
    json_t *o = json_object(), *by = by_label ? json_object() : NULL;
    bool any = false;
    for (const struct node_family *f = NODE_FAMILIES; f->name; f++) {
        if (f->section != sec)
            continue;
        double sum = 0;
        size_t n = 0;
        const char *key;
        const json_t *v;
        json_object_foreach(a->series, key, v)
        {
            char who[VALUE_MAX], field[96];
            if (!key_is(key, f->name) || !json_is_number(v))
                continue;
            sum += json_number_value(v);
            n++;
            if (!by || !nodes_key_label(key, by_label, who, sizeof who))
                continue;
            json_t *g = json_object_get(by, who);
            if (!g)
                json_object_set_new(by, who, g = json_object());
            snprintf(field, sizeof field, "%s_after", f->name);
            json_object_set_new(g, field, json_real(json_number_value(v)));
        }
        bool avg = false;
        for (size_t i = 0; mean && mean[i]; i++)
            avg |= strcmp(mean[i], f->name) == 0;
        char out_key[96];
        snprintf(out_key, sizeof out_key, "%s_after", f->name);
        json_put(o, out_key, json_real_or_null(avg && n ? sum / (double)n : sum, n > 0));
        any |= n > 0;
    }
    if (!any) {
        json_decref(o);
        json_decref(by);
        return json_null();
    }
    if (by) {
        json_put_int(o, "gpus", (long long)json_object_size(by));
        json_put(o, "by_gpu", by);
    }
    return o;
}

/* The KV section: the same keys as the engine's kvbm_metrics_delta (probe/kvsnap.c builds both)
 * from the node's KV series summed by name, counters that went back counted from 0; and
 * kvbench serve's extras as <family>_delta. */
static json_t *kv_json(const struct node_snap *b, const struct node_snap *a,
                       struct phase_notes *notes)
{
    json_t *mb = json_object(), *ma = json_object(), *extra = json_object();
    bool any = false;
    for (const struct node_family *f = NODE_FAMILIES; f->name; f++) {
        if (f->section != NODE_KV)
            continue;
        double sa = 0, sb = 0;
        bool ha = false;
        const char *key;
        const json_t *v;
        json_object_foreach(a->series, key, v)
        {
            if (!key_is(key, f->name) || !json_is_number(v))
                continue;
            const json_t *vb = json_object_get(b->series, key);
            double bv = json_is_number(vb) ? json_number_value(vb) : 0;
            if (f->kind == NODE_COUNTER && !json_is_number(vb)) {
                json_array_append_new(notes->unstarted, json_string(key));
                continue; /* began during the phase: no delta of its own, none in the sum */
            }
            if (f->kind == NODE_COUNTER && json_number_value(v) < bv) {
                json_array_append_new(notes->resets, json_string(key));
                bv = 0; /* restarted: its value now counts from 0 */
            }
            sa += json_number_value(v);
            sb += bv;
            ha = true;
        }
        any |= ha;
        if (ha) {
            json_object_set_new(ma, f->name, json_real(sa));
            json_object_set_new(mb, f->name, json_real(sb));
        }
        if (has_prefix(f->name, "kvbench_")) {
            char k[96];
            snprintf(k, sizeof k, "%s_delta", f->name);
            json_put(extra, k, json_real_or_null(sa - sb, ha));
        }
    }
    json_t *o = NULL;
    if (any) {
        struct kv_snapshot snap_b = {.success = true, .metrics = mb};
        struct kv_snapshot snap_a = {.success = true, .metrics = ma};
        o = kvsnap_delta_json(&snap_b, &snap_a);
        json_object_del(o, "available");
        json_object_update(o, extra);
    }
    json_decref(mb);
    json_decref(ma);
    json_decref(extra);
    return o ? o : json_null();
}

json_t *nodes_phase_json(const struct node_snap *b, const struct node_snap *a)
{
    if (!b->ok || !a->ok) {
        char why[320];
        snprintf(why, sizeof why, "%s the phase: %s", !b->ok ? "before" : "after",
                 !b->ok ? b->error : a->error);
        return json_pack("{s:b, s:s}", "available", 0, "reason", why);
    }
    double secs = a->wall_s - b->wall_s;
    struct phase_notes notes = {json_array(), json_array()};
    json_t *o = json_object();
    static const char *const MEAN[] = {"DCGM_FI_DEV_GPU_UTIL", NULL};
    json_put_bool(o, "available", true);
    json_put_real(o, "seconds", round(secs * 1000) / 1000);
    json_put(o, "disk", disk_json(b, a, secs, &notes));
    json_put(o, "network", network_json(b, a, &notes));
    json_put(o, "memory", gauges_json(a, NODE_MEMORY, NULL, NULL));
    json_put(o, "gpu", gauges_json(a, NODE_GPU, MEAN, "gpu"));
    json_put(o, "kv", kv_json(b, a, &notes));
    if (json_array_size(notes.resets))
        json_put(o, "counter_resets", notes.resets);
    else
        json_decref(notes.resets);
    if (json_array_size(notes.unstarted))
        json_put(o, "series_without_start", notes.unstarted);
    else
        json_decref(notes.unstarted);
    size_t collided = a->collided > b->collided ? a->collided : b->collided;
    if (collided)
        json_put_int(o, "collided_series", (long long)collided);
    return o;
}

/* ------------------------------------------------------------ the cluster */

/* sums[key] += the node section's number at key (a null stays out). */
static void add_figure(json_t *sums, const json_t *section, const char *key)
{
    const json_t *v = json_object_get(section, key);
    if (!json_is_number(v))
        return;
    json_object_set_new(sums, key, json_real(json_get_num(sums, key, 0) + json_number_value(v)));
}

/* fields[] of sums, null where no node had one. */
static json_t *sums_of(const json_t *sums, const char *const *fields)
{
    json_t *o = json_object();
    for (size_t i = 0; fields[i]; i++) {
        const json_t *v = json_object_get(sums, fields[i]);
        json_put(o, fields[i], v ? json_incref((json_t *)v) : json_null());
    }
    return o;
}

json_t *nodes_cluster_json(const json_t *nodes)
{
    static const char *const DISK[] = {"read_bytes", "written_bytes", "read_mib_delta",
                                       "write_mib_delta", NULL};
    static const char *const NET[] = {"receive_bytes", "transmit_bytes", NULL};
    json_t *disk = json_object(), *net = json_object(), *kv = json_object();
    json_t *not_summed = json_array();
    size_t n = 0, avail = 0;
    const char *name;
    const json_t *node;
    /* one source only: a node read by --scrape and by --prometheus-url is one node twice */
    const char *source = "prometheus";
    json_object_foreach((json_t *)nodes, name, node)
    {
        if (strcmp(json_get_str(node, "source", "scrape"), "scrape") == 0)
            source = "scrape";
    }
    json_object_foreach((json_t *)nodes, name, node)
    {
        if (strcmp(json_get_str(node, "source", "scrape"), source) != 0) {
            json_array_append_new(not_summed, json_string(name));
            continue;
        }
        n++;
        if (!json_get_bool(node, "available", false))
            continue;
        avail++;
        for (size_t i = 0; DISK[i]; i++)
            add_figure(disk, json_object_get(node, "disk"), DISK[i]);
        for (size_t i = 0; NET[i]; i++)
            add_figure(net, json_object_get(node, "network"), NET[i]);
        const char *k;
        const json_t *v;
        json_object_foreach(json_object_get(node, "kv"), k, v)
        {
            size_t kl = strlen(k);
            if (kl > 6 && strcmp(k + kl - 6, "_delta") == 0)
                add_figure(kv, json_object_get(node, "kv"), k);
        }
    }
    json_t *o = json_pack("{s:s, s:I, s:I}", "source", source, "nodes", (json_int_t)n,
                          "nodes_available", (json_int_t)avail);
    if (json_array_size(not_summed))
        json_put(o, "not_summed", json_incref(not_summed));
    json_decref(not_summed);
    json_put(o, "disk", sums_of(disk, DISK));
    json_put(o, "network", sums_of(net, NET));
    json_put(o, "kv", json_object_size(kv) ? json_incref(kv) : json_null());
    json_decref(disk);
    json_decref(net);
    json_decref(kv);
    return o;
}
