/* Small helpers of the tokenizer: growable byte and id arrays, UTF-8 stepping, hashing. */
#ifndef AWQ_TOKENIZER_UTIL_H
#define AWQ_TOKENIZER_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Growable byte buffer; always keeps one spare byte so it can be NUL-terminated. */
struct tok_buf {
    char *p;
    size_t len, cap;
};
int tok_buf_reserve(struct tok_buf *b, size_t extra);   /* 0 or AWQ_ERR_OUT_OF_MEMORY */
int tok_buf_put(struct tok_buf *b, const void *s, size_t n);
void tok_buf_free(struct tok_buf *b);

struct tok_ivec {
    int32_t *v;
    size_t n, cap;
};
int tok_ivec_push(struct tok_ivec *a, int32_t x);
void tok_ivec_free(struct tok_ivec *a);

/* Length of the UTF-8 sequence at s[0..n) when it is one valid character (1..4, as Rust's
 * from_utf8 accepts: no overlong forms, no surrogates, at most U+10FFFF), else 0. The code point
 * goes to *cp when cp is not NULL. */
size_t tok_utf8_valid(const unsigned char *s, size_t n, uint32_t *cp);
/* Length of the "character" at s: a valid UTF-8 sequence, else one byte. */
static inline size_t tok_utf8_step(const char *s, size_t n)
{
    if ((unsigned char)s[0] < 0x80)
        return 1;
    size_t k = tok_utf8_valid((const unsigned char *)s, n, NULL);
    return k ? k : 1;
}
/* Writes cp as UTF-8 into out (4 bytes room); returns its length. */
size_t tok_utf8_put(uint32_t cp, char *out);

uint64_t tok_hash(const void *s, size_t n);

#endif
