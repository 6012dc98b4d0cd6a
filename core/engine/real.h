#ifndef ROPEFOLD_CORE_ENGINE_REAL_H
#define ROPEFOLD_CORE_ENGINE_REAL_H

/* The compute precision of this translation unit: engine_f64.c defines
 * ENGINE_F64 to 1, engine_f32.c to 0, before including template.h. The
 * phases are written in terms of these four names only:
 *   REAL            the type the products are computed in
 *   REAL_IS_DOUBLE  1 for double (float64 needs no converted copies)
 *   GEMM            the BLAS product of that type
 *   ENGINE_OPS      the name of the entry-point table this unit exports */
#if !defined(ENGINE_F64)
#error "define ENGINE_F64 (1 or 0) before including core/engine/template.h"
#endif

#if ENGINE_F64
#define REAL double
#define REAL_IS_DOUBLE 1
#define GEMM cblas_dgemm
#define ENGINE_OPS engine_ops_f64
#else
#define REAL float
#define REAL_IS_DOUBLE 0
#define GEMM cblas_sgemm
#define ENGINE_OPS engine_ops_f32
#endif

/* Blocking of the phases. */
#define PROJ_CHUNK 2048   /* output columns of one projection task */
#ifndef FOLD_COLS
#define FOLD_COLS 512     /* folded weight rows of one projection task */
#endif
#define CONV_CHUNK ((size_t)1 << 20)  /* float: entries of one conversion */
#define VLANES 4          /* entries per vector step of the compare loops */
#define POST_ROWS 32      /* rows of one bias/norm/RoPE task */
#ifndef OUT_TB
#define OUT_TB 256        /* outputs: tokens of one product */
#endif
#ifndef OUT_NC
#define OUT_NC 1024       /* outputs: model coordinates of one task */
#endif
/* fused outputs: columns whose panels (both sides) fit a core's L2 */
#ifndef FUSED_SUB_BYTES
#define FUSED_SUB_BYTES 2048
#endif
#define FUSED_SUB (FUSED_SUB_BYTES / sizeof(REAL))

#endif
