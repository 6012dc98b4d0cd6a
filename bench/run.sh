#!/bin/sh
# The performance table: ropefold bench on a small, a medium and a
# Llama-3-8B-shaped layer, in float64 and float32, with the share of the
# machine's own GEMM rate; then the NumPy implementation of the same
# float64 check on the 8B-shaped layer, when python3-numpy is installed.
#
# usage: bench/run.sh [ROPEFOLD] [REPEAT]    (make bench runs it)
# Run it on an otherwise idle machine: the numbers are wall-clock times.
set -eu
ROPEFOLD=${1:-${ROPEFOLD:-./ropefold}}
REPEAT=${2:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3

field() {  # field KEY JSON: a number from ropefold bench --json
	printf '%s\n' "$2" | sed -n "s/^ *\"$1\": *\\([-0-9.e+]*\\),\\{0,1\\}\$/\\1/p"
}

echo "machine: $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)"
printf '%-7s %-26s %-4s %8s %8s %8s %7s %8s %6s %6s\n' layer shape prec cold_s toggle_s GFLOP GFLOP/s gemm_GF/s share tog/cold
for size in small medium 8b; do
	case $size in
	small)  shape="--d-model 512 --heads 8 --kv-heads 2 --head-dim 64 --seq 128" ;;
	medium) shape="--d-model 2048 --heads 16 --kv-heads 4 --head-dim 128 --seq 256" ;;
	8b)     shape="--d-model 4096 --heads 32 --kv-heads 8 --head-dim 128 --seq 512" ;;
	esac
	for prec in f64 f32; do
		# shellcheck disable=SC2086
		j=$("$ROPEFOLD" bench $shape --precision $prec --repeat "$REPEAT" --json)
		D=$(field d_model "$j"); H=$(field heads "$j"); G=$(field kv_heads "$j")
		d=$(field head_dim "$j"); T=$(field seq "$j")
		if [ "$prec" = f32 ]; then peak=$(field sgemm_gflops "$j"); else peak=$(field dgemm_gflops "$j"); fi
		printf '%-7s %-26s %-4s %8.3f %8.3f %8.2f %7.1f %8.1f %5.0f%% %6.2f\n' "$size" \
			"D$D H$H G$G d$d T$T" "$prec" "$(field cold_seconds "$j")" \
			"$(field toggle_seconds "$j")" "$(field gflop "$j")" "$(field gflops "$j")" \
			"$peak" "$(awk -v s="$(field peak_share "$j")" 'BEGIN { print s * 100 }')" \
			"$(field toggle_ratio "$j")"
		if [ "$size" = 8b ]; then
			eval "cold_$prec=$(field cold_seconds "$j")"
			[ "$prec" = f64 ] && rss=$(field peak_rss_mb "$j") && rssr=$(field rss_ratio "$j")
		fi
	done
done
printf 'float32/float64 cold (8b): %.2f\n' "$(awk -v a="$cold_f32" -v b="$cold_f64" 'BEGIN { print a / b }')"
printf 'peak memory (8b, f64): %.0f MB, %.1fx the layer weights and input\n' "$rss" "$rssr"
if [ -x "$PY" ] && "$PY" -c 'import numpy' 2>/dev/null; then
	np=$("$PY" "$HERE/numpy_check.py" --repeat "$REPEAT" --json | sed -n 's/.*"seconds": \([0-9.e+-]*\).*/\1/p')
	printf 'numpy check (8b, f64): %.3f s; ropefold cold / numpy = %.2f\n' "$np" \
		"$(awk -v a="$cold_f64" -v b="$np" 'BEGIN { print a / b }')"
else
	echo "numpy check: skipped (no python3-numpy)"
fi
