#!/bin/sh
# ropefold logits against the NumPy reference forward pass on every family
# (tests/family_fixtures.py), the shared checkpoints' golden logits and
# stories text when present, and bad input: see tests/logits_check.py.
# Skipped without numpy.
PY=/usr/bin/python3
if ! "$PY" -c 'import numpy' 2>/dev/null; then
	echo "1..0 # SKIP python3-numpy is not installed"
	exit 0
fi
exec "$PY" "${SRCDIR:-.}/tests/logits_check.py"
