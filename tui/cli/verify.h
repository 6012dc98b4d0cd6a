#ifndef ROPEFOLD_TUI_CLI_VERIFY_H
#define ROPEFOLD_TUI_CLI_VERIFY_H

/* `ropefold verify A B [--layers all|N|N..M] [--json]`: is B an exact fold
 * of A, layer by layer? Returns the exit status: 0 equivalent in every
 * chosen layer, 1 not, 2 bad usage or input. */
int cli_verify(int argc, char **argv);

#endif
