/*
 * names.c - lookups over enumeration name tables (names.h). The tables are short (a handful of
 * rows) and read at the edges only — parsing a flag, writing an artifact — so a linear scan is
 * the whole implementation.
 */
#include "util/names.h"

#include <string.h>

int names_value(const struct name_entry *table, const char *name)
{
    if (name == NULL)
        return -1;
    for (const struct name_entry *e = table; e->name != NULL; e++)
        if (strcmp(e->name, name) == 0)
            return e->value;
    return -1;
}

const char *names_name(const struct name_entry *table, int value)
{
    for (const struct name_entry *e = table; e->name != NULL; e++)
        if (e->value == value)
            return e->name;
    return NULL;
}

void names_list(const struct name_entry *table, const char *sep, struct buf *out)
{
    for (const struct name_entry *e = table; e->name != NULL; e++) {
        if (e != table)
            buf_append_str(out, sep);
        buf_append_str(out, e->name);
    }
}

int names_count(const struct name_entry *table)
{
    int n = 0;
    while (table[n].name != NULL)
        n++;
    return n;
}
