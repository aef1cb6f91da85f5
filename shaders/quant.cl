/* Ops of calibration and the AWQ searches: activation statistics, pseudo-quantization, the clip
 * search error table, the squared-error reduction and column scaling.
 *
 * Quantization arithmetic follows src/quant/q4.h exactly (fp32, rint = round half to even); the
 * host builds with -cl-fp32-correctly-rounded-divide-sqrt where the device offers it, so v / scale
 * rounds as it does on the CPU.
 *
 * Parameters: RED_WG (reduction work-group, power of two), ST_C x ST_S (act_stats: items of 4
 * channels x row slices per work-group), CS_N x CS_T (clip_search: output channels x token slices). */

float q4_scale(float mn, float mx)
{
    float r = mx - mn;
    return (r > 1e-5f ? r : 1e-5f) / 15.0f;
}

float q4_clamp15(float v)
{
    return v < 0.0f ? 0.0f : (v > 15.0f ? 15.0f : v);
}

/* ---- act_stats: an item owns 4 adjacent channels (one 8- or 16-byte load per row) of a slice of
 * the rows, loading ST_U rows ahead; the ST_S slices of a channel are combined in a fixed order and
 * ADDED to the accumulators (max: maximum). --------------------------------------------------- */

/* Channels c..c+3 of row t as |x| (zeros past C). */
#define ST_U 8

float4 stats_row(global const uchar *x, ulong xo, int x_f16, int t, int C, int c)
{
    ulong base = xo + (ulong)t * (ulong)C + (ulong)c;
    if (c + 3 < C)
        return fabs(ld4(x, base, x_f16));
    float4 v = (float4)(0.0f);
    if (c < C)
        v.x = ld1(x, base, x_f16);
    if (c + 1 < C)
        v.y = ld1(x, base + 1, x_f16);
    if (c + 2 < C)
        v.z = ld1(x, base + 2, x_f16);
    return fabs(v);
}

kernel __attribute__((reqd_work_group_size(ST_C, ST_S, 1))) void act_stats(
    global const uchar *x, ulong xo, int x_f16, global float *sum_abs, ulong sao, int has_sa,
    global float *max_abs, ulong mao, int has_ma, global float *sum_sq, ulong sqo, int has_sq,
    int T, int C)
{
    local acc_t ra[ST_S * ST_C * 4], rq[ST_S * ST_C * 4];
    local float rm[ST_S * ST_C * 4];
    const int lc = get_local_id(0), s = get_local_id(1);
    const int c = (get_group_id(0) * ST_C + lc) * 4;
    acc_t sa[4] = { 0, 0, 0, 0 }, sq[4] = { 0, 0, 0, 0 };
    float mx[4] = { 0.0f, 0.0f, 0.0f, 0.0f };
    if (c < C) {
        for (int t0 = s; t0 < T; t0 += ST_U * ST_S) {
            float4 v[ST_U];
#pragma unroll
            for (int u = 0; u < ST_U; u++) {
                int t = t0 + u * ST_S;
                v[u] = t < T ? stats_row(x, xo, x_f16, t, C, c) : (float4)(0.0f);
            }
            /* the ST_U rows in fp32, then into the (double) accumulators: fp64 arithmetic per
             * element made this kernel compute-bound on GPUs with slow fp64 conversions */
            float4 ba = (float4)(0.0f), bq = (float4)(0.0f), bm = (float4)(0.0f);
#pragma unroll
            for (int u = 0; u < ST_U; u++) {
                ba += v[u];
                bq = fma(v[u], v[u], bq);
                bm = fmax(bm, v[u]);
            }
            float e[4] = { ba.x, ba.y, ba.z, ba.w }, f[4] = { bq.x, bq.y, bq.z, bq.w };
            float g[4] = { bm.x, bm.y, bm.z, bm.w };
#pragma unroll
            for (int i = 0; i < 4; i++) {
                sa[i] += (acc_t)e[i];
                sq[i] += (acc_t)f[i];
                mx[i] = fmax(mx[i], g[i]);
            }
        }
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        ra[(s * ST_C + lc) * 4 + i] = sa[i];
        rq[(s * ST_C + lc) * 4 + i] = sq[i];
        rm[(s * ST_C + lc) * 4 + i] = mx[i];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (s != 0)
        return;
    for (int i = 0; i < 4; i++) {
        int ch = c + i;
        if (ch >= C)
            break;
        acc_t a = 0, q = 0;
        float m = 0.0f;
        for (int j = 0; j < ST_S; j++) {           /* fixed order: deterministic */
            a += ra[(j * ST_C + lc) * 4 + i];
            q += rq[(j * ST_C + lc) * 4 + i];
            m = fmax(m, rm[(j * ST_C + lc) * 4 + i]);
        }
        if (has_sa)
            sum_abs[sao + ch] += (float)a;
        if (has_sq)
            sum_sq[sqo + ch] += (float)q;
        if (has_ma)
            max_abs[mao + ch] = fmax(max_abs[mao + ch], m);
    }
}

/* ---- pseudo_quant: one item per group of G consecutive values (groups never straddle rows,
 * since K % G == 0). out may equal w: each item reads its group before writing it. ------------ */
kernel void pseudo_quant(global const float *w, ulong wo, global const float *s, ulong so,
                         int has_s, global float *out, ulong oo, int K, int G, ulong n_groups)
{
    ulong gi = get_global_id(0);
    if (gi >= n_groups)
        return;
    ulong base = gi * (ulong)G;
    int k0 = (int)(base % (ulong)K);
    global const float *wg = w + wo + base;
    global const float *sg = s + so + k0;
    global float *og = out + oo + base;
    float mn = INFINITY, mx = -INFINITY;
    for (int i = 0; i < G; i++) {
        float v = has_s ? wg[i] * sg[i] : wg[i];
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
    }
    float scale = q4_scale(mn, mx), zero = q4_clamp15(-rint(mn / scale));
    for (int i = 0; i < G; i++) {
        float v = has_s ? wg[i] * sg[i] : wg[i];
        float d = (q4_clamp15(rint(v / scale) + zero) - zero) * scale;
        og[i] = has_s ? d / sg[i] : d;
    }
}

/* ---- clip_search: work-group = CS_N output channels x CS_T token slices, for one group g; one
 * launch per shrink factor (index si of the error table). The error dw = ĉ - w of the clipped and
 * requantized weights of the CS_N channels sits in local memory; tiles of CS_T*4 token rows of x
 * (the group's G columns) are staged in local memory too, and each item accumulates (Σ_k x·dw)²
 * over the rows of its slice. ----------------------------------------------------------------- */
#define CS_ROWS (CS_T * 4)

kernel __attribute__((reqd_work_group_size(CS_N, CS_T, 1))) void clip_search(
    global const float *w, ulong wo, global const float *x, ulong xo, global float *err, ulong eo,
    float shrink, int si, int N, int K, int G, int T, local float *dw, local float *xs)
{
    local acc_t red[CS_T * CS_N];
    const int ln = get_local_id(0), ts = get_local_id(1);
    const int n = get_group_id(0) * CS_N + ln, g = get_group_id(1);
    const int ng = K / G, ldw = G + 1;

    /* dw for channel n (one item per channel; G is small next to the token loop) */
    if (ts == 0) {
        if (n < N) {
            global const float *wg = w + wo + (ulong)n * (ulong)K + (ulong)g * (ulong)G;
            float amax = 0.0f;
            for (int i = 0; i < G; i++)
                amax = fabs(wg[i]) > amax ? fabs(wg[i]) : amax;
            float m = amax * shrink;
            float mn = INFINITY, mx = -INFINITY;
            for (int i = 0; i < G; i++) {
                float c = wg[i] < -m ? -m : (wg[i] > m ? m : wg[i]);
                mn = c < mn ? c : mn;
                mx = c > mx ? c : mx;
            }
            float scale = q4_scale(mn, mx), zero = q4_clamp15(-rint(mn / scale));
            for (int i = 0; i < G; i++) {
                float c = wg[i] < -m ? -m : (wg[i] > m ? m : wg[i]);
                dw[ln * ldw + i] = (q4_clamp15(rint(c / scale) + zero) - zero) * scale - wg[i];
            }
        } else {
            for (int i = 0; i < G; i++)
                dw[ln * ldw + i] = 0.0f;
        }
    }

    const int lid = ts * CS_N + ln;
    acc_t e = 0;
    for (int t0 = 0; t0 < T; t0 += CS_ROWS) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int idx = lid; idx < CS_ROWS * G; idx += CS_N * CS_T) {
            int r = idx / G, k = idx % G, t = t0 + r;
            xs[r * G + k] = t < T ? x[xo + (ulong)t * (ulong)K + (ulong)g * (ulong)G + (ulong)k] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        float p0 = 0.0f, p1 = 0.0f, p2 = 0.0f, p3 = 0.0f;
        local const float *d = dw + ln * ldw;
        local const float *x0 = xs + (ts) * G, *x1 = xs + (ts + CS_T) * G;
        local const float *x2 = xs + (ts + 2 * CS_T) * G, *x3 = xs + (ts + 3 * CS_T) * G;
        for (int k = 0; k < G; k++) {
            float dk = d[k];
            p0 += x0[k] * dk;
            p1 += x1[k] * dk;
            p2 += x2[k] * dk;
            p3 += x3[k] * dk;
        }
        e += (acc_t)p0 * p0 + (acc_t)p1 * p1 + (acc_t)p2 * p2 + (acc_t)p3 * p3;
    }
    red[ts * CS_N + ln] = e;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (ts == 0 && n < N) {
        for (int i = 1; i < CS_T; i++)
            e += red[i * CS_N + ln];
        err[eo + ((ulong)si * (ulong)N + (ulong)n) * (ulong)ng + (ulong)g] = (float)e;
    }
}

/* ---- sq_err: pass 1 gives one partial per work-group over a fixed chunk, pass 2 adds the
 * partials in a fixed tree; the result depends only on n and the device's parameters. --------- */
kernel __attribute__((reqd_work_group_size(RED_WG, 1, 1))) void sq_err_partial(
    global const float *a, ulong ao, global const float *b, ulong bo, ulong n, ulong chunk,
    global acc_t *part)
{
    local acc_t red[RED_WG];
    const int lid = get_local_id(0);
    ulong lo = (ulong)get_group_id(0) * chunk, hi = lo + chunk < n ? lo + chunk : n;
    acc_t s = 0;
    for (ulong i = lo + (ulong)lid; i < hi; i += RED_WG) {
        acc_t d = (acc_t)a[ao + i] - (acc_t)b[bo + i];
        s += d * d;
    }
    s = wg_sum(red, s, lid, RED_WG);
    if (lid == 0)
        part[get_group_id(0)] = s;
}

kernel __attribute__((reqd_work_group_size(RED_WG, 1, 1))) void sq_err_final(
    global const acc_t *part, int n_part, global float *out, ulong oo)
{
    local acc_t red[RED_WG];
    const int lid = get_local_id(0);
    acc_t s = 0;
    for (int i = lid; i < n_part; i += RED_WG)
        s += part[i];
    s = wg_sum(red, s, lid, RED_WG);
    if (lid == 0)
        out[oo] = (float)s;
}

/* ---- scale_cols: x[t, c] *= s[c] (or /=) --------------------------------------------------- */
kernel void scale_cols(global float *x, ulong xo, global const float *s, ulong so, int T, int C,
                       int divide)
{
    const int c = get_global_id(0), t = get_global_id(1);
    if (c >= C || t >= T)
        return;
    global float *p = x + xo + (ulong)t * (ulong)C + (ulong)c;
    float sv = s[so + c];
    *p = divide ? *p / sv : *p * sv;
}
