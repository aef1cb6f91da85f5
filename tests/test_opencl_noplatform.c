/*
 * A machine without any OpenCL platform: the backend reports "no OpenCL platform found" as an
 * error (and opening it fails cleanly) instead of crashing. Simulated by pointing the ICD loader
 * at an empty vendor directory (OCL_ICD_VENDORS, honoured by ocl-icd and the Khronos loader)
 * before anything touches OpenCL; exits 77 when the loader ignores it and still finds a platform.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "testutil.h"

int main(void)
{
    char *empty = tu_tmpdir("noicd");
    if (!empty)
        return 99;
    setenv("OCL_ICD_VENDORS", empty, 1);
    unsetenv("OCL_ICD_FILENAMES");
    awq_context *ctx;
    if (awq_context_create(NULL, &ctx) != 0)
        return 99;
    int slot = -1;
    for (int i = 0; i < awq_backend_count(ctx); i++)
        if (strcmp(awq_backend_name(ctx, i), "opencl") == 0)
            slot = i;
    int rc = 0;
    if (slot < 0) {
        fprintf(stderr, "FAIL: opencl backend not listed\n");
        rc = 1;
        goto out;
    }
    int n = awq_backend_device_count(ctx, slot);
    if (n >= 0) {
        printf("SKIP: the ICD loader ignored OCL_ICD_VENDORS and found %d device(s)\n", n);
        rc = 77;
        goto out;
    }
    const char *msg = awq_context_last_error(ctx);
    printf("device_count = %d (%s): %s\n", n, awq_strerror(n), msg);
    if (n != AWQ_ERR_NO_DEVICE || !strstr(msg, "no OpenCL platform found")) {
        fprintf(stderr, "FAIL: expected AWQ_ERR_NO_DEVICE with \"no OpenCL platform found\"\n");
        rc = 1;
        goto out;
    }
    awq_device *dev = NULL;
    int st = awq_device_open(ctx, "opencl", -1, &dev);
    printf("open = %d: %s\n", st, awq_context_last_error(ctx));
    if (st != AWQ_ERR_NO_DEVICE || dev || !strstr(awq_context_last_error(ctx), "no OpenCL platform")) {
        fprintf(stderr, "FAIL: opening the backend must fail with the same reason\n");
        rc = 1;
    }
out:
    awq_context_destroy(ctx);
    tu_rmtree(empty);
    free(empty);
    return rc;
}
