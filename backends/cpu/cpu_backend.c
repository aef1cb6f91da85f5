/* The CPU backend: the reference every other backend is tested against. Ops run synchronously on
 * a pool of worker threads; buffers are plain host memory. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu_internal.h"
#include "util/half.h"

struct cpu_state {
    char model[128];
};

static void read_cpu_model(char *out, size_t n)
{
    snprintf(out, n, "CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ' || *c == '\t')
                    c++;
                c[strcspn(c, "\n")] = '\0';
                snprintf(out, n, "%s", c);
            }
            break;
        }
    }
    fclose(f);
}

static int cpu_init(void **state, struct awq_errbuf *err)
{
    struct cpu_state *s = calloc(1, sizeof *s);
    if (!s)
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
    read_cpu_model(s->model, sizeof s->model);
    *state = s;
    return 0;
}

static void cpu_fini(void *state)
{
    free(state);
}

static int cpu_device_count(void *state)
{
    return 1;
}

static int cpu_device_info(void *state, int index, struct awq_device_info *out)
{
    const struct cpu_state *s = state;
    snprintf(out->name, sizeof out->name, "%s", s->model);
    snprintf(out->vendor, sizeof out->vendor, "host");
    snprintf(out->driver, sizeof out->driver, "libawq %s", AWQ_VERSION_STRING);
    out->type = AWQ_DEVICE_CPU;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    out->memory_bytes = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    out->fp16 = 0;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    out->compute_units = cores > 0 ? (int)cores : 1;
    return 0;
}

static int cpu_preferred_device(void *state)
{
    return 0;
}

static int cpu_open(void *state, int index, const awq_context_options *opt, struct awq_errbuf *err,
                    void **out)
{
    struct cpu_dev *d = calloc(1, sizeof *d);
    if (!d)
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
    d->err = err;
    d->pool = cpu_pool_create(opt ? opt->cpu_threads : 0);
    if (!d->pool) {
        free(d);
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "cannot start CPU worker threads");
    }
    *out = d;
    return 0;
}

static void cpu_close(void *dev)
{
    struct cpu_dev *d = dev;
    if (!d)
        return;
    cpu_pool_destroy(d->pool);
    free(d);
}

static int cpu_synchronize(void *dev)
{
    return 0;
}

static int cpu_buf_alloc(void *dev, size_t bytes, void **buf)
{
    struct cpu_dev *d = dev;
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = rounded >= bytes ? aligned_alloc(64, rounded) : NULL;
    if (!p)
        return awq_err_set(d->err, AWQ_ERR_DEVICE_MEMORY, "CPU backend: cannot allocate %zu bytes",
                           bytes);
    *buf = p;
    return 0;
}

static void cpu_buf_free(void *dev, void *buf)
{
    free(buf);
}

static int cpu_buf_write(void *dev, void *buf, size_t off, const void *src, size_t n)
{
    memcpy((char *)buf + off, src, n);
    return 0;
}

static int cpu_buf_read(void *dev, void *buf, size_t off, void *dst, size_t n)
{
    memcpy(dst, (const char *)buf + off, n);
    return 0;
}

struct copy_job {
    const char *src;
    char *dst;
    size_t n, chunk;
};

static void copy_task(void *arg, size_t i)
{
    const struct copy_job *j = arg;
    size_t lo = i * j->chunk, hi = lo + j->chunk < j->n ? lo + j->chunk : j->n;
    memmove(j->dst + lo, j->src + lo, hi - lo);
}

static int cpu_buf_copy(void *dev, void *src, size_t src_off, void *dst, size_t dst_off, size_t n)
{
    struct cpu_dev *d = dev;
    const char *s = (const char *)src + src_off;
    char *t = (char *)dst + dst_off;
    /* Overlapping ranges are copied by one thread, in one memmove. */
    if ((s < t + n && t < s + n) || n < (1u << 20)) {
        memmove(t, s, n);
        return 0;
    }
    struct copy_job j = { s, t, n, 0 };
    size_t tasks = cpu_chunks(d, n, 1u << 18, &j.chunk);
    cpu_pool_run(d->pool, tasks, copy_task, &j);
    return 0;
}

static int cpu_buf_zero(void *dev, void *buf, size_t off, size_t n)
{
    memset((char *)buf + off, 0, n);
    return 0;
}

size_t cpu_chunks(const struct cpu_dev *d, size_t n, size_t min_chunk, size_t *chunk)
{
    size_t workers = (size_t)cpu_pool_threads(d->pool);
    size_t c = (n + workers * 4 - 1) / (workers * 4);
    if (c < min_chunk)
        c = min_chunk;
    if (c == 0)
        c = 1;
    *chunk = c;
    return (n + c - 1) / c;
}

void cpu_to_f32(awq_dtype t, const void *src, float *dst, size_t n)
{
    if (t == AWQ_DTYPE_F16)
        awq_f16_to_f32_n(src, dst, n);
    else if (src != dst)
        memcpy(dst, src, n * sizeof(float));
}

void cpu_from_f32(awq_dtype t, const float *src, void *dst, size_t n)
{
    if (t == AWQ_DTYPE_F16)
        awq_f32_to_f16_n(src, dst, n);
    else if (src != dst)
        memcpy(dst, src, n * sizeof(float));
}

const struct awq_backend_ops awq_backend_cpu = {
    .name = "cpu",
    .init = cpu_init,
    .fini = cpu_fini,
    .device_count = cpu_device_count,
    .device_info = cpu_device_info,
    .preferred_device = cpu_preferred_device,
    .open = cpu_open,
    .close = cpu_close,
    .synchronize = cpu_synchronize,
    .buf_alloc = cpu_buf_alloc,
    .buf_free = cpu_buf_free,
    .buf_write = cpu_buf_write,
    .buf_read = cpu_buf_read,
    .buf_copy = cpu_buf_copy,
    .buf_zero = cpu_buf_zero,
    .w4_create = cpu_w4_create,
    .w4_free = cpu_w4_free,
    .gemm_w4 = cpu_gemm_w4,
    .gemm = cpu_gemm,
    .act_stats = cpu_act_stats,
    .rmsnorm = cpu_rmsnorm,
    .rope = cpu_rope,
    .attention = cpu_attention,
    .silu_mul = cpu_silu_mul,
    .add = cpu_add,
    .embed = cpu_embed,
    .pseudo_quant = cpu_pseudo_quant,
    .clip_search = cpu_clip_search,
    .sq_err = cpu_sq_err,
    .scale_cols = cpu_scale_cols,
    .cross_entropy = cpu_cross_entropy,
};
