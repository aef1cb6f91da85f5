/* AWQ on one decoder block: record the block's linear inputs on the calibration tokens, search the
 * per-channel scales (auto_scale) and the clipping ranges (auto_clip), fold the scales into the
 * previous ops, quantize; and the round-to-nearest baseline. All heavy work runs on the device
 * through backend ops; the search decisions and the final quantization run on the host, so the
 * integers do not depend on the backend beyond rounding ties. */
#ifndef AWQ_QUANT_AWQ_LAYER_H
#define AWQ_QUANT_AWQ_LAYER_H

#include "awq.h"
#include "model/forward.h"

enum awq_scale_group { AWQ_GRP_QKV, AWQ_GRP_VO, AWQ_GRP_GATE_UP, AWQ_GRP_DOWN, AWQ_GRP_COUNT };

extern const char *const awq_group_names[AWQ_GRP_COUNT];

struct awq_group_report {
    int searched;            /* 0: skipped (not quantized, or grouped KV heads for v→o) */
    float ratio;             /* chosen ratio r (s = mean|x|^r, normalised) */
    double loss_rtn;         /* sub-block output MSE with plain rounding (r = 0) */
    double loss_best;        /* ... with the chosen scales */
};

struct awq_layer_report {
    struct awq_group_report grp[AWQ_GRP_COUNT];
    int quantized[AWQ_LIN_COUNT];
    int packed[AWQ_LIN_COUNT];
    float clip_mean[AWQ_LIN_COUNT];    /* mean chosen shrink factor (1 = no clipping) */
    float clip_frac[AWQ_LIN_COUNT];    /* fraction of groups clipped */
    double err_rtn, err_awq;           /* block output MSE vs the full-precision block */
    double out_power;                  /* mean square of the full-precision block output */
    double seconds;
    double t_load, t_record, t_scales, t_clip, t_finish;   /* seconds per phase */
};

/* The quantized result of one linear. */
struct awq_qlinear {
    int in, out, quantized;
    int packed;                        /* quantized and stored packed (needs out % 8 == 0) */
    int32_t *qweight, *qzeros;         /* packed AutoAWQ GEMM (quantized) */
    uint16_t *scales;
    float *w;                          /* final fp32 weight [out, in]: unquantized, or the
                                          dequantized 4-bit values of a linear that cannot be packed */
    float *bias;                       /* [out] or NULL */
};

struct awq_qlayer {
    float *ln1, *ln2;                  /* after folding the scales */
    struct awq_qlinear lin[AWQ_LIN_COUNT];
    struct awq_layer_report rep;
};

void awq_qlayer_free(struct awq_qlayer *q);

/* Device state shared by the layers: the hidden states of the calibration tokens and the recorded
 * inputs, sized for T = n_seq * seqlen tokens. */
struct awq_calib_state {
    struct awq_device *dev;
    const struct awq_model_config *cfg;
    int n_seq, seqlen, T;
    awq_buffer *h, *h_in, *h_tmp;      /* [T, hidden] */
    awq_buffer *x1, *att, *x2, *act, *attn_out, *mlp_out;
    struct awq_fwd fwd;
};

int awq_calib_state_init(struct awq_calib_state *s, struct awq_device *dev, const struct awq_model_config *cfg,
                         int n_seq, int seqlen);
void awq_calib_state_free(struct awq_calib_state *s);
/* Embeds the calibration ids (n_seq * seqlen) into s->h: the first block's input. */
int awq_calib_state_embed(struct awq_calib_state *s, const struct awq_hmodel *hm, const int32_t *ids);

/* Whether a linear is quantized with group size G: its input width must be a multiple of G
 * (DESIGN.md). Packing into the AutoAWQ GEMM layout also needs the output width to be a multiple
 * of 8; a quantized linear that is not is stored as its dequantized 4-bit values. */
int awq_lin_quantizable(const struct awq_model_config *cfg, int in, int out, int G);

/* Runs AWQ (or RTN when opt->method is RTN) on `layer`: on return s->h holds the block's
 * full-precision output (the next block's input). With s == NULL (RTN without calibration) the
 * weights are only rounded. */
int awq_layer_run(struct awq_calib_state *s, const struct awq_hmodel *hm, int layer,
                  const awq_quantize_options *opt, struct awq_qlayer *out, struct awq_errbuf *err);

/* All blocks of a model (calibration ids: n_blocks blocks of opt->seqlen tokens, or NULL for RTN
 * without calibration) into ql[n_layers]; logs a line per block and reports progress. */
int awq_quantize_layers(struct awq_device *dev, const struct awq_hmodel *hm, const int32_t *ids, int n_blocks,
                        const awq_quantize_options *o, struct awq_qlayer *ql);

#endif
