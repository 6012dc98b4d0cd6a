#!/bin/sh
# DeepSeek MLA checkpoints: tiny seeded HF folders and GGUF files from
# tests/mla_fixtures.py, ropefold's attention on them (tests/mla_dump)
# against the NumPy reference written from DeepSeek's definition
# (tests/mla_reference.py), info's dims, check on a loaded layer, and the
# refusals of broken or unsupported layouts. Prints TAP; skipped without
# numpy. Needs $ROPEFOLD and $BUILDDIR (set by make check).
: "${ROPEFOLD:=./ropefold}"
: "${BUILDDIR:=.}"
. "${SRCDIR:-.}/tests/tap.sh"
PY=/usr/bin/python3
if ! "$PY" -c 'import numpy' 2>/dev/null; then
	echo "1..0 # SKIP python3-numpy is not installed"
	exit 0
fi
FIX="$PY ${SRCDIR:-.}/tests/mla_fixtures.py"
REF="$PY ${SRCDIR:-.}/tests/mla_reference.py"
DUMP="$BUILDDIR/tests/mla_dump"

$FIX --out "$tmp/hf" --seed 3
$FIX --out "$tmp/hfq" --seed 4 --no-q-lora
$FIX --out "$tmp/hfy" --seed 5 --yarn
$FIX --out "$tmp/hfm" --seed 6 --yarn-mscale
$FIX --out "$tmp/g.gguf" --format gguf --seed 5 --yarn
$FIX --out "$tmp/gq.gguf" --format gguf --seed 4 --no-q-lora
$FIX --out "$tmp/hfe" --seed 8 --rms-eps 1e-2
$FIX --out "$tmp/ge.gguf" --format gguf --seed 8 --rms-eps 1e-2
$FIX --out "$tmp/hfh" --seed 9 --rope-half --yarn
# llama.cpp's split kv_b (attn_k_b, attn_v_b; key_length_mla), and beside attn_kv_b
$FIX --out "$tmp/gs.gguf" --format gguf --seed 5 --yarn --kv-b split
$FIX --out "$tmp/gb.gguf" --format gguf --seed 5 --yarn --kv-b both
$FIX --out "$tmp/gsq.gguf" --format gguf --seed 4 --no-q-lora --kv-b split

# ropefold's MLA against the reference, every fixture, both layers
for m in hf hfq hfy hfm g.gguf gq.gguf hfe ge.gguf hfh gs.gguf gb.gguf gsq.gguf; do
	for l in 0 1; do
		if "$DUMP" "$tmp/$m" $l 20 7 >"$tmp/dump.json" 2>"$tmp/err" &&
		   $REF --model "$tmp/$m" --dump "$tmp/dump.json" --layer $l >"$tmp/out" 2>&1; then
			ok "MLA attention of $m layer $l equals the reference ($(cat "$tmp/out"))"
		else
			notok "MLA attention of $m layer $l"; sed 's/^/# /' "$tmp/err" "$tmp/out"
		fi
	done
done
# the DeepSeek family fixtures of tests/family_fixtures.py (V2, V2-Lite
# without a q latent, V3 with mscale != mscale_all_dim), and their folds
for fam in deepseek-v2 deepseek-v2-lite deepseek-v3; do
	$PY "${SRCDIR:-.}/tests/family_fixtures.py" --family $fam --out "$tmp/$fam"
	"$DUMP" "$tmp/$fam" 2 24 5 >"$tmp/dump.json" 2>"$tmp/err"
	if $REF --model "$tmp/$fam" --dump "$tmp/dump.json" --layer 2 >"$tmp/out" 2>&1; then
		ok "MLA attention of the $fam fixture equals the reference ($(cat "$tmp/out"))"
	else
		notok "MLA attention of $fam"; sed 's/^/# /' "$tmp/err" "$tmp/out"
	fi
	"$ROPEFOLD" fold --model "$tmp/$fam" --out "$tmp/$fam-f" >/dev/null 2>"$tmp/err" &&
		"$ROPEFOLD" verify "$tmp/$fam" "$tmp/$fam-f" >"$tmp/out" 2>>"$tmp/err"
	if [ $? -eq 0 ] && [ "$(grep -c "commuting fold" "$tmp/out")" -eq 3 ]; then
		ok "$fam: fold, then verify: a commuting fold in all 3 layers"
	else
		notok "$fam fold/verify"; sed 's/^/# /' "$tmp/err" "$tmp/out"
	fi
done

# bf16 storage: the fold rounds to bf16, verify judges at its roundoff
$PY "${SRCDIR:-.}/tests/family_fixtures.py" --family deepseek-v2 --dtype bf16 --out "$tmp/bf16"
run 0 "fold a bf16 DeepSeek-V2" fold --model "$tmp/bf16" --out "$tmp/bf16-f"
run 0 "verify it at bf16's roundoff" verify "$tmp/bf16" "$tmp/bf16-f"
grep -q "commuting fold, up to bf16 rounding" "$tmp/out" && ok "... up to bf16 rounding" ||
	notok "bf16 verify relation"

# the same weights in both formats give the same attention
"$DUMP" "$tmp/hfy" 1 16 2 >"$tmp/a.json" && "$DUMP" "$tmp/g.gguf" 1 16 2 >"$tmp/b.json"
# (the GGUF stores yarn_log_multiplier = 0.1 mscale_all_dim as f32)
if $REF --model "$tmp/hfy" --dump "$tmp/b.json" --layer 1 --tol 1e-6 >/dev/null; then
	ok "GGUF deepseek2 and the HF folder of the same weights agree"
else
	notok "GGUF deepseek2 and HF disagree"
fi

# the same weights with kv_b whole, split, or both: the same attention, to the bit
for m in gs.gguf gb.gguf; do
	"$DUMP" "$tmp/$m" 1 16 2 >"$tmp/c.json"
	if cmp -s "$tmp/b.json" "$tmp/c.json"; then
		ok "$m (kv_b $(echo "$m" | sed 's/gs.*/split/;s/gb.*/split beside attn_kv_b/')) computes g.gguf's attention bit for bit"
	else
		notok "$m and g.gguf differ"
	fi
done
run 0 "verify the attn_kv_b file against the split one" verify "$tmp/g.gguf" "$tmp/gs.gguf"
[ "$(grep -c ": identical (max relative error 0," "$tmp/out")" -eq 2 ] &&
	ok "... identical in both layers: one layer whatever the layout" || notok "verify across layouts"
run 0 "check a split-kv_b layer" check --model "$tmp/gs.gguf" --layer 1 --input embed
# (the whole forward pass across layouts: tests/mla_forward.sh, bit for bit)
grep -v "^layer " "$tmp/out" >"$tmp/check-gs"
"$ROPEFOLD" check --model "$tmp/g.gguf" --layer 1 --input embed 2>&1 | grep -v "^layer " >"$tmp/check-g"
cmp -s "$tmp/check-gs" "$tmp/check-g" &&
	ok "... its report is the attn_kv_b file's, line for line (but the file's name)" ||
	notok "check of split and whole layouts differ"
run 0 "info of a split-kv_b deepseek2 GGUF" info "$tmp/gs.gguf"
grep -q "^mla kv_b .*attn_k_b (per head, k_nope rows transposed) and attn_v_b$" "$tmp/out" &&
	grep -q "qk_nope_head_dim 8, .*v_head_dim 6" "$tmp/out" &&
	ok "... names the split and the per-head dims of key_length_mla" || notok "info of split kv_b"

# info: the dims under their HF names, text and JSON
run 0 "info of a DeepSeek-V2 folder" info "$tmp/hf"
if grep -q "kv_lora_rank 16, q_lora_rank 12, qk_nope_head_dim 8, qk_rope_head_dim 4" "$tmp/out"; then
	ok "info text names the MLA dims"
else
	notok "info text MLA dims"; sed 's/^/# /' "$tmp/out"
fi
if command -v jq >/dev/null; then
	for m in hfq gq.gguf; do
		"$ROPEFOLD" info --json "$tmp/$m" >"$tmp/out"
		if jq -e '.mla.kv_lora_rank == 16 and .mla.q_lora_rank == null and
			.mla.qk_nope_head_dim == 8 and .mla.qk_rope_head_dim == 4 and
			.mla.v_head_dim == 6 and .rope.layout == "interleaved" and .kv_heads == 1' \
			"$tmp/out" >/dev/null; then
			ok "info --json of $m: mla dims"
		else
			notok "info --json of $m"; sed 's/^/# /' "$tmp/out" | head -20
		fi
	done
	for m in gq.gguf:kv_b gsq.gguf:k_b+v_b gb.gguf:kv_b+k_b+v_b; do
		"$ROPEFOLD" info --json "$tmp/${m%%:*}" >"$tmp/out"
		if jq -e --arg l "${m#*:}" '.mla.kv_b == $l and .mla.qk_nope_head_dim == 8' \
			"$tmp/out" >/dev/null; then
			ok "info --json of ${m%%:*}: mla.kv_b is ${m#*:}"
		else
			notok "info --json kv_b of ${m%%:*}"; jq -c .mla "$tmp/out" | sed 's/^/# /'
		fi
	done
	# DeepSeek's yarn: softmax scale times mscale(4, 0.707)^2
	"$ROPEFOLD" info --json "$tmp/hfy" >"$tmp/out"
	if jq -e '(.mla.softmax_scale - (1 / (12 | sqrt)) * (0.1 * 0.707 * (4 | log) + 1) *
		(0.1 * 0.707 * (4 | log) + 1)) | fabs < 1e-12' "$tmp/out" >/dev/null; then
		ok "yarn mscale_all_dim in the softmax scale"
	else
		notok "yarn softmax scale"; jq -c .mla "$tmp/out" | sed 's/^/# /'
	fi
else
	skip "info --json mla" "jq missing"
fi

# check on loaded MLA layers
run 0 "check a DeepSeek-V2 layer" check --model "$tmp/hfy" --layer 1
run 0 "check a deepseek2 GGUF layer with embedded tokens" check --model "$tmp/g.gguf" --input embed
run 0 "check: a fold built for the wrong layout is not guaranteed" check --model "$tmp/hf" --rope half
if grep -q "score     not guar.    breaks" "$tmp/out"; then ok "... and its scores break"; else notok "wrong layout scores"; fi
run 2 "check: --rotary-dim on an MLA checkpoint is refused" check --model "$tmp/hf" --rotary-dim 2
if command -v jq >/dev/null; then
	"$ROPEFOLD" check --json --model "$tmp/hfy" --layer 1 --drop gqa-consistent >"$tmp/out"
	if jq -e '.config.mla.kv_lora_rank == 16 and .config.source != "random" and
		.levels.score.guaranteed == false and .levels.score.holds == false and
		.diagnostics.gqa_mismatch > 0 and .ok == true' "$tmp/out" >/dev/null; then
		ok "check --json on a checkpoint layer: config.mla, a per-head rope rotation breaks"
	else
		notok "check --json on an MLA checkpoint"; head -40 "$tmp/out" | sed 's/^/# /'
	fi
else
	skip "check --json on an MLA checkpoint" "jq missing"
fi

# fold, then verify: the folded attention equals the original's (the
# reference on B's weights with A's output), and verify recovers the fold
for m in hfy g.gguf hfq gs.gguf gb.gguf gsq.gguf; do
	out="$tmp/f-$m"
	run 0 "fold $m" fold --model "$tmp/$m" --out "$out"
	"$DUMP" "$tmp/$m" 1 16 9 >"$tmp/a.json"
	if $REF --model "$out" --dump "$tmp/a.json" --layer 1 --tol 1e-6 >"$tmp/o" 2>&1; then
		ok "the folded $m computes A's attention up to f32 storage ($(cat "$tmp/o"))"
	else
		notok "folded $m attention"; sed 's/^/# /' "$tmp/o"
	fi
	run 0 "verify $m against its fold" verify "$tmp/$m" "$out"
	grep -q "commuting fold" "$tmp/out" && ok "... a commuting fold" || notok "verify relation"
	grep -q "levels (tolerance .*): score holds .*, head holds .*, residual holds" "$tmp/out" &&
		ok "... confirmed by the three levels" || notok "verify confirmation"
done
# the folds of the split layouts keep them (the reference read their attn_k_b
# and attn_v_b above: each head's k_nope rows rotated through the transpose)
for m in gs.gguf gb.gguf; do
	"$ROPEFOLD" info --json "$tmp/$m" | jq -c .mla.kv_b >"$tmp/l1" 2>/dev/null
	"$ROPEFOLD" info --json "$tmp/f-$m" | jq -c .mla.kv_b >"$tmp/l2" 2>/dev/null
	if command -v jq >/dev/null && cmp -s "$tmp/l1" "$tmp/l2" && [ -s "$tmp/l1" ]; then
		ok "the fold of $m keeps its kv_b layout $(cat "$tmp/l1")"
	elif ! command -v jq >/dev/null; then
		skip "kv_b layout of the fold of $m" "jq missing"
	else
		notok "fold of $m changed the kv_b layout: $(cat "$tmp/l1") -> $(cat "$tmp/l2")"
	fi
	run 0 "verify the attn_kv_b file against the fold of $m" verify "$tmp/g.gguf" "$tmp/f-$m"
	grep -q "commuting fold" "$tmp/out" && ok "... a commuting fold across layouts" ||
		notok "verify g.gguf against the fold of $m"
	run 0 "fold --undo of the $m fold" fold --model "$tmp/f-$m" --out "$tmp/u-$m" \
		--undo "$tmp/f-$m.fold.json"
	run 0 "... verify: the undo is A again" verify "$tmp/$m" "$tmp/u-$m"
	grep -q "equal up to f32 rounding" "$tmp/out" && "$DUMP" "$tmp/u-$m" 1 16 9 >"$tmp/u.json" &&
		$REF --model "$tmp/$m" --dump "$tmp/u.json" --layer 1 --tol 1e-6 >"$tmp/o" 2>&1 &&
		ok "... and computes A's attention ($(cat "$tmp/o"))" || notok "undo of $m"
done
# an f64 fold of the split file, undone: the original file, byte for byte
run 0 "fold --dtype f64 of the split file" fold --model "$tmp/gs.gguf" --out "$tmp/f64s.gguf" --dtype f64
run 0 "... undone" fold --model "$tmp/f64s.gguf" --out "$tmp/u64s.gguf" --undo "$tmp/f64s.gguf.fold.json"
grep -q "restored bit for bit" "$tmp/out" && cmp -s "$tmp/gs.gguf" "$tmp/u64s.gguf" &&
	ok "... bit for bit: the split file again, byte for byte" || notok "f64 undo of the split file"
run 0 "fold --dtype f64" fold --model "$tmp/hf" --out "$tmp/f64" --dtype f64
"$DUMP" "$tmp/hf" 0 16 9 >"$tmp/a.json"
if $REF --model "$tmp/f64" --dump "$tmp/a.json" --layer 0 >"$tmp/o" 2>&1; then
	ok "the f64 fold computes A's attention to roundoff ($(cat "$tmp/o"))"
else
	notok "f64 fold attention"; sed 's/^/# /' "$tmp/o"
fi
run 0 "verify the f64 fold" verify "$tmp/hf" "$tmp/f64"
# the confirmation in float32 (as the forward pass computes MLA): float's
# rounding in the levels, where float64 sees the f64 fold's roundoff alone
lv() { sed -n 's/.*score holds (\([^)]*\)).*/\1/p' "$tmp/out" | head -1; }
run 0 "verify --precision f32 of the f64 fold" verify "$tmp/hf" "$tmp/f64" --precision f32
e32=$(lv)
run 0 "verify --precision f64 of the f64 fold" verify "$tmp/hf" "$tmp/f64" --precision f64
e64=$(lv)
if awk -v a="$e32" -v b="$e64" 'BEGIN { exit !(a > 1e-9 && a < 1e-4 && b < 1e-12) }'; then
	ok "verify --precision f32 on MLA computes in float (score error $e32, f64 $e64)"
else
	notok "MLA verify precision: f32 $e32, f64 $e64"
fi
rm -rf "$tmp/brk"
"$ROPEFOLD" fold --model "$tmp/gs.gguf" --out "$tmp/brk.gguf" --drop shared-qk >/dev/null 2>&1
run 1 "verify --precision f32 of a split-kv_b fold with q and k apart" verify "$tmp/gs.gguf" "$tmp/brk.gguf" --precision f32
grep -q "levels (tolerance 0.001): score breaks" "$tmp/out" && ok "... its float32 levels break" ||
	notok "f32 levels of a broken MLA fold"
run 0 "verify a checkpoint against itself" verify "$tmp/hf" "$tmp/hf"
grep -q "identical" "$tmp/out" && ok "... identical" || notok "identical"
# crafted breaks: folds that drop an assumption
brk() {
	what=$1; pat=$2; shift 2
	rm -rf "$tmp/brk"
	"$ROPEFOLD" fold --model "$tmp/hf" --out "$tmp/brk" "$@" >/dev/null 2>&1
	"$ROPEFOLD" verify "$tmp/hf" "$tmp/brk" --layer 0 >"$tmp/out" 2>&1
	got=$?
	if [ "$got" -eq 1 ] && grep -q -- "$pat" "$tmp/out"; then
		ok "verify names a fold $what: $(sed -n 2p "$tmp/out" | cut -c1-90)"
	else
		notok "verify of a fold $what (exit $got)"; sed 's/^/# /' "$tmp/out"
	fi
}
brk "whose rope rotation mixes pairs" "mixes frequency pairs" --drop commutes --kind pair-swap
brk "with q and k rotated apart" "Q and K are folded differently" --drop shared-qk
grep -q "score breaks .*residual breaks" "$tmp/out" && ok "... and its levels break" ||
	notok "levels of a broken fold"
brk "with per-head rope rotations" "query head 1: W_q is rotated by a different rotation" \
	--drop gqa-consistent
brk "that is not orthogonal" "no rotation explains" --drop orthogonal
brk "that rotates V but not O" "column block" --rotate qkv
rm -rf "$tmp/brk"
run 0 "fold dropping per-head (one nope rotation) is a fold" fold --model "$tmp/hf" --out "$tmp/brk" --drop per-head,v-same
run 0 "... and verify says so" verify "$tmp/hf" "$tmp/brk"
rm -rf "$tmp/brk"
run 0 "fold --permute-heads" fold --model "$tmp/g.gguf" --out "$tmp/perm.gguf" --permute-heads
run 0 "verify finds the heads permuted" verify "$tmp/g.gguf" "$tmp/perm.gguf"
grep -q "heads permuted as \[1 2 3 0\]" "$tmp/out" && grep -q "residual holds" "$tmp/out" &&
	ok "... as [1 2 3 0], the residual holding" || notok "permuted heads"
run 1 "verify an MLA checkpoint against a standard one: not a fold" \
	verify "$tmp/hf" "${SRCDIR:-.}/data/default-model"
grep -q "differ in shape" "$tmp/out" && ok "... the shapes differ" || notok "MLA vs standard"
run 0 "fold --undo of an MLA fold (tests/mla_undo.sh has the rest)" fold --model "$tmp/f-hfy" --out "$tmp/u" --undo "$tmp/f-hfy/fold.json"

# the split pair stored in F16 beside F32 tensors (a pair of another dtype than
# kv_a): read exactly, folded and verified at f16's rounding; beside an F32
# attn_kv_b, the two agree within that rounding
$FIX --out "$tmp/s16.gguf" --format gguf --seed 7 --yarn --kv-b split --f16 attn_k_b.weight,attn_v_b.weight
$FIX --out "$tmp/b16.gguf" --format gguf --seed 7 --yarn --kv-b both --f16 attn_k_b.weight,attn_v_b.weight
"$DUMP" "$tmp/s16.gguf" 1 16 4 >"$tmp/a.json" 2>"$tmp/err" &&
	$REF --model "$tmp/s16.gguf" --dump "$tmp/a.json" --layer 1 >"$tmp/o" 2>&1 &&
	ok "an F16 split pair's attention equals the reference ($(cat "$tmp/o"))" ||
	{ notok "F16 split pair attention"; sed 's/^/# /' "$tmp/err" "$tmp/o"; }
run 0 "check the F32 attn_kv_b beside its F16 pair" check --model "$tmp/b16.gguf" --layer 1
run 0 "fold the F16 split pair" fold --model "$tmp/s16.gguf" --out "$tmp/f16.gguf"
run 0 "... verify: at f16's rounding" verify "$tmp/s16.gguf" "$tmp/f16.gguf"
grep -q "layer 1: commuting fold, up to f16 rounding" "$tmp/out" && ok "... a commuting fold, up to f16 rounding" ||
	notok "verify of the F16 split fold"
"$ROPEFOLD" fold --model "$tmp/s16.gguf" --out "$tmp/brk16.gguf" --drop shared-qk >/dev/null 2>&1
run 1 "... and a fold with q and k apart still breaks at that rounding" verify "$tmp/s16.gguf" "$tmp/brk16.gguf"

# the pair in ggml's Q8_0 (whole blocks: --wide dims), as quantized files
# carry it: read as ggml dequantizes it, folded (written F16, the fold's
# default for quantized weights), verified at Q8_0's step
$FIX --out "$tmp/q8.gguf" --format gguf --seed 8 --wide --kv-b split --q8 attn_k_b.weight,attn_v_b.weight
"$DUMP" "$tmp/q8.gguf" 1 16 4 >"$tmp/a.json" 2>"$tmp/err" &&
	$REF --model "$tmp/q8.gguf" --dump "$tmp/a.json" --layer 1 >"$tmp/o" 2>&1 &&
	ok "a Q8_0 split pair's attention equals the reference ($(cat "$tmp/o"))" ||
	{ notok "Q8_0 split pair attention"; sed 's/^/# /' "$tmp/err" "$tmp/o"; }
run 0 "fold the Q8_0 split pair" fold --model "$tmp/q8.gguf" --out "$tmp/fq8.gguf"
"$DUMP" "$tmp/q8.gguf" 1 16 9 >"$tmp/a.json"
$REF --model "$tmp/fq8.gguf" --dump "$tmp/a.json" --layer 1 --tol 2e-3 >"$tmp/o" 2>&1 &&
	ok "... the folded pair computes A's attention up to f16 storage ($(cat "$tmp/o"))" ||
	{ notok "folded Q8_0 pair attention"; sed 's/^/# /' "$tmp/o"; }
run 0 "... verify" verify "$tmp/q8.gguf" "$tmp/fq8.gguf"
grep -q "layer 1: commuting fold, up to Q8_0 quantization" "$tmp/out" &&
	ok "... a commuting fold, up to Q8_0 quantization" || notok "verify of the Q8_0 split fold"
"$ROPEFOLD" fold --model "$tmp/q8.gguf" --out "$tmp/brkq8.gguf" --drop commutes --kind pair-swap >/dev/null 2>&1
run 1 "... and one whose rope rotation mixes pairs breaks" verify "$tmp/q8.gguf" "$tmp/brkq8.gguf"

# refusals, one line naming what is wrong and what was found
refused() {
	what=$1; pat=$2; shift 2
	"$ROPEFOLD" info "$@" >"$tmp/out" 2>"$tmp/err"
	got=$?
	if [ "$got" -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q -- "$pat" "$tmp/err"; then
		ok "$what is refused: $(cut -c1-100 "$tmp/err")"
	else
		notok "$what (exit $got)"; sed 's/^/# /' "$tmp/err"
	fi
}
$FIX --out "$tmp/b1" --break missing-kv-b
refused "a layer without kv_b_proj" "kv_b_proj.weight is missing.*layer 0 holds" "$tmp/b1"
$FIX --out "$tmp/b2" --break no-rope-dim
refused "a config without qk_rope_head_dim" "qk_rope_head_dim is missing" "$tmp/b2"
$FIX --out "$tmp/b3" --break bad-kv-b
refused "a kv_b_proj one row short" "kv_b_proj.weight: shape \[55, 16\], but the MLA dims" "$tmp/b3"
$FIX --out "$tmp/b4.gguf" --format gguf --kv-b split --break no-v-b
refused "an attn_k_b without its attn_v_b" "blk.1.attn_v_b.weight is missing beside blk.1.attn_k_b.weight" "$tmp/b4.gguf"
$FIX --out "$tmp/b5.gguf" --format gguf --kv-b split --break k-b-untransposed
refused "an attn_k_b stored untransposed" "blk.1.attn_k_b.weight: shape \[4, 8, 16\], but the MLA dims.* give \[4, 16, 8\]" "$tmp/b5.gguf"
$FIX --out "$tmp/b6.gguf" --format gguf --kv-b split --break k-b-short
refused "an attn_k_b one head short" "blk.0.attn_k_b.weight: shape \[3, 16, 8\]" "$tmp/b6.gguf"
$FIX --out "$tmp/b8.gguf" --format gguf --kv-b split --break no-mla-keys
refused "a split kv_b without key_length_mla" "give \[80, 12\] (a split kv_b without attention.key_length_mla" "$tmp/b8.gguf"
$FIX --out "$tmp/b7.gguf" --format gguf --kv-b both --break split-differs
for mode in "check --model $tmp/b7.gguf --layer 1" "fold --model $tmp/b7.gguf --out $tmp/b7f.gguf"; do
	$ROPEFOLD $mode >"$tmp/out" 2>"$tmp/err"
	got=$?
	if [ "$got" -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && [ ! -e "$tmp/b7f.gguf" ] &&
	   grep -q "blk.1.attn_kv_b.weight: row 29 (head 2) differs from blk.1.attn_k_b.weight" "$tmp/err"; then
		ok "${mode%% *}: an attn_k_b that is not attn_kv_b's rows is refused: $(cut -c1-100 "$tmp/err")"
	else
		notok "${mode%% *} of a disagreeing split pair (exit $got)"; sed 's/^/# /' "$tmp/err"
	fi
done

echo "1..$n"
[ "$fails" -eq 0 ]
