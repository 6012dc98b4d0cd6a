#!/bin/sh
# End-to-end tests of multi-head latent attention (DeepSeek-V2/V3) in
# `ropefold check` on random MLA layers: which toggles break which level,
# the JSON's "mla" object, refused flag mixes. Prints TAP. Needs $ROPEFOLD
# (set by make check); the JSON checks need jq.
: "${ROPEFOLD:=./ropefold}"
. "${SRCDIR:-.}/tests/tap.sh"

MLA="--kv-lora-rank 24 --q-lora-rank 12 --qk-nope-dim 8 --qk-rope-dim 8 --v-head-dim 8 --heads 4"

# levels ARGS... EXPECT: the holds of score, head, residual as "t f t".
levels() {
	want=$1; shift
	if ! command -v jq >/dev/null; then
		skip "levels of: $*" "jq missing"
		return
	fi
	"$ROPEFOLD" check --json $MLA "$@" >"$tmp/out" 2>"$tmp/err"
	got=$(jq -r '[.levels.score.holds, .levels.head.holds, .levels.residual.holds] |
		map(if . then "t" else "f" end) | join(" ")' "$tmp/out")
	g=$(jq -r '[.levels.score.guaranteed, .levels.head.guaranteed,
		.levels.residual.guaranteed] | map(if . then "t" else "f" end) | join(" ")' "$tmp/out")
	if [ "$got" = "$want" ] && [ "$g" = "$want" ]; then
		ok "MLA $*: holds $got, as predicted"
	else
		notok "MLA $*: holds '$got' guaranteed '$g', expected '$want'"
		sed 's/^/# /' "$tmp/err" | head -5
	fi
}

run 0 "MLA default holds" check $MLA
run 0 "MLA with q_proj holds" check --kv-lora-rank 16 --qk-rope-dim 4 --v-head-dim 6
levels "t t t"
# the nope part takes any per-head rotation; per-head and v-same relax freely
levels "t t t" --drop per-head
levels "t t t" --drop v-same
# k_pe is one head for all query heads: the rope part is one kv group
levels "f f f" --drop gqa-consistent
# q_nope and k_nope meet in one dot product: shared-qk breaks the nope part too
levels "f f f" --drop shared-qk
levels "f f f" --drop commutes --kind pair-swap
levels "f f f" --drop orthogonal
levels "f f t" --permute-heads
levels "t t t" --rotate qk
levels "t f f" --rotate qkv
MLA="--kv-lora-rank 24 --qk-nope-dim 8 --qk-rope-dim 8 --v-head-dim 8 --heads 1"
levels "t t t" --drop gqa-consistent
MLA="--kv-lora-rank 24 --q-lora-rank 12 --qk-nope-dim 8 --qk-rope-dim 8 --v-head-dim 8 --heads 4"

if command -v jq >/dev/null; then
	"$ROPEFOLD" check --json $MLA >"$tmp/out" 2>&1
	if jq -e '.config.mla.kv_lora_rank == 24 and .config.mla.q_lora_rank == 12 and
		.config.mla.qk_nope_head_dim == 8 and .config.mla.qk_rope_head_dim == 8 and
		.config.mla.v_head_dim == 8 and .config.kv_heads == 1 and
		.config.rotary_dim == 8 and .config.head_dim == 16' "$tmp/out" >/dev/null; then
		ok "JSON config.mla holds the dims under their HF names"
	else
		notok "JSON config.mla"; head -30 "$tmp/out" | sed 's/^/# /'
	fi
	"$ROPEFOLD" check --json --kv-lora-rank 8 >"$tmp/out" 2>&1
	if jq -e '.config.mla.q_lora_rank == null' "$tmp/out" >/dev/null; then
		ok "JSON q_lora_rank is null with q_proj"
	else
		notok "JSON q_lora_rank null"
	fi
else
	skip "JSON config.mla" "jq missing"
fi

run 2 "MLA with --head-dim is refused" check --kv-lora-rank 8 --head-dim 8
run 2 "MLA with --kv-heads is refused" check --qk-rope-dim 4 --kv-heads 2
run 2 "MLA with --with-bias is refused" check --v-head-dim 4 --with-bias
run 2 "an odd --qk-rope-dim is refused" check --qk-rope-dim 5
# float32: each side as the forward pass computes MLA, the same verdicts
levels "t t t" --precision f32
levels "f f f" --precision f32 --drop shared-qk
levels "f f t" --precision f32 --permute-heads
run 2 "MLA flags with --model are refused" check --kv-lora-rank 8 --model /nonexistent

# bench on an MLA layer: the plain engine's evaluation and the forward
# pass's MLA decoder layer, timed; the products counted from the dims
# (D 32, H 4, Lq 12, Lkv 16, dn 8, dr 4, dv 6, T 16; JSON keeps 5 digits)
run 0 "bench on a random MLA layer" bench --kv-lora-rank 16 --q-lora-rank 12 --qk-nope-dim 8 \
	--qk-rope-dim 4 --v-head-dim 6 --d-model 32 --heads 4 --seq 16 --repeat 3
grep -q "^  forward layer .*MLA decoder layer of logits, MLP width 112" "$tmp/out" &&
	grep -q "^  mla evaluation " "$tmp/out" && ok "... both rows printed" || notok "bench MLA rows"
if command -v jq >/dev/null; then
	"$ROPEFOLD" bench --json --kv-lora-rank 16 --q-lora-rank 12 --qk-nope-dim 8 --qk-rope-dim 4 \
		--v-head-dim 6 --d-model 32 --heads 4 --seq 16 --repeat 3 --precision f32 >"$tmp/out"
	# 2 T (D Lq + Lq H dq + D (Lkv + dr) + Lkv H (dn + dv) + H dv D) + 2 T^2 H (dq + dv)
	# + 6 T D F, F = 3.5 D
	want=$(awk 'BEGIN { T = 16; D = 32; H = 4; F = 112
		a = 2 * T * (D * 12 + 12 * H * 12 + D * 20 + 16 * H * 14 + H * 6 * D)
		print (a + 2 * T * T * H * 18 + 6 * T * D * F) * 1e-9 }')
	if jq -e --argjson g "$want" '.precision == "f32" and .mla.kv_lora_rank == 16 and
		.evaluation_seconds > 0 and .forward.seconds > 0 and
		((.forward.gflop - $g) | fabs) < 1e-4 * $g' "$tmp/out" >/dev/null; then
		ok "bench --json on MLA: the forward layer's $want GFLOP, timed"
	else
		notok "bench --json MLA"; head -30 "$tmp/out" | sed 's/^/# /'
	fi
else
	skip "bench --json on MLA" "jq missing"
fi

echo "1..$n"
[ "$fails" -eq 0 ]
