/* OpenCL matrix products: the 4-bit gemm_w4 (repacking at w4_create, a bandwidth-bound GEMV for
 * small M, a tiled kernel for large M) and the unquantized gemm. Kernels: shaders/gemm_w4.cl and
 * shaders/gemm.cl. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ocl_internal.h"
#include "quant/q4.h"

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

int ocl_gemm_w4(void *dev, const struct awq_gemm_w4_args *a)
{
    struct ocl_dev *d = dev;
    const struct ocl_w4 *w = a->w->impl;
    const struct ocl_params *p = &d->p;
    int xf16 = a->x_type == AWQ_DTYPE_F16, yf16 = a->y_type == AWQ_DTYPE_F16;
    cl_mem x, y, bias, act;
    cl_ulong xo, yo, bo, ao;
    TRY(ocl_ref(d, a->x, xf16 ? 2 : 4, "X", &x, &xo));
    TRY(ocl_ref(d, a->y, yf16 ? 2 : 4, "Y", &y, &yo));
    TRY(ocl_ref(d, a->bias, 4, "bias", &bias, &bo));
    TRY(ocl_ref(d, a->act_scale, 4, "act_scale", &act, &ao));
    const int M = a->M;

    if (M <= p->gemv_max_m) {
        int R = M <= 1 ? 1 : M <= 2 ? 2 : M <= 4 ? 4 : 8;
        cl_kernel k = d->k[R == 1 ? K_GEMV_W4_R1 : R == 2 ? K_GEMV_W4_R2 : R == 4 ? K_GEMV_W4_R4
                                                                             : K_GEMV_W4_R8];
        size_t lws[2] = { (size_t)p->pack_n, (size_t)p->gemv_ks };
        size_t gws[2] = { (size_t)w->Npad * (size_t)((M + R - 1) / R), (size_t)p->gemv_ks };
        return OCL_LAUNCH(d, k, "gemv_w4", 2, gws, lws, OA_MEM(w->q), OA_MEM(w->scales),
                          OA_MEM(w->zeros), OA_MEM(x), OA_ULONG(xo), OA_INT(xf16), OA_MEM(act),
                          OA_ULONG(ao), OA_INT(a->act_scale.buf != NULL), OA_MEM(bias),
                          OA_ULONG(bo), OA_INT(a->bias.buf != NULL), OA_MEM(y), OA_ULONG(yo),
                          OA_INT(yf16), OA_INT(M), OA_INT(w->K), OA_INT(w->N), OA_INT(w->Npad),
                          OA_INT(w->G));
    }
    size_t tx = (size_t)(p->bn / p->tn), ty = (size_t)(p->bm / p->tm);
    size_t lws[2] = { tx, ty };
    size_t gws[2] = { (size_t)((w->N + p->bn - 1) / p->bn) * tx, (size_t)((M + p->bm - 1) / p->bm) * ty };
    return OCL_LAUNCH(d, d->k[K_GEMM_W4_TILED], "gemm_w4_tiled", 2, gws, lws, OA_MEM(w->q),
                      OA_MEM(w->scales), OA_MEM(w->zeros), OA_MEM(x), OA_ULONG(xo), OA_INT(xf16),
                      OA_MEM(act), OA_ULONG(ao), OA_INT(a->act_scale.buf != NULL), OA_MEM(bias),
                      OA_ULONG(bo), OA_INT(a->bias.buf != NULL), OA_MEM(y), OA_ULONG(yo),
                      OA_INT(yf16), OA_INT(M), OA_INT(w->K), OA_INT(w->N), OA_INT(w->Npad),
                      OA_INT(w->G));
}

/* ---- unquantized gemm ------------------------------------------------------------------------------ */

int ocl_gemm(void *dev, const struct awq_gemm_args *a)
{
    struct ocl_dev *d = dev;
    const struct ocl_params *p = &d->p;
    int xf16 = a->x_type == AWQ_DTYPE_F16, wf16 = a->w_type == AWQ_DTYPE_F16;
    int yf16 = a->y_type == AWQ_DTYPE_F16;
    cl_mem x, w, y, bias;
    cl_ulong xo, wo, yo, bo;
    TRY(ocl_ref(d, a->x, xf16 ? 2 : 4, "X", &x, &xo));
    TRY(ocl_ref(d, a->w, wf16 ? 2 : 4, "W", &w, &wo));
    TRY(ocl_ref(d, a->y, yf16 ? 2 : 4, "Y", &y, &yo));
    TRY(ocl_ref(d, a->bias, 4, "bias", &bias, &bo));
    const int M = a->M, N = a->N, K = a->K;

    if (M <= 4) {
        int R = M <= 1 ? 1 : M <= 2 ? 2 : 4;
        cl_kernel k = d->k[R == 1 ? K_GEMV_F_R1 : R == 2 ? K_GEMV_F_R2 : K_GEMV_F_R4];
        size_t lws[2] = { (size_t)p->gv_ts, (size_t)p->gv_nr };
        size_t gws[2] = { (size_t)p->gv_ts * (size_t)((N + p->gv_nr - 1) / p->gv_nr), (size_t)p->gv_nr };
        return OCL_LAUNCH(d, k, "gemv_f", 2, gws, lws, OA_MEM(x), OA_ULONG(xo), OA_INT(xf16),
                          OA_MEM(w), OA_ULONG(wo), OA_INT(wf16), OA_MEM(bias), OA_ULONG(bo),
                          OA_INT(a->bias.buf != NULL), OA_MEM(y), OA_ULONG(yo), OA_INT(yf16),
                          OA_INT(M), OA_INT(N), OA_INT(K));
    }
    size_t tx = (size_t)(p->bn / p->tn), ty = (size_t)(p->bm / p->tm);
    size_t lws[2] = { tx, ty };
    size_t gws[2] = { (size_t)((N + p->bn - 1) / p->bn) * tx, (size_t)((M + p->bm - 1) / p->bm) * ty };
    return OCL_LAUNCH(d, d->k[K_GEMM_F_TILED], "gemm_f_tiled", 2, gws, lws, OA_MEM(x), OA_ULONG(xo),
                      OA_INT(xf16), OA_MEM(w), OA_ULONG(wo), OA_INT(wf16), OA_MEM(bias),
                      OA_ULONG(bo), OA_INT(a->bias.buf != NULL), OA_MEM(y), OA_ULONG(yo),
                      OA_INT(yf16), OA_INT(M), OA_INT(N), OA_INT(K));
}
