#!/bin/sh
# check on a Qwen2-VL checkpoint (the seeded fixture of
# tests/family_fixtures.py) explains M-RoPE section by section for text
# positions: the text line and config.mrope of --json name each section's
# pairs, as HF's rope_scaling.mrope_section splits them (read here from
# the fixture's config.json), and a commuting fold holds. Prints TAP;
# skipped without numpy.
: "${ROPEFOLD:=./ropefold}"
: "${SRCDIR:=.}"
PY=/usr/bin/python3
if ! "$PY" -c 'import numpy' 2>/dev/null; then
	echo "1..0 # SKIP python3-numpy is not installed"
	exit 0
fi
. "$SRCDIR/tests/tap.sh"
"$PY" "$SRCDIR/tests/family_fixtures.py" --family qwen2-vl --out "$tmp/vl" >/dev/null
# the pair ranges HF's mrope_section gives: consecutive runs of t, h, w pairs
pairs=$("$PY" -c '
import json, sys
s = json.load(open(sys.argv[1]))["rope_scaling"]["mrope_section"]
print(json.dumps([[sum(s[:i]), sum(s[:i + 1]) - 1] for i in range(3)]))' "$tmp/vl/config.json")
run 0 "check a Qwen2-VL layer" check --model "$tmp/vl"
t=$(echo "$pairs" | "$PY" -c '
import json, sys
p = json.load(sys.stdin)
print("mrope   sections t pairs %d-%d, h %d-%d, w %d-%d; text tokens give all three" %
      tuple(x for r in p for x in r))')
grep -qF "$t" "$tmp/out" && grep -q "one angle per pair in every section" "$tmp/out" &&
	ok "the text names each section's pairs ($pairs) and its commutant" ||
	{ notok "mrope text"; sed 's/^/# /' "$tmp/out"; }
grep -q "score .*guaranteed .*holds" "$tmp/out" && ok "... a commuting fold holds" ||
	notok "commuting fold on M-RoPE"
run 0 "check --json" check --model "$tmp/vl" --json
if "$PY" -c '
import json, sys
m = json.load(open(sys.argv[1]))["config"]["mrope"]
sys.exit(0 if m["pairs"] == json.loads(sys.argv[2]) and m["positions"] == "text" else 1)' \
	"$tmp/out" "$pairs"; then
	ok "config.mrope: the same pairs, at text positions"
else
	notok "config.mrope"; head -c 600 "$tmp/out" | sed 's/^/# /'
fi
run 0 "check --json on a plain layer" check --json
"$PY" -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["config"]["mrope"] is not None)' \
	"$tmp/out" && ok "... config.mrope null" || notok "mrope null on a plain layer"
echo "1..$n"
[ "$fails" -eq 0 ]
