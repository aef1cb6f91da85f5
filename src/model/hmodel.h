/* A Llama-family model as tensors in host memory (memory-mapped safetensors, or arrays built in
 * memory by the demo): where each weight is, validated against the config. */
#ifndef AWQ_MODEL_HMODEL_H
#define AWQ_MODEL_HMODEL_H

#include "format/safetensors.h"
#include "model/config.h"

enum awq_lin {
    AWQ_LIN_Q, AWQ_LIN_K, AWQ_LIN_V, AWQ_LIN_O, AWQ_LIN_GATE, AWQ_LIN_UP, AWQ_LIN_DOWN, AWQ_LIN_COUNT
};

/* "self_attn.q_proj" ... "mlp.down_proj" */
extern const char *const awq_lin_names[AWQ_LIN_COUNT];

struct awq_hlinear {
    int in, out;
    const struct awq_st_tensor *w;                          /* unquantized [out, in], or NULL */
    const struct awq_st_tensor *qweight, *qzeros, *scales;  /* AWQ GEMM, or NULL */
    const struct awq_st_tensor *bias;                       /* [out] or NULL */
};

struct awq_hlayer {
    const struct awq_st_tensor *ln1, *ln2;
    struct awq_hlinear lin[AWQ_LIN_COUNT];
};

struct awq_hmodel {
    struct awq_model_config cfg;
    struct awq_safetensors *st;        /* NULL for an in-memory model */
    const struct awq_st_tensor *embed, *norm, *lm_head;   /* lm_head == embed when tied */
    struct awq_hlayer *layers;
};

/* Opens a model directory: config.json, safetensors (single or sharded); checks every tensor the
 * architecture needs exists with the right shape and dtype. */
int awq_hmodel_open(const char *dir, struct awq_hmodel **out, struct awq_errbuf *err);
/* Checks and indexes tensors looked up by name through `find` (used for in-memory models too). */
typedef const struct awq_st_tensor *(*awq_tensor_lookup)(void *user, const char *name);
int awq_hmodel_bind(struct awq_hmodel *m, awq_tensor_lookup find, void *user, struct awq_errbuf *err);
void awq_hmodel_close(struct awq_hmodel *m);

/* Input/output width of each linear kind for this config. */
void awq_lin_shape(const struct awq_model_config *c, enum awq_lin k, int *in, int *out);
/* "model.layers.<i>.<name>" */
void awq_lin_prefix(int layer, enum awq_lin k, char *out, size_t n);
/* The linear's weight as fp32 [out, in] (dequantizing an AWQ linear). */
int awq_hlinear_f32(const struct awq_hlinear *l, int group_size, float *w, struct awq_errbuf *err);

#endif
