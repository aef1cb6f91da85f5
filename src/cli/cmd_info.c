/* awq info: placeholder until its area lands (see the open issues). */
#include "config.h"

#include "cli/cli_util.h"
#include "cli/commands.h"

int awq_cmd_info(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("info", "this command is not available in this build yet");
    return 1;
}
