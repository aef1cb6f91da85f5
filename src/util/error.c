#include "config.h"

#include <stdio.h>
#include <string.h>

#include "awq.h"
#include "util/error.h"

int awq_err_vset(struct awq_errbuf *err, int code, const char *fmt, va_list ap)
{
    if (err) {
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    }
    return code;
}

int awq_err_set(struct awq_errbuf *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    awq_err_vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

int awq_err_prefix(struct awq_errbuf *err, const char *fmt, ...)
{
    if (!err)
        return AWQ_ERR_INVALID_ARGUMENT;
    char old[AWQ_ERRBUF_LEN];
    memcpy(old, err->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    size_t used = n < 0 ? 0 : ((size_t)n < sizeof err->msg ? (size_t)n : sizeof err->msg - 1);
    size_t room = sizeof err->msg - used;
    if (room > 2) {
        memcpy(err->msg + used, ": ", 2);
        size_t len = strnlen(old, sizeof old);
        size_t take = len < room - 3 ? len : room - 3;
        memcpy(err->msg + used + 2, old, take);
        err->msg[used + 2 + take] = '\0';
    }
    return err->code;
}

void awq_err_clear(struct awq_errbuf *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}

int awq_err_copy(struct awq_errbuf *dst, const struct awq_errbuf *src)
{
    if (dst && src && dst != src)
        memcpy(dst, src, sizeof *dst);
    return src ? src->code : AWQ_ERR_INVALID_ARGUMENT;
}

AWQ_API const char *awq_strerror(int status)
{
    switch (status) {
    case AWQ_OK: return "success";
    case AWQ_ERR_INVALID_ARGUMENT: return "invalid argument";
    case AWQ_ERR_OUT_OF_MEMORY: return "out of host memory";
    case AWQ_ERR_IO: return "input/output error";
    case AWQ_ERR_NOT_FOUND: return "not found";
    case AWQ_ERR_TRUNCATED: return "file truncated";
    case AWQ_ERR_HEADER_TOO_LARGE: return "header length too large";
    case AWQ_ERR_BAD_JSON: return "malformed JSON";
    case AWQ_ERR_BAD_OFFSETS: return "tensor data offsets out of range";
    case AWQ_ERR_OVERLAP: return "tensors overlap";
    case AWQ_ERR_BAD_DTYPE: return "unknown or wrong data type";
    case AWQ_ERR_BAD_SHAPE: return "shape does not match";
    case AWQ_ERR_UNSUPPORTED: return "not supported";
    case AWQ_ERR_NO_DEVICE: return "no such device";
    case AWQ_ERR_BACKEND: return "device runtime error";
    case AWQ_ERR_DEVICE_MEMORY: return "out of device memory";
    case AWQ_ERR_OUT_OF_BOUNDS: return "range outside the buffer";
    case AWQ_ERR_CANCELLED: return "cancelled";
    case AWQ_ERR_BAD_CONFIG: return "invalid model configuration";
    case AWQ_ERR_BAD_TOKENIZER: return "invalid tokenizer";
    case AWQ_ERR_BAD_INPUT: return "unusable input data";
    case AWQ_ERR_DUPLICATE: return "duplicate name";
    case AWQ_ERR_BAD_HEADER: return "invalid file header";
    default: return "unknown error code";
    }
}
