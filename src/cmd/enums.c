/*
 * enums.c - the name tables of the enumerations that commands' flags share (enums.h). Each
 * table's order is the order --help lists the names in, so it stays as the flags always showed
 * it; the values are the C enums of the modules that act on them.
 */
#include "cmd/enums.h"

#include "engine/kvbm.h"
#include "load/loadgen.h"
#include "net/http.h"
#include "util/log.h"

#include <stdio.h>

const struct name_entry PROMPT_SET_NAMES[] = {
    {"short", PROMPT_SET_SHORT}, {"long", PROMPT_SET_LONG}, {"mixed", PROMPT_SET_MIXED}, {NULL, 0}};

const struct name_entry REUSE_PROMPT_SET_NAMES[] = {
    {"short", PROMPT_SET_SHORT}, {"long", PROMPT_SET_LONG}, {NULL, 0}};

const struct name_entry CHAT_TEMPLATE_FLAG_NAMES[] = {
    {"auto", CHAT_TEMPLATE_FLAG_AUTO}, {"llama3", CHAT_TPL_LLAMA3}, {"llama31", CHAT_TPL_LLAMA31},
    {"chatml", CHAT_TPL_CHATML},       {"plain", CHAT_TPL_PLAIN},   {NULL, 0}};

const struct name_entry PROMPT_TEMPLATE_NAMES[] = {
    {"llama3", PROMPT_TEMPLATE_LLAMA3}, {"none", PROMPT_TEMPLATE_NONE}, {NULL, 0}};

const struct name_entry PRESSURE_NAMES[] = {
    {"fixed", PRESSURE_FIXED}, {"auto", PRESSURE_AUTO}, {NULL, 0}};

const char *enums_sentence(const struct name_entry *table, char *out, size_t len)
{
    int n = names_count(table);
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < n && used < len; i++) {
        const char *sep = i == 0 ? "" : i == n - 1 ? " or " : ", ";
        int w = snprintf(out + used, len - used, "%s%s", sep, table[i].name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return out;
}
