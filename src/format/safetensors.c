/* Safetensors reader: maps each file read-only, validates its JSON header completely (every
 * malformed input gets its own status and a message naming the file and the tensor), and exposes
 * the tensors in file order with pointers into the mappings. Shards come from
 * model.safetensors.index.json. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dtype.h"
#include "format/safetensors.h"
#include "util/half.h"
#include "util/array.h"

#define INDEX_NAME "model.safetensors.index.json"
#define SINGLE_NAME "model.safetensors"
/* Names and JSON-supplied strings are cut to this many bytes in messages so the file name and
 * the reason still fit the error buffer. */
#define NAME_FMT "%.200s"

struct st_file {
    char *path;
    const unsigned char *base;   /* the whole file (mapping, or the caller's buffer) */
    size_t size;
    int mapped;
};

struct st_meta {
    char *key;
    char *value;
};

struct awq_safetensors {
    struct st_file *files;
    size_t nfiles;
    struct awq_st_tensor *t;
    size_t n, cap;
    size_t *by_name;             /* tensor indices sorted by name, for find() */
    struct st_meta *meta;
    size_t nmeta, cap_meta;
    char *index_path;
};

/* One header entry while its file is being checked. */
struct entry {
    const char *name;            /* owned by the JSON tree */
    awq_dtype dtype;
    int ndim;
    int64_t shape[AWQ_ST_MAX_DIMS];
    size_t numel, nbytes;
    uint64_t begin, end;
    size_t order;                /* position in the header: breaks ties between empty tensors */
};

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int is_duplicate_error(const json_error_t *je)
{
#if JANSSON_VERSION_HEX >= 0x020b00
    return json_error_code(je) == json_error_duplicate_key;
#else
    return strstr(je->text, "duplicate") != NULL;
#endif
}

static int is_premature_end(const json_error_t *je)
{
#if JANSSON_VERSION_HEX >= 0x020b00
    return json_error_code(je) == json_error_premature_end_of_input;
#else
    return strstr(je->text, "premature end") != NULL;
#endif
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    default: return "null";
    }
}

static int add_meta(struct awq_safetensors *st, const char *key, const char *value, struct awq_errbuf *err)
{
    for (size_t i = 0; i < st->nmeta; i++)
        if (!strcmp(st->meta[i].key, key))
            return 0;                       /* the first file's value wins */
    struct st_meta *m = awq_array_reserve(st->meta, st->nmeta, &st->cap_meta, sizeof *m, 8);
    if (!m)
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory reading __metadata__");
    st->meta = m;
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory reading __metadata__");
    }
    st->meta[st->nmeta].key = k;
    st->meta[st->nmeta].value = v;
    st->nmeta++;
    return 0;
}

static int read_metadata(struct awq_safetensors *st, const char *path, json_t *m, struct awq_errbuf *err)
{
    if (!json_is_object(m))
        return awq_err_set(err, AWQ_ERR_BAD_JSON, "%s: __metadata__ is a JSON %s, not an object of strings",
                           path, json_kind(m));
    const char *key;
    json_t *v;
    json_object_foreach(m, key, v) {
        if (!json_is_string(v))
            return awq_err_set(err, AWQ_ERR_BAD_JSON, "%s: __metadata__ entry '" NAME_FMT
                               "' is a JSON %s, not a string", path, key, json_kind(v));
        int rc = add_meta(st, key, json_string_value(v), err);
        if (rc)
            return rc;
    }
    return 0;
}

/* Reads one header entry (everything but the checks against the other tensors). */
static int parse_entry(const char *path, const char *name, json_t *v, uint64_t data_size,
                       struct entry *e, struct awq_errbuf *err)
{
    e->name = name;
    if (!json_is_object(v))
        return awq_err_set(err, AWQ_ERR_BAD_JSON, "%s: tensor '" NAME_FMT "': entry is a JSON %s, not an object",
                           path, name, json_kind(v));
    json_t *dt = json_object_get(v, "dtype");
    json_t *shape = json_object_get(v, "shape");
    json_t *offs = json_object_get(v, "data_offsets");
    if (!dt || !json_is_string(dt))
        return awq_err_set(err, AWQ_ERR_BAD_JSON, "%s: tensor '" NAME_FMT "': %s", path, name,
                           dt ? "dtype is not a string" : "no dtype");
    if (!shape || !json_is_array(shape))
        return awq_err_set(err, AWQ_ERR_BAD_JSON, "%s: tensor '" NAME_FMT "': %s", path, name,
                           shape ? "shape is not an array" : "no shape");
    if (!offs || !json_is_array(offs))
        return awq_err_set(err, AWQ_ERR_BAD_JSON, "%s: tensor '" NAME_FMT "': %s", path, name,
                           offs ? "data_offsets is not an array" : "no data_offsets");

    if (awq_dtype_from_name(json_string_value(dt), &e->dtype) < 0)
        return awq_err_set(err, AWQ_ERR_BAD_DTYPE, "%s: tensor '" NAME_FMT "': unknown dtype '%.40s' "
                           "(supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)",
                           path, name, json_string_value(dt));

    size_t nd = json_array_size(shape);
    if (nd > AWQ_ST_MAX_DIMS)
        return awq_err_set(err, AWQ_ERR_BAD_SHAPE, "%s: tensor '" NAME_FMT "': %zu dimensions, at most %d supported",
                           path, name, nd, AWQ_ST_MAX_DIMS);
    e->ndim = (int)nd;
    int has_zero = 0;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(shape, i);
        if (!json_is_integer(d))
            return awq_err_set(err, AWQ_ERR_BAD_SHAPE, "%s: tensor '" NAME_FMT "': shape entry %zu is a JSON %s, "
                               "not an integer", path, name, i, json_kind(d));
        json_int_t x = json_integer_value(d);
        if (x < 0)
            return awq_err_set(err, AWQ_ERR_BAD_SHAPE, "%s: tensor '" NAME_FMT "': shape entry %zu is negative (%lld)",
                               path, name, i, (long long)x);
        e->shape[i] = (int64_t)x;
        has_zero |= x == 0;
    }
    /* numel; a zero anywhere makes it 0 whatever the other dims are */
    size_t numel = 1;
    if (has_zero)
        numel = 0;
    else
        for (size_t i = 0; i < nd; i++) {
            uint64_t d = (uint64_t)e->shape[i];
            if (d > SIZE_MAX || numel > SIZE_MAX / (size_t)d)
                return awq_err_set(err, AWQ_ERR_BAD_SHAPE, "%s: tensor '" NAME_FMT "': shape overflows the "
                                   "element count", path, name);
            numel *= (size_t)d;
        }
    size_t esz = awq_dtype_size(e->dtype);
    if (numel > SIZE_MAX / esz)
        return awq_err_set(err, AWQ_ERR_BAD_SHAPE, "%s: tensor '" NAME_FMT "': shape overflows the byte size",
                           path, name);
    e->numel = numel;
    e->nbytes = numel * esz;

    if (json_array_size(offs) != 2)
        return awq_err_set(err, AWQ_ERR_BAD_OFFSETS, "%s: tensor '" NAME_FMT "': data_offsets has %zu entries, "
                           "needs [begin, end]", path, name, json_array_size(offs));
    json_int_t be[2];
    for (int i = 0; i < 2; i++) {
        json_t *o = json_array_get(offs, (size_t)i);
        if (!json_is_integer(o) || json_integer_value(o) < 0)
            return awq_err_set(err, AWQ_ERR_BAD_OFFSETS, "%s: tensor '" NAME_FMT "': data_offsets %s is not a "
                               "non-negative integer", path, name, i ? "end" : "begin");
        be[i] = json_integer_value(o);
    }
    e->begin = (uint64_t)be[0];
    e->end = (uint64_t)be[1];
    if (e->begin > e->end)
        return awq_err_set(err, AWQ_ERR_BAD_OFFSETS, "%s: tensor '" NAME_FMT "': data_offsets begin %llu > end %llu",
                           path, name, (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->end > data_size)
        return awq_err_set(err, AWQ_ERR_BAD_OFFSETS, "%s: tensor '" NAME_FMT "': data_offsets end %llu is past "
                           "the %llu bytes of data in the file (truncated?)", path, name,
                           (unsigned long long)e->end, (unsigned long long)data_size);
    if (e->end - e->begin != (uint64_t)e->nbytes) {
        char dims[200];
        size_t used = 0;
        dims[0] = '\0';
        for (int i = 0; i < e->ndim && used < sizeof dims; i++) {
            int w = snprintf(dims + used, sizeof dims - used, "%s%lld", i ? ", " : "", (long long)e->shape[i]);
            if (w < 0)
                break;
            used += (size_t)w;
        }
        return awq_err_set(err, AWQ_ERR_BAD_SHAPE, "%s: tensor '" NAME_FMT "': %s [%s] needs %zu bytes but "
                           "data_offsets span %llu", path, name, awq_dtype_name(e->dtype), dims, e->nbytes,
                           (unsigned long long)(e->end - e->begin));
    }
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* When the length field points past the end of the file: a file cut inside its header (the JSON
 * stops early) is TRUNCATED; otherwise the length field itself is wrong. */
static int header_past_end(const struct st_file *f)
{
    size_t avail = f->size - 8;
    const unsigned char *p = f->base + 8;
    size_t i = 0;
    while (i < avail && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    if (i == avail || p[i] != '{')     /* not even the start of a header: the length is wrong */
        return AWQ_ERR_HEADER_TOO_LARGE;
    json_error_t je;
    json_t *probe = json_loadb((const char *)f->base + 8, avail, JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &je);
    if (!probe && is_premature_end(&je))
        return AWQ_ERR_TRUNCATED;
    json_decref(probe);
    return AWQ_ERR_HEADER_TOO_LARGE;
}

static int grow_tensors(struct awq_safetensors *st, size_t more, struct awq_errbuf *err)
{
    if (st->n + more <= st->cap)
        return 0;
    size_t nc = st->cap ? st->cap : 64;
    while (nc < st->n + more)
        nc *= 2;
    struct awq_st_tensor *t = realloc(st->t, nc * sizeof *t);
    if (!t)
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory for %zu tensors", nc);
    st->t = t;
    st->cap = nc;
    return 0;
}

/* Checks the header of files[fi] and appends its tensors in file order. */
static int parse_file(struct awq_safetensors *st, size_t fi, struct awq_errbuf *err)
{
    const struct st_file *f = &st->files[fi];
    if (f->size < 8)
        return awq_err_set(err, AWQ_ERR_TRUNCATED, "%s: file has %zu bytes; a safetensors file starts with an "
                           "8-byte header length", f->path, f->size);
    uint64_t n = le64(f->base);
    if (n > AWQ_ST_MAX_HEADER)
        return awq_err_set(err, AWQ_ERR_HEADER_TOO_LARGE, "%s: header length %llu is above the limit of %llu bytes "
                           "(100 MB)", f->path, (unsigned long long)n, AWQ_ST_MAX_HEADER);
    if (n > f->size - 8) {
        int code = header_past_end(f);
        if (code == AWQ_ERR_TRUNCATED)
            return awq_err_set(err, code, "%s: file ends inside its header: header length %llu, but only %zu bytes "
                               "follow the length field", f->path, (unsigned long long)n, f->size - 8);
        return awq_err_set(err, code, "%s: header length %llu is larger than the file (only %zu bytes follow the "
                           "length field)", f->path, (unsigned long long)n, f->size - 8);
    }
    if (n == 0)
        return awq_err_set(err, AWQ_ERR_BAD_JSON, "%s: header length is 0; the header must be a JSON object",
                           f->path);
    uint64_t data_size = f->size - 8 - n;

    json_error_t je;
    json_t *root = json_loadb((const char *)f->base + 8, (size_t)n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!root) {
        if (is_duplicate_error(&je))
            return awq_err_set(err, AWQ_ERR_DUPLICATE, "%s: header names a tensor twice: %s (line %d, column %d)",
                               f->path, je.text, je.line, je.column);
        return awq_err_set(err, AWQ_ERR_BAD_JSON, "%s: header is not valid JSON: %s (line %d, column %d)",
                           f->path, je.text, je.line, je.column);
    }
    int rc = 0;
    struct entry *es = NULL;
    if (!json_is_object(root)) {
        rc = awq_err_set(err, AWQ_ERR_BAD_JSON, "%s: header is a JSON %s, not an object", f->path, json_kind(root));
        goto out;
    }
    size_t cnt = json_object_size(root);
    es = calloc(cnt ? cnt : 1, sizeof *es);
    if (!es) {
        rc = awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "%s: out of memory for %zu header entries", f->path, cnt);
        goto out;
    }
    size_t ne = 0;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "__metadata__")) {
            if ((rc = read_metadata(st, f->path, v, err)))
                goto out;
            continue;
        }
        if ((rc = parse_entry(f->path, key, v, data_size, &es[ne], err)))
            goto out;
        es[ne].order = ne;
        ne++;
    }
    qsort(es, ne, sizeof *es, cmp_entry);
    /* sorted by begin: a tensor overlaps an earlier one iff it starts before the furthest end so
     * far; empty tensors own no bytes */
    const struct entry *far = NULL;
    for (size_t i = 0; i < ne; i++) {
        if (es[i].begin == es[i].end)
            continue;
        if (far && es[i].begin < far->end) {
            rc = awq_err_set(err, AWQ_ERR_OVERLAP, "%s: tensors '" NAME_FMT "' [%llu, %llu) and '" NAME_FMT
                             "' [%llu, %llu) overlap", f->path, far->name, (unsigned long long)far->begin,
                             (unsigned long long)far->end, es[i].name, (unsigned long long)es[i].begin,
                             (unsigned long long)es[i].end);
            goto out;
        }
        if (!far || es[i].end > far->end)
            far = &es[i];
    }
    if ((rc = grow_tensors(st, ne, err)))
        goto out;
    const unsigned char *data = f->base + 8 + n;
    for (size_t i = 0; i < ne; i++) {
        char *name = strdup(es[i].name);
        if (!name) {
            rc = awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "%s: out of memory", f->path);
            goto out;
        }
        struct awq_st_tensor *t = &st->t[st->n++];
        memset(t, 0, sizeof *t);
        t->name = name;
        t->dtype = es[i].dtype;
        t->ndim = es[i].ndim;
        memcpy(t->shape, es[i].shape, sizeof t->shape);
        t->numel = es[i].numel;
        t->nbytes = es[i].nbytes;
        t->data = data + es[i].begin;
        t->shard = (int)fi;
    }
out:
    free(es);
    json_decref(root);
    return rc;
}

static int cmp_name_ptr(const void *a, const void *b)
{
    const struct awq_st_tensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* Builds the by-name index; a name seen twice (across shards) is AWQ_ERR_DUPLICATE. */
static int build_index(struct awq_safetensors *st, struct awq_errbuf *err)
{
    const struct awq_st_tensor **p = malloc((st->n ? st->n : 1) * sizeof *p);
    st->by_name = malloc((st->n ? st->n : 1) * sizeof *st->by_name);
    if (!p || !st->by_name) {
        free(p);
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory indexing %zu tensors", st->n);
    }
    for (size_t i = 0; i < st->n; i++)
        p[i] = &st->t[i];
    qsort(p, st->n, sizeof *p, cmp_name_ptr);
    int rc = 0;
    for (size_t i = 0; i < st->n; i++) {
        st->by_name[i] = (size_t)(p[i] - st->t);
        if (i && !strcmp(p[i]->name, p[i - 1]->name)) {
            rc = awq_err_set(err, AWQ_ERR_DUPLICATE, "tensor '" NAME_FMT "' is in both %s and %s", p[i]->name,
                             st->files[p[i - 1]->shard].path, st->files[p[i]->shard].path);
            break;
        }
    }
    free(p);
    return rc;
}

void awq_safetensors_close(struct awq_safetensors *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->nfiles; i++) {
        if (st->files[i].mapped && st->files[i].size)
            munmap((void *)st->files[i].base, st->files[i].size);
        free(st->files[i].path);
    }
    for (size_t i = 0; i < st->n; i++)
        free((char *)st->t[i].name);
    for (size_t i = 0; i < st->nmeta; i++) {
        free(st->meta[i].key);
        free(st->meta[i].value);
    }
    free(st->files);
    free(st->t);
    free(st->by_name);
    free(st->meta);
    free(st->index_path);
    free(st);
}

/* Maps `path` into files[fi] (path already stored there). */
static int map_file(struct st_file *f, struct awq_errbuf *err)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return awq_err_set(err, errno == ENOENT ? AWQ_ERR_NOT_FOUND : AWQ_ERR_IO, "%s: cannot open: %s",
                           f->path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        int e = errno;
        close(fd);
        return awq_err_set(err, AWQ_ERR_IO, "%s: cannot stat: %s", f->path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return awq_err_set(err, AWQ_ERR_IO, "%s: not a regular file", f->path);
    }
    if ((uintmax_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return awq_err_set(err, AWQ_ERR_IO, "%s: file too large to map on this system", f->path);
    }
    f->size = (size_t)sb.st_size;
    if (f->size == 0) {          /* mmap refuses length 0; parse_file reports the truncation */
        close(fd);
        f->base = (const unsigned char *)"";
        return 0;
    }
    void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (m == MAP_FAILED)
        return awq_err_set(err, AWQ_ERR_IO, "%s: cannot map %zu bytes: %s", f->path, f->size, strerror(e));
    f->base = m;
    f->mapped = 1;
    return 0;
}

static struct awq_safetensors *st_new(size_t nfiles)
{
    struct awq_safetensors *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->files = calloc(nfiles ? nfiles : 1, sizeof *st->files);
    if (!st->files) {
        free(st);
        return NULL;
    }
    return st;
}

static int finish(struct awq_safetensors *st, struct awq_safetensors **out, int rc, struct awq_errbuf *err)
{
    if (!rc)
        rc = build_index(st, err);
    if (rc) {
        awq_safetensors_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

int awq_safetensors_open_buffer(const void *data, size_t size, const char *label,
                                struct awq_safetensors **out, struct awq_errbuf *err)
{
    if (!out || (!data && size))
        return awq_err_set(err, AWQ_ERR_INVALID_ARGUMENT, "awq_safetensors_open_buffer: NULL argument");
    *out = NULL;
    struct awq_safetensors *st = st_new(1);
    if (!st || !(st->files[0].path = strdup(label ? label : "(memory)"))) {
        awq_safetensors_close(st);
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    }
    st->nfiles = 1;
    st->files[0].base = data ? data : (const void *)"";
    st->files[0].size = size;
    return finish(st, out, parse_file(st, 0, err), err);
}

static int open_single(const char *path, struct awq_safetensors **out, struct awq_errbuf *err)
{
    struct awq_safetensors *st = st_new(1);
    if (!st || !(st->files[0].path = strdup(path))) {
        awq_safetensors_close(st);
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    }
    st->nfiles = 1;
    int rc = map_file(&st->files[0], err);
    if (!rc)
        rc = parse_file(st, 0, err);
    return finish(st, out, rc, err);
}

static char *join_path(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

/* The directory part of `path` ("." when it has none). */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

/* A shard name must be a plain file name in the index's directory. */
static int safe_shard_name(const char *s)
{
    return *s && strcmp(s, ".") && strcmp(s, "..") && !strchr(s, '/') && !strchr(s, '\\');
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int open_index(const char *path, struct awq_safetensors **out, struct awq_errbuf *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return awq_err_set(err, errno == ENOENT ? AWQ_ERR_NOT_FOUND : AWQ_ERR_IO, "%s: cannot open: %s", path,
                           strerror(errno));
    json_error_t je;
    json_t *root = json_loadf(fp, JSON_REJECT_DUPLICATES, &je);
    fclose(fp);
    if (!root) {
        if (is_duplicate_error(&je))
            return awq_err_set(err, AWQ_ERR_DUPLICATE, "%s: a key appears twice: %s (line %d, column %d)", path,
                               je.text, je.line, je.column);
        return awq_err_set(err, AWQ_ERR_BAD_JSON, "%s: not valid JSON: %s (line %d, column %d)", path, je.text,
                           je.line, je.column);
    }
    int rc = 0;
    struct awq_safetensors *st = NULL;
    const char **names = NULL;
    char *dir = NULL;
    json_t *wm = json_object_get(root, "weight_map");
    json_t *md = json_object_get(root, "metadata");
    if (!json_is_object(root) || !wm || !json_is_object(wm)) {
        rc = awq_err_set(err, AWQ_ERR_BAD_JSON, "%s: a shard index must be a JSON object with a \"weight_map\" object",
                         path);
        goto out;
    }
    if (md && !json_is_object(md) && !json_is_null(md)) {
        rc = awq_err_set(err, AWQ_ERR_BAD_JSON, "%s: \"metadata\" is a JSON %s, not an object", path, json_kind(md));
        goto out;
    }
    size_t nmap = json_object_size(wm);
    if (nmap == 0) {
        rc = awq_err_set(err, AWQ_ERR_BAD_JSON, "%s: weight_map lists no tensors", path);
        goto out;
    }
    names = malloc(nmap * sizeof *names);
    if (!names) {
        rc = awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        goto out;
    }
    size_t nn = 0;
    const char *key;
    json_t *v;
    json_object_foreach(wm, key, v) {
        if (!json_is_string(v)) {
            rc = awq_err_set(err, AWQ_ERR_BAD_JSON, "%s: weight_map entry '" NAME_FMT "' is a JSON %s, not a file name",
                             path, key, json_kind(v));
            goto out;
        }
        if (!safe_shard_name(json_string_value(v))) {
            rc = awq_err_set(err, AWQ_ERR_BAD_JSON, "%s: weight_map entry '" NAME_FMT "' names shard '" NAME_FMT
                             "', which is not a plain file name in the index's directory", path, key,
                             json_string_value(v));
            goto out;
        }
        names[nn++] = json_string_value(v);
    }
    qsort(names, nn, sizeof *names, cmp_str_ptr);
    size_t nf = 0;
    for (size_t i = 0; i < nn; i++)
        if (!nf || strcmp(names[i], names[nf - 1]))
            names[nf++] = names[i];

    dir = dir_of(path);
    st = st_new(nf);
    if (!dir || !st || !(st->index_path = strdup(path))) {
        rc = awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        goto out;
    }
    for (size_t i = 0; i < nf; i++) {
        struct st_file *f = &st->files[i];
        if (!(f->path = join_path(dir, names[i]))) {
            rc = awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
            goto out;
        }
        st->nfiles = i + 1;
        if ((rc = map_file(f, err))) {
            if (rc == AWQ_ERR_NOT_FOUND)
                rc = awq_err_set(err, AWQ_ERR_NOT_FOUND, "%s: shard '" NAME_FMT "' listed in the index is missing (%s)",
                                 path, names[i], f->path);
            goto out;
        }
        if ((rc = parse_file(st, i, err)))
            goto out;
    }
    if ((rc = build_index(st, err)))
        goto out;
    /* the index and the shards must agree both ways */
    json_object_foreach(wm, key, v) {
        const struct awq_st_tensor *t = awq_safetensors_find(st, key);
        const char *want = json_string_value(v);
        if (!t) {
            rc = awq_err_set(err, AWQ_ERR_NOT_FOUND, "%s: weight_map lists tensor '" NAME_FMT "' in %s, which has no "
                             "such tensor", path, key, want);
            goto out;
        }
        const char *slash = strrchr(st->files[t->shard].path, '/');
        if (strcmp(slash ? slash + 1 : st->files[t->shard].path, want)) {
            rc = awq_err_set(err, AWQ_ERR_NOT_FOUND, "%s: weight_map lists tensor '" NAME_FMT "' in %s, but it is in %s",
                             path, key, want, st->files[t->shard].path);
            goto out;
        }
    }
    if (st->n != nmap)
        for (size_t i = 0; i < st->n; i++)
            if (!json_object_get(wm, st->t[i].name)) {
                rc = awq_err_set(err, AWQ_ERR_NOT_FOUND, "%s: tensor '" NAME_FMT "' of %s is not listed in weight_map",
                                 path, st->t[i].name, st->files[st->t[i].shard].path);
                goto out;
            }
out:
    free(names);
    free(dir);
    json_decref(root);
    if (rc) {
        awq_safetensors_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static int is_regular(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int open_dir(const char *dir, struct awq_safetensors **out, struct awq_errbuf *err)
{
    char *p = join_path(dir, INDEX_NAME);
    if (!p)
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    if (is_regular(p)) {
        int rc = open_index(p, out, err);
        free(p);
        return rc;
    }
    free(p);
    if (!(p = join_path(dir, SINGLE_NAME)))
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    if (is_regular(p)) {
        int rc = open_single(p, out, err);
        free(p);
        return rc;
    }
    free(p);
    DIR *d = opendir(dir);
    if (!d)
        return awq_err_set(err, AWQ_ERR_IO, "%s: cannot read the directory: %s", dir, strerror(errno));
    char *found = NULL, *second = NULL;
    size_t count = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || !ends_with(de->d_name, ".safetensors"))
            continue;
        char *full = join_path(dir, de->d_name);
        if (full && is_regular(full)) {
            count++;
            if (!found)
                found = full;
            else if (!second)
                second = full;
            else
                free(full);
        } else
            free(full);
    }
    closedir(d);
    int rc;
    if (count == 1)
        rc = open_single(found, out, err);
    else if (count == 0)
        rc = awq_err_set(err, AWQ_ERR_NOT_FOUND, "%s: no " INDEX_NAME ", " SINGLE_NAME " or other .safetensors file "
                         "in this directory", dir);
    else
        rc = awq_err_set(err, AWQ_ERR_NOT_FOUND, "%s: %zu .safetensors files (%s, %s...) but no " INDEX_NAME
                         " saying how they fit together", dir, count, found, second);
    free(found);
    free(second);
    return rc;
}

int awq_safetensors_open(const char *path, struct awq_safetensors **out, struct awq_errbuf *err)
{
    if (!path || !out)
        return awq_err_set(err, AWQ_ERR_INVALID_ARGUMENT, "awq_safetensors_open: NULL argument");
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) < 0)
        return awq_err_set(err, errno == ENOENT ? AWQ_ERR_NOT_FOUND : AWQ_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return open_dir(path, out, err);
    if (ends_with(path, ".json"))
        return open_index(path, out, err);
    return open_single(path, out, err);
}

size_t awq_safetensors_count(const struct awq_safetensors *st)
{
    return st ? st->n : 0;
}

const struct awq_st_tensor *awq_safetensors_at(const struct awq_safetensors *st, size_t i)
{
    return st && i < st->n ? &st->t[i] : NULL;
}

const struct awq_st_tensor *awq_safetensors_find(const struct awq_safetensors *st, const char *name)
{
    if (!st || !name || !st->by_name)
        return NULL;
    size_t lo = 0, hi = st->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->t[st->by_name[mid]].name, name);
        if (c == 0)
            return &st->t[st->by_name[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *awq_safetensors_meta(const struct awq_safetensors *st, const char *key)
{
    if (!st || !key)
        return NULL;
    for (size_t i = 0; i < st->nmeta; i++)
        if (!strcmp(st->meta[i].key, key))
            return st->meta[i].value;
    return NULL;
}

size_t awq_safetensors_meta_count(const struct awq_safetensors *st)
{
    return st ? st->nmeta : 0;
}

void awq_safetensors_meta_at(const struct awq_safetensors *st, size_t i, const char **key, const char **value)
{
    int ok = st && i < st->nmeta;
    if (key)
        *key = ok ? st->meta[i].key : NULL;
    if (value)
        *value = ok ? st->meta[i].value : NULL;
}

size_t awq_safetensors_shards(const struct awq_safetensors *st)
{
    return st ? st->nfiles : 0;
}

const char *awq_safetensors_shard_path(const struct awq_safetensors *st, size_t i)
{
    return st && i < st->nfiles ? st->files[i].path : NULL;
}

size_t awq_safetensors_shard_size(const struct awq_safetensors *st, size_t i)
{
    return st && i < st->nfiles ? st->files[i].size : 0;
}

const char *awq_safetensors_index_path(const struct awq_safetensors *st)
{
    return st ? st->index_path : NULL;
}

int awq_st_tensor_to_f32(const struct awq_st_tensor *t, float *dst, struct awq_errbuf *err)
{
    if (!t || (!dst && t->numel))
        return awq_err_set(err, AWQ_ERR_INVALID_ARGUMENT, "awq_st_tensor_to_f32: NULL argument");
    const unsigned char *src = t->data;
    size_t n = t->numel;
    switch (t->dtype) {
    case AWQ_DTYPE_F32:
        if (n)
            memcpy(dst, src, n * sizeof(float));
        return 0;
    case AWQ_DTYPE_F16:
    case AWQ_DTYPE_BF16:
        /* the data of a file whose header length is not a multiple of 8 may be odd-aligned */
        if (((uintptr_t)src & 1) == 0) {
            if (t->dtype == AWQ_DTYPE_F16)
                awq_f16_to_f32_n((const uint16_t *)(const void *)src, dst, n);
            else
                awq_bf16_to_f32_n((const uint16_t *)(const void *)src, dst, n);
        } else {
            for (size_t i = 0; i < n; i++) {
                uint16_t h;
                memcpy(&h, src + 2 * i, 2);
                dst[i] = t->dtype == AWQ_DTYPE_F16 ? awq_f16_to_f32(h) : awq_bf16_to_f32(h);
            }
        }
        return 0;
    case AWQ_DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, src + 8 * i, 8);
            dst[i] = (float)d;
        }
        return 0;
    default:
        return awq_err_set(err, AWQ_ERR_BAD_DTYPE, "tensor '" NAME_FMT "' is %s; only F32, F16, BF16 and F64 "
                           "convert to fp32", t->name, awq_dtype_name(t->dtype));
    }
}
