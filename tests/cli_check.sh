#!/bin/sh
# End-to-end tests of `ropefold check`: exit codes, JSON keys, bad flags.
# Prints TAP. Needs $ROPEFOLD (set by make check); jq when present.
: "${ROPEFOLD:=./ropefold}"
. "${SRCDIR:-.}/tests/tap.sh"

# expect STATUS DESCRIPTION ARGS...: ropefold check ARGS, compare the exit status.
expect() { want=$1; what=$2; shift 2; run "$want" "$what" check "$@"; }
# bad ARGS...: exit 2, exactly one stderr line naming the flag ($1).
bad() {
	flag=$1
	"$ROPEFOLD" check "$@" >"$tmp/out" 2>"$tmp/err"
	got=$?
	lines=$(wc -l <"$tmp/err")
	if [ "$got" -eq 2 ] && [ "$lines" -eq 1 ] && grep -q -- "${flag%%=*}" "$tmp/err" &&
	   [ ! -s "$tmp/out" ]; then
		ok "bad flag: $*"
	else
		notok "bad flag: $* (exit $got, $lines stderr lines)"; sed 's/^/# /' "$tmp/err"
	fi
}

echo "1..62"
expect 0 "default check holds"
expect 0 "GQA with biases holds" --heads 8 --kv-heads 2 --with-bias --rope interleaved
expect 0 "partial rotary holds" --head-dim 32 --rotary-dim 8
expect 0 "dropped commutes is not guaranteed: exit 0" --drop commutes
expect 0 "rotate qkv without o: exit 0" --rotate qkv
expect 0 "permute heads: residual holds" --permute-heads --heads 4 --kv-heads 2
expect 0 "float32" --precision f32
expect 0 "every rope scaling" --rope-scaling yarn:4
expect 0 "llama3 scaling" --rope-scaling llama3:8 --rope-theta 500000
# A tolerance below the float32 roundoff floor: guaranteed levels break.
expect 1 "float32 with a float64 tolerance breaks a guaranteed level" --precision f32 --tol 1e-12

# --rope on a checkpoint keeps the checkpoint's own layout for the
# evaluation and builds the fold for the named one.
dm="${SRCDIR:-.}/data/default-model"
expect 0 "a checkpoint with its own layout named" --model "$dm" --rope half
expect 1 "a checkpoint's fold built for the wrong layout breaks" --model "$dm" --rope interleaved
if grep -q "built for the interleaved layout" "$tmp/out" && grep -q "^rope    half" "$tmp/out"; then
	ok "the table names the fold's layout and keeps the checkpoint's"
else
	notok "the table names the fold's layout and keeps the checkpoint's"; sed 's/^/# /' "$tmp/out"
fi
if "$ROPEFOLD" check --json --model "$dm" --rope interleaved 2>/dev/null |
	grep -q '"layout": "interleaved"'; then
	ok "json: fold.layout"
else
	notok "json: fold.layout"
fi

# JSON: the keys of SPEC 2.5.
if "$ROPEFOLD" check --json --drop commutes >"$tmp/j.json" 2>"$tmp/err"; then
	ok "check --json runs"
else
	notok "check --json runs"
fi
if command -v jq >/dev/null 2>&1; then
	j() { jq -e "$1" "$tmp/j.json" >/dev/null 2>&1; }
	for key in '.config' '.fold.rotate == "qkvo"' '.fold.drop == ["commutes"]' \
		'.fold.kind == "haar"' '.fold.permute_heads == false' \
		'.levels.score.guaranteed == false' '.levels.score.holds == false' \
		'.levels.head.holds == false' '.levels.residual.holds == false' \
		'(.levels.score.by_offset | length) == 32' \
		'.levels.score.by_offset[0] < 1e-12' '.levels.score.by_offset[5] > 1e-6' \
		'.levels.head | has("max_abs_err") and has("max_rel_err") and has("eps_units") and has("worst")' \
		'.levels.residual.worst | has("token")' '.diagnostics.commutator_max > 0' \
		'(.explanation | length) > 20'; do
		if j "$key"; then ok "json: $key"; else notok "json: $key"; fi
	done
	"$ROPEFOLD" check --json --precision f32 --tol 1e-12 >"$tmp/j.json" 2>/dev/null
	if j '.levels.residual.guaranteed == true and .levels.residual.holds == false'; then
		ok "json: guaranteed but broken level reported"
	else notok "json: guaranteed but broken level reported"; fi
	"$ROPEFOLD" check --json --permute-heads --heads 4 --kv-heads 2 >"$tmp/j.json" 2>/dev/null
	if j '.levels.score.holds == false and .levels.head.holds == false and .levels.residual.holds == true'; then
		ok "json: permute-heads separates residual from head"
	else notok "json: permute-heads separates residual from head"; fi
else
	i=0
	while [ $i -lt 18 ]; do ok "# SKIP jq not installed"; i=$((i + 1)); done
fi

bad --d-model abc
bad --d-model 0
bad --heads -3
bad --heads 6 --kv-heads 4
bad --kv-heads 0
bad --head-dim 15
bad --rotary-dim 32
bad --rotary-dim 5
bad --seq 0
bad --seq 99999999
bad --seed x
bad --rope sideways
bad --rope-theta -4
bad --rope-scaling magic:2
bad --rotate qkz
bad --drop gravity
bad --kind spiral
bad --precision f16
bad --tol nan
bad --input somewhere
bad --frobnicate
bad --d-model 131072 --heads 4096 --head-dim 4096
bad --seq
# Requests past physical memory are refused up front (machines under 60 GiB).
mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo 2>/dev/null)
if [ -n "$mem_kb" ] && [ "$mem_kb" -lt 62914560 ]; then
	bad --seq 65536
	bad --d-model 131072 --heads 128 --head-dim 128
else
	skip "--seq 65536 refused" "this machine has 60 GiB or more"
	skip "--d-model 131072 refused" "this machine has 60 GiB or more"
fi

"$ROPEFOLD" --version >"$tmp/out" 2>&1 && grep -q '^ropefold ' "$tmp/out" && ok "--version" || notok "--version"
"$ROPEFOLD" check --help >"$tmp/out" 2>&1 && grep -q -- '--permute-heads' "$tmp/out" &&
	grep -q -- 'default' "$tmp/out" && ok "check --help lists flags" || notok "check --help"
"$ROPEFOLD" nonsense >"$tmp/out" 2>"$tmp/err"; [ $? -eq 2 ] && ok "unknown mode exits 2" || notok "unknown mode"
"$ROPEFOLD" </dev/null >"$tmp/out" 2>&1; rc=$?
[ $rc -eq 0 ] && grep -q 'residual' "$tmp/out" && ok "no args on a non-terminal prints a check report" ||
	notok "no args on a non-terminal (exit $rc)"

[ "$fails" -eq 0 ]
