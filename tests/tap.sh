# Shared helpers of the end-to-end test scripts: TAP counters, a scratch
# folder removed on exit, and a runner that checks ropefold's exit status.
# Source it after setting ROPEFOLD; a script ends with `[ "$fails" -eq 0 ]`.
n=0
fails=0
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT

ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }

# run WANT DESCRIPTION ARGS...: run ropefold ARGS (output in $tmp/out and
# $tmp/err) and compare its exit status; on a mismatch show both outputs.
run() {
	want=$1; shift; what=$1; shift
	"$ROPEFOLD" "$@" >"$tmp/out" 2>"$tmp/err"
	got=$?
	if [ "$got" -eq "$want" ]; then
		ok "$what (exit $got)"
	else
		notok "$what: exit $got, expected $want"
		sed 's/^/# /' "$tmp/out" "$tmp/err" | head -20
	fi
}
