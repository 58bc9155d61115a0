/*
 * blockhash.c - chained XXH3-64 over token ids, streamed so no block is copied.
 */
#include "model/blockhash.h"

#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

uint64_t blockhash_next(uint64_t parent, const uint32_t *ids, size_t n)
{
    XXH3_state_t st;
    XXH3_64bits_reset_withSeed(&st, BLOCKHASH_SEED);
    unsigned char p[8];
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(parent >> (8 * i));
    XXH3_64bits_update(&st, p, 8);
    unsigned char chunk[256];
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = ids[i];
        chunk[used++] = (unsigned char)v;
        chunk[used++] = (unsigned char)(v >> 8);
        chunk[used++] = (unsigned char)(v >> 16);
        chunk[used++] = (unsigned char)(v >> 24);
        if (used == sizeof chunk) {
            XXH3_64bits_update(&st, chunk, used);
            used = 0;
        }
    }
    if (used)
        XXH3_64bits_update(&st, chunk, used);
    return XXH3_64bits_digest(&st);
}

size_t blockhash_chain(const uint32_t *ids, size_t n_ids, size_t block_size, uint64_t *out)
{
    if (block_size == 0)
        return 0;
    size_t n_blocks = n_ids / block_size;
    uint64_t parent = 0;
    for (size_t b = 0; b < n_blocks; b++) {
        parent = blockhash_next(parent, ids + b * block_size, block_size);
        out[b] = parent;
    }
    return n_blocks;
}
