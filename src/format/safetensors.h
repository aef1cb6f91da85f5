/* Safetensors reading (memory-mapped; one file, or shards listed by model.safetensors.index.json)
 * and writing (atomic: temporary file in the target directory, fsync, rename).
 *
 * Every malformed input gets its own status: AWQ_ERR_TRUNCATED (file shorter than 8 bytes or than
 * its header), AWQ_ERR_HEADER_TOO_LARGE (header length past the end of the file or above 100 MB),
 * AWQ_ERR_BAD_JSON (header not JSON / not an object / entry of the wrong shape), AWQ_ERR_BAD_DTYPE
 * (unknown dtype), AWQ_ERR_BAD_SHAPE (shape × dtype size ≠ byte range, negative dims, overflow),
 * AWQ_ERR_BAD_OFFSETS (begin > end, end past the data), AWQ_ERR_OVERLAP (two tensors share bytes),
 * AWQ_ERR_DUPLICATE (a name twice, also across shards), AWQ_ERR_NOT_FOUND (missing shard/file),
 * AWQ_ERR_IO (open/mmap failures). The message names the file and the tensor. */
#ifndef AWQ_FORMAT_SAFETENSORS_H
#define AWQ_FORMAT_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "awq.h"
#include "util/error.h"

#define AWQ_ST_MAX_DIMS 8
/* Largest accepted JSON header (bytes), as in the reference implementation. */
#define AWQ_ST_MAX_HEADER 100000000ULL

struct awq_st_tensor {
    const char *name;
    awq_dtype dtype;
    int ndim;
    int64_t shape[AWQ_ST_MAX_DIMS];
    size_t numel;
    size_t nbytes;
    const void *data;        /* inside the read-only mapping; valid until close */
    int shard;               /* index of the file it came from */
};

struct awq_safetensors;

/* `path`: a .safetensors file, a model.safetensors.index.json, or a directory holding
 * model.safetensors or model.safetensors.index.json. */
int awq_safetensors_open(const char *path, struct awq_safetensors **out, struct awq_errbuf *err);
/* Parses one safetensors image already in memory (`label` names it in messages). The buffer is
 * not copied: it must stay valid and unchanged until close. Same checks as a file; used by the
 * fuzz harness and by tests. */
int awq_safetensors_open_buffer(const void *data, size_t size, const char *label,
                                struct awq_safetensors **out, struct awq_errbuf *err);
void awq_safetensors_close(struct awq_safetensors *st);
size_t awq_safetensors_count(const struct awq_safetensors *st);
const struct awq_st_tensor *awq_safetensors_at(const struct awq_safetensors *st, size_t i);
const struct awq_st_tensor *awq_safetensors_find(const struct awq_safetensors *st, const char *name);
/* A string value of the first file's __metadata__, or NULL. */
const char *awq_safetensors_meta(const struct awq_safetensors *st, const char *key);
/* All __metadata__ entries, in file order (first file first; a key seen again in a later shard
 * keeps its first value). */
size_t awq_safetensors_meta_count(const struct awq_safetensors *st);
void awq_safetensors_meta_at(const struct awq_safetensors *st, size_t i, const char **key,
                             const char **value);
size_t awq_safetensors_shards(const struct awq_safetensors *st);
const char *awq_safetensors_shard_path(const struct awq_safetensors *st, size_t i);
/* Size in bytes of shard i (the whole file). */
size_t awq_safetensors_shard_size(const struct awq_safetensors *st, size_t i);
/* Path of the model.safetensors.index.json it was opened through, or NULL for a single file. */
const char *awq_safetensors_index_path(const struct awq_safetensors *st);

/* Converts a F32/F16/BF16 (also F64) tensor to `numel` fp32 values; AWQ_ERR_BAD_DTYPE otherwise. */
int awq_st_tensor_to_f32(const struct awq_st_tensor *t, float *dst, struct awq_errbuf *err);

/* ---- writing ------------------------------------------------------------------------------ */

struct awq_st_writer;

int awq_st_writer_create(struct awq_st_writer **out);
void awq_st_writer_destroy(struct awq_st_writer *w);
/* Adds a tensor; the writer copies `data` (nbytes must equal numel × dtype size). */
int awq_st_writer_add(struct awq_st_writer *w, const char *name, awq_dtype dtype, int ndim,
                      const int64_t *shape, const void *data, size_t nbytes, struct awq_errbuf *err);
/* Adds a string to __metadata__. */
int awq_st_writer_meta(struct awq_st_writer *w, const char *key, const char *value, struct awq_errbuf *err);
/* Bytes of tensor data added so far (for sharding decisions). */
size_t awq_st_writer_bytes(const struct awq_st_writer *w);
/* Writes `path` atomically: <dir>/.<name>.tmp-XXXXXX, fsync, rename over `path`, fsync the
 * directory. On failure nothing is left behind and an existing `path` is untouched. Tensors are
 * laid out in insertion order, 8-byte aligned header (padded with spaces). */
int awq_st_writer_save(const struct awq_st_writer *w, const char *path, struct awq_errbuf *err);

#endif
