#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"

AWQ_API void awq_context_options_init(awq_context_options *opt)
{
    if (!opt)
        return;
    memset(opt, 0, sizeof *opt);
    opt->struct_size = sizeof *opt;
    opt->log_level = AWQ_LOG_INFO;
}

AWQ_API int awq_context_create(const awq_context_options *opt, awq_context **out)
{
    if (!out)
        return AWQ_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (opt && opt->struct_size != sizeof *opt)
        return AWQ_ERR_INVALID_ARGUMENT;
    if (opt && opt->cpu_threads < 0)
        return AWQ_ERR_INVALID_ARGUMENT;
    struct awq_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return AWQ_ERR_OUT_OF_MEMORY;
    if (opt)
        ctx->opt = *opt;
    else
        awq_context_options_init(&ctx->opt);

    /* Preference order for the default device: the fastest APIs first, the CPU last. */
    const struct awq_backend_ops *order[] = {
#ifdef AWQ_HAVE_CUDA
        &awq_backend_cuda,
#endif
#ifdef AWQ_HAVE_VULKAN
        &awq_backend_vulkan,
#endif
#ifdef AWQ_HAVE_OPENCL
        &awq_backend_opencl,
#endif
        &awq_backend_cpu,
    };
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        ctx->slots[ctx->n_backends++].ops = order[i];
    *out = ctx;
    return AWQ_OK;
}

AWQ_API void awq_context_destroy(awq_context *ctx)
{
    if (!ctx)
        return;
    for (int i = 0; i < ctx->n_backends; i++) {
        struct awq_backend_slot *s = &ctx->slots[i];
        if (s->probed && s->status == 0 && s->ops->fini)
            s->ops->fini(s->state);
    }
    free(ctx);
}

AWQ_API const char *awq_context_last_error(const awq_context *ctx)
{
    return ctx ? ctx->err.msg : "no context";
}

void awq_log(const struct awq_context *ctx, awq_log_level level, const char *fmt, ...)
{
    if (!ctx || !ctx->opt.log || level > ctx->opt.log_level)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ctx->opt.log(ctx->opt.user, level, msg);
}

void awq_progress(const struct awq_context *ctx, const char *stage, double done, double total)
{
    if (ctx && ctx->opt.progress)
        ctx->opt.progress(ctx->opt.user, stage, done, total);
}

int awq_cancelled(const struct awq_context *ctx)
{
    return ctx && ctx->opt.cancel && ctx->opt.cancel(ctx->opt.user);
}

int awq_backend_find(const struct awq_context *ctx, const char *name)
{
    for (int i = 0; i < ctx->n_backends; i++)
        if (strcmp(ctx->slots[i].ops->name, name) == 0)
            return i;
    return -1;
}

int awq_backend_probe(struct awq_context *ctx, int i)
{
    struct awq_backend_slot *s = &ctx->slots[i];
    if (!s->probed) {
        s->probed = 1;
        s->status = s->ops->init(&s->state, &s->why);
        if (s->status < 0)
            awq_log(ctx, AWQ_LOG_DEBUG, "backend %s unusable: %s", s->ops->name, s->why.msg);
    }
    return s->status;
}

AWQ_API int awq_backend_count(awq_context *ctx)
{
    return ctx ? ctx->n_backends : 0;
}

AWQ_API const char *awq_backend_name(awq_context *ctx, int i)
{
    if (!ctx || i < 0 || i >= ctx->n_backends)
        return NULL;
    return ctx->slots[i].ops->name;
}

AWQ_API int awq_backend_device_count(awq_context *ctx, int i)
{
    if (!ctx)
        return AWQ_ERR_INVALID_ARGUMENT;
    if (i < 0 || i >= ctx->n_backends)
        return awq_err_set(&ctx->err, AWQ_ERR_INVALID_ARGUMENT, "backend index %d out of range", i);
    int st = awq_backend_probe(ctx, i);
    if (st < 0)
        return awq_err_copy(&ctx->err, &ctx->slots[i].why);
    return ctx->slots[i].ops->device_count(ctx->slots[i].state);
}

AWQ_API int awq_backend_device_info(awq_context *ctx, int i, int index, awq_device_info *out)
{
    int n = awq_backend_device_count(ctx, i);
    if (n < 0)
        return n;
    if (!out || index < 0 || index >= n)
        return awq_err_set(&ctx->err, AWQ_ERR_NO_DEVICE, "backend %s has no device %d (it has %d)",
                           ctx->slots[i].ops->name, index, n);
    memset(out, 0, sizeof *out);
    int st = ctx->slots[i].ops->device_info(ctx->slots[i].state, index, out);
    snprintf(out->backend, sizeof out->backend, "%s", ctx->slots[i].ops->name);
    out->index = index;
    return st;
}
