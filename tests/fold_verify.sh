#!/bin/sh
# End-to-end tests of `ropefold verify` on the shared real checkpoints:
# identical files across formats, a tampered copy located to its layer,
# head and tensor, --layers ranges, --json, folds of QK-norm copies, bad
# input. Prints TAP; skips without the shared checkpoints
# ($ROPEFOLD_SHARED_MODELS, else $SRCDIR/../shared/models).
: "${ROPEFOLD:=./ropefold}"
: "${SRCDIR:=.}"
M=${ROPEFOLD_SHARED_MODELS:-$SRCDIR/../shared/models}
if [ ! -f "$M/stories260K.bin" ] || [ ! -f "$M/stories260K.gguf" ]; then
	echo "1..0 # SKIP no shared models at $M"
	exit 0
fi
. "${SRCDIR:-.}/tests/tap.sh"
# verify WANT DESCRIPTION ARGS...: ropefold verify ARGS, compare the exit status.
verify() { want=$1; what=$2; shift 2; run "$want" "$what" verify "$@"; }
has() {
	if grep -q -- "$1" "$tmp/out"; then ok "$2"
	else notok "$2: no '$1' in the output"; sed 's/^/# /' "$tmp/out"; fi
}

verify 0 "llama2.c .bin and its GGUF are the same model" "$M/stories260K.bin" "$M/stories260K.gguf"
has "layer 4: identical" "every layer reported identical"
has "residual holds" "three-level confirmation printed"

# Tamper one entry of layer 2's W_q, row 17 (query head 2 of head dim 8):
# offset = 28 + 4 * (512*64 + 5*64 + 2*64*64 + 17*64 + 5).
cp "$M/stories260K.bin" "$tmp/tampered.bin"
off=$((28 + 4 * (512 * 64 + 5 * 64 + 2 * 64 * 64 + 17 * 64 + 5)))
printf '\000\000\000\077' | dd of="$tmp/tampered.bin" bs=1 seek=$off conv=notrunc 2>/dev/null
verify 1 "a tampered W_q entry is not a fold" "$M/stories260K.bin" "$tmp/tampered.bin"
has "layer 2: NOT equivalent at the score level, kv group 1, query head 2, W_q" \
	"the break is located to layer 2, query head 2, W_q"
has "no rotation explains" "the reason is a difference no rotation explains"
has "layer 1: identical" "layers before the break still verify"
verify 0 "--layers 0..1 stops before the tampered layer" --layers 0..1 "$M/stories260K.bin" "$tmp/tampered.bin"
verify 1 "--layers 2 picks the tampered layer" --layers 2 "$M/stories260K.bin" "$tmp/tampered.bin"
verify 1 "--json on the tampered copy" --json "$M/stories260K.bin" "$tmp/tampered.bin"
has '"why": "unexplained"' "JSON names the reason"
has '"first_break": {' "JSON has the first break"
if command -v jq >/dev/null 2>&1; then
	if [ "$(jq -r '.first_break.layer, .first_break.head, .equivalent' "$tmp/out" | tr '\n' ' ')" = "2 2 false " ]; then
		ok "JSON first_break is layer 2, head 2"
	else
		notok "JSON first_break"; sed 's/^/# /' "$tmp/out"
	fi
fi
if [ -d "$M/tiny_llama_hf" ]; then
	verify 0 "an HF folder against itself" --layers 1 "$M/tiny_llama_hf" "$M/tiny_llama_hf"
	has "identical" "identical HF layer"
	verify 1 "different layer counts: not a fold" "$M/tiny_llama_hf" "$M/stories260K.bin"
	has "has 2 layers" "the layer counts are named"
	verify 1 "--layers 0 compares a layer both have: different shapes" --layers 0 \
		"$M/tiny_llama_hf" "$M/stories260K.bin"
	has "differ in shape" "the shape difference is named"
	# A fold whose Q/K rotation does not commute, stored in float64 from a
	# bfloat16 original: the dtype's rounding must not pass its 10% breaks
	# off as holding.
	"$ROPEFOLD" fold --model "$M/tiny_llama_hf" --out "$tmp/nc" --drop commutes \
		--dtype f64 >/dev/null 2>&1
	verify 1 "a non-commuting fold from bfloat16 is not a fold" "$M/tiny_llama_hf" "$tmp/nc"
	has "levels (tolerance 0.0[0-9]*):.*head breaks" "its head level breaks at the bfloat16 tolerance"
	"$ROPEFOLD" fold --model "$M/tiny_llama_hf" --out "$tmp/okbf" >/dev/null 2>&1
	verify 0 "a commuting fold stored in bfloat16 is a fold" "$M/tiny_llama_hf" "$tmp/okbf"
	has "score holds.*head holds.*residual holds" "its levels hold within bfloat16 rounding"
fi

# ---- learned QK-norm weights that differ within RoPE pairs ----------------
# Qwen3 (one q_norm / k_norm of head_dim entries) and OLMo2 (weights over
# all heads) copies of tiny_llama_hf, and a partial-rotary Qwen3 whose
# k_norm also varies on the non-rotary coordinates. Only angles 0 and pi
# commute with such a weight, so fold must keep to them there: verify
# then finds an exact fold, and fold says so in one stderr line. With
# --permute-heads, OLMo2's weights move with their heads (and back on
# --undo).
# mkqk MODE OUT: write the copy (bf16 weights 1 + k/16, exact in bf16).
mkqk() {
	"$PY" - "$M/tiny_llama_hf" "$2" "$1" <<'PYEOF'
import json, os, struct, sys
src, out, mode = sys.argv[1:4]
raw = open(src + "/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr, data = json.loads(raw[8:8 + n]), raw[8 + n:]
cfg = json.load(open(src + "/config.json"))
H, G = cfg["num_attention_heads"], cfg["num_key_value_heads"]
d = cfg["hidden_size"] // H
cfg["model_type"] = "olmo2" if mode == "olmo2" else "qwen3"
cfg["head_dim"] = d
if mode == "partial":
    cfg["partial_rotary_factor"] = 0.5
extra = b""
for l in range(cfg["num_hidden_layers"]):
    for t, nh in (("q", H), ("k", G)):
        cnt = nh * d if mode == "olmo2" else d
        w = [1.0 + ((7 * i + 3 * l + (t == "k")) % 11) / 16.0 for i in range(cnt)]
        b = b"".join(struct.pack("<f", x)[2:] for x in w)
        hdr["model.layers.%d.self_attn.%s_norm.weight" % (l, t)] = {
            "dtype": "BF16", "shape": [cnt],
            "data_offsets": [len(data) + len(extra), len(data) + len(extra) + len(b)]}
        extra += b
h = json.dumps(hdr, separators=(",", ":")).encode()
h += b" " * (-len(h) % 8)
os.makedirs(out)
open(out + "/model.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + data + extra)
json.dump(cfg, open(out + "/config.json", "w"))
PYEOF
}
note="QK-norm weights differ within .* RoPE pairs in 2 layers: those pairs turn by 0 or pi only"
PY=${PYTHON:-python3}
if [ -d "$M/tiny_llama_hf" ] && "$PY" -c 'import json, struct' 2>/dev/null; then
	for mode in qwen3 olmo2 partial; do
		if mkqk "$mode" "$tmp/qk-$mode"; then ok "$mode: QK-norm copy written"
		else notok "$mode: QK-norm copy written"; continue; fi
		run 0 "$mode: fold" fold --model "$tmp/qk-$mode" --out "$tmp/qkf-$mode" --dtype f32
		if [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "^ropefold fold: $note" "$tmp/err"; then
			ok "$mode: one stderr line names the pairs held to 0 or pi"
		else
			notok "$mode: QK-norm note"; sed 's/^/# /' "$tmp/err"
		fi
		verify 0 "$mode: the fold is exact" "$tmp/qk-$mode" "$tmp/qkf-$mode"
		has "B is equivalent to A" "$mode: verify finds it equivalent"
		if grep -q "q-norm\|k-norm" "$tmp/out"; then notok "$mode: no QK-norm break"
		else ok "$mode: no QK-norm break"; fi
		run 0 "$mode: undo" fold --model "$tmp/qkf-$mode" --out "$tmp/qku-$mode" \
			--undo "$tmp/qkf-$mode/fold.json"
		if cmp -s "$tmp/qk-$mode/model.safetensors" "$tmp/qku-$mode/model.safetensors"; then
			ok "$mode: undo restores bf16 bit for bit"
		else notok "$mode: undo restores bf16 bit for bit"; fi
		# Heads reordered: OLMo2's weights over all heads move with their
		# heads (written and recorded); Qwen3's per-head ones stay.
		run 0 "$mode: fold --permute-heads" fold --model "$tmp/qk-$mode" \
			--out "$tmp/qkh-$mode" --permute-heads --seed 7 --dtype f32
		verify 0 "$mode: the permuted fold is exact" "$tmp/qk-$mode" "$tmp/qkh-$mode"
		has "heads permuted as \[1 0\]" "$mode: verify finds the heads permuted"
		has "B is equivalent to A" "$mode: verify finds the permuted fold equivalent"
		if [ "$mode" = olmo2 ]; then want=2; else want=0; fi
		got=$(grep -c '"model.layers.1.self_attn.[qk]_norm.weight"' "$tmp/qkh-$mode/fold.json")
		if [ "$got" -eq "$want" ]; then ok "$mode: the sidecar records $want QK-norm tensors"
		else notok "$mode: the sidecar records $got QK-norm tensors of layer 1, not $want"; fi
		run 0 "$mode: undo the permuted fold" fold --model "$tmp/qkh-$mode" \
			--out "$tmp/qkhu-$mode" --undo "$tmp/qkh-$mode/fold.json"
		if cmp -s "$tmp/qk-$mode/model.safetensors" "$tmp/qkhu-$mode/model.safetensors"; then
			ok "$mode: undo of the permuted fold restores bf16 bit for bit"
		else notok "$mode: undo of the permuted fold restores bf16 bit for bit"; fi
	done
	run 0 "partial: fold in the file's own dtype" fold --model "$tmp/qk-partial" \
		--out "$tmp/qkp" --seed 3
	if grep -q "non-rotary coordinates only flip signs" "$tmp/err"; then
		ok "partial: the non-rotary block is named"
	else notok "partial: the non-rotary block is named"; sed 's/^/# /' "$tmp/err"; fi
	verify 0 "partial: bf16 fold verifies" "$tmp/qk-partial" "$tmp/qkp"
	run 0 "no QK-norm: fold" fold --model "$M/tiny_llama_hf" --out "$tmp/plain"
	if [ -s "$tmp/err" ]; then notok "no QK-norm: nothing on stderr"; sed 's/^/# /' "$tmp/err"
	else ok "no QK-norm: nothing on stderr"; fi
else
	skip "QK-norm folds" "no python3 or no tiny_llama_hf to craft them from"
fi

# Bad usage and input: exit 2, one line on stderr.
verify 2 "one checkpoint only" "$M/stories260K.bin"
verify 2 "--layers out of range" --layers 9 "$M/stories260K.bin" "$M/stories260K.gguf"
verify 2 "--layers malformed" --layers 3..1 "$M/stories260K.bin" "$M/stories260K.gguf"
verify 2 "missing file" "$M/stories260K.bin" "$tmp/nope.bin"
if [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "nope.bin" "$tmp/err"; then
	ok "missing file: one stderr line naming it"
else
	notok "missing file message"; sed 's/^/# /' "$tmp/err"
fi
head -c 100 "$M/stories260K.bin" >"$tmp/short.bin"
verify 2 "truncated file" "$M/stories260K.bin" "$tmp/short.bin"
verify 2 "--out belongs to fold" --out x "$M/stories260K.bin" "$M/stories260K.gguf"

echo "1..$n"
[ "$fails" -eq 0 ]
