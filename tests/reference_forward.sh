#!/bin/sh
# Self-checks of the NumPy reference forward pass (tests/reference_forward.py)
# that ropefold's `logits` is tested against: the golden logits and the
# stories greedy text of ../shared/models when present (skipped otherwise),
# and the identities of tests/reference_forward_check.py always. Skipped
# without numpy.
PY=/usr/bin/python3
if ! "$PY" -c 'import numpy' 2>/dev/null; then
	echo "1..0 # SKIP python3-numpy is not installed"
	exit 0
fi
exec "$PY" "${SRCDIR:-.}/tests/reference_forward_check.py"
