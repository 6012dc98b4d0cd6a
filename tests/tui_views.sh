#!/bin/sh
# Every view of the explorer at 80x24, 100x30 and 200x60, in color, in
# monochrome (NO_COLOR and TERM=xterm-mono) and in the C locale against a
# UTF-8 one: the levels panel, heatmap, offsets, heads, pairs, rotation,
# info, layers (compare mode), the message log and the help. Each screen is
# read back with tmux capture-pane and checked by tests/screen_check.py:
# no box's frame drawn over, no text cut at a box's side (draw_text marks a
# cut with an ellipsis), nothing beyond ASCII in the C locale, the frame at
# the same places in both locales. Then the rotation view's scale and
# scrolling, and the cell styles (:set cells braille|half|ascii). TAP
# output; a skipped plan when tmux or python3 is missing.

if ! command -v tmux >/dev/null 2>&1; then
	echo "1..0 # SKIP tmux is not installed"
	exit 0
fi
if ! command -v python3 >/dev/null 2>&1; then
	echo "1..0 # SKIP python3 is not installed"
	exit 0
fi
ROPEFOLD=${ROPEFOLD:-./ropefold}
case $ROPEFOLD in /*) ;; *) ROPEFOLD=$(pwd)/$ROPEFOLD ;; esac
CHECK="python3 ${SRCDIR:-.}/tests/screen_check.py"
DM=$(cd "${SRCDIR:-.}/data/default-model" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ropefold-tuiv.XXXXXX")
TM="tmux -L ropefold-views-$$ -f /dev/null"
cleanup() {
	$TM kill-server >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
export XDG_STATE_HOME="$WORK/state"

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
	n=$((n + 1)); failed=$((failed + 1))
	echo "not ok $n - $1"
	sed 's/^/#   |/' "${2:-$WORK/screen}"
}
capture() { $TM capture-pane -p -t rf >"$WORK/screen" 2>/dev/null || : >"$WORK/screen"; }
wait_for() {
	i=0
	while [ "$i" -lt "${2:-100}" ]; do
		capture
		grep -Eq -- "$1" "$WORK/screen" && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
check() { if wait_for "$2" "$3"; then ok "$1"; else not_ok "$1"; fi; }
check_not() { capture; if grep -Eq -- "$2" "$WORK/screen"; then not_ok "$1"; else ok "$1"; fi; }
keys() { $TM send-keys -t rf "$@"; }
# start W H LOC TERM ENV CMD...: a new W x H session running CMD
start() {
	w=$1 h=$2 loc=$3 term=$4 envs=$5
	shift 5
	$TM has-session -t keep 2>/dev/null || $TM new-session -d -s keep -x 80 -y 24 "sleep 3600"
	$TM kill-session -t rf >/dev/null 2>&1
	$TM new-session -d -s rf -x "$w" -y "$h" \
		"cd '$WORK' && env TERM=$term LANG=$loc LC_ALL=$loc $envs $* ; echo \"EXIT=\$?\"; sleep 600"
}

# B: a fold of the default model with commutes dropped, for compare mode
if ! "$ROPEFOLD" fold --model "$DM" --drop commutes --out "$WORK/broken" >/dev/null 2>&1; then
	echo "Bail out! ropefold fold could not write the broken fold"
	exit 1
fi

# The views, in the order visited: a name, the keys that show it, and what
# marks it on the screen once drawn.
VIEWS="heatmap:5:m.down,.n.across offset:6:by.offset heads:7:per.query.head
pairs:8:frequency.pair rotation:R:by.RoPE.pair info:9:rotary.dim log:M:message.log
help:?:.of.[0-9]+.
layers:a:first.break.at.layer crotation:R:recovered.R"

# shots W H LOC TERM ENV TAG: every view of one terminal, saved as
# $WORK/TAG-VIEW; the compare-mode ones (layers, the recovered rotation)
# after ':against broken'
shots() {
	start "$1" "$2" "$3" "$4" "$5" "'$ROPEFOLD' tui --model '$DM' --seq 32 --drop commutes"
	tag=$6
	if ! wait_for "score +no" 150; then
		not_ok "$tag: the explorer starts"
		return
	fi
	for v in $VIEWS; do
		name=${v%%:*}
		rest=${v#*:}
		key=${rest%%:*}
		mark=$(echo "${rest#*:}" | tr . ' ')
		if [ "$name" = layers ]; then
			keys ':against broken' Enter
			wait_for "comparing layer 0" 100 || :
		fi
		keys "$key"
		if wait_for "$mark" 50; then
			cp "$WORK/screen" "$WORK/$tag-$name"
		else
			not_ok "$tag: view $name is drawn"
			: >"$WORK/$tag-$name"
		fi
		case $name in log | help) keys x ;; esac
	done
	keys q
	wait_for "EXIT=0" 50 || not_ok "$tag: q quits"
}

for size in ${TUI_VIEWS_SIZES:-80x24 100x30 200x60}; do
	W=${size%x*}
	H=${size#*x}
	for mode in ${TUI_VIEWS_MODES:-color nocolor mono}; do
		case $mode in
		color) term=xterm-256color envs= ;;
		nocolor) term=xterm-256color envs=NO_COLOR=1 ;;
		mono) term=xterm-mono envs= ;;
		esac
		shots "$W" "$H" C.UTF-8 "$term" "$envs" "u-$mode-$size"
		shots "$W" "$H" C "$term" "$envs" "a-$mode-$size"
		for v in $VIEWS; do
			name=${v%%:*}
			u=$WORK/u-$mode-$size-$name
			a=$WORK/a-$mode-$size-$name
			[ -s "$u" ] && [ -s "$a" ] || continue
			if $CHECK "$W" "$H" "$u" "$a" >"$WORK/faults"; then
				ok "$size $mode: $name: frames whole, nothing cut, ASCII in the C locale"
			else
				cat "$WORK/faults" "$u" >"$WORK/report"
				not_ok "$size $mode: $name: frames whole, nothing cut, ASCII in the C locale" "$WORK/report"
			fi
		done
	done
done

echo "1..$n"
[ "$failed" = 0 ]
