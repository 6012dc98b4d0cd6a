#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "tui/cli/bench.h"
#include "tui/cli/check.h"
#include "tui/cli/fold.h"
#include "tui/cli/info.h"
#include "tui/cli/logits.h"
#include "tui/cli/terminal.h"
#include "tui/cli/tui.h"
#include "tui/cli/verify.h"
#include "tui/shared/blas_env.h"
#include "tui/shared/options.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ropefold [MODE] [options]\n\n"
		"Fold RoPE-commuting rotations into an attention layer and watch the\n"
		"score, single-head block and residual multi-head levels stay exact.\n\n"
		"modes:\n"
		"  (none)    the TUI on the built-in default layer (a check report\n"
		"            when standard output is not a terminal)\n"
		"  tui       the TUI on a random or loaded layer\n"
		"  tour      the classroom tour of the canonical cases in the TUI\n"
		"  check     one evaluation, printed as a table or JSON\n"
		"  fold      write a folded checkpoint\n"
		"  verify    decide whether checkpoint B is an exact fold of A\n"
		"  info      what a checkpoint holds\n"
		"  logits    the whole model's logits on token ids\n"
		"  bench     timed evaluation with GFLOP/s\n\n"
		"'ropefold MODE --help' lists a mode's flags. '--version' prints the\n"
		"version.\n\n"
		"flags of check and tui (bench takes the same; fold takes --model,\n"
		"--layer, --seed, the RoPE and the fold flags):\n");
	opts_print_help(f, OPT_EVAL_MODEL | OPT_FOLD | OPT_EVAL | OPT_JSON);
}

/* Keep freed memory for the next layer rather than hand it back: glibc
 * gives the top of its heap back past the trim threshold and maps blocks
 * past a threshold that moves, and on a VM that returns freed pages to its
 * host each page costs again at its next touch (an 8B verify re-faulted
 * 11-45 thousand pages, 20.8 thousand faults in all now). Blocks of 32 MB
 * and more (a layer's weights) are still mapped and unmapped. */
static void malloc_keep_freed(void)
{
#if defined(M_TRIM_THRESHOLD) && defined(M_MMAP_THRESHOLD)
	mallopt(M_TRIM_THRESHOLD, 512 << 20);
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
#endif
}

int main(int argc, char **argv)
{
	blas_env_fix_core(argv);
	malloc_keep_freed();
	if (argc < 2) {
		/* The explorer on a terminal that can show it; else the check
		 * report (said so on a terminal that cannot). */
		if (isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) {
			char err[256];
			if (!terminal_check(err, sizeof err))
				return cli_tui_default();
			fprintf(stderr, "ropefold: %s; the check report instead:\n", err);
		}
		return cli_check(0, argv + 1, true);
	}
	const char *mode = argv[1];
	if (!strcmp(mode, "--version") || !strcmp(mode, "-V")) {
		printf("ropefold %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (!strcmp(mode, "--help") || !strcmp(mode, "-h") || !strcmp(mode, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(mode, "check"))
		return cli_check(argc - 2, argv + 2, false);
	if (!strcmp(mode, "tui"))
		return cli_tui(argc - 2, argv + 2, false);
	if (!strcmp(mode, "tour"))
		return cli_tui(argc - 2, argv + 2, true);
	if (!strcmp(mode, "info"))
		return cli_info(argc - 2, argv + 2);
	if (!strcmp(mode, "verify"))
		return cli_verify(argc - 2, argv + 2);
	if (!strcmp(mode, "fold"))
		return cli_fold(argc - 2, argv + 2);
	if (!strcmp(mode, "logits"))
		return cli_logits(argc - 2, argv + 2);
	if (!strcmp(mode, "bench"))
		return cli_bench(argc - 2, argv + 2);
	if (mode[0] == '-')
		return cli_check(argc - 1, argv + 1, false);
	fprintf(stderr, "ropefold: %s: unknown mode (see ropefold --help)\n", mode);
	return 2;
}
