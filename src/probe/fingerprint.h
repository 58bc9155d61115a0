/*
 * fingerprint.h - what machine and build produced a result: host, kernel, OS, CPU, memory,
 * kvbench version and git SHA.
 */
#ifndef KVBENCH_PROBE_FINGERPRINT_H
#define KVBENCH_PROBE_FINGERPRINT_H

#include <jansson.h>

/* New reference; fields that cannot be read are null. */
json_t *fingerprint_json(const char *version, const char *git_sha, const char *timestamp_utc);

#endif
