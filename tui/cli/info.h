#ifndef ROPEFOLD_TUI_CLI_INFO_H
#define ROPEFOLD_TUI_CLI_INFO_H

/* `ropefold info PATH [--json]`: what a checkpoint holds. Returns the exit
 * status (0, or 2 on bad usage or a bad file). */
int cli_info(int argc, char **argv);

/* A checkpoint's note (ModelInfo.note: what was assumed about a family
 * ropefold does not know) as one stderr line "ropefold MODE: note: ...";
 * nothing when note is empty. */
void cli_model_note(const char *mode, const char *note);

#endif
