/* Unit tests for the redaction step: registered secrets and Bearer values, wherever they are. */
#include "test_common.h"

#include "util/redact.h"

#include <stdlib.h>

static char *red(const char *in)
{
    size_t n;
    char *r = redact_dup(in, strlen(in), &n);
    if (!r)
        return strdup(in);
    assert_int_equal(strlen(r), n);
    return r;
}

static void test_secret_and_bearer(void **state)
{
    (void)state;
    redact_clear();
    redact_add_secret("sk-very-secret-42");
    redact_add_secret("abc"); /* too short to register: it would redact ordinary text */
    char *r = red("{\"error\":\"invalid key sk-very-secret-42 (twice: sk-very-secret-42)\"}");
    assert_string_equal(r, "{\"error\":\"invalid key [REDACTED] (twice: [REDACTED])\"}");
    free(r);
    r = red("Authorization: Bearer eyJhbGciOi.something-else, next");
    assert_string_equal(r, "Authorization: Bearer [REDACTED], next");
    free(r);
    r = red("bearer  tok123\"");
    assert_string_equal(r, "bearer  [REDACTED]\"");
    free(r);
    /* nothing to do: no copy */
    size_t n;
    assert_null(redact_dup("abc plain text", 14, &n));
    assert_false(redact_needed("abc plain text", 14));
    /* already redacted stays as it is */
    assert_false(redact_needed("Bearer [REDACTED]", 17));
    struct buf b = BUF_INIT;
    buf_append_str(&b, "x sk-very-secret-42 y");
    assert_int_equal(redact_buf(&b), 0);
    assert_string_equal(buf_cstr(&b), "x [REDACTED] y");
    buf_free(&b);
    redact_clear();
    assert_false(redact_needed("sk-very-secret-42", 17));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_and_bearer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
