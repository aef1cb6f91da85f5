/* CPU ops of the calibration and search: activation statistics, pseudo-quantization, the clip
 * search error table, squared-error reduction and column scaling. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"
#include "cpu_simd.h"
#include "quant/q4.h"

/* ---- act_stats: tasks own disjoint channel ranges, so accumulation needs no locks ------------ */

struct stats_job {
    const struct awq_act_stats_args *a;
    size_t chunk;
};

static void stats_task(void *arg, size_t task)
{
    const struct stats_job *j = arg;
    const struct awq_act_stats_args *a = j->a;
    int c0 = (int)(task * j->chunk), c1 = c0 + (int)j->chunk < a->C ? c0 + (int)j->chunk : a->C;
    int nc = c1 - c0;
    float *sa = cpu_ptr(a->sum_abs), *ma = cpu_ptr(a->max_abs), *sq = cpu_ptr(a->sum_sq);
    double *s_abs = calloc((size_t)nc * 2, sizeof(double));
    float *mx = calloc((size_t)nc + 1, sizeof(float));
    float *row = malloc((size_t)nc * sizeof(float) + 1);
    if (!s_abs || !mx || !row)
        goto out;
    double *s_sq = s_abs + nc;
    size_t es = awq_dtype_size(a->x_type);
    for (int t = 0; t < a->T; t++) {
        const char *src = (const char *)cpu_ptr(a->x) + ((size_t)t * a->C + (size_t)c0) * es;
        cpu_to_f32(a->x_type, src, row, (size_t)nc);
        for (int c = 0; c < nc; c++) {
            float v = fabsf(row[c]);
            s_abs[c] += v;
            s_sq[c] += (double)v * v;
            mx[c] = v > mx[c] ? v : mx[c];
        }
    }
    for (int c = 0; c < nc; c++) {
        if (sa)
            sa[c0 + c] += (float)s_abs[c];
        if (sq)
            sq[c0 + c] += (float)s_sq[c];
        if (ma)
            ma[c0 + c] = mx[c] > ma[c0 + c] ? mx[c] : ma[c0 + c];
    }
out:
    free(s_abs);
    free(mx);
    free(row);
}

int cpu_act_stats(void *dev, const struct awq_act_stats_args *a)
{
    struct cpu_dev *d = dev;
    struct stats_job j = { a, 0 };
    size_t tasks = cpu_chunks(d, (size_t)a->C, 64, &j.chunk);
    cpu_pool_run(d->pool, tasks, stats_task, &j);
    return 0;
}

/* ---- pseudo_quant ----------------------------------------------------------------------------- */

struct pq_job {
    const struct awq_pseudo_quant_args *a;
};

static void pq_task(void *arg, size_t n)
{
    const struct awq_pseudo_quant_args *a = ((const struct pq_job *)arg)->a;
    const float *w = (const float *)cpu_ptr(a->w) + n * (size_t)a->K;
    float *out = (float *)cpu_ptr(a->out) + n * (size_t)a->K;
    awq_q4_pseudo_row(w, cpu_ptr(a->in_scale), a->K, a->G, out);
}

int cpu_pseudo_quant(void *dev, const struct awq_pseudo_quant_args *a)
{
    struct cpu_dev *d = dev;
    struct pq_job j = { a };
    cpu_pool_run(d->pool, (size_t)a->N, pq_task, &j);
    return 0;
}

/* ---- clip_search: one task per output channel ----------------------------------------------- */

/* err[s] += Σ_t (x_t · d_s)² for the n_shrink difference vectors d_s of one group (G % 8 == 0). */
CPU_MULTIVERSION
static void clip_errors(const float *x, size_t ldx, int T, const float *d, int G, int n_shrink, double *err)
{
    int nc = G / 8;
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * ldx;
        for (int s = 0; s < n_shrink; s++) {
            const float *ds = d + (size_t)s * G;
            v8f acc = v8f_splat(0);
            for (int c = 0; c < nc; c++)
                acc += v8f_load(xt + 8 * c) * v8f_load(ds + 8 * c);
            float p = hsum(acc);
            err[s] += (double)p * p;
        }
    }
}

static void clip_task(void *arg, size_t n)
{
    const struct awq_clip_search_args *a = arg;
    int G = a->G, ng = a->K / G;
    const float *w = (const float *)cpu_ptr(a->w) + n * (size_t)a->K;
    const float *x = cpu_ptr(a->x);
    float *err = cpu_ptr(a->err);
    float *d = malloc((size_t)a->n_shrink * G * sizeof(float));
    double *e = malloc((size_t)a->n_shrink * sizeof(double));
    if (!d || !e)
        goto out;
    for (int g = 0; g < ng; g++) {
        const float *wg = w + (size_t)g * G;
        float amax = 0;
        for (int i = 0; i < G; i++)
            amax = fabsf(wg[i]) > amax ? fabsf(wg[i]) : amax;
        for (int s = 0; s < a->n_shrink; s++) {
            float m = amax * a->shrink[s], *ds = d + (size_t)s * G;
            /* clamp, then quantize the clamped group (min/max of the clamped values) */
            float mn = INFINITY, mx = -INFINITY;
            for (int i = 0; i < G; i++) {
                float c = wg[i] < -m ? -m : (wg[i] > m ? m : wg[i]);
                ds[i] = c;
                mn = c < mn ? c : mn;
                mx = c > mx ? c : mx;
            }
            float scale = awq_q4_scale(mn, mx), zero = awq_q4_zero(mn, scale);
            for (int i = 0; i < G; i++)
                ds[i] = (awq_q4_code(ds[i], scale, zero) - zero) * scale - wg[i];
            e[s] = 0;
        }
        clip_errors(x + (size_t)g * G, (size_t)a->K, a->T, d, G, a->n_shrink, e);
        for (int s = 0; s < a->n_shrink; s++)
            err[((size_t)s * a->N + n) * ng + g] = (float)e[s];
    }
out:
    free(d);
    free(e);
}

int cpu_clip_search(void *dev, const struct awq_clip_search_args *a)
{
    struct cpu_dev *d = dev;
    cpu_pool_run(d->pool, (size_t)a->N, clip_task, (void *)a);
    return 0;
}

/* ---- sq_err: fixed chunking, double partial sums added in order ------------------------------- */

struct sq_job {
    const float *a, *b;
    size_t n, chunk;
    double *part;
};

static void sq_task(void *arg, size_t task)
{
    const struct sq_job *j = arg;
    size_t lo = task * j->chunk, hi = lo + j->chunk < j->n ? lo + j->chunk : j->n;
    double s = 0;
    for (size_t i = lo; i < hi; i++) {
        double d = (double)j->a[i] - (double)j->b[i];
        s += d * d;
    }
    j->part[task] = s;
}

int cpu_sq_err(void *dev, const struct awq_sq_err_args *a)
{
    struct cpu_dev *d = dev;
    struct sq_job j = { cpu_ptr(a->a), cpu_ptr(a->b), a->n, 65536, NULL };
    size_t tasks = (a->n + j.chunk - 1) / j.chunk;   /* independent of the thread count */
    j.part = malloc(tasks * sizeof(double));
    if (!j.part)
        return awq_err_set(d->err, AWQ_ERR_OUT_OF_MEMORY, "sq_err: out of memory");
    cpu_pool_run(d->pool, tasks, sq_task, &j);
    double s = 0;
    for (size_t i = 0; i < tasks; i++)
        s += j.part[i];
    free(j.part);
    *(float *)cpu_ptr(a->out) = (float)s;
    return 0;
}

/* ---- scale_cols --------------------------------------------------------------------------------- */

int cpu_scale_cols(void *dev, const struct awq_scale_cols_args *a)
{
    float *x = cpu_ptr(a->x);
    const float *s = cpu_ptr(a->s);
    for (size_t t = 0; t < (size_t)a->T; t++) {
        float *r = x + t * (size_t)a->C;
        if (a->divide)
            for (int c = 0; c < a->C; c++)
                r[c] /= s[c];
        else
            for (int c = 0; c < a->C; c++)
                r[c] *= s[c];
    }
    return 0;
}
