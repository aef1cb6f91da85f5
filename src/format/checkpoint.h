/* Writing an AutoAWQ "GEMM" checkpoint directory: safetensors (sharded above a size, with
 * model.safetensors.index.json), config.json with quantization_config, the tokenizer files. The
 * directory is built under a temporary name beside the target and swapped in at the end: a failed
 * or interrupted run leaves an existing output untouched and no partial checkpoint. */
#ifndef AWQ_FORMAT_CHECKPOINT_H
#define AWQ_FORMAT_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "awq.h"
#include "util/error.h"

struct awq_ckpt_tensor {
    char *name;              /* owned */
    awq_dtype dtype;
    int ndim;
    int64_t shape[2];
    void *data;              /* owned */
    size_t nbytes;
};

struct awq_ckpt {
    struct awq_ckpt_tensor *t;
    size_t n, cap;
    char *not_convert[512];
    int n_not_convert;
    int group_size;
    int keep_dtype;          /* torch_dtype stays as in the source config */
    uint64_t shard_bytes;
    int unquantized;         /* a plain model: no quantization_config */
    const char *config_json; /* config.json text to start from instead of <src_dir>/config.json */
    const char *meta_keys[8];
    const char *meta_vals[8];
    int n_meta;
};

/* Adds a tensor (copies name and data). */
int awq_ckpt_add(struct awq_ckpt *c, const char *name, awq_dtype dtype, int ndim, const int64_t *shape,
                 const void *data, size_t nbytes, struct awq_errbuf *err);
/* Adds an fp32 tensor stored as `dtype` (F32, F16 or BF16). */
int awq_ckpt_add_f32(struct awq_ckpt *c, const char *name, awq_dtype dtype, int ndim, const int64_t *shape,
                     const float *data, struct awq_errbuf *err);
void awq_ckpt_free(struct awq_ckpt *c);

/* Refuses early (before hours of work) a target that cannot be written: its parent missing or not
 * writable, or an existing path that is not a directory holding a config.json (or empty). */
int awq_ckpt_check_target(const char *out_dir, struct awq_errbuf *err);

/* Writes everything; src_dir (may be NULL with config_json) gives config.json and the tokenizer
 * files. `cancel` (optional) is polled between files. */
int awq_ckpt_write(const struct awq_ckpt *c, const char *src_dir, const char *out_dir,
                   int (*cancel)(void *), void *cancel_user, struct awq_errbuf *err);

#endif
