#!/bin/sh
# End-to-end tests of `ropefold verify` on the shared real checkpoints:
# identical files across formats, a tampered copy located to its layer,
# head and tensor, --layers ranges, --json, bad input. Prints TAP; skips
# without ../shared/models.
: "${ROPEFOLD:=./ropefold}"
: "${SRCDIR:=.}"
M="$SRCDIR/../shared/models"
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
