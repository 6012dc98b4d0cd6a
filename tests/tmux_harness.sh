# The harness the explorer's tmux test scripts share, sourced (POSIX sh) by
# tui.sh, tui_compare.sh, tui_views.sh, mla_tui.sh and figures.sh: a work
# folder and a private tmux server, both removed at exit; the TAP counters;
# the screen helpers. Before sourcing, set HARNESS (a short name for the
# folder and the server) and, to match screens in one locale whatever the
# caller's, SCREEN_LOCALE. The session under test is named rf.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ropefold-$HARNESS.XXXXXX") || exit 99
TM_SOCKET=ropefold-$HARNESS-$$
TM="tmux -L $TM_SOCKET -f /dev/null"
cleanup() {
	$TM kill-server >/dev/null 2>&1
	rm -f "${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$TM_SOCKET"
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
# the explorer's history and message log go here, not to the user's
export XDG_STATE_HOME="$WORK/state"

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
# not_ok DESC [FILE]: a failure, shown with FILE (default: the last screen)
not_ok() {
	n=$((n + 1)); failed=$((failed + 1))
	echo "not ok $n - $1"
	sed 's/^/#   |/' "${2:-$WORK/screen}"
}
capture() { $TM capture-pane -p -t rf >"$WORK/screen" 2>/dev/null || : >"$WORK/screen"; }
# screen_has ERE: whether the last captured screen matches
screen_has() {
	if [ -n "${SCREEN_LOCALE:-}" ]; then
		LC_ALL=$SCREEN_LOCALE grep -Eq -- "$1" "$WORK/screen"
	else
		grep -Eq -- "$1" "$WORK/screen"
	fi
}
# wait_for ERE [TENTHS]: poll the screen until it matches (default 10 s)
wait_for() {
	i=0
	while [ "$i" -lt "${2:-100}" ]; do
		capture
		screen_has "$1" && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
# settle [TENTHS]: capture until two captures 0.1 s apart agree (default at
# most 3 s), so that a screen a slow build is still drawing is not judged
# half drawn
settle() {
	i=0
	capture
	cp "$WORK/screen" "$WORK/screen.prev"
	while [ "$i" -lt "${1:-30}" ]; do
		sleep 0.1
		capture
		cmp -s "$WORK/screen" "$WORK/screen.prev" && return 0
		cp "$WORK/screen" "$WORK/screen.prev"
		i=$((i + 1))
	done
	return 1
}
# check DESC ERE [TENTHS], check_not DESC ERE: TAP lines on the screen
check() { if wait_for "$2" "$3"; then ok "$1"; else not_ok "$1"; fi; }
check_not() { capture; if screen_has "$2"; then not_ok "$1"; else ok "$1"; fi; }
keys() { $TM send-keys -t rf "$@"; }
