/* CPU matrix products: the 4-bit gemm_w4 (a streaming kernel for small M that reads the packed
 * weights once, a dequantize-a-tile kernel for large M) and the unquantized gemm. Inner loops run
 * over contiguous columns so the compiler vectorises them; target_clones adds an AVX2/FMA build. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"
#include "quant/q4.h"
#include "util/half.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CPU_MULTIVERSION __attribute__((target_clones("arch=haswell", "default")))
#else
#define CPU_MULTIVERSION
#endif

#define COLS 64          /* output columns per task */
#define MTILE 32         /* rows of X per tile in the large-M kernel */
#define SMALL_M 8        /* up to this many rows: streaming kernel */

int cpu_w4_create(void *dev, const struct awq_w4_host *s, void **out)
{
    struct cpu_dev *d = dev;
    int K = s->K, N = s->N, G = s->group_size, ng = K / G, nw = N / 8;
    struct cpu_w4 *w = calloc(1, sizeof *w);
    if (w) {
        w->q = malloc((size_t)K * nw * sizeof *w->q);
        w->scale = malloc((size_t)ng * N * sizeof(float));
        w->scale_zero = malloc((size_t)ng * N * sizeof(float));
    }
    if (!w || !w->q || !w->scale || !w->scale_zero) {
        cpu_w4_free(dev, w);
        return awq_err_set(d->err, AWQ_ERR_DEVICE_MEMORY, "CPU backend: no memory for a %dx%d weight",
                           K, N);
    }
    w->K = K;
    w->N = N;
    w->G = G;
    /* Reorder nibbles from the AutoAWQ interleave to natural column order. */
    for (size_t i = 0; i < (size_t)K * nw; i++) {
        uint32_t src = (uint32_t)s->qweight[i], dst = 0;
        for (int slot = 0; slot < 8; slot++)
            dst |= ((src >> (4 * slot)) & 15u) << (4 * AWQ_PACK_ORDER[slot]);
        w->q[i] = dst;
    }
    for (int g = 0; g < ng; g++)
        for (int j = 0; j < nw; j++) {
            uint32_t z = (uint32_t)s->qzeros[(size_t)g * nw + j];
            for (int slot = 0; slot < 8; slot++) {
                int n = 8 * j + AWQ_PACK_ORDER[slot];
                float sc = awq_f16_to_f32(s->scales[(size_t)g * N + n]);
                w->scale[(size_t)g * N + n] = sc;
                w->scale_zero[(size_t)g * N + n] = sc * (float)((z >> (4 * slot)) & 15u);
            }
        }
    *out = w;
    return 0;
}

void cpu_w4_free(void *dev, void *vw)
{
    struct cpu_w4 *w = vw;
    if (!w)
        return;
    free(w->q);
    free(w->scale);
    free(w->scale_zero);
    free(w);
}

struct w4_job {
    const struct cpu_w4 *w;
    const float *x;          /* [M, K] fp32, act_scale applied */
    const float *bias;
    void *y;
    awq_dtype y_type;
    int M;
};

static void store_row(const struct w4_job *j, int m, int n0, int nc, const float *acc)
{
    float tmp[COLS];
    for (int c = 0; c < nc; c++)
        tmp[c] = acc[c] + (j->bias ? j->bias[n0 + c] : 0.0f);
    size_t off = (size_t)m * j->w->N + n0;
    if (j->y_type == AWQ_DTYPE_F16)
        awq_f32_to_f16_n(tmp, (uint16_t *)j->y + off, (size_t)nc);
    else
        memcpy((float *)j->y + off, tmp, (size_t)nc * sizeof(float));
}

/* acc[c] += xk * code(c) for the 8*nwords columns of one packed row segment. */
CPU_MULTIVERSION
static void fma_codes(float *acc, const uint32_t *q, int nwords, float xk)
{
    for (int j = 0; j < nwords; j++) {
        uint32_t v = q[j];
        for (int i = 0; i < 8; i++)
            acc[8 * j + i] += xk * (float)((v >> (4 * i)) & 15u);
    }
}

/* Small M: for each group, accumulate x·q for up to SMALL_M rows, then apply scale and zero:
 * y += scale * Σ x q - scale_zero * Σ x. The packed weights are read once per task. */
static void w4_small_task(void *arg, size_t task)
{
    const struct w4_job *j = arg;
    const struct cpu_w4 *w = j->w;
    int n0 = (int)task * COLS, nc = w->N - n0 < COLS ? w->N - n0 : COLS, nw = nc / 8;
    int ng = w->K / w->G, stride = w->N / 8;
    float out[SMALL_M][COLS], part[SMALL_M][COLS];
    memset(out, 0, sizeof out);
    for (int g = 0; g < ng; g++) {
        float xsum[SMALL_M] = { 0 };
        memset(part, 0, sizeof part);
        for (int k = g * w->G; k < (g + 1) * w->G; k++) {
            const uint32_t *q = w->q + (size_t)k * stride + n0 / 8;
            for (int m = 0; m < j->M; m++) {
                float xk = j->x[(size_t)m * w->K + k];
                xsum[m] += xk;
                fma_codes(part[m], q, nw, xk);
            }
        }
        const float *sc = w->scale + (size_t)g * w->N + n0;
        const float *sz = w->scale_zero + (size_t)g * w->N + n0;
        for (int m = 0; m < j->M; m++)
            for (int c = 0; c < nc; c++)
                out[m][c] += sc[c] * part[m][c] - sz[c] * xsum[m];
    }
    for (int m = 0; m < j->M; m++)
        store_row(j, m, n0, nc, out[m]);
}

/* acc[m][0..nc) += Σ_k x[m][k] * wt[k][0..nc) for a tile of rows. */
CPU_MULTIVERSION
static void tile_gemm(float *acc, const float *x, size_t ldx, const float *wt, int rows, int kn, int nc)
{
    for (int m = 0; m < rows; m++) {
        float *a = acc + (size_t)m * COLS;
        const float *xm = x + (size_t)m * ldx;
        for (int k = 0; k < kn; k++) {
            float xk = xm[k];
            const float *wk = wt + (size_t)k * COLS;
            for (int c = 0; c < nc; c++)
                a[c] += xk * wk[c];
        }
    }
}

/* Large M: dequantize one group of the column block into fp32, then a dense tile product. */
static void w4_large_task(void *arg, size_t task)
{
    const struct w4_job *j = arg;
    const struct cpu_w4 *w = j->w;
    int n_mt = (j->M + MTILE - 1) / MTILE;
    int n0 = (int)(task / (size_t)n_mt) * COLS, m0 = (int)(task % (size_t)n_mt) * MTILE;
    int nc = w->N - n0 < COLS ? w->N - n0 : COLS, rows = j->M - m0 < MTILE ? j->M - m0 : MTILE;
    int stride = w->N / 8, ng = w->K / w->G;
    float *wt = malloc((size_t)w->G * COLS * sizeof(float));
    float acc[MTILE * COLS];
    if (!wt)
        return;  /* cannot happen in practice (a few KiB); the output stays as it was */
    memset(acc, 0, sizeof acc);
    for (int g = 0; g < ng; g++) {
        const float *sc = w->scale + (size_t)g * w->N + n0;
        const float *sz = w->scale_zero + (size_t)g * w->N + n0;
        for (int kk = 0; kk < w->G; kk++) {
            const uint32_t *q = w->q + (size_t)(g * w->G + kk) * stride + n0 / 8;
            float *row = wt + (size_t)kk * COLS;
            for (int c = 0; c < nc; c++)
                row[c] = (float)((q[c / 8] >> (4 * (c % 8))) & 15u) * sc[c] - sz[c];
        }
        tile_gemm(acc, j->x + (size_t)m0 * w->K + (size_t)g * w->G, (size_t)w->K, wt, rows, w->G, nc);
    }
    for (int m = 0; m < rows; m++)
        store_row(j, m0 + m, n0, nc, acc + (size_t)m * COLS);
    free(wt);
}

/* X as fp32 with the activation scale applied; *owned tells whether the caller must free it. */
static float *x_as_f32(struct cpu_dev *d, awq_dtype t, const void *x, const float *act_scale,
                       size_t M, size_t K, int *owned)
{
    *owned = 0;
    if (t == AWQ_DTYPE_F32 && !act_scale)
        return (float *)x;
    float *f = malloc(M * K * sizeof(float));
    if (!f)
        return NULL;
    *owned = 1;
    cpu_to_f32(t, x, f, M * K);
    if (act_scale)
        for (size_t m = 0; m < M; m++)
            for (size_t k = 0; k < K; k++)
                f[m * K + k] *= act_scale[k];
    return f;
}

int cpu_gemm_w4(void *dev, const struct awq_gemm_w4_args *a)
{
    struct cpu_dev *d = dev;
    const struct cpu_w4 *w = a->w->impl;
    int owned;
    float *x = x_as_f32(d, a->x_type, cpu_ptr(a->x), cpu_ptr(a->act_scale), (size_t)a->M,
                        (size_t)w->K, &owned);
    if (!x)
        return awq_err_set(d->err, AWQ_ERR_OUT_OF_MEMORY, "gemm_w4: no memory to convert X");
    struct w4_job j = { w, x, cpu_ptr(a->bias), cpu_ptr(a->y), a->y_type, a->M };
    size_t col_blocks = (size_t)(w->N + COLS - 1) / COLS;
    if (a->M <= SMALL_M) {
        cpu_pool_run(d->pool, col_blocks, w4_small_task, &j);
    } else {
        size_t m_tiles = (size_t)(a->M + MTILE - 1) / MTILE;
        cpu_pool_run(d->pool, col_blocks * m_tiles, w4_large_task, &j);
    }
    if (owned)
        free(x);
    return 0;
}

/* ---- unquantized gemm: Y = X · Wᵀ, W [N,K] --------------------------------------------------- */

struct gemm_job {
    const float *x, *w, *bias;
    void *y;
    awq_dtype y_type;
    int M, N, K;
};

CPU_MULTIVERSION
static float dot(const float *a, const float *b, int n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
        s4 += a[i + 4] * b[i + 4];
        s5 += a[i + 5] * b[i + 5];
        s6 += a[i + 6] * b[i + 6];
        s7 += a[i + 7] * b[i + 7];
    }
    for (; i < n; i++)
        s0 += a[i] * b[i];
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
}

#define GEMM_NB 16   /* output columns (rows of W) per task */

static void gemm_task(void *arg, size_t task)
{
    const struct gemm_job *j = arg;
    int n0 = (int)task * GEMM_NB, nb = j->N - n0 < GEMM_NB ? j->N - n0 : GEMM_NB;
    float row[GEMM_NB];
    for (int m = 0; m < j->M; m++) {
        const float *xm = j->x + (size_t)m * j->K;
        for (int c = 0; c < nb; c++)
            row[c] = dot(xm, j->w + (size_t)(n0 + c) * j->K, j->K) + (j->bias ? j->bias[n0 + c] : 0.0f);
        size_t off = (size_t)m * j->N + n0;
        if (j->y_type == AWQ_DTYPE_F16)
            awq_f32_to_f16_n(row, (uint16_t *)j->y + off, (size_t)nb);
        else
            memcpy((float *)j->y + off, row, (size_t)nb * sizeof(float));
    }
}

int cpu_gemm(void *dev, const struct awq_gemm_args *a)
{
    struct cpu_dev *d = dev;
    int ox, ow;
    float *x = x_as_f32(d, a->x_type, cpu_ptr(a->x), NULL, (size_t)a->M, (size_t)a->K, &ox);
    float *w = x ? x_as_f32(d, a->w_type, cpu_ptr(a->w), NULL, (size_t)a->N, (size_t)a->K, &ow) : NULL;
    if (!x || !w) {
        if (x && ox)
            free(x);
        return awq_err_set(d->err, AWQ_ERR_OUT_OF_MEMORY, "gemm: no memory to convert operands");
    }
    struct gemm_job j = { x, w, cpu_ptr(a->bias), cpu_ptr(a->y), a->y_type, a->M, a->N, a->K };
    cpu_pool_run(d->pool, (size_t)(a->N + GEMM_NB - 1) / GEMM_NB, gemm_task, &j);
    if (ox)
        free(x);
    if (ow)
        free(w);
    return 0;
}
