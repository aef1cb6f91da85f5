/*
 * The OpenCL kernels under every row of the per-vendor parameter table (ocl_params.c): the parity
 * suite is run again with AWQ_OPENCL_PARAMS forcing the NVIDIA, AMD, Intel and "small" rows, so
 * the tile shapes, packing widths and work-group sizes of devices this machine lacks are checked
 * on whatever device it has (PoCL in CI). att_wgs is raised so that attention also takes its
 * split-KV path (decode on a large GPU) on a small device.
 *
 * Each run is a separate process (tests/parity_opencl next to this program): this process never
 * touches OpenCL itself. Exits 77 when the parity program skips (no OpenCL device).
 */
#include "config.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

int main(int argc, char **argv)
{
    static const char *rows[] = { "row=nvidia,att_wgs=100000", "row=amd", "row=intel,att_wgs=64",
                                  "row=small" };
    char self[1024], cmd[1200];
    snprintf(self, sizeof self, "%s", argc > 0 ? argv[0] : "tests/test_opencl_rows");
    snprintf(cmd, sizeof cmd, "'%s/parity_opencl'", dirname(self));
    int failed = 0, skipped = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        printf("== AWQ_OPENCL_PARAMS=%s\n", rows[i]);
        fflush(stdout);
        setenv("AWQ_OPENCL_PARAMS", rows[i], 1);
        int st = system(cmd);
        int rc = st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
        printf("== exit status %d\n", rc);
        if (rc == 77)
            skipped++;
        else if (rc != 0)
            failed++;
    }
    if (failed)
        return 1;
    return skipped ? 77 : 0;
}
