/* CUDA ops of the Llama block: RMSNorm, RoPE, attention, SiLU-gate, add, embedding gather,
 * cross-entropy. Arithmetic mirrors the CPU reference (backends/cpu/cpu_nn.c) operation by
 * operation (explicit __fmul_rn & co. where nvcc would otherwise contract into an FMA), with the
 * same double-precision accumulations, so results agree to a few ulp. */
#include "config.h"

#include <math.h>

#include "cuda_internal.h"

#define EW_THREADS 256
#define ROW_THREADS 256

static unsigned ew_grid(const struct cu_dev *d, size_t n)
{
    unsigned b = cu_blocks(n, EW_THREADS), cap = (unsigned)d->sms * 16u;
    return b < cap ? (b ? b : 1) : cap;
}

/* ---- rmsnorm: one block per row ---------------------------------------------------------------- */

__global__ void __launch_bounds__(ROW_THREADS) rmsnorm_kernel(const float *x, const float *__restrict__ w,
                                                               float *y, int C, float eps)
{
    __shared__ double sh[32];
    const size_t row = (size_t)blockIdx.x * C;
    double ss = 0.0;
    for (int c = threadIdx.x; c < C; c += ROW_THREADS) {
        double v = x[row + c];
        ss += v * v;
    }
    ss = cu_block_sum(ss, sh);   /* its barriers also order every read of x before the writes */
    const float r = (float)(1.0 / sqrt(ss / C + (double)eps));
    for (int c = threadIdx.x; c < C; c += ROW_THREADS)
        y[row + c] = __fmul_rn(__fmul_rn(x[row + c], r), w[c]);
}

int cu_rmsnorm(void *dev, const struct awq_rmsnorm_args *a)
{
    struct cu_dev *d = (struct cu_dev *)dev;
    const char *op = "rmsnorm";
    CU_STATUS_TRY(cu_begin(d, op));
    CU_STATUS_TRY(cu_check_align(d, op, "x", a->x, 4));
    CU_STATUS_TRY(cu_check_align(d, op, "w", a->w, 4));
    CU_STATUS_TRY(cu_check_align(d, op, "y", a->y, 4));
    rmsnorm_kernel<<<(unsigned)a->T, ROW_THREADS, 0, d->stream>>>(
        (const float *)cu_ptr(a->x), (const float *)cu_ptr(a->w), (float *)cu_ptr(a->y), a->C, a->eps);
    CU_LAUNCHED(d, op, "rmsnorm_kernel");
    return 0;
}

/* ---- rope: one thread per rotated pair --------------------------------------------------------- */

__global__ void rope_kernel(float *x, const float *__restrict__ inv_freq, size_t pairs, int n_heads,
                            int half, int pos0, int seq_len)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < pairs; i += (size_t)gridDim.x * blockDim.x) {
        const int f = (int)(i % (size_t)half);
        const size_t th = i / (size_t)half;                    /* row * n_heads + head */
        const size_t t = th / (size_t)n_heads;
        const float pos = (float)(pos0 + (int)(t % (size_t)seq_len));
        const float ang = pos * inv_freq[f];
        const float c = cosf(ang), s = sinf(ang);
        float *v = x + th * (size_t)(2 * half);
        const float x0 = v[f], x1 = v[f + half];
        v[f] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
        v[f + half] = __fadd_rn(__fmul_rn(x1, c), __fmul_rn(x0, s));
    }
}

int cu_rope(void *dev, const struct awq_rope_args *a)
{
    struct cu_dev *d = (struct cu_dev *)dev;
    const char *op = "rope";
    CU_STATUS_TRY(cu_begin(d, op));
    CU_STATUS_TRY(cu_check_align(d, op, "x", a->x, 4));
    CU_STATUS_TRY(cu_check_align(d, op, "inv_freq", a->inv_freq, 4));
    const int half = a->head_dim / 2;
    const size_t pairs = (size_t)a->T * a->n_heads * half;
    rope_kernel<<<ew_grid(d, pairs), EW_THREADS, 0, d->stream>>>((float *)cu_ptr(a->x),
                                                                  (const float *)cu_ptr(a->inv_freq), pairs,
                                                                  a->n_heads, half, a->pos0, a->seq_len);
    CU_LAUNCHED(d, op, "rope_kernel");
    return 0;
}

/* ---- attention ---------------------------------------------------------------------------------
 * A block of 8 warps serves 8 consecutive queries of one (sequence, head); warp w owns query
 * qb * 8 + w. Keys and values stream through shared memory in tiles of BK rows, loaded once for
 * the 8 queries. Per tile, lane j scores key j0 + j (the dot product over head_dim from shared
 * memory), the warp updates its running max / sum (online softmax), and lane l accumulates
 * output dimensions l, l + 32, ... (DCH of them). Memory per block: BK (2 hd + 1) + 8 hd floats,
 * never a score matrix. */

#define AT_WARPS 8

struct attn_args {
    const float *q, *k, *v;
    float *out;
    int q_len, kv_len, n_heads, group, head_dim, bk, qblocks;
    float scale;
};

template <int DCH>
__global__ void __launch_bounds__(AT_WARPS * 32) attention_kernel(const attn_args p)
{
    extern __shared__ float sm[];
    const int hd = p.head_dim, BK = p.bk;
    float *Ks = sm;                                  /* [BK][hd + 1] (padded: conflict-free rows) */
    float *Vs = Ks + (size_t)BK * (hd + 1);          /* [BK][hd] */
    float *Qs = Vs + (size_t)BK * hd;                /* [AT_WARPS][hd] */
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int seq = blockIdx.x / p.qblocks, qb = blockIdx.x % p.qblocks, h = blockIdx.y;
    const int kvh = h / p.group;
    const int i = qb * AT_WARPS + warp;              /* this warp's query */
    const bool valid = i < p.q_len;
    const int offset = p.kv_len - p.q_len;
    const int last_i = offset + i;                   /* last key this query sees */
    const int last_blk = offset + min(p.q_len - 1, qb * AT_WARPS + AT_WARPS - 1);
    const size_t q_row = (size_t)p.n_heads * hd, kv_row = (size_t)(p.n_heads / p.group) * hd;
    const float *qrow = p.q + ((size_t)seq * p.q_len + (valid ? i : 0)) * q_row + (size_t)h * hd;
    const float *kbase = p.k + (size_t)seq * p.kv_len * kv_row + (size_t)kvh * hd;
    const float *vbase = p.v + (size_t)seq * p.kv_len * kv_row + (size_t)kvh * hd;

    for (int dd = lane; dd < hd; dd += 32)
        Qs[warp * hd + dd] = valid ? qrow[dd] : 0.0f;

    float m = -INFINITY, l = 0.0f, o[DCH];
#pragma unroll
    for (int c = 0; c < DCH; c++)
        o[c] = 0.0f;

    for (int j0 = 0; j0 <= last_blk; j0 += BK) {
        __syncthreads();   /* the previous tile is consumed (and Qs is written, first time) */
        for (int idx = threadIdx.x; idx < BK * hd; idx += AT_WARPS * 32) {
            const int j = idx / hd, dd = idx % hd, key = j0 + j;
            float kv = 0.0f, vv = 0.0f;
            if (key < p.kv_len) {
                kv = kbase[(size_t)key * kv_row + dd];
                vv = vbase[(size_t)key * kv_row + dd];
            }
            Ks[j * (hd + 1) + dd] = kv;
            Vs[j * hd + dd] = vv;
        }
        __syncthreads();
        if (!valid || j0 > last_i)   /* warp-uniform */
            continue;
        float s = -INFINITY;
        if (lane < BK && j0 + lane <= last_i) {
            const float *kr = Ks + lane * (hd + 1), *qr = Qs + warp * hd;
            float acc = 0.0f;
            for (int dd = 0; dd < hd; dd++)
                acc += qr[dd] * kr[dd];
            s = acc * p.scale;
        }
        const float mnew = fmaxf(m, cu_warp_max(s));   /* finite: key j0 <= last_i is valid */
        const float corr = expf(m - mnew);              /* 0 on the first tile (m = -inf) */
        const float pj = s == -INFINITY ? 0.0f : expf(s - mnew);
        l = l * corr + cu_warp_sum(pj);
#pragma unroll
        for (int c = 0; c < DCH; c++)
            o[c] *= corr;
        const int nk = min(BK, last_i - j0 + 1);
        for (int j = 0; j < nk; j++) {
            const float pp = __shfl_sync(0xffffffffu, pj, j);
            const float *vr = Vs + j * hd;
#pragma unroll
            for (int c = 0; c < DCH; c++) {
                const int dd = lane + 32 * c;
                if (dd < hd)
                    o[c] += pp * vr[dd];
            }
        }
        m = mnew;
    }
    if (valid) {
        float *orow = p.out + ((size_t)seq * p.q_len + i) * q_row + (size_t)h * hd;
#pragma unroll
        for (int c = 0; c < DCH; c++) {
            const int dd = lane + 32 * c;
            if (dd < hd)
                orow[dd] = o[c] / l;
        }
    }
}

int cu_attention(void *dev, const struct awq_attention_args *a)
{
    struct cu_dev *d = (struct cu_dev *)dev;
    const char *op = "attention";
    CU_STATUS_TRY(cu_begin(d, op));
    CU_STATUS_TRY(cu_check_align(d, op, "q", a->q, 4));
    CU_STATUS_TRY(cu_check_align(d, op, "k", a->k, 4));
    CU_STATUS_TRY(cu_check_align(d, op, "v", a->v, 4));
    CU_STATUS_TRY(cu_check_align(d, op, "out", a->out, 4));
    const int hd = a->head_dim;
    if (hd > 256)
        return awq_err_set(d->err, AWQ_ERR_UNSUPPORTED, "cuda attention: head_dim %d (at most 256)", hd);
    /* largest key tile that keeps shared memory within the 48 KiB every device grants */
    int bk = 32;
    while (bk > 8 && ((size_t)bk * (2 * hd + 1) + (size_t)AT_WARPS * hd) * sizeof(float) > 48 * 1024)
        bk /= 2;
    const size_t smem = ((size_t)bk * (2 * hd + 1) + (size_t)AT_WARPS * hd) * sizeof(float);
    attn_args p;
    p.q = (const float *)cu_ptr(a->q);
    p.k = (const float *)cu_ptr(a->k);
    p.v = (const float *)cu_ptr(a->v);
    p.out = (float *)cu_ptr(a->out);
    p.q_len = a->q_len;
    p.kv_len = a->kv_len;
    p.n_heads = a->n_heads;
    p.group = a->n_heads / a->n_kv_heads;
    p.head_dim = hd;
    p.bk = bk;
    p.qblocks = (a->q_len + AT_WARPS - 1) / AT_WARPS;
    p.scale = a->scale;
    const size_t nx = (size_t)a->n_seq * p.qblocks;
    if (nx > 0x7fffffffu || a->n_heads > 65535)
        return awq_err_set(d->err, AWQ_ERR_UNSUPPORTED, "cuda attention: %d sequences x %d heads too many",
                           a->n_seq, a->n_heads);
    const dim3 grid((unsigned)nx, (unsigned)a->n_heads), block(AT_WARPS * 32);
    if (hd <= 32)
        attention_kernel<1><<<grid, block, smem, d->stream>>>(p);
    else if (hd <= 64)
        attention_kernel<2><<<grid, block, smem, d->stream>>>(p);
    else if (hd <= 128)
        attention_kernel<4><<<grid, block, smem, d->stream>>>(p);
    else
        attention_kernel<8><<<grid, block, smem, d->stream>>>(p);
    CU_LAUNCHED(d, op, "attention_kernel");
    return 0;
}

/* ---- elementwise ---------------------------------------------------------------------------------- */

__global__ void silu_mul_kernel(const float *g, const float *u, float *out, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const float x = g[i];
        out[i] = __fmul_rn(__fdiv_rn(x, __fadd_rn(1.0f, expf(-x))), u[i]);
    }
}

__global__ void add_kernel(const float *a, const float *b, float *out, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = a[i] + b[i];
}

int cu_silu_mul(void *dev, const struct awq_silu_mul_args *a)
{
    struct cu_dev *d = (struct cu_dev *)dev;
    const char *op = "silu_mul";
    CU_STATUS_TRY(cu_begin(d, op));
    CU_STATUS_TRY(cu_check_align(d, op, "gate", a->gate, 4));
    CU_STATUS_TRY(cu_check_align(d, op, "up", a->up, 4));
    CU_STATUS_TRY(cu_check_align(d, op, "out", a->out, 4));
    silu_mul_kernel<<<ew_grid(d, a->n), EW_THREADS, 0, d->stream>>>(
        (const float *)cu_ptr(a->gate), (const float *)cu_ptr(a->up), (float *)cu_ptr(a->out), a->n);
    CU_LAUNCHED(d, op, "silu_mul_kernel");
    return 0;
}

int cu_add(void *dev, const struct awq_add_args *a)
{
    struct cu_dev *d = (struct cu_dev *)dev;
    const char *op = "add";
    CU_STATUS_TRY(cu_begin(d, op));
    CU_STATUS_TRY(cu_check_align(d, op, "a", a->a, 4));
    CU_STATUS_TRY(cu_check_align(d, op, "b", a->b, 4));
    CU_STATUS_TRY(cu_check_align(d, op, "out", a->out, 4));
    add_kernel<<<ew_grid(d, a->n), EW_THREADS, 0, d->stream>>>((const float *)cu_ptr(a->a),
                                                                (const float *)cu_ptr(a->b),
                                                                (float *)cu_ptr(a->out), a->n);
    CU_LAUNCHED(d, op, "add_kernel");
    return 0;
}

/* ---- embedding gather ------------------------------------------------------------------------------ */

template <typename T>
__global__ void embed_kernel(const T *__restrict__ table, const int32_t *__restrict__ ids, float *__restrict__ out,
                             size_t total, int C, int vocab)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const size_t t = i / (size_t)C;
        const int c = (int)(i % (size_t)C), id = ids[t];
        out[i] = id >= 0 && id < vocab ? cu_load_f(table, (size_t)id * C + c) : 0.0f;
    }
}

int cu_embed(void *dev, const struct awq_embed_args *a)
{
    struct cu_dev *d = (struct cu_dev *)dev;
    const char *op = "embed";
    CU_STATUS_TRY(cu_begin(d, op));
    CU_STATUS_TRY(cu_check_align(d, op, "table", a->table, awq_dtype_size(a->table_type)));
    CU_STATUS_TRY(cu_check_align(d, op, "ids", a->ids, 4));
    CU_STATUS_TRY(cu_check_align(d, op, "out", a->out, 4));
    const size_t total = (size_t)a->T * a->C;
    if (a->table_type == AWQ_DTYPE_F16)
        embed_kernel<__half><<<ew_grid(d, total), EW_THREADS, 0, d->stream>>>(
            (const __half *)cu_ptr(a->table), (const int32_t *)cu_ptr(a->ids), (float *)cu_ptr(a->out), total,
            a->C, a->vocab);
    else
        embed_kernel<float><<<ew_grid(d, total), EW_THREADS, 0, d->stream>>>(
            (const float *)cu_ptr(a->table), (const int32_t *)cu_ptr(a->ids), (float *)cu_ptr(a->out), total,
            a->C, a->vocab);
    CU_LAUNCHED(d, op, "embed_kernel");
    return 0;
}

/* ---- cross-entropy: one block per row ------------------------------------------------------------- */

__global__ void __launch_bounds__(ROW_THREADS) cross_entropy_kernel(const float *__restrict__ logits,
                                                                     const int32_t *__restrict__ targets,
                                                                     float *__restrict__ nll, int V)
{
    __shared__ double shd[32];
    __shared__ float shf[32];
    const float *l = logits + (size_t)blockIdx.x * V;
    float mx = -INFINITY;
    for (int v = threadIdx.x; v < V; v += ROW_THREADS)
        mx = l[v] > mx ? l[v] : mx;
    mx = cu_block_max(mx, shf);
    double s = 0.0;
    for (int v = threadIdx.x; v < V; v += ROW_THREADS)
        s += exp((double)(l[v] - mx));
    s = cu_block_sum(s, shd);
    if (threadIdx.x == 0) {
        const int t = targets[blockIdx.x];
        const float lt = t >= 0 && t < V ? l[t] : __int_as_float(0x7fc00000);
        nll[blockIdx.x] = (float)((double)mx + log(s) - (double)lt);
    }
}

int cu_cross_entropy(void *dev, const struct awq_cross_entropy_args *a)
{
    struct cu_dev *d = (struct cu_dev *)dev;
    const char *op = "cross_entropy";
    CU_STATUS_TRY(cu_begin(d, op));
    CU_STATUS_TRY(cu_check_align(d, op, "logits", a->logits, 4));
    CU_STATUS_TRY(cu_check_align(d, op, "targets", a->targets, 4));
    CU_STATUS_TRY(cu_check_align(d, op, "nll", a->nll, 4));
    cross_entropy_kernel<<<(unsigned)a->T, ROW_THREADS, 0, d->stream>>>(
        (const float *)cu_ptr(a->logits), (const int32_t *)cu_ptr(a->targets), (float *)cu_ptr(a->nll), a->V);
    CU_LAUNCHED(d, op, "cross_entropy_kernel");
    return 0;
}
