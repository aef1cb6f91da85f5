/* CPU matrix products: the 4-bit gemm_w4 and the unquantized gemm.
 *
 * gemm_w4 repacks weights at load time into blocks of 64 output columns (N padded to a multiple of
 * 64), each block contiguous over all K input channels (so a task streams one region): for input
 * channel k, block b holds 8 words, and nibble i of word j is the code of column 64b + 8i + j. Shifting one 8-word vector by 4i then yields the codes of 8 consecutive columns, so
 * decoding is a handful of SIMD operations per 64 codes. Small M streams the packed weights once
 * (decode each k once, FMA into every row); large M dequantizes one group of a block into an fp32
 * tile and runs a dense tile product. GCC vector extensions keep it portable; target_clones adds an
 * AVX2/FMA build on x86-64. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"
#include "cpu_simd.h"
#include "quant/q4.h"
#include "util/half.h"

#define COLS 64          /* output columns per block */
#define MTILE 32         /* rows of X per tile in the large-M kernel */
#define SMALL_M 8        /* up to this many rows: the streaming kernel */

int cpu_w4_create(void *dev, const struct awq_w4_host *s, void **out)
{
    struct cpu_dev *d = dev;
    int K = s->K, N = s->N, G = s->group_size, ng = K / G, nw = N / 8;
    int Np = (N + COLS - 1) / COLS * COLS;
    struct cpu_w4 *w = calloc(1, sizeof *w);
    if (w) {
        w->q = calloc((size_t)K * (Np / 8), sizeof *w->q);
        w->scale = calloc((size_t)ng * Np, sizeof(float));
        w->scale_zero = calloc((size_t)ng * Np, sizeof(float));
    }
    if (!w || !w->q || !w->scale || !w->scale_zero) {
        cpu_w4_free(dev, w);
        return awq_err_set(d->err, AWQ_ERR_DEVICE_MEMORY, "CPU backend: no memory for a %dx%d weight",
                           K, N);
    }
    w->K = K;
    w->N = N;
    w->Np = Np;
    w->G = G;
    for (int k = 0; k < K; k++) {
        for (int j = 0; j < nw; j++) {
            uint32_t src = (uint32_t)s->qweight[(size_t)k * nw + j];
            for (int slot = 0; slot < 8; slot++) {
                int n = 8 * j + AWQ_PACK_ORDER[slot];
                size_t blk = (size_t)(n / COLS);
                int i = n % COLS / 8, lane = n % 8;
                w->q[(blk * (size_t)K + (size_t)k) * 8 + (size_t)lane] |= ((src >> (4 * slot)) & 15u) << (4 * i);
            }
        }
    }
    for (int g = 0; g < ng; g++)
        for (int j = 0; j < nw; j++) {
            uint32_t z = (uint32_t)s->qzeros[(size_t)g * nw + j];
            for (int slot = 0; slot < 8; slot++) {
                int n = 8 * j + AWQ_PACK_ORDER[slot];
                float sc = awq_f16_to_f32(s->scales[(size_t)g * N + n]);
                w->scale[(size_t)g * Np + n] = sc;
                w->scale_zero[(size_t)g * Np + n] = sc * (float)((z >> (4 * slot)) & 15u);
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

static void store_row(const struct w4_job *j, int m, int n0, const float *acc)
{
    int nc = j->w->N - n0 < COLS ? j->w->N - n0 : COLS;
    float tmp[COLS];
    for (int c = 0; c < nc; c++)
        tmp[c] = acc[c] + (j->bias ? j->bias[n0 + c] : 0.0f);
    size_t off = (size_t)m * j->w->N + n0;
    if (j->y_type == AWQ_DTYPE_F16)
        awq_f32_to_f16_n(tmp, (uint16_t *)j->y + off, (size_t)nc);
    else
        memcpy((float *)j->y + off, tmp, (size_t)nc * sizeof(float));
}

/* The 64 codes of one block row as 8 vectors of 8 consecutive columns. */
AI void decode64(const uint32_t *q, v8f codes[8])
{
    v8u v;
    memcpy(&v, q, sizeof v);
    for (int i = 0; i < 8; i++)
        codes[i] = __builtin_convertvector((v >> (uint32_t)(4 * i)) & 15u, v8f);
}

/* Small M: per group, part[m] = Σ_k x[m,k] q[k], xs[m] = Σ_k x[m,k]; then
 * out[m] += scale * part[m] - scale_zero * xs[m]. Each block row is decoded once for all rows.
 * M is a compile-time constant in each instantiation so the accumulators live in registers. */
AI void w4_small(const struct w4_job *j, size_t task, const int M)
{
    const struct cpu_w4 *w = j->w;
    int n0 = (int)task * COLS, ng = w->K / w->G, K = w->K;
    const uint32_t *qb = w->q + task * (size_t)K * 8;
    v8f out[SMALL_M][8];
    for (int m = 0; m < M; m++)
        for (int i = 0; i < 8; i++)
            out[m][i] = v8f_splat(0);
    for (int g = 0; g < ng; g++) {
        v8f part[SMALL_M][8];
        float xs[SMALL_M];
        for (int m = 0; m < M; m++) {
            xs[m] = 0;
            for (int i = 0; i < 8; i++)
                part[m][i] = v8f_splat(0);
        }
        for (int k = g * w->G; k < (g + 1) * w->G; k++) {
            v8f codes[8];
            decode64(qb + (size_t)k * 8, codes);
            for (int m = 0; m < M; m++) {
                float xk = j->x[(size_t)m * K + k];
                v8f xv = v8f_splat(xk);
                xs[m] += xk;
                for (int i = 0; i < 8; i++)
                    part[m][i] += xv * codes[i];
            }
        }
        const float *sc = w->scale + (size_t)g * w->Np + n0;
        const float *sz = w->scale_zero + (size_t)g * w->Np + n0;
        for (int i = 0; i < 8; i++) {
            v8f s = v8f_load(sc + 8 * i), z = v8f_load(sz + 8 * i);
            for (int m = 0; m < M; m++)
                out[m][i] += s * part[m][i] - z * v8f_splat(xs[m]);
        }
    }
    for (int m = 0; m < M; m++) {
        float acc[COLS];
        for (int i = 0; i < 8; i++)
            v8f_store(acc + 8 * i, out[m][i]);
        store_row(j, m, n0, acc);
    }
}

CPU_MULTIVERSION
static void w4_small_task(void *arg, size_t task)
{
    const struct w4_job *j = arg;
    switch (j->M) {
    case 1: w4_small(j, task, 1); break;
    case 2: w4_small(j, task, 2); break;
    case 3: w4_small(j, task, 3); break;
    case 4: w4_small(j, task, 4); break;
    case 5: w4_small(j, task, 5); break;
    case 6: w4_small(j, task, 6); break;
    case 7: w4_small(j, task, 7); break;
    default: w4_small(j, task, SMALL_M); break;
    }
}

/* acc[m][0..64) += Σ_k x[m][k] * wt[k][0..64) for a tile of rows. */
CPU_MULTIVERSION
static void tile_gemm(float *acc, const float *x, size_t ldx, const float *wt, int rows, int kn)
{
    for (int m = 0; m < rows; m++) {
        v8f a[8];
        for (int i = 0; i < 8; i++)
            a[i] = v8f_load(acc + (size_t)m * COLS + 8 * i);
        const float *xm = x + (size_t)m * ldx;
        for (int k = 0; k < kn; k++) {
            v8f xv = v8f_splat(xm[k]);
            const float *wk = wt + (size_t)k * COLS;
            for (int i = 0; i < 8; i++)
                a[i] += xv * v8f_load(wk + 8 * i);
        }
        for (int i = 0; i < 8; i++)
            v8f_store(acc + (size_t)m * COLS + 8 * i, a[i]);
    }
}

/* One group of a block row range dequantized to fp32: wt[kk][c] = q * scale - scale_zero. */
CPU_MULTIVERSION
static void dequant_group(const struct cpu_w4 *w, int g, size_t blk, float *wt)
{
    const float *sc = w->scale + (size_t)g * w->Np + blk * COLS;
    const float *sz = w->scale_zero + (size_t)g * w->Np + blk * COLS;
    const uint32_t *qb = w->q + blk * (size_t)w->K * 8;
    for (int kk = 0; kk < w->G; kk++) {
        v8f codes[8];
        decode64(qb + (size_t)(g * w->G + kk) * 8, codes);
        for (int i = 0; i < 8; i++)
            v8f_store(wt + (size_t)kk * COLS + 8 * i,
                      codes[i] * v8f_load(sc + 8 * i) - v8f_load(sz + 8 * i));
    }
}

static void w4_large_task(void *arg, size_t task)
{
    const struct w4_job *j = arg;
    const struct cpu_w4 *w = j->w;
    size_t n_mt = (size_t)(j->M + MTILE - 1) / MTILE;
    size_t blk = task / n_mt;
    int m0 = (int)(task % n_mt) * MTILE;
    int rows = j->M - m0 < MTILE ? j->M - m0 : MTILE, ng = w->K / w->G;
    float *wt = aligned_alloc(64, (size_t)w->G * COLS * sizeof(float));
    float *acc = aligned_alloc(64, (size_t)MTILE * COLS * sizeof(float));
    if (wt && acc) {
        memset(acc, 0, (size_t)MTILE * COLS * sizeof(float));
        for (int g = 0; g < ng; g++) {
            dequant_group(w, g, blk, wt);
            tile_gemm(acc, j->x + (size_t)m0 * w->K + (size_t)g * w->G, (size_t)w->K, wt, rows, w->G);
        }
        for (int m = 0; m < rows; m++)
            store_row(j, m0 + m, (int)blk * COLS, acc + (size_t)m * COLS);
    }
    free(wt);
    free(acc);
}

/* X as fp32 with the activation scale applied; *owned tells whether the caller must free it. */
static float *x_as_f32(awq_dtype t, const void *x, const float *act_scale, size_t M, size_t K, int *owned)
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
    float *x = x_as_f32(a->x_type, cpu_ptr(a->x), cpu_ptr(a->act_scale), (size_t)a->M, (size_t)w->K, &owned);
    if (!x)
        return awq_err_set(d->err, AWQ_ERR_OUT_OF_MEMORY, "gemm_w4: no memory to convert X");
    struct w4_job j = { w, x, cpu_ptr(a->bias), cpu_ptr(a->y), a->y_type, a->M };
    size_t blocks = (size_t)w->Np / COLS;
    if (a->M <= SMALL_M)
        cpu_pool_run(d->pool, blocks, w4_small_task, &j);
    else
        cpu_pool_run(d->pool, blocks * (size_t)((a->M + MTILE - 1) / MTILE), w4_large_task, &j);
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

/* A tile of R rows of X by C rows of W: R*C dot products over K, vectorised along K, so each
 * loaded vector feeds several FMAs. R and C are compile-time constants in each instantiation. */
AI void dot_tile(const float *x, const float *w, int K, float *out, int ldo, const int R, const int C)
{
    v8f acc[4][4];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            acc[r][c] = v8f_splat(0);
    int k = 0;
    for (; k + 8 <= K; k += 8) {
        v8f xv[4], wv[4];
        for (int r = 0; r < R; r++)
            xv[r] = v8f_load(x + (size_t)r * K + k);
        for (int c = 0; c < C; c++)
            wv[c] = v8f_load(w + (size_t)c * K + k);
        for (int r = 0; r < R; r++)
            for (int c = 0; c < C; c++)
                acc[r][c] += xv[r] * wv[c];
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            float t = hsum(acc[r][c]);
            for (int kk = k; kk < K; kk++)
                t += x[(size_t)r * K + kk] * w[(size_t)c * K + kk];
            out[(size_t)r * ldo + c] = t;
        }
}

#define GEMM_NB 16   /* output columns (rows of W) per task */
#define GEMM_MB 64   /* rows of X per task */

CPU_MULTIVERSION
static void gemm_block(const struct gemm_job *j, int m0, int mb, int n0, int nb, float *out)
{
    for (int m = 0; m < mb; m += 4) {
        int rm = mb - m < 4 ? mb - m : 4;
        for (int n = 0; n < nb; n += 4) {
            int rn = nb - n < 4 ? nb - n : 4;
            const float *x = j->x + (size_t)(m0 + m) * j->K, *w = j->w + (size_t)(n0 + n) * j->K;
            float *o = out + (size_t)m * GEMM_NB + n;
            if (rm == 4 && rn == 4)
                dot_tile(x, w, j->K, o, GEMM_NB, 4, 4);
            else
                for (int r = 0; r < rm; r++)
                    for (int c = 0; c < rn; c++)
                        dot_tile(x + (size_t)r * j->K, w + (size_t)c * j->K, j->K, o + (size_t)r * GEMM_NB + c,
                                 GEMM_NB, 1, 1);
        }
    }
}

static void gemm_task(void *arg, size_t task)
{
    const struct gemm_job *j = arg;
    size_t n_nb = (size_t)(j->N + GEMM_NB - 1) / GEMM_NB;
    int n0 = (int)(task % n_nb) * GEMM_NB, m0 = (int)(task / n_nb) * GEMM_MB;
    int nb = j->N - n0 < GEMM_NB ? j->N - n0 : GEMM_NB, mb = j->M - m0 < GEMM_MB ? j->M - m0 : GEMM_MB;
    float out[GEMM_MB * GEMM_NB];
    gemm_block(j, m0, mb, n0, nb, out);
    for (int m = 0; m < mb; m++) {
        float *row = out + (size_t)m * GEMM_NB;
        for (int c = 0; c < nb; c++)
            row[c] += j->bias ? j->bias[n0 + c] : 0.0f;
        size_t off = (size_t)(m0 + m) * j->N + n0;
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
    float *x = x_as_f32(a->x_type, cpu_ptr(a->x), NULL, (size_t)a->M, (size_t)a->K, &ox);
    float *w = x ? x_as_f32(a->w_type, cpu_ptr(a->w), NULL, (size_t)a->N, (size_t)a->K, &ow) : NULL;
    if (!x || !w) {
        if (x && ox)
            free(x);
        return awq_err_set(d->err, AWQ_ERR_OUT_OF_MEMORY, "gemm: no memory to convert operands");
    }
    struct gemm_job j = { x, w, cpu_ptr(a->bias), cpu_ptr(a->y), a->y_type, a->M, a->N, a->K };
    size_t tasks = (size_t)((a->N + GEMM_NB - 1) / GEMM_NB) * (size_t)((a->M + GEMM_MB - 1) / GEMM_MB);
    cpu_pool_run(d->pool, tasks, gemm_task, &j);
    if (ox)
        free(x);
    if (ow)
        free(w);
    return 0;
}
