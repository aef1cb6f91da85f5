// libFuzzer harness for the tokenizer (not built by default).
//
// The first input byte picks the target:
//   even: the rest is a tokenizer.json, loaded (and, when it loads, used on a fixed text);
//   odd:  the rest is text, encoded and decoded with the committed tiny fixtures (SentencePiece-
//         style and byte-level, from AWQ_FUZZ_DATA, default tests/data); the byte-level one must
//         give the text back when it holds no '<'.
//
// Build from the top of a configured tree (config.h must exist); api.c is left out because it
// needs src/core:
//   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -I. -Iinclude -Isrc \
//       tests/fuzz_tokenizer.c $(ls src/tokenizer/*.c | grep -v api.c) src/util/error.c \
//       $(pkg-config --cflags --libs jansson libpcre2-8) -o fuzz_tokenizer
// Run, seeded with the fixtures behind a 0 byte, and a text behind a 1 byte:
//   mkdir -p corpus && for f in sp bytelevel gpt2; do { printf '\000'; \
//       cat tests/data/tokenizer-tiny-$f/tokenizer.json; } > corpus/$f; done &&
//   printf '\001the cat' > corpus/text1 && ./fuzz_tokenizer -max_total_time=300 corpus
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "awq.h"
#include "tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct awq_tok *fixtures[2];

static void load_fixtures(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    const char *root = getenv("AWQ_FUZZ_DATA");
    if (!root)
        root = "tests/data";
    const char *names[2] = { "tokenizer-tiny-sp", "tokenizer-tiny-bytelevel" };
    for (int i = 0; i < 2; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", root, names[i]);
        struct awq_errbuf err = { 0 };
        if (awq_tok_load(path, &fixtures[i], &err)) {
            fprintf(stderr, "fuzz_tokenizer: %s\n", err.msg);
            abort();
        }
    }
}

static void use(const struct awq_tok *t, const char *text, size_t len, int check)
{
    struct awq_errbuf err = { 0 };
    int32_t *ids;
    size_t n;
    for (int special = 0; special < 2; special++) {
        if (awq_tok_encode(t, text, len, special, &ids, &n, &err))
            continue;
        char *back;
        size_t blen;
        if (awq_tok_decode(t, ids, n, special, &back, &blen, &err) == 0) {
            if (check && !special && (blen != len || memcmp(back, text, len)))
                abort();
            free(back);
        }
        free(ids);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size)
        return 0;
    load_fixtures();
    const char *rest = (const char *)data + 1;
    size_t len = size - 1;
    if (data[0] & 1) {
        int has_lt = memchr(rest, '<', len) != NULL;
        use(fixtures[0], rest, len, 0);
        use(fixtures[1], rest, len, !has_lt);
        return 0;
    }
    char dir[] = "/tmp/awq-fuzz-XXXXXX";
    if (!mkdtemp(dir))
        return 0;
    char path[64];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(rest, 1, len, f);
        fclose(f);
        struct awq_errbuf err = { 0 };
        struct awq_tok *t = NULL;
        if (awq_tok_load(path, &t, &err) == 0) {
            use(t, "the cat <s> caf\xc3\xa9 12345 \xff  x", 27, 0);
            awq_tok_free(t);
        }
        unlink(path);
    }
    rmdir(dir);
    return 0;
}
