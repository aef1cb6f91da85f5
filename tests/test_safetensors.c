/* Safetensors reader and writer: round trips (single file, shards with an index), every kind of
 * malformed input with its own status and message, atomic saving, and a random-corruption loop
 * (open must fail cleanly or succeed with every tensor inside the file, never crash). */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/safetensors.h"
#include "testutil.h"
#include "util/half.h"

static char *tmp;   /* per-test directory (each test runs in its own forked process, or in turn) */

static void setup(void)
{
    tmp = tu_tmpdir("st");
    ck_assert_ptr_nonnull(tmp);
}

static void teardown(void)
{
    tu_rmtree(tmp);
    free(tmp);
    tmp = NULL;
}

static char *path_in(const char *name)
{
    size_t n = strlen(tmp) + strlen(name) + 2;
    char *p = malloc(n);
    ck_assert_ptr_nonnull(p);
    snprintf(p, n, "%s/%s", tmp, name);
    return p;
}

/* Writes <tmp>/name = le64(hlen) + header + data; hlen = strlen(header) unless given. */
static char *write_raw(const char *name, const char *header, uint64_t hlen, const void *data, size_t ndata)
{
    size_t h = strlen(header);
    if (hlen == UINT64_MAX)
        hlen = h;
    unsigned char *buf = malloc(8 + h + ndata + 1);
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(buf + 8, header, h);
    if (ndata)
        memcpy(buf + 8 + h, data, ndata);
    char *p = path_in(name);
    ck_assert_int_eq(tu_write_file(p, buf, 8 + h + ndata), 0);
    free(buf);
    return p;
}

static void write_text(const char *name, const char *text)
{
    char *p = path_in(name);
    ck_assert_int_eq(tu_write_file(p, text, strlen(text)), 0);
    free(p);
}

/* Opening `path` must fail with `code` and a message containing every given fragment. */
static void expect_fail(const char *path, int code, const char *frag1, const char *frag2)
{
    struct awq_safetensors *st = (void *)1;
    struct awq_errbuf err = { 0, "" };
    int rc = awq_safetensors_open(path, &st, &err);
    ck_assert_msg(rc == code, "%s: expected %d (%s), got %d (%s): %s", path, code, awq_strerror(code), rc,
                  awq_strerror(rc), err.msg);
    ck_assert_ptr_null(st);
    ck_assert_int_eq(err.code, code);
    if (getenv("AWQ_TEST_VERBOSE"))
        fprintf(stderr, "  [%s] %s\n", awq_strerror(code), err.msg);
    ck_assert_msg(!frag1 || strstr(err.msg, frag1), "message '%s' lacks '%s'", err.msg, frag1);
    ck_assert_msg(!frag2 || strstr(err.msg, frag2), "message '%s' lacks '%s'", err.msg, frag2);
}

static void expect_header_fail(const char *header, size_t ndata, int code, const char *frag1, const char *frag2)
{
    unsigned char *data = calloc(1, ndata + 1);
    char *p = write_raw("bad.safetensors", header, UINT64_MAX, data, ndata);
    expect_fail(p, code, frag1, frag2 ? frag2 : "bad.safetensors");
    free(p);
    free(data);
}

static struct awq_safetensors *open_ok(const char *path)
{
    struct awq_safetensors *st = NULL;
    struct awq_errbuf err = { 0, "" };
    int rc = awq_safetensors_open(path, &st, &err);
    ck_assert_msg(rc == 0, "%s: %d %s", path, rc, err.msg);
    ck_assert_ptr_nonnull(st);
    return st;
}

/* ---- round trips ------------------------------------------------------------------------ */

struct sample {
    const char *name;
    awq_dtype dtype;
    int ndim;
    int64_t shape[AWQ_ST_MAX_DIMS];
    size_t nbytes;
    unsigned char *data;
};

static void fill_samples(struct sample *s, size_t n, uint64_t *rng)
{
    for (size_t i = 0; i < n; i++) {
        size_t numel = 1;
        for (int d = 0; d < s[i].ndim; d++)
            numel *= (size_t)s[i].shape[d];
        s[i].nbytes = numel * awq_dtype_size(s[i].dtype);
        s[i].data = malloc(s[i].nbytes + 1);
        for (size_t b = 0; b < s[i].nbytes; b++)
            s[i].data[b] = (unsigned char)tu_next(rng);
    }
}

static void free_samples(struct sample *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(s[i].data);
}

static void check_tensor(const struct awq_st_tensor *t, const struct sample *s)
{
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(t->name, s->name);
    ck_assert_int_eq(t->dtype, s->dtype);
    ck_assert_int_eq(t->ndim, s->ndim);
    for (int d = 0; d < s->ndim; d++)
        ck_assert_int_eq(t->shape[d], s->shape[d]);
    ck_assert_uint_eq(t->nbytes, s->nbytes);
    ck_assert_uint_eq(t->numel * awq_dtype_size(t->dtype), s->nbytes);
    ck_assert(s->nbytes == 0 || memcmp(t->data, s->data, s->nbytes) == 0);
}

static struct sample samples[] = {
    { "model.embed_tokens.weight", AWQ_DTYPE_F32, 2, { 5, 3 }, 0, NULL },
    { "a.scales", AWQ_DTYPE_F16, 1, { 7 }, 0, NULL },
    { "b.bf16", AWQ_DTYPE_BF16, 3, { 2, 1, 3 }, 0, NULL },
    { "c.qweight", AWQ_DTYPE_I32, 2, { 4, 2 }, 0, NULL },
    { "d.scalar", AWQ_DTYPE_I64, 0, { 0 }, 0, NULL },
    { "e.empty", AWQ_DTYPE_F32, 2, { 0, 4 }, 0, NULL },
    { "f.mask", AWQ_DTYPE_BOOL, 1, { 3 }, 0, NULL },
    { "g.i8", AWQ_DTYPE_I8, 1, { 5 }, 0, NULL },
    { "h.i16", AWQ_DTYPE_I16, 2, { 1, 1 }, 0, NULL },
    { "i.u8", AWQ_DTYPE_U8, 1, { 9 }, 0, NULL },
    { "j.f64", AWQ_DTYPE_F64, 1, { 2 }, 0, NULL },
    { "k.\xc3\xa9t\xc3\xa9 \"quoted\"", AWQ_DTYPE_F32, 8, { 1, 1, 1, 1, 1, 1, 1, 2 }, 0, NULL },
    { "l.empty_last", AWQ_DTYPE_F16, 1, { 0 }, 0, NULL },
};
#define NSAMPLES (sizeof samples / sizeof samples[0])

static struct awq_st_writer *writer_of(struct sample *s, size_t n)
{
    struct awq_st_writer *w;
    struct awq_errbuf err = { 0, "" };
    ck_assert_int_eq(awq_st_writer_create(&w), 0);
    for (size_t i = 0; i < n; i++) {
        int rc = awq_st_writer_add(w, s[i].name, s[i].dtype, s[i].ndim, s[i].shape, s[i].data, s[i].nbytes, &err);
        ck_assert_msg(rc == 0, "%s", err.msg);
    }
    return w;
}

static unsigned char *read_whole(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)sz + 1);
    ck_assert_uint_eq(fread(b, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return b;
}

START_TEST(test_roundtrip_single)
{
    uint64_t rng = tu_seed();
    fill_samples(samples, NSAMPLES, &rng);
    struct awq_st_writer *w = writer_of(samples, NSAMPLES);
    struct awq_errbuf err = { 0, "" };
    ck_assert_int_eq(awq_st_writer_meta(w, "format", "pt", &err), 0);
    ck_assert_int_eq(awq_st_writer_meta(w, "awq.version", "0", &err), 0);
    ck_assert_int_eq(awq_st_writer_meta(w, "awq.version", "0.1.0", &err), 0);   /* replaces */
    ck_assert_int_eq(awq_st_writer_meta(w, "note", "line\nbreak \"q\" \xe2\x9c\x93", &err), 0);
    size_t total = 0;
    for (size_t i = 0; i < NSAMPLES; i++)
        total += samples[i].nbytes;
    ck_assert_uint_eq(awq_st_writer_bytes(w), total);

    char *p = path_in("model.safetensors");
    ck_assert_int_eq(tu_write_file(p, "previous contents", 17), 0);
    struct stat sb;
    ck_assert_int_eq(chmod(p, 0640), 0);
    int rc = awq_st_writer_save(w, p, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    awq_st_writer_destroy(w);

    /* the layout: 8-byte aligned header, __metadata__ first, contiguous data */
    size_t fsz;
    unsigned char *raw = read_whole(p, &fsz);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | raw[i];
    ck_assert_uint_eq(hlen % 8, 0);
    ck_assert_uint_eq(fsz, 8 + hlen + total);
    ck_assert(memcmp(raw + 8, "{\"__metadata__\":", 16) == 0);
    ck_assert(raw[8 + hlen - 1] == ' ' || raw[8 + hlen - 1] == '}');
    free(raw);
    ck_assert_int_eq(stat(p, &sb), 0);
    ck_assert_uint_eq(sb.st_mode & 0777, 0640);   /* the mode of the file it replaced */

    /* open by file and by directory: same answer */
    for (int way = 0; way < 2; way++) {
        struct awq_safetensors *st = open_ok(way ? tmp : p);
        ck_assert_uint_eq(awq_safetensors_count(st), NSAMPLES);
        ck_assert_uint_eq(awq_safetensors_shards(st), 1);
        ck_assert_str_eq(awq_safetensors_shard_path(st, 0), p);
        ck_assert_ptr_null(awq_safetensors_index_path(st));
        for (size_t i = 0; i < NSAMPLES; i++) {
            check_tensor(awq_safetensors_at(st, i), &samples[i]);   /* insertion order kept */
            ck_assert_ptr_eq(awq_safetensors_find(st, samples[i].name), awq_safetensors_at(st, i));
            ck_assert_int_eq(awq_safetensors_at(st, i)->shard, 0);
        }
        ck_assert_ptr_null(awq_safetensors_find(st, "nope"));
        ck_assert_ptr_null(awq_safetensors_at(st, NSAMPLES));
        ck_assert_str_eq(awq_safetensors_meta(st, "format"), "pt");
        ck_assert_str_eq(awq_safetensors_meta(st, "awq.version"), "0.1.0");
        ck_assert_str_eq(awq_safetensors_meta(st, "note"), "line\nbreak \"q\" \xe2\x9c\x93");
        ck_assert_ptr_null(awq_safetensors_meta(st, "missing"));
        ck_assert_uint_eq(awq_safetensors_meta_count(st), 3);
        const char *k, *v;
        awq_safetensors_meta_at(st, 0, &k, &v);
        ck_assert_str_eq(k, "format");
        ck_assert_str_eq(v, "pt");
        awq_safetensors_close(st);
    }
    free(p);
    free_samples(samples, NSAMPLES);
}
END_TEST

START_TEST(test_to_f32)
{
    float ref[6] = { 1.0f, -2.5f, 0.1f, 65504.0f, 5.9604645e-8f, -0.0f };
    uint16_t h[6], b[6];
    double d[6];
    for (int i = 0; i < 6; i++) {
        h[i] = awq_f32_to_f16(ref[i]);
        b[i] = awq_f32_to_bf16(ref[i]);
        d[i] = ref[i];
    }
    int32_t q[3] = { 1, 2, 3 };
    int64_t shape[1] = { 6 }, shape3[1] = { 3 };
    struct awq_st_writer *w;
    struct awq_errbuf err = { 0, "" };
    ck_assert_int_eq(awq_st_writer_create(&w), 0);
    ck_assert_int_eq(awq_st_writer_add(w, "f32", AWQ_DTYPE_F32, 1, shape, ref, sizeof ref, &err), 0);
    ck_assert_int_eq(awq_st_writer_add(w, "f16", AWQ_DTYPE_F16, 1, shape, h, sizeof h, &err), 0);
    ck_assert_int_eq(awq_st_writer_add(w, "bf16", AWQ_DTYPE_BF16, 1, shape, b, sizeof b, &err), 0);
    ck_assert_int_eq(awq_st_writer_add(w, "f64", AWQ_DTYPE_F64, 1, shape, d, sizeof d, &err), 0);
    ck_assert_int_eq(awq_st_writer_add(w, "i32", AWQ_DTYPE_I32, 1, shape3, q, sizeof q, &err), 0);
    char *p = path_in("x.safetensors");
    ck_assert_int_eq(awq_st_writer_save(w, p, &err), 0);
    awq_st_writer_destroy(w);
    struct awq_safetensors *st = open_ok(p);
    float out[6];
    const char *names[4] = { "f32", "f16", "bf16", "f64" };
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq(awq_st_tensor_to_f32(awq_safetensors_find(st, names[k]), out, &err), 0);
        for (int i = 0; i < 6; i++) {
            float want = k == 1 ? awq_f16_to_f32(h[i]) : k == 2 ? awq_bf16_to_f32(b[i]) : ref[i];
            ck_assert_msg(memcmp(&out[i], &want, 4) == 0, "%s[%d]: %g != %g", names[k], i, out[i], want);
        }
    }
    ck_assert_int_eq(awq_st_tensor_to_f32(awq_safetensors_find(st, "i32"), out, &err), AWQ_ERR_BAD_DTYPE);
    ck_assert_ptr_nonnull(strstr(err.msg, "i32"));
    ck_assert_ptr_nonnull(strstr(err.msg, "I32"));
    awq_safetensors_close(st);
    free(p);

    /* a header of odd length leaves fp16 data odd-aligned in the mapping */
    char hdr[128];
    snprintf(hdr, sizeof hdr, "{\"h\":{\"dtype\":\"F16\",\"shape\":[6],\"data_offsets\":[0,12]}}");
    if (strlen(hdr) % 2 == 0)
        strcat(hdr, " ");
    p = write_raw("odd.safetensors", hdr, UINT64_MAX, h, sizeof h);
    st = open_ok(p);
    const struct awq_st_tensor *t = awq_safetensors_find(st, "h");
    ck_assert_uint_eq((uintptr_t)t->data & 1, 1);
    ck_assert_int_eq(awq_st_tensor_to_f32(t, out, &err), 0);
    for (int i = 0; i < 6; i++)
        ck_assert(out[i] == awq_f16_to_f32(h[i]));
    awq_safetensors_close(st);
    free(p);
}
END_TEST

/* Writes shards from `samples` split at `cut` and the index naming them. */
static void write_sharded(size_t cut)
{
    struct awq_errbuf err = { 0, "" };
    struct awq_st_writer *w1 = writer_of(samples, cut), *w2 = writer_of(samples + cut, NSAMPLES - cut);
    ck_assert_int_eq(awq_st_writer_meta(w1, "format", "pt", &err), 0);
    ck_assert_int_eq(awq_st_writer_meta(w2, "format", "second", &err), 0);
    ck_assert_int_eq(awq_st_writer_meta(w2, "only2", "yes", &err), 0);
    char *p1 = path_in("model-00001-of-00002.safetensors"), *p2 = path_in("model-00002-of-00002.safetensors");
    ck_assert_int_eq(awq_st_writer_save(w1, p1, &err), 0);
    ck_assert_int_eq(awq_st_writer_save(w2, p2, &err), 0);
    awq_st_writer_destroy(w1);
    awq_st_writer_destroy(w2);
    free(p1);
    free(p2);
}

/* The index of write_sharded(cut), with the JSON-escaped names; `extra` goes into weight_map. */
static void write_index(size_t cut, const char *extra, const char *override_last_shard)
{
    size_t cap = 8192, used = 0;
    char *s = malloc(cap);
    used += (size_t)snprintf(s + used, cap - used, "{\"metadata\": {\"total_size\": 1234},\n \"weight_map\": {");
    for (size_t i = 0; i < NSAMPLES; i++) {
        const char *shard = i < cut ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
        if (i == NSAMPLES - 1 && override_last_shard)
            shard = override_last_shard;
        used += (size_t)snprintf(s + used, cap - used, "%s\n  \"", i ? "," : "");
        for (const char *c = samples[i].name; *c; c++) {
            if (*c == '"' || *c == '\\')
                s[used++] = '\\';
            s[used++] = *c;
        }
        used += (size_t)snprintf(s + used, cap - used, "\": \"%s\"", shard);
    }
    used += (size_t)snprintf(s + used, cap - used, "%s}}\n", extra ? extra : "");
    write_text("model.safetensors.index.json", s);
    free(s);
}

START_TEST(test_roundtrip_sharded)
{
    uint64_t rng = tu_seed();
    fill_samples(samples, NSAMPLES, &rng);
    write_sharded(5);
    write_index(5, NULL, NULL);
    write_text("model.safetensors", "a stale single file the index takes precedence over");
    char *idx = path_in("model.safetensors.index.json");
    for (int way = 0; way < 2; way++) {
        struct awq_safetensors *st = open_ok(way ? idx : tmp);
        ck_assert_uint_eq(awq_safetensors_count(st), NSAMPLES);
        ck_assert_uint_eq(awq_safetensors_shards(st), 2);
        ck_assert_ptr_nonnull(strstr(awq_safetensors_shard_path(st, 0), "model-00001-of-00002.safetensors"));
        ck_assert_ptr_nonnull(strstr(awq_safetensors_shard_path(st, 1), "model-00002-of-00002.safetensors"));
        ck_assert_uint_gt(awq_safetensors_shard_size(st, 1), 8);
        ck_assert_ptr_nonnull(strstr(awq_safetensors_index_path(st), "model.safetensors.index.json"));
        for (size_t i = 0; i < NSAMPLES; i++) {
            const struct awq_st_tensor *t = awq_safetensors_find(st, samples[i].name);
            check_tensor(t, &samples[i]);
            ck_assert_int_eq(t->shard, i < 5 ? 0 : 1);
            ck_assert_ptr_eq(awq_safetensors_at(st, i), t);   /* shard order, then file order */
        }
        ck_assert_str_eq(awq_safetensors_meta(st, "format"), "pt");   /* first shard wins */
        ck_assert_str_eq(awq_safetensors_meta(st, "only2"), "yes");
        awq_safetensors_close(st);
    }
    free(idx);
    free_samples(samples, NSAMPLES);
}
END_TEST

START_TEST(test_zero_size_and_gaps)
{
    /* empty tensors anywhere (even inside another's range: they own no bytes), gaps allowed */
    const char *h = "{\"z0\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                    "\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                    "\"z1\":{\"dtype\":\"F16\",\"shape\":[3,0],\"data_offsets\":[2,2]},"
                    "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[6,8]},"
                    "\"z2\":{\"dtype\":\"I64\",\"shape\":[0,9223372036854775807],\"data_offsets\":[8,8]},"
                    "\"__metadata__\":{}}";
    char *p = write_raw("z.safetensors", h, UINT64_MAX, "abcdefgh", 8);
    struct awq_safetensors *st = open_ok(p);
    ck_assert_uint_eq(awq_safetensors_count(st), 5);
    ck_assert_str_eq(awq_safetensors_at(st, 0)->name, "z0");
    ck_assert_str_eq(awq_safetensors_at(st, 1)->name, "a");
    ck_assert_str_eq(awq_safetensors_at(st, 2)->name, "z1");
    ck_assert_str_eq(awq_safetensors_at(st, 3)->name, "b");
    ck_assert_str_eq(awq_safetensors_at(st, 4)->name, "z2");
    ck_assert_uint_eq(awq_safetensors_find(st, "z2")->numel, 0);
    ck_assert(memcmp(awq_safetensors_find(st, "b")->data, "gh", 2) == 0);
    ck_assert_uint_eq(awq_safetensors_meta_count(st), 0);
    awq_safetensors_close(st);
    free(p);
    /* an empty header object is a valid file with no tensors */
    p = write_raw("empty.safetensors", "{}      ", UINT64_MAX, NULL, 0);
    st = open_ok(p);
    ck_assert_uint_eq(awq_safetensors_count(st), 0);
    awq_safetensors_close(st);
    free(p);
}
END_TEST

/* ---- malformed single files ------------------------------------------------------------- */

#define ENT(name, dt, shape, b, e) "\"" name "\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

START_TEST(test_truncated)
{
    char *p = write_raw("tiny.safetensors", "", UINT64_MAX, NULL, 0);   /* 8 bytes: length 0 */
    expect_fail(p, AWQ_ERR_BAD_JSON, "tiny.safetensors", "header length is 0");
    free(p);
    p = path_in("short.safetensors");
    ck_assert_int_eq(tu_write_file(p, "\x10\x00\x00", 3), 0);
    expect_fail(p, AWQ_ERR_TRUNCATED, "3 bytes", "8-byte header length");
    ck_assert_int_eq(tu_write_file(p, "", 0), 0);
    expect_fail(p, AWQ_ERR_TRUNCATED, "short.safetensors", "0 bytes");
    free(p);
    /* a valid file cut inside its header */
    const char *h = "{" ENT("w", "F32", "[2]", 0, 8) "}";
    char *full = write_raw("cut.safetensors", h, UINT64_MAX, "12345678", 8);
    size_t n;
    unsigned char *raw = read_whole(full, &n);
    ck_assert_int_eq(tu_write_file(full, raw, 8 + strlen(h) / 2), 0);
    expect_fail(full, AWQ_ERR_TRUNCATED, "ends inside its header", "cut.safetensors");
    /* ... and cut inside its data: the last tensor ends past the data */
    ck_assert_int_eq(tu_write_file(full, raw, n - 3), 0);
    expect_fail(full, AWQ_ERR_BAD_OFFSETS, "'w'", "past the 5 bytes of data");
    free(raw);
    free(full);
}
END_TEST

START_TEST(test_header_length)
{
    const char *h = "{" ENT("w", "F32", "[2]", 0, 8) "}";
    /* the JSON is complete but the length field claims more than the file holds */
    char *p = write_raw("long.safetensors", h, strlen(h) + 100, "12345678", 8);
    expect_fail(p, AWQ_ERR_HEADER_TOO_LARGE, "larger than the file", "long.safetensors");
    free(p);
    p = write_raw("garbage.safetensors", "\x01\x02\x03garbage", 1000, NULL, 0);
    expect_fail(p, AWQ_ERR_HEADER_TOO_LARGE, "header length 1000", "garbage.safetensors");
    free(p);
    /* above the 100 MB cap, whatever the file size */
    p = write_raw("huge.safetensors", h, 100000001ULL, NULL, 0);
    expect_fail(p, AWQ_ERR_HEADER_TOO_LARGE, "100000001", "100 MB");
    free(p);
    p = write_raw("huge2.safetensors", h, UINT64_MAX - 1, NULL, 0);
    expect_fail(p, AWQ_ERR_HEADER_TOO_LARGE, "18446744073709551614", "100 MB");
    free(p);
}
END_TEST

START_TEST(test_not_json)
{
    expect_header_fail("{\"w\": nope}", 0, AWQ_ERR_BAD_JSON, "not valid JSON", "line 1, column");
    expect_header_fail("{\"w\":\n {\"dtype\": \"F32\",,}}", 0, AWQ_ERR_BAD_JSON, "line 2", "column");
    expect_header_fail("\xff\xfe{}", 0, AWQ_ERR_BAD_JSON, "not valid JSON", NULL);
    expect_header_fail("{} trailing", 0, AWQ_ERR_BAD_JSON, "not valid JSON", NULL);
    expect_header_fail("{\"a\\u0000b\": 1}", 0, AWQ_ERR_BAD_JSON, "not valid JSON", NULL);
}
END_TEST

START_TEST(test_not_object)
{
    expect_header_fail("[1, 2, 3]", 0, AWQ_ERR_BAD_JSON, "header is a JSON array, not an object", NULL);
    expect_header_fail("\"text\"", 0, AWQ_ERR_BAD_JSON, "JSON string, not an object", NULL);
    expect_header_fail("42", 0, AWQ_ERR_BAD_JSON, "JSON integer, not an object", NULL);
    expect_header_fail("{\"w\": [1]}", 0, AWQ_ERR_BAD_JSON, "'w'", "not an object");
    expect_header_fail("{\"w\": {\"shape\":[1],\"data_offsets\":[0,4]}}", 4, AWQ_ERR_BAD_JSON, "'w'", "no dtype");
    expect_header_fail("{\"w\": {\"dtype\":3,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, AWQ_ERR_BAD_JSON,
                       "dtype is not a string", NULL);
    expect_header_fail("{\"w\": {\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, AWQ_ERR_BAD_JSON, "no shape", NULL);
    expect_header_fail("{\"w\": {\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,4]}}", 4, AWQ_ERR_BAD_JSON,
                       "shape is not an array", NULL);
    expect_header_fail("{\"w\": {\"dtype\":\"F32\",\"shape\":[1]}}", 4, AWQ_ERR_BAD_JSON, "no data_offsets", NULL);
    expect_header_fail("{\"__metadata__\": [\"x\"]}", 0, AWQ_ERR_BAD_JSON, "__metadata__ is a JSON array", NULL);
    expect_header_fail("{\"__metadata__\": {\"k\": 1}}", 0, AWQ_ERR_BAD_JSON, "'k'", "not a string");
}
END_TEST

START_TEST(test_bad_offsets)
{
    expect_header_fail("{" ENT("w", "F32", "[2]", 0, 8) "}", 7, AWQ_ERR_BAD_OFFSETS, "'w'", "past the 7 bytes");
    expect_header_fail("{" ENT("a", "U8", "[4]", 0, 4) "," ENT("w", "F32", "[2]", 16, 24) "}", 20,
                       AWQ_ERR_BAD_OFFSETS, "'w'", "end 24");
    expect_header_fail("{" ENT("w", "F32", "[0]", 8, 4) "}", 8, AWQ_ERR_BAD_OFFSETS, "'w'", "begin 8 > end 4");
    expect_header_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, AWQ_ERR_BAD_OFFSETS,
                       "'w'", "needs [begin, end]");
    expect_header_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, AWQ_ERR_BAD_OFFSETS,
                       "'w'", "begin is not a non-negative integer");
    expect_header_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.0]}}", 4, AWQ_ERR_BAD_OFFSETS,
                       "'w'", "end is not");
    expect_header_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999]}}", 4,
                       AWQ_ERR_BAD_JSON, "too big", NULL);
}
END_TEST

START_TEST(test_overlap)
{
    expect_header_fail("{" ENT("first", "F32", "[4]", 0, 16) "," ENT("second", "F32", "[4]", 8, 24) "}", 24,
                       AWQ_ERR_OVERLAP, "'first' [0, 16)", "'second' [8, 24)");
    /* listed out of order, and overlapping something other than its neighbour in the file */
    expect_header_fail("{" ENT("c", "U8", "[2]", 20, 22) "," ENT("big", "U8", "[32]", 0, 32) ","
                       ENT("mid", "U8", "[4]", 8, 12) "}", 32, AWQ_ERR_OVERLAP, "'big'", "'mid'");
    expect_header_fail("{" ENT("x", "U8", "[4]", 0, 4) "," ENT("y", "U8", "[4]", 0, 4) "}", 4,
                       AWQ_ERR_OVERLAP, "'x'", "'y'");
}
END_TEST

START_TEST(test_bad_shape)
{
    expect_header_fail("{" ENT("w", "F32", "[3]", 0, 16) "}", 16, AWQ_ERR_BAD_SHAPE, "'w'",
                       "F32 [3] needs 12 bytes but data_offsets span 16");
    expect_header_fail("{" ENT("w", "BF16", "[2, 2]", 0, 16) "}", 16, AWQ_ERR_BAD_SHAPE, "BF16 [2, 2] needs 8", NULL);
    expect_header_fail("{" ENT("w", "F32", "[-1]", 0, 4) "}", 4, AWQ_ERR_BAD_SHAPE, "'w'", "negative (-1)");
    expect_header_fail("{" ENT("w", "F32", "[2.5]", 0, 4) "}", 4, AWQ_ERR_BAD_SHAPE, "'w'",
                       "shape entry 0 is a JSON number, not an integer");
    expect_header_fail("{" ENT("w", "F32", "[1, \"3\"]", 0, 4) "}", 4, AWQ_ERR_BAD_SHAPE,
                       "shape entry 1 is a JSON string", NULL);
    expect_header_fail("{" ENT("w", "F32", "[1,1,1,1,1,1,1,1,1]", 0, 4) "}", 4, AWQ_ERR_BAD_SHAPE, "'w'",
                       "9 dimensions, at most 8");
    expect_header_fail("{" ENT("w", "U8", "[4294967296, 4294967296, 16]", 0, 4) "}", 4, AWQ_ERR_BAD_SHAPE, "'w'",
                       "overflows");
    expect_header_fail("{" ENT("w", "I64", "[4611686018427387904]", 0, 4) "}", 4, AWQ_ERR_BAD_SHAPE, "'w'",
                       "overflows");
}
END_TEST

START_TEST(test_bad_dtype)
{
    expect_header_fail("{" ENT("model.w", "F8_E4M3", "[4]", 0, 4) "}", 4, AWQ_ERR_BAD_DTYPE, "'model.w'",
                       "unknown dtype 'F8_E4M3'");
    expect_header_fail("{" ENT("w", "f32", "[1]", 0, 4) "}", 4, AWQ_ERR_BAD_DTYPE, "'f32'", NULL);
}
END_TEST

START_TEST(test_duplicate_names)
{
    expect_header_fail("{" ENT("w", "U8", "[1]", 0, 1) "," ENT("w", "U8", "[1]", 1, 2) "}", 2, AWQ_ERR_DUPLICATE,
                       "twice", "duplicate object key");
}
END_TEST

START_TEST(test_missing_paths)
{
    char *p = path_in("none.safetensors");
    expect_fail(p, AWQ_ERR_NOT_FOUND, "none.safetensors", NULL);
    free(p);
    /* a directory with nothing to open names itself */
    expect_fail(tmp, AWQ_ERR_NOT_FOUND, tmp, "no model.safetensors.index.json");
    write_text(".hidden.safetensors", "ignored");
    expect_fail(tmp, AWQ_ERR_NOT_FOUND, tmp, NULL);
    /* one other .safetensors file is taken; two are ambiguous */
    char *a = write_raw("adapter.safetensors", "{}", UINT64_MAX, NULL, 0);
    struct awq_safetensors *st = open_ok(tmp);
    ck_assert_str_eq(awq_safetensors_shard_path(st, 0), a);
    awq_safetensors_close(st);
    free(write_raw("other.safetensors", "{}", UINT64_MAX, NULL, 0));
    expect_fail(tmp, AWQ_ERR_NOT_FOUND, "2 .safetensors files", "model.safetensors.index.json");
    free(a);
}
END_TEST

/* ---- malformed shard indexes ------------------------------------------------------------ */

START_TEST(test_index_errors)
{
    uint64_t rng = tu_seed();
    fill_samples(samples, NSAMPLES, &rng);
    write_sharded(5);
    char *idx = path_in("model.safetensors.index.json");

    write_index(5, NULL, "model-00003-of-00002.safetensors");
    expect_fail(tmp, AWQ_ERR_NOT_FOUND, "model-00003-of-00002.safetensors", "missing");

    write_index(5, NULL, "../model-00002-of-00002.safetensors");
    expect_fail(tmp, AWQ_ERR_BAD_JSON, "'../model-00002-of-00002.safetensors'", "not a plain file name");
    write_index(5, NULL, "..");
    expect_fail(idx, AWQ_ERR_BAD_JSON, "not a plain file name", NULL);
    write_index(5, NULL, "/etc/passwd");
    expect_fail(idx, AWQ_ERR_BAD_JSON, "not a plain file name", NULL);

    write_text("model.safetensors.index.json", "{\"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\",}");
    expect_fail(tmp, AWQ_ERR_BAD_JSON, "not valid JSON", "line 1");
    write_text("model.safetensors.index.json", "{\"metadata\": {}}");
    expect_fail(tmp, AWQ_ERR_BAD_JSON, "weight_map", NULL);
    write_text("model.safetensors.index.json", "[]");
    expect_fail(tmp, AWQ_ERR_BAD_JSON, "weight_map", NULL);
    write_text("model.safetensors.index.json", "{\"weight_map\": {}}");
    expect_fail(tmp, AWQ_ERR_BAD_JSON, "no tensors", NULL);
    write_text("model.safetensors.index.json", "{\"weight_map\": {\"a\": 3}}");
    expect_fail(tmp, AWQ_ERR_BAD_JSON, "'a'", "not a file name");
    write_text("model.safetensors.index.json", "{\"metadata\": 3, \"weight_map\": {\"a\": \"b\"}}");
    expect_fail(tmp, AWQ_ERR_BAD_JSON, "metadata", NULL);
    write_text("model.safetensors.index.json",
               "{\"weight_map\": {\"a\": \"x.safetensors\", \"a\": \"y.safetensors\"}}");
    expect_fail(tmp, AWQ_ERR_DUPLICATE, "twice", NULL);

    /* weight_map and the shards disagree */
    write_index(5, ",\n  \"ghost.weight\": \"model-00001-of-00002.safetensors\"", NULL);
    expect_fail(tmp, AWQ_ERR_NOT_FOUND, "'ghost.weight'", "has no such tensor");
    write_index(4, NULL, NULL);   /* tensor 4 is in shard 1, the index says shard 2 */
    expect_fail(tmp, AWQ_ERR_NOT_FOUND, "'d.scalar'", "but it is in");

    /* a tensor that is in both shards */
    struct awq_st_writer *w = writer_of(samples + 4, NSAMPLES - 4);
    struct awq_errbuf err = { 0, "" };
    char *p2 = path_in("model-00002-of-00002.safetensors");
    ck_assert_int_eq(awq_st_writer_save(w, p2, &err), 0);
    awq_st_writer_destroy(w);
    write_index(5, NULL, NULL);
    expect_fail(tmp, AWQ_ERR_DUPLICATE, "'d.scalar'", "in both");

    /* a tensor of a shard that the index does not list */
    write_sharded(5);
    w = writer_of(samples + 5, NSAMPLES - 5);
    int64_t one = 1;
    ck_assert_int_eq(awq_st_writer_add(w, "stowaway", AWQ_DTYPE_U8, 1, &one, "x", 1, &err), 0);
    ck_assert_int_eq(awq_st_writer_save(w, p2, &err), 0);
    awq_st_writer_destroy(w);
    expect_fail(tmp, AWQ_ERR_NOT_FOUND, "'stowaway'", "not listed in weight_map");

    /* a shard that is itself corrupt: the error names the shard */
    ck_assert_int_eq(tu_write_file(p2, "\x05", 1), 0);
    expect_fail(tmp, AWQ_ERR_TRUNCATED, "model-00002-of-00002.safetensors", NULL);
    free(p2);
    free(idx);
    free_samples(samples, NSAMPLES);
}
END_TEST

/* ---- writer ------------------------------------------------------------------------------ */

static size_t count_temp_files(void)
{
    size_t n = 0;
    DIR *d = opendir(tmp);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d)))
        n += strstr(e->d_name, ".tmp-") != NULL;
    closedir(d);
    return n;
}

START_TEST(test_writer_rejects)
{
    struct awq_st_writer *w;
    struct awq_errbuf err = { 0, "" };
    ck_assert_int_eq(awq_st_writer_create(&w), 0);
    int64_t s2[2] = { 2, 3 }, neg[1] = { -1 };
    float x[6] = { 0 };
    ck_assert_int_eq(awq_st_writer_add(w, "w", AWQ_DTYPE_F32, 2, s2, x, 20, &err), AWQ_ERR_BAD_SHAPE);
    ck_assert_ptr_nonnull(strstr(err.msg, "need 24 bytes, got 20"));
    ck_assert_int_eq(awq_st_writer_add(w, "w", AWQ_DTYPE_F32, 1, neg, x, 0, &err), AWQ_ERR_BAD_SHAPE);
    ck_assert_int_eq(awq_st_writer_add(w, "w", AWQ_DTYPE_F32, 9, s2, x, 24, &err), AWQ_ERR_BAD_SHAPE);
    ck_assert_int_eq(awq_st_writer_add(w, "w", AWQ_DTYPE_COUNT, 2, s2, x, 24, &err), AWQ_ERR_BAD_DTYPE);
    ck_assert_int_eq(awq_st_writer_add(w, "__metadata__", AWQ_DTYPE_F32, 2, s2, x, 24, &err),
                     AWQ_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(awq_st_writer_add(w, "", AWQ_DTYPE_F32, 2, s2, x, 24, &err), AWQ_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(awq_st_writer_add(w, "bad\xff", AWQ_DTYPE_F32, 2, s2, x, 24, &err), AWQ_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(awq_st_writer_add(w, "w", AWQ_DTYPE_F32, 2, s2, x, 24, &err), 0);
    ck_assert_int_eq(awq_st_writer_add(w, "w", AWQ_DTYPE_F32, 2, s2, x, 24, &err), AWQ_ERR_DUPLICATE);
    ck_assert_ptr_nonnull(strstr(err.msg, "'w'"));
    ck_assert_int_eq(awq_st_writer_meta(w, "k", "\xc0", &err), AWQ_ERR_INVALID_ARGUMENT);
    ck_assert_uint_eq(awq_st_writer_bytes(w), 24);

    /* the target directory does not exist */
    char *p = path_in("no/such/dir/m.safetensors");
    ck_assert_int_eq(awq_st_writer_save(w, p, &err), AWQ_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, p));
    ck_assert_ptr_nonnull(strstr(err.msg, "No such file or directory"));
    free(p);
    /* the target is a directory: rename fails, the directory and its file stay, no temp file */
    p = path_in("adir");
    ck_assert_int_eq(mkdir(p, 0755), 0);
    char *inner = path_in("adir/keep");
    ck_assert_int_eq(tu_write_file(inner, "k", 1), 0);
    ck_assert_int_eq(awq_st_writer_save(w, p, &err), AWQ_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "rename"));
    ck_assert_int_eq(access(inner, F_OK), 0);
    ck_assert_uint_eq(count_temp_files(), 0);
    free(inner);
    free(p);
    awq_st_writer_destroy(w);
    awq_st_writer_destroy(NULL);
}
END_TEST

START_TEST(test_writer_failure_keeps_old_file)
{
    /* a write that fails half-way (file size limit, as a full disk would) leaves the old file */
    char *p = path_in("model.safetensors");
    ck_assert_int_eq(tu_write_file(p, "OLD CONTENTS", 12), 0);
    struct awq_st_writer *w;
    struct awq_errbuf err = { 0, "" };
    ck_assert_int_eq(awq_st_writer_create(&w), 0);
    size_t n = 1 << 20;
    unsigned char *big = calloc(1, n);
    int64_t shape[1] = { (int64_t)n };
    ck_assert_int_eq(awq_st_writer_add(w, "big", AWQ_DTYPE_U8, 1, shape, big, n, &err), 0);
    free(big);

    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 65536;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = awq_st_writer_save(w, p, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    ck_assert_int_eq(rc, AWQ_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, p));
    ck_assert_ptr_nonnull(strstr(err.msg, "File too large"));
    size_t sz;
    unsigned char *raw = read_whole(p, &sz);
    ck_assert_uint_eq(sz, 12);
    ck_assert(memcmp(raw, "OLD CONTENTS", 12) == 0);
    free(raw);
    ck_assert_uint_eq(count_temp_files(), 0);
    /* without the limit the same save replaces it */
    ck_assert_int_eq(awq_st_writer_save(w, p, &err), 0);
    raw = read_whole(p, &sz);
    ck_assert_uint_gt(sz, n);
    free(raw);
    ck_assert_uint_eq(count_temp_files(), 0);
    awq_st_writer_destroy(w);
    free(p);
}
END_TEST

/* ---- random corruption ------------------------------------------------------------------- */

static unsigned char *valid_image(size_t *n)
{
    uint64_t rng = 12345;
    fill_samples(samples, NSAMPLES, &rng);
    struct awq_st_writer *w = writer_of(samples, NSAMPLES);
    struct awq_errbuf err = { 0, "" };
    ck_assert_int_eq(awq_st_writer_meta(w, "format", "pt", &err), 0);
    char *p = path_in("valid.safetensors");
    ck_assert_int_eq(awq_st_writer_save(w, p, &err), 0);
    awq_st_writer_destroy(w);
    free_samples(samples, NSAMPLES);
    unsigned char *raw = read_whole(p, n);
    free(p);
    return raw;
}

/* Everything an opened file promises must hold: tensors inside the image, sizes consistent. */
static unsigned check_opened(const struct awq_safetensors *st, const unsigned char *img, size_t n)
{
    unsigned sum = 0;
    for (size_t i = 0; i < awq_safetensors_count(st); i++) {
        const struct awq_st_tensor *t = awq_safetensors_at(st, i);
        const unsigned char *d = t->data;
        ck_assert(d >= img + 8 && d + t->nbytes <= img + n);
        ck_assert_uint_eq(t->numel * awq_dtype_size(t->dtype), t->nbytes);
        ck_assert(t->ndim >= 0 && t->ndim <= AWQ_ST_MAX_DIMS);
        ck_assert_ptr_eq(awq_safetensors_find(st, t->name), t);
        for (size_t b = 0; b < t->nbytes; b++)
            sum += d[b];
    }
    return sum;
}

START_TEST(test_random_corruption)
{
    size_t n;
    unsigned char *img = valid_image(&n);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | img[i];
    uint64_t rng = tu_seed();
    const char *env = getenv("AWQ_CORRUPT_ITERS");
    long iters = env && *env ? atol(env) : 4000;
    static const char tokens[] = "{}[]\",:-.0123456789eE \\ntrufalsF32BI";
    long ok = 0, failed = 0;
    char *fpath = path_in("corrupt.safetensors");
    for (long it = 0; it < iters; it++) {
        size_t m = n;
        unsigned char *c = malloc(n);
        memcpy(c, img, n);
        int kind = (int)(tu_next(&rng) % 5);
        int edits = 1 + (int)(tu_next(&rng) % 4);
        for (int e = 0; e < edits; e++) {
            size_t hdr_end = 8 + (size_t)hlen;
            size_t pos = (size_t)(tu_next(&rng) % (kind == 4 ? m : hdr_end));
            if (pos >= m)
                continue;
            switch (kind) {
            case 0: c[pos] ^= (unsigned char)(1u << (tu_next(&rng) % 8)); break;            /* bit flip */
            case 1: c[pos] = (unsigned char)tokens[tu_next(&rng) % (sizeof tokens - 1)]; break; /* JSON char */
            case 2: m = (size_t)(tu_next(&rng) % (m + 1)); break;                              /* truncate */
            case 3: c[tu_next(&rng) % 8] = (unsigned char)tu_next(&rng); break;               /* length */
            default: c[pos] = (unsigned char)tu_next(&rng); break;                              /* anywhere */
            }
        }
        /* an exact-size copy so that any read past the end is caught by valgrind/ASan */
        unsigned char *img2 = malloc(m ? m : 1);
        memcpy(img2, c, m);
        free(c);
        struct awq_safetensors *st = NULL;
        struct awq_errbuf err = { 0, "" };
        int rc;
        int via_file = it % 64 == 0;
        if (via_file) {
            ck_assert_int_eq(tu_write_file(fpath, img2, m), 0);
            rc = awq_safetensors_open(fpath, &st, &err);
        } else
            rc = awq_safetensors_open_buffer(img2, m, "corrupt", &st, &err);
        if (rc == 0) {
            ck_assert_ptr_nonnull(st);
            if (!via_file)
                check_opened(st, img2, m);
            else
                ck_assert_uint_eq(awq_safetensors_shard_size(st, 0), m);
            awq_safetensors_close(st);
            ok++;
        } else {
            ck_assert_msg(rc < 0 && rc == err.code && err.msg[0], "iteration %ld: rc %d code %d msg '%s'", it, rc,
                          err.code, err.msg);
            ck_assert_ptr_null(st);
            failed++;
        }
        free(img2);
    }
    fprintf(stderr, "random corruption: %ld iterations, %ld opened, %ld rejected\n", iters, ok, failed);
    ck_assert_int_gt(failed, iters / 4);
    free(fpath);
    free(img);
}
END_TEST

static Suite *st_suite(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("roundtrip");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_roundtrip_single);
    tcase_add_test(tc, test_to_f32);
    tcase_add_test(tc, test_roundtrip_sharded);
    tcase_add_test(tc, test_zero_size_and_gaps);
    suite_add_tcase(s, tc);

    tc = tcase_create("bad_input");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_truncated);
    tcase_add_test(tc, test_header_length);
    tcase_add_test(tc, test_not_json);
    tcase_add_test(tc, test_not_object);
    tcase_add_test(tc, test_bad_offsets);
    tcase_add_test(tc, test_overlap);
    tcase_add_test(tc, test_bad_shape);
    tcase_add_test(tc, test_bad_dtype);
    tcase_add_test(tc, test_duplicate_names);
    tcase_add_test(tc, test_missing_paths);
    tcase_add_test(tc, test_index_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("writer");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_writer_rejects);
    tcase_add_test(tc, test_writer_failure_keeps_old_file);
    suite_add_tcase(s, tc);

    tc = tcase_create("corruption");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);   /* thousands of opens; slow under valgrind */
    tcase_add_test(tc, test_random_corruption);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(st_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
