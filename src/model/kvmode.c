/*
 * kvmode.c - the KV modes' one table of names (kvmode.h).
 */
#include "model/kvmode.h"

const struct name_entry KV_MODE_NAMES[] = {{"off", KV_MODE_OFF},
                                           {"cpu_only", KV_MODE_CPU_ONLY},
                                           {"cpu_disk", KV_MODE_CPU_DISK},
                                           {NULL, 0}};

const char *kv_mode_name(enum kv_mode m)
{
    const char *n = names_name(KV_MODE_NAMES, (int)m);
    return n ? n : "?";
}

int kv_mode_parse(const char *s, enum kv_mode *out)
{
    int v = names_value(KV_MODE_NAMES, s);
    if (v < 0)
        return -1;
    *out = (enum kv_mode)v;
    return 0;
}

int kv_mode_tiers(enum kv_mode m)
{
    return m == KV_MODE_OFF ? 0 : m == KV_MODE_CPU_DISK ? 2 : 1;
}
