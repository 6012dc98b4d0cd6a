#!/bin/sh
# check --r1 and --r3 (R1 with the norm fused or not, R3 online or folded)
# on random layers, the default model and a shared checkpoint, every
# number recomputed by NumPy from the definitions: see
# tests/frame_check.py. Skipped without numpy. Needs $ROPEFOLD and
# $BUILDDIR (set by make check).
PY=/usr/bin/python3
if ! "$PY" -c 'import numpy' 2>/dev/null; then
	echo "1..0 # SKIP python3-numpy is not installed"
	exit 0
fi
exec "$PY" "${SRCDIR:-.}/tests/frame_check.py"
