/* OpenCL matrix products: the 4-bit gemm_w4 (repacking at w4_create, a bandwidth-bound GEMV for
 * small M, a tiled kernel for large M) and the unquantized gemm. Kernels: shaders/gemm_w4.cl and
 * shaders/gemm.cl; with the tensor-core kernels (shaders/gemm_mma.cl) the GEMV of G % 128 == 0
 * weights and the large-M products run on mma.sync instead. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocl_internal.h"
#include "quant/q4.h"
#include "util/half.h"

/* ---- repacking ---------------------------------------------------------------------------------- */

static int upload(struct ocl_dev *d, const void *host, size_t bytes, const char *what, cl_mem *out)
{
    *out = NULL;
    if (bytes > d->desc.max_alloc)
        return awq_err_set(d->err, AWQ_ERR_DEVICE_MEMORY,
                           "OpenCL device '%s': the %s of a 4-bit weight need %zu bytes, more than "
                           "its maximum allocation (CL_DEVICE_MAX_MEM_ALLOC_SIZE) of %llu bytes",
                           d->desc.name, what, bytes, (unsigned long long)d->desc.max_alloc);
    cl_int e;
    cl_mem m = clCreateBuffer(d->ctx, CL_MEM_READ_ONLY, bytes, NULL, &e);
    if (!m)
        return ocl_fail(d->err, e, "clCreateBuffer (4-bit weight)");
    e = clEnqueueWriteBuffer(d->q, m, CL_TRUE, 0, bytes, host, 0, NULL, NULL);
    if (e != CL_SUCCESS) {
        clReleaseMemObject(m);
        return ocl_fail(d->err, e, "clEnqueueWriteBuffer (4-bit weight)");
    }
    *out = m;
    return 0;
}

void ocl_w4_free(void *dev, void *vw)
{
    struct ocl_w4 *w = vw;
    if (!w)
        return;
    if (w->q)
        clReleaseMemObject(w->q);
    if (w->scales)
        clReleaseMemObject(w->scales);
    if (w->zeros)
        clReleaseMemObject(w->zeros);
    free(w);
}

int ocl_w4_create(void *dev, const struct awq_w4_host *s, void **out)
{
    struct ocl_dev *d = dev;
    const int K = s->K, N = s->N, G = s->group_size, PN = d->p.pack_n;
    const int Npad = (int)ocl_round_up((size_t)N, (size_t)PN), KC = K / 32, KG = K / G;
    const int nw = N / 8;
    size_t n_q = (size_t)(Npad / PN) * (size_t)KC * (size_t)PN * 4, n_s = (size_t)KG * (size_t)Npad;
    uint32_t *q = calloc(n_q, sizeof *q);
    uint16_t *sc = calloc(n_s, sizeof *sc);
    uint8_t *zr = calloc(n_s, 1);
    size_t *nbase = malloc((size_t)N * sizeof *nbase);
    struct ocl_w4 *w = calloc(1, sizeof *w);
    int st = 0;
    if (!q || !sc || !zr || !nbase || !w) {
        st = awq_err_set(d->err, AWQ_ERR_OUT_OF_MEMORY, "out of host memory repacking a %dx%d "
                         "4-bit weight", K, N);
        goto out;
    }
    /* word index of column n's block, chunk 0, word 0 */
    for (int n = 0; n < N; n++)
        nbase[n] = (size_t)(n / PN) * (size_t)KC * (size_t)PN * 4 + (size_t)(n % PN) * 4;
    /* codes: AutoAWQ word (k, j) nibble `slot` is column 8j + AWQ_PACK_ORDER[slot] */
    for (int k = 0; k < K; k++) {
        const int32_t *row = s->qweight + (size_t)k * (size_t)nw;
        size_t kpart = (size_t)(k >> 5) * (size_t)PN * 4 + (size_t)((k >> 3) & 3);
        unsigned shift = 4u * (unsigned)(k & 7);
        for (int j = 0; j < nw; j++) {
            uint32_t v = (uint32_t)row[j];
            const size_t *nb8 = nbase + 8 * j;
            for (int slot = 0; slot < 8; slot++)
                q[nb8[AWQ_PACK_ORDER[slot]] + kpart] |= ((v >> (4 * slot)) & 15u) << shift;
        }
    }
    for (int g = 0; g < KG; g++) {
        memcpy(sc + (size_t)g * (size_t)Npad, s->scales + (size_t)g * (size_t)N, (size_t)N * 2);
        for (int j = 0; j < nw; j++) {
            uint32_t z = (uint32_t)s->qzeros[(size_t)g * (size_t)nw + (size_t)j];
            for (int slot = 0; slot < 8; slot++)
                zr[(size_t)g * (size_t)Npad + (size_t)(8 * j + AWQ_PACK_ORDER[slot])] =
                    (uint8_t)((z >> (4 * slot)) & 15u);
        }
    }
    w->K = K;
    w->N = N;
    w->G = G;
    w->Npad = Npad;
    if ((st = upload(d, q, n_q * sizeof *q, "codes", &w->q)) < 0 ||
        (st = upload(d, sc, n_s * sizeof *sc, "scales", &w->scales)) < 0 ||
        (st = upload(d, zr, n_s, "zero points", &w->zeros)) < 0)
        goto out;
    *out = w;
    w = NULL;
out:
    ocl_w4_free(d, w);
    free(nbase);
    free(q);
    free(sc);
    free(zr);
    return st;
}

/* ---- gemm_w4 ----------------------------------------------------------------------------------------- */

#define TRY(x)              \
    do {                    \
        int st_ = (x);      \
        if (st_ < 0)        \
            return st_;     \
    } while (0)

enum w4_path { W4_GEMV, W4_GEMV_MMA, W4_TILED, W4_MMA };

/* n8 blocks of rows per work-group of the tensor-core GEMV for M rows (index into k_mma_gv) */
static int gv_mb_index(const struct ocl_params *p, int M)
{
    int need = M <= 8 ? 0 : M <= 16 ? 1 : 2, most = p->mma_mb == 1 ? 0 : p->mma_mb == 2 ? 1 : 2;
    return need < most ? need : most;
}


static int launch_w4(struct ocl_dev *d, enum w4_path path, const struct ocl_w4 *w, int M,
                     cl_mem x, cl_ulong xo, int xf16, cl_mem act, cl_ulong ao, int has_act,
                     cl_mem bias, cl_ulong bo, int has_bias, cl_mem y, cl_ulong yo, int yf16)
{
    const struct ocl_params *p = &d->p;
    cl_kernel k;
    const char *name;
    size_t gws[2], lws[2];
    if (path == W4_GEMV) {
        int R = M <= 1 ? 1 : M <= 2 ? 2 : M <= 4 ? 4 : 8;
        k = d->k[R == 1 ? K_GEMV_W4_R1 : R == 2 ? K_GEMV_W4_R2 : R == 4 ? K_GEMV_W4_R4 : K_GEMV_W4_R8];
        name = "gemv_w4";
        lws[0] = (size_t)p->pack_n;
        lws[1] = (size_t)p->gemv_ks;
        gws[0] = (size_t)w->Npad * (size_t)((M + R - 1) / R);
        gws[1] = lws[1];
    } else if (path == W4_GEMV_MMA) {
        int mi = gv_mb_index(p, M), rows = 8 << mi;
        k = d->k_mma_gv[mi];
        name = "gemv_w4_mma";
        lws[0] = 32;
        lws[1] = (size_t)p->mma_ks;
        gws[0] = (size_t)(w->Npad / 32) * (size_t)((M + rows - 1) / rows) * 32;
        gws[1] = lws[1];
    } else if (path == W4_MMA) {
        k = d->k_mma_w4;
        name = "gemm_w4_mma";
        lws[0] = 256;
        lws[1] = 1;
        gws[0] = (size_t)((w->N + 127) / 128) * 256;
        gws[1] = (size_t)((M + 127) / 128);
    } else {
        k = d->k[K_GEMM_W4_TILED];
        name = "gemm_w4_tiled";
        lws[0] = (size_t)(p->bn / p->tn);
        lws[1] = (size_t)(p->bm / p->tm);
        gws[0] = (size_t)((w->N + p->bn - 1) / p->bn) * lws[0];
        gws[1] = (size_t)((M + p->bm - 1) / p->bm) * lws[1];
    }
    return OCL_LAUNCH(d, k, name, 2, gws, lws, OA_MEM(w->q), OA_MEM(w->scales), OA_MEM(w->zeros),
                      OA_MEM(x), OA_ULONG(xo), OA_INT(xf16), OA_MEM(act), OA_ULONG(ao),
                      OA_INT(has_act), OA_MEM(bias), OA_ULONG(bo), OA_INT(has_bias), OA_MEM(y),
                      OA_ULONG(yo), OA_INT(yf16), OA_INT(M), OA_INT(w->K), OA_INT(w->N),
                      OA_INT(w->Npad), OA_INT(w->G));
}

int ocl_gemm_w4(void *dev, const struct awq_gemm_w4_args *a)
{
    struct ocl_dev *d = dev;
    const struct ocl_w4 *w = a->w->impl;
    int xf16 = a->x_type == AWQ_DTYPE_F16, yf16 = a->y_type == AWQ_DTYPE_F16;
    cl_mem x, y, bias, act;
    cl_ulong xo, yo, bo, ao;
    TRY(ocl_ref(d, a->x, xf16 ? 2 : 4, "X", &x, &xo));
    TRY(ocl_ref(d, a->y, yf16 ? 2 : 4, "Y", &y, &yo));
    TRY(ocl_ref(d, a->bias, 4, "bias", &bias, &bo));
    TRY(ocl_ref(d, a->act_scale, 4, "act_scale", &act, &ao));
    enum w4_path path = d->k_mma_w4 ? W4_MMA : W4_TILED;
    /* the tensor-core GEMV needs whole groups per 128-k step */
    if (a->M <= d->p.gemv_max_m)
        path = d->k_mma_gv[0] && w->G % 128 == 0 ? W4_GEMV_MMA : W4_GEMV;
    return launch_w4(d, path, w, a->M, x, xo, xf16, act, ao, a->act_scale.buf != NULL, bias, bo,
                     a->bias.buf != NULL, y, yo, yf16);
}

/* ---- unquantized gemm ------------------------------------------------------------------------------ */

enum f_path { F_GEMV, F_TILED, F_MMA };

static int launch_f(struct ocl_dev *d, enum f_path path, int M, int N, int K, cl_mem x,
                    cl_ulong xo, int xf16, cl_mem w, cl_ulong wo, int wf16, cl_mem bias,
                    cl_ulong bo, int has_bias, cl_mem y, cl_ulong yo, int yf16)
{
    const struct ocl_params *p = &d->p;
    cl_kernel k;
    const char *name;
    size_t gws[2], lws[2];
    if (path == F_GEMV) {
        int R = M <= 1 ? 1 : M <= 2 ? 2 : 4;
        k = d->k[R == 1 ? K_GEMV_F_R1 : R == 2 ? K_GEMV_F_R2 : K_GEMV_F_R4];
        name = "gemv_f";
        lws[0] = (size_t)p->gv_ts;
        lws[1] = (size_t)p->gv_nr;
        gws[0] = (size_t)p->gv_ts * (size_t)((N + p->gv_nr - 1) / p->gv_nr);
        gws[1] = lws[1];
    } else if (path == F_MMA) {
        k = d->k_mma_f;
        name = "gemm_f_mma";
        lws[0] = 256;
        lws[1] = 1;
        gws[0] = (size_t)((N + 127) / 128) * 256;
        gws[1] = (size_t)((M + 127) / 128);
    } else {
        k = d->k[K_GEMM_F_TILED];
        name = "gemm_f_tiled";
        lws[0] = (size_t)(p->bn / p->tn);
        lws[1] = (size_t)(p->bm / p->tm);
        gws[0] = (size_t)((N + p->bn - 1) / p->bn) * lws[0];
        gws[1] = (size_t)((M + p->bm - 1) / p->bm) * lws[1];
    }
    return OCL_LAUNCH(d, k, name, 2, gws, lws, OA_MEM(x), OA_ULONG(xo), OA_INT(xf16), OA_MEM(w),
                      OA_ULONG(wo), OA_INT(wf16), OA_MEM(bias), OA_ULONG(bo), OA_INT(has_bias),
                      OA_MEM(y), OA_ULONG(yo), OA_INT(yf16), OA_INT(M), OA_INT(N), OA_INT(K));
}

int ocl_gemm(void *dev, const struct awq_gemm_args *a)
{
    struct ocl_dev *d = dev;
    int xf16 = a->x_type == AWQ_DTYPE_F16, wf16 = a->w_type == AWQ_DTYPE_F16;
    int yf16 = a->y_type == AWQ_DTYPE_F16;
    cl_mem x, w, y, bias;
    cl_ulong xo, wo, yo, bo;
    TRY(ocl_ref(d, a->x, xf16 ? 2 : 4, "X", &x, &xo));
    TRY(ocl_ref(d, a->w, wf16 ? 2 : 4, "W", &w, &wo));
    TRY(ocl_ref(d, a->y, yf16 ? 2 : 4, "Y", &y, &yo));
    TRY(ocl_ref(d, a->bias, 4, "bias", &bias, &bo));
    /* Tensor cores only for fp16 operands, which TF32 holds exactly: fp32 products (the search
     * math of calibration) stay fp32. */
    enum f_path path = a->M <= 4 ? F_GEMV : (d->k_mma_f && xf16 && wf16) ? F_MMA : F_TILED;
    return launch_f(d, path, a->M, a->N, a->K, x, xo, xf16, w, wo, wf16, bias, bo,
                    a->bias.buf != NULL, y, yo, yf16);
}

/* ---- tensor-core kernels: build and self-check ---------------------------------------------------- */

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static float urand(uint32_t *s)
{
    return (float)lcg(s) / 16777216.0f * 2.0f - 1.0f;
}

static double nmse(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)a[i] - (double)b[i];
        num += e * e;
        den += (double)b[i] * (double)b[i];
    }
    return num != num ? 1e30 : num / (den > 1e-30 ? den : 1e-30);
}

/* Runs both products of an odd-shaped problem through the tensor-core and the fp32 kernels;
 * *err is the larger normalised squared difference. */
static int mma_selftest(struct ocl_dev *d, double *err)
{
    enum { M = 130, N = 136, K = 256, G = 64, KF = 200, KG = 384 };
    /* the GEMV case (K = KG, G = 128, up to 20 rows) reuses the buffers */
    _Static_assert(KG >= K && K / G >= KG / 128 && M * K >= 20 * KG, "self-test buffer sizes");
    uint32_t seed = 12345;
    int32_t *qw = malloc((size_t)KG * N / 8 * 4), *qz = malloc((size_t)K / G * N / 8 * 4);
    uint16_t *sc = malloc((size_t)K / G * N * 2), *xh = malloc((size_t)M * K * 2);
    uint16_t *wh = malloc((size_t)N * KF * 2);
    float *y1 = malloc((size_t)M * N * 4), *y2 = malloc((size_t)M * N * 4);
    cl_mem bx = NULL, bw = NULL, by1 = NULL, by2 = NULL;
    void *w4 = NULL;
    int st = 0;
    *err = 1e30;
    if (!qw || !qz || !sc || !xh || !wh || !y1 || !y2) {
        st = awq_err_set(d->err, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
        goto out;
    }
    for (size_t i = 0; i < (size_t)KG * N / 8; i++)
        qw[i] = (int32_t)(lcg(&seed) ^ (lcg(&seed) << 16));
    for (size_t i = 0; i < (size_t)K / G * N / 8; i++)
        qz[i] = (int32_t)(lcg(&seed) ^ (lcg(&seed) << 16));
    for (size_t i = 0; i < (size_t)K / G * N; i++)
        sc[i] = awq_f32_to_f16(0.002f + 0.01f * (urand(&seed) + 1.0f));
    for (size_t i = 0; i < (size_t)M * K; i++)
        xh[i] = awq_f32_to_f16(urand(&seed));
    for (size_t i = 0; i < (size_t)N * KF; i++)
        wh[i] = awq_f32_to_f16(0.1f * urand(&seed));
    struct awq_w4_host h = { K, N, G, qw, qz, sc };
    cl_int e;
    bx = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, (size_t)M * K * 2, NULL, &e);
    bw = bx ? clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, (size_t)N * KF * 2, NULL, &e) : NULL;
    by1 = bw ? clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, (size_t)M * N * 4, NULL, &e) : NULL;
    by2 = by1 ? clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, (size_t)M * N * 4, NULL, &e) : NULL;
    if (!by2) {
        st = ocl_fail(d->err, e, "clCreateBuffer (tensor-core self-test)");
        goto out;
    }
    if ((e = clEnqueueWriteBuffer(d->q, bx, CL_TRUE, 0, (size_t)M * K * 2, xh, 0, NULL, NULL)) ||
        (e = clEnqueueWriteBuffer(d->q, bw, CL_TRUE, 0, (size_t)N * KF * 2, wh, 0, NULL, NULL))) {
        st = ocl_fail(d->err, e, "clEnqueueWriteBuffer (tensor-core self-test)");
        goto out;
    }
    if ((st = ocl_w4_create(d, &h, &w4)) < 0)
        goto out;
    double e_w4 = 1e30, e_f = 1e30;
    for (int pass = 0; pass < 2; pass++) {
        for (int v = 0; v < 2; v++) {
            cl_mem y = v ? by2 : by1;
            if (pass == 0)
                st = launch_w4(d, v ? W4_MMA : W4_TILED, w4, M, bx, 0, 1, d->dummy, 0, 0,
                               d->dummy, 0, 0, y, 0, 0);
            else
                st = launch_f(d, v ? F_MMA : F_TILED, M, N, KF, bx, 0, 1, bw, 0, 1, d->dummy, 0, 0,
                              y, 0, 0);
            if (st < 0)
                goto out;
        }
        if ((e = clEnqueueReadBuffer(d->q, by1, CL_TRUE, 0, (size_t)M * N * 4, y1, 0, NULL, NULL)) ||
            (e = clEnqueueReadBuffer(d->q, by2, CL_TRUE, 0, (size_t)M * N * 4, y2, 0, NULL, NULL))) {
            st = ocl_fail(d->err, e, "clEnqueueReadBuffer (tensor-core self-test)");
            goto out;
        }
        *(pass ? &e_f : &e_w4) = nmse(y2, y1, (size_t)M * N);
    }
    *err = e_w4 > e_f ? e_w4 : e_f;
    if (d->k_mma_gv[0]) {
        /* the tensor-core GEMV against the fp32 one: G = 128 over 3 steps of 128 k (an idle
         * K slice), padded columns, partial row blocks, every row-block variant */
        ocl_w4_free(d, w4);
        w4 = NULL;
        struct awq_w4_host h2 = { KG, N, 128, qw, qz, sc };
        if ((st = ocl_w4_create(d, &h2, &w4)) < 0)
            goto out;
        for (int mi = 0; mi < 3; mi++) {
            int m = mi == 0 ? 3 : mi == 1 ? 13 : 20;
            for (int v = 0; v < 2; v++)
                if ((st = launch_w4(d, v ? W4_GEMV_MMA : W4_GEMV, w4, m, bx, 0, 1, d->dummy, 0,
                                    0, d->dummy, 0, 0, v ? by2 : by1, 0, 0)) < 0)
                    goto out;
            if ((e = clEnqueueReadBuffer(d->q, by1, CL_TRUE, 0, (size_t)m * N * 4, y1, 0, NULL,
                                         NULL)) ||
                (e = clEnqueueReadBuffer(d->q, by2, CL_TRUE, 0, (size_t)m * N * 4, y2, 0, NULL,
                                         NULL))) {
                st = ocl_fail(d->err, e, "clEnqueueReadBuffer (tensor-core self-test)");
                goto out;
            }
            double eg = nmse(y2, y1, (size_t)m * N);
            *err = eg > *err ? eg : *err;
        }
    }
out:
    ocl_w4_free(d, w4);
    if (bx)
        clReleaseMemObject(bx);
    if (bw)
        clReleaseMemObject(bw);
    if (by1)
        clReleaseMemObject(by1);
    if (by2)
        clReleaseMemObject(by2);
    free(qw);
    free(qz);
    free(sc);
    free(xh);
    free(wh);
    free(y1);
    free(y2);
    return st;
}

static void mma_release(struct ocl_dev *d)
{
    for (int i = 0; i < 3; i++)
        if (d->k_mma_gv[i]) {
            clReleaseKernel(d->k_mma_gv[i]);
            d->k_mma_gv[i] = NULL;
        }
    if (d->k_mma_w4)
        clReleaseKernel(d->k_mma_w4);
    if (d->k_mma_f)
        clReleaseKernel(d->k_mma_f);
    if (d->mma_prog)
        clReleaseProgram(d->mma_prog);
    d->k_mma_w4 = d->k_mma_f = NULL;
    d->mma_prog = NULL;
}

int ocl_mma_init(struct ocl_dev *d)
{
    snprintf(d->mma_status, sizeof d->mma_status, "off for parameter row '%s'", d->p.row);
    if (!d->p.mma)
        return 0;
    /* Real instructions on NVIDIA, where a failure only costs the fast path; the emulation
     * elsewhere exists for the tests, where a failure must show. */
    int emulate = d->desc.vendor_id != 0x10DE;
    struct awq_errbuf quiet, *saved = d->err;
    memset(&quiet, 0, sizeof quiet);
    if (!emulate)
        d->err = &quiet;
    cl_int e = CL_SUCCESS;
    int st = ocl_mma_program(d, emulate, &d->mma_prog);
    if (st == 0) {
        d->k_mma_w4 = clCreateKernel(d->mma_prog, "gemm_w4_mma", &e);
        if (d->k_mma_w4)
            d->k_mma_f = clCreateKernel(d->mma_prog, "gemm_f_mma", &e);
        if (!d->k_mma_f)
            st = ocl_fail(d->err, e, "clCreateKernel (tensor-core kernels)");
        /* the GEMV reads whole packed blocks of 32 columns with one warp; real mma only */
        for (int i = 0; st == 0 && !emulate && d->p.pack_n == 32 && i < 3; i++) {
            static const char *names[3] = { "gemv_w4_mma1", "gemv_w4_mma2", "gemv_w4_mma4" };
            d->k_mma_gv[i] = clCreateKernel(d->mma_prog, names[i], &e);
            if (!d->k_mma_gv[i])
                st = ocl_fail(d->err, e, "clCreateKernel (tensor-core GEMV)");
        }
    }
    double err = 0;
    if (st == 0)
        st = mma_selftest(d, &err);
    if (st == 0 && !(err <= 1e-5))
        st = awq_err_set(d->err, AWQ_ERR_BACKEND, "OpenCL tensor-core kernels disagree with the "
                         "fp32 kernels (normalised squared error %.3g)", err);
    d->err = saved;
    if (st < 0) {
        mma_release(d);
        if (emulate)
            return st;
        snprintf(d->mma_status, sizeof d->mma_status, "disabled: %.480s", quiet.msg);
        ocl_log(d, AWQ_LOG_INFO, "tensor-core kernels %s; using fp32 tiles", d->mma_status);
        return 0;
    }
    snprintf(d->mma_status, sizeof d->mma_status, "%s, self-test nmse %.3g",
             emulate ? "emulated" : "enabled", err);
    ocl_log(d, AWQ_LOG_DEBUG, "tensor-core kernels %s", d->mma_status);
    return 0;
}
