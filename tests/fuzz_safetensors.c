/* libFuzzer harness for the safetensors reader. Not built by `make`; build and run it with
 *
 *   clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
 *       -Iinclude -Isrc -I. tests/fuzz_safetensors.c src/format/safetensors.c src/core/info.c \
 *       src/util/error.c src/util/half.c -ljansson -o fuzz_safetensors
 *   mkdir -p fuzz-corpus && ./fuzz_safetensors -max_total_time=60 -max_len=4096 fuzz-corpus
 *
 * (from a configured tree, for config.h). The first input byte picks the entry point:
 *   even: the rest is a safetensors image, parsed from memory (awq_safetensors_open_buffer);
 *   odd:  the rest is a model.safetensors.index.json placed next to two valid shards (holding
 *         tensors "a", "b" and "c") and opened from disk, which exercises the shard checks.
 * Whatever opens must describe tensors that lie inside the input. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static char index_path[128];

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (n && fwrite(p, 1, n, f) != n)
        abort();
    if (fclose(f))
        abort();
}

static void write_shard(const char *name, const char *header, const char *payload, size_t n)
{
    char path[160], buf[512];
    size_t h = strlen(header);
    for (int i = 0; i < 8; i++)
        buf[i] = (char)((uint64_t)h >> (8 * i));
    memcpy(buf + 8, header, h);
    memcpy(buf + 8 + h, payload, n);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_file(path, buf, 8 + h + n);
}

static void cleanup(void)
{
    char path[160];
    const char *names[] = { "s1.safetensors", "s2.safetensors", "model.safetensors.index.json" };
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void init_shards(void)
{
    if (dir[0])
        return;
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/awq-fuzz-XXXXXX", base && strlen(base) < 40 ? base : "/tmp");
    if (!mkdtemp(dir))
        abort();
    atexit(cleanup);
    write_shard("s1.safetensors",
                "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                "abcdefgh", 8);
    write_shard("s2.safetensors",
                "{\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
                "\"c\":{\"dtype\":\"BF16\",\"shape\":[1,1],\"data_offsets\":[2,4]}}",
                "wxyz", 4);
    snprintf(index_path, sizeof index_path, "%s/model.safetensors.index.json", dir);
}

static void use(const struct awq_safetensors *st, const uint8_t *lo, size_t n)
{
    volatile unsigned sink = 0;
    for (size_t i = 0; i < awq_safetensors_count(st); i++) {
        const struct awq_st_tensor *t = awq_safetensors_at(st, i);
        const uint8_t *d = t->data;
        if (lo && (d < lo || d + t->nbytes > lo + n))
            abort();                               /* a tensor outside the input */
        if (t->numel * awq_dtype_size(t->dtype) != t->nbytes || awq_safetensors_find(st, t->name) != t)
            abort();
        for (size_t b = 0; b < t->nbytes; b++)
            sink += d[b];
        if (t->numel <= 4096) {
            float f[4096];
            struct awq_errbuf err;
            awq_st_tensor_to_f32(t, f, &err);
        }
    }
    for (size_t i = 0; i < awq_safetensors_meta_count(st); i++) {
        const char *k, *v;
        awq_safetensors_meta_at(st, i, &k, &v);
        sink += (unsigned)strlen(k) + (unsigned)strlen(v);
    }
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct awq_safetensors *st = NULL;
    struct awq_errbuf err = { 0, "" };
    int rc, opened;
    if ((data[0] & 1) == 0) {
        /* an exact-size copy, so that any read past the end is caught */
        uint8_t *copy = malloc(size - 1 ? size - 1 : 1);
        memcpy(copy, data + 1, size - 1);
        rc = awq_safetensors_open_buffer(copy, size - 1, "fuzz", &st, &err);
        opened = st != NULL;
        if (rc == 0)
            use(st, copy, size - 1);
        awq_safetensors_close(st);
        free(copy);
    } else {
        init_shards();
        write_file(index_path, data + 1, size - 1);
        rc = awq_safetensors_open(index_path, &st, &err);
        opened = st != NULL;
        if (rc == 0)
            use(st, NULL, 0);
        awq_safetensors_close(st);
    }
    if ((rc == 0) != opened || (rc != 0 && (rc != err.code || !err.msg[0])))
        abort();                                   /* an error must carry its code and a message */
    return 0;
}
