#!/bin/sh
# fold --undo of DeepSeek MLA folds, on the seeded fixtures of
# tests/mla_fixtures.py and tests/family_fixtures.py: a fold kept at a
# precision above the original's comes back bit for bit (cmp against the
# original file), one kept in the original's dtype within its rounding
# (the NumPy MLA of tests/mla_reference.py on the undone weights against
# the original's attention), verify of original and undone says identical
# or equal up to rounding, and a sidecar that does not describe the file,
# or was edited, is refused. Prints TAP; skipped without numpy. Needs
# $ROPEFOLD and $BUILDDIR (set by make check).
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
$FIX --out "$tmp/g.gguf" --format gguf --seed 5 --yarn
$PY "${SRCDIR:-.}/tests/family_fixtures.py" --family deepseek-v2 --dtype bf16 --out "$tmp/bf16"

# undo IN (a fold of ORIG with SIDECAR) into OUT, expecting WORD in its summary
undo() {
	what=$1; in=$2; sc=$3; out=$4; word=$5
	run 0 "undo $what" fold --model "$in" --out "$out" --undo "$sc"
	grep -q "$word" "$tmp/out" && ok "... $(grep "^restored" "$tmp/out" | cut -c1-80)" ||
		{ notok "undo $what: expected '$word'"; sed 's/^/# /' "$tmp/out"; }
}

# bit for bit: f64 folds of an f32 folder and of a GGUF file (heads
# permuted), an f32 fold of a bf16 one, a fold that drops orthogonality
run 0 "fold an MLA folder into f64" fold --model "$tmp/hf" --out "$tmp/f64" --dtype f64
undo "the f64 fold" "$tmp/f64" "$tmp/f64/fold.json" "$tmp/u64" "restored bit for bit"
cmp -s "$tmp/hf/model.safetensors" "$tmp/u64/model.safetensors" &&
	ok "... the undone file is the original, byte for byte" || notok "f64 undo bytes"
run 0 "verify the original against the undone" verify "$tmp/hf" "$tmp/u64"
grep -q "layer 1: identical" "$tmp/out" && ok "... identical" || notok "identical"

run 0 "fold a deepseek2 GGUF into f64, heads permuted" \
	fold --model "$tmp/g.gguf" --out "$tmp/gp.gguf" --dtype f64 --permute-heads
undo "the permuted GGUF fold" "$tmp/gp.gguf" "$tmp/gp.gguf.fold.json" "$tmp/gu.gguf" \
	"restored bit for bit"
cmp -s "$tmp/g.gguf" "$tmp/gu.gguf" && ok "... the undone GGUF is the original, byte for byte" ||
	notok "GGUF undo bytes"

run 0 "fold a bf16 DeepSeek-V2 into f32" fold --model "$tmp/bf16" --out "$tmp/bf" --dtype f32
undo "the f32 fold of bf16" "$tmp/bf" "$tmp/bf/fold.json" "$tmp/bu" "restored bit for bit"
run 0 "verify the bf16 original against the undone" verify "$tmp/bf16" "$tmp/bu"
[ "$(grep -c ": identical" "$tmp/out")" -eq 3 ] && ok "... identical in all 3 layers" ||
	{ notok "bf16 identical"; sed 's/^/# /' "$tmp/out"; }

run 0 "fold without orthogonality (scaled rotations)" \
	fold --model "$tmp/hfq" --out "$tmp/no" --dtype f64 --drop orthogonal
undo "a fold that is not orthogonal (inverted, not transposed)" "$tmp/no" "$tmp/no/fold.json" \
	"$tmp/nou" "restored bit for bit"

# within rounding: an f32 fold of an f32 folder, undone into f32
run 0 "fold an MLA folder keeping f32" fold --model "$tmp/hf" --out "$tmp/f32"
undo "the f32 fold" "$tmp/f32" "$tmp/f32/fold.json" "$tmp/u32" "within the stored dtype's rounding"
for l in 0 1; do
	"$DUMP" "$tmp/hf" $l 16 9 >"$tmp/a.json"
	if $REF --model "$tmp/u32" --dump "$tmp/a.json" --layer $l --tol 1e-6 >"$tmp/o" 2>&1; then
		ok "the undone layer $l computes the original's attention up to f32 ($(cat "$tmp/o"))"
	else
		notok "undone layer $l attention"; sed 's/^/# /' "$tmp/o"
	fi
done
run 0 "verify the original against the f32 undo" verify "$tmp/hf" "$tmp/u32"
[ "$(grep -c ": equal up to f32 rounding" "$tmp/out")" -eq 2 ] &&
	ok "... equal up to f32 rounding in both layers" ||
	{ notok "f32 undo relation"; sed 's/^/# /' "$tmp/out"; }

# refusals: one line, exit 2, nothing written
refuse() {
	what=$1; pat=$2; shift 2
	rm -rf "$tmp/r"
	"$ROPEFOLD" fold "$@" --out "$tmp/r" >"$tmp/out" 2>"$tmp/err"
	got=$?
	if [ "$got" -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q -- "$pat" "$tmp/err" &&
	   [ ! -e "$tmp/r" ]; then
		ok "$what is refused: $(cut -c1-110 "$tmp/err")"
	else
		notok "$what (exit $got)"; sed 's/^/# /' "$tmp/err"
	fi
}
refuse "the sidecar of another fold" "the sidecar belongs to another file" \
	--model "$tmp/f32" --undo "$tmp/f64/fold.json"
sed 's/"seed": \([0-9]*\)7,/"seed": \18,/' "$tmp/f32/fold.json" >"$tmp/edited.json"
refuse "a sidecar whose seed was edited" "do not match their checksum" \
	--model "$tmp/f32" --undo "$tmp/edited.json"
"$PY" - "$tmp/f32/fold.json" "$tmp/old.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
for l in d["layers"]:
    del l["mla"], l["checksum"]
json.dump(d, open(sys.argv[2], "w"))
PYEOF
refuse "an older sidecar recording only the seeds" "recorded by its seed alone" \
	--model "$tmp/f32" --undo "$tmp/old.json"
refuse "an MLA sidecar on a standard checkpoint" "recorded for D" \
	--model "${SRCDIR:-.}/data/default-model" --undo "$tmp/f32/fold.json"

echo "1..$n"
[ "$fails" -eq 0 ]
