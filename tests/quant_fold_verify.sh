#!/bin/sh
# verify at the quantization error, and fold of block-quantized tensors, on
# the seeded Q4_K_M-style fixture of tests/gguf_quant_fixtures.py and an
# F16 model it is a quantization of (tests/reference_quant_bound.py near):
# the F16 model and its Q4_K_M are "equal up to Q4_K/Q6_K quantization";
# a fold of the Q4_K_M (stored F16, or quantized again with --dtype) is a
# commuting fold within that error and a broken one is not; each part's
# tolerance is the float tolerance plus the bounds NumPy derives from the
# formats and the stored scales; the error a requantization adds is what
# NumPy measures between two folds; untouched tensors are copied byte for
# byte; an undo quantizes the originals again. Prints TAP; skipped without
# numpy.
: "${ROPEFOLD:=./ropefold}"
: "${SRCDIR:=.}"
PY=/usr/bin/python3
if ! "$PY" -c 'import numpy' 2>/dev/null; then
	echo "1..0 # SKIP python3-numpy is not installed"
	exit 0
fi
. "$SRCDIR/tests/tap.sh"
gen="$SRCDIR/tests/gguf_quant_fixtures.py"
qb="$SRCDIR/tests/reference_quant_bound.py"

# relay CMD...: the TAP lines CMD prints, as this script's own.
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

# has TEXT WHAT: $tmp/out holds the fixed string TEXT.
has() {
	grep -qF -- "$1" "$tmp/out" && ok "$2" || { notok "$2"; sed 's/^/# /' "$tmp/out" | head -8; }
}

# jsonis FILE EXPR WANT WHAT: the Python expression EXPR over the document d
# of FILE prints WANT.
jsonis() {
	got=$("$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
		"$1" "$2" 2>&1)
	[ "$got" = "$3" ] && ok "$4" || notok "$4: got $got, wanted $3"
}

q="$tmp/q4km.gguf"
f16="$tmp/f16.gguf"
if ! "$PY" "$gen" --kind q4_k_m --out "$q" --seed 7 || ! "$PY" "$qb" near "$q" "$f16" 3; then
	notok "the fixtures could not be made"
	echo "1..$n"
	exit 1
fi

# ---- an F16 model against its quantization ---------------------------------------
run 0 "verify: the F16 model against its Q4_K_M" verify "$f16" "$q"
has "layer 0: equal up to Q4_K quantization" "layer 0 (all Q4_K) is equal up to Q4_K quantization"
has "layer 2: equal up to Q4_K/Q6_K quantization" \
	"layer 2 (W_v in Q6_K) is equal up to Q4_K/Q6_K quantization"
has "B is equivalent to A in every chosen layer" "the F16 model and its Q4_K_M are equivalent"
run 0 "verify the other way: the Q4_K_M against the F16 model" verify "$q" "$f16"
run 0 "verify --json: the F16 model against its Q4_K_M" verify --json "$f16" "$q"
cp "$tmp/out" "$tmp/v-f16.json"
jsonis "$tmp/v-f16.json" '[l["relation"] for l in d["layers"]]' \
	"['rounding', 'rounding', 'rounding', 'rounding']" "JSON: every layer's relation is rounding"
jsonis "$tmp/v-f16.json" 'd["layers"][3]["quantization"]' "['Q4_K', 'Q6_K']" \
	"JSON: layer 3's quantization types"
jsonis "$tmp/v-f16.json" \
	'd["layers"][3]["part_tol"]["v"] < d["layers"][3]["part_tol"]["k"] / 2' True \
	"JSON: layer 3's Q6_K W_v is judged tighter than its Q4_K W_k"
relay "$PY" "$qb" check-verify "$f16" "$q" "$tmp/v-f16.json"
# at f16's tolerance alone the quantization is a difference no rotation explains
run 1 "verify --tol 3e-3 (f16's, without the quantization bound): not equivalent" \
	verify --tol 3e-3 "$f16" "$q"

# ---- fold: rotated tensors as F16 --------------------------------------------------
run 0 "fold of the Q4_K_M: rotated tensors as F16" fold --model "$q" --out "$tmp/fold16.gguf"
grep -q "16 rotated Q4_K/Q6_K tensors cannot keep their blocks.*stored as F16" "$tmp/err" &&
	ok "fold says so in one stderr line" || notok "fold says so in one stderr line"
run 0 "info on the F16 fold" info --json "$tmp/fold16.gguf"
jsonis "$tmp/out" 'd["attention_dtypes"]["k"]' "{'F16': 4}" "the rotated W_k are F16"
jsonis "$tmp/out" 'd["dtypes"]["Q4_K"]' 11 "the untouched tensors keep Q4_K (embeddings, MLP)"
same=$("$PY" -c '
import sys
sys.path.insert(0, sys.argv[3])
import reference_quant as rq
a, b = rq.read_gguf(sys.argv[1]), rq.read_gguf(sys.argv[2])
names = [n for n in a if "attn_" not in n or "norm" in n]
print(sum(a[n] == b[n] for n in names), len(names))' "$q" "$tmp/fold16.gguf" "$SRCDIR/tests")
set -- $same
[ "$1" = "$2" ] && [ "$1" -gt 0 ] && ok "every untouched tensor copied byte for byte ($1)" ||
	notok "untouched tensors copied byte for byte: $same"
run 0 "verify: the F16 fold of the Q4_K_M" verify "$q" "$tmp/fold16.gguf"
has "layer 0: commuting fold, up to Q4_K quantization" \
	"a commuting fold, up to Q4_K quantization"

# the F16 fold carries the Q4_K_M's quantization: its sidecar records the bound, so
# against the F16 model it is a commuting fold within it; without the sidecar it is not
grep -q '"quant_bound_in"' "$tmp/fold16.gguf.fold.json" &&
	ok "the sidecar records the input's quantization bound" ||
	notok "the sidecar records the input's quantization bound"
run 0 "verify: the F16 model against the F16 fold of its Q4_K_M (sidecar beside it)" \
	verify "$f16" "$tmp/fold16.gguf"
has "layer 0: commuting fold, up to Q4_K quantization" \
	"a commuting fold up to the quantization the sidecar records"
mkdir "$tmp/bare" && cp "$tmp/fold16.gguf" "$tmp/bare/"
run 1 "verify: the same fold without its sidecar is not equivalent" verify "$f16" \
	"$tmp/bare/fold16.gguf"

# a fold with a rotation that mixes frequency pairs is not passed off as quantization
run 0 "fold --drop commutes of the Q4_K_M" fold --model "$q" --out "$tmp/broken.gguf" \
	--drop commutes
run 1 "verify: the broken fold is not a fold" verify --json "$q" "$tmp/broken.gguf"
jsonis "$tmp/out" 'd["first_break"]["why"]' mixes-pairs "the break: the rotation mixes pairs"
jsonis "$tmp/out" 'len(d["first_break"]["mixed_pairs"]) > 0' True "the mixed pairs are listed"

# ---- fold: quantized again ---------------------------------------------------------
run 0 "fold --dtype q8_0 --json" fold --model "$q" --out "$tmp/fold8.gguf" --dtype q8_0 --json
cp "$tmp/out" "$tmp/fold8.json"
jsonis "$tmp/fold8.json" 'd["quantization"]["quantized_to"], d["stored_dtype"]' \
	"('q8_0', 'q8_0')" "JSON: quantized to q8_0"
jsonis "$tmp/fold8.json" 'd["quantization"]["input_types"]' "['Q4_K', 'Q6_K']" \
	"JSON: the input's types"
jsonis "$tmp/fold8.json" \
	'd["quantization"]["added_rel_err"] < d["quantization"]["input_bound_rel"] / 5' True \
	"Q8_0 adds far less error than the input's own Q4_K quantization bound"
relay "$PY" "$qb" check-added "$tmp/fold16.gguf" "$tmp/fold8.gguf" "$tmp/fold8.json"
run 0 "verify --json: the Q8_0 fold of the Q4_K_M" verify --json "$q" "$tmp/fold8.gguf"
cp "$tmp/out" "$tmp/v-fold8.json"
jsonis "$tmp/v-fold8.json" 'd["layers"][0]["description"]' \
	"commuting fold, up to Q8_0/Q4_K quantization" "a commuting fold, up to Q8_0/Q4_K quantization"
relay "$PY" "$qb" check-verify "$q" "$tmp/fold8.gguf" "$tmp/v-fold8.json"
run 0 "verify: the F16 model against the Q8_0 fold of its Q4_K_M" verify "$f16" "$tmp/fold8.gguf"
has "layer 0: commuting fold, up to Q8_0/Q4_K quantization" \
	"up to Q8_0 and the Q4_K the sidecar records"
run 0 "fold --dtype q4_k" fold --model "$q" --out "$tmp/fold4.gguf" --dtype q4_k
has "quantized to Q4_K: added relative error" "the summary names the added error"
run 0 "verify: the Q4_K fold of the Q4_K_M" verify "$q" "$tmp/fold4.gguf"

# ---- undo: quantized again, not bit for bit -----------------------------------------
run 0 "undo of the Q8_0 fold" fold --model "$tmp/fold8.gguf" --out "$tmp/undo.gguf" \
	--undo "$tmp/fold8.gguf.fold.json"
has "quantized again to Q4_K/Q6_K" "the undo says it quantized the originals again"
run 0 "info of the undo" info --json "$tmp/undo.gguf"
cp "$tmp/out" "$tmp/undo-info.json"
run 0 "info of the original" info --json "$q"
jsonis "$tmp/out" "d['dtypes'] == json.load(open('$tmp/undo-info.json'))['dtypes']" True \
	"the undo has the original's dtype mixture"
run 0 "verify: the undo against the original" verify "$q" "$tmp/undo.gguf"
has "layer 2: equal up to Q4_K/Q6_K quantization" "the undo equals the original up to quantization"

# ---- a real checkpoint quantized by fold ---------------------------------------------
# stories260K.gguf ($ROPEFOLD_SHARED_MODELS, else $SRCDIR/../shared/models): F32 real
# weights, D = 64, so rows of whole 32-blocks but not of 256
M=${ROPEFOLD_SHARED_MODELS:-$SRCDIR/../shared/models}
s="$M/stories260K.gguf"
if [ -f "$s" ]; then
	for t in q8_0 q4_0 iq4_nl; do
		run 0 "stories260K: fold --dtype $t" fold --model "$s" --out "$tmp/s-$t.gguf" --dtype $t
		has "quantized to $(echo $t | tr a-z A-Z): relative error" "stories260K: $t's error reported"
		run 0 "stories260K: verify the $t fold" verify "$s" "$tmp/s-$t.gguf"
		has "layer 0: commuting fold, up to $(echo $t | tr a-z A-Z) quantization" \
			"stories260K: a commuting fold up to $t quantization"
	done
	run 2 "stories260K: fold --dtype q4_k refused (rows of 64)" fold --model "$s" \
		--out "$tmp/s-q4_k.gguf" --dtype q4_k
	grep -qF "rows of 64 values are not whole Q4_K blocks of 256" "$tmp/err" &&
		ok "the refusal names the row length and the block" ||
		notok "the refusal names the row length and the block"
else
	skip "stories260K: fold --dtype q8_0, q4_0, iq4_nl and verify" "stories260K.gguf not in $M"
fi

# ---- refused -------------------------------------------------------------------------
run 2 "fold --dtype q8_k (ggml's dot-product intermediate) refused" fold --model "$q" \
	--out "$tmp/no.gguf" --dtype q8_k
[ ! -e "$tmp/no.gguf" ] && ok "the refused fold wrote nothing" || notok "the refused fold wrote"
echo "1..$n"
[ "$fails" -eq 0 ]
