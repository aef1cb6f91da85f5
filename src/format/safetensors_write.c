/* Safetensors writer: collects tensors (copied) and __metadata__ strings, then writes one file
 * atomically — a temporary file next to the target, fsync, rename over the target, fsync of the
 * directory — so an interrupted or failed save leaves any previous file untouched. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/safetensors.h"
#include "util/array.h"

struct wtensor {
    char *name;
    awq_dtype dtype;
    int ndim;
    int64_t shape[AWQ_ST_MAX_DIMS];
    void *data;
    size_t nbytes;
};

struct wmeta {
    char *key;
    char *value;
};

struct awq_st_writer {
    struct wtensor *t;
    size_t n, cap;
    struct wmeta *meta;
    size_t nmeta, cap_meta;
    size_t bytes;
};

int awq_st_writer_create(struct awq_st_writer **out)
{
    if (!out)
        return AWQ_ERR_INVALID_ARGUMENT;
    *out = calloc(1, sizeof **out);
    return *out ? 0 : AWQ_ERR_OUT_OF_MEMORY;
}

void awq_st_writer_destroy(struct awq_st_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    for (size_t i = 0; i < w->nmeta; i++) {
        free(w->meta[i].key);
        free(w->meta[i].value);
    }
    free(w->t);
    free(w->meta);
    free(w);
}

/* Jansson refuses strings that are not UTF-8; find out at add time rather than at save time. */
static int valid_json_string(const char *s)
{
    json_t *j = json_string(s);
    json_decref(j);
    return j != NULL;
}

int awq_st_writer_add(struct awq_st_writer *w, const char *name, awq_dtype dtype, int ndim,
                      const int64_t *shape, const void *data, size_t nbytes, struct awq_errbuf *err)
{
    if (!w || !name || (ndim > 0 && !shape) || (!data && nbytes))
        return awq_err_set(err, AWQ_ERR_INVALID_ARGUMENT, "awq_st_writer_add: NULL argument");
    if (!*name || !strcmp(name, "__metadata__") || !valid_json_string(name))
        return awq_err_set(err, AWQ_ERR_INVALID_ARGUMENT, "tensor name '%.200s' is empty, reserved or not UTF-8",
                           name);
    size_t esz = awq_dtype_size(dtype);
    if (!esz)
        return awq_err_set(err, AWQ_ERR_BAD_DTYPE, "tensor '%.200s': unknown dtype %d", name, (int)dtype);
    if (ndim < 0 || ndim > AWQ_ST_MAX_DIMS)
        return awq_err_set(err, AWQ_ERR_BAD_SHAPE, "tensor '%.200s': %d dimensions (0 to %d supported)", name, ndim,
                           AWQ_ST_MAX_DIMS);
    size_t numel = 1;
    int zero = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return awq_err_set(err, AWQ_ERR_BAD_SHAPE, "tensor '%.200s': negative dimension %lld", name,
                               (long long)shape[i]);
        zero |= shape[i] == 0;
    }
    for (int i = 0; i < ndim && !zero; i++) {
        if ((uint64_t)shape[i] > SIZE_MAX || numel > SIZE_MAX / (size_t)shape[i])
            return awq_err_set(err, AWQ_ERR_BAD_SHAPE, "tensor '%.200s': shape overflows", name);
        numel *= (size_t)shape[i];
    }
    if (zero)
        numel = 0;
    if (numel > SIZE_MAX / esz || numel * esz != nbytes)
        return awq_err_set(err, AWQ_ERR_BAD_SHAPE, "tensor '%.200s': %zu elements of %s need %zu bytes, got %zu",
                           name, numel, awq_dtype_name(dtype), numel <= SIZE_MAX / esz ? numel * esz : SIZE_MAX,
                           nbytes);
    for (size_t i = 0; i < w->n; i++)
        if (!strcmp(w->t[i].name, name))
            return awq_err_set(err, AWQ_ERR_DUPLICATE, "tensor '%.200s' added twice", name);
    if (nbytes > SIZE_MAX - w->bytes)
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "tensor '%.200s': total size overflows", name);
    struct wtensor *all = awq_array_reserve(w->t, w->n, &w->cap, sizeof *all, 64);
    if (!all)
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory adding tensor '%.200s'", name);
    w->t = all;
    struct wtensor *t = &all[w->n];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->data = malloc(nbytes ? nbytes : 1);
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory copying tensor '%.200s' (%zu bytes)", name,
                           nbytes);
    }
    if (nbytes)
        memcpy(t->data, data, nbytes);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->nbytes = nbytes;
    w->bytes += nbytes;
    w->n++;
    return 0;
}

int awq_st_writer_meta(struct awq_st_writer *w, const char *key, const char *value, struct awq_errbuf *err)
{
    if (!w || !key || !value)
        return awq_err_set(err, AWQ_ERR_INVALID_ARGUMENT, "awq_st_writer_meta: NULL argument");
    if (!*key || !valid_json_string(key) || !valid_json_string(value))
        return awq_err_set(err, AWQ_ERR_INVALID_ARGUMENT, "__metadata__ key '%.200s': empty, or key/value not UTF-8",
                           key);
    char *v = strdup(value);
    if (!v)
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; i < w->nmeta; i++)
        if (!strcmp(w->meta[i].key, key)) {     /* setting a key again replaces its value */
            free(w->meta[i].value);
            w->meta[i].value = v;
            return 0;
        }
    struct wmeta *m = awq_array_reserve(w->meta, w->nmeta, &w->cap_meta, sizeof *m, 8);
    if (!m) {
        free(v);
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    }
    w->meta = m;
    char *k = strdup(key);
    if (!k) {
        free(v);
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    }
    w->meta[w->nmeta].key = k;
    w->meta[w->nmeta].value = v;
    w->nmeta++;
    return 0;
}

size_t awq_st_writer_bytes(const struct awq_st_writer *w)
{
    return w ? w->bytes : 0;
}

/* The header text (without padding): __metadata__ first, then the tensors in insertion order
 * with contiguous offsets. Jansson keeps object keys in insertion order. */
static char *build_header(const struct awq_st_writer *w, struct awq_errbuf *err)
{
    json_t *root = json_object();
    if (!root)
        goto oom;
    if (w->nmeta) {
        json_t *m = json_object();
        if (!m || json_object_set_new(root, "__metadata__", m))
            goto oom;
        for (size_t i = 0; i < w->nmeta; i++)
            if (json_object_set_new(m, w->meta[i].key, json_string(w->meta[i].value)))
                goto oom;
    }
    size_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        const struct wtensor *t = &w->t[i];
        json_t *e = json_object(), *shape = json_array(), *offs = json_array();
        if (!e || !shape || !offs) {
            json_decref(e);
            json_decref(shape);
            json_decref(offs);
            goto oom;
        }
        int bad = json_object_set_new(root, t->name, e);
        bad |= json_object_set_new(e, "dtype", json_string(awq_dtype_name(t->dtype)));
        for (int d = 0; d < t->ndim; d++)
            bad |= json_array_append_new(shape, json_integer((json_int_t)t->shape[d]));
        bad |= json_object_set_new(e, "shape", shape);
        bad |= json_array_append_new(offs, json_integer((json_int_t)off));
        bad |= json_array_append_new(offs, json_integer((json_int_t)(off + t->nbytes)));
        bad |= json_object_set_new(e, "data_offsets", offs);
        if (bad)
            goto oom;
        off += t->nbytes;
    }
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!s)
        awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory encoding the safetensors header");
    return s;
oom:
    json_decref(root);
    awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory building the safetensors header");
    return NULL;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n) {
        ssize_t k = write(fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (k == 0) {
            errno = EIO;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int awq_st_writer_save(const struct awq_st_writer *w, const char *path, struct awq_errbuf *err)
{
    if (!w || !path || !*path)
        return awq_err_set(err, AWQ_ERR_INVALID_ARGUMENT, "awq_st_writer_save: NULL argument");
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!*base)
        return awq_err_set(err, AWQ_ERR_INVALID_ARGUMENT, "%s: not a file name", path);
    size_t dlen = slash ? (size_t)(slash - path) : 0;
    char *dir = malloc(dlen + 2);
    char *tmp = malloc(dlen + strlen(base) + 32);
    char *hdr = NULL;
    int fd = -1, rc = 0;
    if (!dir || !tmp) {
        rc = awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
        goto out;
    }
    if (!slash)
        strcpy(dir, ".");
    else if (dlen == 0)
        strcpy(dir, "/");
    else {
        memcpy(dir, path, dlen);
        dir[dlen] = '\0';
    }
    sprintf(tmp, "%s/.%s.tmp-XXXXXX", dir, base);

    if (!(hdr = build_header(w, err))) {
        rc = AWQ_ERR_OUT_OF_MEMORY;
        goto out;
    }
    size_t hlen = strlen(hdr);
    size_t padded = (hlen + 7) & ~(size_t)7;   /* data starts 8-byte aligned */
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));

    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = awq_err_set(err, AWQ_ERR_IO, "%s: cannot create a temporary file in %s: %s", path, dir, strerror(errno));
        goto out;
    }
    /* mkstemp makes 0600; a replaced file keeps its mode, a new one gets the usual 0644 */
    struct stat sb;
    fchmod(fd, stat(path, &sb) == 0 && S_ISREG(sb.st_mode) ? (sb.st_mode & 07777) : 0644);

    static const char spaces[8] = "        ";
    int bad = write_all(fd, len8, 8) || write_all(fd, hdr, hlen) || write_all(fd, spaces, padded - hlen);
    for (size_t i = 0; !bad && i < w->n; i++)
        bad = write_all(fd, w->t[i].data, w->t[i].nbytes);
    if (bad || fsync(fd) < 0) {
        rc = awq_err_set(err, AWQ_ERR_IO, "%s: writing %s failed: %s", path, tmp, strerror(errno));
        goto fail;
    }
    int cfd = fd;
    fd = -1;
    if (close(cfd) < 0) {
        rc = awq_err_set(err, AWQ_ERR_IO, "%s: closing %s failed: %s", path, tmp, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) < 0) {
        rc = awq_err_set(err, AWQ_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
        goto fail;
    }
    /* make the rename itself durable; file systems that cannot sync a directory say EINVAL */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) < 0 && errno != EINVAL)
            rc = awq_err_set(err, AWQ_ERR_IO, "%s: written, but syncing the directory %s failed: %s", path, dir,
                             strerror(errno));
        close(dfd);
    }
    goto out;
fail:
    if (fd >= 0)
        close(fd);
    fd = -1;
    unlink(tmp);
out:
    if (fd >= 0)
        close(fd);
    free(hdr);
    free(dir);
    free(tmp);
    return rc;
}
