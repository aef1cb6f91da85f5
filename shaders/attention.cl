/* Causal attention with grouped KV heads, tiled over keys with an online softmax (flash-attention
 * style): no score matrix larger than one BQ x BKV tile ever exists.
 *
 * A work-group serves one sequence and one KV head, and a block of BQ "rows": row = query * HG +
 * head-in-group (HG = n_heads / n_kv_heads), so the query heads that share a KV head share every
 * K/V tile it loads (decode with grouped KV fills HG rows of a block instead of one).
 *
 * Compile-time: HD (head_dim), BQ (rows per block), BKV (keys per tile), AWG (work-group size).
 * Local memory: Q block [BQ][HD], one K-or-V tile [BKV][HD+1] (padded against bank conflicts),
 * probabilities [BQ][BKV+1], running max / sum / rescale factor per row. Each item owns NR
 * outputs (row, d) of the block in registers. */

#define NR ((BQ * HD + AWG - 1) / AWG)
#define LDK (HD + 1)
#define LDS (BKV + 1)

kernel __attribute__((reqd_work_group_size(AWG, 1, 1))) void attention(
    global const float *q, ulong qo, global const float *k, ulong ko, global const float *v,
    ulong vo, global float *out, ulong oo, int q_len, int kv_len, int n_heads, int n_kv_heads,
    float scale)
{
    local float Qs[BQ * HD];
    local float KV[BKV * LDK];
    local float S[BQ * LDS];
    local float m_s[BQ], l_s[BQ], a_s[BQ];

    const int lid = get_local_id(0);
    const int kvh = get_group_id(1), seq = get_group_id(2);
    const int HG = n_heads / n_kv_heads;
    const int rows = q_len * HG;
    const int r0 = get_group_id(0) * BQ;
    const ulong qrow = (ulong)n_heads * HD, kvrow = (ulong)n_kv_heads * HD;
    q += qo + (ulong)seq * (ulong)q_len * qrow;
    out += oo + (ulong)seq * (ulong)q_len * qrow;
    k += ko + (ulong)seq * (ulong)kv_len * kvrow + (ulong)kvh * HD;
    v += vo + (ulong)seq * (ulong)kv_len * kvrow + (ulong)kvh * HD;

    for (int idx = lid; idx < BQ * HD; idx += AWG) {
        int r = idx / HD, d = idx % HD, row = r0 + r;
        float val = 0.0f;
        if (row < rows)
            val = q[(ulong)(row / HG) * qrow + (ulong)(kvh * HG + row % HG) * HD + d];
        Qs[idx] = val;
    }
    if (lid < BQ) {
        m_s[lid] = -INFINITY;
        l_s[lid] = 0.0f;
    }
    float o[NR];
#pragma unroll
    for (int i = 0; i < NR; i++)
        o[i] = 0.0f;

    /* keys up to the causal limit of the block's last query */
    const int last_row = min(r0 + BQ, rows) - 1;
    const int j_end = kv_len - q_len + last_row / HG + 1;

    for (int j0 = 0; j0 < j_end; j0 += BKV) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int idx = lid; idx < BKV * HD; idx += AWG) {
            int j = idx / HD, d = idx % HD;
            KV[j * LDK + d] = j0 + j < kv_len ? k[(ulong)(j0 + j) * kvrow + d] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int idx = lid; idx < BQ * BKV; idx += AWG) {
            int r = idx / BKV, j = idx % BKV;
            int lim = kv_len - q_len + (r0 + r) / HG;       /* last key this row may see */
            local const float *qr = Qs + r * HD, *kr = KV + j * LDK;
            float s = 0.0f;
            for (int d = 0; d < HD; d++)
                s += qr[d] * kr[d];
            S[r * LDS + j] = j0 + j <= lim && j0 + j < kv_len ? s * scale : -INFINITY;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        /* V tile into the K tile's place while the row owners update the softmax state */
        for (int idx = lid; idx < BKV * HD; idx += AWG) {
            int j = idx / HD, d = idx % HD;
            KV[j * LDK + d] = j0 + j < kv_len ? v[(ulong)(j0 + j) * kvrow + d] : 0.0f;
        }
        if (lid < BQ) {
            local float *sr = S + lid * LDS;
            float m_old = m_s[lid], mx = m_old;
            for (int j = 0; j < BKV; j++)
                mx = fmax(mx, sr[j]);
            /* the first tile always holds key 0, which every row may see: mx is finite */
            float alpha = exp(m_old - mx), sum = 0.0f;
            for (int j = 0; j < BKV; j++) {
                float p = exp(sr[j] - mx);
                sr[j] = p;
                sum += p;
            }
            l_s[lid] = l_s[lid] * alpha + sum;
            m_s[lid] = mx;
            a_s[lid] = alpha;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
        for (int i = 0; i < NR; i++) {
            int idx = lid + i * AWG;
            if (idx < BQ * HD) {
                int r = idx / HD, d = idx % HD;
                local const float *pr = S + r * LDS;
                float acc = o[i] * a_s[r];
                for (int j = 0; j < BKV; j++)
                    acc += pr[j] * KV[j * LDK + d];
                o[i] = acc;
            }
        }
    }

#pragma unroll
    for (int i = 0; i < NR; i++) {
        int idx = lid + i * AWG;
        if (idx < BQ * HD) {
            int r = idx / HD, d = idx % HD, row = r0 + r;
            if (row < rows)
                out[(ulong)(row / HG) * qrow + (ulong)(kvh * HG + row % HG) * HD + d] = o[i] / l_s[r];
        }
    }
}
