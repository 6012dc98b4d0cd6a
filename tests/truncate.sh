#!/bin/sh
# A checkpoint truncated while ropefold has it open: check, verify and fold
# stop with exit 2 and one stderr line naming the file ("changed size while
# being read"), never a SIGBUS, and fold leaves no temporary behind.
#
# The truncation is a real one, by this script, of a file the process has
# open; ROPEFOLD_TEST_STOP=open makes the process stop itself (SIGSTOP)
# once its checkpoints are open (fold: and copied) and before it reads a
# layer, so the script truncates at that point every time and then
# continues it. The last case is the race as a user meets it (a big layer,
# truncated after a fixed delay): whenever the truncation lands, the answer
# is exit 0 or exit 2 with one line, never a signal.
# Prints TAP. Needs $ROPEFOLD (set by make check), /proc and truncate(1).
: "${ROPEFOLD:=./ropefold}"
: "${SRCDIR:=.}"
if [ ! -r /proc/self/stat ] || ! command -v truncate >/dev/null 2>&1; then
	echo "1..0 # SKIP needs /proc and truncate(1)"
	exit 0
fi
. "$SRCDIR/tests/tap.sh"
M=${ROPEFOLD_SHARED_MODELS:-$SRCDIR/../shared/models}
PY=/usr/bin/python3

# state PID: the process state letter (T stopped, Z exited), empty when gone
state() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1; }
# wait_stopped PID: until the process stops itself (10 s at most)
wait_stopped() {
	i=0
	while [ "$i" -lt 200 ]; do
		s=$(state "$1")
		[ "$s" = T ] && return 0
		[ -z "$s" ] || [ "$s" = Z ] && return 1
		sleep 0.05
		i=$((i + 1))
	done
	return 1
}

# stopped WHAT FILE SIZE ARGS...: run ropefold ARGS stopped at "open",
# truncate FILE to SIZE bytes, continue it; then exit 2 and exactly one
# stderr line that names FILE and says it changed size.
stopped() {
	what=$1 file=$2 size=$3
	shift 3
	ROPEFOLD_TEST_STOP=open "$ROPEFOLD" "$@" >"$tmp/out" 2>"$tmp/err" &
	pid=$!
	if wait_stopped "$pid"; then
		truncate -s "$size" "$file"
		kill -CONT "$pid"
	else
		echo "# $what: the process did not stop at the test hook"
	fi
	wait "$pid"
	got=$?
	if [ "$got" -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] &&
	   grep -qF -- "$file: changed size while being read" "$tmp/err"; then
		ok "$what: exit 2, one line naming the file"
	else
		notok "$what: exit $got, wanted 2 and one line '$file: changed size while being read'"
		sed 's/^/#   /' "$tmp/err" | head -5
	fi
}

# no_temp DIR WHAT [NAME]: no temporary output (of NAME) left in DIR
no_temp() {
	left=$(find "$1" -name ".${3:-*}.tmp-*" | head -1)
	if [ -z "$left" ]; then ok "$2: no temporary left"
	else notok "$2: $left left behind"; fi
}

echo "1..15"

# ---- an HF folder (the built-in default model: 2 layers) --------------------
dm="$SRCDIR/data/default-model"
fresh() { rm -rf "$tmp/m" && mkdir "$tmp/m" && cp "$dm/config.json" "$dm/model.safetensors" "$tmp/m/"; }
w="$tmp/m/model.safetensors"
# 1000 bytes: inside the header, which was read when the file was opened;
# every tensor is past it.
cut=1000

fresh
stopped "check, safetensors" "$w" "$cut" check --model "$tmp/m"
fresh
cp -r "$tmp/m" "$tmp/a"
stopped "verify, B truncated" "$w" "$cut" verify "$tmp/a" "$tmp/m"
fresh
stopped "verify, A truncated" "$w" "$cut" verify "$tmp/m" "$tmp/a"
fresh
mkdir -p "$tmp/o"
stopped "fold, input truncated after its copy" "$w" "$cut" fold --model "$tmp/m" --out "$tmp/o/f"
if [ ! -e "$tmp/o/f" ]; then ok "fold: no output written"; else notok "fold: $tmp/o/f written"; fi
no_temp "$tmp/o" "fold"

# ---- the other formats: the shared llama2.c and GGUF checkpoints -------------
for f in stories260K.bin stories260K.gguf; do
	if [ -f "$M/$f" ]; then
		cp "$M/$f" "$tmp/$f"
		stopped "check, $f" "$tmp/$f" "$cut" check --model "$tmp/$f" --layer 4
		cp "$M/$f" "$tmp/$f"
		stopped "fold, $f" "$tmp/$f" "$cut" fold --model "$tmp/$f" --out "$tmp/o/$f"
	else
		skip "check, $f" "no shared models at $M"
		skip "fold, $f" "no shared models at $M"
	fi
done
no_temp "$tmp/o" "fold of the shared files"

# ---- logits: an MLP matrix truncated while the pass waits for it -------------
# The forward pass reads a dense layer's MLP matrices one at a time, on its
# reading thread, after the rest of the layer. A tiny Llama written with its
# last layer's down_proj at the end of the file, cut where that matrix
# begins: every other read succeeds, and that one fails on the reading
# thread while the pass waits for it.
if [ -x "$PY" ]; then
	mkdir -p "$tmp/mlp"
	cutat=$("$PY" - "$tmp/mlp" <<'EOF'
import array, json, random, struct, sys
out = sys.argv[1]
D, H, d, F, L, V = 64, 4, 16, 128, 2, 32
rng = random.Random(2)
def mat(r, c):
    return array.array("f", [rng.gauss(0, 0.1) for _ in range(r * c)]).tobytes()
t = [("model.embed_tokens.weight", [V, D])]
for i in range(L):
    p = "model.layers.%d." % i
    t += [(p + "input_layernorm.weight", [D]), (p + "post_attention_layernorm.weight", [D])]
    t += [(p + "self_attn.%s_proj.weight" % n, [D, D]) for n in "qkvo"]
t += [("model.norm.weight", [D]), ("lm_head.weight", [V, D])]
for i in range(L):
    p = "model.layers.%d.mlp." % i
    t += [(p + "gate_proj.weight", [F, D]), (p + "up_proj.weight", [F, D]),
          (p + "down_proj.weight", [D, F])]
hdr, off, blobs = {}, 0, []
for name, shape in t:
    if len(shape) == 1:
        b = array.array("f", [1.0] * shape[0]).tobytes()
    else:
        b = mat(shape[0], shape[1])
    hdr[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(b)]}
    off += len(b)
    blobs.append(b)
h = json.dumps(hdr).encode()
h += b" " * (-len(h) % 8)
with open(out + "/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    for b in blobs:
        f.write(b)
json.dump({"model_type": "llama", "hidden_size": D, "num_attention_heads": H,
           "num_key_value_heads": H, "head_dim": d, "num_hidden_layers": L,
           "intermediate_size": F, "vocab_size": V, "rms_norm_eps": 1e-5,
           "tie_word_embeddings": False}, open(out + "/config.json", "w"))
print(8 + len(h) + hdr["model.layers.%d.mlp.down_proj.weight" % (L - 1)]["data_offsets"][0])
EOF
)
	if "$ROPEFOLD" logits --model "$tmp/mlp" --seq 4 >/dev/null 2>"$tmp/err"; then
		ok "logits on the whole tiny Llama"
	else
		notok "logits on the whole tiny Llama"
		sed 's/^/#   /' "$tmp/err" | head -5
	fi
	stopped "logits, an MLP matrix cut while the pass waits" "$tmp/mlp/model.safetensors" \
		"$cutat" logits --model "$tmp/mlp" --seq 4
else
	skip "logits on the whole tiny Llama" "no $PY"
	skip "logits, an MLP matrix cut while the pass waits" "no $PY"
fi

# ---- the race as a user meets it -----------------------------------------------
# A D=2048 layer (64 MB of F32, about a second of fold), truncated 0.3 s
# after fold starts. Before reads went through pread this was a SIGBUS
# (exit 135) with the full-size temporary left behind.
if [ -x "$PY" ]; then
	mkdir -p "$tmp/big"
	"$PY" - "$tmp/big" <<'EOF'
import array, json, random, struct, sys
out = sys.argv[1]
D, H, d = 2048, 32, 64
rng = random.Random(1)
tile = array.array("f", [rng.gauss(0, 0.02) for _ in range(4096)])
hdr, off = {}, 0
names = ["q_proj", "k_proj", "v_proj", "o_proj"]
for n in names:
    size = D * D * 4
    hdr["model.layers.0.self_attn.%s.weight" % n] = {
        "dtype": "F32", "shape": [D, D], "data_offsets": [off, off + size]}
    off += size
h = json.dumps(hdr).encode()
h += b" " * (-len(h) % 8)
block = tile.tobytes() * (D * D // 4096)
with open(out + "/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    for n in names:
        f.write(block)
json.dump({"model_type": "llama", "hidden_size": D, "num_attention_heads": H,
           "num_key_value_heads": H, "head_dim": d, "num_hidden_layers": 1},
          open(out + "/config.json", "w"))
EOF
	"$ROPEFOLD" fold --model "$tmp/big" --out "$tmp/o/big" >"$tmp/out" 2>"$tmp/err" &
	pid=$!
	sleep 0.3
	truncate -s 30000000 "$tmp/big/model.safetensors"
	wait "$pid"
	got=$?
	if { [ "$got" -eq 0 ] && [ -d "$tmp/o/big" ]; } ||
	   { [ "$got" -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] &&
	     grep -qF "$tmp/big/model.safetensors: " "$tmp/err"; }; then
		ok "fold of a big layer truncated meanwhile: exit $got, never a signal"
	else
		notok "fold of a big layer truncated meanwhile: exit $got"
		sed 's/^/#   /' "$tmp/err" | head -5
	fi
	no_temp "$tmp/o" "fold of a big layer truncated meanwhile" big
	rm -rf "$tmp/big" "$tmp/o/big"
else
	skip "fold of a big layer truncated meanwhile" "no $PY"
	skip "fold of a big layer truncated meanwhile: no temporary left" "no $PY"
fi
[ "$fails" -eq 0 ]
