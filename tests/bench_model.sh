#!/bin/sh
# The whole-model benchmark's tools on their tiny shape (a few MB, seconds):
# bench/gen_model writes an HF Llama folder that reads back as specified
# and refuses to overwrite what it did not write; bench/model_numpy.py's
# verify, an independent NumPy decision from the theorem's definitions,
# agrees with ropefold verify on commuting folds (ropefold's and its own)
# and on crafted breaks (a non-commuting Q/K rotation in one layer); its
# bf16 rounding is round-to-nearest-even; bench/model_run.sh prints its
# table. Prints TAP; skips without python3-numpy.
: "${ROPEFOLD:=./ropefold}"
: "${SRCDIR:=.}"
: "${BUILDDIR:=.}"
PY=/usr/bin/python3
if ! [ -x "$PY" ] || ! "$PY" -c 'import numpy' 2>/dev/null; then
	echo "1..0 # SKIP no python3-numpy"
	exit 0
fi
GEN=$BUILDDIR/bench/gen_model
NP="$PY $SRCDIR/bench/model_numpy.py"
. "$SRCDIR/tests/tap.sh"
# agree WANT DESCRIPTION A B: both verifiers give exit status WANT on (A, B)
agree() {
	want=$1; what=$2
	"$ROPEFOLD" verify "$3" "$4" >"$tmp/rf" 2>&1; rf=$?
	$NP verify "$3" "$4" >"$tmp/np" 2>&1; np=$?
	if [ "$rf" -eq "$want" ] && [ "$np" -eq "$want" ]; then
		ok "$what: ropefold and numpy both exit $want"
	else
		notok "$what: ropefold exit $rf, numpy exit $np, expected $want"
		sed 's/^/# /' "$tmp/rf" "$tmp/np" | tail -12
	fi
}
has() {  # has FILE TEXT DESCRIPTION
	if grep -q -- "$2" "$1"; then ok "$3"; else notok "$3: no '$2'"; sed 's/^/# /' "$1" | tail -8; fi
}

m=$tmp/model
"$GEN" --shape tiny "$m" 2>"$tmp/err"
if [ $? -eq 0 ] && [ -f "$m/model.safetensors.index.json" ]; then ok "gen_model writes the tiny model"
else notok "gen_model writes the tiny model"; sed 's/^/# /' "$tmp/err"; fi
# the folder as the formats define it: 4 shards that tile exactly (the
# reader checks every data_offsets span), the index naming every tensor's
# shard with total_size their bytes, config.json as LlamaForCausalLM's
if "$PY" - "$m" "$SRCDIR/bench" >"$tmp/out" 2>&1 <<'EOF'
import json, os, sys
sys.path.insert(0, sys.argv[2])
import model_numpy as mn
m = sys.argv[1]
c = json.load(open(os.path.join(m, "config.json")))
assert c["model_type"] == "llama" and c["architectures"] == ["LlamaForCausalLM"], c
assert c["rope_theta"] == 500000.0 and c["tie_word_embeddings"] is False
assert c["rope_scaling"] == {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                             "original_max_position_embeddings": 8192, "rope_type": "llama3"}
idx = json.load(open(os.path.join(m, "model.safetensors.index.json")))
ck = mn.Checkpoint(m)
assert len(ck.shards) == 4, ck.shards.keys()
size = sum(e - b for sh in ck.shards.values()
           for b, e in (t["data_offsets"] for t in sh.tensors.values()))
assert idx["metadata"]["total_size"] == size
L, D, F, V = c["num_hidden_layers"], c["hidden_size"], c["intermediate_size"], c["vocab_size"]
assert len(idx["weight_map"]) == 9 * L + 3 == len(ck.where)
assert ck.where["lm_head.weight"].tensors["lm_head.weight"]["shape"] == [V, D]
assert ck.where["model.layers.0.mlp.down_proj.weight"].tensors[
    "model.layers.0.mlp.down_proj.weight"]["shape"] == [D, F]
w = mn.widen(ck.bf16(0, "q_proj"))
assert abs(float(w.std()) * D ** 0.5 - 1) < 0.05, w.std()   # N(0, 1/D)
EOF
then ok "shards tile, the index and config.json are as specified"
else notok "shards tile, the index and config.json are as specified"; sed 's/^/# /' "$tmp/out" | tail -5; fi
sum=$(cat "$m"/*.safetensors | cksum)
"$GEN" --shape tiny "$m" 2>"$tmp/err"
if [ $? -eq 0 ] && grep -q "nothing to do" "$tmp/err" && [ "$(cat "$m"/*.safetensors | cksum)" = "$sum" ]
then ok "a complete folder is left alone"; else notok "a complete folder is left alone"; fi
"$GEN" --shape tiny --seed 2 "$m" 2>"$tmp/err"
if [ $? -eq 2 ] && grep -q "another generated model" "$tmp/err"; then ok "another seed is refused (exit 2)"
else notok "another seed is refused"; sed 's/^/# /' "$tmp/err"; fi
mkdir "$tmp/foreign" && echo '{}' >"$tmp/foreign/config.json"
"$GEN" --shape tiny "$tmp/foreign" 2>"$tmp/err"
if [ $? -eq 2 ] && [ "$(ls "$tmp/foreign")" = config.json ]; then ok "a folder it did not write is refused"
else notok "a folder it did not write is refused"; sed 's/^/# /' "$tmp/err"; fi
"$GEN" --shape tiny --seed 1 "$tmp/again" 2>/dev/null
if [ "$(cat "$tmp/again"/*.safetensors | cksum)" = "$sum" ]; then ok "the same seed writes the same bytes"
else notok "the same seed writes the same bytes"; fi

agree 0 "the model against itself" "$m" "$m"
"$ROPEFOLD" fold --model "$m" --out "$tmp/rf_fold" >/dev/null 2>&1
agree 0 "ropefold's commuting fold" "$m" "$tmp/rf_fold"
$NP fold --model "$m" --out "$tmp/np_fold" --seed 7 >/dev/null
agree 0 "numpy's commuting fold" "$m" "$tmp/np_fold"
$NP fold --model "$m" --out "$tmp/np_break" --break-layer 2 >/dev/null
agree 1 "numpy's fold with a Haar Q/K rotation in layer 2" "$m" "$tmp/np_break"
has "$tmp/np" "layer 2, kv group 0: R_k commutes with RoPE fails" "numpy names layer 2 and the commutation"
has "$tmp/rf" "layer 2: NOT equivalent" "ropefold names layer 2"
"$ROPEFOLD" fold --model "$m" --out "$tmp/rf_break" --layers 1 --drop commutes >/dev/null 2>&1
agree 1 "ropefold's fold with --drop commutes in layer 1" "$m" "$tmp/rf_break"
has "$tmp/np" "layer 1, kv group 0" "numpy names layer 1"
# only W_o of layer 3 left unrotated: V's rotation not absorbed
$NP fold --model "$m" --out "$tmp/np_vo" --layers 3 >/dev/null
"$PY" - "$m" "$tmp/np_vo" <<'EOF'
import json, os, sys
src, dst = sys.argv[1:]
idx = json.load(open(os.path.join(src, "model.safetensors.index.json")))
name = "model.layers.3.self_attn.o_proj.weight"
fn = idx["weight_map"][name]
with open(os.path.join(src, fn), "rb") as f:
    raw = f.read()
n = int.from_bytes(raw[:8], "little")
b, e = json.loads(raw[8:8 + n])[name]["data_offsets"]
with open(os.path.join(dst, fn), "r+b") as f:
    f.seek(8 + n + b)
    f.write(raw[8 + n + b:8 + n + e])
EOF
agree 1 "a fold whose W_o does not absorb V's rotation" "$m" "$tmp/np_vo"
has "$tmp/np" "layer 3, kv group 0: W_o absorbs R_v" "numpy names W_o in layer 3"

# round to nearest even, from IEEE 754's definition: 1 + 2^-8 is halfway
# between bf16 neighbours 1 and 1 + 2^-7 and goes to the even one (1);
# 1 + 3 * 2^-8 goes to 1 + 2^-6; anything above halfway goes up
if "$PY" - "$SRCDIR/bench" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import model_numpy as mn
x = np.array([1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-8 + 2**-20, -(1 + 2**-8 + 2**-20), 3.0],
             dtype=np.float32)
want = np.array([1.0, 1 + 2**-6, 1 + 2**-7, -(1 + 2**-7), 3.0], dtype=np.float32)
got = mn.widen(mn.round_bf16(x))
assert np.array_equal(got, want), got
assert np.isnan(mn.widen(mn.round_bf16(np.array([np.nan], dtype=np.float32))))[0]
EOF
then ok "bf16 rounding is to nearest even"; else notok "bf16 rounding is to nearest even"; fi

$NP verify "$m" "$tmp/nonexistent" >/dev/null 2>"$tmp/err"
if [ $? -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ]; then ok "numpy verify: a missing folder is one line, exit 2"
else notok "numpy verify on a missing folder"; sed 's/^/# /' "$tmp/err"; fi
cp -r "$m" "$tmp/short" && truncate -s -2 "$tmp/short/model-00002-of-00004.safetensors"
$NP verify "$m" "$tmp/short" >/dev/null 2>"$tmp/err"
if [ $? -eq 2 ] && grep -q "model-00002-of-00004.safetensors: data ends at" "$tmp/err"
then ok "numpy verify: a truncated shard is named, exit 2"
else notok "numpy verify on a truncated shard"; sed 's/^/# /' "$tmp/err"; fi

if /usr/bin/time --version 2>&1 | grep -q GNU; then
	ROPEFOLD_BENCH_DIR=$tmp/bench sh "$SRCDIR/bench/model_run.sh" "$ROPEFOLD" "$GEN" --tiny \
		>"$tmp/table" 2>"$tmp/err"
	if [ $? -eq 0 ]; then ok "model_run.sh --tiny runs"; else notok "model_run.sh --tiny runs"; sed 's/^/# /' "$tmp/err" | tail -5; fi
	has "$tmp/table" "^ropefold verify M M_folded .* fold$" "its table has ropefold's verdict"
	has "$tmp/table" "^numpy verify M M_folded .* fold$" "its table has numpy's verdict"
	has "$tmp/table" "^fold / cp -r " "its table has the fold / cp -r ratio"
	has "$tmp/table" "^logits T=512 / the sgemm rate  *[0-9][0-9.]*   target >= 0.6: " \
		"its table has logits' share of the sgemm rate"
	if [ "$(ls "$tmp/bench")" = "$(printf 'llama3-tiny-shaped\nllama3-tiny-shaped.logs')" ]
	then ok "it removes its outputs and keeps the model"
	else notok "it removes its outputs and keeps the model"; ls "$tmp/bench" | sed 's/^/# /'; fi
else
	skip "model_run.sh --tiny" "no GNU time at /usr/bin/time"
fi

echo "1..$n"
[ "$fails" -eq 0 ]
