/*
 * blockhash.h - sequence hashes of KV blocks.
 *
 * A block is block_size consecutive token ids; only full blocks are hashed. Each block's
 * sequence hash is XXH3-64 (seed 1337) over its parent's sequence hash (8 bytes, little-endian;
 * 0 for the first block) followed by its token ids (4 bytes each, little-endian). Equal hashes
 * therefore mean equal prefixes, as in KVBM.
 */
#ifndef KVBENCH_MODEL_BLOCKHASH_H
#define KVBENCH_MODEL_BLOCKHASH_H

#include <stddef.h>
#include <stdint.h>

#define BLOCKHASH_SEED 1337u

uint64_t blockhash_next(uint64_t parent, const uint32_t *ids, size_t n);
/* Hash every full block of ids[0..n_ids) into out (room for n_ids / block_size entries).
 * Returns the number of full blocks. */
size_t blockhash_chain(const uint32_t *ids, size_t n_ids, size_t block_size, uint64_t *out);

#endif
