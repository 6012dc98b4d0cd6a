#!/bin/sh
# End-to-end tests of the explorer's compare mode and the screens of issue
# 12 (items 1, 2 and 5): --against and :against, the compare panel, the
# layers and rotation views, :verify opening compare mode at the first
# break, the whole explanation (w) and the message log (M), the two RoPE
# toggles, reset's and :load's words; at 80x24, in monochrome (NO_COLOR)
# and in the C locale. The real binary in tmux, read back with
# capture-pane; TAP output; a skipped plan when tmux is missing.

if ! command -v tmux >/dev/null 2>&1; then
	echo "1..0 # SKIP tmux is not installed"
	exit 0
fi
ROPEFOLD=${ROPEFOLD:-./ropefold}
case $ROPEFOLD in /*) ;; *) ROPEFOLD=$(pwd)/$ROPEFOLD ;; esac
DM=$(cd "${SRCDIR:-.}/data/default-model" && pwd)
HARNESS=tuic
. "${SRCDIR:-.}/tests/tmux_harness.sh"
LOC=C.UTF-8
start() {
	$TM has-session -t keep 2>/dev/null || $TM new-session -d -s keep -x 80 -y 24 "sleep 3600"
	$TM kill-session -t rf >/dev/null 2>&1
	$TM new-session -d -s rf -x 80 -y 24 \
		"cd '$WORK' && env TERM=xterm-256color LANG=$LOC LC_ALL=$LOC $* ; echo \"EXIT=\$?\"; sleep 600"
}

# the pairs: a commuting fold of the default model, one with commutes dropped
if ! "$ROPEFOLD" fold --model "$DM" --out "$WORK/good" >/dev/null 2>&1 ||
   ! "$ROPEFOLD" fold --model "$DM" --drop commutes --out "$WORK/broken" >/dev/null 2>&1; then
	echo "Bail out! ropefold fold could not write the pairs"
	exit 1
fi

# ---- --against: compare mode on a commuting fold ------------------------------
start "'$ROPEFOLD' tui --model '$DM' --against good"
check "--against: the compare panel replaces the toggles" "compare ─+┐┌─ levels"
check "... it names B" "good #0"
check "... and what verify recovered" "commuting fold"
check "... per kv group the angles of the rotation" "g0 rot -?[0-9]+"
check "... every level holds against B's stored layer" "residual +yes +. holds"
check "... the why line quotes the relation" "B is equivalent to A: commuting"
check "... verify's class of the layer" "│ +within dtype rounding"
check "... and the tolerance the weights were judged at" "│ +tol 1.8e-07 "
keys c
check "a toggle key in compare mode: said that there is nothing to toggle" "compare mode: nothing to toggle"
keys a
check "a: the layers view lists every layer" "2 layers: B is a fold of A in every one"
check "... and the loosest class of them" "every layer at most within dtype rounding"
check "... with each kv group's status" "1 +commuting fold +g0. g1."
keys R
check "R: the rotation view of the recovered R_q" "recovered R by RoPE pair"
check "... the pairs and their frequencies label the rows" "p0 +1 "
keys ':rotation all' Enter
check ":rotation all: R_q, R_k and R_v side by side" "R_q +R_k +R_v"
keys w
check "w: the whole explanation" "why: the whole explanation"
keys x M
check "M: the message log keeps the explanation" "why +B is equivalent to A"
keys x ':against off' Enter
check ":against off: the toggles again" "c \[x\] commutes"
check "... and the fold's levels" "score +yes +. holds"
keys M
check "... the log kept the message" "compare mode off"
keys x

# ---- :verify opens compare mode at the first break -------------------------------
keys ':verify broken' Enter
check ":verify: the layers view, the first break marked" "first break at layer 0"
check "... the break's reason per layer" ">   0 +mixes-pairs W_k"
check "... the compare panel says what verify found" "mixes-pairs"
check "... and the levels are the real difference: the score breaks" "score +yes +. breaks"
check_not "... never 'holds' beside the break" "score +yes +. holds"
keys M
check "... the verify result is in the log" "verify +verify: first break at layer 0"
keys x R
check "rotation view on a break: what verify had not reached is said" "verify stopped at W_k"
keys q
check "q leaves compare mode's screen" "EXIT=0"

# ---- the fold's two layouts, reset, :load, :layer ---------------------------------
start "'$ROPEFOLD'"
check "default model: the fold's layout toggle" "y fold for: own"
keys r
check "r on a checkpoint: its RoPE is its own" "layer rope: a checkpoint's is its own"
keys y
check "y: the fold built for the other layout" "y fold for: interleaved"
check "... the mismatch in the panel: commutes does not hold" "\[!\] commutes: no"
check "... and the score level breaks" "score +no +. breaks"
keys 0
check "0: reset says what it kept" "fold reset: .*kept"
check "... the fold's own layout again" "y fold for: own"
check "... every level holds" "score +yes +. holds"
keys ':load random' Enter
check ":load confirms what it loaded" "loaded random, layer 0: D=64"
keys r
check "r on a random layer: its own RoPE" "layer rope interleaved"
keys ':load default' Enter
check "... and :load forgets it" "r layer rope: half"
keys ':layer 7' Enter
check ":layer out of range: in the command's words" ":layer: layer 7 is out of range"
keys 9
check "info view: the stored dtype" "stored F32"
keys c
check "a cut why line offers w" "│ w   "
keys w
check "w: the whole text, not cut" "Scores break worst at head"
keys x q
check "q" "EXIT=0"

# ---- :verify of the same bits says identical; a changed tour card says so -----------
start "'$ROPEFOLD' tui --model '$DM'"
check "started on the default model" "score +yes +. holds"
keys ':verify '"$DM" Enter
check ":verify of the same checkpoint: compare mode" "compare ─+┐"
keys M
check "... verify's word: identical" "identical to"
keys x q
check "q" "EXIT=0"
start "'$ROPEFOLD' tour"
check "tour: first stop" "tour 1/[0-9]+"
check_not "tour: an untouched card claims nothing extra" "changed: the card"
keys c
check "tour: a toggle changed: the card says its claim is for its own settings" "changed: the card"
keys q
check "tour q" "EXIT=0"

# ---- stale results are dimmed while a slow evaluation computes -------------------
start "'$ROPEFOLD' tui --d-model 4096 --heads 32 --kv-heads 8 --head-dim 128 --seq 512"
check "8B layer: the first evaluation arrives" "residual +yes +. holds" 1200
keys c
dimmed=no
i=0
while [ "$i" -lt 200 ]; do
	$TM capture-pane -e -p -t rf >"$WORK/screen" 2>/dev/null
	if grep -q "computing" "$WORK/screen"; then
		# the levels row of the old answer, in SGR 2 (dim), its frame intact
		grep -a "score" "$WORK/screen" | grep -aq "$(printf '\033')\[2m│ score" && dimmed=yes
		break
	fi
	sleep 0.05
	i=$((i + 1))
done
if [ "$dimmed" = yes ]; then ok "8B layer: the old levels are dimmed under the computing mark"; else not_ok "8B layer: the old levels are dimmed under the computing mark"; fi
check "8B layer: the new result arrives" "score +no +. breaks" 600
keys q
check "8B layer: exits" "EXIT=0" 100

# ---- monochrome ------------------------------------------------------------------
start "env NO_COLOR=1 '$ROPEFOLD' tui --model '$DM' --against broken"
check "NO_COLOR: compare mode" "compare ─+┐"
keys R
check "NO_COLOR: the rotation view shades with glyphs" "R_q"
keys a
check "NO_COLOR: the layers view" "mixes-pairs W_k +g0. g1"
keys q
check "NO_COLOR: exits" "EXIT=0"

# ---- the C locale -------------------------------------------------------------------
LOC=C
start "'$ROPEFOLD' tui --model '$DM' --against broken"
check "C locale: ASCII frames around the compare panel" "^\+- compare -+\+\+- levels"
check "C locale: ASCII verdict marks" "x mixes-pairs"
keys a
check "C locale: the layers view in ASCII" "g0x g1\+"
keys ':rotation k' Enter
check "C locale: the rotation view's shades are ASCII" "R_k"
check_not "C locale: no UTF-8 block" "█|▓|▒|░"
keys q
check "C locale: exits" "EXIT=0"
# a partial rotary dim: the pairs labelled by frequency, the non-rotary block last
start "'$ROPEFOLD' tui --head-dim 16 --rotary-dim 8"
check "rotary dim 8 of 16: started" "score +yes"
keys R
check "rotation view: the pair rows carry their frequency" "\|p3 +1e-03 "
check "... the non-rotary block is marked" "\|nr "
check "... a commuting R_q: blocks on the diagonal, nothing off them, the non-rotary block apart" "\|p0 +1 ([-:+#]{1,2}) +,{4,8}  "
keys q
check "rotary dim 8: exits" "EXIT=0"

echo "1..$n"
[ "$failed" = 0 ]
