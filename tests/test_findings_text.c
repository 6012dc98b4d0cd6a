#include "config.h"

#include "tests/testutil.h"

#include "core/finding.h"
#include "core/verify.h"
#include "tui/shared/findings_text.h"

/* The words of findings: a few findings in, the exact sentences out (the
 * README quotes some of them, scripts grep others). The other tests assert
 * on codes and numbers; this is the one place that holds the words. It
 * links without ncurses or readline, as tui/shared does. */

/* ---- check's explanation -------------------------------------------------- */

/* An InvReport holding only the given findings. */
static const char *explain(const Finding *f, size_t n)
{
	static char buf[FINDINGS_EXPLAIN_MAX];
	static Finding held[REPORT_MAX_FINDINGS];
	InvReport rep;
	memset(&rep, 0, sizeof rep);
	memcpy(held, f, n * sizeof *f);
	rep.findings = held;
	rep.n_findings = n;
	findings_explain(&rep, buf, sizeof buf);
	return buf;
}

static const char *sentence(const Finding *f)
{
	static char buf[FINDINGS_EXPLAIN_MAX];
	findings_sentence(f, buf, sizeof buf);
	return buf;
}

/* The README's example of `check --drop commutes`. */
static void test_readme_explanation(void **state)
{
	(void)state;
	Finding f[4];
	f[0] = finding_make(FIND_VERDICTS);  /* nothing holds, nothing overflows */
	f[1] = finding_make(FIND_SCORES_WORST);
	f[1].head = 2;
	f[1].m = 29;
	f[1].n = 13;
	f[1].offset = 16;
	f[2] = finding_make(FIND_DIAGONAL_SURVIVES);
	f[3] = finding_make(FIND_PAIRS_MIXED);
	f[3].head = 0;
	f[3].pair_i = 0;
	f[3].pair_j = 6;
	assert_string_equal(explain(f, 4),
			    "Score breaks, head breaks, residual breaks. Scores break worst at "
			    "head 2, (m, n) = (29, 13), offset 16. The diagonal m = n survives "
			    "(Theta_0 = I); off it the error depends on the offset m - n. R_q of "
			    "head 0 does not commute with RoPE: it mixes pair 0 and pair 6, "
			    "which turn at different frequencies.");
	assert_string_equal(explain(f, 0), "");
}

static void test_verdicts_and_holds(void **state)
{
	(void)state;
	Finding f = finding_make(FIND_VERDICTS);
	f.levels = 1u << LEVEL_SCORE;
	f.overflows = 1u << LEVEL_RESIDUAL;
	assert_string_equal(sentence(&f), "Score holds, head breaks, residual overflows.");
	f = finding_make(FIND_EXACT_REWRITE);
	f.err = 2.2e-16;
	f.eps = 1;
	f.flag = true;
	assert_string_equal(sentence(&f), "All three levels hold: the fold is an exact rewrite "
					  "(max relative error 2.2e-16, 1.0 eps).");
	/* not promised (a dropped assumption at T = 1): no "exact rewrite" */
	f.flag = false;
	assert_null(strstr(sentence(&f), "exact rewrite"));
	f = finding_make(FIND_HOLDS_WITHIN_TOL);
	f.tol = 100;
	f.err = 1.3;
	f.eps = 5.9e15;
	assert_string_equal(sentence(&f), "All three levels hold within the tolerance 1e+02, but "
					  "not to roundoff (max relative error 1.3, 5.9e+15 eps): "
					  "equal only up to that tolerance.");
	f = finding_make(FIND_HOLDS_UNGUARANTEED);
	f.level = LEVEL_HEAD;
	f.seq = 1;
	assert_string_equal(sentence(&f), "The head level holds although the theorem does not "
					  "guarantee it (T = 1: only offset 0 is compared).");
	f.seq = 24;
	assert_string_equal(sentence(&f), "The head level holds although the theorem does not "
					  "guarantee it.");
	f = finding_make(FIND_GUARANTEE_BROKEN);
	f.levels = 1u << LEVEL_SCORE | 1u << LEVEL_HEAD;
	f.err = 0.5;
	f.tol = 1e-9;
	assert_string_equal(sentence(&f), "BUG: the theorem guarantees the score, head levels, but "
					  "they break (relative error up to 0.5 > tolerance 1e-09): "
					  "the inputs or the tool are wrong.");
	f.levels = 1u << LEVEL_RESIDUAL;
	assert_string_equal(sentence(&f), "BUG: the theorem guarantees the residual level, but it "
					  "breaks (relative error up to 0.5 > tolerance 1e-09): the "
					  "inputs or the tool are wrong.");
}

static void test_overflow_sentences(void **state)
{
	(void)state;
	Finding f[3];
	f[0] = finding_make(FIND_OVERFLOW);
	f[0].level = LEVEL_SCORE;
	f[0].head = 1;
	f[0].m = 4;
	f[0].n = 2;
	f[0].side = OVERFLOW_ORIGINAL | OVERFLOW_FOLDED;
	f[0].precision = PREC_F32;
	f[1] = finding_make(FIND_OVERFLOW_ALSO);
	f[1].overflows = 1u << LEVEL_HEAD | 1u << LEVEL_RESIDUAL;
	f[2] = finding_make(FIND_OVERFLOW_UNCONFIRMED);
	f[2].precision = PREC_F32;
	f[2].flag = true;
	assert_string_equal(explain(f, 3),
			    "The scores overflow float32 at head 1, (m, n) = (4, 2) (on both "
			    "sides): use --precision f64. So do the head outputs and the "
			    "residual. Float32 cannot hold these values, so what the theorem "
			    "guarantees cannot be confirmed here.");
	f[0].level = LEVEL_HEAD;
	f[0].coord = 37;
	f[0].side = OVERFLOW_FOLDED;
	f[0].precision = PREC_F64;
	f[1].overflows = 1u << LEVEL_RESIDUAL;
	f[2].precision = PREC_F64;
	f[2].flag = false;
	assert_string_equal(explain(f, 3),
			    "The head outputs overflow float64 at head 1, token 4, coordinate 37 "
			    "(on the folded side): the layer's values are too large for "
			    "float64. So does the residual. This comparison shows nothing.");
}

static void test_cause_sentences(void **state)
{
	(void)state;
	Finding f = finding_make(FIND_PAIR_NOT_ROTATION);
	f.head = 3;
	f.pair_i = FINDING_NON_ROTARY;
	assert_string_equal(sentence(&f), "R_q of head 3 does not commute with RoPE: inside the "
					  "non-rotary block it is not a rotation (a reflection or a "
					  "scale), so Theta_p turns into Theta_-p there.");
	f = finding_make(FIND_FOLD_LAYOUT);
	f.layout[0] = ROPE_HALF;
	f.layout[1] = ROPE_INTERLEAVED;
	assert_string_equal(sentence(&f), "The fold was built for the half layout, but this "
					  "layer's RoPE pairs are interleaved (what its runtime "
					  "applies): in these pairs the rotation mixes frequencies.");
	f = finding_make(FIND_ONE_SIDE_ROTATED);
	f.part = 'K';
	assert_string_equal(sentence(&f), "Only K is rotated, so q.k sees R instead of R^T R = I.");
	f = finding_make(FIND_HEADS_PERMUTED);
	f.flag = true;
	assert_string_equal(sentence(&f), "The fold permuted the kv groups (with their query "
					  "heads): head-by-head comparisons differ, but the residual "
					  "block sums over heads and does not.");
	f = finding_make(FIND_SLOW_MIXING);
	f.seq = 32;
	f.offset = 31416;
	assert_string_equal(sentence(&f), "R mixes frequencies, but too slowly to show at T = 32: "
					  "hypothesis fails; the break would appear near offset "
					  "31416.");
	/* at T = 1 the reason is the single offset, not slowness */
	f.seq = 1;
	assert_null(strstr(sentence(&f), "too slowly"));
	assert_non_null(strstr(sentence(&f), "only offset is 0"));
	f = finding_make(FIND_MASKED_SCORES);
	f.value[0] = 8;
	f.value[1] = 50;
	f.seq = 24;
	assert_string_equal(sentence(&f), "The layer's sliding window of 8 tokens and the score "
					  "soft-cap 50 act on the scores, which the fold leaves "
					  "equal: masked or capped equal scores stay equal, so the "
					  "theorem still holds.");
	f.value[0] = 0;
	assert_string_equal(sentence(&f), "The layer's score soft-cap 50 acts on the scores, which "
					  "the fold leaves equal: masked or capped equal scores stay "
					  "equal, so the theorem still holds.");
	f.value[0] = 32;
	f.value[1] = 0;
	assert_string_equal(sentence(&f), "The layer's sliding window of 32 tokens (not shorter "
					  "than T here) acts on the scores, which the fold leaves "
					  "equal: masked or capped equal scores stay equal, so the "
					  "theorem still holds.");
}

/* Every code has words of its own (none falls back to its machine name). */
static void test_every_code_has_words(void **state)
{
	(void)state;
	VerifyVerdict v;
	memset(&v, 0, sizeof v);
	v.why = VERIFY_WHY_UNEXPLAINED;
	v.shape_a = v.shape_b = (LayerShape){48, 8, 4, 16};
	char buf[FINDINGS_WHY_MAX];
	for (int c = FIND_NONE + 1; c < FIND_CODE_COUNT; c++) {
		Finding f = finding_make((FindingCode)c);
		findings_sentence(&f, buf, sizeof buf);
		if (!strcmp(buf, finding_code_name(f.code))) {
			/* not check's: verify's words */
			v.brk = f;
			findings_verify_why(&v, buf, sizeof buf);
		}
		if (!buf[0] || !strcmp(buf, finding_code_name(f.code)))
			fail_msg("%s has no words", finding_code_name(f.code));
	}
}

/* ---- verify's relation and break ------------------------------------------ */

static VerifyVerdict verdict(void)
{
	VerifyVerdict v;
	memset(&v, 0, sizeof v);
	v.shape_a = v.shape_b = (LayerShape){48, 8, 4, 16};
	v.rope_a = v.rope_b = rope_spec_default(16);
	v.unit_roundoff = 0x1p-53;
	v.brk = finding_make(FIND_NONE);
	return v;
}

static const char *relation(const VerifyVerdict *v)
{
	static char buf[FINDINGS_RELATION_MAX];
	findings_verify_relation(v, buf, sizeof buf);
	return buf;
}

static const char *why(const VerifyVerdict *v)
{
	static char buf[FINDINGS_WHY_MAX];
	findings_verify_why(v, buf, sizeof buf);
	return buf;
}

/* The relations the README names. */
static void test_relations(void **state)
{
	(void)state;
	VerifyVerdict v = verdict();
	size_t perm[4] = {1, 2, 3, 0};
	assert_string_equal(relation(&v), "not equivalent");
	v.equivalent = true;
	v.relation = VERIFY_REL_IDENTICAL;
	assert_string_equal(relation(&v), "identical");
	v.relation = VERIFY_REL_ROUNDING;
	v.rounded = true;
	v.unit_roundoff = 0x1p-8;
	assert_string_equal(relation(&v), "equal up to bf16 rounding");
	v = verdict();
	v.equivalent = v.rotated = true;
	v.relation = VERIFY_REL_COMMUTING_FOLD;
	assert_string_equal(relation(&v), "commuting fold");
	v.relation = VERIFY_REL_HEADS_PERMUTED;
	v.heads_permuted = true;
	v.plan.n_kv_heads = 4;
	v.plan.perm = perm;
	assert_string_equal(relation(&v), "commuting fold with heads permuted as [1 2 3 0]");
	v.rotated = false;
	v.rounded = true;
	v.unit_roundoff = 0x1p-11;
	assert_string_equal(relation(&v), "heads permuted as [1 2 3 0], up to f16 rounding");
	v = verdict();
	v.equivalent = v.layout_converted = true;
	v.relation = VERIFY_REL_LAYOUT;
	v.rope_a.layout = ROPE_HALF;
	v.rope_b.layout = ROPE_INTERLEAVED;
	assert_string_equal(relation(&v), "same model up to the layout conversion (half -> "
					  "interleaved)");
	v.rotated = v.vo_not_orthogonal = true;
	assert_string_equal(relation(&v), "same model up to the layout conversion (half -> "
					  "interleaved), combined with a commuting fold (V/O by an "
					  "invertible, non-orthogonal map)");
}

/* The tolerance as verify's layers and compare mode print it. */
static void test_tolerance_words(void **state)
{
	(void)state;
	VerifyVerdict v = verdict();
	char buf[FINDINGS_TOLERANCE_MAX];
	v.tol = 3 * 0x1p-8 + 1e-12;
	for (int p = 0; p < VERIFY_PARTS; p++)
		v.part_tol[p] = v.tol;
	findings_verify_tolerance(&v, buf, sizeof buf);
	assert_string_equal(buf, "tolerance 0.0117");
	v.tol = 1.79e-7;
	v.part_tol[VERIFY_Q] = v.tol + 0.144;
	v.part_tol[VERIFY_K] = v.tol + 0.0719;
	v.part_tol[VERIFY_V] = v.tol + 0.0724;
	v.part_tol[VERIFY_O] = v.tol + 0.142;
	findings_verify_tolerance(&v, buf, sizeof buf);
	assert_string_equal(buf, "tolerance 1.79e-07 plus the quantization bound: W_q 0.144, "
				 "W_k 0.0719, W_v 0.0724, W_o 0.142");
}

static void test_breaks(void **state)
{
	(void)state;
	VerifyVerdict v = verdict();
	assert_string_equal(why(&v), "");
	double freqs[8] = {1, 0.1, 0.01, 0.001, 1e-4, 1e-5, 1e-6, 1e-7};
	v.npairs = 8;
	v.freqs = freqs;
	v.why = VERIFY_WHY_MIXES_PAIRS;
	v.brk = finding_make(FIND_K_MIXES_PAIRS);
	v.brk.group = 1;
	v.brk.flag = true;
	v.comm.n_mixed = 2;
	v.comm.mixed[0][0] = 0;
	v.comm.mixed[0][1] = 1;
	v.comm.mixed[1][0] = 2;
	v.comm.mixed[1][1] = 8;  /* npairs: the non-rotary block */
	v.comm.n_mixed_total = 4;
	assert_string_equal(why(&v),
			    "kv group 1 (query heads 2-3): the Q/K rotation recovered from W_k "
			    "does not commute with RoPE in the half layout: it mixes frequency "
			    "pairs (pair 0 (w = 1) with pair 1 (w = 0.1); pair 2 (w = 0.01) with "
			    "the non-rotary block; and 2 more), so scores change with the offset "
			    "m - n; it would commute in the interleaved layout: a rotation "
			    "written for the other layout");
	v.why = VERIFY_WHY_REFLECTION;
	v.brk.code = FIND_K_REFLECTS;
	v.brk.group = 0;
	v.comm.n_mixed = 0;
	v.comm.n_reflect = 1;
	v.comm.reflect[0] = 0;
	v.comm.n_reflect_total = 4;
	assert_string_equal(why(&v),
			    "kv group 0 (query heads 0-1): the Q/K rotation recovered from W_k "
			    "is a reflection inside pair 0 (w = 1) (4 pairs in all): it "
			    "conjugates Theta_p to Theta_-p, so scores change");
	v.why = VERIFY_WHY_CONV_K_HEADS;
	v.brk.code = FIND_CONV_K_QUERY_HEADS;
	v.rope_b.layout = ROPE_INTERLEAVED;
	assert_string_equal(why(&v),
			    "a layout conversion (half -> interleaved) that permuted K with the "
			    "query head count (8) instead of the kv head count (4): K's rows "
			    "moved in blocks of 8, not 16");
	v.why = VERIFY_WHY_O_NOT_ABSORBING;
	v.brk = finding_make(FIND_O_OTHER_ROTATION);
	v.brk.head = 5;
	v.brk.norm = 1.5;
	v.brk.flag = true;
	assert_string_equal(why(&v),
			    "query head 5: O does not absorb V's rotation: its column block of "
			    "W_o absorbs a different rotation (||R_o - R_v|| = 1.5) (V's map is "
			    "not orthogonal)");
	v.why = VERIFY_WHY_UNEXPLAINED;
	v.brk = finding_make(FIND_ONE_SIDED);
	snprintf(v.brk.tensor, sizeof v.brk.tensor, "attn_norm");
	assert_string_equal(why(&v), "attn_norm is present in only one of the two layers");
	v.brk = finding_make(FIND_Q_UNEXPLAINED);
	v.brk.head = 5;
	v.brk.err = 2.5e-4;
	v.brk.tol = 3.3e-16;
	assert_string_equal(why(&v),
			    "query head 5: W_q differs from A's in a way no rotation explains "
			    "(relative residual 0.00025, tolerance 3.3e-16)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_readme_explanation),
		cmocka_unit_test(test_verdicts_and_holds),
		cmocka_unit_test(test_overflow_sentences),
		cmocka_unit_test(test_cause_sentences),
		cmocka_unit_test(test_every_code_has_words),
		cmocka_unit_test(test_relations),
		cmocka_unit_test(test_tolerance_words),
		cmocka_unit_test(test_breaks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
