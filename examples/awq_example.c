/*
 * A small program embedding libawq the way a desktop application would: list the devices, open
 * the default one, upload one 4-bit layer and multiply a vector by it, and handle every error.
 *
 *   cc awq_example.c $(pkg-config --cflags --libs awq) -o awq-example
 */
#include <awq.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K 256
#define N 64
#define G 128

static void on_log(void *user, awq_log_level level, const char *msg)
{
    (void)user;
    fprintf(stderr, "[libawq %s] %s\n", level == AWQ_LOG_ERROR ? "error" : "info", msg);
}

static int fail(const char *what, int status, const char *detail)
{
    fprintf(stderr, "%s failed: %s (%s)\n", what, awq_strerror(status), detail);
    return 1;
}

int main(void)
{
    if (strcmp(awq_version(), AWQ_VERSION_STRING) != 0)
        fprintf(stderr, "note: built against libawq %s, running %s\n", AWQ_VERSION_STRING, awq_version());

    awq_context_options opt;
    awq_context_options_init(&opt);
    opt.log = on_log;
    opt.log_level = AWQ_LOG_INFO;
    awq_context *ctx;
    int st = awq_context_create(&opt, &ctx);
    if (st < 0)
        return fail("awq_context_create", st, "");

    printf("libawq %s, backends: %s\n", awq_version(), awq_build_info());
    for (int b = 0; b < awq_backend_count(ctx); b++) {
        int n = awq_backend_device_count(ctx, b);
        if (n < 0) {
            printf("  %s: unavailable (%s)\n", awq_backend_name(ctx, b), awq_context_last_error(ctx));
            continue;
        }
        for (int d = 0; d < n; d++) {
            awq_device_info info;
            if (awq_backend_device_info(ctx, b, d, &info) == 0)
                printf("  %s #%d: %s (%.1f GiB)\n", info.backend, d, info.name,
                       (double)info.memory_bytes / 1073741824.0);
        }
    }

    awq_device *dev;
    st = awq_device_open(ctx, NULL, -1, &dev);   /* AWQ_BACKEND / AWQ_DEVICE, else the best GPU */
    if (st < 0) {
        fail("awq_device_open", st, awq_context_last_error(ctx));
        awq_context_destroy(ctx);
        return 1;
    }

    /* A layer whose every 4-bit code is 9 with zero point 8 and scale 0.5: each weight is 0.5,
     * so every output equals 0.5 * sum(x). */
    int32_t *qweight = malloc(sizeof(int32_t) * K * N / 8);
    int32_t *qzeros = malloc(sizeof(int32_t) * K / G * N / 8);
    uint16_t *scales = malloc(sizeof(uint16_t) * K / G * N);
    float x[K], y[N];
    int rc = 1;
    awq_qweight *w = NULL;
    awq_buffer *bx = NULL, *by = NULL;
    if (!qweight || !qzeros || !scales)
        goto out;
    for (int i = 0; i < K * N / 8; i++)
        qweight[i] = (int32_t)0x99999999u;
    for (int i = 0; i < K / G * N / 8; i++)
        qzeros[i] = (int32_t)0x88888888u;
    for (int i = 0; i < K / G * N; i++)
        scales[i] = 0x3800;   /* 0.5 in fp16 */
    double sum = 0;
    for (int k = 0; k < K; k++)
        sum += x[k] = (float)(k % 7) - 3.0f;

    if ((st = awq_qweight_create(dev, K, N, G, qweight, qzeros, scales, &w)) < 0 ||
        (st = awq_buffer_create(dev, sizeof x, &bx)) < 0 ||
        (st = awq_buffer_create(dev, sizeof y, &by)) < 0 ||
        (st = awq_buffer_write(bx, 0, x, sizeof x)) < 0) {
        fail("upload", st, awq_device_last_error(dev));
        goto out;
    }
    awq_gemm_w4_params p = { .M = 1, .x_type = AWQ_DTYPE_F32, .x = bx, .y_type = AWQ_DTYPE_F32, .y = by };
    if ((st = awq_gemm_w4(dev, w, &p)) < 0 || (st = awq_buffer_read(by, 0, y, sizeof y)) < 0) {
        fail("awq_gemm_w4", st, awq_device_last_error(dev));
        goto out;
    }
    for (int n = 0; n < N; n++)
        if (fabs(y[n] - 0.5 * sum) > 1e-3) {
            fprintf(stderr, "wrong result: y[%d] = %g, expected %g\n", n, y[n], 0.5 * sum);
            goto out;
        }
    awq_device_info info;
    awq_device_get_info(dev, &info);
    printf("gemm_w4 on %s (%s): y[0] = %g, as expected\n", info.backend, info.name, y[0]);

    /* errors are values, not crashes: reading past the end of a buffer */
    st = awq_buffer_read(by, sizeof y - 4, y, 8);
    printf("reading past the end: %s (%s)\n", awq_strerror(st), awq_device_last_error(dev));
    rc = st == AWQ_ERR_OUT_OF_BOUNDS ? 0 : 1;
out:
    awq_buffer_destroy(bx);
    awq_buffer_destroy(by);
    awq_qweight_destroy(w);
    awq_device_close(dev);
    awq_context_destroy(ctx);
    free(qweight);
    free(qzeros);
    free(scales);
    return rc;
}
