#!/bin/sh
# End-to-end tests of `ropefold fold` on the shared real checkpoints: fold
# then verify in every format, --undo, dropped assumptions and permuted
# heads named by verify, --json, shards in a subfolder, an interrupted
# write, refused outputs.
# Prints TAP; skips without the shared checkpoints ($ROPEFOLD_SHARED_MODELS,
# else $SRCDIR/../shared/models).
: "${ROPEFOLD:=./ropefold}"
: "${SRCDIR:=.}"
M=${ROPEFOLD_SHARED_MODELS:-$SRCDIR/../shared/models}
if [ ! -f "$M/stories260K.bin" ] || [ ! -f "$M/stories260K.gguf" ] || [ ! -d "$M/tiny_llama_hf" ]; then
	echo "1..0 # SKIP no shared models at $M (stories260K.bin, stories260K.gguf, tiny_llama_hf/)"
	exit 0
fi
. "${SRCDIR:-.}/tests/tap.sh"
has() {
	if grep -q -- "$1" "$tmp/out"; then ok "$2"
	else notok "$2: no '$1' in the output"; sed 's/^/# /' "$tmp/out"; fi
}
same() {
	if cmp -s "$1" "$2"; then ok "$3"; else notok "$3: $1 and $2 differ"; fi
}
absent() {
	if [ ! -e "$1" ]; then ok "$2"; else notok "$2: $1 exists"; fi
}
one_line() {
	if [ "$(wc -l <"$tmp/err")" -eq 1 ]; then ok "$1: one line on stderr"
	else notok "$1: stderr is not one line"; sed 's/^/# /' "$tmp/err"; fi
}

# ---- fold then verify, every format ---------------------------------------
for src in stories260K.bin stories260K.gguf tiny_llama_hf; do
	out="$tmp/f-$src"
	run 0 "fold $src" fold --model "$M/$src" --out "$out" --seed 7
	has "max relative rounding error" "$src: rounding error reported"
	run 0 "verify $src against its fold" verify "$M/$src" "$out"
	has "commuting fold" "$src: verify names a commuting fold"
done
[ -f "$tmp/f-stories260K.bin.fold.json" ] && ok "sidecar beside a file" || notok "sidecar beside a file"
[ -f "$tmp/f-tiny_llama_hf/fold.json" ] && ok "sidecar inside a folder" || notok "sidecar inside a folder"
same "$M/tiny_llama_hf/config.json" "$tmp/f-tiny_llama_hf/config.json" "config.json copied"
same "$M/tiny_llama_hf/golden_meta.txt" "$tmp/f-tiny_llama_hf/golden_meta.txt" "other files copied"

# ---- --undo ------------------------------------------------------------------
run 0 "undo the llama2.c fold" fold --model "$tmp/f-stories260K.bin" --out "$tmp/u.bin" \
	--undo "$tmp/f-stories260K.bin.fold.json"
# an undo says what it did: the layers with the seeds the sidecar recorded,
# and no rounding figure where it cannot know (kept in F32, it rounds again)
seed4=$(tr -d ' \n' <"$tmp/f-stories260K.bin.fold.json" | grep -o '"layer":4,"seed":[0-9]*' |
	sed 's/.*://')
has "undid the fold of layer 4 (seed $seed4): within f32 rounding" "llama2.c undo: layer and recorded seed named"
has "restored within the stored dtype's rounding (f32)" "llama2.c undo: within f32 rounding, no misleading figure"
if grep -q "seed 0\|relative rounding error\|): bit for bit" "$tmp/out"; then
	notok "llama2.c undo: no seed 0, no rounding figure, no bit-for-bit claim"; sed 's/^/# /' "$tmp/out"
else ok "llama2.c undo: no seed 0, no rounding figure, no bit-for-bit claim"; fi
absent "$tmp/u.bin.fold.json" "no sidecar beside an undo's output"
run 0 "the undone llama2.c file verifies" verify "$M/stories260K.bin" "$tmp/u.bin"
has "equal up to f32 rounding\|identical" "llama2.c undo: equal up to f32 rounding (F32 only)"
run 0 "fold the GGUF into F64" fold --model "$M/stories260K.gguf" --out "$tmp/g64.gguf" --dtype f64
seed0=$(sed -n 's/^  layer 0: seed \([0-9]*\),.*/\1/p' "$tmp/out")
# llama.cpp's CPU backend has no F64 matrix product: it loads the file and
# then fails, so fold says so (and --help does)
if [ "$(grep -c "F64 weights, which GGUF runtimes (llama.cpp) cannot run" "$tmp/err")" -eq 1 ]; then
	ok "F64 GGUF: one stderr line says runtimes cannot run it"
else notok "F64 GGUF: one stderr line says runtimes cannot run it"; sed 's/^/# /' "$tmp/err"; fi
run 0 "fold --help" fold --help
has "cannot run F64 GGUF" "fold --help warns about F64 GGUF"
run 0 "fold the GGUF into F32" fold --model "$M/stories260K.gguf" --out "$tmp/g32.gguf" --dtype f32
if grep -q "F64" "$tmp/err"; then notok "no F64 note for F32"; else ok "no F64 note for F32"; fi
run 0 "undo the F64 fold" fold --model "$tmp/g64.gguf" --out "$tmp/gu.gguf" --undo "$tmp/g64.gguf.fold.json"
same "$M/stories260K.gguf" "$tmp/gu.gguf" "f32 GGUF restored bit for bit"
has "undid the fold of layer 0 (seed $seed0): bit for bit" "F64 undo: layer 0 with its recorded seed, bit for bit"
has "restored bit for bit" "F64 undo: says bit for bit"
absent "$tmp/gu.gguf.fold.json" "no sidecar beside the undone GGUF"
run 0 "fold the bf16 HF folder into F32" fold --model "$M/tiny_llama_hf" --out "$tmp/h32" --dtype f32
run 0 "verify the F32 fold" verify "$M/tiny_llama_hf" "$tmp/h32"
has "commuting fold" "F32 fold of bf16 is a commuting fold"
run 0 "undo it" fold --model "$tmp/h32" --out "$tmp/hu" --undo "$tmp/h32/fold.json"
same "$M/tiny_llama_hf/model.safetensors" "$tmp/hu/model.safetensors" "bf16 folder restored bit for bit"
has "restored bit for bit" "bf16 undo: says bit for bit, not a rounding error"
absent "$tmp/hu/fold.json" "no fold.json inside the undone folder"
if command -v python3 >/dev/null 2>&1; then
	run 0 "undo --json" fold --model "$tmp/h32" --out "$tmp/hu" --undo "$tmp/h32/fold.json" --force --json
	if python3 -c 'import json,sys
u=json.load(open(sys.argv[1])); f=json.load(open(sys.argv[2]))
assert u["undo"] and u["sidecar"] is None and u["bit_for_bit"] and u["max_rel_rounding"] == 0
assert [l["seed"] for l in u["layers"]] == [l["seed"] for l in f["layers"]]
assert all(l["bit_for_bit"] and l["max_rel_rounding"] == 0 for l in u["layers"])' "$tmp/out" "$tmp/h32/fold.json"; then
		ok "undo --json: recorded seeds, bit for bit, no sidecar"
	else notok "undo --json"; sed 's/^/# /' "$tmp/out"; fi
fi
mkdir -p "$tmp/single"
run 0 "single safetensors file with its config.json" fold --model "$M/tiny_llama_hf/model.safetensors" \
	--out "$tmp/single/m.safetensors" --layers 1
same "$M/tiny_llama_hf/config.json" "$tmp/single/config.json" "config.json beside the output file"
run 0 "verify the single file" verify "$M/tiny_llama_hf/model.safetensors" "$tmp/single/m.safetensors"
has "layer 0: identical" "--layers 1 leaves layer 0 identical"

# ---- shards in a subfolder: OUT mirrors the index's relative paths ----------
mkdir -p "$tmp/subin/sub"
cp "$M/tiny_llama_hf/config.json" "$tmp/subin/"
cp "$M/tiny_llama_hf/model.safetensors" "$tmp/subin/sub/"
# The index lists every tensor of the shard (names from its header).
st="$M/tiny_llama_hf/model.safetensors"
hlen=$(od -An -t u8 -N8 "$st" | tr -d ' ')
head -c $((8 + hlen)) "$st" | tail -c "$hlen" | grep -o '"[^"]*":{"dtype"' |
	sed 's/^\("[^"]*"\).*/\1: "sub\/model.safetensors"/' | paste -sd, - |
	sed 's/^/{"weight_map": {/; s/$/}}/' >"$tmp/subin/model.safetensors.index.json"
run 0 "fold a folder whose index puts the shard in sub/" fold --model "$tmp/subin" --out "$tmp/subout"
[ -f "$tmp/subout/sub/model.safetensors" ] && ok "the shard written to OUT/sub/" \
	|| notok "the shard written to OUT/sub/"
absent "$tmp/subout/model.safetensors" "the shard not flattened into OUT"
run 0 "info reads the folded folder" info "$tmp/subout"
run 0 "check runs on the folded folder" check --model "$tmp/subout"
run 0 "verify the subfolder fold" verify "$tmp/subin" "$tmp/subout"
has "B is equivalent to A in every chosen layer" "the subfolder fold is equivalent"
mkdir "$tmp/subfail"
ROPEFOLD_TEST_FAIL=kill:1 "$ROPEFOLD" fold --model "$tmp/subin" --out "$tmp/subfail/o" >/dev/null 2>&1
absent "$tmp/subfail/o" "a killed subfolder write leaves no OUT"
mkdir "$tmp/subfail2"
ROPEFOLD_TEST_FAIL=commit "$ROPEFOLD" fold --model "$tmp/subin" --out "$tmp/subfail2/o" >/dev/null 2>&1
if [ $? -eq 2 ] && [ -z "$(ls -A "$tmp/subfail2")" ]; then ok "a failed subfolder write exits 2 and cleans up"
else notok "a failed subfolder write"; ls -A "$tmp/subfail2" | sed 's/^/# /'; fi

# ---- broken folds, named by verify -------------------------------------------
run 0 "fold with --drop commutes" fold --model "$M/stories260K.gguf" --out "$tmp/d.gguf" --drop commutes
run 1 "verify rejects it" verify "$M/stories260K.gguf" "$tmp/d.gguf"
has "mixes frequency pairs" "verify names mixed pairs"
run 0 "fold with --permute-heads" fold --model "$M/stories260K.bin" --out "$tmp/p.bin" --permute-heads
run 0 "verify accepts permuted heads" verify "$M/stories260K.bin" "$tmp/p.bin"
has "heads permuted" "verify names heads permuted"
run 0 "undo the permuted fold" fold --model "$tmp/p.bin" --out "$tmp/pu.bin" --undo "$tmp/p.bin.fold.json"
run 0 "the undone permuted fold verifies" verify "$M/stories260K.bin" "$tmp/pu.bin"
if grep -q "heads permuted" "$tmp/out"; then notok "undo restored the head order"; else ok "undo restored the head order"; fi

# ---- --json ---------------------------------------------------------------------
run 0 "--json summary" fold --model "$M/stories260K.gguf" --out "$tmp/j.gguf" --layers 2..3 --json
has '"layers_folded": 2' "JSON counts the layers"
has '"sidecar": ' "JSON names the sidecar"
if command -v python3 >/dev/null 2>&1; then
	if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["max_rel_rounding"] < 1e-6' "$tmp/out"; then
		ok "JSON parses, rounding error below 1e-6"
	else notok "JSON summary"; fi
	if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); l=d["layers"][0]; assert len(l["rotations"]["k"])==4 and len(l["rotations"]["k"][0]["angles"])==4 and l["layer"]==2' "$tmp/j.gguf.fold.json"; then
		ok "sidecar records angles per pair for each kv group"
	else notok "sidecar content"; fi
fi

# ---- interrupted writes, refused outputs --------------------------------------
mkdir "$tmp/kill"
ROPEFOLD_TEST_FAIL=kill:2 "$ROPEFOLD" fold --model "$M/stories260K.bin" --out "$tmp/kill/k.bin" >/dev/null 2>&1
absent "$tmp/kill/k.bin" "a killed write leaves no OUT"
absent "$tmp/kill/k.bin.fold.json" "a killed write leaves no sidecar"
ROPEFOLD_TEST_FAIL=kill:1 "$ROPEFOLD" fold --model "$M/tiny_llama_hf" --out "$tmp/kill/hf" >/dev/null 2>&1
absent "$tmp/kill/hf" "a killed folder write leaves no OUT"
mkdir "$tmp/fail"
ROPEFOLD_TEST_FAIL=layer:3 "$ROPEFOLD" fold --model "$M/stories260K.gguf" --out "$tmp/fail/x.gguf" >/dev/null 2>&1
if [ $? -eq 2 ] && [ -z "$(ls -A "$tmp/fail")" ]; then ok "a failed write exits 2 and cleans up"
else notok "a failed write"; ls -A "$tmp/fail" | sed 's/^/# /'; fi
run 2 "an existing OUT is refused" fold --model "$M/stories260K.bin" --out "$tmp/p.bin"
one_line "existing OUT"
run 0 "--force replaces it" fold --model "$M/stories260K.bin" --out "$tmp/p.bin" --force
run 2 "OUT = IN is refused" fold --model "$M/stories260K.bin" --out "$M/stories260K.bin" --force
run 2 "an unwritable OUT" fold --model "$M/stories260K.bin" --out /proc/ropefold-out.bin
one_line "unwritable OUT"
run 2 "F64 in a llama2.c file" fold --model "$M/stories260K.bin" --out "$tmp/x.bin" --dtype f64
run 2 "--layers out of range" fold --model "$M/stories260K.bin" --out "$tmp/x.bin" --layers 9
run 0 "fold with --seed 1" fold --model "$M/stories260K.bin" --out "$tmp/s1.bin" --seed 1
run 0 "fold with --seed 2" fold --model "$M/stories260K.bin" --out "$tmp/s2.bin" --seed 2
run 2 "undo with the other seed's sidecar" fold --model "$tmp/s1.bin" --undo "$tmp/s2.bin.fold.json" \
	--out "$tmp/s-undone.bin"
one_line "the other seed's sidecar"
absent "$tmp/s-undone.bin" "nothing written for the other seed's sidecar"
run 2 "a sidecar of another model" fold --model "$M/tiny_llama_hf" --out "$tmp/x" \
	--undo "$tmp/p.bin.fold.json"
absent "$tmp/x" "nothing written on bad input"

echo "1..$n"
[ "$fails" -eq 0 ]
