#!/bin/sh
# verify --logits on residual-frame folds (R1, R2), across formats, their
# breaks at the model level, R4 at Llama widths: see
# tests/verify_residual_logits_check.py. Skipped without numpy.
PY=/usr/bin/python3
if ! "$PY" -c 'import numpy' 2>/dev/null; then
	echo "1..0 # SKIP python3-numpy is not installed"
	exit 0
fi
exec "$PY" "${SRCDIR:-.}/tests/verify_residual_logits_check.py"
