/* awq devices: every backend compiled in, its devices, or why it cannot be used here. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "awq.h"
#include "cli/cli_util.h"
#include "cli/commands.h"

static const char *type_name(awq_device_type t)
{
    return t == AWQ_DEVICE_GPU ? "GPU" : t == AWQ_DEVICE_CPU ? "CPU" : "other";
}

int awq_cmd_devices(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            printf("usage: awq devices\n\nLists every backend compiled into libawq with its devices "
                   "(name, type, memory, fp16),\nor the reason a backend is unusable on this machine. "
                   "The device marked * is the default.\n");
            return 0;
        }
        cli_error("devices", "unexpected argument '%s'", argv[i]);
        return 2;
    }
    awq_context *ctx;
    if (awq_context_create(NULL, &ctx) < 0) {
        cli_error("devices", "cannot create a context");
        return 1;
    }
    awq_device *def = NULL;
    awq_device_info dinfo;
    memset(&dinfo, 0, sizeof dinfo);
    if (awq_device_open(ctx, NULL, -1, &def) == 0)
        awq_device_get_info(def, &dinfo);
    awq_device_close(def);
    int n_usable = 0;
    for (int b = 0; b < awq_backend_count(ctx); b++) {
        const char *name = awq_backend_name(ctx, b);
        int n = awq_backend_device_count(ctx, b);
        if (n < 0) {
            printf("%-7s unavailable: %s\n", name, awq_context_last_error(ctx));
            continue;
        }
        if (n == 0)
            printf("%-7s no devices\n", name);
        for (int d = 0; d < n; d++) {
            awq_device_info info;
            if (awq_backend_device_info(ctx, b, d, &info) < 0) {
                printf("%-7s #%d: %s\n", name, d, awq_context_last_error(ctx));
                continue;
            }
            int is_def = !strcmp(info.backend, dinfo.backend) && info.index == dinfo.index;
            printf("%-7s #%d%s %-5s %s | %s | %.1f GiB | fp16 %s | %d CUs%s%s\n", name, d,
                   is_def ? "*" : " ", type_name(info.type), info.name, info.vendor,
                   (double)info.memory_bytes / 1073741824.0, info.fp16 ? "yes" : "no",
                   info.compute_units, info.driver[0] ? " | " : "", info.driver);
            n_usable++;
        }
    }
    awq_context_destroy(ctx);
    return n_usable ? 0 : 1;
}
