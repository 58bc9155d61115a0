/*
 * names.h - the one table of names for each enumeration (KV modes, log levels, arrivals,
 * scenarios, personalities, transports ...). A table is an array of `struct name_entry`
 * ended by a row whose name is NULL. Every command parses, prints and lists an enumeration
 * from its table, so a name is spelled once; after parsing, code compares C enum values,
 * never strings.
 */
#ifndef KVBENCH_UTIL_NAMES_H
#define KVBENCH_UTIL_NAMES_H

#include "util/buf.h"

struct name_entry {
    const char *name;
    int value;
};

/* The value whose name is `name` (exact match), or -1 when none is. */
int names_value(const struct name_entry *table, const char *name);
/* The name of `value`, or NULL when the table has none. */
const char *names_name(const struct name_entry *table, int value);
/* Appends every name, separated by `sep` ("off|cpu_only|cpu_disk"). */
void names_list(const struct name_entry *table, const char *sep, struct buf *out);
/* Number of rows before the terminator. */
int names_count(const struct name_entry *table);

#endif
