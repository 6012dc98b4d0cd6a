#include "config.h"

#include "data/mla_split.h"

/* Row j of head h's k_nope block of kv_b starts at (h*(dn+dv) + j)*Lkv;
 * its v block's row j at (h*(dn+dv) + dn + j)*Lkv. */

void mla_split_k_b(const MlaShape *s, const double *kv_b, double *k_b)
{
	size_t H = s->n_heads, L = s->kv_lora_rank, dn = s->qk_nope_dim;
	size_t dkv = dn + s->v_head_dim;
	for (size_t h = 0; h < H; h++)
		for (size_t c = 0; c < L; c++)
			for (size_t j = 0; j < dn; j++)
				k_b[(h * L + c) * dn + j] = kv_b[(h * dkv + j) * L + c];
}

void mla_split_v_b(const MlaShape *s, const double *kv_b, double *v_b)
{
	size_t H = s->n_heads, L = s->kv_lora_rank, dn = s->qk_nope_dim, dv = s->v_head_dim;
	for (size_t h = 0; h < H; h++)
		for (size_t j = 0; j < dv; j++)
			for (size_t c = 0; c < L; c++)
				v_b[(h * dv + j) * L + c] = kv_b[(h * (dn + dv) + dn + j) * L + c];
}

void mla_merge_kv_b(const MlaShape *s, const double *k_b, const double *v_b, double *kv_b)
{
	size_t H = s->n_heads, L = s->kv_lora_rank, dn = s->qk_nope_dim, dv = s->v_head_dim;
	for (size_t h = 0; h < H; h++) {
		for (size_t j = 0; j < dn; j++)
			for (size_t c = 0; c < L; c++)
				kv_b[(h * (dn + dv) + j) * L + c] = k_b[(h * L + c) * dn + j];
		for (size_t j = 0; j < dv; j++)
			for (size_t c = 0; c < L; c++)
				kv_b[(h * (dn + dv) + dn + j) * L + c] = v_b[(h * dv + j) * L + c];
	}
}
