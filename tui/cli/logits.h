#ifndef ROPEFOLD_TUI_CLI_LOGITS_H
#define ROPEFOLD_TUI_CLI_LOGITS_H

/* ropefold logits: the whole model's teacher-forced logits. */
int cli_logits(int argc, char **argv);

#endif
