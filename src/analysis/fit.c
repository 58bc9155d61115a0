/*
 * fit.c - weighted least squares for a straight line, in closed form: with weights w_i, the
 * weighted means x̄, ȳ, Sxx = Σ w (x - x̄)², Sxy = Σ w (x - x̄)(y - ȳ), then b = Sxy / Sxx and
 * a = ȳ - b x̄. The residual variance s² = Σ w r² / (n - 2) scales the covariance: var b =
 * s² / Sxx, var a = s² (1 / W + x̄² / Sxx), cov(a, b) = -x̄ s² / Sxx (W = Σ w). With all weights 1
 * this is ordinary least squares. Sums are centred before they are multiplied, so that x in the
 * tens of thousands and y in milliseconds lose no precision.
 */
#include "analysis/fit.h"
#include "analysis/stats.h"

#include <math.h>

static bool usable(double x, double y, double w)
{
    return isfinite(x) && isfinite(y) && isfinite(w) && w > 0;
}

int fit_line(const double *x, const double *y, const double *w, size_t n, struct linfit *out)
{
    *out = (struct linfit){.a = NAN, .b = NAN, .se_a = NAN, .se_b = NAN, .cov_ab = NAN, .r2 = NAN};
    double sw = 0, sx = 0, sy = 0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        double wi = w ? w[i] : 1;
        if (!usable(x[i], y[i], wi))
            continue;
        sw += wi;
        sx += wi * x[i];
        sy += wi * y[i];
        m++;
    }
    out->n = m;
    if (m < 2)
        return -1;
    double mx = sx / sw, my = sy / sw, sxx = 0, sxy = 0, syy = 0;
    for (size_t i = 0; i < n; i++) {
        double wi = w ? w[i] : 1;
        if (!usable(x[i], y[i], wi))
            continue;
        sxx += wi * (x[i] - mx) * (x[i] - mx);
        sxy += wi * (x[i] - mx) * (y[i] - my);
        syy += wi * (y[i] - my) * (y[i] - my);
    }
    if (!(sxx > 1e-12 * sw * (mx * mx + 1)))
        return -1; /* every x equal: no slope */
    out->ok = true;
    out->b = sxy / sxx;
    out->a = my - out->b * mx;
    double ssr = 0;
    for (size_t i = 0; i < n; i++) {
        double wi = w ? w[i] : 1;
        if (!usable(x[i], y[i], wi))
            continue;
        double r = y[i] - out->a - out->b * x[i];
        ssr += wi * r * r;
    }
    if (syy > 0)
        out->r2 = 1 - ssr / syy;
    if (m > 2) {
        double s2 = ssr / (double)(m - 2);
        out->se_b = sqrt(s2 / sxx);
        out->se_a = sqrt(s2 * (1 / sw + mx * mx / sxx));
        out->cov_ab = -mx * s2 / sxx;
    }
    return 0;
}

int fit_crossing(const struct linfit *w, const struct linfit *c, double *x, double *se)
{
    *x = *se = NAN;
    if (!w->ok || !c->ok)
        return -1;
    double da = w->a - c->a, db = c->b - w->b;
    if (db == 0 || !isfinite(da / db))
        return -1;
    *x = da / db;
    /* x = Δa / Δb: ∂x/∂Δa = 1/Δb, ∂x/∂Δb = -x/Δb; var Δa = va_w + va_c, var Δb = vb_w + vb_c,
     * cov(Δa, Δb) = -cov_w - cov_c (Δb = b_c - b_w) */
    double vda = w->se_a * w->se_a + c->se_a * c->se_a;
    double vdb = w->se_b * w->se_b + c->se_b * c->se_b;
    double cov = -w->cov_ab - c->cov_ab;
    double v = (vda - 2 * *x * cov + *x * *x * vdb) / (db * db);
    *se = v >= 0 ? sqrt(v) : NAN;
    return 0;
}

double fit_at(const struct linfit *f, double x)
{
    return f->a + f->b * x;
}

enum breakeven_kind fit_breakeven(const struct linfit *warm, const struct linfit *cold,
                                  const double *xs, size_t n, struct breakeven *out)
{
    *out = (struct breakeven){.kind = BE_UNKNOWN, .crossing = NAN, .se = NAN, .lo = NAN, .hi = NAN};
    if (!warm->ok || !cold->ok || n == 0)
        return BE_UNKNOWN;
    size_t pays = 0, judged = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(xs[i]))
            continue;
        judged++;
        pays += fit_at(warm, xs[i]) < fit_at(cold, xs[i]);
    }
    if (judged == 0)
        return BE_UNKNOWN;
    if (fit_crossing(warm, cold, &out->crossing, &out->se) == 0 && isfinite(out->se)) {
        size_t df = (warm->n < cold->n ? warm->n : cold->n);
        double t = stats_t975(df >= 2 ? (double)df - 2 : 0);
        out->lo = out->crossing - t * out->se;
        out->hi = out->crossing + t * out->se;
    }
    if (pays == judged)
        out->kind = BE_EVERY;
    else if (pays == 0)
        out->kind = BE_NONE;
    else
        out->kind = warm->b < cold->b ? BE_FROM : BE_BELOW;
    return out->kind;
}

const char *breakeven_kind_name(enum breakeven_kind k)
{
    static const char *const NAMES[] = {"unknown", "every_measured_length",
                                        "none_of_the_measured_lengths", "from_length",
                                        "below_length"};
    return (unsigned)k < sizeof NAMES / sizeof NAMES[0] ? NAMES[k] : "unknown";
}
