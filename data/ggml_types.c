#include "config.h"

#include "data/ggml_types.h"

/* ggml's enum ggml_type. A type ropefold converts names only its
 * StoreDtype (name and geometry come from core/dtype.c); the others carry
 * theirs. */
static const struct {
	unsigned id;
	StoreDtype dtype;
	const char *name;
	size_t block, block_bytes;
} ggml_types[] = {
	{0, STORE_F32, NULL, 0, 0},
	{1, STORE_F16, NULL, 0, 0},
	{2, STORE_Q4_0, NULL, 0, 0},
	{3, STORE_UNSUPPORTED, "Q4_1", 32, 20},
	{6, STORE_UNSUPPORTED, "Q5_0", 32, 22},
	{7, STORE_UNSUPPORTED, "Q5_1", 32, 24},
	{8, STORE_Q8_0, NULL, 0, 0},
	{9, STORE_UNSUPPORTED, "Q8_1", 32, 36},
	{10, STORE_UNSUPPORTED, "Q2_K", 256, 84},
	{11, STORE_UNSUPPORTED, "Q3_K", 256, 110},
	{12, STORE_UNSUPPORTED, "Q4_K", 256, 144},
	{13, STORE_UNSUPPORTED, "Q5_K", 256, 176},
	{14, STORE_UNSUPPORTED, "Q6_K", 256, 210},
	{15, STORE_UNSUPPORTED, "Q8_K", 256, 292},
	{24, STORE_UNSUPPORTED, "I8", 1, 1},
	{25, STORE_UNSUPPORTED, "I16", 1, 2},
	{26, STORE_UNSUPPORTED, "I32", 1, 4},
	{27, STORE_UNSUPPORTED, "I64", 1, 8},
	{28, STORE_F64, NULL, 0, 0},
	{30, STORE_BF16, NULL, 0, 0},
};

#define NTYPES (sizeof ggml_types / sizeof ggml_types[0])

bool ggml_type_of(unsigned id, GgmlType *out)
{
	for (size_t i = 0; i < NTYPES; i++) {
		if (ggml_types[i].id != id)
			continue;
		StoreDtype t = ggml_types[i].dtype;
		if (t == STORE_UNSUPPORTED)
			*out = (GgmlType){ggml_types[i].name, t, ggml_types[i].block,
					  ggml_types[i].block_bytes};
		else
			*out = (GgmlType){dtype_name(t), t, dtype_block(t), dtype_block_bytes(t)};
		return true;
	}
	return false;
}

bool ggml_type_id(StoreDtype t, unsigned *id)
{
	for (size_t i = 0; i < NTYPES && t != STORE_UNSUPPORTED; i++) {
		if (ggml_types[i].dtype == t) {
			*id = ggml_types[i].id;
			return true;
		}
	}
	return false;
}
