/* Prints, as one JSON object, the layer and input that `ropefold check`
 * evaluates for the same flags, and the draws of its --r1 and --r3
 * demonstrations (the norm weight w, R1, each kv group's Hadamard), for
 * tests/frame_check.py, which recomputes every number of check's "frame"
 * object from the definitions:
 *
 *     frame_dump [check's model flags]
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/frame.h"
#include "tui/shared/environment.h"
#include "tui/shared/options.h"

static void print_array(const char *key, const double *v, size_t n)
{
	printf(",\n\"%s\": ", key);
	if (!v) {
		printf("null");
		return;
	}
	printf("[");
	for (size_t i = 0; i < n; i++)
		printf("%s%.17g", i ? ", " : "", v[i]);
	printf("]");
}

int main(int argc, char **argv)
{
	RunOptions o;
	Workload w;
	char err[1024];
	opts_defaults(&o);
	if (opts_parse(argc - 1, argv + 1, OPT_EVAL_MODEL | OPT_FOLD | OPT_EVAL | OPT_FRAME, &o, err,
		       sizeof err) ||
	    env_workload(&o, false, &w, err, sizeof err)) {
		fprintf(stderr, "frame_dump: %s\n", err);
		return 2;
	}
	const Layer *l = &w.layer;
	size_t D = l->shape.d_model, H = l->shape.n_heads, G = l->shape.n_kv_heads;
	size_t d = l->shape.head_dim, T = w.seq;
	double *wt = malloc(D * sizeof(double)), *R = malloc(D * D * sizeof(double));
	double *Hk = malloc(G * d * d * sizeof(double));
	bool drawn;
	if (!wt || !R || !Hk || frame_r1_rotation(D, o.seed, R) != RF_OK ||
	    frame_r3_rotations(l, o.seed, Hk) != RF_OK) {
		fprintf(stderr, "frame_dump: cannot draw the rotations\n");
		return 2;
	}
	frame_r1_weight(l, o.seed, wt, &drawn);
	printf("{\"D\": %zu, \"H\": %zu, \"G\": %zu, \"d\": %zu, \"T\": %zu", D, H, G, d, T);
	printf(",\n\"layout\": \"%s\", \"rotary_dim\": %zu, \"theta\": %.17g, \"scaling\": %d",
	       l->rope.layout == ROPE_HALF ? "half" : "interleaved", l->rope.rotary_dim,
	       l->rope.theta, (int)l->rope.scaling.kind);
	printf(",\n\"score_scale\": %.17g, \"norm_eps\": %.17g, \"norm_layer\": %s",
	       layer_score_scale(l), l->norm_eps, l->attn_norm_kind == NORM_LAYER ? "true" : "false");
	printf(",\n\"qk_norm\": %s, \"sliding_window\": %zu, \"softcap\": %.17g",
	       l->q_norm || l->k_norm ? "true" : "false", l->sliding_window, l->attn_softcap);
	printf(",\n\"w_drawn\": %s", drawn ? "true" : "false");
	print_array("wq", l->wq, H * d * D);
	print_array("wk", l->wk, G * d * D);
	print_array("wv", l->wv, G * d * D);
	print_array("wo", l->wo, D * H * d);
	print_array("bq", l->bq, H * d);
	print_array("bk", l->bk, G * d);
	print_array("bv", l->bv, G * d);
	print_array("bo", l->bo, D);
	print_array("x", w.x, T * D);
	print_array("w", wt, D);
	print_array("R1", R, D * D);
	print_array("Hk", Hk, G * d * d);
	printf("}\n");
	free(wt);
	free(R);
	free(Hk);
	workload_done(&w);
	return 0;
}
