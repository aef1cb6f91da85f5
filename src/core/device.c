/* Opening devices (explicit, or chosen by environment / preference), device memory. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"

/* Parses AWQ_DEVICE; returns -1 when unset, -2 when malformed. */
static int env_device_index(void)
{
    const char *s = getenv("AWQ_DEVICE");
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 0 || v > INT_MAX)
        return -2;
    return (int)v;
}

/* The default choice: the first backend (in preference order) whose preferred device is a GPU;
 * else the CPU backend. */
static int pick_default(struct awq_context *ctx, int *slot, int *index)
{
    for (int i = 0; i < ctx->n_backends; i++) {
        if (awq_backend_probe(ctx, i) < 0)
            continue;
        const struct awq_backend_slot *s = &ctx->slots[i];
        if (s->ops->device_count(s->state) <= 0)
            continue;
        int d = s->ops->preferred_device(s->state);
        awq_device_info info;
        memset(&info, 0, sizeof info);
        if (d >= 0 && s->ops->device_info(s->state, d, &info) == 0 && info.type == AWQ_DEVICE_GPU) {
            *slot = i;
            *index = d;
            return 0;
        }
    }
    *slot = awq_backend_find(ctx, "cpu");
    *index = 0;
    return 0;
}

static int resolve(struct awq_context *ctx, const char *backend, int index, int *slot, int *dev_index)
{
    if (!backend || !*backend) {
        const char *env = getenv("AWQ_BACKEND");
        if (env && *env) {
            backend = env;
            if (index < 0) {
                index = env_device_index();
                if (index == -2)
                    return awq_err_set(&ctx->err, AWQ_ERR_INVALID_ARGUMENT,
                                       "AWQ_DEVICE=%s is not a device index", getenv("AWQ_DEVICE"));
            }
        }
    }
    if (!backend || !*backend)
        return pick_default(ctx, slot, dev_index);

    int i = awq_backend_find(ctx, backend);
    if (i < 0)
        return awq_err_set(&ctx->err, AWQ_ERR_NO_DEVICE,
                           "backend '%s' is not built into this libawq (built: %s)", backend,
                           awq_build_info());
    if (awq_backend_probe(ctx, i) < 0)
        return awq_err_set(&ctx->err, ctx->slots[i].status, "backend %s unusable: %s", backend,
                           ctx->slots[i].why.msg);
    const struct awq_backend_slot *s = &ctx->slots[i];
    int n = s->ops->device_count(s->state);
    if (index < 0)
        index = n > 0 ? s->ops->preferred_device(s->state) : 0;
    if (index >= n)
        return awq_err_set(&ctx->err, AWQ_ERR_NO_DEVICE, "backend %s has %d device%s, no device %d",
                           backend, n, n == 1 ? "" : "s", index);
    *slot = i;
    *dev_index = index;
    return 0;
}

AWQ_API int awq_device_open(awq_context *ctx, const char *backend, int index, awq_device **out)
{
    if (!ctx || !out)
        return AWQ_ERR_INVALID_ARGUMENT;
    *out = NULL;
    int slot, dev_index;
    int st = resolve(ctx, backend, index, &slot, &dev_index);
    if (st < 0)
        return st;
    struct awq_device *dev = calloc(1, sizeof *dev);
    if (!dev)
        return awq_err_set(&ctx->err, AWQ_ERR_OUT_OF_MEMORY, "out of memory opening a device");
    dev->ctx = ctx;
    dev->backend_slot = slot;
    dev->ops = ctx->slots[slot].ops;
    st = awq_backend_device_info(ctx, slot, dev_index, &dev->info);
    if (st == 0)
        st = dev->ops->open(ctx->slots[slot].state, dev_index, &ctx->opt, &dev->err, &dev->impl);
    if (st < 0) {
        awq_err_set(&ctx->err, st, "opening %s device %d: %s", dev->ops->name, dev_index,
                    dev->err.msg[0] ? dev->err.msg : ctx->err.msg);
        free(dev);
        return st;
    }
    awq_log(ctx, AWQ_LOG_INFO, "using %s device %d: %s", dev->ops->name, dev_index, dev->info.name);
    *out = dev;
    return AWQ_OK;
}

AWQ_API void awq_device_close(awq_device *dev)
{
    if (!dev)
        return;
    dev->ops->close(dev->impl);
    free(dev);
}

AWQ_API int awq_device_get_info(const awq_device *dev, awq_device_info *out)
{
    if (!dev || !out)
        return AWQ_ERR_INVALID_ARGUMENT;
    *out = dev->info;
    return AWQ_OK;
}

AWQ_API const char *awq_device_last_error(const awq_device *dev)
{
    return dev ? dev->err.msg : "no device";
}

AWQ_API int awq_device_synchronize(awq_device *dev)
{
    if (!dev)
        return AWQ_ERR_INVALID_ARGUMENT;
    return dev->ops->synchronize(dev->impl);
}

void awq_device_account(struct awq_device *dev, int64_t delta)
{
    dev->mem_in_use = (uint64_t)((int64_t)dev->mem_in_use + delta);
    if (dev->mem_in_use > dev->mem_peak)
        dev->mem_peak = dev->mem_in_use;
}

AWQ_API int awq_device_memory(const awq_device *dev, uint64_t *in_use, uint64_t *peak)
{
    if (!dev)
        return AWQ_ERR_INVALID_ARGUMENT;
    if (in_use)
        *in_use = dev->mem_in_use;
    if (peak)
        *peak = dev->mem_peak;
    return 0;
}

AWQ_API void awq_device_reset_peak(awq_device *dev)
{
    if (dev)
        dev->mem_peak = dev->mem_in_use;
}

/* ---- buffers -------------------------------------------------------------------------------- */

AWQ_API int awq_buffer_create(awq_device *dev, size_t bytes, awq_buffer **out)
{
    if (!dev || !out)
        return AWQ_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (bytes == 0)
        return awq_err_set(&dev->err, AWQ_ERR_INVALID_ARGUMENT, "zero-byte buffer requested");
    struct awq_buffer *b = calloc(1, sizeof *b);
    if (!b)
        return awq_err_set(&dev->err, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
    int st = dev->ops->buf_alloc(dev->impl, bytes, &b->impl);
    if (st < 0) {
        free(b);
        return st;
    }
    b->dev = dev;
    b->size = bytes;
    awq_device_account(dev, (int64_t)bytes);
    *out = b;
    return AWQ_OK;
}

AWQ_API void awq_buffer_destroy(awq_buffer *buf)
{
    if (!buf)
        return;
    awq_device_account(buf->dev, -(int64_t)buf->size);
    buf->dev->ops->buf_free(buf->dev->impl, buf->impl);
    free(buf);
}

AWQ_API size_t awq_buffer_size(const awq_buffer *buf)
{
    return buf ? buf->size : 0;
}

static int check_range(const struct awq_buffer *b, size_t off, size_t n, const char *what)
{
    if (off > b->size || n > b->size - off)
        return awq_err_set(&b->dev->err, AWQ_ERR_OUT_OF_BOUNDS,
                           "%s of %zu bytes at offset %zu runs past the end of a %zu-byte buffer",
                           what, n, off, b->size);
    return 0;
}

AWQ_API int awq_buffer_write(awq_buffer *buf, size_t offset, const void *src, size_t bytes)
{
    if (!buf || (!src && bytes))
        return AWQ_ERR_INVALID_ARGUMENT;
    int st = check_range(buf, offset, bytes, "write");
    if (st < 0 || bytes == 0)
        return st;
    return buf->dev->ops->buf_write(buf->dev->impl, buf->impl, offset, src, bytes);
}

AWQ_API int awq_buffer_read(awq_buffer *buf, size_t offset, void *dst, size_t bytes)
{
    if (!buf || (!dst && bytes))
        return AWQ_ERR_INVALID_ARGUMENT;
    int st = check_range(buf, offset, bytes, "read");
    if (st < 0 || bytes == 0)
        return st;
    return buf->dev->ops->buf_read(buf->dev->impl, buf->impl, offset, dst, bytes);
}
