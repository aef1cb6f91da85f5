/* awq bench: times gemm_w4 on every available device for the linears of Llama-2-7B/70B, side by
 * side with the unquantized fp16 product on the same device (cuBLAS on CUDA) and the device's copy
 * bandwidth measured in the same run. Weights are rotated over enough copies to exceed the caches;
 * launches go back to back; the reported time is the median of repeated batches after warm-up. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "core/context.h"
#include "core/ops.h"
#include "util/half.h"

#define MAX_LIST 16
#define ROTATE_BYTES (320u << 20)   /* weights rotated over at least this many bytes (> any L2/L3) */

struct bench_opts {
    const char *backends[8];
    int n_backends;
    int device;
    int ms[MAX_LIST], n_ms;
    int shapes[MAX_LIST][2], n_shapes;
    int group_size;
    int reps;
    double budget;     /* seconds per measurement at most */
    int baseline;
    int act_stats;
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median over `reps` batches of the per-call time of fn(arg, i) (i rotates the copies). */
typedef int (*bench_fn)(void *arg, int i);

static int time_calls(awq_device *dev, bench_fn fn, void *arg, int reps, double budget, double *out)
{
    int st;
    /* The first call pays one-time costs (kernel compilation, pipeline creation, buffer
     * first-touch); sizing the batch from it would time single launches plus a host round trip. */
    if ((st = fn(arg, 0)) < 0 || (st = awq_device_synchronize(dev)) < 0)
        return st;
    double t0 = cli_now();
    if ((st = fn(arg, 1)) < 0 || (st = awq_device_synchronize(dev)) < 0)
        return st;
    double once = cli_now() - t0;
    /* batch size: ~20 ms of back-to-back launches, bounded by the time budget */
    int batch = once > 0 ? (int)(0.02 / once) : 100;
    batch = batch < 1 ? 1 : (batch > 200 ? 200 : batch);
    if (once * batch * reps > budget)
        reps = (int)(budget / (once * batch)) < 3 ? 3 : (int)(budget / (once * batch));
    if (once > budget / 3) {
        reps = 1;
        batch = 1;
    }
    for (int w = 0; w < 2 && once < budget / 10; w++)   /* warm-up */
        for (int i = 0; i < batch; i++)
            if ((st = fn(arg, i)) < 0)
                return st;
    awq_device_synchronize(dev);
    double *t = malloc(sizeof(double) * (size_t)reps);
    if (!t)
        return AWQ_ERR_OUT_OF_MEMORY;
    for (int r = 0; r < reps; r++) {
        double s = cli_now();
        for (int i = 0; i < batch; i++)
            if ((st = fn(arg, r * batch + i)) < 0) {
                free(t);
                return st;
            }
        if ((st = awq_device_synchronize(dev)) < 0) {
            free(t);
            return st;
        }
        t[r] = (cli_now() - s) / batch;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    *out = t[reps / 2];
    free(t);
    return 0;
}

/* ---- copy bandwidth ------------------------------------------------------------------------ */

struct copy_arg {
    awq_device *dev;
    awq_buffer *a, *b;
    size_t n;
};

static int copy_once(void *vp, int i)
{
    struct copy_arg *c = vp;
    struct awq_tref s = { i % 2 ? c->b : c->a, 0 }, d = { i % 2 ? c->a : c->b, 0 };
    return awq_op_copy(c->dev, s, d, c->n);
}

/* Bytes per second, read + write counted. */
static int copy_bandwidth(awq_device *dev, const struct bench_opts *o, double *bw)
{
    awq_device_info info;
    awq_device_get_info(dev, &info);
    size_t n = info.type == AWQ_DEVICE_GPU ? (size_t)1 << 30 : (size_t)256 << 20;
    struct copy_arg c = { dev, NULL, NULL, n };
    int st = awq_buffer_create(dev, n, &c.a);
    if (st == 0)
        st = awq_buffer_create(dev, n, &c.b);
    if (st == 0)
        st = awq_op_zero(dev, (struct awq_tref){ c.a, 0 }, n);
    double t = 0;
    if (st == 0)
        st = time_calls(dev, copy_once, &c, o->reps, o->budget, &t);
    awq_buffer_destroy(c.a);
    awq_buffer_destroy(c.b);
    if (st == 0)
        *bw = 2.0 * (double)n / t;
    return st;
}

/* ---- gemm_w4 and the fp16 baseline ------------------------------------------------------- */

struct w4_arg {
    awq_device *dev;
    awq_qweight *w[64];
    int copies;
    awq_buffer *x, *y;
    int M;
};

static int w4_once(void *vp, int i)
{
    struct w4_arg *a = vp;
    struct awq_gemm_w4_args g = { .w = a->w[i % a->copies], .M = a->M, .x_type = AWQ_DTYPE_F16,
                                  .y_type = AWQ_DTYPE_F16, .x = { a->x, 0 }, .y = { a->y, 0 } };
    return awq_op_gemm_w4(a->dev, &g);
}

struct f16_arg {
    awq_device *dev;
    awq_buffer *w[64];
    int copies;
    awq_buffer *x, *y;
    int M, N, K;
};

static int f16_once(void *vp, int i)
{
    struct f16_arg *a = vp;
    struct awq_gemm_args g = { .M = a->M, .N = a->N, .K = a->K, .x_type = AWQ_DTYPE_F16,
                               .w_type = AWQ_DTYPE_F16, .y_type = AWQ_DTYPE_F16,
                               .x = { a->x, 0 }, .w = { a->w[i % a->copies], 0 }, .y = { a->y, 0 } };
    return awq_op_gemm(a->dev, &g);
}

static int copies_for(size_t bytes)
{
    size_t c = (ROTATE_BYTES + bytes - 1) / bytes;
    return c < 1 ? 1 : (c > 64 ? 64 : (int)c);
}

static int make_weights(awq_device *dev, int K, int N, int G, struct w4_arg *a, uint64_t *seed)
{
    size_t nq = (size_t)K * N / 8, nz = (size_t)K / G * N / 8, ns = (size_t)K / G * N;
    int32_t *qw = malloc(nq * 4), *qz = malloc(nz * 4);
    uint16_t *sc = malloc(ns * 2);
    int st = AWQ_ERR_OUT_OF_MEMORY;
    if (qw && qz && sc) {
        for (size_t i = 0; i < nq; i++)
        {
            *seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
            qw[i] = (int32_t)(uint32_t)(*seed >> 32);
        }
        for (size_t i = 0; i < nz; i++)
            qz[i] = (int32_t)0x88888888u;
        for (size_t i = 0; i < ns; i++)
            sc[i] = awq_f32_to_f16(0.01f);
        struct awq_w4_host h = { K, N, G, qw, qz, sc };
        a->copies = copies_for(nq * 4 + nz * 4 + ns * 2);
        st = 0;
        for (int c = 0; c < a->copies && st == 0; c++)
            st = awq_op_w4_create(dev, &h, &a->w[c]);
        if (st < 0)   /* fewer copies when memory is short (noted by the caller through copies) */
            for (int c = 0; c < a->copies; c++)
                if (!a->w[c]) {
                    a->copies = c;
                    st = c > 0 ? 0 : st;
                    break;
                }
    }
    free(qw);
    free(qz);
    free(sc);
    return st;
}

static int fill_f16(awq_device *dev, awq_buffer *b, size_t n, float v)
{
    uint16_t *h = malloc(n * 2);
    if (!h)
        return AWQ_ERR_OUT_OF_MEMORY;
    uint16_t hv = awq_f32_to_f16(v);
    for (size_t i = 0; i < n; i++)
        h[i] = (uint16_t)(hv ^ (i & 1 ? 0x8000 : 0));
    int st = awq_buffer_write(b, 0, h, n * 2);
    free(h);
    return st;
}

static void print_row(const char *dev, int K, int N, int M, double t, double bytes, double bw,
                      double tb, double flop)
{
    printf("| %-7s | %5d x %-5d | %4d | %10.1f | %8.1f | %5.1f%% | %7.2f |", dev, K, N, M, t * 1e6,
           bytes / t / 1e9, 100.0 * bytes / t / bw, flop / t / 1e12);
    if (tb > 0)
        printf(" %10.1f | %5.2fx |\n", tb * 1e6, tb / t);
    else
        printf(" %10s | %6s |\n", "-", "-");
    fflush(stdout);
}

static int bench_shape(awq_device *dev, const char *name, const struct bench_opts *o, int K, int N,
                       double bw, uint64_t *seed)
{
    struct w4_arg a;
    memset(&a, 0, sizeof a);
    a.dev = dev;
    int st = make_weights(dev, K, N, o->group_size, &a, seed);
    if (st < 0) {
        cli_warn("bench", "%s %dx%d: %s", name, K, N, awq_device_last_error(dev));
        return st;
    }
    double wbytes = (double)K * N / 2 + (double)K / o->group_size * N * 2.5;
    for (int mi = 0; mi < o->n_ms; mi++) {
        int M = o->ms[mi];
        a.M = M;
        a.x = a.y = NULL;
        if ((st = awq_buffer_create(dev, (size_t)M * K * 2, &a.x)) < 0 ||
            (st = awq_buffer_create(dev, (size_t)M * N * 2, &a.y)) < 0 ||
            (st = fill_f16(dev, a.x, (size_t)M * K, 0.5f)) < 0) {
            cli_warn("bench", "%s %dx%d M=%d: %s", name, K, N, M, awq_device_last_error(dev));
            awq_buffer_destroy(a.x);
            awq_buffer_destroy(a.y);
            continue;
        }
        double t = 0, tb = 0;
        st = time_calls(dev, w4_once, &a, o->reps, o->budget, &t);
        if (st < 0) {
            cli_warn("bench", "%s gemm_w4 %dx%d M=%d: %s", name, K, N, M, awq_device_last_error(dev));
        } else if (o->baseline) {
            struct f16_arg b;
            memset(&b, 0, sizeof b);
            b.dev = dev;
            b.x = a.x;
            b.y = a.y;
            b.M = M;
            b.N = N;
            b.K = K;
            b.copies = copies_for((size_t)K * N * 2);
            int bs = 0;
            for (int c = 0; c < b.copies && bs == 0; c++) {
                bs = awq_buffer_create(dev, (size_t)K * N * 2, &b.w[c]);
                if (bs == 0)
                    bs = awq_op_zero(dev, (struct awq_tref){ b.w[c], 0 }, (size_t)K * N * 2);
                if (bs < 0 && c > 0) {
                    b.copies = c;
                    bs = 0;
                    break;
                }
            }
            if (bs == 0)
                bs = time_calls(dev, f16_once, &b, o->reps, o->budget, &tb);
            if (bs < 0) {
                cli_warn("bench", "%s fp16 baseline %dx%d M=%d: %s", name, K, N, M, awq_device_last_error(dev));
                tb = 0;
            }
            for (int c = 0; c < b.copies; c++)
                awq_buffer_destroy(b.w[c]);
        }
        if (st == 0)
            print_row(name, K, N, M, t, wbytes + (double)M * (K + N) * 2, bw, tb, 2.0 * M * K * N);
        awq_buffer_destroy(a.x);
        awq_buffer_destroy(a.y);
    }
    for (int c = 0; c < a.copies; c++)
        awq_qweight_destroy(a.w[c]);
    return 0;
}

struct stats_arg {
    awq_device *dev;
    awq_buffer *x, *acc;
    int T, C;
};

static int stats_once(void *vp, int i)
{
    struct stats_arg *s = vp;
    struct awq_act_stats_args a = { .T = s->T, .C = s->C, .x_type = AWQ_DTYPE_F16, .x = { s->x, 0 },
                                    .sum_abs = { s->acc, 0 }, .max_abs = { s->acc, (size_t)s->C * 4 },
                                    .sum_sq = { s->acc, (size_t)s->C * 8 } };
    return awq_op_act_stats(s->dev, &a);
}

static void bench_act_stats(awq_device *dev, const char *name, const struct bench_opts *o, double bw)
{
    awq_device_info info;
    awq_device_get_info(dev, &info);
    struct stats_arg s = { dev, NULL, NULL, info.type == AWQ_DEVICE_GPU ? 16384 : 2048, 8192 };
    double t;
    if (awq_buffer_create(dev, (size_t)s.T * s.C * 2, &s.x) == 0 &&
        awq_buffer_create(dev, (size_t)s.C * 12, &s.acc) == 0 &&
        fill_f16(dev, s.x, (size_t)s.T * s.C, 1.5f) == 0 &&
        awq_op_zero(dev, (struct awq_tref){ s.acc, 0 }, (size_t)s.C * 12) == 0 &&
        time_calls(dev, stats_once, &s, o->reps, o->budget, &t) == 0) {
        double bytes = (double)s.T * s.C * 2;
        printf("\nact_stats on %s: [%d, %d] fp16 in %.1f us = %.1f GB/s = %.1f%% of copy bandwidth\n",
               name, s.T, s.C, t * 1e6, bytes / t / 1e9, 100 * bytes / t / bw);
    } else {
        cli_warn("bench", "act_stats on %s: %s", name, awq_device_last_error(dev));
    }
    awq_buffer_destroy(s.x);
    awq_buffer_destroy(s.acc);
}

static int bench_device(awq_context *ctx, const char *backend, const struct bench_opts *o)
{
    awq_device *dev;
    if (cli_open_device("bench", ctx, backend, o->device, &dev) < 0)
        return -1;
    awq_device_info info;
    awq_device_get_info(dev, &info);
    char name[32];
    snprintf(name, sizeof name, "%s", info.backend);
    double bw = 0;
    if (copy_bandwidth(dev, o, &bw) < 0) {
        cli_error("bench", "copy bandwidth on %s: %s", name, awq_device_last_error(dev));
        awq_device_close(dev);
        return -1;
    }
    printf("\n## %s #%d: %s (%s)\n\ncopy bandwidth (read + write): %.1f GB/s; group size %d; "
           "X and Y fp16; baseline: unquantized fp16 gemm on the same device\n\n",
           info.backend, info.index, info.name, info.driver, bw / 1e9, o->group_size);
    printf("| backend | K x N         |    M |  w4 (us)   |   GB/s   | %% copy | TFLOP/s | fp16 (us)  | speedup |\n");
    printf("|---------|---------------|------|------------|----------|--------|---------|------------|---------|\n");
    uint64_t seed = 12345;
    for (int s = 0; s < o->n_shapes; s++)
        bench_shape(dev, name, o, o->shapes[s][0], o->shapes[s][1], bw, &seed);
    if (o->act_stats)
        bench_act_stats(dev, name, o, bw);
    awq_device_close(dev);
    return 0;
}

static int parse_list(const char *s, int *out, int max, int pairs)
{
    int n = 0;
    char *copy = strdup(s), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n >= max) {
            n = -1;
            break;
        }
        char *end;
        long a = strtol(tok, &end, 10), b = 0;
        if (pairs) {
            if (*end != 'x' || a <= 0) {
                n = -1;
                break;
            }
            b = strtol(end + 1, &end, 10);
        }
        if (*end || a <= 0 || a > 1000000 || (pairs && (b <= 0 || b > 1000000))) {
            n = -1;
            break;
        }
        if (pairs) {
            out[2 * n] = (int)a;
            out[2 * n + 1] = (int)b;
        } else {
            out[n] = (int)a;
        }
        n++;
    }
    free(copy);
    return n;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: awq bench [options]\n\n"
            "Times the 4-bit matrix product (gemm_w4) on each device, beside the device's copy\n"
            "bandwidth and the unquantized fp16 product on the same device (cuBLAS on CUDA).\n"
            "Prints a Markdown table: time (median), effective GB/s, %% of copy bandwidth, TFLOP/s.\n\n"
            "options:\n"
            "  --backend NAME   cpu, cuda, opencl or vulkan; repeatable (default: every usable backend)\n"
            "  --device N       device index within the backend (default: the backend's preferred)\n"
            "  --shapes LIST    KxN list (default 4096x4096,4096x11008,11008x4096,8192x28672)\n"
            "  --m LIST         rows of X (default 1,8,32,256,4096 on GPUs; 1,8,32,256 on CPUs)\n"
            "  --group-size G   32, 64 or 128 (default 128)\n"
            "  --reps N         timed batches per measurement (default 15)\n"
            "  --budget S       seconds per measurement at most (default 3)\n"
            "  --no-baseline    skip the fp16 baseline\n"
            "  --no-act-stats   skip the act_stats measurement\n");
}

int awq_cmd_bench(int argc, char **argv)
{
    struct bench_opts o;
    memset(&o, 0, sizeof o);
    o.device = -1;
    o.group_size = 128;
    o.reps = 15;
    o.budget = 3;
    o.baseline = 1;
    o.act_stats = 1;
    static const int def_shapes[4][2] = { { 4096, 4096 }, { 4096, 11008 }, { 11008, 4096 }, { 8192, 28672 } };
    memcpy(o.shapes, def_shapes, sizeof def_shapes);
    o.n_shapes = 4;
    int user_ms = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        double d;
        if (cli_is_help(a)) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--backend") && v) {
            if (o.n_backends == 8)
                return 2;
            o.backends[o.n_backends++] = v;
            i++;
        } else if (!strcmp(a, "--device") && v) {
            if (cli_parse_int("bench", a, v, 0, 1024, &n) < 0)
                return 2;
            o.device = (int)n;
            i++;
        } else if (!strcmp(a, "--shapes") && v) {
            if ((o.n_shapes = parse_list(v, &o.shapes[0][0], MAX_LIST, 1)) <= 0) {
                cli_error("bench", "--shapes needs KxN pairs separated by commas, not '%s'", v);
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--m") && v) {
            if ((o.n_ms = parse_list(v, o.ms, MAX_LIST, 0)) <= 0) {
                cli_error("bench", "--m needs positive numbers separated by commas, not '%s'", v);
                return 2;
            }
            user_ms = 1;
            i++;
        } else if (!strcmp(a, "--group-size") && v) {
            if (cli_parse_int("bench", a, v, 32, 128, &n) < 0 || (n != 32 && n != 64 && n != 128)) {
                cli_error("bench", "--group-size must be 32, 64 or 128");
                return 2;
            }
            o.group_size = (int)n;
            i++;
        } else if (!strcmp(a, "--reps") && v) {
            if (cli_parse_int("bench", a, v, 1, 1000, &n) < 0)
                return 2;
            o.reps = (int)n;
            i++;
        } else if (!strcmp(a, "--budget") && v) {
            if (cli_parse_double("bench", a, v, 0.01, 3600, &d) < 0)
                return 2;
            o.budget = d;
            i++;
        } else if (!strcmp(a, "--no-baseline")) {
            o.baseline = 0;
        } else if (!strcmp(a, "--no-act-stats")) {
            o.act_stats = 0;
        } else {
            cli_error("bench", "unknown option or missing value: '%s' (see awq bench --help)", a);
            return 2;
        }
    }
    for (int s = 0; s < o.n_shapes; s++)
        if (o.shapes[s][0] % o.group_size || o.shapes[s][1] % 8) {
            cli_error("bench", "shape %dx%d: K must be a multiple of the group size and N of 8",
                      o.shapes[s][0], o.shapes[s][1]);
            return 2;
        }
    struct cli_ui ui;
    cli_ui_init(&ui, 0, 1);
    awq_context_options copt;
    cli_context_options(&ui, &copt);
    awq_context *ctx;
    if (awq_context_create(&copt, &ctx) < 0)
        return 1;
    printf("# awq bench — libawq %s\n", awq_version());
    int failures = 0, ran = 0;
    for (int b = 0; b < awq_backend_count(ctx); b++) {
        const char *name = awq_backend_name(ctx, b);
        int wanted = o.n_backends == 0;
        for (int i = 0; i < o.n_backends; i++)
            wanted |= !strcmp(o.backends[i], name);
        if (!wanted)
            continue;
        if (awq_backend_device_count(ctx, b) <= 0) {
            if (o.n_backends) {
                cli_error("bench", "backend %s: %s", name, awq_context_last_error(ctx));
                failures++;
            }
            continue;
        }
        awq_device_info info;
        awq_backend_device_info(ctx, b, 0, &info);
        if (!user_ms) {
            static const int gpu_ms[] = { 1, 8, 32, 256, 4096 }, cpu_ms[] = { 1, 8, 32, 256 };
            int gpu = 0;
            int n = awq_backend_device_count(ctx, b);
            for (int d = 0; d < n; d++)
                if (awq_backend_device_info(ctx, b, d, &info) == 0 && info.type == AWQ_DEVICE_GPU)
                    gpu = 1;
            o.n_ms = gpu ? 5 : 4;
            memcpy(o.ms, gpu ? gpu_ms : cpu_ms, sizeof(int) * (size_t)o.n_ms);
        }
        ran++;
        if (bench_device(ctx, name, &o) < 0)
            failures++;
    }
    for (int i = 0; i < o.n_backends; i++)
        if (awq_backend_find(ctx, o.backends[i]) < 0) {
            cli_error("bench", "backend '%s' is not built in (built: %s)", o.backends[i], awq_build_info());
            failures++;
        }
    awq_context_destroy(ctx);
    return failures || !ran ? 1 : 0;
}
