#!/bin/sh
# Cross-check `ropefold check` against an independent NumPy implementation
# of SPEC 2.1/2.2 (tests/reference_check.py). Skipped without numpy.
PY=/usr/bin/python3
if ! "$PY" -c 'import numpy' 2>/dev/null; then
	echo "1..0 # SKIP python3-numpy is not installed"
	exit 0
fi
exec "$PY" "${SRCDIR:-.}/tests/reference_check.py"
