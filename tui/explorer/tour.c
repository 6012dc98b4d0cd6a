#include "config.h"

#include "tui/explorer/tour.h"

/* Each stop starts from a known fold ("reset"), so stepping back works
 * by replaying one stop. Shapes are explicit for the same reason. */
#define CMDS(...) (const char *const[]){__VA_ARGS__, NULL}

static const TourStep steps[] = {
	{"Everything held",
	 "Q, K, V and O are rotated by commuting orthogonal rotations, every "
	 "assumption held. The theorem guarantees all three levels, and all "
	 "three hold to roundoff: a few machine epsilons.",
	 CMDS("load default", "precision f64", "tol default", "reset", "view heatmap")},
	{"Rotate Q, K and V, but not O",
	 "Scores only see q and k, so the score level holds. The head's context "
	 "is now R c, and W_o no longer absorbs R^T: the head and residual "
	 "levels break.",
	 CMDS("load default", "reset", "rotate qkv", "view heads")},
	{"Drop 'commutes': the diagonal survives",
	 "R_q = R_k is now a Haar-random orthogonal matrix that does not commute "
	 "with RoPE. On the diagonal m = n the rotations cancel (Theta_0 = I), "
	 "so the heatmap stays dark there; off it the score error appears.",
	 CMDS("load default", "reset", "drop commutes", "view heatmap")},
	{"... and the error lives off the diagonal",
	 "The same fold, seen by relative offset m - n: zero offset is exact; "
	 "within the first offsets the error rises as R Theta_(n-m) and "
	 "Theta_(n-m) R drift apart, then stays at the scale of the scores.",
	 CMDS("load default", "reset", "drop commutes", "view offset")},
	{"V and O need no RoPE hypothesis",
	 "Rotate only V and O, with the same non-commuting rotation. Still "
	 "exact: W_o absorbs R^T whatever R is. Only Q and K need to commute "
	 "with RoPE.",
	 CMDS("load default", "reset", "rotate vo", "drop commutes", "view heads")},
	{"GQA: heads of a group share one rotation",
	 "Eight query heads read two kv heads. With gqa-consistent held, the "
	 "four query heads of a group share R_g with their key: all levels hold.",
	 CMDS("heads 8", "kv-heads 2", "reset", "view heads")},
	{"GQA: one rotation per query head",
	 "Drop gqa-consistent: each query head gets its own R_h, while K can "
	 "carry only one (the first head's). Every other head of the group "
	 "now breaks at the score level.",
	 CMDS("heads 8", "kv-heads 2", "reset", "drop gqa-consistent", "view heads")},
	{"permute-heads: the head level breaks, the residual holds",
	 "The folded layer also swaps kv groups with their query heads. Head h "
	 "now computes another head's scores and output, so the score and head "
	 "levels break, yet W_o's column blocks move along: the residual holds.",
	 CMDS("load default", "reset", "permute-heads on", "view heads")},
	{"float32: the roundoff floor",
	 "In float32 every level still holds, but at the float32 floor of "
	 "about 1e-7 instead of 1e-16. 'Exact' always means equal up to the "
	 "roundoff of the compute precision.",
	 CMDS("load default", "reset", "precision f32", "view offset")},
	{"End of the tour",
	 "Everything stays as it is: go on exploring with the toggles on the "
	 "left, ':' commands, or '?' for help. Space leaves the tour.",
	 CMDS("precision f64", "reset", "view heatmap")},
};

size_t tour_count(void)
{
	return sizeof steps / sizeof steps[0];
}

const TourStep *tour_step(size_t i)
{
	return i < tour_count() ? &steps[i] : NULL;
}
