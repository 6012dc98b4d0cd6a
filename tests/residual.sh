#!/bin/sh
# fold --residual (R1, norms fused) and --vo (R2) on every pre-norm family
# of tests/family_fixtures.py and on the shared checkpoints, judged by the
# NumPy reference forward pass: see tests/residual_check.py. Skipped
# without numpy.
PY=/usr/bin/python3
if ! "$PY" -c 'import numpy' 2>/dev/null; then
	echo "1..0 # SKIP python3-numpy is not installed"
	exit 0
fi
exec "$PY" "${SRCDIR:-.}/tests/residual_check.py"
