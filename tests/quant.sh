#!/bin/sh
# ggml's block quantizations end to end: the NumPy reference's own check
# (tests/reference_quant.py, blocks worked out by hand), GGUF files of
# every quantized type written by tests/gguf_quant_fixtures.py (a Q4_K_M
# mixture and a zoo of all types), what ropefold reads from them
# (tests/dump_tensor) against the reference bit for bit, info's dtype
# mixture against the generator's, check, fold and verify on them, and bad
# input (a NaN or infinite block scale, a row that is not a multiple of
# the block, an unknown type id, a truncated block): exit 2 with one line.
# Prints TAP; skipped without numpy.
: "${ROPEFOLD:=./ropefold}"
: "${SRCDIR:=.}"
: "${BUILDDIR:=.}"
PY=/usr/bin/python3
if ! "$PY" -c 'import numpy' 2>/dev/null; then
	echo "1..0 # SKIP python3-numpy is not installed"
	exit 0
fi
. "$SRCDIR/tests/tap.sh"
gen="$SRCDIR/tests/gguf_quant_fixtures.py"
ref="$SRCDIR/tests/reference_quant.py"
dump="$BUILDDIR/tests/dump_tensor"

# relay CMD...: the TAP lines CMD prints, as this script's own; a failing
# CMD that printed no failure is one.
relay() {
	"$@" >"$tmp/relay" 2>"$tmp/relay.err"
	rc=$?
	bad=0
	while IFS= read -r line; do
		case $line in
		"ok "*) ok "${line#ok * - }" ;;
		"not ok "*) notok "${line#not ok * - }"; bad=1 ;;
		esac
	done <"$tmp/relay"
	if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
		notok "$*: exit $rc"
		sed 's/^/# /' "$tmp/relay.err" | head -5
	fi
}

# refused WHAT FILE TEXT MODE ARGS...: ropefold MODE ARGS exits 2 with one
# stderr line naming FILE and holding TEXT, and prints nothing.
refused() {
	what=$1 file=$2 text=$3
	shift 3
	"$ROPEFOLD" "$@" >"$tmp/out" 2>"$tmp/err"
	got=$?
	lines=$(wc -l <"$tmp/err")
	if [ "$got" -eq 2 ] && [ "$lines" -eq 1 ] && grep -qF "$file" "$tmp/err" &&
	   grep -qF -- "$text" "$tmp/err" && [ ! -s "$tmp/out" ]; then
		ok "$what: exit 2, one line: $text"
	else
		notok "$what: exit $got, $lines stderr lines, wanted '$text'"
		sed 's/^/# /' "$tmp/err" | head -5
	fi
}

relay "$PY" "$ref" selfcheck

for kind in q4_k_m zoo; do
	f="$tmp/$kind.gguf"
	if ! "$PY" "$gen" --kind $kind --out "$f" --seed 7 --expect "$tmp/$kind.json"; then
		notok "$kind: the generator failed"
		continue
	fi
	run 0 "info --json on the $kind fixture" info --json "$f"
	got=$("$PY" -c '
import json, sys
d, e = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
print("same" if d["dtypes"] == e["dtypes"] and d["attention_dtypes"] == e["attention_dtypes"]
      else "%r %r" % (d.get("dtypes"), e["dtypes"]))' "$tmp/out" "$tmp/$kind.json")
	[ "$got" = same ] && ok "$kind: info's dtype mixture is the generator's" ||
		notok "$kind: info's dtype mixture: $got"
	mkdir "$tmp/dump-$kind"
	if "$dump" "$f" "$tmp/dump-$kind" 2>"$tmp/err"; then
		ok "$kind: every tensor read whole, in pieces of 77 and as float agrees"
	else
		notok "$kind: dump_tensor failed"
		sed 's/^/# /' "$tmp/err" | head -5
	fi
	relay "$PY" "$ref" compare "$f" "$tmp/dump-$kind"
	for l in 0 1 2 3; do
		run 0 "$kind: check --model, layer $l" check --model "$f" --layer $l
	done
done

f="$tmp/q4_k_m.gguf"
run 0 "info on the Q4_K_M fixture" info "$f"
grep -qx "dtypes      Q4_K 25, F32 9, Q6_K 5 (39 tensors)" "$tmp/out" &&
	ok "info prints the file's mixture" || notok "info prints the file's mixture"
grep -qx "            attention q Q4_K 4; k Q4_K 4; v Q4_K 2, Q6_K 2; o Q4_K 4" "$tmp/out" &&
	ok "info prints the attention weights' mixture" ||
	notok "info prints the attention weights' mixture"
grep -qx "dtype       Q4_K" "$tmp/out" && ok "info keeps its dtype line" ||
	notok "info keeps its dtype line"

# rotated weights cannot keep their blocks: stored as F16 by default (one
# stderr line says so), as F32 with --dtype f32; both verify
# (tests/quant_fold_verify.sh has the requantized folds and the tolerances).
run 0 "fold of the Q4_K_M fixture: rotated tensors as F16" fold --model "$f" \
	--out "$tmp/folded-f16.gguf"
grep -q "16 rotated Q4_K/Q6_K tensors cannot keep their blocks.*stored as F16" "$tmp/err" &&
	ok "fold says the rotated Q4_K/Q6_K tensors went to F16" ||
	notok "fold says the rotated Q4_K/Q6_K tensors went to F16"
run 0 "verify: the F16 fold of the Q4_K_M fixture is a fold" verify "$f" "$tmp/folded-f16.gguf"
run 0 "fold --dtype f32 of the Q4_K_M fixture" fold --model "$f" --out "$tmp/folded.gguf" \
	--dtype f32
run 0 "verify: the f32 fold of the Q4_K_M fixture is a fold" verify "$f" "$tmp/folded.gguf"

# ---- bad input ------------------------------------------------------------------
for kind in nan-scale inf-scale bad-row bad-type truncated; do
	"$PY" "$gen" --kind $kind --out "$tmp/$kind.gguf" --seed 7 || notok "$kind: the generator failed"
done
run 0 "info reads no weights: a NaN scale is not its business" info "$tmp/nan-scale.gguf"
refused "check on a NaN f16 scale" "$tmp/nan-scale.gguf" \
	"blk.1.attn_k.weight: Q4_K block 2 (offset" check --model "$tmp/nan-scale.gguf" --layer 1
refused "check on an infinite f16 scale" "$tmp/inf-scale.gguf" \
	"has a NaN or infinite scale d" check --model "$tmp/inf-scale.gguf" --layer 1
run 0 "the NaN scale's layer aside, the file reads" check --model "$tmp/nan-scale.gguf" --layer 0
refused "a row not a multiple of 256" "$tmp/bad-row.gguf" \
	"tensor extra.weight: row length 288 not a multiple of Q4_K's block of 256" \
	info "$tmp/bad-row.gguf"
refused "an unknown type id" "$tmp/bad-type.gguf" "unknown tensor type 31" \
	info "$tmp/bad-type.gguf"
refused "a truncated block" "$tmp/truncated.gguf" "runs past the end of the file" \
	info "$tmp/truncated.gguf"
echo "1..$n"
[ "$fails" -eq 0 ]
