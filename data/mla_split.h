#ifndef ROPEFOLD_DATA_MLA_SPLIT_H
#define ROPEFOLD_DATA_MLA_SPLIT_H

#include <stddef.h>

#include "core/mla.h"

/* llama.cpp's split form of kv_b_proj (convert_hf_to_gguf.py's
 * DeepseekV2Model since 2025, for the absorbed MLA graph): kv_b_proj
 * (H*(dn+dv) x Lkv, per head rows [k_nope; v]) viewed as H x (dn+dv) x Lkv
 * and cut per head into
 *
 *   attn_k_b  H x Lkv x dn   the head's k_nope rows, transposed
 *                            (GGUF ne {dn, Lkv, H})
 *   attn_v_b  H x dv x Lkv   the head's v rows as they are
 *                            (GGUF ne {Lkv, dv, H})
 *
 * so that k_b[h] is W_uk,h^T, which the graph multiplies q_nope,h by to
 * meet the latent itself. Both buffers row-major in that shape. */

/* k_b (H x Lkv x dn) from kv_b (H*(dn+dv) x Lkv). */
void mla_split_k_b(const MlaShape *s, const double *kv_b, double *k_b);
/* v_b (H x dv x Lkv) from kv_b. */
void mla_split_v_b(const MlaShape *s, const double *kv_b, double *v_b);
/* kv_b from k_b and v_b (the inverse of the two above). */
void mla_merge_kv_b(const MlaShape *s, const double *k_b, const double *v_b, double *kv_b);

#endif
