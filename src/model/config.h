/* config.json of a Hugging Face Llama-family model (Llama 1/2/3, TinyLlama, Mistral, Qwen2,
 * SmolLM), plus the AWQ quantization config when the model is an AWQ checkpoint. Unsupported
 * architectures and fields are refused with a message naming them, never guessed. */
#ifndef AWQ_MODEL_CONFIG_H
#define AWQ_MODEL_CONFIG_H

#include <stddef.h>

#include "util/error.h"

enum awq_rope_kind { AWQ_ROPE_DEFAULT = 0, AWQ_ROPE_LINEAR, AWQ_ROPE_LLAMA3 };

#define AWQ_MAX_NOT_CONVERT 64

struct awq_model_config {
    char arch[64];               /* "LlamaForCausalLM" ... */
    char model_type[32];         /* "llama", "mistral", "qwen2" */
    int hidden, intermediate, n_layers, n_heads, n_kv_heads, head_dim, vocab, max_pos;
    float rms_eps, rope_theta;
    int tie_embeddings, qkv_bias, o_bias, mlp_bias;
    enum awq_rope_kind rope_kind;
    float rope_factor, rope_low_freq, rope_high_freq;
    int rope_orig_max_pos;
    int sliding_window;          /* 0 = none */
    int bos_id, eos_id;          /* -1 when absent */
    char torch_dtype[16];
    /* AWQ checkpoint facts (quantized == 0 for an unquantized model) */
    int quantized, group_size;
    int n_not_convert;
    char not_convert[AWQ_MAX_NOT_CONVERT][96];
};

/* Parses <dir>/config.json (and <dir>/quant_config.json of old AutoAWQ checkpoints). */
int awq_config_load(const char *dir, struct awq_model_config *cfg, struct awq_errbuf *err);
/* The same from JSON text (for tests); `origin` names it in messages. */
int awq_config_parse(const char *json, size_t len, const char *origin, struct awq_model_config *cfg,
                     struct awq_errbuf *err);
/* inv_freq[i] for i < head_dim/2, with the configured rope scaling. */
void awq_config_inv_freq(const struct awq_model_config *cfg, float *inv_freq);
/* True when linear `name` (e.g. "model.layers.3.mlp.down_proj") is listed in
 * modules_to_not_convert (a listed entry matches as a substring, as AutoAWQ does). */
int awq_config_not_converted(const struct awq_model_config *cfg, const char *name);

#endif
