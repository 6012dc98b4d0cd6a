#!/bin/sh
# Compare mode reaches verify's verdict: for each pair (A, B), `ropefold
# verify A B --json` and `ropefold check --model A --against B --json
# --layer N` for every layer N must agree layer by layer and kv group by
# kv group (relation, holds / within dtype rounding / within quantization /
# breaks, the tolerance per part, the break's reason, level, group, head and
# tensor, each group's permutation and whether its rotation commutes) and on
# the first break layer (tests/compare_verify.py agree). The pairs: the
# built-in default model and seeded fixtures, folded (a commuting fold, heads
# permuted, a residual rotation R1), dtype-converted (f32 -> bf16, f16),
# GGUF-quantized (q8_0, q4_k, and the Q4_K_M fixture against the F16 model
# it quantizes), crafted breaks
# (a non-commuting rotation at one layer, two query heads swapped, a scaled
# W_k), and every shared real checkpoint (../shared/models) against itself,
# its conversion and its folds. An independent NumPy judge (SPEC 1 and 4.4:
# Procrustes per kv group, the commutant, the dtype's roundoff, ggml's
# quantization bounds from tests/reference_quant_bound.py) decides a dozen
# of the cases itself and must agree with verify. Prints TAP;
# the NumPy parts are skipped without numpy; without the shared models
# their pairs are left out of the plan, and the log says so.
: "${ROPEFOLD:=./ropefold}"
: "${SRCDIR:=.}"
PY=/usr/bin/python3
. "$SRCDIR/tests/tap.sh"
C="$SRCDIR/tests/compare_verify.py"
dm="$SRCDIR/data/default-model"
M=${ROPEFOLD_SHARED_MODELS:-$SRCDIR/../shared/models}
numpy=0
"$PY" -c 'import numpy' 2>/dev/null && numpy=1

# layers PATH: its layer count (info --json).
layers() {
	"$ROPEFOLD" info --json "$1" 2>/dev/null |
		"$PY" -c 'import json, sys; print(json.load(sys.stdin)["layers"])' 2>/dev/null
}

# pair WHAT A B [VERIFY ARGS...]: verify A B --json and check --against per
# layer agree.
pair() {
	what=$1 a=$2 b=$3; shift 3
	"$ROPEFOLD" verify --json "$a" "$b" "$@" >"$tmp/v.json" 2>"$tmp/v.err"
	vrc=$?
	if [ "$vrc" -gt 1 ]; then
		notok "$what: verify exit $vrc"; sed 's/^/# /' "$tmp/v.err" | head -3
		return
	fi
	nl=$(layers "$a"); nb=$(layers "$b")
	[ -n "$nl" ] && [ -n "$nb" ] && [ "$nb" -lt "$nl" ] && nl=$nb
	files="" crc=0 l=0
	while [ "$l" -lt "${nl:-0}" ]; do
		"$ROPEFOLD" check --json --model "$a" --against "$b" --layer "$l" \
			>"$tmp/c$l.json" 2>"$tmp/c.err"
		rc=$?
		if [ "$rc" -gt 1 ]; then
			notok "$what: check --against --layer $l exit $rc"
			sed 's/^/# /' "$tmp/c.err" | head -3
			return
		fi
		[ "$rc" -eq 1 ] && crc=1
		files="$files $tmp/c$l.json"
		l=$((l + 1))
	done
	# shellcheck disable=SC2086
	if "$PY" "$C" agree "$tmp/v.json" $files >"$tmp/agree" 2>&1; then
		ok "$what: compare mode agrees with verify in ${nl:-0} layers ($(summary))"
	else
		notok "$what: compare mode and verify differ"; sed 's/^/# /' "$tmp/agree" | head -8
	fi
	# both exit 1 exactly when a layer breaks (compare mode: or a level)
	if [ "$vrc" -eq 1 ] && [ "$crc" -ne 1 ]; then
		notok "$what: verify exits 1, no layer's check --against does"
	fi
}

# summary: verify's classes in $tmp/v.json, layer by layer.
summary() {
	"$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(", ".join(l["within"] for l in d["layers"]))' "$tmp/v.json"
}

# want WHAT EXPR...: the Python expression over verify's document d holds.
want() {
	what=$1; shift
	if "$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' \
		"$tmp/v.json" "$1"; then
		ok "... $what"
	else
		notok "... $what"; summary | sed 's/^/# /'
	fi
}

# judge WHAT A B [HEAD_DIM]: the NumPy judge decides as verify does (GGUF
# files: give their head dim).
judge() {
	if [ "$numpy" -eq 0 ]; then
		skip "NumPy judge: $1" "python3-numpy is not installed"
		return
	fi
	"$ROPEFOLD" verify --json "$2" "$3" >"$tmp/v.json" 2>/dev/null
	if "$PY" "$C" judge "$2" "$3" $4 >"$tmp/j.json" 2>"$tmp/j.err" &&
		"$PY" "$C" judged "$tmp/j.json" "$tmp/v.json" >"$tmp/judged" 2>&1; then
		ok "NumPy judge: $1 ($(summary))"
	else
		notok "NumPy judge: $1"; sed 's/^/# /' "$tmp/j.err" "$tmp/judged" | head -8
	fi
}

mkfold() {
	out=$1; shift
	"$ROPEFOLD" fold --out "$out" "$@" >/dev/null 2>"$tmp/f.err" ||
		{ echo "# fold $* failed:"; sed 's/^/# /' "$tmp/f.err" | head -3; }
}

# ---- the built-in default model and what fold makes of it --------------------
mkfold "$tmp/good" --model "$dm"
mkfold "$tmp/perm" --model "$dm" --permute-heads
mkfold "$tmp/bf16" --model "$dm" --rotate none --dtype bf16
mkfold "$tmp/f16" --model "$dm" --rotate none --dtype f16
mkfold "$tmp/foldbf16" --model "$dm" --dtype bf16
mkfold "$tmp/nc1" --model "$dm" --drop commutes --layers 1

pair "B = A" "$dm" "$dm"
want "identical in every layer: holds" 'all(l["within"] == "holds" and l["relation"] == "identical" for l in d["layers"])'
pair "a commuting fold" "$dm" "$tmp/good"
want "within f32 rounding" 'all(l["within"] == "within dtype rounding" and l["relation"] == "commuting fold" for l in d["layers"])'
pair "a fold with heads permuted" "$dm" "$tmp/perm"
want "kv groups permuted" 'all(l["heads_permuted"] and l["heads_permutation"] == [1, 0] for l in d["layers"])'
pair "f32 -> bf16" "$dm" "$tmp/bf16"
want "within bf16 rounding" 'all(l["within"] == "within dtype rounding" and abs(l["tol"] - 3 * 2**-8 - 1e-12) < 1e-15 for l in d["layers"])'
pair "f32 -> f16" "$dm" "$tmp/f16"
want "at f16's tolerance" 'all(abs(l["tol"] - 3 * 2**-11 - 1e-12) < 1e-15 for l in d["layers"])'
pair "a fold stored in bf16" "$dm" "$tmp/foldbf16"
pair "a non-commuting rotation at layer 1" "$dm" "$tmp/nc1"
want "first break at layer 1, pairs mixed" 'd["first_break"]["layer"] == 1 and d["first_break"]["why"] == "mixes-pairs" and d["layers"][0]["within"] == "holds"'
pair "the other way round" "$tmp/nc1" "$dm"
# a residual rotation R1 (norms fused): verify brings each layer into one frame, so does
# compare mode
mkfold "$tmp/r1" --model "$dm" --residual hadamard
mkfold "$tmp/r1nc" --model "$dm" --residual haar --drop commutes
pair "a residual rotation R1 (Hadamard)" "$dm" "$tmp/r1"
want "in verify's residual frame, a commuting fold" 'd["residual"]["rotated"] and all(l["relation"] == "commuting fold" for l in d["layers"])'
pair "R1 with a non-commuting Q/K rotation" "$dm" "$tmp/r1nc"
want "breaks in every layer, pairs mixed" 'd["residual"]["rotated"] and all(l["break"]["why"] == "mixes-pairs" for l in d["layers"])'

# crafted breaks (NumPy edits a copy)
if [ "$numpy" -eq 1 ]; then
	"$PY" "$C" swap-heads "$dm" "$tmp/swap" model.layers.0.self_attn.q_proj.weight 16 0 1
	"$PY" "$C" scale "$dm" "$tmp/scaled" model.layers.1.self_attn.k_proj.weight 1.01
	pair "query heads 0 and 1 swapped in layer 0's W_q" "$dm" "$tmp/swap"
	want "breaks at layer 0, kv group 0, W_q" 'd["first_break"]["layer"] == 0 and d["first_break"]["group"] == 0 and d["first_break"]["tensor"] == "W_q"'
	pair "layer 1's W_k scaled by 1.01" "$dm" "$tmp/scaled"
	want "breaks at layer 1, W_k" 'd["first_break"]["layer"] == 1 and d["first_break"]["tensor"] == "W_k"'
	judge "B = A" "$dm" "$dm"
	judge "a commuting fold" "$dm" "$tmp/good"
	judge "heads permuted" "$dm" "$tmp/perm"
	judge "f32 -> bf16" "$dm" "$tmp/bf16"
	judge "f32 -> f16" "$dm" "$tmp/f16"
	judge "a non-commuting rotation at layer 1" "$dm" "$tmp/nc1"
	judge "query heads swapped" "$dm" "$tmp/swap"
	judge "W_k scaled" "$dm" "$tmp/scaled"
else
	skip "crafted breaks and the NumPy judge" "python3-numpy is not installed"
fi

# ---- GGUF quantization: the seeded Q4_K_M fixture and the F16 model it quantizes
if [ "$numpy" -eq 1 ] &&
	"$PY" "$SRCDIR/tests/gguf_quant_fixtures.py" --kind q4_k_m --out "$tmp/q4km.gguf" --seed 7 &&
	"$PY" "$SRCDIR/tests/reference_quant_bound.py" near "$tmp/q4km.gguf" "$tmp/f16.gguf" 3; then
	mkfold "$tmp/q8.gguf" --model "$tmp/f16.gguf" --rotate none --dtype q8_0
	mkfold "$tmp/q4.gguf" --model "$tmp/f16.gguf" --rotate none --dtype q4_k
	mkfold "$tmp/fq8.gguf" --model "$tmp/f16.gguf" --dtype q8_0
	mkfold "$tmp/fq4.gguf" --model "$tmp/f16.gguf" --dtype q4_k
	mkfold "$tmp/bq4.gguf" --model "$tmp/f16.gguf" --dtype q4_k --drop commutes --layers 2
	mkfold "$tmp/f16q.gguf" --model "$tmp/q4km.gguf"
	pair "F16 -> Q4_K_M" "$tmp/f16.gguf" "$tmp/q4km.gguf"
	want "within quantization, Q4_K and Q6_K named" 'all(l["within"] == "within quantization" for l in d["layers"]) and d["layers"][2]["quantization"] == ["Q4_K", "Q6_K"]'
	pair "F16 -> Q8_0" "$tmp/f16.gguf" "$tmp/q8.gguf"
	want "within quantization, each part wider than f16's tolerance" 'all(l["within"] == "within quantization" and min(l["part_tol"].values()) > l["tol"] for l in d["layers"])'
	pair "F16 -> Q4_K" "$tmp/f16.gguf" "$tmp/q4.gguf"
	pair "a commuting fold stored in Q8_0" "$tmp/f16.gguf" "$tmp/fq8.gguf"
	want "a commuting fold within quantization" 'all(l["within"] == "within quantization" and l["relation"] == "commuting fold" for l in d["layers"])'
	pair "a commuting fold stored in Q4_K" "$tmp/f16.gguf" "$tmp/fq4.gguf"
	pair "Q4_K with a non-commuting rotation at layer 2" "$tmp/f16.gguf" "$tmp/bq4.gguf"
	want "first break at layer 2, not passed off as quantization" 'd["first_break"]["layer"] == 2 and d["first_break"]["why"] == "mixes-pairs"'
	pair "the F16 fold of the Q4_K_M, against the F16 model (the sidecar's carried bound)" \
		"$tmp/f16.gguf" "$tmp/f16q.gguf"
	want "within quantization the sidecar records" 'all(l["within"] == "within quantization" for l in d["layers"])'
	pair "the Q4_K_M against its F16 fold" "$tmp/q4km.gguf" "$tmp/f16q.gguf"
	# the fixture's head dim is 64
	judge "F16 -> Q4_K_M" "$tmp/f16.gguf" "$tmp/q4km.gguf" 64
	judge "F16 -> Q8_0" "$tmp/f16.gguf" "$tmp/q8.gguf" 64
	judge "a commuting fold stored in Q4_K" "$tmp/f16.gguf" "$tmp/fq4.gguf" 64
	judge "Q4_K with a non-commuting rotation at layer 2" "$tmp/f16.gguf" "$tmp/bq4.gguf" 64
else
	skip "GGUF quantized pairs" "python3-numpy is not installed, or the fixtures could not be made"
fi

# ---- the shared real checkpoints ---------------------------------------------
if [ -f "$M/stories260K.bin" ] && [ -f "$M/stories260K.gguf" ] && [ -d "$M/tiny_llama_hf" ]; then
	s="$M/stories260K.gguf" tl="$M/tiny_llama_hf"
	for f in "$M/stories260K.bin" "$s" "$tl"; do
		pair "$(basename "$f") against itself" "$f" "$f"
	done
	pair "stories260K.bin against its GGUF conversion" "$M/stories260K.bin" "$s"
	want "identical weights" 'all(l["relation"] == "identical" for l in d["layers"])'
	mkfold "$tmp/s-fold.gguf" --model "$s"
	mkfold "$tmp/s-q8.gguf" --model "$s" --dtype q8_0
	mkfold "$tmp/s-nc.gguf" --model "$s" --drop commutes --layers 3
	mkfold "$tmp/s-perm.gguf" --model "$s" --permute-heads
	pair "stories260K: a commuting fold" "$s" "$tmp/s-fold.gguf"
	pair "stories260K: a fold stored in Q8_0" "$s" "$tmp/s-q8.gguf"
	want "within quantization" 'all(l["within"] == "within quantization" for l in d["layers"])'
	pair "stories260K: a non-commuting rotation at layer 3" "$s" "$tmp/s-nc.gguf"
	want "first break at layer 3" 'd["first_break"]["layer"] == 3'
	pair "stories260K: heads permuted" "$s" "$tmp/s-perm.gguf"
	pair "stories260K.bin against the fold of its GGUF" "$M/stories260K.bin" "$tmp/s-fold.gguf"
	mkfold "$tmp/t-fold" --model "$tl"
	mkfold "$tmp/t-f16" --model "$tl" --rotate none --dtype f16
	mkfold "$tmp/t-nc" --model "$tl" --drop commutes --layers 1
	pair "tiny_llama_hf: a commuting fold (bf16)" "$tl" "$tmp/t-fold"
	want "within bf16 rounding" 'all(l["within"] == "within dtype rounding" for l in d["layers"])'
	pair "tiny_llama_hf: bf16 -> f16" "$tl" "$tmp/t-f16"
	# a same-width dtype change once kept the BF16 label on the F16 bytes
	want "within bf16 rounding (the header names F16)" 'all(l["within"] == "within dtype rounding" for l in d["layers"])'
	pair "tiny_llama_hf: a non-commuting rotation at layer 1" "$tl" "$tmp/t-nc"
	pair "two models of other shapes (layers 0..1)" "$M/stories260K.bin" "$tl" --layers 0..1
	want "the shapes differ" 'all(l["break"]["why"] == "shape" for l in d["layers"])'
	if [ "$numpy" -eq 1 ]; then
		judge "stories260K: a fold stored in Q8_0" "$s" "$tmp/s-q8.gguf" 8
		judge "stories260K: a non-commuting rotation at layer 3" "$s" "$tmp/s-nc.gguf" 8
		judge "tiny_llama_hf: a commuting fold" "$tl" "$tmp/t-fold"
		judge "tiny_llama_hf: bf16 -> f16" "$tl" "$tmp/t-f16"
		judge "tiny_llama_hf: a non-commuting rotation at layer 1" "$tl" "$tmp/t-nc"
	fi
else
	# left out of the plan, not skipped: a plain clone's skips stay those the README counts
	echo "# no shared models at $M (\$ROPEFOLD_SHARED_MODELS, else \$SRCDIR/../shared/models): the real checkpoints' pairs are left out"
fi

echo "1..$n"
[ "$fails" -eq 0 ]
