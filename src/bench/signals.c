/*
 * signals.c - decision tables. Each signal carries the figures it was decided on and one
 * sentence a reader can act on.
 */
#include "bench/signals.h"

#include "util/buf.h"
#include "util/json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static double num(const json_t *o, const char *key)
{
    return json_get_num(o, key, 0);
}

static bool available(const json_t *d)
{
    return d && json_get_bool(d, "available", false);
}

json_t *signal_eviction_io(const json_t *warm_io, const json_t *pressure_io,
                           const json_t *replay_io)
{
    if (!warm_io || !replay_io)
        return json_pack("{s:s, s:n, s:n, s:n, s:s}", "signal", "io_unavailable", "warm_read_mib",
                         "pressure_write_mib", "replay_read_mib", "interpretation",
                         "Block-device counters were not readable for this run, so disk reads "
                         "during replay cannot be judged; check --phase-io-device.");
    double warm = num(warm_io, "read_mib_delta");
    double press = pressure_io ? num(pressure_io, "write_mib_delta") : 0;
    double replay = num(replay_io, "read_mib_delta");
    double threshold = fmax(1.0, 1.2 * warm);
    const char *sig;
    char text[400];
    if (replay > threshold) {
        sig = "possible_readback";
        snprintf(text, sizeof text,
                 "Replay read %.1f MiB from the disk, more than max(1 MiB, 1.2 x the %.1f MiB read "
                 "while warming): set A was most likely read back from the disk tier.",
                 replay, warm);
    } else if (replay > 0) {
        sig = "weak_read_signal";
        snprintf(text, sizeof text,
                 "Replay read %.2f MiB from the disk, not clearly above the %.2f MiB read while "
                 "warming: any read-back was small, or served from memory tiers.",
                 replay, warm);
    } else {
        sig = "no_clear_readback";
        snprintf(text, sizeof text,
                 "Replay read nothing from the disk: set A was served from memory tiers or "
                 "recomputed (pressure wrote %.1f MiB).",
                 press);
    }
    return json_pack("{s:s, s:f, s:f, s:f, s:f, s:s}", "signal", sig, "warm_read_mib", warm,
                     "pressure_write_mib", press, "replay_read_mib", replay,
                     "readback_threshold_mib", threshold, "interpretation", text);
}

static json_t *phase_figures(const json_t *d)
{
    if (!available(d))
        return json_pack("{s:b}", "available", 0);
    return json_pack("{s:b, s:f, s:f, s:f, s:f, s:f}", "available", 1, "onboard_blocks",
                     num(d, "onboard_blocks_total_delta"), "onboard_h2d",
                     num(d, "kvbm_onboard_blocks_h2d_delta"), "onboard_d2d",
                     num(d, "kvbm_onboard_blocks_d2d_delta"), "matched_tokens",
                     num(d, "kvbm_matched_tokens_delta"), "offload_blocks",
                     num(d, "offload_blocks_total_delta"));
}

json_t *signal_eviction_kvbm(const json_t *warm, const json_t *pressure, const json_t *replay)
{
    json_t *o = json_object();
    json_put(o, "warm_A", phase_figures(warm));
    json_put(o, "pressure_B", phase_figures(pressure));
    json_put(o, "replay_A", phase_figures(replay));
    if (!available(replay)) {
        json_put_str(o, "signal", "kvbm_metrics_unavailable");
        json_put(o, "reuse_gate", json_null());
        json_put_str(o, "interpretation",
                     "KV metrics were not available around the replay phase, so onboarding "
                     "cannot be judged; check --kvbm-metrics-url.");
        return o;
    }
    double r_on = num(replay, "onboard_blocks_total_delta");
    double r_h2d = num(replay, "kvbm_onboard_blocks_h2d_delta");
    double r_d2d = num(replay, "kvbm_onboard_blocks_d2d_delta");
    double r_match = num(replay, "kvbm_matched_tokens_delta");
    double w_on = available(warm) ? num(warm, "onboard_blocks_total_delta") : 0;
    double p_on = available(pressure) ? num(pressure, "onboard_blocks_total_delta") : 0;
    json_put_real(o, "replay_onboard_h2d", r_h2d);
    json_put_real(o, "replay_onboard_d2d", r_d2d);
    json_put_real(o, "replay_matched_tokens", r_match);
    json_put_str(o, "reuse_gate", r_match > 0 ? "reuse_present" : "reuse_absent");
    char text[480];
    const char *sig;
    if (r_on > 0) {
        sig = "disk_rehydrate_detected";
        snprintf(text, sizeof text,
                 "Replay onboarded %.0f blocks into device memory: %.0f from disk (G3->G1, d2d) "
                 "and %.0f from host memory (G2->G1, h2d); %.0f prompt tokens were reused "
                 "instead of recomputed.",
                 r_on, r_d2d, r_h2d, r_match);
    } else if (r_match <= 0) {
        sig = "no_onboard_no_reuse_signal";
        snprintf(text, sizeof text,
                 "Replay matched no tokens: prefix reuse never triggered, so rehydrate could "
                 "not happen. Check that prompts are byte-identical (--prompt-salt) and that "
                 "the engine has block reuse enabled.");
    } else if (w_on > 0 || p_on > 0) {
        sig = "onboard_outside_replay";
        snprintf(text, sizeof text,
                 "Blocks were onboarded while warming or under pressure (%.0f, %.0f) but not in "
                 "replay, which reused %.0f tokens from device memory: pressure did not evict "
                 "set A from the fast tier.",
                 w_on, p_on, r_match);
    } else {
        sig = "no_onboard_signal";
        snprintf(text, sizeof text,
                 "Replay reused %.0f tokens but onboarded no block: set A stayed in device "
                 "memory. Add pressure (--eviction-b-requests) or shrink the device cache.",
                 r_match);
    }
    json_put_str(o, "signal", sig);
    json_put_bool(o, "disk_onboard_in_replay", r_d2d > 0);
    json_put_str(o, "interpretation", text);
    return o;
}

json_t *signal_reuse_kvbm(const json_t *const *deltas, const long long *cached, size_t n)
{
    json_t *o = json_object();
    json_t *reps = json_array();
    bool any_unavailable = false, reuse = false;
    double matched_total = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *d = deltas[i];
        json_t *r = json_object();
        json_put_int(r, "repeat", (long long)i + 1);
        if (available(d)) {
            double m = num(d, "kvbm_matched_tokens_delta");
            json_put_real(r, "matched_tokens", m);
            json_put_real(r, "onboard_h2d", num(d, "kvbm_onboard_blocks_h2d_delta"));
            json_put_real(r, "onboard_d2d", num(d, "kvbm_onboard_blocks_d2d_delta"));
            if (i >= 1 && m > 0)
                reuse = true;
            if (i >= 1)
                matched_total += m;
        } else {
            json_put_bool(r, "available", false);
            if (i >= 1)
                any_unavailable = true;
        }
        json_put(r, "cached_tokens", cached[i] >= 0 ? json_integer(cached[i]) : json_null());
        json_array_append_new(reps, r);
    }
    json_put(o, "repeats", reps);
    const char *sig;
    char text[400];
    if (reuse) {
        sig = "prefix_reuse_detected";
        snprintf(text, sizeof text,
                 "Repeats of the same prompt matched %.0f tokens in the KV cache: prefix reuse "
                 "works, so offloaded blocks can be brought back.",
                 matched_total);
    } else if (any_unavailable) {
        sig = "kvbm_metrics_unavailable";
        snprintf(text, sizeof text, "KV metrics were not available for the repeats.");
    } else {
        sig = "no_prefix_reuse_signal";
        snprintf(text, sizeof text,
                 "Repeats of the same prompt matched no tokens: KV reuse is gated or disabled, so "
                 "disk onboarding cannot be observed. Check reuse settings and identical inputs.");
    }
    json_put_str(o, "signal", sig);
    json_put_str(o, "interpretation", text);
    return o;
}

static bool all_equal(const char *const *v, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (!v[i] || !v[0] || strcmp(v[i], v[0]) != 0)
            return false;
    return n > 0 && v[0] != NULL;
}

static json_t *list(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, v[i] ? json_string(v[i]) : json_null());
    return a;
}

json_t *signal_reuse_identity(const char *const *prompt_sha, const char *const *params_sha,
                              const char *const *identity_sha, const char *const *payload_sha,
                              size_t n)
{
    bool same_identity = all_equal(identity_sha, n);
    bool same_prompt = all_equal(prompt_sha, n);
    bool same_params = all_equal(params_sha, n);
    bool same_payload = all_equal(payload_sha, n);
    bool ok = same_identity && same_prompt && same_params && same_payload;
    return json_pack("{s:o, s:o, s:o, s:o, s:b, s:b, s:b, s:b, s:s}", "prompt_sha256",
                     list(prompt_sha, n), "generation_params_sha256", list(params_sha, n),
                     "request_identity_sha256", list(identity_sha, n), "payload_sha256",
                     list(payload_sha, n), "identical_identity", same_identity,
                     "identical_prompt_bytes", same_prompt, "identical_params", same_params,
                     "identical_payload", same_payload, "verdict",
                     ok ? "identical_inputs_confirmed" : "identity_mismatch_detected");
}

void validity_init(struct validity *v)
{
    v->reason = NULL;
    v->details = json_array();
}

void validity_add(struct validity *v, const char *reason, json_t *detail)
{
    if (!v->reason)
        v->reason = reason;
    json_t *d = json_is_object(detail)
                    ? detail
                    : json_pack("{s:o}", "detail", detail ? detail : json_null());
    json_object_set_new(d, "reason", json_string(reason));
    json_array_append_new(v->details, d);
}

void validity_free(struct validity *v)
{
    json_decref(v->details);
    v->details = NULL;
}
