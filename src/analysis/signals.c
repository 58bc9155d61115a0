/*
 * signals.c - decision tables. Each signal carries the figures it was decided on and one
 * sentence a reader can act on.
 */
#include "analysis/signals.h"

#include "model/engines.h"

#include "util/buf.h"
#include "util/json.h"
#include "util/log.h"

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

static int io_rank(const json_t *sig)
{
    const char *s = json_get_str(sig, "signal", "");
    return strcmp(s, "possible_readback") == 0 ? 2 : strcmp(s, "weak_read_signal") == 0 ? 1 : 0;
}

/* A node's disk figures in a phase's nodes object, or NULL (with why) when it has none. */
static const json_t *node_disk(const json_t *nodes, const char *name, const char *phase, char *why,
                               size_t cap)
{
    const json_t *n = json_object_get(nodes, name);
    const json_t *d = json_object_get(n, "disk");
    if (!n)
        snprintf(why, cap, "not read in %s", phase);
    else if (!json_get_bool(n, "available", false))
        snprintf(why, cap, "unavailable in %s: %s", phase, json_get_str(n, "reason", "?"));
    else if (!json_is_number(json_object_get(d, "read_mib_delta")))
        snprintf(why, cap, "no disk read figures in %s", phase);
    else
        return d;
    return NULL;
}

json_t *signal_eviction_io_nodes(const json_t *warm, const json_t *pressure, const json_t *replay)
{
    json_t *per = json_object();
    const char *best = NULL, *name;
    const json_t *node, *best_sig = NULL;
    json_object_foreach((json_t *)replay, name, node)
    {
        char why[400];
        const json_t *dr = node_disk(replay, name, "replay_A", why, sizeof why);
        const json_t *dw = dr ? node_disk(warm, name, "warm_A", why, sizeof why) : NULL;
        if (!dr || !dw) {
            json_object_set_new(per, name,
                                json_pack("{s:s, s:s}", "signal", "io_unavailable", "reason", why));
            continue;
        }
        const json_t *np = json_object_get(pressure, name);
        const json_t *dp =
            json_get_bool(np, "available", false) ? json_object_get(np, "disk") : NULL;
        json_t *sig = signal_eviction_io(dw, json_is_object(dp) ? dp : NULL, dr);
        json_object_set_new(per, name, sig);
        if (!best_sig || io_rank(sig) > io_rank(best_sig) ||
            (io_rank(sig) == io_rank(best_sig) &&
             json_get_num(sig, "replay_read_mib", 0) >
                 json_get_num(best_sig, "replay_read_mib", 0))) {
            best = name;
            best_sig = sig;
        }
    }
    if (!best_sig) {
        json_decref(per);
        return NULL;
    }
    json_t *out = json_deep_copy(best_sig);
    const char *source = json_get_str(json_object_get(replay, best), "source", "scrape");
    char text[600];
    snprintf(text, sizeof text, "Node %s (%s): %s", best, source,
             json_get_str(best_sig, "interpretation", ""));
    json_object_set_new(out, "interpretation", json_string(text));
    json_object_set_new(out, "node", json_string(best));
    json_object_set_new(out, "source", json_string(source));
    json_object_set_new(out, "per_node", per);
    return out;
}

/* A generic KV field of a phase delta (model/engines.h): from its engine_delta when the engine
 * profile wrote one, else from KVBM's own keys (<metric>_delta) read by the Dynamo profile's
 * rules, the same rules engine_delta reads KVBM by. False when unavailable or null: never read
 * as 0. */
static bool gen(const json_t *d, enum kv_field field, double *out)
{
    if (!available(d))
        return false;
    const json_t *ed = json_object_get(d, "engine_delta");
    if (ed) {
        const json_t *v = json_object_get(ed, KV_FIELD_NAMES[field]);
        if (!json_is_number(v))
            return false;
        *out = json_number_value(v);
        return true;
    }
    bool any = false;
    double sum = 0;
    for (const struct kv_rule *r = ENGINE_DYNAMO.rules; r->metric; r++) {
        if (r->field != field)
            continue;
        char key[128];
        snprintf(key, sizeof key, "%s_delta", r->metric);
        const json_t *v = json_object_get(d, key);
        if (json_is_number(v)) {
            sum += json_number_value(v) * r->scale;
            any = true;
        }
    }
    if (any)
        *out = sum;
    return any;
}

static json_t *opt(bool have, double v)
{
    return have ? json_real(v) : json_null();
}

/* What a phase tells about reuse and onboarding, each part null when the engine does not say. */
struct kv_view {
    bool avail;
    bool have_reused, have_on_host, have_on_disk, have_r_host, have_r_disk, have_r_ext;
    double reused, on_host, on_disk, r_host, r_disk, r_ext;
    bool have_cached;
    double cached; /* per-request evidence: cached tokens summed over the phase's rows */
};

static struct kv_view view(const json_t *d, double cached)
{
    struct kv_view v = {0};
    v.avail = available(d);
    v.have_reused = gen(d, KF_REUSED_TOKENS, &v.reused);
    v.have_on_host = gen(d, KF_ONBOARD_HOST, &v.on_host);
    v.have_on_disk = gen(d, KF_ONBOARD_DISK, &v.on_disk);
    v.have_r_host = gen(d, KF_REUSED_HOST, &v.r_host);
    v.have_r_disk = gen(d, KF_REUSED_DISK, &v.r_disk);
    v.have_r_ext = gen(d, KF_REUSED_EXTERNAL, &v.r_ext);
    v.have_cached = cached >= 0;
    v.cached = cached;
    if (!v.have_reused && v.have_cached) { /* no counter: the responses' own account */
        v.have_reused = true;
        v.reused = cached;
    }
    return v;
}

/* Blocks (or tokens) brought back from a lower tier, and whether the engine can tell at all. */
static bool onboarded(const struct kv_view *v, double *amount)
{
    if (v->have_on_host || v->have_on_disk) {
        *amount = v->on_host + v->on_disk;
        return true;
    }
    if (v->have_r_host || v->have_r_disk || v->have_r_ext) {
        *amount = v->r_host + v->r_disk + v->r_ext;
        return true;
    }
    return false;
}

/* <prefix>_onboard_blocks, _onboard_blocks_h2d, _onboard_blocks_d2d, _matched_tokens (the
 * reference harness's names), _offload_blocks (kvbench's); null where the engine is silent. */
static void phase_figures(json_t *o, const char *prefix, const struct kv_view *v, const json_t *d)
{
    double on = 0, off = 0, off_d = 0;
    bool have_on = onboarded(v, &on);
    bool have_off = gen(d, KF_OFFLOAD_HOST, &off);
    if (gen(d, KF_OFFLOAD_DISK, &off_d)) {
        off += off_d;
        have_off = true;
    }
    char key[64];
    snprintf(key, sizeof key, "%s_onboard_blocks", prefix);
    json_put(o, key, opt(have_on, on));
    snprintf(key, sizeof key, "%s_onboard_blocks_h2d", prefix);
    json_put(o, key, opt(v->have_on_host, v->on_host));
    snprintf(key, sizeof key, "%s_onboard_blocks_d2d", prefix);
    json_put(o, key, opt(v->have_on_disk, v->on_disk));
    snprintf(key, sizeof key, "%s_matched_tokens", prefix);
    json_put(o, key, opt(v->have_reused, v->reused));
    snprintf(key, sizeof key, "%s_offload_blocks", prefix);
    json_put(o, key, opt(have_off, off));
}

/* The verdict on replay_A's onboarding (r: replay; w_on, p_on: what warm_A and pressure_B
 * onboarded): the signal's name, its sentence in text, and disk_onboard_in_replay in o when the
 * engine told. */
static const char *eviction_verdict(json_t *o, const struct kv_view *r, bool tiers, double r_on,
                                    double w_on, double p_on, char *text, size_t len)
{
    const char *sig;
    if (tiers && r_on > 0) {
        bool disk = (r->have_on_disk && r->on_disk > 0) || (r->have_r_disk && r->r_disk > 0);
        bool told = r->have_on_disk || r->have_r_disk;
        if (!told) {
            sig = "onboard_detected_tier_unknown";
            snprintf(text, len,
                     "Replay reused %.0f prompt tokens from the engine's offload tier (KV "
                     "connector); the engine does not say whether they came from host memory or "
                     "disk.",
                     r_on);
        } else {
            sig = "disk_rehydrate_detected";
            if (r->have_on_host || r->have_on_disk)
                snprintf(text, len,
                         "Replay onboarded %.0f blocks into device memory: %.0f from disk (G3->G1, "
                         "d2d) and %.0f from host memory (G2->G1, h2d); %.0f prompt tokens were "
                         "reused instead of recomputed.",
                         r_on, r->on_disk, r->on_host, r->have_reused ? r->reused : 0);
            else
                snprintf(text, len,
                         "Replay reused %.0f prompt tokens from lower tiers: %.0f from "
                         "disk/storage and %.0f from host memory.",
                         r_on, r->r_disk, r->r_host);
        }
        json_put_bool(o, "disk_onboard_in_replay", disk);
    } else if (r->have_reused && r->reused <= 0) {
        sig = "no_onboard_no_reuse_signal";
        snprintf(text, len,
                 "Replay matched no tokens: prefix reuse never triggered, so rehydrate could "
                 "not happen. Check that prompts are byte-identical (--prompt-salt) and that "
                 "the engine has block reuse enabled.");
    } else if (!tiers) {
        sig = "reuse_in_replay_tier_unknown";
        snprintf(text, len,
                 "Replay reused %.0f prompt tokens, but this engine does not say from which tier: "
                 "a read-back from host memory or disk cannot be told apart from reuse in device "
                 "memory here (compare TTFT, or the block-device reads of the I/O signal).",
                 r->reused);
    } else if (w_on > 0 || p_on > 0) {
        sig = "onboard_outside_replay";
        snprintf(text, len,
                 "Blocks were onboarded while warming or under pressure (%.0f, %.0f) but not in "
                 "replay, which reused %.0f tokens from device memory: pressure did not evict "
                 "set A from the fast tier.",
                 w_on, p_on, r->reused);
    } else {
        sig = "no_onboard_signal";
        snprintf(text, len,
                 "Replay reused %.0f tokens but onboarded no block: set A stayed in device "
                 "memory. Add pressure (--eviction-b-requests) or shrink the device cache.",
                 r->reused);
    }
    return sig;
}

/* No read-back because set A never reached the disk (issue 14's diagnosis), when the figures of
 * warm_A and replay_A tell: the diagnosis into o, its sentence into text. */
static void diagnose_never_reached_disk(json_t *o, const char *sig, const json_t *warm,
                                        const json_t *replay, char *text, size_t len)
{
    double w_off_h = 0, w_off_d = 0, r_off_d = 0;
    if (strcmp(sig, "disk_rehydrate_detected") != 0 &&
        strcmp(sig, "onboard_detected_tier_unknown") != 0 && gen(warm, KF_OFFLOAD_HOST, &w_off_h) &&
        gen(warm, KF_OFFLOAD_DISK, &w_off_d) && w_off_h > 0 && w_off_d <= 0) {
        bool late = gen(replay, KF_OFFLOAD_DISK, &r_off_d) && r_off_d > 0;
        char late_text[160] = "";
        if (late)
            snprintf(late_text, sizeof late_text,
                     " replay_A then wrote %.0f blocks to disk itself: set A reached the disk "
                     "only during the replay.",
                     r_off_d);
        snprintf(text, len,
                 "Set A never reached the disk tier: warm_A offloaded %.0f blocks to host memory "
                 "and none to disk (a disk offload filter admits a block only on its second "
                 "sighting), so once pressure_B pushed A out of the faster tiers there was "
                 "nothing to read back.%s Run the engine without the filter "
                 "(--disable-disk-offload-filter) or send set A twice before the pressure.",
                 w_off_h, late_text);
        json_put(o, "diagnosis",
                 json_pack("{s:s, s:f, s:f, s:o}", "cause", "set_a_never_reached_disk",
                           "warm_offload_blocks_host", w_off_h, "warm_offload_blocks_disk", w_off_d,
                           "replay_offload_blocks_disk", late ? json_real(r_off_d) : json_null()));
    }
}

/* The other diagnoses, when none is set yet: read back from host memory only, or reused from
 * device memory only; the sentence is extended or kept. */
static void diagnose_where_a_stayed(json_t *o, const char *sig, const struct kv_view *r, char *text,
                                    size_t len)
{
    if (!json_object_get(o, "diagnosis") && strcmp(sig, "disk_rehydrate_detected") == 0 &&
        r->have_on_disk && r->on_disk <= 0 && r->have_on_host && r->on_host > 0) {
        /* read back, but from host memory only: A had not left the host tier */
        json_put(o, "diagnosis",
                 json_pack("{s:s, s:f, s:f}", "cause", "set_a_still_in_host",
                           "replay_onboard_blocks_host", r->on_host, "replay_onboard_blocks_disk",
                           r->on_disk));
        size_t used = strlen(text);
        snprintf(text + used, len - used,
                 " None came from disk: set A was still in host memory, so pressure_B did not "
                 "push it past the host tier (more --eviction-b-requests, or a smaller host "
                 "cache).");
    } else if (!json_object_get(o, "diagnosis") && strcmp(sig, "no_onboard_signal") == 0) {
        /* reused from device memory: A never left it */
        json_put(
            o, "diagnosis",
            json_pack("{s:s, s:f}", "cause", "set_b_too_small", "replay_reused_tokens", r->reused));
    }
}

json_t *signal_eviction_kvbm(const json_t *warm, const json_t *pressure, const json_t *replay,
                             double replay_cached)
{
    struct kv_view w = view(warm, -1), p = view(pressure, -1), r = view(replay, replay_cached);
    json_t *o = json_object();
    phase_figures(o, "warm", &w, warm);
    phase_figures(o, "pressure", &p, pressure);
    phase_figures(o, "replay", &r, replay);
    double r_on = 0, w_on = 0, p_on = 0;
    bool tiers = onboarded(&r, &r_on);
    (void)onboarded(&w, &w_on); /* warm_A's and pressure_B's: 0 where the engine does not tell */
    (void)onboarded(&p, &p_on);
    json_put(o, "replay_reused_tokens_host", opt(r.have_r_host, r.r_host));
    json_put(o, "replay_reused_tokens_disk", opt(r.have_r_disk, r.r_disk));
    json_put(o, "replay_reused_tokens_external", opt(r.have_r_ext, r.r_ext));
    json_put_bool(o, "tier_breakdown", tiers);
    if (!r.have_reused && !tiers) {
        json_put_str(o, "signal", "kvbm_metrics_unavailable");
        json_put(o, "reuse_gate", json_null());
        json_put_str(o, "interpretation",
                     r.avail ? "The engine's metrics around the replay phase carry neither reused "
                               "tokens nor onboarded blocks, so onboarding cannot be judged."
                             : "KV metrics were not available around the replay phase, so "
                               "onboarding cannot be judged; check --kvbm-metrics-url and "
                               "--engine.");
        return o;
    }
    json_put_str(o, "reuse_gate",
                 !r.have_reused ? "unknown"
                 : r.reused > 0 ? "reuse_present"
                                : "reuse_absent");
    char text[560];
    const char *sig = eviction_verdict(o, &r, tiers, r_on, w_on, p_on, text, sizeof text);
    diagnose_never_reached_disk(o, sig, warm, replay, text, sizeof text);
    diagnose_where_a_stayed(o, sig, &r, text, sizeof text);
    json_put_str(o, "signal", sig);
    if (!json_object_get(o, "disk_onboard_in_replay"))
        json_put(o, "disk_onboard_in_replay",
                 r.have_on_disk || r.have_r_disk ? json_boolean(false) : json_null());
    json_put_str(o, "interpretation", text);
    return o;
}

void signal_eviction_no_disk_tier(json_t *sig, const char *why)
{
    const char *name = json_string_value(json_object_get(sig, "signal"));
    if (!name || !why || strcmp(name, "kvbm_metrics_unavailable") == 0)
        return;
    const char *before = json_string_value(json_object_get(sig, "interpretation"));
    bool back = strcmp(name, "disk_rehydrate_detected") == 0 ||
                strcmp(name, "onboard_detected_tier_unknown") == 0;
    char text[700];
    if (back)
        snprintf(text, sizeof text,
                 "%s There is no disk tier here (%s): what came back came from host memory.",
                 before ? before : "", why);
    else
        snprintf(text, sizeof text,
                 "There is no disk tier here (%s), so nothing could be read back from disk: set A "
                 "could stay only in device or host memory, and pressure_B evicted it from them, "
                 "so replay_A recomputed it. That is what a baseline without disk shows; compare "
                 "it with a cpu_disk run.",
                 why);
    json_object_del(sig, "diagnosis");
    json_put(sig, "diagnosis", json_pack("{s:s, s:s}", "cause", "no_disk_tier", "evidence", why));
    json_put(sig, "disk_onboard_in_replay", json_false());
    json_put_str(sig, "interpretation", text);
}

void signal_eviction_identity(json_t *sig, long replay_hashes, long in_warm)
{
    const char *name = json_string_value(json_object_get(sig, "signal"));
    if (!name || strcmp(name, "no_onboard_no_reuse_signal") != 0 ||
        json_object_get(sig, "diagnosis") || replay_hashes <= 0 || in_warm < 0)
        return;
    char text[560];
    if (in_warm < replay_hashes) {
        snprintf(text, sizeof text,
                 "Replay matched no tokens, and its requests were not those of warm_A: %ld of "
                 "the %ld distinct replay payloads were never sent in warm_A, so there was "
                 "nothing to reuse. Keep the prompts byte-identical across the phases "
                 "(--prompt-salt, the same template and generation parameters).",
                 replay_hashes - in_warm, replay_hashes);
        json_put(sig, "diagnosis",
                 json_pack("{s:s, s:I, s:I}", "cause", "prompts_not_identical", "replay_payloads",
                           (json_int_t)replay_hashes, "replay_payloads_sent_in_warm",
                           (json_int_t)in_warm));
    } else {
        snprintf(text, sizeof text,
                 "Replay matched no tokens although all %ld of its payloads were byte-identical "
                 "to warm_A's: the engine reused nothing it had seen. Its prefix caching (block "
                 "reuse) is off, or its cache was cleared or restarted between the phases.",
                 replay_hashes);
        json_put(sig, "diagnosis",
                 json_pack("{s:s, s:I, s:I}", "cause", "engine_reused_nothing", "replay_payloads",
                           (json_int_t)replay_hashes, "replay_payloads_sent_in_warm",
                           (json_int_t)in_warm));
    }
    json_put_str(sig, "interpretation", text);
}

json_t *signal_reuse_kvbm(const json_t *const *deltas, const long long *cached,
                          const double *ttft_ms, size_t n)
{
    json_t *o = json_object();
    bool direct = false, reuse = false;
    double matched_total = 0;
    const char *source = NULL;
    for (size_t i = 0; i < n; i++) {
        const json_t *d = deltas[i];
        /* reuse_<n>_… as the reference harness names them; cached tokens and TTFT are kvbench's */
        double m = 0, h2d = 0, d2d = 0;
        bool hm = gen(d, KF_REUSED_TOKENS, &m);
        char key[64];
        snprintf(key, sizeof key, "reuse_%zu_matched_tokens", i + 1);
        json_put(o, key, opt(hm, m));
        snprintf(key, sizeof key, "reuse_%zu_onboard_blocks_h2d", i + 1);
        json_put(o, key, opt(gen(d, KF_ONBOARD_HOST, &h2d), h2d));
        snprintf(key, sizeof key, "reuse_%zu_onboard_blocks_d2d", i + 1);
        json_put(o, key, opt(gen(d, KF_ONBOARD_DISK, &d2d), d2d));
        snprintf(key, sizeof key, "reuse_%zu_cached_tokens", i + 1);
        json_put(o, key, cached[i] >= 0 ? json_integer(cached[i]) : json_null());
        snprintf(key, sizeof key, "reuse_%zu_ttft_ms", i + 1);
        json_put(o, key, ttft_ms && !isnan(ttft_ms[i]) ? json_real(ttft_ms[i]) : json_null());
        if (i == 0)
            continue;
        if (hm) {
            direct = true;
            matched_total += m;
            if (m > 0) {
                reuse = true;
                source = source ? source : "engine_counters";
            }
        }
        if (cached[i] >= 0) {
            direct = true;
            if (cached[i] > 0) {
                reuse = true;
                if (!hm)
                    matched_total += (double)cached[i];
                source = source ? source : "per_request_cached_tokens";
            }
        }
    }
    /* Indirect evidence for servers that expose nothing: repeat TTFT against the first. */
    double first = n && ttft_ms ? ttft_ms[0] : NAN, rep_sum = 0;
    size_t rep_n = 0;
    for (size_t i = 1; ttft_ms && i < n; i++)
        if (!isnan(ttft_ms[i])) {
            rep_sum += ttft_ms[i];
            rep_n++;
        }
    double ratio = !isnan(first) && first > 0 && rep_n ? rep_sum / (double)rep_n / first : NAN;
    json_put(o, "ttft_evidence",
             json_pack("{s:o, s:o, s:o, s:s}", "first_ttft_ms",
                       isnan(first) ? json_null() : json_real(first), "repeat_ttft_ms_mean",
                       rep_n ? json_real(rep_sum / (double)rep_n) : json_null(), "ratio",
                       isnan(ratio) ? json_null() : json_real(ratio), "evidence", "indirect"));
    const char *sig;
    char text[480];
    if (reuse) {
        sig = "prefix_reuse_detected";
        snprintf(text, sizeof text,
                 "Repeats of the same prompt reused %.0f tokens from the KV cache (%s): prefix "
                 "reuse works, so offloaded blocks can be brought back.",
                 matched_total, source);
    } else if (direct) {
        sig = "no_prefix_reuse_signal";
        snprintf(text, sizeof text,
                 "Repeats of the same prompt reused no tokens: KV reuse is gated or disabled, so "
                 "disk onboarding cannot be observed. Check reuse settings and identical inputs.");
    } else {
        sig = "kvbm_metrics_unavailable";
        if (!isnan(ratio))
            snprintf(text, sizeof text,
                     "Neither KV metrics nor per-response cached tokens were available, so reuse "
                     "cannot be confirmed. Indirect evidence only: repeat TTFT was %.2f x the "
                     "first (%.1f vs %.1f ms)%s.",
                     ratio, rep_sum / (double)rep_n, first,
                     ratio < 0.5 ? ", consistent with prefix reuse" : ", no sign of reuse");
        else
            snprintf(text, sizeof text,
                     "Neither KV metrics nor per-response cached tokens were available for the "
                     "repeats.");
    }
    json_put_str(o, "signal", sig);
    json_put(o, "evidence_source", source ? json_string(source) : json_null());
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
    return json_pack(
        "{s:I, s:o, s:o, s:o, s:o, s:b, s:b, s:b, s:b, s:s, s:s}", "request_count", (json_int_t)n,
        "prompt_sha256", list(prompt_sha, n), "generation_params_sha256", list(params_sha, n),
        "request_identity_sha256", list(identity_sha, n), "request_payload_sha256",
        list(payload_sha, n), "identical_request_identity", same_identity, "identical_prompt_bytes",
        same_prompt, "identical_generation_params", same_params, "identical_request_payload",
        same_payload, "verdict", ok ? "identical_inputs_confirmed" : "identity_mismatch_detected",
        "interpretation",
        ok ? "Prompt bytes, generation parameters and payloads were identical across the "
             "reuse_verify requests."
           : "The reuse_verify requests differed in prompt bytes, generation parameters or "
             "payload: a reuse verdict on them does not test prefix reuse.");
}

const struct validity_rule VALIDITY_RULES[] = {
    {"prompt_preflight_failed",
     "before anything was sent: a prompt would not fit the input ceiling "
     "(--engine-max-input-tokens "
     "- --max-tokens - margin), the server's own context limit, or --pressure auto's device tier"},
    {"server_unreachable",
     "the server was not there: nothing answered at the start (nothing sent), requests were "
     "refused or cut off in a row during a phase (the server went away, even if it came back), "
     "or nothing answered after the last phase"},
    {"engine_prompt_limit_exceeded",
     "a response error named max_num_tokens: the engine refused a prompt over its limit "
     "(remaining phases skipped)"},
    {"model_dropped",
     "a phase saw 404 or 500 answers and /v1/models then listed no model (remaining phases "
     "skipped)"},
    {"error_rate_exceeded",
     "a measured phase's share of failed requests was above --max-error-rate"},
    {"runtime_exception",
     "the run could not go on: the model never resolved while the server answered, or a phase "
     "could not start"},
    {"interrupted", "SIGINT or SIGTERM stopped the run"},
    {"shard_missing",
     "--shard: another shard of the run did not reach a barrier between phases within "
     "--shard-wait-s, or reached it with other flags (remaining phases skipped)"},
    {"kvbm_metrics_unavailable",
     "no KV metrics snapshot succeeded and no response carried reuse of its own (cached tokens, "
     "timings), with a kv mode other than off and without --allow-missing-kvbm-metrics"},
    {"no_successful_requests", "no request of the measured phases succeeded, or none was sent"},
    {"server_truncated_prompts",
     "the server reported fewer prompt tokens than were sent: it truncated prompts"},
    {"artifact_write_failed",
     "an artifact could not be written whole: out of memory or a disk error; the run's files are "
     "incomplete"},
    {"shard_incomplete",
     "kvbench merge: a shard of the run is missing, or did not finish (its directory has no "
     "summary.json: killed or still running)"},
    {"shard_invalid", "kvbench merge: a shard's own run is invalid"},
    {"shard_skew",
     "--shard: another shard's barrier time lies further ahead of this host's clock than the "
     "wait allows (its clock is ahead); kvbench merge: the shards started a phase, or their "
     "clocks against the sync directory's, further apart than --max-skew-s"},
    {NULL, NULL},
};

const struct validity_rule *validity_rule(const char *reason)
{
    for (size_t i = 0; reason && VALIDITY_RULES[i].reason; i++)
        if (strcmp(VALIDITY_RULES[i].reason, reason) == 0)
            return &VALIDITY_RULES[i];
    return NULL;
}

void validity_init(struct validity *v)
{
    v->reason = NULL;
    v->details = json_array();
}

void validity_add(struct validity *v, const char *reason, json_t *detail)
{
    if (!validity_rule(reason))
        log_error("internal: invalidity reason '%s' is not in VALIDITY_RULES", reason);
    if (!v->reason)
        v->reason = reason;
    json_t *d = json_is_object(detail)
                    ? detail
                    : json_pack("{s:o}", "detail", detail ? detail : json_null());
    json_object_set_new(d, "reason", json_string(reason));
    json_array_append_new(v->details, d);
}

json_t *validity_strings(const struct validity *v)
{
    json_t *out = json_array();
    size_t i;
    const json_t *d;
    json_array_foreach(v->details, i, d)
    {
        const json_t *errs = json_object_get(d, "errors");
        if (json_array_size(errs)) {
            size_t k;
            const json_t *e;
            json_array_foreach(errs, k, e)
            {
                if (json_is_string(e))
                    json_array_append(out, (json_t *)e);
            }
            continue;
        }
        const char *m = json_get_str(d, "message", NULL);
        const char *r = json_get_str(d, "reason", "invalid");
        char text[600];
        if (m)
            snprintf(text, sizeof text, "%s: %s", r, m);
        else
            snprintf(text, sizeof text, "%s", r);
        json_array_append_new(out, json_string(text));
    }
    return out;
}

void validity_free(struct validity *v)
{
    json_decref(v->details);
    v->details = NULL;
}
