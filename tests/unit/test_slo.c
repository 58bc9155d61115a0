/* Unit tests for goodput (load/loadgen.h): --slo's parser in both spellings and its errors,
 * and the judgement of one request (corrected in an open loop), tallied and summed. */
#include "test_common.h"

#include "load/loadgen.h"
#include "util/err.h"

#include <math.h>

static void parses(const char *text, double ttft, double itl, double tpot, double lat)
{
    struct slo s = {0};
    char err[ERR_LEN] = "";
    if (slo_parse(text, &s, err) != 0)
        fail_msg("'%s': %s", text, err);
    assert_true(s.any);
    assert_true(s.limit_ms[SLO_TTFT] == ttft);
    assert_true(s.limit_ms[SLO_ITL] == itl);
    assert_true(s.limit_ms[SLO_TPOT] == tpot);
    assert_true(s.limit_ms[SLO_LATENCY] == lat);
}

static void refuses(const char *text, const char *needle)
{
    struct slo s = {0};
    char err[ERR_LEN] = "";
    assert_int_equal(slo_parse(text, &s, err), -1);
    if (!strstr(err, needle))
        fail_msg("'%s': error '%s' lacks '%s'", text ? text : "(null)", err, needle);
    assert_non_null(strstr(err, "--slo"));
    assert_null(strchr(err, '\n')); /* one line */
}

static void test_parse_kvbench_spelling(void **state)
{
    (void)state;
    parses("ttft_ms=2000,itl_ms=50,latency_ms=30000", 2000, 50, 0, 30000);
    parses("tpot_ms=12.5", 0, 0, 12.5, 0);
    parses(" ttft_ms=1e3 , tpot_ms=7 ", 1000, 0, 7, 0);
    parses("ttft_ms=1,itl_ms=2,tpot_ms=3,latency_ms=4", 1, 2, 3, 4);
}

static void test_parse_vllm_spelling(void **state)
{
    (void)state;
    parses("ttft:2000,tpot:50,e2el:30000", 2000, 0, 50, 30000);
    parses("ttft:2000 tpot:50", 2000, 0, 50, 0); /* vLLM's --goodput ttft:2000 tpot:50 */
    parses("e2el:100\ttpot:5", 0, 0, 5, 100);
    parses("ttft_ms:10 e2el=20", 10, 0, 0, 20); /* either separator with either name */
}

static void test_parse_accumulates_and_refuses_duplicates(void **state)
{
    (void)state;
    struct slo s = {0};
    char err[ERR_LEN];
    /* --slo given twice: the second adds to the first */
    assert_int_equal(slo_parse("ttft:100", &s, err), 0);
    assert_int_equal(slo_parse("tpot:5", &s, err), 0);
    assert_true(s.limit_ms[SLO_TTFT] == 100 && s.limit_ms[SLO_TPOT] == 5);
    assert_int_equal(slo_parse("ttft_ms=7", &s, err), -1);
    assert_non_null(strstr(err, "ttft_ms given twice"));
    refuses("ttft_ms=1,ttft:2", "ttft_ms given twice");
    refuses("e2el:1 latency_ms=2", "latency_ms given twice");
}

static void test_parse_errors(void **state)
{
    (void)state;
    refuses("", "empty");
    refuses("   ", "empty");
    refuses(NULL, "empty");
    refuses("ttfb_ms=2000", "unknown objective 'ttfb_ms'");
    refuses("goodput:5", "unknown objective 'goodput'");
    refuses("ttft_ms", "expected KEY=MS");
    refuses("ttft_ms=", "expected milliseconds > 0");
    refuses("ttft_ms=abc", "got 'abc'");
    refuses("ttft_ms=0", "expected milliseconds > 0");
    refuses("ttft_ms=-5", "expected milliseconds > 0");
    refuses("ttft_ms=nan", "expected milliseconds > 0");
    refuses("ttft_ms=inf", "expected milliseconds > 0");
    refuses("ttft_ms=20ms", "got '20ms'");
    refuses("ttft_ms=1,,itl_ms=2", "empty objective");
    refuses("ttft_ms=1,", "empty objective");
    refuses(",ttft_ms=1", "empty objective");
}

static void test_json_and_judgeable(void **state)
{
    (void)state;
    struct slo s = {0};
    char err[ERR_LEN], why[256] = "";
    assert_int_equal(slo_parse("e2el:300,ttft:20", &s, err), 0);
    json_t *j = slo_json(&s);
    assert_int_equal(json_object_size(j), 2);
    assert_true(json_real_value(json_object_get(j, "ttft_ms")) == 20);
    assert_true(json_real_value(json_object_get(j, "latency_ms")) == 300);
    json_decref(j);
    assert_true(slo_judgeable(&s, true, why, sizeof why));
    /* without streaming there is no TTFT: not judged, and it says why */
    assert_false(slo_judgeable(&s, false, why, sizeof why));
    assert_non_null(strstr(why, "ttft_ms"));
    struct slo lat = {0};
    assert_int_equal(slo_parse("latency_ms=10", &lat, err), 0);
    assert_true(slo_judgeable(&lat, false, why, sizeof why));
}

/* A successful request: closed loop (no lag), 10 tokens by usage. */
static struct req_result request(double ttft, double lat, double tpot)
{
    struct req_result q;
    memset(&q, 0, sizeof q);
    q.ok = true;
    q.status = 200;
    q.ttft_ms = ttft;
    q.latency_ms = lat;
    q.tpot_ms = tpot;
    q.lag_ms = NAN;
    q.client_lag_ms = NAN;
    q.usage_prompt = 100;
    q.usage_completion = 10;
    q.cached = -1;
    q.output_tokens_est = 9;
    return q;
}

static void test_judge_closed_loop(void **state)
{
    (void)state;
    struct slo s = {0};
    char err[ERR_LEN];
    assert_int_equal(slo_parse("ttft_ms=100,itl_ms=10,tpot_ms=12,latency_ms=500", &s, err), 0);
    const double itl[] = {8, 9, 10, 11, 12}; /* mean 10: at the limit, met */
    unsigned broken;
    struct req_result q = request(100, 500, 12); /* every value at its limit: met */
    assert_true(slo_judge(&s, &q, itl, 5, &broken));
    assert_int_equal(broken, 0);
    q = request(100.001, 500.5, 12.01);
    const double slow[] = {10, 10, 10, 10.5};
    assert_false(slo_judge(&s, &q, slow, 4, &broken));
    assert_int_equal(broken,
                     (1u << SLO_TTFT) | (1u << SLO_LATENCY) | (1u << SLO_TPOT) | (1u << SLO_ITL));
    /* a failed request meets nothing and breaks no objective */
    q = request(1, 1, 1);
    q.ok = false;
    assert_false(slo_judge(&s, &q, itl, 5, &broken));
    assert_int_equal(broken, 0);
    /* no first token: the TTFT objective is not met */
    q = request(NAN, 50, NAN);
    q.usage_completion = 0;
    q.output_tokens_est = 0;
    assert_false(slo_judge(&s, &q, NULL, 0, &broken));
    assert_int_equal(broken, 1u << SLO_TTFT);
    /* one token: no gap, TPOT and ITL hold (vLLM's TPOT of 0) */
    q = request(50, 60, NAN);
    q.usage_completion = 1;
    assert_true(slo_judge(&s, &q, NULL, 0, &broken));
    /* many tokens in one event: no gap was measured, so ITL cannot be shown met */
    q = request(50, 60, 1);
    assert_false(slo_judge(&s, &q, NULL, 0, &broken));
    assert_int_equal(broken, 1u << SLO_ITL);
    /* the estimate stands in when usage is absent */
    q = request(50, 60, NAN);
    q.usage_completion = -1;
    q.output_tokens_est = 1;
    assert_true(slo_judge(&s, &q, NULL, 0, &broken));
    q.output_tokens_est = 2;
    assert_false(slo_judge(&s, &q, NULL, 0, &broken));
    assert_int_equal(broken, (1u << SLO_TPOT) | (1u << SLO_ITL));
}

static void test_judge_open_loop_is_corrected(void **state)
{
    (void)state;
    struct slo s = {0};
    char err[ERR_LEN];
    assert_int_equal(slo_parse("ttft:100,e2el:500,tpot:10", &s, err), 0);
    unsigned broken;
    /* measured 80 ms, but it was due 30 ms before it went out: 110 ms from its due time */
    struct req_result q = request(80, 400, 10);
    q.lag_ms = 30;
    assert_false(slo_judge(&s, &q, NULL, 0, &broken));
    assert_int_equal(broken, 1u << SLO_TTFT);
    q.lag_ms = 20; /* 100 and 420: met */
    assert_true(slo_judge(&s, &q, NULL, 0, &broken));
    q.lag_ms = 101; /* latency 501 from its due time; TPOT is a rate, never corrected */
    assert_false(slo_judge(&s, &q, NULL, 0, &broken));
    assert_int_equal(broken, (1u << SLO_TTFT) | (1u << SLO_LATENCY));
    q.lag_ms = 0; /* open loop, on time */
    assert_true(slo_judge(&s, &q, NULL, 0, &broken));
}

static void test_tally_and_sum(void **state)
{
    (void)state;
    struct slo s = {0};
    char err[ERR_LEN];
    assert_int_equal(slo_parse("ttft_ms=100,latency_ms=500", &s, err), 0);
    struct phase_agg a[2];
    memset(a, 0, sizeof a);
    struct req_result q = request(50, 100, 5); /* met, 10 tokens */
    slo_tally_add(&a[0].slo, &s, &q, NULL, 0);
    q = request(150, 600, 5); /* breaks both */
    slo_tally_add(&a[0].slo, &s, &q, NULL, 0);
    q = request(50, 100, 5);
    q.lag_ms = 60; /* open loop: ttft 110 from its due time */
    slo_tally_add(&a[1].slo, &s, &q, NULL, 0);
    q = request(50, 100, 5);
    q.lag_ms = 0;
    q.usage_completion = -1; /* met, 9 tokens by the estimate */
    slo_tally_add(&a[1].slo, &s, &q, NULL, 0);
    q = request(1, 1, 1);
    q.ok = false; /* judged, not met, breaks nothing */
    slo_tally_add(&a[1].slo, &s, &q, NULL, 0);
    struct phase_agg sum;
    memset(&sum, 0, sizeof sum);
    phase_agg_sum(&sum, &a[0]);
    phase_agg_sum(&sum, &a[1]);
    assert_int_equal(sum.slo.judged, 5);
    assert_int_equal(sum.slo.met, 2);
    assert_true(sum.slo.met_tokens == 19);
    assert_int_equal(sum.slo.broken[SLO_TTFT], 2);
    assert_int_equal(sum.slo.broken[SLO_LATENCY], 1);
    assert_int_equal(sum.slo.broken[SLO_TPOT], 0);
    assert_int_equal(sum.slo.corrected, 2); /* the two with a schedule lag */
    phase_agg_free(&sum);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_kvbench_spelling),
        cmocka_unit_test(test_parse_vllm_spelling),
        cmocka_unit_test(test_parse_accumulates_and_refuses_duplicates),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_json_and_judgeable),
        cmocka_unit_test(test_judge_closed_loop),
        cmocka_unit_test(test_judge_open_loop_is_corrected),
        cmocka_unit_test(test_tally_and_sum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
