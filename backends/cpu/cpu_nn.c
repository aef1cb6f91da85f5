/* CPU ops of the Llama block: RMSNorm, RoPE, attention, SiLU-gate, add, embedding, cross-entropy. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"
#include "util/half.h"

/* ---- rmsnorm ------------------------------------------------------------------------------- */

struct rows_job {
    const void *a;
    size_t rows_per_task, n_rows;
};

static void rmsnorm_task(void *arg, size_t task)
{
    const struct rows_job *j = arg;
    const struct awq_rmsnorm_args *a = j->a;
    const float *x = cpu_ptr(a->x), *w = cpu_ptr(a->w);
    float *y = cpu_ptr(a->y);
    size_t lo = task * j->rows_per_task, hi = lo + j->rows_per_task < j->n_rows ? lo + j->rows_per_task : j->n_rows;
    for (size_t t = lo; t < hi; t++) {
        const float *xr = x + t * (size_t)a->C;
        float *yr = y + t * (size_t)a->C;
        double ss = 0;
        for (int c = 0; c < a->C; c++)
            ss += (double)xr[c] * xr[c];
        float r = (float)(1.0 / sqrt(ss / a->C + (double)a->eps));
        for (int c = 0; c < a->C; c++)
            yr[c] = xr[c] * r * w[c];
    }
}

static void run_rows(struct cpu_dev *d, const void *args, size_t rows, cpu_task_fn fn)
{
    struct rows_job j = { args, 0, rows };
    size_t tasks = cpu_chunks(d, rows, 1, &j.rows_per_task);
    cpu_pool_run(d->pool, tasks, fn, &j);
}

int cpu_rmsnorm(void *dev, const struct awq_rmsnorm_args *a)
{
    run_rows(dev, a, (size_t)a->T, rmsnorm_task);
    return 0;
}

/* ---- rope ---------------------------------------------------------------------------------- */

static void rope_task(void *arg, size_t task)
{
    const struct rows_job *j = arg;
    const struct awq_rope_args *a = j->a;
    float *x = cpu_ptr(a->x);
    const float *inv_freq = cpu_ptr(a->inv_freq);
    int half = a->head_dim / 2;
    size_t lo = task * j->rows_per_task, hi = lo + j->rows_per_task < j->n_rows ? lo + j->rows_per_task : j->n_rows;
    for (size_t t = lo; t < hi; t++) {
        float pos = (float)(a->pos0 + (int)(t % (size_t)a->seq_len));
        for (int h = 0; h < a->n_heads; h++) {
            float *v = x + (t * (size_t)a->n_heads + (size_t)h) * (size_t)a->head_dim;
            for (int i = 0; i < half; i++) {
                float ang = pos * inv_freq[i];
                float c = cosf(ang), s = sinf(ang);
                float x0 = v[i], x1 = v[i + half];
                v[i] = x0 * c - x1 * s;
                v[i + half] = x1 * c + x0 * s;
            }
        }
    }
}

int cpu_rope(void *dev, const struct awq_rope_args *a)
{
    run_rows(dev, a, (size_t)a->T, rope_task);
    return 0;
}

/* ---- attention: one task per (sequence, head), online softmax over keys -------------------- */

static void attention_task(void *arg, size_t task)
{
    const struct awq_attention_args *a = arg;
    int seq = (int)(task / (size_t)a->n_heads), h = (int)(task % (size_t)a->n_heads);
    int hd = a->head_dim, kvh = h / (a->n_heads / a->n_kv_heads);
    size_t q_row = (size_t)a->n_heads * hd, kv_row = (size_t)a->n_kv_heads * hd;
    const float *q = (const float *)cpu_ptr(a->q) + (size_t)seq * a->q_len * q_row + (size_t)h * hd;
    const float *k = (const float *)cpu_ptr(a->k) + (size_t)seq * a->kv_len * kv_row + (size_t)kvh * hd;
    const float *v = (const float *)cpu_ptr(a->v) + (size_t)seq * a->kv_len * kv_row + (size_t)kvh * hd;
    float *o = (float *)cpu_ptr(a->out) + (size_t)seq * a->q_len * q_row + (size_t)h * hd;
    float *acc = malloc((size_t)hd * sizeof(float));
    if (!acc)
        return;
    for (int i = 0; i < a->q_len; i++) {
        const float *qi = q + (size_t)i * q_row;
        int last = a->kv_len - a->q_len + i;
        float mx = -INFINITY, sum = 0;
        memset(acc, 0, (size_t)hd * sizeof(float));
        for (int jk = 0; jk <= last; jk++) {
            const float *kj = k + (size_t)jk * kv_row, *vj = v + (size_t)jk * kv_row;
            float s = 0;
            for (int d = 0; d < hd; d++)
                s += qi[d] * kj[d];
            s *= a->scale;
            if (s > mx) {
                float r = expf(mx - s);
                sum *= r;
                for (int d = 0; d < hd; d++)
                    acc[d] *= r;
                mx = s;
            }
            float p = expf(s - mx);
            sum += p;
            for (int d = 0; d < hd; d++)
                acc[d] += p * vj[d];
        }
        float *oi = o + (size_t)i * q_row;
        for (int d = 0; d < hd; d++)
            oi[d] = acc[d] / sum;
    }
    free(acc);
}

int cpu_attention(void *dev, const struct awq_attention_args *a)
{
    struct cpu_dev *d = dev;
    cpu_pool_run(d->pool, (size_t)a->n_seq * (size_t)a->n_heads, attention_task, (void *)a);
    return 0;
}

/* ---- elementwise ------------------------------------------------------------------------------ */

struct elem_job {
    const float *a, *b;
    float *out;
    size_t n, chunk;
    int kind;   /* 0 = silu_mul, 1 = add */
};

static void elem_task(void *arg, size_t task)
{
    const struct elem_job *j = arg;
    size_t lo = task * j->chunk, hi = lo + j->chunk < j->n ? lo + j->chunk : j->n;
    if (j->kind == 0) {
        for (size_t i = lo; i < hi; i++) {
            float g = j->a[i];
            j->out[i] = g / (1.0f + expf(-g)) * j->b[i];
        }
    } else {
        for (size_t i = lo; i < hi; i++)
            j->out[i] = j->a[i] + j->b[i];
    }
}

static void run_elem(struct cpu_dev *d, const float *a, const float *b, float *out, size_t n, int kind)
{
    struct elem_job j = { a, b, out, n, 0, kind };
    size_t tasks = cpu_chunks(d, n, 16384, &j.chunk);
    cpu_pool_run(d->pool, tasks, elem_task, &j);
}

int cpu_silu_mul(void *dev, const struct awq_silu_mul_args *a)
{
    run_elem(dev, cpu_ptr(a->gate), cpu_ptr(a->up), cpu_ptr(a->out), a->n, 0);
    return 0;
}

int cpu_add(void *dev, const struct awq_add_args *a)
{
    run_elem(dev, cpu_ptr(a->a), cpu_ptr(a->b), cpu_ptr(a->out), a->n, 1);
    return 0;
}

/* ---- embedding gather --------------------------------------------------------------------------- */

int cpu_embed(void *dev, const struct awq_embed_args *a)
{
    const int32_t *ids = cpu_ptr(a->ids);
    float *out = cpu_ptr(a->out);
    size_t es = awq_dtype_size(a->table_type);
    for (int t = 0; t < a->T; t++) {
        float *row = out + (size_t)t * a->C;
        int id = ids[t];
        if (id < 0 || id >= a->vocab) {
            memset(row, 0, (size_t)a->C * sizeof(float));
            continue;
        }
        const char *src = (const char *)cpu_ptr(a->table) + (size_t)id * a->C * es;
        cpu_to_f32(a->table_type, src, row, (size_t)a->C);
    }
    return 0;
}

/* ---- cross-entropy ---------------------------------------------------------------------------- */

static void ce_task(void *arg, size_t task)
{
    const struct rows_job *j = arg;
    const struct awq_cross_entropy_args *a = j->a;
    const float *logits = cpu_ptr(a->logits);
    const int32_t *tg = cpu_ptr(a->targets);
    float *nll = cpu_ptr(a->nll);
    size_t lo = task * j->rows_per_task, hi = lo + j->rows_per_task < j->n_rows ? lo + j->rows_per_task : j->n_rows;
    for (size_t t = lo; t < hi; t++) {
        const float *l = logits + t * (size_t)a->V;
        float mx = -INFINITY;
        for (int v = 0; v < a->V; v++)
            mx = l[v] > mx ? l[v] : mx;
        double s = 0;
        for (int v = 0; v < a->V; v++)
            s += exp((double)(l[v] - mx));
        int target = tg[t];
        float lt = target >= 0 && target < a->V ? l[target] : NAN;
        nll[t] = (float)((double)mx + log(s) - (double)lt);
    }
}

int cpu_cross_entropy(void *dev, const struct awq_cross_entropy_args *a)
{
    run_rows(dev, a, (size_t)a->T, ce_task);
    return 0;
}
