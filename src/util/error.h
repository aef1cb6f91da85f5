/* Error reporting inside the library: a status code plus a detailed message kept in an errbuf that
 * belongs to a handle (context, device, model...). Functions fail with
 *     return awq_err_set(err, AWQ_ERR_TRUNCATED, "%s: header needs %zu bytes, file has %zu", ...);
 * which stores the message and returns the code, so the public call can return it unchanged. */
#ifndef AWQ_UTIL_ERROR_H
#define AWQ_UTIL_ERROR_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AWQ_ERRBUF_LEN 1024

/* Returns the status from the calling function when a call fails (negative status). */
#define AWQ_TRY(x)                    \
    do {                              \
        int awq_try_st_ = (x);        \
        if (awq_try_st_ < 0)          \
            return awq_try_st_;       \
    } while (0)

struct awq_errbuf {
    int code;
    char msg[AWQ_ERRBUF_LEN];
};

/* Records `code` and the formatted detail; returns `code`. `err` may be NULL (detail dropped). */
int awq_err_set(struct awq_errbuf *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int awq_err_vset(struct awq_errbuf *err, int code, const char *fmt, va_list ap);
/* Prepends "prefix: " to the current message (adds context on the way up); returns err->code. */
int awq_err_prefix(struct awq_errbuf *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void awq_err_clear(struct awq_errbuf *err);
/* Copies code and message from src to dst; returns the code. */
int awq_err_copy(struct awq_errbuf *dst, const struct awq_errbuf *src);

#ifdef __cplusplus
}
#endif
#endif
