/* libFuzzer target: the Prometheus text parser and its lookups on arbitrary bytes. */
#include "probe/prom.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct prom_result r;
    if (prom_parse((const char *)data, size, &r) < 0)
        return 0;
    double v;
    prom_lookup(&r, "kvbm_matched_tokens", &v);
    json_t *j = prom_to_json(&r);
    prom_json_lookup(j, "kvbm_offload_blocks_d2h_total", &v);
    json_decref(j);
    prom_free(&r);
    return 0;
}
