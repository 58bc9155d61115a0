/*
 * scen_standard.c - `--scenario standard` (SPEC §3, docs/WORKLOADS.md): throughput and latency
 * at a load. A warmup of another seed (not in the overall figures), then `main`, which answers
 * the scenario's question in `kvbench compare`. It has no offload verdict of its own: its
 * report.md section points at the KV table that every run has.
 */
#include "scenario/scenario.h"

#include <string.h>

/* warmup (another seed, not in the overall figures), then main. */
static int plan_standard(struct planner *p, char *err)
{
    const struct scen_config *cfg = p->cfg;
    size_t conc = (size_t)cfg->concurrency;
    if (plan_warmup(p, cfg->prompt_set, err) < 0)
        return -1;
    struct prompt *m =
        p->make_set(p->ctx, "main", cfg->prompt_set, p->seed, (size_t)cfg->requests, err);
    if (!m || p->add_phase(p->ctx, "main", conc, m, (size_t)cfg->requests, true, cfg->prompt_set,
                           err) < 0)
        return -1;
    return 0;
}

static void report_standard(struct buf *b, const json_t *s, const json_t *src, const json_t *config)
{
    (void)s;
    (void)src;
    (void)config;
    buf_append_str(b, "The standard scenario has no offload verdict; see the KV table above "
                      "for offload and reuse during the run.\n\n");
}

static bool answers_standard(const char *phase)
{
    return strcmp(phase, "main") == 0;
}

const struct scenario SCEN_STANDARD = {
    .name = "standard",
    .what = "throughput and latency at a load: warmup, then main",
    .plan = plan_standard,
    .report = report_standard,
    .duration = true,
    .answers = answers_standard,
    .answer_phases = "main",
};
