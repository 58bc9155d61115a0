/*
 * kvmode.h - the KV modes (SPEC §1): where KV blocks may go besides device memory. `off` keeps
 * them on the device only, `cpu_only` offloads to host memory, `cpu_disk` to host memory and
 * disk. The harness labels runs with them and judges what each mode should show; the embedded
 * engine runs in one. The names are spelled once, in KV_MODE_NAMES, below both.
 */
#ifndef KVBENCH_MODEL_KVMODE_H
#define KVBENCH_MODEL_KVMODE_H

#include "util/names.h"

enum kv_mode { KV_MODE_OFF = 0, KV_MODE_CPU_ONLY = 1, KV_MODE_CPU_DISK = 2 };

extern const struct name_entry KV_MODE_NAMES[];

/* The mode's name ("off", "cpu_only", "cpu_disk"); "?" for a value outside the enum. */
const char *kv_mode_name(enum kv_mode m);
/* 0 and *out set when s names a mode, else -1. */
int kv_mode_parse(const char *s, enum kv_mode *out);
/* How many tiers besides the device a mode offloads to: off 0, cpu_only 1, cpu_disk 2. */
int kv_mode_tiers(enum kv_mode m);

#endif
