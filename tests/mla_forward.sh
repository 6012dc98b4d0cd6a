#!/bin/sh
# DeepSeek-V2/V3's whole-model forward pass (MLA attention, dense and
# expert layers, V2 and V3 routing) against the NumPy reference on seeded
# tiny folders, logits on MLA, and verify --logits on an MLA fold: see
# tests/mla_forward_check.py. Skipped without numpy.
PY=/usr/bin/python3
if ! "$PY" -c 'import numpy' 2>/dev/null; then
	echo "1..0 # SKIP python3-numpy is not installed"
	exit 0
fi
exec "$PY" "${SRCDIR:-.}/tests/mla_forward_check.py"
