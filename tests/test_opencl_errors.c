/*
 * OpenCL backend errors become libawq errors with detail: a kernel that fails to build returns
 * the compiler's log; a buffer beyond CL_DEVICE_MAX_MEM_ALLOC_SIZE is AWQ_ERR_DEVICE_MEMORY with
 * the size; a tensor offset that is not a multiple of its element size is refused; and an
 * overlapping copy inside one buffer (which OpenCL itself refuses) behaves like memmove; a bad
 * AWQ_OPENCL_PARAMS tuning override makes open fail with a reason.
 *
 * Runs without fork (PoCL, see test_opencl_cache.c); exits 77 without an OpenCL device.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/opencl/ocl_internal.h"
#include "core/ops.h"
#include "testutil.h"

static awq_context *ctx;
static awq_device *dev;

START_TEST(test_build_failure_has_log)
{
    struct ocl_dev *d = dev->impl;
    cl_program p = NULL;
    int st = ocl_program_build(d, "broken", "kernel void broken(global float *x)\n"
                                            "{ x[0] = no_such_identifier_here; }\n", "", &p);
    ck_assert_int_eq(st, AWQ_ERR_BACKEND);
    ck_assert_ptr_null(p);
    const char *msg = awq_device_last_error(dev);
    ck_assert_msg(strstr(msg, "CL_BUILD_PROGRAM_FAILURE") && strstr(msg, "build log"),
                  "message lacks the error name or the log: %s", msg);
    ck_assert_msg(strstr(msg, "no_such_identifier_here"), "build log not in the message: %s", msg);
    /* the device still works after a failed build */
    awq_buffer *b;
    ck_assert_int_eq(awq_buffer_create(dev, 64, &b), 0);
    awq_buffer_destroy(b);
}
END_TEST

START_TEST(test_allocation_beyond_device_limit)
{
    struct ocl_dev *d = dev->impl;
    size_t too_big = (size_t)d->desc.max_alloc + 4096;
    awq_buffer *b = NULL;
    ck_assert_int_eq(awq_buffer_create(dev, too_big, &b), AWQ_ERR_DEVICE_MEMORY);
    ck_assert_ptr_null(b);
    char want[32];
    snprintf(want, sizeof want, "%zu", too_big);
    ck_assert_msg(strstr(awq_device_last_error(dev), want) &&
                  strstr(awq_device_last_error(dev), "CL_DEVICE_MAX_MEM_ALLOC_SIZE"),
                  "message: %s", awq_device_last_error(dev));
}
END_TEST

START_TEST(test_misaligned_offset)
{
    awq_buffer *b;
    ck_assert_int_eq(awq_buffer_create(dev, 4096, &b), 0);
    struct awq_add_args a = { 10, { b, 0 }, { b, 2 }, { b, 2048 } };
    ck_assert_int_eq(awq_op_add(dev, &a), AWQ_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(awq_device_last_error(dev), "not aligned"), "%s", awq_device_last_error(dev));
    awq_buffer_destroy(b);
}
END_TEST

START_TEST(test_overlapping_copy)
{
    enum { n = 1000 };
    unsigned char h[n], back[n], want[n];
    for (int i = 0; i < n; i++)
        h[i] = (unsigned char)(i * 7 + 1);
    awq_buffer *b;
    ck_assert_int_eq(awq_buffer_create(dev, n, &b), 0);
    for (int dir = 0; dir < 2; dir++) {
        size_t src = dir ? 100 : 0, dst = dir ? 0 : 100, len = 700;
        ck_assert_int_eq(awq_buffer_write(b, 0, h, n), 0);
        struct awq_tref s = { b, src }, t = { b, dst };
        ck_assert_msg(awq_op_copy(dev, s, t, len) == 0, "copy: %s", awq_device_last_error(dev));
        memcpy(want, h, n);
        memmove(want + dst, h + src, len);
        ck_assert_int_eq(awq_buffer_read(b, 0, back, n), 0);
        ck_assert_mem_eq(back, want, n);
    }
    awq_buffer_destroy(b);
}
END_TEST

START_TEST(test_bad_param_override)
{
    static const char *bad[] = { "bm=48", "row=quantum", "gv_ts=3", "nonsense", "pack_n=-1" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("AWQ_OPENCL_PARAMS", bad[i], 1);
        awq_context *c;
        awq_device *d = NULL;
        ck_assert_int_eq(awq_context_create(NULL, &c), 0);
        int st = awq_device_open(c, "opencl", -1, &d);
        ck_assert_msg(st == AWQ_ERR_INVALID_ARGUMENT && !d, "%s: open gave %d", bad[i], st);
        ck_assert_msg(strstr(awq_context_last_error(c), "AWQ_OPENCL_PARAMS"), "%s: %s", bad[i],
                      awq_context_last_error(c));
        awq_context_destroy(c);
    }
    unsetenv("AWQ_OPENCL_PARAMS");
}
END_TEST

int main(void)
{
    if (awq_context_create(NULL, &ctx) != 0)
        return 99;
    if (awq_device_open(ctx, "opencl", -1, &dev) != 0) {
        printf("SKIP: no usable OpenCL device: %s\n", awq_context_last_error(ctx));
        awq_context_destroy(ctx);
        return 77;
    }
    Suite *s = suite_create("opencl-errors");
    TCase *tc = tcase_create("errors");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_build_failure_has_log);
    tcase_add_test(tc, test_allocation_beyond_device_limit);
    tcase_add_test(tc, test_misaligned_offset);
    tcase_add_test(tc, test_overlapping_copy);
    tcase_add_test(tc, test_bad_param_override);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_VERBOSE);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    awq_device_close(dev);
    awq_context_destroy(ctx);
    return failed ? 1 : 0;
}
