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

#include <ftw.h>
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

static inline int test_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Remove a directory tree a test made (test_tmpdir), files and all. */
static inline void test_rmtree(const char *dir)
{
    if (dir)
        nftw(dir, test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static inline const char *test_fixture(const char *rel, char *out, size_t n)
{
    const char *root = getenv("KVBENCH_FIXTURES");
    snprintf(out, n, "%s/%s", root ? root : "tests/fixtures", rel);
    return out;
}

#endif
