/*
 * prom.c - line-oriented parser for the Prometheus text format (version 0.0.4).
 *
 * Each line is parsed in place: name, optional {labels}, value, optional timestamp, and handed
 * to a callback (prom_scan). prom_parse's callback sums by name: entries are kept in an array
 * indexed by an open-addressing table keyed by name, so summing across label sets costs O(1) per
 * sample. Readers that need each series apart (probe/nodes.c) take the samples themselves.
 */
#include "probe/prom.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool name_start(char c)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':';
}

static bool name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == ':';
}

static int parse_value(const char *s, size_t len, double *out)
{
    char tmp[64];
    if (len == 0 || len >= sizeof tmp)
        return -1;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (strcmp(tmp, "NaN") == 0) {
        *out = NAN;
        return 0;
    }
    if (strcmp(tmp, "+Inf") == 0 || strcmp(tmp, "Inf") == 0) {
        *out = INFINITY;
        return 0;
    }
    if (strcmp(tmp, "-Inf") == 0) {
        *out = -INFINITY;
        return 0;
    }
    char *end;
    double v = strtod(tmp, &end);
    if (*end || end == tmp)
        return -1;
    /* strtod also takes "nan", "inf", hex floats: the text format does not. */
    for (const char *p = tmp; *p; p++)
        if (isalpha((unsigned char)*p) && *p != 'e' && *p != 'E')
            return -1;
    *out = v;
    return 0;
}

static size_t name_hash(const char *s, size_t len)
{
    size_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* The slot holding name, or the empty slot where it would go. */
static size_t *slot_of(const struct prom_result *r, const char *name, size_t len)
{
    size_t mask = r->index_cap - 1;
    for (size_t i = name_hash(name, len) & mask;; i = (i + 1) & mask) {
        size_t *s = &r->index[i];
        if (!*s)
            return s;
        const char *en = r->entries[*s - 1].name;
        if (strlen(en) == len && memcmp(en, name, len) == 0)
            return s;
    }
}

static int grow_index(struct prom_result *r)
{
    size_t cap = r->index_cap ? r->index_cap * 2 : 128;
    size_t *idx = calloc(cap, sizeof *idx);
    if (!idx)
        return -1;
    free(r->index);
    r->index = idx;
    r->index_cap = cap;
    for (size_t i = 0; i < r->n; i++)
        *slot_of(r, r->entries[i].name, strlen(r->entries[i].name)) = i + 1;
    return 0;
}

static int add(struct prom_result *r, const char *name, size_t len, double v)
{
    if ((r->n + 1) * 2 >= r->index_cap && grow_index(r) < 0)
        return -1;
    size_t *slot = slot_of(r, name, len);
    if (*slot) {
        r->entries[*slot - 1].sum += v;
        r->entries[*slot - 1].samples++;
        return 0;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        struct prom_entry *e = realloc(r->entries, cap * sizeof *e);
        if (!e)
            return -1;
        r->entries = e;
        r->cap = cap;
    }
    char *n = malloc(len + 1);
    if (!n)
        return -1;
    memcpy(n, name, len);
    n[len] = '\0';
    r->entries[r->n++] = (struct prom_entry){n, v, 1};
    *slot = r->n;
    // cppcheck-suppress memleak ; n is owned by r->entries now
    return 0;
}

/* Skip a {label="value",...} block. Returns the position after '}' or NULL if malformed. */
static const char *skip_labels(const char *p, const char *end)
{
    p++; /* '{' */
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p < end && *p == '}')
            return p + 1;
        if (p >= end || !name_start(*p))
            return NULL;
        while (p < end && name_char(*p))
            p++;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p >= end || *p != '=')
            return NULL;
        p++;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p >= end || *p != '"')
            return NULL;
        p++;
        while (p < end && *p != '"') {
            if (*p == '\\') {
                if (p + 1 >= end || (p[1] != '\\' && p[1] != '"' && p[1] != 'n'))
                    return NULL;
                p++;
            }
            p++;
        }
        if (p >= end)
            return NULL;
        p++; /* closing quote */
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == '}')
            return p + 1;
        return NULL;
    }
}

const char *const PROM_SPLIT_LABELS[] = {"cache_source", "tier", NULL};

/* Also count the sample under name{label="value"} when the block has that label (a plain value
 * without escapes; others are left to the summed entry). */
static int add_split(struct prom_result *r, const char *name, size_t name_len, const char *labels,
                     const char *labels_end, const char *label, double v)
{
    size_t ll = strlen(label);
    for (const char *q = labels + 1; q + ll + 2 < labels_end; q++) {
        if ((q[-1] != '{' && q[-1] != ',' && q[-1] != ' ') || memcmp(q, label, ll) != 0 ||
            q[ll] != '=' || q[ll + 1] != '"')
            continue;
        const char *val = q + ll + 2, *ve = val;
        while (ve < labels_end && *ve != '"' && *ve != '\\')
            ve++;
        if (ve >= labels_end || *ve != '"' || ve - val > 64)
            return 0;
        char key[384];
        int n = snprintf(key, sizeof key, "%.*s{%s=\"%.*s\"}", (int)name_len, name, label,
                         (int)(ve - val), val);
        if (n < 0 || (size_t)n >= sizeof key)
            return 0;
        return add(r, key, (size_t)n, v);
    }
    return 0;
}

/* An info metric (a name ending in _info, value 1) carries its facts in labels, as vLLM's
 * vllm:cache_config_info{block_size="16",num_gpu_blocks="4096",...}: each label whose value is a
 * number is also kept as name.label (vllm:cache_config_info.num_gpu_blocks = 4096). The block was
 * validated by skip_labels. */
static int add_info_labels(struct prom_result *r, const char *name, size_t name_len,
                           const char *labels, const char *labels_end)
{
    if (name_len < 5 || memcmp(name + name_len - 5, "_info", 5) != 0)
        return 0;
    const char *p = labels + 1;
    while (p < labels_end) {
        while (p < labels_end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *label = p;
        while (p < labels_end && name_char(*p))
            p++;
        size_t label_len = (size_t)(p - label);
        while (p < labels_end && *p != '"')
            p++;
        const char *val = ++p, *ve = val;
        while (ve < labels_end && *ve != '"')
            ve += *ve == '\\' ? 2 : 1;
        if (ve >= labels_end || !label_len)
            break;
        p = ve + 1;
        char num[64], *end;
        size_t vl = (size_t)(ve - val);
        if (vl == 0 || vl >= sizeof num)
            continue;
        memcpy(num, val, vl);
        num[vl] = '\0';
        double v = strtod(num, &end);
        if (*end || !isfinite(v))
            continue;
        char key[384];
        int n = snprintf(key, sizeof key, "%.*s.%.*s", (int)name_len, name, (int)label_len, label);
        if (n > 0 && (size_t)n < sizeof key && add(r, key, (size_t)n, v) < 0)
            return -1;
    }
    return 0;
}

static void malformed(struct prom_scan_stats *st, const char *line, size_t len, const char *why)
{
    if (st->malformed_lines++ == 0)
        snprintf(st->first_error, sizeof st->first_error, "%s: %.*s", why,
                 (int)(len > 80 ? 80 : len), line);
}

/* One line: a sample handed to fn, a comment or blank line skipped, a malformed line counted.
 * Returns 0, or fn's nonzero answer. */
static int scan_line(const char *line, size_t len, prom_sample_fn fn, void *user,
                     struct prom_scan_stats *st)
{
    const char *p = line, *end = line + len;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p == end || *p == '#')
        return 0;
    if (!name_start(*p)) {
        malformed(st, line, len, "bad metric name");
        return 0;
    }
    struct prom_sample s = {.name = p};
    while (p < end && name_char(*p))
        p++;
    s.name_len = (size_t)(p - s.name);
    if (p < end && *p == '{') {
        s.labels = p;
        p = skip_labels(p, end);
        if (!p) {
            malformed(st, line, len, "bad labels");
            return 0;
        }
        s.labels_end = p;
    }
    if (p >= end || (*p != ' ' && *p != '\t')) {
        malformed(st, line, len, "no value");
        return 0;
    }
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    const char *val = p;
    while (p < end && *p != ' ' && *p != '\t')
        p++;
    if (parse_value(val, (size_t)(p - val), &s.value) < 0) {
        malformed(st, line, len, "bad value");
        return 0;
    }
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p < end) {
        /* optional integer timestamp, then nothing */
        const char *ts = p;
        if (*p == '-')
            p++;
        while (p < end && isdigit((unsigned char)*p))
            p++;
        const char *after = p;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (after == ts || p != end) {
            malformed(st, line, len, "bad timestamp");
            return 0;
        }
    }
    st->samples++;
    return fn(&s, user);
}

int prom_scan(const char *text, size_t len, prom_sample_fn fn, void *user,
              struct prom_scan_stats *st)
{
    memset(st, 0, sizeof *st);
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t line_len = nl ? (size_t)(nl - (text + i)) : len - i;
        size_t l = line_len;
        if (l && text[i + l - 1] == '\r')
            l--;
        if (memchr(text + i, '\0', l)) {
            malformed(st, text + i, l, "NUL byte");
        } else {
            int rc = scan_line(text + i, l, fn, user, st);
            if (rc)
                return rc;
        }
        i += line_len + 1;
    }
    return 0;
}

bool prom_label_next(const char **pos, const char *end, const char **name, size_t *name_len,
                     char *value, size_t cap)
{
    const char *p = *pos;
    if (*p == '{')
        p++;
    while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
        p++;
    if (p >= end || !name_start(*p))
        return false;
    *name = p;
    while (p < end && name_char(*p))
        p++;
    *name_len = (size_t)(p - *name);
    while (p < end && *p != '"')
        p++;
    if (p >= end)
        return false;
    p++;
    size_t n = 0;
    for (; p < end && *p != '"'; p++) {
        char c = *p;
        if (c == '\\' && p + 1 < end) {
            p++;
            c = *p == 'n' ? '\n' : *p;
        }
        if (n + 1 < cap)
            value[n++] = c;
    }
    if (cap)
        value[n] = '\0';
    if (p >= end)
        return false;
    *pos = p + 1;
    return true;
}

/* prom_parse's sample handler: summed by name, and the split and info entries. */
static int add_sample(const struct prom_sample *s, void *user)
{
    struct prom_result *r = user;
    if (add(r, s->name, s->name_len, s->value) < 0)
        return -1;
    for (size_t k = 0; s->labels && PROM_SPLIT_LABELS[k]; k++)
        if (add_split(r, s->name, s->name_len, s->labels, s->labels_end, PROM_SPLIT_LABELS[k],
                      s->value) < 0)
            return -1;
    if (s->labels && add_info_labels(r, s->name, s->name_len, s->labels, s->labels_end) < 0)
        return -1;
    return 0;
}

int prom_parse(const char *text, size_t len, struct prom_result *out)
{
    memset(out, 0, sizeof *out);
    struct prom_scan_stats st;
    if (prom_scan(text, len, add_sample, out, &st) != 0) {
        prom_free(out);
        return -1;
    }
    out->samples = st.samples;
    out->malformed_lines = st.malformed_lines;
    memcpy(out->first_error, st.first_error, sizeof out->first_error);
    return 0;
}

void prom_free(struct prom_result *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->entries[i].name);
    free(r->entries);
    free(r->index);
    r->entries = NULL;
    r->index = NULL;
    r->n = r->cap = r->index_cap = 0;
}

static const struct prom_entry *find(const struct prom_result *r, const char *name, size_t len)
{
    if (!r->index_cap)
        return NULL;
    size_t *slot = slot_of(r, name, len);
    return *slot ? &r->entries[*slot - 1] : NULL;
}

static bool ends_with_total(const char *name, size_t len)
{
    return len > 6 && memcmp(name + len - 6, "_total", 6) == 0;
}

bool prom_lookup(const struct prom_result *r, const char *name, double *value)
{
    size_t len = strlen(name);
    const struct prom_entry *e = find(r, name, len);
    if (!e) {
        char alt[256];
        if (ends_with_total(name, len)) {
            e = find(r, name, len - 6);
        } else if (len + 7 <= sizeof alt) {
            snprintf(alt, sizeof alt, "%s_total", name);
            e = find(r, alt, len + 6);
        }
    }
    if (!e)
        return false;
    *value = e->sum;
    return true;
}

json_t *prom_to_json(const struct prom_result *r)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < r->n; i++) {
        double v = r->entries[i].sum;
        json_object_set_new(o, r->entries[i].name, isfinite(v) ? json_real(v) : json_null());
    }
    return o;
}

bool prom_json_lookup(const json_t *metrics, const char *name, double *value)
{
    size_t len = strlen(name);
    const json_t *v = json_object_get(metrics, name);
    if (!v) {
        char alt[256];
        if (ends_with_total(name, len)) {
            snprintf(alt, sizeof alt, "%.*s", (int)(len - 6), name);
            v = json_object_get(metrics, alt);
        } else if (len + 7 <= sizeof alt) {
            snprintf(alt, sizeof alt, "%s_total", name);
            v = json_object_get(metrics, alt);
        }
    }
    if (!json_is_number(v))
        return false;
    *value = json_number_value(v);
    return true;
}
