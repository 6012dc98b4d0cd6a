#!/bin/sh
# Every flag of every mode against bad values: exit 2, nothing on stdout,
# one line on stderr that names the mode and the flag and says what a value
# must be. The flags come from each mode's --help, so a flag added to the
# table in tui/shared/options.c is tested here from then on, and fails until it
# has a rule below. Prints TAP; needs $ROPEFOLD (set by make check).
: "${ROPEFOLD:=./ropefold}"
. "${SRCDIR:-.}/tests/tap.sh"
# absolute paths, then run in the scratch folder: a value a flag takes by
# mistake as an output path lands there
ROPEFOLD=$(cd "$(dirname "$ROPEFOLD")" && pwd)/$(basename "$ROPEFOLD")
dm=$(cd "${SRCDIR:-.}/data/default-model" && pwd)
cd "$tmp" || exit 99

# rule FLAG: an extended regular expression the message must match: the
# flag's valid values, as each flag's help and SPEC 2.5 state them (the
# numeric bounds are the program's documented limits); empty for a flag
# that nobody wrote a rule for yet.
rule() {
	case $1 in
	--model|--out|--undo|--against|--plot) echo "a path (to a checkpoint|for the output|to a sidecar|for the figure)" ;;
	--layer) echo "a layer index from 0 to [0-9]+" ;;
	--d-model) echo "a size from 1 to 131072" ;;
	--heads|--kv-heads) echo "a count from 1 to 4096" ;;
	--head-dim) echo "an even size from 2 to 4096" ;;
	--seq) echo "a length from 1 to 65536" ;;
	--seed) echo "a whole number from 0 to [0-9]+" ;;
	--rope) echo "'interleaved' or 'half'" ;;
	--rotary-dim) echo "an even size from 0 to 4096" ;;
	--rope-theta) echo "a decimal number above 0 and at most 1e12" ;;
	--rope-scaling) echo "(none, or RULE:F with RULE linear, ntk, yarn or llama3 and F|F must be) a decimal number from 1 to 1e6" ;;
	--input) echo "'random' or 'embed'" ;;
	--tokens) echo "a comma-separated list of token ids, each a whole number from 0 to 4294967295" ;;
	--precision) echo "'f64' or 'f32'" ;;
	--tol) echo "a decimal number above 0 and below 1e6" ;;
	--rotate) echo "a set of the letters q, k, v, o \(each once\) or 'none'" ;;
	--drop) echo "a comma-separated list of orthogonal, commutes, shared-qk, per-head, gqa-consistent, v-same, bias" ;;
	--kind) echo "haar, hadamard, pair-swap, pair-reflect, layout-mismatch or pair-mix \(pair-mix:EPS with 0 < EPS <= 1\)" ;;
	--repeat) echo "a count from 1 to 1000" ;;
	--layers) echo "all, N or N\.\.M \(layer indices, N <= M\)" ;;
	--dtype) echo "'keep', a float .* or a GGUF block quantization" ;;
	--top) echo "a count from 1 to 1000" ;;
	--generate) echo "a count from 0 to 100000" ;;
	--residual) echo "'hadamard', 'haar' or 'none'" ;;
	--vo) echo "'hadamard', 'haar' or 'same'" ;;
	--r1) echo "none, fused or unfused" ;;
	--r3) echo "none, online or folded" ;;
	--kv-lora-rank) echo "a size from 1 to 131072" ;;
	--q-lora-rank) echo "a size from 0 to 131072" ;;
	--qk-nope-dim|--v-head-dim) echo "a size from 1 to 4096" ;;
	--qk-rope-dim) echo "an even size from 2 to 4096" ;;
	*) echo "" ;;
	esac
}

# base MODE: the arguments that make the rest of a command line valid
base() {
	case $1 in
	fold) echo "--model $dm --out $tmp/folded" ;;
	verify) echo "$dm $dm" ;;
	info) echo "$dm" ;;
	logits) echo "--model $dm" ;;
	*) echo "" ;;
	esac
}

# refused MODE FLAG ARG...: ropefold MODE BASE ARG... (ARG: the flag, its
# value if any), the flag's own copy in BASE left out; 0 when refused as it
# must be: exit 2, nothing on stdout, one stderr line naming MODE and FLAG
# and matching the flag's rule; else 1 with the reason in $why.
refused() {
	mode=$1; flag=$2; shift 2
	args=$(base "$mode" | sed "s#$flag [^ ]*##")
	# shellcheck disable=SC2086
	"$ROPEFOLD" "$mode" $args "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?
	lines=$(wc -l <"$tmp/err")
	why="exit $rc, $lines stderr lines: $(head -c 300 "$tmp/err")"
	[ "$rc" -eq 2 ] && [ "$lines" -eq 1 ] && [ ! -s "$tmp/out" ] &&
		grep -q -- "^ropefold $mode: $flag: " "$tmp/err" &&
		grep -Eq -- "${rule_re:-$(rule "$flag")}" "$tmp/err"
}

# The bad values: empty, negative, trailing garbage, NaN, Inf, 1e308, hex,
# past size_t, a leading and a trailing space. A path flag gets only the
# empty one: any other string is a file name, refused (or written) by the
# mode with a line naming the file.
set -- "" "-1" "5x" "nan" "inf" "1e308" "0x10" "18446744073709551616" " 5" "5 "
for mode in check tui tour fold verify info bench logits; do
	"$ROPEFOLD" "$mode" --help >"$tmp/help" 2>&1
	# "  --flag META  help" takes a value, "  --flag  help" none
	flags=$(sed -n 's/^  \(--[a-z0-9-]*\) [^ ].*/\1=/p; s/^  \(--[a-z0-9-]*\)  .*/\1/p' "$tmp/help")
	if [ -z "$flags" ]; then
		notok "$mode --help lists flags"
		continue
	fi
	for entry in $flags; do
		case $entry in
		--help) continue ;;
		*=)
			flag=${entry%=}
			if [ -z "$(rule "$flag")" ]; then
				notok "$mode $flag: no rule in tests/cli_flags.sh"
				continue
			fi
			bad=""
			for v in "$@"; do
				case $flag in --model|--out|--undo|--against|--plot) [ -n "$v" ] && continue ;; esac
				refused "$mode" "$flag" "$flag" "$v" || bad="$bad
#   '$v': $why"
			done
			refused "$mode" "$flag" "$flag" || bad="$bad
#   (no value at the end of argv): $why"
			# the value forgotten before the next flag ("--undo --model X"):
			# refused naming that flag, not taken as a path or a value
			refused "$mode" "$flag" "$flag" --help && grep -q "before the flag --help" "$tmp/err" ||
				bad="$bad
#   (the next flag where the value belongs): $why"
			if [ -z "$bad" ]; then
				ok "$mode $flag: every bad value refused in one line with the rule"
			else
				notok "$mode $flag: bad values not refused as they must be$bad"
			fi
			;;
		*)
			rule_re="takes no value"
			refused "$mode" "$entry" "$entry=1"
			got=$?
			rule_re=""
			if [ "$got" -eq 0 ]; then
				ok "$mode $entry takes no value"
			else
				notok "$mode $entry=1: $why"
			fi
			;;
		esac
	done
done
echo "1..$n"
[ "$fails" -eq 0 ]
