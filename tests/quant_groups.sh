#!/bin/sh
# verify judges a quantized tensor per kv group at its own blocks' steps:
# tests/gguf_quant_fixtures.py --kind scale-split stores one W_k in Q8_0
# whose kv group 0 has a large relative step (outlier blocks at a large
# scale, most of the tensor's norm) and group 1 a small one; NumPy
# (tests/reference_quant_bound.py group-break, from ggml's definitions)
# writes the dequantized model as F32 with one group's rows moved by a
# break eps between group 1's own bound and the whole tensor's. In group 1
# the break exceeds its blocks' bound: not equivalent (a per-tensor bound
# would have passed it); the same break in group 0 is within that group's
# own quantization. Prints TAP; skipped without numpy.
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

"$PY" "$gen" --kind scale-split --out "$tmp/q.gguf" --seed 3
for g in 0 1; do
	"$PY" "$qb" group-break "$tmp/q.gguf" "$tmp/b$g.gguf" $g 5 >"$tmp/n$g.json"
done
# the fixture does what it is for: group 1's bound well below the tensor's,
# the break between them, group 0's bound above it
if "$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
g0, g1 = d["group_bound"]
sys.exit(0 if g1 < d["eps"] < d["tensor_bound"] and d["eps"] < g0 and
         d["tensor_bound"] > 2 * g1 else 1)' "$tmp/n1.json"; then
	ok "NumPy: group 1's bound < the break < the tensor's bound ($(cat "$tmp/n1.json"))"
else
	notok "the scale-split fixture's bounds"; sed 's/^/# /' "$tmp/n1.json"
fi

run 1 "verify: a break in the small-step group is caught" verify "$tmp/q.gguf" "$tmp/b1.gguf" \
	--layer 0
grep -q "NOT equivalent at the score level, kv group 1, query head 2, W_k" "$tmp/out" &&
	ok "... at kv group 1's W_k" || { notok "break at kv group 1"; sed 's/^/# /' "$tmp/out"; }
# its tolerance there: group 1's own bound (NumPy's) plus the float tolerance
tol=$(sed -n 's/.*no rotation explains (relative residual [0-9.e-]*, tolerance \([0-9.e-]*\)).*/\1/p' "$tmp/out")
if [ -n "$tol" ] && "$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if abs(float(sys.argv[2]) - d["group_bound"][1]) <= 1e-2 * d["group_bound"][1] else 1)' \
	"$tmp/n1.json" "$tol"; then
	ok "... judged at group 1's own bound ($tol)"
else
	notok "group 1's tolerance ($tol)"; sed 's/^/# /' "$tmp/out"
fi
run 0 "verify: the same break in the large-step group is within its quantization" \
	verify "$tmp/q.gguf" "$tmp/b0.gguf" --layer 0
grep -q "layer 0: equal up to Q8_0/Q4_K quantization" "$tmp/out" &&
	ok "... equal up to Q8_0/Q4_K quantization" ||
	{ notok "group 0 within quantization"; sed 's/^/# /' "$tmp/out"; }
# the printed tolerance stays the tensor's
grep -q "tolerance 1.79e-07 plus the quantization bound: W_q [0-9.e-]*, W_k 0.023" "$tmp/out" &&
	ok "... the printed W_k tolerance is the tensor's bound" ||
	{ notok "printed tolerance"; sed 's/^/# /' "$tmp/out"; }
echo "1..$n"
[ "$fails" -eq 0 ]
