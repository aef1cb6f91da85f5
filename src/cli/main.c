/* awq — the command-line front end of libawq. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "awq.h"
#include "cli/commands.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    { "devices", awq_cmd_devices, "list backends and devices (and why a backend is unavailable)" },
    { "info", awq_cmd_info, "show tensors, dtypes, shapes and quantization config of a model" },
    { "tokenize", awq_cmd_tokenize, "turn text into token ids (or ids into text with --decode)" },
    { "quantize", awq_cmd_quantize, "calibrate and quantize a model to a 4-bit AWQ checkpoint" },
    { "ppl", awq_cmd_ppl, "perplexity of a model over a text file" },
    { "run", awq_cmd_run, "generate text from a prompt" },
    { "bench", awq_cmd_bench, "time the 4-bit matrix product on every device" },
    { "demo", awq_cmd_demo, "quantize a small synthetic model with RTN and AWQ on every backend" },
};

static void usage(FILE *f)
{
    fprintf(f, "usage: awq <command> [options]\n\n"
               "libawq %s — 4-bit AWQ quantization and inference on CPUs and GPUs\n"
               "backends built: %s\n\ncommands:\n",
            awq_version(), awq_build_info());
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'awq <command> --help' describes a command's options.\n"
               "Environment: AWQ_BACKEND=cpu|cuda|opencl|vulkan and AWQ_DEVICE=N choose the device.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        printf("awq (libawq) %s\nbackends: %s\n", awq_version(), awq_build_info());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "awq: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
