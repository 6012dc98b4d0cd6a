#ifndef ROPEFOLD_TUI_SHARED_BLAS_ENV_H
#define ROPEFOLD_TUI_SHARED_BLAS_ENV_H

/* OpenBLAS picks its kernels for the CPU once, when the library is
 * loaded. 0.3.21 (Debian 12) does not know the newer Xeons (family 6
 * model 207, Emerald Rapids, among them) and falls back to its Prescott
 * kernels, SSE3 only: dgemm there ran at 8.7 GFLOP/s against 82 with the
 * SkylakeX kernels on the same CPU. When OpenBLAS has fallen back that way
 * on a CPU with AVX-512 (SkylakeX kernels) or AVX2 and FMA (Haswell), and
 * OPENBLAS_CORETYPE is not set, the program is run again with it set (the
 * library reads it only at load time). Call first thing in main; returns
 * when nothing is to be done or the exec failed. */
void blas_env_fix_core(char **argv);

#endif
