/*
 * fault.h - allocation-failure injection for tests (SQLite's model): code whose out-of-memory
 * paths are tested allocates through fault_malloc / fault_calloc / fault_realloc (struct buf
 * grows through it, so every artifact and row built in a buffer can be failed); a test arms the Nth
 * call from then on to fail (once, or that one and every later one) and checks the code's answer.
 * Disarmed (always, outside tests), the wrappers are malloc and calloc plus one relaxed atomic
 * load.
 */
#ifndef KVBENCH_UTIL_FAULT_H
#define KVBENCH_UTIL_FAULT_H

#include <stdbool.h>
#include <stddef.h>

void *fault_malloc(size_t size);
void *fault_calloc(size_t n, size_t size);
void *fault_realloc(void *p, size_t size);
/* Fail the nth wrapped allocation from now (1 = the next one); persistent: and all after it. */
void fault_arm(long nth, bool persistent);
void fault_disarm(void);
/* Wrapped allocations that failed since fault_arm. */
long fault_failures(void);

#endif
