#!/bin/sh
# verify A B on residual-frame rewrites (R1, R2), their named breaks:
# see tests/verify_residual_check.py. Skipped without numpy.
PY=/usr/bin/python3
if ! "$PY" -c 'import numpy' 2>/dev/null; then
	echo "1..0 # SKIP python3-numpy is not installed"
	exit 0
fi
exec "$PY" "${SRCDIR:-.}/tests/verify_residual_check.py"
