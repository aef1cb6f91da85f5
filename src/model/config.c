#include "config.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "awq.h"
#include "model/config.h"
#include "util/file.h"

/* Reads an integer field; `def` < -1 means required. Returns 0 or an error. */
static int get_int(json_t *root, const char *origin, const char *key, long long def, long long lo,
                   long long hi, int *out, struct awq_errbuf *err)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (def < -1)
            return awq_err_set(err, AWQ_ERR_BAD_CONFIG, "%s: required field \"%s\" is missing", origin, key);
        *out = (int)def;
        return 0;
    }
    if (!json_is_integer(v))
        return awq_err_set(err, AWQ_ERR_BAD_CONFIG, "%s: \"%s\" must be an integer", origin, key);
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return awq_err_set(err, AWQ_ERR_BAD_CONFIG, "%s: \"%s\" = %lld is outside [%lld, %lld]", origin,
                           key, x, lo, hi);
    *out = (int)x;
    return 0;
}

static int get_float(json_t *root, const char *origin, const char *key, double def, double lo, double hi,
                     float *out, struct awq_errbuf *err)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        *out = (float)def;
        return 0;
    }
    if (!json_is_number(v))
        return awq_err_set(err, AWQ_ERR_BAD_CONFIG, "%s: \"%s\" must be a number", origin, key);
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi))
        return awq_err_set(err, AWQ_ERR_BAD_CONFIG, "%s: \"%s\" = %g is outside [%g, %g]", origin, key,
                           x, lo, hi);
    *out = (float)x;
    return 0;
}

static int get_bool(json_t *root, const char *origin, const char *key, int def, int *out,
                    struct awq_errbuf *err)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v))
        return awq_err_set(err, AWQ_ERR_BAD_CONFIG, "%s: \"%s\" must be true or false", origin, key);
    *out = json_is_true(v);
    return 0;
}

static const char *get_str(json_t *root, const char *key)
{
    json_t *v = json_object_get(root, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* bos/eos ids may be an integer or a list of integers (the first is used). */
static int get_token_id(json_t *root, const char *key, int *out)
{
    json_t *v = json_object_get(root, key);
    if (json_is_array(v))
        v = json_array_get(v, 0);
    *out = json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) < (1 << 30)
               ? (int)json_integer_value(v) : -1;
    return 0;
}


static int parse_arch(json_t *root, const char *origin, struct awq_model_config *c, struct awq_errbuf *err)
{
    static const struct { const char *arch, *type; } known[] = {
        { "LlamaForCausalLM", "llama" }, { "MistralForCausalLM", "mistral" }, { "Qwen2ForCausalLM", "qwen2" },
    };
    const char *type = get_str(root, "model_type");
    json_t *archs = json_object_get(root, "architectures");
    const char *arch = json_is_array(archs) ? json_string_value(json_array_get(archs, 0)) : NULL;
    if (!type && !arch)
        return awq_err_set(err, AWQ_ERR_BAD_CONFIG, "%s: neither \"model_type\" nor \"architectures\" is given", origin);
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        int arch_ok = !arch || !strcmp(arch, known[i].arch);
        int type_ok = !type || !strcmp(type, known[i].type);
        if ((arch && !strcmp(arch, known[i].arch)) || (!arch && type && !strcmp(type, known[i].type))) {
            if (!arch_ok || !type_ok)
                break;
            snprintf(c->arch, sizeof c->arch, "%s", known[i].arch);
            snprintf(c->model_type, sizeof c->model_type, "%s", known[i].type);
            return 0;
        }
    }
    return awq_err_set(err, AWQ_ERR_UNSUPPORTED,
                       "%s: architecture %s (model_type %s) is not supported; supported: Llama, Mistral, "
                       "Qwen2 and Llama-shaped models (TinyLlama, SmolLM)", origin, arch ? arch : "?",
                       type ? type : "?");
}

static int parse_rope(json_t *root, const char *origin, struct awq_model_config *c, struct awq_errbuf *err)
{
    json_t *rs = json_object_get(root, "rope_scaling");
    c->rope_kind = AWQ_ROPE_DEFAULT;
    if (!rs || json_is_null(rs))
        return 0;
    if (!json_is_object(rs))
        return awq_err_set(err, AWQ_ERR_BAD_CONFIG, "%s: \"rope_scaling\" must be an object or null", origin);
    const char *kind = get_str(rs, "rope_type");
    if (!kind)
        kind = get_str(rs, "type");
    if (!kind || !strcmp(kind, "default"))
        return 0;
    AWQ_TRY(get_float(rs, origin, "factor", 1.0, 1e-3, 1e6, &c->rope_factor, err));
    if (!strcmp(kind, "linear")) {
        c->rope_kind = AWQ_ROPE_LINEAR;
        return 0;
    }
    if (!strcmp(kind, "llama3")) {
        c->rope_kind = AWQ_ROPE_LLAMA3;
        AWQ_TRY(get_float(rs, origin, "low_freq_factor", 1.0, 1e-6, 1e6, &c->rope_low_freq, err));
        AWQ_TRY(get_float(rs, origin, "high_freq_factor", 4.0, 1e-6, 1e6, &c->rope_high_freq, err));
        AWQ_TRY(get_int(rs, origin, "original_max_position_embeddings", 8192, 1, 1 << 24, &c->rope_orig_max_pos, err));
        if (c->rope_high_freq <= c->rope_low_freq)
            return awq_err_set(err, AWQ_ERR_BAD_CONFIG, "%s: rope_scaling high_freq_factor must exceed low_freq_factor", origin);
        return 0;
    }
    return awq_err_set(err, AWQ_ERR_UNSUPPORTED, "%s: rope_scaling type \"%s\" is not supported "
                       "(supported: default, linear, llama3)", origin, kind);
}

static int parse_quant(json_t *q, const char *origin, struct awq_model_config *c, int old_style,
                       struct awq_errbuf *err)
{
    if (!json_is_object(q))
        return awq_err_set(err, AWQ_ERR_BAD_CONFIG, "%s: quantization config must be an object", origin);
    const char *method = get_str(q, "quant_method");
    if (!old_style && (!method || strcasecmp(method, "awq")))
        return awq_err_set(err, AWQ_ERR_UNSUPPORTED, "%s: quant_method \"%s\" is not supported (only awq)",
                           origin, method ? method : "?");
    int bits, zp = 1;
    AWQ_TRY(get_int(q, origin, old_style ? "w_bit" : "bits", 4, 1, 64, &bits, err));
    AWQ_TRY(get_int(q, origin, old_style ? "q_group_size" : "group_size", -2, -1, 1 << 20, &c->group_size, err));
    AWQ_TRY(get_bool(q, origin, "zero_point", 1, &zp, err));
    const char *ver = get_str(q, "version");
    if (bits != 4 || !zp || (ver && strcasecmp(ver, "gemm")))
        return awq_err_set(err, AWQ_ERR_UNSUPPORTED, "%s: AWQ variant bits=%d zero_point=%s version=%s is not "
                           "supported (only 4-bit, zero point, GEMM layout)", origin, bits, zp ? "true" : "false",
                           ver ? ver : "?");
    if (c->group_size != 32 && c->group_size != 64 && c->group_size != 128)
        return awq_err_set(err, AWQ_ERR_UNSUPPORTED, "%s: group size %d is not supported (32, 64, 128)",
                           origin, c->group_size);
    json_t *nc = json_object_get(q, "modules_to_not_convert");
    if (nc && !json_is_null(nc)) {
        if (!json_is_array(nc))
            return awq_err_set(err, AWQ_ERR_BAD_CONFIG, "%s: modules_to_not_convert must be a list", origin);
        size_t i;
        json_t *e;
        json_array_foreach(nc, i, e) {
            if (!json_is_string(e) || json_string_length(e) >= sizeof c->not_convert[0])
                return awq_err_set(err, AWQ_ERR_BAD_CONFIG, "%s: modules_to_not_convert[%zu] must be a "
                                   "module name", origin, i);
            if (c->n_not_convert == AWQ_MAX_NOT_CONVERT)
                return awq_err_set(err, AWQ_ERR_UNSUPPORTED, "%s: more than %d modules_to_not_convert", origin,
                                   AWQ_MAX_NOT_CONVERT);
            snprintf(c->not_convert[c->n_not_convert++], sizeof c->not_convert[0], "%s", json_string_value(e));
        }
    }
    c->quantized = 1;
    return 0;
}

static int parse_root(json_t *root, const char *origin, struct awq_model_config *c, struct awq_errbuf *err)
{
    if (!json_is_object(root))
        return awq_err_set(err, AWQ_ERR_BAD_CONFIG, "%s: not a JSON object", origin);
    AWQ_TRY(parse_arch(root, origin, c, err));
    const char *act = get_str(root, "hidden_act");
    if (act && strcmp(act, "silu"))
        return awq_err_set(err, AWQ_ERR_UNSUPPORTED, "%s: hidden_act \"%s\" is not supported (only silu)", origin, act);
    const int big = 1 << 20;
    AWQ_TRY(get_int(root, origin, "hidden_size", -2, 1, big, &c->hidden, err));
    AWQ_TRY(get_int(root, origin, "intermediate_size", -2, 1, 4 * big, &c->intermediate, err));
    AWQ_TRY(get_int(root, origin, "num_hidden_layers", -2, 1, 4096, &c->n_layers, err));
    AWQ_TRY(get_int(root, origin, "num_attention_heads", -2, 1, 4096, &c->n_heads, err));
    AWQ_TRY(get_int(root, origin, "num_key_value_heads", c->n_heads, 1, 4096, &c->n_kv_heads, err));
    if (c->hidden % c->n_heads && !json_object_get(root, "head_dim"))
        return awq_err_set(err, AWQ_ERR_BAD_CONFIG, "%s: hidden_size %d is not a multiple of num_attention_heads %d "
                           "and no head_dim is given", origin, c->hidden, c->n_heads);
    AWQ_TRY(get_int(root, origin, "head_dim", c->hidden / c->n_heads, 2, 1024, &c->head_dim, err));
    AWQ_TRY(get_int(root, origin, "vocab_size", -2, 1, 1 << 24, &c->vocab, err));
    AWQ_TRY(get_int(root, origin, "max_position_embeddings", 2048, 1, 1 << 24, &c->max_pos, err));
    AWQ_TRY(get_float(root, origin, "rms_norm_eps", 1e-6, 0, 1, &c->rms_eps, err));
    AWQ_TRY(get_float(root, origin, "rope_theta", 10000.0, 1.0, 1e12, &c->rope_theta, err));
    AWQ_TRY(get_bool(root, origin, "tie_word_embeddings", 0, &c->tie_embeddings, err));
    int qwen2 = !strcmp(c->model_type, "qwen2");
    AWQ_TRY(get_bool(root, origin, "attention_bias", qwen2, &c->qkv_bias, err));
    c->o_bias = qwen2 ? 0 : c->qkv_bias;   /* Qwen2: bias on q/k/v only; Llama: on all four */
    AWQ_TRY(get_bool(root, origin, "mlp_bias", 0, &c->mlp_bias, err));
    if (c->n_heads % c->n_kv_heads)
        return awq_err_set(err, AWQ_ERR_BAD_CONFIG, "%s: num_attention_heads %d is not a multiple of "
                           "num_key_value_heads %d", origin, c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2)
        return awq_err_set(err, AWQ_ERR_BAD_CONFIG, "%s: head_dim %d must be even for rotary embeddings", origin, c->head_dim);
    AWQ_TRY(parse_rope(root, origin, c, err));
    json_t *sw = json_object_get(root, "sliding_window");
    c->sliding_window = json_is_integer(sw) && json_integer_value(sw) > 0 && json_integer_value(sw) < big * 16
                            ? (int)json_integer_value(sw) : 0;
    json_t *usw = json_object_get(root, "use_sliding_window");
    if (usw && json_is_false(usw))
        c->sliding_window = 0;
    get_token_id(root, "bos_token_id", &c->bos_id);
    get_token_id(root, "eos_token_id", &c->eos_id);
    const char *dt = get_str(root, "torch_dtype");
    if (!dt)
        dt = get_str(root, "dtype");
    snprintf(c->torch_dtype, sizeof c->torch_dtype, "%s", dt ? dt : "");
    json_t *q = json_object_get(root, "quantization_config");
    if (q && !json_is_null(q))
        AWQ_TRY(parse_quant(q, origin, c, 0, err));
    return 0;
}

int awq_config_parse(const char *text, size_t len, const char *origin, struct awq_model_config *cfg,
                     struct awq_errbuf *err)
{
    memset(cfg, 0, sizeof *cfg);
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return awq_err_set(err, AWQ_ERR_BAD_JSON, "%s: line %d column %d: %s", origin, je.line, je.column, je.text);
    int st = parse_root(root, origin, cfg, err);
    json_decref(root);
    return st;
}

int awq_config_load(const char *dir, struct awq_model_config *cfg, struct awq_errbuf *err)
{
    char path[4096];
    char *text;
    size_t len;
    int st = awq_path_join(path, sizeof path, dir, "config.json", err);
    if (st == 0)
        st = awq_read_file(path, 16u << 20, &text, &len, err);
    if (st < 0)
        return st;
    st = awq_config_parse(text, len, path, cfg, err);
    free(text);
    if (st < 0 || cfg->quantized)
        return st;
    /* old AutoAWQ checkpoints keep the quantization config beside config.json */
    if (awq_path_join(path, sizeof path, dir, "quant_config.json", err) == 0 &&
        awq_read_file(path, 16u << 20, &text, &len, NULL) == 0) {
        json_error_t je;
        json_t *q = json_loadb(text, len, 0, &je);
        free(text);
        if (!q)
            return awq_err_set(err, AWQ_ERR_BAD_JSON, "%s: line %d column %d: %s", path, je.line, je.column, je.text);
        st = parse_quant(q, path, cfg, !json_object_get(q, "quant_method"), err);
        json_decref(q);
    }
    return st;
}

void awq_config_inv_freq(const struct awq_model_config *c, float *inv_freq)
{
    int half = c->head_dim / 2;
    for (int i = 0; i < half; i++) {
        double f = pow((double)c->rope_theta, -2.0 * i / c->head_dim);
        if (c->rope_kind == AWQ_ROPE_LINEAR) {
            f /= c->rope_factor;
        } else if (c->rope_kind == AWQ_ROPE_LLAMA3) {
            double low_wl = c->rope_orig_max_pos / c->rope_low_freq;
            double high_wl = c->rope_orig_max_pos / c->rope_high_freq;
            double wl = 2 * M_PI / f;
            if (wl > low_wl) {
                f /= c->rope_factor;
            } else if (wl >= high_wl) {
                double smooth = (c->rope_orig_max_pos / wl - c->rope_low_freq) /
                                (c->rope_high_freq - c->rope_low_freq);
                f = (1 - smooth) * f / c->rope_factor + smooth * f;
            }
        }
        inv_freq[i] = (float)f;
    }
}

int awq_config_not_converted(const struct awq_model_config *cfg, const char *name)
{
    for (int i = 0; i < cfg->n_not_convert; i++)
        if (strstr(name, cfg->not_convert[i]))
            return 1;
    return 0;
}
