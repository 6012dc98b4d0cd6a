#!/bin/sh
# ropefold quick start, step one, on Debian 12: install what is missing,
# build out of tree in build/ and start ropefold on the built-in default
# layer (the TUI on a terminal, a check report otherwise).
#   ./setup.sh            install, build, run
#   ./setup.sh --no-run   install and build only (CI)
set -e
cd "$(dirname "$0")"

PKGS="gcc make autoconf automake pkg-config libopenblas-dev liblapacke-dev
libncurses-dev libreadline-dev libcmocka-dev libjansson-dev libcairo2-dev tmux jq python3-numpy"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		missing="$missing $p"
	fi
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" -eq 0 ]; then
		echo "setup: installing$missing"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq $missing >/dev/null
	else
		echo "setup: missing packages; run this as root, then ./setup.sh again:" >&2
		echo "  apt-get install -y$missing" >&2
		exit 1
	fi
fi

# A top-level folder named core/ collides with autoconf's 'rm -f core':
# always build out of tree (configure still says it cannot remove the
# build's own core/ folder: harmless, so its chatter goes to a log that is
# shown only when a step fails).
log=$(mktemp "${TMPDIR:-/tmp}/ropefold-setup.XXXXXX")
trap 'rm -f "$log"' EXIT
quiet() { "$@" >"$log" 2>&1 || { cat "$log" >&2; echo "setup: '$*' failed" >&2; exit 1; }; }
[ -x configure ] || quiet ./autogen.sh
mkdir -p build
cd build
[ -f Makefile ] || quiet ../configure -q
make -j"$(nproc)" >/dev/null
echo "setup: built $(pwd)/ropefold"
rm -f "$log"
trap - EXIT
[ "${1:-}" = "--no-run" ] || exec ./ropefold
