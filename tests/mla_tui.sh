#!/bin/sh
# The explorer on a random DeepSeek MLA layer, driven in tmux: the levels
# hold, a dropped shared-qk breaks them, per-head does not. TAP output; a
# skipped plan when tmux is missing. Needs $ROPEFOLD (set by make check).
if ! command -v tmux >/dev/null 2>&1; then
	echo "1..0 # SKIP tmux is not installed"
	exit 0
fi
ROPEFOLD=${ROPEFOLD:-./ropefold}
HARNESS=mla-tui
. "${SRCDIR:-.}/tests/tmux_harness.sh"

$TM new-session -d -s keep -x 80 -y 24 "sleep 600"
$TM new-session -d -s rf -x 100 -y 30 \
	"env TERM=xterm-256color LANG=C.UTF-8 LC_ALL=C.UTF-8 '$ROPEFOLD' tui --kv-lora-rank 16 --qk-rope-dim 8 --heads 4; echo EXIT=\$?; sleep 600"
check "MLA layer: the header shows one kv head, head dim nope + rope" "H=4 G=1 d=24"
check "MLA layer: the residual level holds" "residual +guaranteed +. holds"
keys ':drop shared-qk' Enter
check ":drop shared-qk: the score level breaks (nope part too)" "score +not guaranteed +. breaks"
keys s
keys ':drop per-head' Enter
check "shared-qk held again, per-head dropped: the score level holds" "score +guaranteed +. holds"
keys 9
check "the info view names the MLA dims" "mla +kv_lora 16  q_lora 0 \(q_proj\)  nope 16"
keys q
check "quits with status 0" "EXIT=0"
echo "1..$n"
[ "$failed" -eq 0 ]
