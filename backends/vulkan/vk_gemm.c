/* Matrix products: 4-bit weights (repacked at upload), gemm_w4 and the unquantized gemm.
 *
 * Small M (decode) runs a GEMV kernel that streams the weights once. Larger M runs the tiled
 * shared-memory kernel, or on devices with NVIDIA cooperative matrices the tensor-core kernel
 * (gemm_cm.glsl), which also takes small M from tune.cm_min_m rows on with a block of 16..64 rows
 * so that the weights are still read once. All split their work into chunks whose tensor windows
 * fit one storage-buffer binding: rows of X and Y, 8-column blocks of the weight. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "quant/q4.h"
#include "vk_internal.h"

#define GEMV_MAX_M 8
#define CM_BK 32          /* k step of gemm_cm.glsl */

/* ---- 4-bit weights ----------------------------------------------------------------------------- */

/* AutoAWQ word (nibble i = column order[i]) to natural order (nibble c = column c). */
static uint32_t natural(uint32_t src)
{
    uint32_t dst = 0;
    for (int i = 0; i < 8; i++)
        dst |= ((src >> (4 * i)) & 15u) << (4 * AWQ_PACK_ORDER[i]);
    return dst;
}

int awq_vk_w4_create(void *dev, const struct awq_w4_host *s, void **out)
{
    struct vk_dev *d = dev;
    *out = NULL;
    size_t K = (size_t)s->K, N = (size_t)s->N, G = (size_t)s->group_size;
    size_t nb = N / 8, ng = K / G;
    struct vk_w4 *w = calloc(1, sizeof *w);
    if (!w)
        return awq_err_set(d->err, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
    w->K = s->K;
    w->N = s->N;
    w->G = s->group_size;
    w->q_off = 0;
    w->s_off = (nb * K * 4 + 255) & ~(size_t)255;
    w->z_off = (w->s_off + nb * ng * 16 + 255) & ~(size_t)255;
    size_t total = w->z_off + nb * ng * 4;
    unsigned char *host = malloc(total);
    if (!host) {
        free(w);
        return awq_err_set(d->err, AWQ_ERR_OUT_OF_MEMORY, "gemm_w4: no host memory to repack a "
                           "%zux%zu weight", K, N);
    }
    memset(host, 0, total);
    uint32_t *q = (uint32_t *)(host + w->q_off);
    uint16_t *sc = (uint16_t *)(host + w->s_off);
    uint32_t *z = (uint32_t *)(host + w->z_off);
    /* [K][N/8] -> [N/8][K], in blocks so that both sides stay in cache */
    const size_t B = 64;
    for (size_t k0 = 0; k0 < K; k0 += B)
        for (size_t j0 = 0; j0 < nb; j0 += B)
            for (size_t k = k0; k < k0 + B && k < K; k++)
                for (size_t j = j0; j < j0 + B && j < nb; j++)
                    q[j * K + k] = natural((uint32_t)s->qweight[k * nb + j]);
    for (size_t g = 0; g < ng; g++)
        for (size_t j = 0; j < nb; j++) {
            memcpy(sc + (j * ng + g) * 8, s->scales + g * N + 8 * j, 16);
            z[j * ng + g] = natural((uint32_t)s->qzeros[g * nb + j]);
        }
    int st = awq_vk_buf_create(d, total, 0, &w->buf);
    if (st == 0)
        st = awq_vk_write(d, w->buf, 0, host, total);
    free(host);
    if (st < 0) {
        awq_vk_buf_release(d, w->buf);
        free(w);
        return st;
    }
    *out = w;
    return 0;
}

void awq_vk_w4_free(void *dev, void *vw)
{
    struct vk_w4 *w = vw;
    if (!w)
        return;
    awq_vk_buf_release(dev, w->buf);
    free(w);
}

/* ---- gemm_w4 ------------------------------------------------------------------------------------ */

struct w4_push {
    uint32_t K, N, a2, a3, a4, flags;   /* gemv: ncb, col0, M; tiled: M, nc, col0 */
    uint32_t x_off, y_off, q_off, s_off, z_off, b_off, a_off;
    uint32_t ksteps, splits, p_off;     /* tensor cores, split K (see cm_dispatch) */
};

/* GEMV shape: threads per column block (a power of two, at least the vendor's team size) grown
 * while too few threads would run overall and each still reads at least 4 vectors of K. */
static void gemv_shape(const struct vk_dev *d, size_t cols, size_t kvec, uint32_t *wg, uint32_t *kt)
{
    uint32_t k = d->tune.gemv_kt, wg_max = d->max_wg < 256 ? d->max_wg : 256;
    while ((size_t)k * cols < d->tune.gemv_threads && 2 * k <= wg_max && kvec >= (size_t)8 * k)
        k *= 2;
    *kt = k;
    *wg = k > d->tune.gemv_wg ? k : d->tune.gemv_wg;
}

static uint32_t rows_pow2(int M)
{
    uint32_t r = 1;
    while (r < (uint32_t)M)
        r *= 2;
    return r;
}

/* Which kernel runs a product, and its tile: rows of Y per workgroup (bm), columns per workgroup
 * (bn; for the GEMV, 8 per team), threads per workgroup; sgm = subgroups along M (tensor cores). */
enum kernel { K_GEMV, K_TILED, K_COOPMAT };
struct plan {
    enum kernel kind;
    uint32_t wg, bm, bn, kt, sgm, depth;
};

static uint32_t clamp_pow2(uint32_t v, uint32_t lo, uint32_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Tensor-core block: the large one from cm_bm rows, else 16..64 rows (the weight read once);
 * shrunk until the two shared-memory buffers of both tiles and the staging tile fit. */
static void cm_shape(const struct vk_dev *d, int M, int w4, struct plan *p)
{
    const struct vk_tune *t = &d->tune;
    uint32_t bm = clamp_pow2(t->cm_bm, 16, 128), wm = clamp_pow2(t->cm_wm, 1, 8);
    uint32_t bn = clamp_pow2(t->cm_bn, 16, 256), wn = clamp_pow2(t->cm_wn, 1, 8);
    if ((uint32_t)M < bm && M <= 64) {
        bm = rows_pow2(M < 16 ? 16 : M);
        wm = 1;
        bn = clamp_pow2(t->cm_sbn, 16, 256);
        wn = clamp_pow2(t->cm_swn, 1, 8);
    }
    for (;;) {
        wm = wm > bm / 16 ? bm / 16 : wm;
        wn = wn > bn / 16 ? bn / 16 : wn;
        size_t a = 2 * (size_t)bm * (CM_BK + 8) * 2;
        size_t b = w4 ? 2 * (size_t)CM_BK * (bn + 8) * 2 : 2 * (size_t)bn * (CM_BK + 8) * 2;
        size_t bytes = a + b + (size_t)wm * wn * 1024;
        if ((bytes <= d->shared_max && 32 * wm * wn <= d->max_wg) || (bm <= 16 && bn <= 16))
            break;
        if (bn >= bm && bn > 16)
            bn /= 2;
        else
            bm /= 2;
    }
    p->bm = bm;
    p->bn = bn;
    p->sgm = wm;
    p->wg = 32 * wm * wn;
    p->kt = 0;
    p->depth = 2;   /* tiles fetched two steps ahead (the shader also does one) */
}

static struct plan choose_kernel(const struct vk_dev *d, int M, size_t cols, size_t kvec, int w4)
{
    const struct vk_tune *t = &d->tune;
    struct plan p = { 0 };
    uint32_t cm_min = t->cm_min_m ? t->cm_min_m : GEMV_MAX_M + 1;
    if (d->coopmat && (uint32_t)M >= (cm_min < GEMV_MAX_M + 1 ? cm_min : GEMV_MAX_M + 1)) {
        p.kind = K_COOPMAT;
        cm_shape(d, M, w4, &p);
    } else if (M <= GEMV_MAX_M) {
        p.kind = K_GEMV;
        gemv_shape(d, cols, kvec, &p.wg, &p.kt);
        p.bm = GEMV_MAX_M;
        p.bn = 8 * (p.wg / p.kt);
    } else {
        p.kind = K_TILED;
        p.wg = (t->bm / t->tm) * (t->bn / t->tn);
        p.bm = t->bm;
        p.bn = t->bn;
        p.kt = 0;
    }
    return p;
}

/* Tensor-core dispatch of an mc x nc block of Y over K. Small M (one row of blocks of at most 64
 * rows) gives too few workgroups to keep enough weight loads in flight, so K is split among up to
 * 8 workgroups per block (while fewer than 8 per compute unit would run, each split keeps at least
 * 16 steps of CM_BK, and the partial products' traffic stays below the 4-bit weight's bytes): they
 * write fp32 partial products to the scratch buffer, and a second dispatch of the same shader
 * (MODE 2) adds them in a fixed order and stores Y. On the H100, 8192 x 28672 at M = 8: 260 us
 * unsplit, 188 us in 2, 173 us in 8; 4096 x 11008: 124 us unsplit, 70 us in 2, 51 us in 8.
 * `tail` points at the push constants' ksteps, splits, p_off; args[pbind] is the scratch window.
 * spec[9] is the mode. */
static int cm_dispatch(struct vk_dev *d, int shader, uint32_t *spec, struct vk_arg *args, int n_args,
                       int pbind, void *pc, size_t pc_size, uint32_t *tail, const struct plan *pl,
                       size_t K, size_t mc, size_t nc, int *first)
{
    uint32_t gx = (uint32_t)vk_div_up(nc, pl->bn), gy = (uint32_t)vk_div_up(mc, pl->bm);
    size_t nk = vk_div_up(K, CM_BK), groups = (size_t)gx * gy;
    size_t cus = d->ph->info.compute_units > 0 ? (size_t)d->ph->info.compute_units : 1;
    uint32_t s = 1;
    while (mc <= 64 && 2 * s <= 8 && groups * s < 8 * cus && nk / (2 * s) >= 16 && 2 * s * mc * 16 <= K &&
           2 * s * mc * nc * 4 <= d->max_range && vk_div_up(mc * nc, pl->wg) <= d->max_groups[0] &&
           2 * s <= d->max_groups[2])
        s *= 2;
    tail[0] = (uint32_t)vk_div_up(nk, s);
    tail[1] = (uint32_t)vk_div_up(nk, tail[0]);
    tail[2] = 0;
    args[pbind] = args[1];   /* unused unless split: any valid window */
    if (tail[1] <= 1) {
        spec[9] = 0;
        return awq_vk_dispatch(d, shader, spec, 10, args, n_args, pc, pc_size, gx, gy, 1);
    }
    struct vk_buf *scr;
    VK_TRY(awq_vk_scratch(d, tail[1] * mc * nc * 4, &scr));
    VK_TRY(awq_vk_window(d, scr, 0, tail[1] * mc * nc * 4, 4, &args[pbind], &tail[2]));
    /* an earlier chunk's sum may still be reading the scratch window */
    if (!*first)
        VK_TRY(awq_vk_barrier(d));
    *first = 0;
    spec[9] = 1;
    VK_TRY(awq_vk_dispatch(d, shader, spec, 10, args, n_args, pc, pc_size, gx, gy, tail[1]));
    spec[9] = 2;
    return awq_vk_dispatch(d, shader, spec, 10, args, n_args, pc, pc_size,
                           (uint32_t)vk_div_up(mc * nc, pl->wg), 1, 1);
}

int awq_vk_gemm_w4(void *dev, const struct awq_gemm_w4_args *a)
{
    struct vk_dev *d = dev;
    const struct vk_w4 *w = a->w->impl;
    const struct vk_tune *t = &d->tune;
    size_t K = (size_t)w->K, N = (size_t)w->N, G = (size_t)w->G, M = (size_t)a->M;
    size_t ng = K / G, nb = N / 8;
    size_t xes = awq_dtype_size(a->x_type), yes = awq_dtype_size(a->y_type);
    uint32_t xf16 = a->x_type == AWQ_DTYPE_F16, yf16 = a->y_type == AWQ_DTYPE_F16;
    uint32_t flags = (a->bias.buf ? 1u : 0u) | (a->act_scale.buf ? 2u : 0u);
    struct plan pl = choose_kernel(d, a->M, nb, K / 4, 1);
    /* row chunk: X and Y windows */
    size_t rm = vk_min(awq_vk_rows_fit(d, K * xes), awq_vk_rows_fit(d, N * yes));
    rm = vk_min(rm, (size_t)(pl.kind == K_GEMV ? 1 : d->max_groups[1]) * pl.bm);
    /* column-block chunk: the weight's three regions */
    size_t cb = vk_min(awq_vk_rows_fit(d, K * 4), vk_min(awq_vk_rows_fit(d, ng * 16), awq_vk_rows_fit(d, ng * 4)));
    cb = vk_min(cb, (size_t)d->max_groups[0] * (pl.bn / 8));
    if (rm == 0 || cb == 0)
        return awq_err_set(d->err, AWQ_ERR_UNSUPPORTED, "gemm_w4: a row of %zu or %zu bytes exceeds "
                           "the device's storage-buffer range", K * xes, N * yes);

    uint32_t spec[10];
    int n_spec, shader;
    if (pl.kind == K_GEMV) {
        shader = VKS_GEMV_W4;
        uint32_t s[] = { pl.wg, pl.kt, rows_pow2(a->M), xf16, yf16, (uint32_t)G };
        n_spec = 6;
        memcpy(spec, s, sizeof s);
    } else if (pl.kind == K_COOPMAT) {
        shader = VKS_GEMM_W4_CM;
        uint32_t s[] = { pl.wg, xf16, 0, yf16, (uint32_t)G, pl.bm, pl.bn, pl.sgm, pl.depth, 0 };
        n_spec = 10;
        memcpy(spec, s, sizeof s);
    } else {
        shader = VKS_GEMM_W4;
        uint32_t bk = t->bk < G ? t->bk : (uint32_t)G;
        uint32_t s[] = { pl.wg, t->bm, t->bn, bk, t->tm, t->tn, xf16, 0, yf16, (uint32_t)G };
        n_spec = 10;
        memcpy(spec, s, sizeof s);
    }
    /* the GEMV and the tensor-core kernel read the packed weight as uvec4, the tiled one as uint */
    size_t q_elem = pl.kind == K_TILED ? 4 : 16;
    VK_TRY(awq_vk_op_begin(d));
    struct vk_arg args[8];
    struct w4_push pc = { 0 };
    int first = 1;
    VK_TRY(awq_vk_window_opt(d, a->bias, N * 4, 4, &args[5], &pc.b_off));
    VK_TRY(awq_vk_window_opt(d, a->act_scale, K * 4, 4, &args[6], &pc.a_off));
    for (size_t m0 = 0; m0 < M; m0 += rm) {
        size_t mc = vk_min(rm, M - m0);
        VK_TRY(awq_vk_window(d, vk_tbuf(a->x), a->x.off + m0 * K * xes, a->x.off + (m0 + mc) * K * xes,
                             xes, &args[0], &pc.x_off));
        VK_TRY(awq_vk_window(d, vk_tbuf(a->y), a->y.off + m0 * N * yes, a->y.off + (m0 + mc) * N * yes,
                             yes, &args[1], &pc.y_off));
        for (size_t j0 = 0; j0 < nb; j0 += cb) {
            size_t jc = vk_min(cb, nb - j0);
            VK_TRY(awq_vk_window(d, w->buf, w->q_off + j0 * K * 4, w->q_off + (j0 + jc) * K * 4, q_elem,
                                 &args[2], &pc.q_off));
            VK_TRY(awq_vk_window(d, w->buf, w->s_off + j0 * ng * 16, w->s_off + (j0 + jc) * ng * 16, 2,
                                 &args[3], &pc.s_off));
            VK_TRY(awq_vk_window(d, w->buf, w->z_off + j0 * ng * 4, w->z_off + (j0 + jc) * ng * 4, 4,
                                 &args[4], &pc.z_off));
            pc.K = (uint32_t)K;
            pc.N = (uint32_t)N;
            pc.flags = flags;
            if (pl.kind == K_GEMV) {
                pc.a2 = (uint32_t)jc;
                pc.a3 = (uint32_t)(8 * j0);
                pc.a4 = (uint32_t)mc;
            } else {
                pc.a2 = (uint32_t)mc;
                pc.a3 = (uint32_t)(8 * jc);
                pc.a4 = (uint32_t)(8 * j0);
            }
            if (pl.kind == K_COOPMAT) {
                VK_TRY(cm_dispatch(d, shader, spec, args, 8, 7, &pc, sizeof pc, &pc.ksteps, &pl, K, mc,
                                   8 * jc, &first));
                continue;
            }
            VK_TRY(awq_vk_dispatch(d, shader, spec, n_spec, args, 7, &pc, sizeof pc,
                                   (uint32_t)vk_div_up(8 * jc, pl.bn), (uint32_t)vk_div_up(mc, pl.bm), 1));
        }
    }
    return awq_vk_op_end(d);
}

/* ---- unquantized gemm ------------------------------------------------------------------------- */

struct f_push {
    uint32_t K, N, a2, a3, a4, flags;   /* gemv: nc, col0, M; tiled: M, nc, col0 */
    uint32_t x_off, y_off, w_off, b_off;
    uint32_t ksteps, splits, p_off;     /* tensor cores, split K (see cm_dispatch) */
};

struct fv_push {
    uint32_t K, N, nc, col0, M, flags;
    uint32_t x_off, w_off, y_off, b_off;
};

int awq_vk_gemm(void *dev, const struct awq_gemm_args *a)
{
    struct vk_dev *d = dev;
    const struct vk_tune *t = &d->tune;
    size_t K = (size_t)a->K, N = (size_t)a->N, M = (size_t)a->M;
    size_t xes = awq_dtype_size(a->x_type), wes = awq_dtype_size(a->w_type), yes = awq_dtype_size(a->y_type);
    uint32_t xf16 = a->x_type == AWQ_DTYPE_F16, wf16 = a->w_type == AWQ_DTYPE_F16,
             yf16 = a->y_type == AWQ_DTYPE_F16;
    uint32_t flags = a->bias.buf ? 1u : 0u;
    struct plan pl = choose_kernel(d, a->M, N, K, 0);
    size_t per_team = pl.kind == K_GEMV ? pl.wg / pl.kt : pl.bn;   /* columns per workgroup */
    size_t rm = vk_min(awq_vk_rows_fit(d, K * xes), awq_vk_rows_fit(d, N * yes));
    rm = vk_min(rm, (size_t)(pl.kind == K_GEMV ? 1 : d->max_groups[1]) * pl.bm);
    size_t nc_fit = vk_min(awq_vk_rows_fit(d, K * wes), (size_t)d->max_groups[0] * per_team);
    if (rm == 0 || nc_fit == 0)
        return awq_err_set(d->err, AWQ_ERR_UNSUPPORTED, "gemm: a row of %zu, %zu or %zu bytes exceeds "
                           "the device's storage-buffer range", K * xes, K * wes, N * yes);
    VK_TRY(awq_vk_op_begin(d));
    struct vk_arg args[4];
    uint32_t b_off;
    int first = 1;
    VK_TRY(awq_vk_window_opt(d, a->bias, N * 4, 4, &args[3], &b_off));
    for (size_t m0 = 0; m0 < M; m0 += rm) {
        size_t mc = vk_min(rm, M - m0);
        uint32_t x_off, y_off, w_off;
        VK_TRY(awq_vk_window(d, vk_tbuf(a->x), a->x.off + m0 * K * xes, a->x.off + (m0 + mc) * K * xes,
                             xes, &args[0], &x_off));
        struct vk_arg yarg;
        VK_TRY(awq_vk_window(d, vk_tbuf(a->y), a->y.off + m0 * N * yes, a->y.off + (m0 + mc) * N * yes,
                             yes, &yarg, &y_off));
        for (size_t n0 = 0; n0 < N; n0 += nc_fit) {
            size_t nc = vk_min(nc_fit, N - n0);
            struct vk_arg warg;
            VK_TRY(awq_vk_window(d, vk_tbuf(a->w), a->w.off + n0 * K * wes, a->w.off + (n0 + nc) * K * wes,
                                 wes, &warg, &w_off));
            uint32_t gx = (uint32_t)vk_div_up(nc, per_team), gy = (uint32_t)vk_div_up(mc, pl.bm);
            if (pl.kind == K_GEMV) {
                struct vk_arg ga[4] = { args[0], warg, yarg, args[3] };
                struct fv_push pc = { (uint32_t)K, (uint32_t)N, (uint32_t)nc, (uint32_t)n0, (uint32_t)mc,
                                      flags, x_off, w_off, y_off, b_off };
                uint32_t spec[] = { pl.wg, pl.kt, rows_pow2(a->M), xf16, wf16, yf16 };
                VK_TRY(awq_vk_dispatch(d, VKS_GEMV_F, spec, 6, ga, 4, &pc, sizeof pc, gx, 1, 1));
                continue;
            }
            struct vk_arg ga[4] = { args[0], yarg, warg, args[3] };
            struct f_push pc = { (uint32_t)K, (uint32_t)N, (uint32_t)mc, (uint32_t)nc, (uint32_t)n0,
                                 flags, x_off, y_off, w_off, b_off, 0, 0, 0 };
            if (pl.kind == K_COOPMAT) {
                uint32_t spec[] = { pl.wg, xf16, wf16, yf16, 128, pl.bm, pl.bn, pl.sgm, pl.depth, 0 };
                struct vk_arg ca[5] = { args[0], yarg, warg, args[3], yarg };
                VK_TRY(cm_dispatch(d, VKS_GEMM_F_CM, spec, ca, 5, 4, &pc, sizeof pc, &pc.ksteps, &pl, K, mc,
                                   nc, &first));
            } else {
                uint32_t spec[] = { pl.wg, t->bm, t->bn, t->bk, t->tm, t->tn, xf16, wf16, yf16, 128 };
                VK_TRY(awq_vk_dispatch(d, VKS_GEMM_F, spec, 10, ga, 4, &pc, sizeof pc, gx, gy, 1));
            }
        }
    }
    return awq_vk_op_end(d);
}
