#ifndef ROPEFOLD_TUI_CLI_BENCH_H
#define ROPEFOLD_TUI_CLI_BENCH_H

/* `ropefold bench`: timed evaluations of one layer with GFLOP/s and the
 * machine's own GEMM rate beside them. Returns the exit status. */
int cli_bench(int argc, char **argv);

#endif
