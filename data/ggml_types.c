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
	{3, STORE_Q4_1, NULL, 0, 0},
	{6, STORE_Q5_0, NULL, 0, 0},
	{7, STORE_Q5_1, NULL, 0, 0},
	{8, STORE_Q8_0, NULL, 0, 0},
	{9, STORE_UNSUPPORTED, "Q8_1", 32, 36},
	{10, STORE_Q2_K, NULL, 0, 0},
	{11, STORE_Q3_K, NULL, 0, 0},
	{12, STORE_Q4_K, NULL, 0, 0},
	{13, STORE_Q5_K, NULL, 0, 0},
	{14, STORE_Q6_K, NULL, 0, 0},
	{15, STORE_Q8_K, NULL, 0, 0},
	{16, STORE_UNSUPPORTED, "IQ2_XXS", 256, 66},
	{17, STORE_UNSUPPORTED, "IQ2_XS", 256, 74},
	{18, STORE_UNSUPPORTED, "IQ3_XXS", 256, 98},
	{19, STORE_UNSUPPORTED, "IQ1_S", 256, 50},
	{20, STORE_IQ4_NL, NULL, 0, 0},
	{21, STORE_UNSUPPORTED, "IQ3_S", 256, 110},
	{22, STORE_UNSUPPORTED, "IQ2_S", 256, 82},
	{23, STORE_IQ4_XS, NULL, 0, 0},
	{24, STORE_UNSUPPORTED, "I8", 1, 1},
	{25, STORE_UNSUPPORTED, "I16", 1, 2},
	{26, STORE_UNSUPPORTED, "I32", 1, 4},
	{27, STORE_UNSUPPORTED, "I64", 1, 8},
	{28, STORE_F64, NULL, 0, 0},
	{29, STORE_UNSUPPORTED, "IQ1_M", 256, 56},
	{30, STORE_BF16, NULL, 0, 0},
	{34, STORE_UNSUPPORTED, "TQ1_0", 256, 54},
	{35, STORE_UNSUPPORTED, "TQ2_0", 256, 66},
	{39, STORE_UNSUPPORTED, "MXFP4", 32, 17},
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
