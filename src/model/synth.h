/* A small Llama-shaped model built in memory from a seed, with planted outlier activation channels:
 * a few RMSNorm weights are scaled up and the matching input columns of the following linears
 * scaled down by the same factor (likewise v→o and up→down), which leaves the function unchanged
 * but gives the activations the few large channels real LLMs have — the property AWQ exploits.
 * Used by `awq demo` and the tests. */
#ifndef AWQ_MODEL_SYNTH_H
#define AWQ_MODEL_SYNTH_H

#include <stdint.h>

#include "model/hmodel.h"

struct awq_synth_params {
    int hidden, intermediate, n_layers, n_heads, n_kv_heads, vocab;
    int n_outliers;          /* outlier channels per scaled group */
    float outlier_scale;     /* their factor (e.g. 30) */
    uint64_t seed;
};

void awq_synth_defaults(struct awq_synth_params *p);

struct awq_synth {
    struct awq_hmodel hm;    /* tensors point into this object */
    struct awq_st_tensor *tensors;
    float **data;
    char **names;
    int n;
};

int awq_synth_create(const struct awq_synth_params *p, struct awq_synth **out, struct awq_errbuf *err);
void awq_synth_free(struct awq_synth *s);
/* n random token ids in [3, vocab) after a BOS of 1 at the start of every block of seqlen. */
void awq_synth_tokens(uint64_t seed, int vocab, int n_blocks, int seqlen, int32_t *ids);

#endif
