#ifndef ROPEFOLD_TUI_CLI_VERIFY_H
#define ROPEFOLD_TUI_CLI_VERIFY_H

#include <stddef.h>

/* `ropefold verify A B [--layers all|N|N..M] [--json]`: is B an exact fold
 * of A, layer by layer? Returns the exit status: 0 equivalent in every
 * chosen layer, 1 not, 2 bad usage or input. */
int cli_verify(int argc, char **argv);

/* Parse --layers ("all", "N", "N..M", inclusive; NULL: all) against a
 * layer count into [*lo, *hi]; -1 with a message in err, which names
 * flag (the one the value came from; NULL: --layers), when s is not of
 * that form or out of range. */
int cli_parse_layers(const char *flag, const char *s, size_t n_layers, size_t *lo,
		     size_t *hi, char *err, size_t errlen);

#endif
