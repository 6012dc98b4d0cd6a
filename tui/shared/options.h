#ifndef ROPEFOLD_TUI_SHARED_OPTIONS_H
#define ROPEFOLD_TUI_SHARED_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/fold.h"
#include "core/layer.h"
#include "core/mla.h"
#include "core/report.h"
#include "core/rope.h"
#include "data/fold_job.h"
#include "data/workload.h"

/* Which flag groups a mode accepts. */
enum {
	OPT_MODEL = 1u << 0,   /* --model --seed and the RoPE flags */
	OPT_FOLD = 1u << 1,    /* --rotate --drop --kind --permute-heads */
	OPT_EVAL = 1u << 2,    /* --precision --tol */
	OPT_JSON = 1u << 3,    /* --json */
	OPT_BENCH = 1u << 4,   /* --repeat */
	OPT_FOLDIO = 1u << 5,  /* --out --layers --dtype --force --undo, and
				  --layer as the one-layer form of --layers */
	OPT_LAYER = 1u << 6,   /* --layer, the random shape, --seq, --input */
	OPT_TOUR = 1u << 7,    /* the few flags the tour keeps: --seq --seed */
	OPT_LOGITS = 1u << 8,  /* logits: --top --generate, and --out --precision */
	OPT_RUN_INPUT = 1u << 9,   /* the tokens of a whole-model run: --tokens --seq */
	OPT_VERIFY_LOGITS = 1u << 10,  /* verify --logits */
	OPT_PLOT = 1u << 12,   /* check: --plot PATH */
	OPT_AGAINST = 1u << 13, /* --against: compare mode (check, tui) */
	OPT_FRAME = 1u << 14,  /* --r1 --r3: QuaRot's R1 and R3 shown on the
				  layer (check, tui; core/frame.h) */
	OPT_EVAL_MODEL = OPT_MODEL | OPT_LAYER  /* what an evaluation takes */
};

typedef enum { INPUT_RANDOM = 0, INPUT_EMBED = 1 } InputKind;

/* Room for this many flags in the table (options.c asserts that they
 * fit): one bit each in a FlagSet. Raise it when the table grows. */
#define OPTS_MAX_FLAGS 128

/* A set of flags of the table, one bit per entry. */
typedef struct {
	uint64_t bits[OPTS_MAX_FLAGS / 64];
} FlagSet;

/* Everything the command line says: one flag table and one parse for
 * every mode (each mode accepts its groups of flags and turns what it
 * needs into the struct its job takes: data/workload.h, data/fold_job.h,
 * data/verify_job.h). */
typedef struct {
	const char *model_path;   /* NULL: a random layer */
	const char *against_path; /* --against B: compare the layer with B's
				   * stored one (NULL: with a fold of it) */
	size_t layer;
	LayerShape shape;         /* random layer shape */
	size_t seq;
	uint64_t seed;
	/* RoPE: a loaded layer reads these from its file unless set */
	bool layout_set, rotary_set, theta_set, scaling_set;
	RopeSpec rope;
	bool with_bias;
	/* A random multi-head latent attention layer (DeepSeek-V2/V3): any of
	 * --kv-lora-rank --q-lora-rank --qk-nope-dim --qk-rope-dim
	 * --v-head-dim makes the random layer MLA (D and H from shape) */
	MlaShape mla;
	bool mla_set;
	InputKind input;
	const char *tokens;       /* --tokens 1,5,9 */
	Precision precision;
	double tol;               /* 0 = default of the precision */
	FoldConfig fold;
	bool json;
	size_t repeat;            /* bench */
	const char *out;          /* fold */
	const char *layers;       /* fold/verify: all, N, N..M */
	const char *layers_flag;  /* the flag that gave it: --layers, or
				   * --layer (its one-layer form) */
	const char *dtype;        /* fold: keep, f32 */
	const char *undo;         /* fold: sidecar */
	const char *residual;     /* fold: --residual hadamard|haar|none, or NULL */
	const char *vo;           /* fold: --vo hadamard|haar|same, or NULL */
	bool force;
	size_t top;               /* logits: top K per position */
	size_t generate;          /* logits: greedy continuation of N tokens */
	bool logits;              /* verify: the model level too */
	const char *plot;         /* check: the figure to write */
	bool help;
	FlagSet given;            /* the flags given in any parse into this */
	const char *positional[4];
	size_t n_positional;
} RunOptions;

/* Defaults of SPEC 2.5. */
void opts_defaults(RunOptions *o);

/* Parse argv[0..argc-1] (the mode's arguments, without the mode name).
 * Only the flag groups in accept are known. On error returns -1 and
 * writes one line naming the flag into err. The rules, for every mode:
 * a flag that takes a value is given once (a repeat is refused), except
 * --drop, whose lists add up; the random-shape flags are refused with
 * --model; --tokens implies --input embed and sets T to their count;
 * --undo takes no fold flags. The cross-flag rules look only at the
 * flags of this argv, so a caller may parse one flag onto earlier state. */
int opts_parse(int argc, char **argv, unsigned accept, RunOptions *o,
	       char *err, size_t errlen);

/* Set one flag (e.g. "--seq") to value onto o, as opts_parse of those two
 * words: the same rules and messages (the explorer's `:seq 128`). */
int opts_set(RunOptions *o, unsigned accept, const char *flag, const char *value, char *err,
	     size_t errlen);

/* Whether flag (e.g. "--layer") was given in any parse into o. */
bool opts_given(const RunOptions *o, const char *flag);

/* For a mode whose layer is random without --model: refuse --layer
 * there (a random layer has one). -1 with one line in err. */
int opts_check_random(const RunOptions *o, char *err, size_t errlen);

/* The RoPE flags: the whole spec, and which of its fields were given. */
RopeOverride opts_rope_override(const RunOptions *o);

/* The fold the flags describe (paths, fold, seed, RoPE, layers, dtype,
 * undo, force), as `fold` writes it: an exact rewrite. No hooks. */
void opts_fold_job(const RunOptions *o, FoldJob *job);

/* The workload the evaluation flags describe (model_path as o has it:
 * the caller fills in the built-in default's path). */
void opts_workload_spec(const RunOptions *o, WorkloadSpec *spec);

/* Print the flag groups of accept, with their defaults, to a stream
 * given as FILE * (void * keeps stdio out of this header). */
void opts_print_help(void *stream, unsigned accept);

#endif
