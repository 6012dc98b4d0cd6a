#ifndef ROPEFOLD_TUI_CLI_INFO_H
#define ROPEFOLD_TUI_CLI_INFO_H

/* `ropefold info PATH [--json]`: what a checkpoint holds. Returns the exit
 * status (0, or 2 on bad usage or a bad file). */
int cli_info(int argc, char **argv);

#endif
