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
HARNESS=tuiv
SCREEN_LOCALE=C.UTF-8
. "${SRCDIR:-.}/tests/tmux_harness.sh"
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
			settle || :
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

# ---- the rotation view at 80x24: scaled, labelled, scrolled ------------------
# The default model: d = 16, theta 10000, the half layout. Each pair's row
# is labelled with its frequency theta^(-2i/d) (RoPE's definition), in at
# most two significant digits.
start 80 24 C.UTF-8 xterm-256color "" "'$ROPEFOLD' tui --model '$DM' --seq 32"
check "rotation: the explorer starts" "residual +yes +. holds" 150
keys R
check "rotation at 80x24: 16 coordinates pooled two a cell (one pair), and said so" \
	"all 16 coords, 2 a cell \(max\|R\|\)"
pair=0  # not i: wait_for counts with that
while [ "$pair" -lt 8 ]; do
	f=$(python3 -c "w = 10000.0 ** (-2 * $pair / 16); print('%.2g' % w if w >= 0.01 else '%.0e' % w)")
	check "rotation: pair $pair's row labelled with its frequency $f" "^│.{24}││p$pair +$f "
	pair=$((pair + 1))
done
keys NPage
check "PgDn: one coordinate a cell, the window said" "coords 0-7 of 16; PgUp/PgDn scroll"
# a commuting fold is 2x2 blocks on the diagonal: coordinate 0's row has
# its pair's two cells, then nothing (the six other coordinates of the
# window, two columns each); coordinate 1's row the same
check "... a commuting R is 2x2 blocks on the diagonal (row of coordinate 0)" "^│.{24}││p0 +1 [^ ]{4} {12} "
check "... (row of coordinate 1)" "^│.{24}││ {9}[^ ]{4} {12} "
check "... (pair 1 starts two cells on)" "^│.{24}││p1 +0.32 {5}[^ ]{4} {8} "
keys NPage
check "PgDn again: the next coordinates" "coords 8-15 of 16"
check "... labelled with their pairs" "^│.{24}││p4 +0.01 "
keys NPage
check "PgDn at the end stays at the end" "coords 8-15 of 16"
keys PPage
check "PgUp: back by one step" "coords 0-7 of 16"
# (the Home key's own sequence differs between terminals: its command)
keys ':scroll home' Enter
check ":scroll home (Home): the whole matrix again" "all 16 coords, 2 a cell"
keys z
check "z: over the whole screen, 16 coordinates one a cell" "all 16 coords, 1 a cell"
check "... every pair's row there, the last too" "^│p7 3e-04 "
keys z ':rotation all' Enter
check ":rotation all: R_q, R_k, R_v side by side" "R_q.*R_k.*R_v"
keys ':scroll sideways' Enter
check ":scroll with a bad word: the command's message" "scroll: 'sideways' is not down, up or home"

# ---- the info view scrolls ---------------------------------------------------
keys 9
check "info at 80x24: the lines shown and how to see the rest" "lines 1-[0-9]+ of [0-9]+: PgDn more"
check "info: the stored dtype" "stored F32"
check "info: theta and its value on one line" "theta 10000"
keys NPage
check "info: PgDn scrolls (five lines, or to the end)" "lines [2-6]-[0-9]+ of [0-9]+"
check "info: ... to the diagnostics" "diagnose "
keys ':scroll home' Enter
check "info: :scroll home back to the top" "lines 1-[0-9]+ of"
keys 5 ':scroll down' Enter
check "the heatmap does not scroll, and says which views do" "heatmap view fits its box"

# ---- cells: braille, half blocks, ASCII --------------------------------------
keys ':drop commutes' Enter
check "cells: scores break" "score +no +. breaks"
keys ':cells braille' Enter
check ":cells braille: the heatmap in braille dots, full where every bin breaks" "⣿{4}"
check "... the legend says what a dot is" "⣿ rel > tol"
keys 6
check ":cells braille: the offset plot in braille" "⣿{8}"
keys ':cells half' Enter
check ":cells half: the offset plot's bars in half rows" "[▄█]{8}"
keys 5
check ":cells half: the heatmap in half blocks" "[▀▄]{4}"
keys C
check "C cycles the cell style" "cells braille"
keys C C
check "... to ascii" "cells ascii"
check_not "... which draws no half block nor braille" "[▀▄⣿⣦⡀⣤]"
keys q
check "cells: q quits" "EXIT=0"
start 80 24 C xterm-256color NO_COLOR=1 "'$ROPEFOLD' tui --model '$DM' --seq 32 --drop commutes"
check "C locale: the explorer starts" "score +no"
keys ':cells braille' Enter
check "C locale: braille asked, the status says ASCII is drawn" "cells braille \(drawn in ASCII: the locale is not UTF-8\)"
check "... the ASCII legend" "\.\. < 1e-14"
if LC_ALL=C grep -q "$(printf '[\200-\377]')" "$WORK/screen"; then
	not_ok "... nothing beyond ASCII on the screen"
else
	ok "... nothing beyond ASCII on the screen"
fi
keys q

# ---- the levels panel of a large layer: where, without running over ---------
# h31 (511,510) does not fit 80 columns: fewer coordinates, each one true
big="--d-model 1024 --heads 32 --kv-heads 8 --head-dim 32 --seq 512 --drop commutes"
for size in 80x24 100x30; do
	W=${size%x*}
	H=${size#*x}
	start "$W" "$H" C.UTF-8 xterm-256color "" "'$ROPEFOLD' tui $big"
	if wait_for "score .* breaks" 900; then
		settle || :
		if $CHECK "$W" "$H" "$WORK/screen" >"$WORK/faults"; then
			ok "$size, T=512, H=32: the levels box is whole"
		else
			cat "$WORK/faults" "$WORK/screen" >"$WORK/report"
			not_ok "$size, T=512, H=32: the levels box is whole" "$WORK/report"
		fi
		if [ "$W" = 80 ]; then
			check "80x24: the score's worst place by head and query" "score .* h[0-9]+ m[0-9]+ +│"
		else
			check "100x30: the score's worst place whole" "score .* h[0-9]+ \([0-9]+,[0-9]+\) +│"
		fi
	else
		not_ok "$size, T=512, H=32: the evaluation arrives"
	fi
	keys q
done

echo "1..$n"
[ "$failed" = 0 ]
