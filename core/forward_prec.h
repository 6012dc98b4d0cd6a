#ifndef ROPEFOLD_CORE_FORWARD_PREC_H
#define ROPEFOLD_CORE_FORWARD_PREC_H

#include "core/forward.h"

/* The two instantiations of core/forward_impl.h, dispatched by forward.c. */
RfStatus fwd_layer_apply_f64(FwdState *s, const FwdLayer *l);
RfStatus fwd_layer_apply_f32(FwdState *s, const FwdLayer *l);
void fwd_final_norm_f64(FwdState *s, const FwdNorm *n);
void fwd_final_norm_f32(FwdState *s, const FwdNorm *n);
void fwd_head_rows_f64(const FwdState *s, const void *rows, size_t n, double softcap,
		       void *out, size_t col, size_t V);
void fwd_head_rows_f32(const FwdState *s, const void *rows, size_t n, double softcap,
		       void *out, size_t col, size_t V);
RfStatus fwd_mla_trace_f64(FwdState *s, const FwdMla *m, void *y, FwdMlaTrace *keep);
RfStatus fwd_mla_trace_f32(FwdState *s, const FwdMla *m, void *y, FwdMlaTrace *keep);

#endif
