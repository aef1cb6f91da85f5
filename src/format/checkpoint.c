#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/checkpoint.h"
#include "format/safetensors.h"
#include "util/file.h"
#include "util/half.h"
#include "util/array.h"


int awq_ckpt_add(struct awq_ckpt *c, const char *name, awq_dtype dtype, int ndim, const int64_t *shape,
                 const void *data, size_t nbytes, struct awq_errbuf *err)
{
    struct awq_ckpt_tensor *all = awq_array_reserve(c->t, c->n, &c->cap, sizeof *all, 64);
    if (!all)
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    c->t = all;
    struct awq_ckpt_tensor *t = &all[c->n];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->data = malloc(nbytes ? nbytes : 1);
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory for %s", name);
    }
    memcpy(t->data, data, nbytes);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->nbytes = nbytes;
    c->n++;
    return 0;
}

int awq_ckpt_add_f32(struct awq_ckpt *c, const char *name, awq_dtype dtype, int ndim, const int64_t *shape,
                     const float *data, struct awq_errbuf *err)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    if (dtype == AWQ_DTYPE_F32)
        return awq_ckpt_add(c, name, dtype, ndim, shape, data, n * 4, err);
    uint16_t *h = malloc(n * 2 + 1);
    if (!h)
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory for %s", name);
    for (size_t i = 0; i < n; i++)
        h[i] = dtype == AWQ_DTYPE_BF16 ? awq_f32_to_bf16(data[i]) : awq_f32_to_f16(data[i]);
    int st = awq_ckpt_add(c, name, dtype, ndim, shape, h, n * 2, err);
    free(h);
    return st;
}

void awq_ckpt_free(struct awq_ckpt *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->t[i].name);
        free(c->t[i].data);
    }
    free(c->t);
    for (int i = 0; i < c->n_not_convert; i++)
        free(c->not_convert[i]);
    memset(c, 0, sizeof *c);
}

/* ---- directories ---------------------------------------------------------------------------- */

static void rmtree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char c[4096];
            if (snprintf(c, sizeof c, "%s/%s", path, e->d_name) >= (int)sizeof c)
                continue;
            struct stat st;
            if (lstat(c, &st) == 0 && S_ISDIR(st.st_mode))
                rmtree(c);
            else
                unlink(c);
        }
        closedir(d);
    }
    rmdir(path);
}

static int split_path(const char *path, char *parent, char *base, size_t n, struct awq_errbuf *err)
{
    char a[4096], b[4096];
    if (strlen(path) >= sizeof a || strlen(path) >= n)
        return awq_err_set(err, AWQ_ERR_INVALID_ARGUMENT, "path too long: %s", path);
    strcpy(a, path);
    strcpy(b, path);
    /* drop trailing slashes so basename sees the directory's name */
    for (size_t l = strlen(a); l > 1 && a[l - 1] == '/'; l--)
        a[l - 1] = b[l - 1] = '\0';
    snprintf(parent, n, "%s", dirname(a));
    snprintf(base, n, "%s", basename(b));
    if (!strcmp(base, "/") || !strcmp(base, ".") || !strcmp(base, ".."))
        return awq_err_set(err, AWQ_ERR_INVALID_ARGUMENT, "%s: not a usable output directory name", path);
    return 0;
}

static int dir_is_replaceable(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int entries = 0, config = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        entries++;
        config |= !strcmp(e->d_name, "config.json");
    }
    closedir(d);
    return entries == 0 || config;
}

int awq_ckpt_check_target(const char *out_dir, struct awq_errbuf *err)
{
    char parent[4096], base[4096];
    AWQ_TRY(split_path(out_dir, parent, base, sizeof parent, err));
    struct stat st;
    if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode))
        return awq_err_set(err, AWQ_ERR_IO, "%s: the parent directory %s does not exist", out_dir, parent);
    if (access(parent, W_OK | X_OK) != 0)
        return awq_err_set(err, AWQ_ERR_IO, "%s: cannot write into %s: %s", out_dir, parent, strerror(errno));
    if (lstat(out_dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return awq_err_set(err, AWQ_ERR_IO, "%s exists and is not a directory", out_dir);
        if (!dir_is_replaceable(out_dir))
            return awq_err_set(err, AWQ_ERR_IO, "%s exists and is not a model directory (no config.json); "
                               "remove it or choose another output", out_dir);
    }
    return 0;
}

static int copy_file(const char *src, const char *dst, struct awq_errbuf *err)
{
    char *data;
    size_t len;
    AWQ_TRY(awq_read_file(src, (size_t)1 << 31, &data, &len, err));
    int st = 0;
    FILE *f = fopen(dst, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fflush(f) != 0 || fsync(fileno(f)) != 0)
        st = awq_err_set(err, AWQ_ERR_IO, "%s: %s", dst, strerror(errno));
    if (f && fclose(f) != 0 && st == 0)
        st = awq_err_set(err, AWQ_ERR_IO, "%s: %s", dst, strerror(errno));
    free(data);
    return st;
}

static int write_json(const char *path, json_t *j, struct awq_errbuf *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return awq_err_set(err, AWQ_ERR_IO, "%s: %s", path, strerror(errno));
    int st = json_dumpf(j, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0 && fputc('\n', f) != EOF &&
                     fflush(f) == 0 && fsync(fileno(f)) == 0
                 ? 0 : awq_err_set(err, AWQ_ERR_IO, "%s: %s", path, strerror(errno));
    if (fclose(f) != 0 && st == 0)
        st = awq_err_set(err, AWQ_ERR_IO, "%s: %s", path, strerror(errno));
    return st;
}

static int write_config(const struct awq_ckpt *c, const char *src_dir, const char *dir, struct awq_errbuf *err)
{
    char path[4096];
    json_error_t je;
    json_t *root;
    if (c->config_json) {
        root = json_loads(c->config_json, JSON_PRESERVE_ORDER, &je);
        if (!root)
            return awq_err_set(err, AWQ_ERR_BAD_JSON, "config: %s", je.text);
    } else {
        AWQ_TRY(awq_path_join(path, sizeof path, src_dir, "config.json", err));
        root = json_load_file(path, JSON_PRESERVE_ORDER, &je);
        if (!root)
            return awq_err_set(err, AWQ_ERR_BAD_JSON, "%s: %s", path, je.text);
    }
    if (c->unquantized) {
        int st = awq_path_join(path, sizeof path, dir, "config.json", err);
        if (st == 0)
            st = write_json(path, root, err);
        json_decref(root);
        return st;
    }
    json_t *q = json_object(), *nc = json_array();
    json_object_set_new(q, "quant_method", json_string("awq"));
    json_object_set_new(q, "bits", json_integer(4));
    json_object_set_new(q, "group_size", json_integer(c->group_size));
    json_object_set_new(q, "zero_point", json_true());
    json_object_set_new(q, "version", json_string("gemm"));
    for (int i = 0; i < c->n_not_convert; i++)
        json_array_append_new(nc, json_string(c->not_convert[i]));
    json_object_set_new(q, "modules_to_not_convert", nc);
    json_object_set_new(root, "quantization_config", q);
    if (!c->keep_dtype)
        json_object_set_new(root, "torch_dtype", json_string("float16"));
    int st = awq_path_join(path, sizeof path, dir, "config.json", err);
    if (st == 0)
        st = write_json(path, root, err);
    json_decref(root);
    return st;
}

static int copy_tokenizer(const char *src_dir, const char *dir, struct awq_errbuf *err)
{
    static const char *files[] = { "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                   "tokenizer.model", "generation_config.json", "vocab.json", "merges.txt",
                                   "added_tokens.json" };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char src[4096], dst[4096];
        AWQ_TRY(awq_path_join(src, sizeof src, src_dir, files[i], err));
        AWQ_TRY(awq_path_join(dst, sizeof dst, dir, files[i], err));
        if (access(src, R_OK) == 0)
            AWQ_TRY(copy_file(src, dst, err));
    }
    return 0;
}

/* Assigns tensors to shards of at most shard_bytes (a larger tensor gets a shard of its own). */
static int plan_shards(const struct awq_ckpt *c, int *shard_of)
{
    int shard = 0;
    uint64_t used = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (used > 0 && used + c->t[i].nbytes > c->shard_bytes) {
            shard++;
            used = 0;
        }
        used += c->t[i].nbytes;
        shard_of[i] = shard;
    }
    return shard + 1;
}

static void shard_name(char *out, size_t n, int i, int total)
{
    if (total == 1)
        snprintf(out, n, "model.safetensors");
    else
        snprintf(out, n, "model-%05d-of-%05d.safetensors", i + 1, total);
}

static int write_shards(const struct awq_ckpt *c, const char *dir, int (*cancel)(void *), void *cu,
                        struct awq_errbuf *err)
{
    int *shard_of = malloc((c->n ? c->n : 1) * sizeof(int));
    if (!shard_of)
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    int total = plan_shards(c, shard_of), st = 0;
    json_t *map = json_object();
    uint64_t total_size = 0;
    for (int s = 0; s < total && st == 0; s++) {
        if (cancel && cancel(cu)) {
            st = awq_err_set(err, AWQ_ERR_CANCELLED, "cancelled while writing the checkpoint");
            break;
        }
        char name[64], path[4096];
        shard_name(name, sizeof name, s, total);
        struct awq_st_writer *w;
        st = awq_st_writer_create(&w);
        if (st < 0) {
            awq_err_set(err, st, "out of memory");
            break;
        }
        for (int m = 0; m < c->n_meta && st == 0; m++)
            st = awq_st_writer_meta(w, c->meta_keys[m], c->meta_vals[m], err);
        for (size_t i = 0; i < c->n && st == 0; i++) {
            if (shard_of[i] != s)
                continue;
            const struct awq_ckpt_tensor *t = &c->t[i];
            st = awq_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data, t->nbytes, err);
            json_object_set_new(map, t->name, json_string(name));
            total_size += t->nbytes;
        }
        if (st == 0)
            st = awq_path_join(path, sizeof path, dir, name, err);
        if (st == 0)
            st = awq_st_writer_save(w, path, err);
        awq_st_writer_destroy(w);
    }
    if (st == 0 && total > 1) {
        json_t *idx = json_object(), *meta = json_object();
        json_object_set_new(meta, "total_size", json_integer((json_int_t)total_size));
        json_object_set_new(idx, "metadata", meta);
        json_object_set(idx, "weight_map", map);
        char path[4096];
        st = awq_path_join(path, sizeof path, dir, "model.safetensors.index.json", err);
        if (st == 0)
            st = write_json(path, idx, err);
        json_decref(idx);
    }
    json_decref(map);
    free(shard_of);
    return st;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

/* Puts tmp in place of out_dir; an existing out_dir is moved aside first and removed after. */
static int swap_in(const char *tmp, const char *out_dir, const char *parent, const char *base, struct awq_errbuf *err)
{
    struct stat st;
    char old[4096] = "";
    if (lstat(out_dir, &st) == 0) {
        if (snprintf(old, sizeof old, "%s/.%s.old-XXXXXX", parent, base) >= (int)sizeof old || !mkdtemp(old))
            return awq_err_set(err, AWQ_ERR_IO, "%s: cannot create a name for the previous output: %s", out_dir,
                               strerror(errno));
        rmdir(old);   /* only the unique name was wanted */
        if (rename(out_dir, old) != 0)
            return awq_err_set(err, AWQ_ERR_IO, "%s: cannot move the previous output aside: %s", out_dir,
                               strerror(errno));
    }
    if (rename(tmp, out_dir) != 0) {
        int e = errno;
        if (old[0])
            rename(old, out_dir);
        return awq_err_set(err, AWQ_ERR_IO, "%s: cannot rename the new checkpoint into place: %s", out_dir,
                           strerror(e));
    }
    fsync_dir(parent);
    if (old[0])
        rmtree(old);
    return 0;
}

int awq_ckpt_write(const struct awq_ckpt *c, const char *src_dir, const char *out_dir, int (*cancel)(void *),
                   void *cancel_user, struct awq_errbuf *err)
{
    AWQ_TRY(awq_ckpt_check_target(out_dir, err));
    char parent[4096], base[4096], tmp[4096];
    AWQ_TRY(split_path(out_dir, parent, base, sizeof parent, err));
    if (snprintf(tmp, sizeof tmp, "%s/.%s.tmp-XXXXXX", parent, base) >= (int)sizeof tmp || !mkdtemp(tmp))
        return awq_err_set(err, AWQ_ERR_IO, "%s: cannot create a temporary directory in %s: %s", out_dir, parent,
                           strerror(errno));
    chmod(tmp, 0755);
    int st = write_shards(c, tmp, cancel, cancel_user, err);
    if (st == 0)
        st = write_config(c, src_dir, tmp, err);
    if (st == 0 && src_dir)
        st = copy_tokenizer(src_dir, tmp, err);
    if (st == 0 && fsync_dir(tmp) != 0)
        st = awq_err_set(err, AWQ_ERR_IO, "%s: fsync: %s", tmp, strerror(errno));
    if (st == 0 && cancel && cancel(cancel_user))
        st = awq_err_set(err, AWQ_ERR_CANCELLED, "cancelled while writing the checkpoint");
    if (st == 0)
        st = swap_in(tmp, out_dir, parent, base, err);
    if (st < 0)
        rmtree(tmp);
    return st;
}
