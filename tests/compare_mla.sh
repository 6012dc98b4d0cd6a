#!/bin/sh
# Compare mode on DeepSeek MLA layers reaches verify's verdict: for each
# pair (A, B) of the seeded MLA fixtures (tests/mla_fixtures.py: HF
# DeepseekV2, GGUF deepseek2 with attn_kv_b and with llama.cpp's split
# attn_k_b/attn_v_b; tests/family_fixtures.py: DeepSeek-V3, a bf16
# DeepSeek-V2), `ropefold verify A B --json` and `ropefold check --model A
# --against B --json --layer N` for every layer N agree layer by layer on
# the relation, the class, the tolerance, the break and the recovered
# rope rotation, and on their three levels (verify's seeded input is
# check's default one; tests/compare_verify.py agree --levels). The pairs:
# A against itself, its folds by `ropefold fold` (commuting, heads
# permuted, one layer's rope rotation mixing pairs), bf16 and f16
# conversions, and crafted breaks made by NumPy on A's bytes (one layer's
# rope part turned by a rotation that mixes frequency pairs, the same on
# q_pe and k_pe; one layer's kv_b_proj scaled by 1.01), whose expected
# verdicts follow from how they were made. Then the explorer in compare
# mode on an MLA pair, in tmux (skipped without tmux). Prints TAP; skipped
# without numpy.
: "${ROPEFOLD:=./ropefold}"
: "${SRCDIR:=.}"
PY=/usr/bin/python3
. "$SRCDIR/tests/tap.sh"
if ! "$PY" -c 'import numpy' 2>/dev/null; then
	echo "1..0 # SKIP python3-numpy is not installed"
	exit 0
fi
C="$SRCDIR/tests/compare_verify.py"
FIX="$PY $SRCDIR/tests/mla_fixtures.py"

# pair WHAT A B: verify A B --json and check --against per layer agree,
# levels included; both exit 1 exactly when a layer breaks.
pair() {
	what=$1 a=$2 b=$3
	rm -f "$tmp"/c*.json
	"$ROPEFOLD" verify --json "$a" "$b" >"$tmp/v.json" 2>"$tmp/v.err"
	vrc=$?
	if [ "$vrc" -gt 1 ]; then
		notok "$what: verify exit $vrc"; sed 's/^/# /' "$tmp/v.err" | head -3
		return
	fi
	nl=$("$PY" -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["layers"]))' \
		"$tmp/v.json")
	files="" crc=0 l=0
	while [ "$l" -lt "${nl:-0}" ]; do
		"$ROPEFOLD" check --json --model "$a" --against "$b" --layer "$l" \
			>"$tmp/c$l.json" 2>"$tmp/c.err"
		rc=$?
		if [ "$rc" -gt 1 ]; then
			notok "$what: check --against --layer $l exit $rc"
			sed 's/^/# /' "$tmp/c.err" | head -3
			return
		fi
		[ "$rc" -eq 1 ] && crc=1
		files="$files $tmp/c$l.json"
		l=$((l + 1))
	done
	# shellcheck disable=SC2086
	if "$PY" "$C" agree --levels "$tmp/v.json" $files >"$tmp/agree" 2>&1; then
		ok "$what: compare mode agrees with verify in ${nl:-0} layers ($(summary))"
	else
		notok "$what: compare mode and verify differ"; sed 's/^/# /' "$tmp/agree" | head -8
	fi
	if [ "$vrc" -ne "$crc" ]; then
		notok "$what: verify exits $vrc, check --against $crc"
	fi
}

# summary: verify's classes in $tmp/v.json, layer by layer.
summary() {
	"$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(", ".join("%s %s" % (l["relation"], l["within"]) for l in d["layers"]))' "$tmp/v.json"
}

# want WHAT EXPR: the Python expression over verify's document d and the
# compare documents c (c[N]: layer N's check --against --json) holds.
want() {
	what=$1; shift
	if "$PY" - "$tmp" "$1" <<'EOF'
import glob, json, os, sys
d = json.load(open(os.path.join(sys.argv[1], "v.json")))
c = {}
for p in glob.glob(os.path.join(sys.argv[1], "c*.json")):
    doc = json.load(open(p))
    c[doc["relation"]["layer"]] = doc
sys.exit(0 if eval(sys.argv[2]) else 1)
EOF
	then
		ok "... $what"
	else
		notok "... $what"; summary | sed 's/^/# /'
	fi
}

mkfold() {
	out=$1; shift
	"$ROPEFOLD" fold --out "$out" "$@" >/dev/null 2>"$tmp/f.err" ||
		{ echo "# fold $* failed:"; sed 's/^/# /' "$tmp/f.err" | head -3; }
}

# ---- HF DeepseekV2 (q latent), its folds, conversions and crafted breaks -------
$FIX --out "$tmp/hf" --seed 3
mkfold "$tmp/hf-fold" --model "$tmp/hf"
mkfold "$tmp/hf-perm" --model "$tmp/hf" --permute-heads
mkfold "$tmp/hf-nc1" --model "$tmp/hf" --drop commutes --kind pair-swap --layers 1
mkfold "$tmp/hf-bf16" --model "$tmp/hf" --rotate none --dtype bf16
mkfold "$tmp/hf-fbf16" --model "$tmp/hf" --dtype bf16
"$PY" "$C" rope-turn "$tmp/hf" "$tmp/hf-turn" 1 0.7
"$PY" "$C" scale "$tmp/hf" "$tmp/hf-kvb" model.layers.1.self_attn.kv_b_proj.weight 1.01

pair "HF DeepseekV2: B = A" "$tmp/hf" "$tmp/hf"
want "identical in both layers, every level holds" 'all(l["relation"] == "identical" for l in d["layers"]) and all(x["levels"][k]["holds"] for x in d["layers"] for k in ("score", "head", "residual"))'
pair "HF DeepseekV2: a commuting fold" "$tmp/hf" "$tmp/hf-fold"
want "a commuting fold, its rope rotation commuting" 'all(l["relation"] == "commuting fold" and l["rotations"][0]["commuting"] for l in d["layers"])'
want "compare mode's config names the MLA dims" 'all(c[i]["config"]["mla"]["kv_lora_rank"] == 16 and c[i]["fold"] is None for i in c)'
want "its diagnostics: the recovered rotations are orthogonal, no pair mixed" 'all(c[i]["diagnostics"]["orthogonality_defect"] < 1e-6 for i in c)'
pair "HF DeepseekV2: heads permuted" "$tmp/hf" "$tmp/hf-perm"
want "heads permuted cyclically, as fold --permute-heads does" 'all(l["heads_permuted"] and l["heads_permutation"] == [1, 2, 3, 0] for l in d["layers"])'
pair "HF DeepseekV2: a fold whose rope rotation mixes pairs at layer 1" "$tmp/hf" "$tmp/hf-nc1"
want "layer 0 identical, layer 1 mixes pairs at k_pe" 'd["layers"][0]["relation"] == "identical" and d["first_break"]["layer"] == 1 and d["first_break"]["why"] == "mixes-pairs" and d["first_break"]["tensor"] == "kv_a k_pe"'
pair "HF DeepseekV2: f32 -> bf16" "$tmp/hf" "$tmp/hf-bf16"
want "within bf16 rounding" 'all(l["within"] == "within dtype rounding" and abs(l["tol"] - 3 * 2**-8 - 1e-12) < 1e-15 for l in d["layers"])'
pair "HF DeepseekV2: a fold stored in bf16" "$tmp/hf" "$tmp/hf-fbf16"
want "a commuting fold within bf16 rounding" 'all(l["relation"] == "commuting fold" and l["within"] == "within dtype rounding" for l in d["layers"])'
pair "HF DeepseekV2, crafted: layer 1's rope part turned in the plane of coordinates 0 and 2" "$tmp/hf" "$tmp/hf-turn"
want "layer 1 breaks: the rotation mixes frequency pairs, the score level breaks" 'd["layers"][0]["relation"] == "identical" and d["first_break"]["layer"] == 1 and d["first_break"]["why"] == "mixes-pairs" and not c[1]["relation"]["levels"]["score"]["holds"]'
# the recovered P is the crafted R: its commutator with RoPE (the fixture's
# rope_theta 10000, qk_rope_head_dim 4) is NumPy's from R itself
kc=$("$PY" "$C" turn-commutator 0.7 4 10000)
want "compare mode's diagnostics: P's commutator with RoPE is NumPy's ||R Th - Th R|| = $kc" 'abs(c[1]["diagnostics"]["commutator_k"][0] - '"$kc"') < 1e-5 and c[1]["diagnostics"]["mixed_pairs"][1]["pair_j"] == 1'
pair "HF DeepseekV2, crafted: layer 1's kv_b_proj scaled by 1.01" "$tmp/hf" "$tmp/hf-kvb"
want "layer 1 breaks at kv_b, no rotation explains it" 'd["first_break"]["layer"] == 1 and d["first_break"]["tensor"].startswith("kv_b") and d["first_break"]["why"] == "unexplained"'
pair "the other way round: the scaled kv_b against A" "$tmp/hf-kvb" "$tmp/hf"

# the text, the figure and the exit codes of check --against on MLA
run 0 "check --against on an MLA fold: exit 0" check --model "$tmp/hf" --against "$tmp/hf-fold" --layer 1
grep -q "^mla     DeepSeek MLA: kv_lora_rank 16" "$tmp/out" && grep -q "^relation commuting fold" "$tmp/out" &&
	ok "... the MLA dims and verify's relation in the text" || { notok "MLA compare text"; sed 's/^/# /' "$tmp/out"; }
run 1 "check --against --plot on the crafted rope turn: exit 1 (it breaks)" \
	check --model "$tmp/hf" --against "$tmp/hf-turn" --layer 1 --plot "$tmp/turn.pdf"
if "$PY" "$SRCDIR/tests/figure_check.py" pdf-title "$tmp/turn.pdf" \
	"/hf-turn (layer 1), T = 32: not equivalent, mixes-pairs" "rotate" >"$tmp/fig" 2>&1; then
	ok "... the figure of A against B's stored MLA layer, titled 'A vs B (layer 1)' with the break"
else
	notok "MLA compare figure"; sed 's/^/# /' "$tmp/fig"
fi
run 1 "a standard checkpoint against an MLA one: exit 1 (the shapes differ)" \
	check --model "$SRCDIR/data/default-model" --against "$tmp/hf"
grep -q "relation NOT equivalent (shape" "$tmp/out" && ok "... said so" || notok "shape words"
run 2 "... with --plot: nothing was evaluated to draw (exit 2)" \
	check --model "$tmp/hf" --against "$SRCDIR/data/default-model" --plot "$tmp/none.svg"
[ ! -e "$tmp/none.svg" ] && ok "... and no figure was written" || notok "a figure of nothing"

# ---- DeepSeek-V3 (mscale) and a bf16 DeepSeek-V2 (family fixtures) ------------
"$PY" "$SRCDIR/tests/family_fixtures.py" --family deepseek-v3 --out "$tmp/v3"
"$PY" "$SRCDIR/tests/family_fixtures.py" --family deepseek-v2 --dtype bf16 --out "$tmp/v2bf"
mkfold "$tmp/v3-fold" --model "$tmp/v3"
mkfold "$tmp/v3-nc" --model "$tmp/v3" --drop shared-qk --layers 2
mkfold "$tmp/v2bf-fold" --model "$tmp/v2bf"
pair "HF DeepseekV3: a commuting fold" "$tmp/v3" "$tmp/v3-fold"
pair "HF DeepseekV3: q and k rotated apart at layer 2" "$tmp/v3" "$tmp/v3-nc"
want "first break at layer 2" 'd["first_break"]["layer"] == 2'
pair "bf16 DeepSeek-V2: a commuting fold" "$tmp/v2bf" "$tmp/v2bf-fold"
pair "an MLA checkpoint against a standard one" "$tmp/hf" "$SRCDIR/data/default-model"
want "the shapes differ in every layer" 'all(l["break"]["why"] == "shape" for l in d["layers"])'

# ---- GGUF deepseek2: attn_kv_b and llama.cpp's split kv_b -----------------------
$FIX --out "$tmp/g.gguf" --format gguf --seed 5 --yarn
$FIX --out "$tmp/gs.gguf" --format gguf --seed 5 --yarn --kv-b split
mkfold "$tmp/g-fold.gguf" --model "$tmp/g.gguf"
mkfold "$tmp/g-f16.gguf" --model "$tmp/g.gguf" --rotate none --dtype f16
mkfold "$tmp/g-bf16.gguf" --model "$tmp/g.gguf" --rotate none --dtype bf16
mkfold "$tmp/gs-fold.gguf" --model "$tmp/gs.gguf"
mkfold "$tmp/gs-perm.gguf" --model "$tmp/gs.gguf" --permute-heads
mkfold "$tmp/gs-nc.gguf" --model "$tmp/gs.gguf" --drop commutes --kind pair-swap --layers 0
pair "GGUF deepseek2: a commuting fold" "$tmp/g.gguf" "$tmp/g-fold.gguf"
pair "GGUF deepseek2: f32 -> f16" "$tmp/g.gguf" "$tmp/g-f16.gguf"
want "within f16 rounding" 'all(l["within"] == "within dtype rounding" and abs(l["tol"] - 3 * 2**-11 - 1e-12) < 1e-15 for l in d["layers"])'
pair "GGUF deepseek2: f32 -> bf16" "$tmp/g.gguf" "$tmp/g-bf16.gguf"
pair "GGUF deepseek2: attn_kv_b against the split attn_k_b/attn_v_b" "$tmp/g.gguf" "$tmp/gs.gguf"
want "identical: one layer whatever the layout" 'all(l["relation"] == "identical" for l in d["layers"])'
pair "GGUF split kv_b: a commuting fold" "$tmp/gs.gguf" "$tmp/gs-fold.gguf"
pair "GGUF split kv_b: heads permuted" "$tmp/gs.gguf" "$tmp/gs-perm.gguf"
pair "GGUF split kv_b: a rope rotation that mixes pairs at layer 0" "$tmp/gs.gguf" "$tmp/gs-nc.gguf"
want "first break at layer 0, pairs mixed" 'd["first_break"]["layer"] == 0 and d["first_break"]["why"] == "mixes-pairs"'
pair "GGUF attn_kv_b against the split file's fold" "$tmp/g.gguf" "$tmp/gs-fold.gguf"

# ---- the explorer in compare mode on MLA ----------------------------------------
if ! command -v tmux >/dev/null 2>&1; then
	skip "the explorer in compare mode on MLA" "tmux is not installed"
else
	TM="tmux -L ropefold-cmpmla-$$ -f /dev/null"
	trap 'rm -rf "$tmp"; $TM kill-server >/dev/null 2>&1' EXIT
	R=$ROPEFOLD
	case $R in /*) ;; *) R=$(pwd)/$R ;; esac
	capture() { $TM capture-pane -p -t rf >"$tmp/screen" 2>/dev/null || : >"$tmp/screen"; }
	check() {
		i=0
		while [ "$i" -lt 100 ]; do
			capture
			if grep -Eq -- "$2" "$tmp/screen"; then
				ok "$1"
				return
			fi
			sleep 0.1
			i=$((i + 1))
		done
		notok "$1"; sed 's/^/#   |/' "$tmp/screen"
	}
	tkeys() { $TM send-keys -t rf "$@"; }
	$TM new-session -d -s keep -x 80 -y 24 "sleep 600"
	$TM new-session -d -s rf -x 80 -y 24 \
		"cd '$tmp' && env TERM=xterm-256color LANG=C.UTF-8 LC_ALL=C.UTF-8 XDG_STATE_HOME='$tmp/state' '$R' tui --model hf --against hf-nc1; echo \"EXIT=\$?\"; sleep 600"
	check "explorer --against on MLA: the compare panel names B" "hf-nc1 #0"
	check "... layer 0: verify recovered identical" "│ ✓ identical"
	check "... and every level holds against B's layer" "residual +yes +. holds"
	tkeys a
	check "a: the layers view, the first break at layer 1" "2 layers: first break at layer 1"
	check "... layer 1 mixes pairs at k_pe (the long name cut, and marked)" ">   1  mixes-pairs kv_a k_… g0✗"
	tkeys ':layer 1' Enter
	check ":layer 1: the compare panel says what verify found" "│ ✗ mixes-pairs"
	check "... the score level breaks against B's layer" "score +no +. breaks"
	check "... the heads stay in order" "heads: in order"
	tkeys ':against hf-perm' Enter
	check ":against on another MLA fold: heads permuted" "heads: permuted"
	check "... each head with the layer's one rope rotation" "g1<-2 rot"
	check "... the residual block holds (the heads differ)" "residual +(yes|no) +. holds"
	tkeys 7
	check "7: the heads view of compare mode" "heads"
	tkeys q
	check "q leaves" "EXIT=0"
	$TM kill-server >/dev/null 2>&1
fi

echo "1..$n"
[ "$fails" -eq 0 ]
