/* Diagnostic probe for the Vulkan backend (not part of the build): where does time go?
 * Prints memory types, the sync round trip (with and without fence polling), copy bandwidth through
 * both copy paths (GPU timestamps and wall clock), and for back-to-back gemm_w4 at M=1: wall time
 * vs GPU timestamp time per op, host recording time, submissions / recordings / replays per op,
 * under several AWQ_VK_SUBMIT / AWQ_VK_REUSE settings ("one frame" = everything in one submission,
 * i.e. the GPU time of the kernels and barriers alone). Build in a configured tree:
 *   ./libtool --mode=link gcc -O2 -I. -Isrc -Iinclude -o vk_probe bench/vk_probe.c \
 *       libawq_internal.la -lm -ldl -ljansson -lpcre2-8 -lpthread [CUDA libs when built with CUDA]
 *   ./vk_probe [quick|small]   */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/ops.h"
#include "util/half.h"
#include "../backends/vulkan/vk_internal.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct ts {
    PFN_vkCreateQueryPool create;
    PFN_vkDestroyQueryPool destroy;
    PFN_vkCmdResetQueryPool reset;
    PFN_vkCmdWriteTimestamp write;
    PFN_vkGetQueryPoolResults get;
    VkQueryPool pool;
};

static void ts_init(struct vk_dev *d, struct ts *t)
{
    PFN_vkGetDeviceProcAddr g = d->st->fn.vkGetDeviceProcAddr;
    t->create = (PFN_vkCreateQueryPool)g(d->dev, "vkCreateQueryPool");
    t->destroy = (PFN_vkDestroyQueryPool)g(d->dev, "vkDestroyQueryPool");
    t->reset = (PFN_vkCmdResetQueryPool)g(d->dev, "vkCmdResetQueryPool");
    t->write = (PFN_vkCmdWriteTimestamp)g(d->dev, "vkCmdWriteTimestamp");
    t->get = (PFN_vkGetQueryPoolResults)g(d->dev, "vkGetQueryPoolResults");
    VkQueryPoolCreateInfo ci = { .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                 .queryType = VK_QUERY_TYPE_TIMESTAMP, .queryCount = 2 };
    t->create(d->dev, &ci, NULL, &t->pool);
}

static void ts_mark(struct vk_dev *d, struct ts *t, int i)
{
    VkCommandBuffer cmd;
    awq_vk_cmd(d, &cmd);
    if (i == 0)
        t->reset(cmd, t->pool, 0, 2);
    t->write(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, t->pool, (uint32_t)i);
}

static double ts_read(struct vk_dev *d, struct ts *t)
{
    uint64_t v[2] = { 0, 0 };
    awq_vk_finish(d);
    t->get(d->dev, t->pool, 0, 2, sizeof v, v, 8, VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    return (double)(v[1] - v[0]) * d->ph->props.limits.timestampPeriod * 1e-9;
}

static awq_device *open_dev(awq_context **ctx)
{
    if (awq_context_create(NULL, ctx) != 0)
        exit(1);
    awq_device *dev;
    if (awq_device_open(*ctx, "vulkan", -1, &dev) != 0) {
        printf("open: %s\n", awq_context_last_error(*ctx));
        exit(1);
    }
    return dev;
}

#define OPS 400

static void gemm_probe(int K, int N, const char *label)
{
    awq_context *ctx;
    awq_device *dev = open_dev(&ctx);
    struct vk_dev *d = dev->impl;
    int G = 128;
    size_t nq = (size_t)K * N / 8, nz = (size_t)K / G * N / 8, ns = (size_t)K / G * N;
    int32_t *qw = malloc(nq * 4), *qz = malloc(nz * 4);
    uint16_t *sc = malloc(ns * 2);
    uint64_t seed = 1;
    for (size_t i = 0; i < nq; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        qw[i] = (int32_t)(uint32_t)(seed >> 32);
    }
    for (size_t i = 0; i < nz; i++)
        qz[i] = (int32_t)0x88888888u;
    for (size_t i = 0; i < ns; i++)
        sc[i] = awq_f32_to_f16(0.01f);
    struct awq_w4_host h = { K, N, G, qw, qz, sc };
    size_t wb = nq * 4 + nz * 4 + ns * 2;
    int copies = (int)((320u << 20) / wb + 1);
    if (copies > 64)
        copies = 64;
    awq_qweight *w[64];
    for (int c = 0; c < copies; c++)
        if (awq_op_w4_create(dev, &h, &w[c]) != 0) {
            printf("w4_create: %s\n", awq_device_last_error(dev));
            exit(1);
        }
    awq_buffer *x, *y;
    awq_buffer_create(dev, (size_t)K * 2, &x);
    awq_buffer_create(dev, (size_t)N * 2, &y);
    awq_op_zero(dev, (struct awq_tref){ x, 0 }, (size_t)K * 2);
    struct awq_gemm_w4_args a = { .M = 1, .x_type = AWQ_DTYPE_F16, .y_type = AWQ_DTYPE_F16,
                                  .x = { x, 0 }, .y = { y, 0 } };
    for (int i = 0; i < 2 * copies; i++) {
        a.w = w[i % copies];
        awq_op_gemm_w4(dev, &a);
    }
    awq_device_synchronize(dev);
    double tw[5];
    struct vk_stats s0 = d->stats;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        for (int i = 0; i < OPS; i++) {
            a.w = w[i % copies];
            if (awq_op_gemm_w4(dev, &a) != 0) {
                printf("gemm: %s\n", awq_device_last_error(dev));
                exit(1);
            }
        }
        awq_device_synchronize(dev);
        tw[r] = (now() - t0) / OPS;
    }
    qsort(tw, 5, sizeof *tw, cmpd);
    struct ts t;
    ts_init(d, &t);
    ts_mark(d, &t, 0);
    double th0 = now();
    for (int i = 0; i < OPS; i++) {
        a.w = w[i % copies];
        awq_op_gemm_w4(dev, &a);
    }
    double host = (now() - th0) / OPS;
    ts_mark(d, &t, 1);
    double gpu = ts_read(d, &t) / OPS;
    printf("[%s] %5dx%-5d M=1: wall %.1f us/op, GPU %.1f us/op (timestamps), host record %.1f us/op; "
           "per op: %.3f submits, %.2f records, %.2f replays, %.2f direct; submit cost %.1f us\n",
           label, K, N, tw[2] * 1e6, gpu * 1e6, host * 1e6,
           (double)(d->stats.submits - s0.submits) / (6 * OPS), (double)(d->stats.records - s0.records) / (6 * OPS),
           (double)(d->stats.replays - s0.replays) / (6 * OPS), (double)(d->stats.direct - s0.direct) / (6 * OPS),
           d->submit_cost * 1e6);
    t.destroy(d->dev, t.pool, NULL);
    for (int c = 0; c < copies; c++)
        awq_qweight_destroy(w[c]);
    awq_buffer_destroy(x);
    awq_buffer_destroy(y);
    awq_device_close(dev);
    awq_context_destroy(ctx);
    free(qw);
    free(qz);
    free(sc);
}

static void copy_probe(const char *mode)
{
    setenv("AWQ_VK_COPY", mode, 1);
    awq_context *ctx;
    awq_device *dev = open_dev(&ctx);
    struct vk_dev *d = dev->impl;
    size_t n = (size_t)1 << 30;
    awq_buffer *a, *b;
    awq_buffer_create(dev, n, &a);
    awq_buffer_create(dev, n, &b);
    awq_op_zero(dev, (struct awq_tref){ a, 0 }, n);
    awq_op_copy(dev, (struct awq_tref){ a, 0 }, (struct awq_tref){ b, 0 }, n);
    awq_device_synchronize(dev);
    struct ts t;
    ts_init(d, &t);
    ts_mark(d, &t, 0);
    double t0 = now();
    for (int i = 0; i < 10; i++)
        awq_op_copy(dev, (struct awq_tref){ i % 2 ? b : a, 0 }, (struct awq_tref){ i % 2 ? a : b, 0 }, n);
    ts_mark(d, &t, 1);
    double gpu = ts_read(d, &t) / 10;
    double wall = (now() - t0) / 10;
    printf("copy %-8s 1 GiB: GPU %.1f GB/s, wall %.1f GB/s (read + write)\n", mode, 2.0 * n / gpu / 1e9,
           2.0 * n / wall / 1e9);
    /* small copies back to back */
    size_t m = 1 << 20;
    ts_mark(d, &t, 0);
    t0 = now();
    for (int i = 0; i < 1000; i++)
        awq_op_copy(dev, (struct awq_tref){ a, 0 }, (struct awq_tref){ b, (size_t)(i % 64) * m }, m);
    ts_mark(d, &t, 1);
    gpu = ts_read(d, &t) / 1000;
    wall = (now() - t0) / 1000;
    printf("copy %-8s 1 MiB x1000: GPU %.2f us/op, wall %.2f us/op\n", mode, gpu * 1e6, wall * 1e6);
    t.destroy(d->dev, t.pool, NULL);
    awq_buffer_destroy(a);
    awq_buffer_destroy(b);
    awq_device_close(dev);
    awq_context_destroy(ctx);
    unsetenv("AWQ_VK_COPY");
}

static void latency_probe(void)
{
    awq_context *ctx;
    awq_device *dev = open_dev(&ctx);
    struct vk_dev *d = dev->impl;
    awq_buffer *a;
    awq_buffer_create(dev, 4096, &a);
    double t[200];
    for (int i = 0; i < 200; i++) {
        double t0 = now();
        awq_op_zero(dev, (struct awq_tref){ a, 0 }, 4096);
        awq_device_synchronize(dev);
        t[i] = now() - t0;
    }
    qsort(t, 200, sizeof *t, cmpd);
    printf("round trip (tiny op + synchronize): median %.1f us, p10 %.1f, p90 %.1f\n", t[100] * 1e6, t[20] * 1e6,
           t[180] * 1e6);
    const VkPhysicalDeviceMemoryProperties *m = &d->ph->mem;
    for (uint32_t i = 0; i < m->memoryTypeCount; i++)
        printf("memory type %u: flags 0x%x heap %u (%.1f GiB, flags 0x%x)\n", i, m->memoryTypes[i].propertyFlags,
               m->memoryTypes[i].heapIndex, m->memoryHeaps[m->memoryTypes[i].heapIndex].size / 1073741824.0,
               m->memoryHeaps[m->memoryTypes[i].heapIndex].flags);
    printf("queue family %u, max range %zu, align %zu, copy_shader %d, uma %d, coopmat %d, fast %d\n",
           d->ph->queue_family, d->max_range, d->align, d->copy_shader, d->uma, d->coopmat, d->fast);
    awq_buffer_destroy(a);
    awq_device_close(dev);
    awq_context_destroy(ctx);
}

static void variant(int K, int N, const char *submit, const char *reuse)
{
    char label[200];
    snprintf(label, sizeof label, "SUBMIT=%s REUSE=%s", submit ? submit : "-", reuse ? reuse : "-");
    if (submit)
        setenv("AWQ_VK_SUBMIT", submit, 1);
    if (reuse)
        setenv("AWQ_VK_REUSE", reuse, 1);
    gemm_probe(K, N, label);
    unsetenv("AWQ_VK_SUBMIT");
    unsetenv("AWQ_VK_REUSE");
}

#define ONE_FRAME "fd=1000000,fb=100000000000000,idle=0"

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    latency_probe();
    setenv("AWQ_VK_SUBMIT", "spin=0", 1);
    printf("spin=0: ");
    latency_probe();
    unsetenv("AWQ_VK_SUBMIT");
    if (argc > 1 && !strcmp(argv[1], "small")) {
        variant(512, 512, NULL, NULL);
        variant(512, 512, ONE_FRAME, "0");
        return 0;
    }
    copy_probe("transfer");
    copy_probe("shader");
    static const int shapes[][2] = { { 4096, 4096 }, { 4096, 11008 }, { 8192, 28672 } };
    for (int s = 0; s < 3; s++)
        variant(shapes[s][0], shapes[s][1], NULL, NULL);
    for (int s = 0; s < 3; s += 2) {
        variant(shapes[s][0], shapes[s][1], "spin=0", NULL);
        variant(shapes[s][0], shapes[s][1], "fd=64,fb=67108864", NULL);
        variant(shapes[s][0], shapes[s][1], "fd=256,fb=268435456", NULL);
        variant(shapes[s][0], shapes[s][1], NULL, "0");
        variant(shapes[s][0], shapes[s][1], "idle=1", NULL);
        variant(shapes[s][0], shapes[s][1], NULL, NULL);
    }
    for (int s = 0; s < 3; s++)
        variant(shapes[s][0], shapes[s][1], ONE_FRAME, NULL);
    variant(4096, 4096, ONE_FRAME, "0");
    variant(8192, 28672, ONE_FRAME, "0");
    return 0;
}
