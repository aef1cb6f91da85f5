/* The awq program's subcommands: one file each (src/cli/cmd_<name>.c). Each takes the arguments
 * after the subcommand name (argv[0] is the subcommand), prints its own --help, and returns the
 * process exit status: 0 success, 1 failure of the work, 2 bad usage. */
#ifndef AWQ_CLI_COMMANDS_H
#define AWQ_CLI_COMMANDS_H

int awq_cmd_devices(int argc, char **argv);
int awq_cmd_info(int argc, char **argv);
int awq_cmd_bench(int argc, char **argv);
int awq_cmd_tokenize(int argc, char **argv);
int awq_cmd_quantize(int argc, char **argv);
int awq_cmd_ppl(int argc, char **argv);
int awq_cmd_run(int argc, char **argv);
int awq_cmd_demo(int argc, char **argv);

#endif
