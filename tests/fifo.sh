#!/bin/sh
# Paths that are not regular files, where a checkpoint or a file beside it
# is expected: a FIFO (which would block an open or a read for ever), a
# folder, a device, a symlink loop or a dangling symlink. info, check, fold
# and verify answer each with exit 2 and one stderr line naming the path
# and saying what it is; none hangs (every run has a timeout) and fold
# writes nothing. The explorer's :load and :verify are in tests/tui.sh.
# Prints TAP. Needs $ROPEFOLD (set by make check), mkfifo and timeout(1).
: "${ROPEFOLD:=./ropefold}"
: "${SRCDIR:=.}"
if ! command -v mkfifo >/dev/null 2>&1 || ! command -v timeout >/dev/null 2>&1; then
	echo "1..0 # SKIP needs mkfifo and timeout(1)"
	exit 0
fi
. "$SRCDIR/tests/tap.sh"
dm="$SRCDIR/data/default-model"
# a folder holding the default model's config.json and weights
model_dir() { mkdir -p "$1" && cp "$dm/config.json" "$dm/model.safetensors" "$1/"; }

# refused WHAT WANT MODE ARGS...: ropefold MODE ARGS within 20 s, exit 2,
# one stderr line holding WANT
refused() {
	what=$1 want=$2
	shift 2
	timeout 20 "$ROPEFOLD" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	got=$?
	if [ "$got" -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] &&
	   grep -qF -- "$want" "$tmp/err"; then
		ok "$what: $1 refuses it, one line"
	else
		[ "$got" -eq 124 ] && echo "# $what: $1 hung (killed after 20 s)"
		notok "$what: $1: exit $got, wanted 2 and one line with '$want'"
		sed 's/^/#   /' "$tmp/err" | head -5
	fi
}

# every_mode WHAT WANT PATH: info, check, fold and verify (PATH as B) on PATH
n_out=0
every_mode() {
	what=$1 want=$2 path=$3
	refused "$what" "$want" info "$path"
	refused "$what" "$want" check --model "$path"
	n_out=$((n_out + 1))
	refused "$what" "$want" fold --model "$path" --out "$tmp/out-$n_out"
	if [ -e "$tmp/out-$n_out" ]; then notok "$what: fold wrote $tmp/out-$n_out"
	else ok "$what: fold writes nothing"; fi
	refused "$what" "$want" verify "$dm" "$path"
}

echo "1..42"

# ---- the checkpoint itself ------------------------------------------------------
mkfifo "$tmp/fifo.bin"
every_mode "FIFO checkpoint" "$tmp/fifo.bin: is a FIFO (named pipe), not a regular file" \
	"$tmp/fifo.bin"
ln -s loop.bin "$tmp/loop.bin"
refused "symlink loop checkpoint" "$tmp/loop.bin: is a symlink loop" info "$tmp/loop.bin"
ln -s gone.bin "$tmp/dangling.bin"
refused "dangling symlink checkpoint" "$tmp/dangling.bin: is a symlink to gone.bin, which does not exist" \
	check --model "$tmp/dangling.bin"

# ---- a shard ----------------------------------------------------------------------
model_dir "$tmp/shard"
rm "$tmp/shard/model.safetensors"
mkfifo "$tmp/shard/a.safetensors"
printf '{"weight_map": {"model.layers.0.self_attn.q_proj.weight": "a.safetensors"}}' \
	>"$tmp/shard/model.safetensors.index.json"
every_mode "FIFO shard" "$tmp/shard/a.safetensors: is a FIFO" "$tmp/shard"
model_dir "$tmp/fm"
rm "$tmp/fm/model.safetensors"
mkfifo "$tmp/fm/model.safetensors"
refused "FIFO model.safetensors in a folder" "$tmp/fm/model.safetensors: is a FIFO" \
	check --model "$tmp/fm"

# ---- config.json ------------------------------------------------------------------
model_dir "$tmp/fc"
rm "$tmp/fc/config.json"
mkfifo "$tmp/fc/config.json"
every_mode "FIFO config.json" "$tmp/fc/config.json: is a FIFO" "$tmp/fc"
refused "FIFO config.json beside a file" "$tmp/fc/config.json: is a FIFO" \
	check --model "$tmp/fc/model.safetensors"
model_dir "$tmp/fd"
rm "$tmp/fd/config.json"
mkdir "$tmp/fd/config.json"
every_mode "folder config.json" "$tmp/fd/config.json: is a folder, not a regular file" "$tmp/fd"
model_dir "$tmp/fl"
rm "$tmp/fl/config.json"
ln -s config.json "$tmp/fl/config.json"
every_mode "symlink loop config.json" "$tmp/fl/config.json: is a symlink loop" "$tmp/fl"
model_dir "$tmp/fn"
rm "$tmp/fn/config.json"
ln -s gone.json "$tmp/fn/config.json"
refused "dangling symlink config.json" \
	"$tmp/fn/config.json: is a symlink to gone.json, which does not exist" check --model "$tmp/fn"

# ---- the shard index: refused, not silently ignored ----------------------------
model_dir "$tmp/fi"
mkfifo "$tmp/fi/model.safetensors.index.json"
every_mode "FIFO index" "$tmp/fi/model.safetensors.index.json: is a FIFO" "$tmp/fi"
if [ -c /dev/zero ]; then
	model_dir "$tmp/fz"
	ln -s /dev/zero "$tmp/fz/model.safetensors.index.json"
	every_mode "index that is a symlink to /dev/zero" \
		"$tmp/fz/model.safetensors.index.json: is a symlink to /dev/zero, a character device" \
		"$tmp/fz"
else
	for i in 1 2 3 4 5; do skip "index that is a symlink to /dev/zero" "no /dev/zero"; done
fi

# ---- the sidecar of --undo ---------------------------------------------------------
mkfifo "$tmp/fifo.json"
refused "FIFO sidecar" "$tmp/fifo.json: is a FIFO" \
	fold --model "$dm" --undo "$tmp/fifo.json" --out "$tmp/undo-out"
refused "missing sidecar" "$tmp/none.json: cannot open: No such file or directory" \
	fold --model "$dm" --undo "$tmp/none.json" --out "$tmp/undo-out"
[ "$fails" -eq 0 ]
