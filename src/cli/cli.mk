# The awq program. Each subcommand is one file (src/cli/cmd_<name>.c, declared in commands.h).
bin_PROGRAMS += awq
awq_SOURCES = \
	src/cli/main.c src/cli/commands.h \
	src/cli/cli_util.c src/cli/cli_util.h \
	src/cli/cmd_devices.c \
	src/cli/cmd_info.c \
	src/cli/cmd_tokenize.c \
	src/cli/cmd_quantize.c \
	src/cli/cmd_ppl.c \
	src/cli/cmd_run.c \
	src/cli/cmd_bench.c \
	src/cli/cmd_demo.c
awq_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
awq_LDADD = libawq_internal.la $(JANSSON_LIBS) $(PCRE2_LIBS) $(PTHREAD_LIBS) -lm
