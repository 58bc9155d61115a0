/*
 * fault.c - allocation-failure injection (see fault.h). The countdown is atomic so that an armed
 * test may allocate from several threads; the disarmed path reads one flag.
 */
#include "util/fault.h"

#include <stdatomic.h>
#include <stdlib.h>

static atomic_bool armed;
static atomic_long countdown; /* the armed allocation fails when this reaches 0 */
static atomic_bool persist;
static atomic_long failures;

static bool should_fail(void)
{
    if (!atomic_load_explicit(&armed, memory_order_relaxed))
        return false;
    long left = atomic_fetch_sub(&countdown, 1) - 1;
    if (left == 0 || (left < 0 && atomic_load(&persist))) {
        atomic_fetch_add(&failures, 1);
        return true;
    }
    return false;
}

void *fault_malloc(size_t size)
{
    return should_fail() ? NULL : malloc(size);
}

void *fault_calloc(size_t n, size_t size)
{
    return should_fail() ? NULL : calloc(n, size);
}

void *fault_realloc(void *p, size_t size)
{
    return should_fail() ? NULL : realloc(p, size);
}

void fault_arm(long nth, bool persistent)
{
    atomic_store(&countdown, nth);
    atomic_store(&persist, persistent);
    atomic_store(&failures, 0);
    atomic_store(&armed, true);
}

void fault_disarm(void)
{
    atomic_store(&armed, false);
}

long fault_failures(void)
{
    return atomic_load(&failures);
}
