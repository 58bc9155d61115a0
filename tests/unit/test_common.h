/*
 * test_common.h - includes and small helpers shared by the cmocka unit tests.
 */
#ifndef KVBENCH_TEST_COMMON_H
#define KVBENCH_TEST_COMMON_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h must follow the headers above */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A fresh temporary directory for one test; caller frees the string and removes the tree. */
static inline char *test_tmpdir(void)
{
    char *t = strdup("/tmp/kvbench-test-XXXXXX");
    if (!t || !mkdtemp(t)) {
        free(t);
        return NULL;
    }
    return t;
}

static inline const char *test_fixture(const char *rel, char *out, size_t n)
{
    const char *root = getenv("KVBENCH_FIXTURES");
    snprintf(out, n, "%s/%s", root ? root : "tests/fixtures", rel);
    return out;
}

#endif
