#!/bin/sh
# End-to-end tests of `ropefold info` and `check --model` on checkpoint
# files: crafted bad files (exit 2, one stderr line naming the file), the
# built-in default, the regression inputs in tests/bad/, and the shared real
# checkpoints ($SRCDIR/../shared/models or $ROPEFOLD_SHARED_MODELS) when
# present: info and check on every file and every layer, and --drop commutes
# breaks the score level. Prints TAP.
: "${ROPEFOLD:=./ropefold}"
: "${SRCDIR:=.}"
. "$SRCDIR/tests/tap.sh"

# bad FILE TEXT: info FILE exits 2 with one stderr line naming FILE and TEXT.
bad() {
	"$ROPEFOLD" info "$1" >"$tmp/out" 2>"$tmp/err"
	got=$?
	lines=$(wc -l <"$tmp/err")
	if [ "$got" -eq 2 ] && [ "$lines" -eq 1 ] && grep -qF "$1" "$tmp/err" &&
	   grep -qF -- "$2" "$tmp/err" && [ ! -s "$tmp/out" ]; then
		ok "bad file rejected: $2"
	else
		notok "bad file $1: exit $got, $lines stderr lines, wanted '$2'"
		sed 's/^/# /' "$tmp/err"
	fi
}
# json_get FILE EXPR: a python expression over the document d.
json_get() {
	python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1" 2>/dev/null
}

# ---- crafted bad files -------------------------------------------------------
: >"$tmp/empty.gguf"
bad "$tmp/empty.gguf" "empty file"
printf 'GGUF\001\000\000\000' >"$tmp/v1.gguf"
bad "$tmp/v1.gguf" "offset 4: unsupported GGUF version"
printf 'GGUF\003\000\000\000\377\377\377\377\377\377\377\177\000\000\000\000\000\000\000\000' >"$tmp/count.gguf"
bad "$tmp/count.gguf" "tensor count"
mkdir "$tmp/hf"
printf '{"hidden_size": 8, "num_attention_heads": 2, "num_hidden_layers": 1}' >"$tmp/hf/config.json"
printf '\377\000\000\000\000\000\000\000{"a":' >"$tmp/hf/model.safetensors"
bad "$tmp/hf/model.safetensors" "runs past the end"
printf '\005\000\000\000\000\000\000\000{"a":' >"$tmp/hf/model.safetensors"
bad "$tmp/hf" "not JSON"
printf '\020\000\000\000\000\000\000\000\000\000\000\000\377\377\377\377\000\000\000\000\000\000\000\000\000\000\000\000' >"$tmp/l2c.bin"
bad "$tmp/l2c.bin" "not a positive size"
printf 'hello\n' >"$tmp/text.txt"
bad "$tmp/text.txt" "too short"
bad "$tmp/nonexistent.gguf" "No such file"

# ---- usage and the built-in default ------------------------------------------
run 0 "info --help" info --help
grep -q "usage: ropefold info" "$tmp/out" && ok "info --help prints usage" || notok "info --help prints usage"
run 2 "info without a path" info
run 2 "info with an unknown flag" info --frobnicate x
def="$SRCDIR/data/default-model"
run 0 "info on the default model" info "$def"
run 0 "info --json on the default model" info --json "$def"
if command -v python3 >/dev/null 2>&1; then
	got=$(json_get "$tmp/out" "d['format'], d['heads'], d['kv_heads'], d['head_dim'], d['rope']['layout']")
	[ "$got" = "safetensors 4 2 16 half" ] && ok "default model JSON: $got" ||
		notok "default model JSON: '$got'"
else
	skip "default model JSON" "no python3"
fi
run 0 "ropefold with no arguments (no terminal) checks the default" 
run 0 "check --input embed on the default model" check --model "$def" --input embed
run 0 "check --input embed --tokens" check --model "$def" --input embed --tokens 1,5,9,127
run 2 "token id out of range" check --model "$def" --input embed --tokens 1,128
grep -q "out of range" "$tmp/err" && ok "token error names the range" || notok "token error names the range"
run 2 "--layer past the last layer" check --model "$def" --layer 2
grep -q -- "--layer: .* has 2 layers" "$tmp/err" && ok "--layer error names the count" ||
	notok "--layer error names the count"
run 2 "--input embed without a model" check --input embed

# ---- regression inputs kept from fuzzing -------------------------------------
for f in "$SRCDIR"/tests/bad/*; do
	[ -f "$f" ] || continue
	case $f in *.md) continue ;; esac
	"$ROPEFOLD" info "$f" >/dev/null 2>"$tmp/err"
	got=$?
	if [ "$got" -eq 0 ] || [ "$got" -eq 2 ]; then ok "regression input $(basename "$f") (exit $got)"
	else notok "regression input $(basename "$f"): exit $got"; fi
done

# ---- the readers agree across commands -----------------------------------------
# le64 N: N as 8 little-endian bytes.
le64() {
	v=$1 i=0 s=
	while [ "$i" -lt 8 ]; do
		s="$s$(printf '\\%03o' $((v % 256)))"
		v=$((v / 256)) i=$((i + 1))
	done
	printf "$s"
}
# st_folder DIR LEAD SKIP: a 2-layer F32 HF folder (D 8, 2 heads, head dim 4,
# zero weights) whose header starts with LEAD and lacks tensor SKIP.
st_folder() {
	mkdir -p "$1"
	printf '{"model_type": "llama", "hidden_size": 8, "num_attention_heads": 2, "num_hidden_layers": 2}' >"$1/config.json"
	h= at=0
	for l in 0 1; do
		for p in q k v o; do
			name=model.layers.$l.self_attn.${p}_proj.weight
			[ "$name" = "$3" ] && continue
			h="$h${h:+,}\"$name\":{\"dtype\":\"F32\",\"shape\":[8,8],\"data_offsets\":[$at,$((at + 256))]}"
			at=$((at + 256))
		done
	done
	h="$2{$h}"
	{ le64 ${#h}; printf '%s' "$h"; head -c "$at" /dev/zero; } >"$1/model.safetensors"
}
st_folder "$tmp/ws" "   " ""
run 0 "info on a safetensors header with leading whitespace" info "$tmp/ws"
grep -q "^format *safetensors" "$tmp/out" && ok "leading whitespace: format safetensors" ||
	notok "leading whitespace: format $(grep format "$tmp/out")"
run 0 "info on that file itself" info "$tmp/ws/model.safetensors"
grep -q "^format *safetensors" "$tmp/out" && ok "the file itself: format safetensors" ||
	notok "the file itself: format $(grep format "$tmp/out")"
# one_line WHAT TEXT: the last run printed one stderr line with TEXT.
one_line() {
	if [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -qF -- "$2" "$tmp/err"; then ok "$1"
	else notok "$1: wanted one line with '$2'"; sed 's/^/# /' "$tmp/err"; fi
}
st_folder "$tmp/miss" "" model.layers.1.self_attn.v_proj.weight
miss_msg="$tmp/miss: layer 1: tensor model.layers.1.self_attn.v_proj.weight is missing"
run 2 "info: a later layer's tensor missing" info "$tmp/miss"
one_line "info names the file and the tensor" "$miss_msg"
run 2 "check: a later layer's tensor missing" check --model "$tmp/miss"
one_line "check names the file and the tensor" "$miss_msg"
run 2 "fold: a later layer's tensor missing" fold --model "$tmp/miss" --out "$tmp/miss-out"
one_line "fold names the file and the tensor" "$miss_msg"
[ ! -e "$tmp/miss-out" ] && ok "fold wrote nothing" || notok "fold left $tmp/miss-out"
# A GGUF whose tensor name is not UTF-8: info and info --json refuse it alike.
{ printf 'GGUF\003\000\000\000'; le64 1; le64 1; le64 20; printf 'general.architecture'
  printf '\010\000\000\000'; le64 5; printf 'llama'; le64 2; printf '\377x'
  printf '\001\000\000\000'; le64 4; printf '\000\000\000\000'; le64 0; } >"$tmp/name.gguf"
run 2 "info: a tensor name that is not UTF-8" info "$tmp/name.gguf"
one_line "info names the offset" "$tmp/name.gguf: offset 69: tensor name is not UTF-8"
run 2 "info --json: a tensor name that is not UTF-8" info --json "$tmp/name.gguf"
one_line "info --json names the offset" "$tmp/name.gguf: offset 69: tensor name is not UTF-8"

# ---- the shared real checkpoints ---------------------------------------------
models=${ROPEFOLD_SHARED_MODELS:-$SRCDIR/../shared/models}
if [ ! -d "$models" ]; then
	skip "shared checkpoints" "$models not found"
	echo "1..$n"
	exit 0
fi
for f in stories260K.bin stories260K.gguf tiny_llama_hf tiny_llama_hf/model.safetensors; do
	p="$models/$f"
	run 0 "info $f" info "$p"
	run 0 "info --json $f" info --json "$p"
	layers=$(json_get "$tmp/out" "d['layers']")
	case $f in
	stories*) want="interleaved 5 8 4 8" ;;
	*) want="half 2 4 2 24" ;;
	esac
	got=$(json_get "$tmp/out" "d['rope']['layout'], d['layers'], d['heads'], d['kv_heads'], d['head_dim']")
	[ "$got" = "$want" ] && ok "$f: $got" || notok "$f: '$got', expected '$want'"
	l=0
	while [ "$l" -lt "${layers:-0}" ]; do
		run 0 "check --model $f --layer $l: all three levels hold" check --model "$p" --layer "$l"
		l=$((l + 1))
	done
	run 0 "check --model $f --input embed" check --model "$p" --layer 1 --input embed
	run 0 "check --model $f --drop commutes --json" check --model "$p" --drop commutes --json
	got=$(json_get "$tmp/out" "d['levels']['score']['holds']")
	[ "$got" = "False" ] && ok "$f: --drop commutes breaks the score level" ||
		notok "$f: --drop commutes: score holds = '$got'"
done
run 2 "--layer 5 of stories260K" check --model "$models/stories260K.gguf" --layer 5
echo "1..$n"
[ "$fails" -eq 0 ]
