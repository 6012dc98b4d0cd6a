#ifndef ROPEFOLD_TUI_CLI_MLA_REPORT_H
#define ROPEFOLD_TUI_CLI_MLA_REPORT_H

#include <jansson.h>
#include <stdio.h>

#include "core/mla.h"

/* The dims of multi-head latent attention under their HF config names
 * (kv_lora_rank, q_lora_rank (null with q_proj), qk_nope_head_dim,
 * qk_rope_head_dim, v_head_dim) and the softmax scale, for check's and
 * info's "mla" objects (new reference). */
json_t *mla_dims_json(const MlaShape *s, double softmax_scale);
/* The same as one text line, starting with the given label ("mla     "). */
void mla_dims_text(FILE *f, const char *label, const MlaShape *s, double softmax_scale);

#endif
