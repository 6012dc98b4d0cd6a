#!/bin/sh
# End-to-end tests of how `ropefold fold` writes, on the built-in default
# model (always there, so nothing here skips): an OUT that is one of the
# files the run reads (by any path) is refused, two folds racing to one OUT
# never both succeed, every terminating signal leaves no temporary, a stale
# temporary of a killed fold is removed by the next fold to OUT, and --undo
# refuses a sidecar that does not describe its file. Races and signals are
# made deterministic by ROPEFOLD_TEST_FAIL=pause:FILE, which holds a fold
# just before it publishes anything until FILE exists. Prints TAP.
: "${ROPEFOLD:=./ropefold}"
: "${SRCDIR:=.}"
. "$SRCDIR/tests/tap.sh"
D=$SRCDIR/data/default-model

has_err() {
	if grep -q -- "$1" "$tmp/err"; then ok "$2"
	else notok "$2: no '$1' on stderr"; sed 's/^/# /' "$tmp/err"; fi
}
has_out() {
	if grep -q -- "$1" "$tmp/out"; then ok "$2"
	else notok "$2: no '$1' on stdout"; sed 's/^/# /' "$tmp/out"; fi
}
one_line() {
	if [ "$(wc -l <"$tmp/err")" -eq 1 ]; then ok "$1: one line on stderr"
	else notok "$1: stderr is not one line"; sed 's/^/# /' "$tmp/err"; fi
}
same() {
	if cmp -s "$1" "$2"; then ok "$3"; else notok "$3: $1 and $2 differ"; fi
}
absent() {
	if [ ! -e "$1" ]; then ok "$2"; else notok "$2: $1 exists"; fi
}
# only DIR NAMES...: DIR holds exactly NAMES (dot files too).
only() {
	dir=$1; shift
	want=$(for f in "$@"; do echo "$f"; done | sort | tr '\n' ' ')
	got=$(ls -A "$dir" | sort | tr '\n' ' ')
	if [ "$got" = "$want" ]; then ok "$dir holds $*"
	else notok "$dir holds '$got', expected '$want'"; fi
}
# start_paused ARGS...: ropefold fold ARGS in the background, held before it
# publishes; waits until it is held (at most 30 s). Sets pid; 1 when the
# fold never got there.
start_paused() {
	rm -f "$tmp/go" "$tmp/go.paused"
	ROPEFOLD_TEST_FAIL=pause:$tmp/go "$ROPEFOLD" fold "$@" >"$tmp/a.out" 2>"$tmp/a.err" &
	pid=$!
	i=0
	while [ ! -e "$tmp/go.paused" ]; do
		i=$((i + 1))
		if [ $i -gt 300 ] || ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			return 1
		fi
		sleep 0.1
	done
	return 0
}
# resume: let the held fold go on; its exit status in st.
resume() {
	touch "$tmp/go"
	wait "$pid"
	st=$?
}

# fresh DIR: a copy of the default model in DIR (each part of this script
# reads its own, so that one failure does not spoil the next).
fresh() {
	mkdir -p "$1/sub"
	cp "$D/config.json" "$D/model.safetensors" "$1/"
}
fresh "$tmp/in"
IN=$tmp/in/model.safetensors

# ---- an output that is a file the run reads, by any path ---------------------
A=$tmp/alias
for how in plain dotdot symlink hardlink; do
	fresh "$A"
	case $how in
	plain) out=$A/config.json ;;
	dotdot) out=$A/sub/../config.json ;;
	symlink) ln -s alias/config.json "$tmp/link.json"; out=$tmp/link.json ;;
	hardlink) ln "$A/config.json" "$tmp/hard.json"; out=$tmp/hard.json ;;
	esac
	run 2 "OUT is the input's config.json ($how)" fold --model "$A/model.safetensors" --out "$out" \
		--force
	one_line "OUT = config.json ($how)"
	same "$D/config.json" "$A/config.json" "the input's config.json is untouched ($how)"
	rm -rf "$A" "$tmp/link.json" "$tmp/hard.json"
done
fresh "$A"
run 2 "a folder OUT that holds the input" fold --model "$A" --out "$A/sub/.." --force
same "$D/model.safetensors" "$A/model.safetensors" "the input is untouched"
run 2 "a folder's OUT that is its config.json" fold --model "$A" --out "$A/config.json" --force
has_err "is a file this run reads" "... is named as such"
mkdir "$tmp/u"
run 0 "fold for the undo cases" fold --model "$IN" --out "$tmp/u/f.safetensors" --seed 1
cp "$tmp/u/f.safetensors.fold.json" "$tmp/sidecar-copy.json"
run 2 "OUT is the --undo sidecar" fold --model "$tmp/u/f.safetensors" \
	--undo "$tmp/u/f.safetensors.fold.json" --out "$tmp/u/f.safetensors.fold.json" --force
same "$tmp/sidecar-copy.json" "$tmp/u/f.safetensors.fold.json" "the sidecar is untouched"

# ---- a trailing slash names a folder ------------------------------------------
run 2 "a single file to 'newdir/'" fold --model "$IN" --out "$tmp/newdir/"
one_line "trailing slash"
has_err "trailing slash names a folder" "trailing slash: says why"
absent "$tmp/newdir" "no file named newdir"
run 0 "an HF folder to 'hfout/'" fold --model "$tmp/in" --out "$tmp/hfout/"
[ -d "$tmp/hfout" ] && ok "hfout/ is a folder" || notok "hfout/ is a folder"

# ---- two folds to one OUT: the second to publish fails, nothing mixed --------
mkdir "$tmp/race"
if start_paused --model "$IN" --out "$tmp/race/o.safetensors" --seed 1; then
	ok "a fold held before publishing"
	run 0 "a second fold to the same OUT" fold --model "$IN" --out "$tmp/race/o.safetensors" --seed 2
	resume
	[ "$st" -eq 2 ] && ok "the held fold then fails (exit 2)" || notok "the held fold: exit $st, expected 2"
	cp "$tmp/a.err" "$tmp/err"
	has_err "created meanwhile" "it says the output was created meanwhile"
	only "$tmp/race" config.json o.safetensors o.safetensors.fold.json
	if [ "$(jq .seed "$tmp/race/o.safetensors.fold.json")" = 2 ]; then ok "the sidecar is the second fold's"
	else notok "the sidecar is the second fold's"; fi
	run 0 "OUT and its sidecar belong together" fold --model "$tmp/race/o.safetensors" \
		--undo "$tmp/race/o.safetensors.fold.json" --out "$tmp/race-undone.safetensors"
else
	notok "a fold held before publishing (ROPEFOLD_TEST_FAIL=pause)"
fi
mkdir "$tmp/race2" "$tmp/in2"
cp "$IN" "$tmp/in2/"
{ cat "$D/config.json"; echo; } >"$tmp/in2/config.json"
if start_paused --model "$IN" --out "$tmp/race2/o.safetensors"; then
	run 0 "another checkpoint's fold into the same folder" fold --model "$tmp/in2/model.safetensors" \
		--out "$tmp/race2/p.safetensors"
	resume
	[ "$st" -eq 2 ] && ok "the held fold fails on the other config.json" || notok "held fold: exit $st"
	only "$tmp/race2" config.json p.safetensors p.safetensors.fold.json
	same "$tmp/in2/config.json" "$tmp/race2/config.json" "the other fold's config.json is kept"
else
	notok "a fold held before publishing (config.json race)"
fi
mkdir "$tmp/race3"
if start_paused --model "$tmp/in" --out "$tmp/race3/hf" --seed 1; then
	run 0 "a second fold to the same OUT folder" fold --model "$tmp/in" --out "$tmp/race3/hf" --seed 2
	resume
	[ "$st" -eq 2 ] && ok "the held folder fold fails" || notok "held folder fold: exit $st"
	only "$tmp/race3" hf
	if [ "$(jq .seed "$tmp/race3/hf/fold.json")" = 2 ]; then ok "the folder is the second fold's"
	else notok "the folder is the second fold's"; fi
else
	notok "a folder fold held before publishing"
fi

# ---- signals: no temporary left -------------------------------------------------
mkdir "$tmp/sig"
for sig in INT TERM HUP QUIT PIPE ALRM USR1 USR2 XCPU VTALRM PROF; do
	if start_paused --model "$tmp/in" --out "$tmp/sig/hf"; then
		kill -s "$sig" "$pid"
		wait "$pid"
		st=$?
		if [ "$st" -gt 128 ] && [ -z "$(ls -A "$tmp/sig")" ]; then
			ok "SIG$sig: the fold dies of it and leaves nothing"
		else
			notok "SIG$sig: exit $st, left: $(ls -A "$tmp/sig" | tr '\n' ' ')"
		fi
	else
		notok "SIG$sig: the fold was never held before publishing"
	fi
	rm -rf "$tmp/sig/"* "$tmp/sig/".[!.]* 2>/dev/null
done
mkdir "$tmp/xfsz"
(ulimit -f 64; "$ROPEFOLD" fold --model "$IN" --out "$tmp/xfsz/o.safetensors" >"$tmp/out" 2>"$tmp/err")
st=$?
[ "$st" -eq 2 ] && ok "over the file size limit: exit 2" || notok "over the file size limit: exit $st"
one_line "file size limit"
has_err "File too large" "file size limit: named"
only "$tmp/xfsz"

# ---- stale temporaries ------------------------------------------------------------
# A dead process id (above any pid_max), a live one (this shell), an old
# and a recent modification time, an old-style name without a process id.
mkdir "$tmp/st" "$tmp/st/.hf.tmp-2147483646-aaaaaa" "$tmp/st/.hf.tmp-2147483646-bbbbbb"
for f in .o.safetensors.tmp-2147483646-aaaaaa .o.safetensors.fold.json.tmp-2147483646-aaaaaa \
	.config.json.tmp-2147483646-aaaaaa .o.safetensors.tmp-$$-aaaaaa .o.safetensors.tmp-aaaaaa \
	.hf.tmp-2147483646-aaaaaa/x .hf.tmp-2147483646-bbbbbb/x; do
	: >"$tmp/st/$f"
	touch -d '1 hour ago' "$tmp/st/$f"
done
touch -d '1 hour ago' "$tmp/st/.hf.tmp-2147483646-aaaaaa" "$tmp/st/.hf.tmp-2147483646-bbbbbb"
: >"$tmp/st/.o.safetensors.tmp-2147483645-aaaaaa"
touch "$tmp/st/.hf.tmp-2147483646-bbbbbb/x"
run 0 "a fold beside stale temporaries" fold --model "$IN" --out "$tmp/st/o.safetensors"
has_err "removed 3 stale temporaries" "it says how many it removed"
run 0 "a folder fold beside stale temporaries" fold --model "$tmp/in" --out "$tmp/st/hf"
only "$tmp/st" config.json o.safetensors o.safetensors.fold.json hf .o.safetensors.tmp-$$-aaaaaa \
	.o.safetensors.tmp-aaaaaa .o.safetensors.tmp-2147483645-aaaaaa .hf.tmp-2147483646-bbbbbb
mkdir "$tmp/kill"
ROPEFOLD_TEST_FAIL=kill:1 "$ROPEFOLD" fold --model "$IN" --out "$tmp/kill/o.safetensors" >/dev/null 2>&1
left=$(ls -A "$tmp/kill" | grep '^\.o\.safetensors\.tmp-[0-9]*-......$')
[ -n "$left" ] && ok "SIGKILL leaves a temporary named with its process" \
	|| notok "SIGKILL leaves a temporary named with its process: $(ls -A "$tmp/kill")"
touch -d '1 hour ago' "$tmp/kill/$left"
run 0 "the next fold to OUT" fold --model "$IN" --out "$tmp/kill/o.safetensors"
absent "$tmp/kill/$left" "... removes it"

# ---- --undo with a sidecar that is not the file's --------------------------------
run 0 "fold with another seed" fold --model "$IN" --out "$tmp/u/g.safetensors" --seed 2
run 2 "undo with the other fold's sidecar" fold --model "$tmp/u/f.safetensors" \
	--undo "$tmp/u/g.safetensors.fold.json" --out "$tmp/u/x.safetensors"
one_line "another fold's sidecar"
has_err "is not what .* recorded" "the first tensor that differs is named"
absent "$tmp/u/x.safetensors" "nothing written"
S=$tmp/u/f.safetensors.fold.json
# edit PYTHON NAME: the sidecar S as d, changed by PYTHON, written to NAME
# (Python keeps the 63-bit seeds and every float exactly; jq would not).
edit() {
	/usr/bin/python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
exec(sys.argv[2])
json.dump(d, open(sys.argv[3], "w"))' "$S" "$1" "$tmp/u/$2"
}
edit 'd["layers"] = []' empty.json
run 2 "a sidecar with no layers" fold --model "$tmp/u/f.safetensors" --undo "$tmp/u/empty.json" \
	--out "$tmp/u/x.safetensors"
has_err "records no layers" "no layers: said so"
edit 'd["layers"][0]["rotations"]["q"][0]["angles"][0] += 0.5' angle.json
run 2 "a sidecar whose angle was edited" fold --model "$tmp/u/f.safetensors" \
	--undo "$tmp/u/angle.json" --out "$tmp/u/x.safetensors"
has_err "do not match their checksum" "edited rotations: said so"
edit 't = d["layers"][0]["tensors"]; t.append(dict(t[0], name="no.such.tensor"))' extra.json
run 2 "a sidecar naming a tensor the checkpoint lacks" fold --model "$tmp/u/f.safetensors" \
	--undo "$tmp/u/extra.json" --out "$tmp/u/x.safetensors"
has_err "no.such.tensor" "the tensor is named"
edit 'd["format"] = "gguf"' format.json
run 2 "a sidecar of another format" fold --model "$tmp/u/f.safetensors" \
	--undo "$tmp/u/format.json" --out "$tmp/u/x.safetensors"
has_err "records a fold of a gguf checkpoint" "the formats are named"
run 2 "a sidecar that does not exist" fold --model "$tmp/u/f.safetensors" \
	--undo "$tmp/u/nonexist.json" --out "$tmp/u/x.safetensors"
one_line "missing sidecar"
has_err "nonexist.json: cannot open: No such file or directory" "missing sidecar: the reason"
mkfifo "$tmp/u/fifo.json"
if timeout 20 "$ROPEFOLD" fold --model "$tmp/u/f.safetensors" --undo "$tmp/u/fifo.json" \
	--out "$tmp/u/x.safetensors" >"$tmp/out" 2>"$tmp/err"; then st=0; else st=$?; fi
[ "$st" -eq 2 ] && ok "a FIFO as the sidecar: exit 2, no hang" || notok "a FIFO as the sidecar: exit $st"
has_err "is a FIFO" "FIFO: said so"
run 2 "a folder as the sidecar" fold --model "$tmp/u/f.safetensors" --undo "$tmp/u" \
	--out "$tmp/u/x.safetensors"
has_err "is a folder" "folder: said so"
absent "$tmp/u/x.safetensors" "nothing written by a refused undo"
# A sidecar of an older ropefold (no checksums): accepted, and said so.
edit 'del d["checksum"]
for l in d["layers"]:
    del l["checksum"]
    for t in l["tensors"]:
        del t["checksum_in"], t["checksum_out"]' old.json
run 0 "an older sidecar without checksums" fold --model "$tmp/u/f.safetensors" \
	--undo "$tmp/u/old.json" --out "$tmp/u/old-undone.safetensors"
has_err "records no checksums" "older sidecar: a note says nothing was checked"
has_out "if the sidecar belongs to" "older sidecar: the result is conditional"
# The undo of a fold stored wider: bit for bit, and proven by the checksums.
run 0 "fold into F64" fold --model "$IN" --out "$tmp/u/w.safetensors" --dtype f64
run 0 "undo it, --json" fold --model "$tmp/u/w.safetensors" --undo "$tmp/u/w.safetensors.fold.json" \
	--out "$tmp/u/w-undone.safetensors" --json
if [ "$(jq -c '[.bit_for_bit, .checksums]' "$tmp/out")" = "[true,true]" ]; then
	ok "bit for bit, proven by checksums"
else notok "bit for bit, proven by checksums"; sed 's/^/# /' "$tmp/out"; fi
same "$IN" "$tmp/u/w-undone.safetensors" "... and the bytes are the original's"

echo "1..$n"
[ "$fails" -eq 0 ]
