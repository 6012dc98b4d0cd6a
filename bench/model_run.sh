#!/bin/sh
# The whole-model performance table: ropefold's info, check, verify, fold,
# fold --undo (and logits, when the binary has that mode) on a generated
# Llama-3-8B-shaped BF16 checkpoint, beside a NumPy implementation of the
# same verify and fold (bench/model_numpy.py), `cp -r` of the folder and the
# time to just read the tensors once; wall time and peak RSS of each (GNU
# time), and the ratios the project sets as targets.
#
# usage: bench/model_run.sh [ROPEFOLD [GEN_MODEL]] [--shape 8b|tiny] [--tiny]
#                           [--repeat N] [--seed N] [--report]
# (--report prints the last run's table again from its logs, running nothing.)
# (make -C build bench-model runs it with the build's binaries.)
#
# Disk: the model is generated once (about 16 GB for the 8b shape, a few MB
# for tiny) into $ROPEFOLD_BENCH_DIR (default /tmp) and kept for reuse;
# each run writes one output copy of the same size at a time and removes
# it, except `fold --undo`, which reads one copy while it writes another (a
# second copy for its duration; skipped, with a note, without room for it).
# Needs GNU time as /usr/bin/time (Debian package `time`) and python3-numpy.
# Run it on an otherwise idle machine with RAM for the page cache: the
# numbers are wall-clock times.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROPEFOLD=
GEN=
SHAPE=8b
REPEAT=1
SEED=1
REPORT=0
while [ $# -gt 0 ]; do
	case $1 in
	--shape) SHAPE=$2; shift ;;
	--tiny) SHAPE=tiny ;;
	--repeat) REPEAT=$2; shift ;;
	--seed) SEED=$2; shift ;;
	--report) REPORT=1 ;;
	-*) echo "model_run.sh: unknown option $1" >&2; exit 2 ;;
	*) if [ -z "$ROPEFOLD" ]; then ROPEFOLD=$1; elif [ -z "$GEN" ]; then GEN=$1;
	   else echo "model_run.sh: one ROPEFOLD and one GEN_MODEL, not $1" >&2; exit 2; fi ;;
	esac
	shift
done
ROPEFOLD=${ROPEFOLD:-./ropefold}
GEN=${GEN:-./bench/gen_model}
PY=/usr/bin/python3
NP="$PY $HERE/model_numpy.py"
BENCH=${ROPEFOLD_BENCH_DIR:-/tmp}
MODEL=$BENCH/llama3-$SHAPE-shaped
OUT=$MODEL.out          # the one output copy: a fold, then its removal
UNDONE=$MODEL.undone    # fold --undo's output, while OUT is its input
COPY=$MODEL.copy        # cp -r

# ---- prerequisites ------------------------------------------------------------
if ! /usr/bin/time --version 2>&1 | grep -q GNU; then
	echo "model_run.sh: needs GNU time as /usr/bin/time (apt-get install time)" >&2
	exit 2
fi
if ! "$PY" -c 'import numpy' 2>/dev/null; then
	echo "model_run.sh: needs python3-numpy for the NumPy reference (apt-get install python3-numpy)" >&2
	exit 2
fi
for b in "$ROPEFOLD" "$GEN"; do
	[ -x "$b" ] || { echo "model_run.sh: $b: not an executable (make first)" >&2; exit 2; }
done
mkdir -p "$BENCH"
LOGS=$MODEL.logs        # each command's stdout and stderr of the last run
RES=$LOGS/results       # lines: key seconds peak_rss_kb exit_status peak_anon_kb user_s sys_s
if [ "$REPORT" = 1 ]; then
	[ -s "$RES" ] || { echo "model_run.sh: no earlier run's $RES to report" >&2; exit 2; }
else
	rm -rf "$LOGS"
	mkdir -p "$LOGS"
	: >"$RES"
fi
# the outputs, and the temporaries ropefold fold writes beside them (.NAME.tmp-*)
cleanup() {
	rm -rf "$OUT" "$OUT.partial" "$UNDONE" "$COPY" "$BENCH/.${OUT##*/}".tmp-* \
		"$BENCH/.${UNDONE##*/}".tmp-*
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cleanup

free_bytes() { df -P -B1 "$BENCH" | awk 'NR == 2 { print $4 }'; }
room_for() {  # room_for BYTES: BYTES and 2 GB to spare free under $BENCH?
	[ "$(free_bytes)" -gt "$(($1 + 2000000000))" ]
}
gb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e9 }'; }

# anon_kb PID: the process's anonymous resident memory (kB), 0 once it is gone
anon_kb() {
	a=0
	while read -r k v _; do
		if [ "$k" = RssAnon: ]; then a=$v; fi
	done 2>/dev/null <"/proc/$1/status"
	echo "$a"
}

# timed KEY CMD...: CMD under GNU time; one line "KEY seconds rss_kb status
# anon_kb user_s sys_s" in $RES. GNU time's peak RSS counts the file pages a process has
# mapped (a memmapped or mmapped checkpoint's touched tensors), so the peak
# of its anonymous memory (RssAnon, sampled every 0.2 s) is kept beside it.
timed() {
	key=$1
	shift
	: >"$LOGS/$key.time"
	set +e
	/usr/bin/time -f '%e %M %U %S' -o "$LOGS/$key.time" "$@" >"$LOGS/$key.out" 2>"$LOGS/$key.err" &
	tpid=$!
	peak=0
	while [ ! -s "$LOGS/$key.time" ] && kill -0 "$tpid" 2>/dev/null; do
		child=  # the file holds "PID " without a newline: read fails but sets child
		read -r child _ 2>/dev/null <"/proc/$tpid/task/$tpid/children"
		if [ -n "$child" ]; then
			a=$(anon_kb "$child")
			[ "$a" -gt "$peak" ] && peak=$a
		fi
		sleep 0.2
	done
	wait "$tpid"
	rc=$?
	set -e
	set -- $(tail -n 1 "$LOGS/$key.time")  # seconds rss_kb user_s sys_s
	echo "$key $1 $2 $rc $peak $3 $4" >>"$RES"
	printf '  %-16s %8.2f s %7.0f MB RSS %7.0f MB anon %7.2f s user %7.2f s sys  exit %s\n' \
		"$key" "$1" "$(awk -v k="$2" 'BEGIN { print k / 1024 }')" \
		"$(awk -v k="$peak" 'BEGIN { print k / 1024 }')" "$3" "$4" "$rc" >&2
	if [ "$rc" -gt 1 ]; then
		printf '  %-14s %s\n' "" "$(tail -n 1 "$LOGS/$key.err")" >&2
	fi
	return 0
}

# ---- the model -------------------------------------------------------------------
SIZE=$("$GEN" --shape "$SHAPE" --size)
echo "model: $MODEL ($SHAPE shape, seed $SEED, $(gb "$SIZE") GB; $(gb "$(free_bytes)") GB free" \
	"under $BENCH; a run needs the model and one copy of it, and a second copy while" \
	"fold --undo runs)" >&2
if [ "$REPORT" = 1 ]; then
	:
elif grep -q '"complete": true' "$MODEL/bench-model.json" 2>/dev/null; then
	"$GEN" --shape "$SHAPE" --seed "$SEED" "$MODEL" || exit 2  # nothing to do, or another seed
else
	echo "generating it (once; kept for later runs)" >&2
	timed generate "$GEN" --shape "$SHAPE" --seed "$SEED" "$MODEL"
	grep -q '"complete": true' "$MODEL/bench-model.json" 2>/dev/null || {
		echo "model_run.sh: generating $MODEL failed: $(tail -n 1 "$LOGS/generate.err")" >&2
		exit 2
	}
fi
LAYERS=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["num_hidden_layers"])' \
	"$MODEL/config.json")
LAST=$((LAYERS - 1))
if "$ROPEFOLD" logits --help >/dev/null 2>&1; then HAVE_LOGITS=1; else HAVE_LOGITS=0; fi

# ---- the runs: each pair's order alternates from round to round ------------------
fold_pair() {  # $1 = rf or np first
	for who in $1 $2; do
		rm -rf "$OUT"
		if ! room_for "$SIZE"; then
			echo "  (no room for a folded copy: fold rows skipped)" >&2
			return 0
		fi
		if [ "$who" = rf ]; then
			timed rf_fold "$ROPEFOLD" fold --model "$MODEL" --out "$OUT"
			[ -f "$OUT/fold.json" ] || { echo "  (ropefold fold wrote no $OUT)" >&2; continue; }
			# both models' attention tensors once untimed (into the page cache), then timed
			$NP read "$MODEL" "$OUT" >/dev/null
			timed read_attn $NP read "$MODEL" "$OUT"
			if [ "$1" = rf ]; then
				timed rf_verify "$ROPEFOLD" verify "$MODEL" "$OUT"
				timed np_verify $NP verify "$MODEL" "$OUT"
			else
				timed np_verify $NP verify "$MODEL" "$OUT"
				timed rf_verify "$ROPEFOLD" verify "$MODEL" "$OUT"
			fi
			rm -rf "$UNDONE"
			if room_for "$SIZE"; then
				timed rf_undo "$ROPEFOLD" fold --model "$OUT" --out "$UNDONE" --undo "$OUT/fold.json"
			else
				echo "  (no room for a second copy: fold --undo skipped)" >&2
			fi
			rm -rf "$UNDONE"
		else
			timed np_fold $NP fold --model "$MODEL" --out "$OUT" --seed "$SEED"
			timed np_verify_npfold $NP verify "$MODEL" "$OUT"
		fi
		rm -rf "$OUT"
	done
}

[ "$REPORT" = 1 ] && REPEAT=$(grep -c '^info ' "$RES")
[ "$REPORT" = 1 ] || for round in $(seq 1 "$REPEAT"); do
	echo "round $round of $REPEAT" >&2
	timed info "$ROPEFOLD" info "$MODEL"
	timed check_last "$ROPEFOLD" check --model "$MODEL" --layer "$LAST"
	if [ $((round % 2)) = 1 ]; then fold_pair rf np; else fold_pair np rf; fi
	cat "$MODEL"/*.safetensors >/dev/null
	timed read_all sh -c 'cat "$1"/*.safetensors >/dev/null' sh "$MODEL"
	rm -rf "$COPY"
	if room_for "$SIZE"; then
		timed cp_r cp -r "$MODEL" "$COPY"
		timed sync sh -c 'sync "$1"/*' sh "$COPY"
	else
		echo "  (no room for a copy: cp -r skipped)" >&2
	fi
	rm -rf "$COPY"
	if [ "$HAVE_LOGITS" = 1 ]; then
		timed logits_64 "$ROPEFOLD" logits --model "$MODEL" --seq 64
		timed logits_512 "$ROPEFOLD" logits --model "$MODEL" --seq 512
		# the machine's sgemm rate right after (GFLOP/s, 2048^3, best of 4)
		"$ROPEFOLD" bench --precision f32 --repeat 1 --json 2>/dev/null |
			"$PY" -c 'import json, sys; print(json.load(sys.stdin)["sgemm_gflops"])' \
			>>"$LOGS/sgemm_rates" || true
	fi
done

# ---- the table ---------------------------------------------------------------------
# per key: median seconds, max RSS (MB), the exit statuses seen, max
# anonymous MB, the range of seconds, median user and system CPU seconds
# ("-" in a results file of a run before they were kept)
summary() {
	awk -v k="$1" '
	function median(a, n,   i, j, x) {
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { x = a[i]; a[i] = a[j]; a[j] = x }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	$1 == k { n++; t[n] = $2; u[n] = $6; y[n] = $7; if (NF < 7) old = 1
		  if ($3 > m) m = $3; if ($5 > an) an = $5; rc[$4] = 1 }
	END {
		if (!n) { print "- - - - - - -"; exit }
		s = ""; for (r in rc) s = s (s == "" ? "" : ",") r
		med = median(t, n)
		printf "%.2f %.0f %s %.0f %s %s %s\n", med, m / 1024, s, an / 1024,
			(n > 1 ? sprintf("%.1f-%.1f", t[1], t[n]) : "-"),
			(old ? "-" : sprintf("%.1f", median(u, n))), (old ? "-" : sprintf("%.1f", median(y, n)))
	}' "$RES"
}
sec() { summary "$1" | cut -d' ' -f1; }
row() {  # row KEY LABEL
	set -- "$1" "$2" $(summary "$1")
	[ "$3" = - ] && return 0
	case $1 in
	rf_verify | np_verify | np_verify_npfold)
		v=$(case $5 in 0) echo "fold" ;; 1) echo "not a fold" ;; *) echo "exit $5" ;; esac) ;;
	*) v=$(case $5 in 0) echo "" ;; *) echo "exit $5" ;; esac) ;;
	esac
	printf '%-44s %9s %13s %8s %8s %6s %6s  %s\n' "$2" "$3" "$7" "$4" "$6" "$8" "$9" "$v"
}
ratio() {  # ratio LABEL NUM_KEY DEN_KEY TARGET ("<= X")
	a=$(sec "$2")
	b=$(sec "$3")
	if [ "$a" = - ] || [ "$b" = - ]; then
		printf '%-44s %9s   (target %s; not measured)\n' "$1" - "$4"
		return 0
	fi
	awk -v a="$a" -v b="$b" -v l="$1" -v t="$4" 'BEGIN {
		split(t, w, " ")
		if (b <= 0) { printf "%-44s %9s   target %s: too fast to time\n", l, "-", t; exit }
		r = a / b
		printf "%-44s %9.2f   target %s: %s\n", l, r, t, r <= w[2] ? "met" : "NOT met"
	}'
}

cores=$(nproc)
cpu=$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)
ram=$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
echo
echo "machine: $cores cores, $cpu, ${ram} GB RAM, $(date -u +%Y-%m-%d), load average now $(cut -d' ' -f1-3 /proc/loadavg)"
echo "model: $SHAPE shape ($LAYERS layers), $(gb "$SIZE") GB BF16, seed $SEED; $REPEAT round(s): median time; max peak RSS" \
	"(GNU time, file pages mapped included) and anonymous memory (sampled); median user and" \
	"system CPU seconds (sys holds the kernel's copies and its zeroing of fresh pages)"
printf '%-44s %9s %13s %8s %8s %6s %6s  %s\n' work seconds range RSS_MB anon_MB user sys verdict
row generate "generate the model (this run)"
row info "ropefold info"
row check_last "ropefold check --layer $LAST"
row rf_verify "ropefold verify M M_folded"
row np_verify "numpy verify M M_folded"
row read_attn "read M's and M_folded's attention tensors"
row rf_fold "ropefold fold"
row np_fold "numpy fold"
row np_verify_npfold "numpy verify M (numpy's fold)"
row rf_undo "ropefold fold --undo"
row cp_r "cp -r of the folder"
row sync "sync after cp -r"
row read_all "read M once (cat of the shards)"
if [ "$HAVE_LOGITS" = 1 ]; then
	row logits_64 "ropefold logits --seq 64"
	row logits_512 "ropefold logits --seq 512"
else
	printf '%-44s %9s %13s %8s %8s %6s %6s  %s\n' "ropefold logits --seq 64 / 512" - - - - - - \
		"no logits mode in this binary"
fi
echo
echo "ratios (the targets):"
ratio "verify / numpy verify" rf_verify np_verify "<= 0.5"
ratio "verify / read attention tensors once" rf_verify read_attn "<= 2"
ratio "fold / cp -r" rf_fold cp_r "<= 1.25"
ratio "fold / numpy fold" rf_fold np_fold "<= 0.5"
ratio "fold --undo / cp -r" rf_undo cp_r "<= 1.25"
ratio "fold --undo / numpy fold" rf_undo np_fold "<= 0.5"
if [ "$HAVE_LOGITS" = 1 ]; then
	ratio "logits T=64 / read M once" logits_64 read_all "<= 1.5"
	# The FLOPs of the pass at T = 512 as `ropefold bench` counts a decoder layer
	# (2mnk per product; scores and their weighted sum over the full T x T), and the
	# head's, from config.json; against the median sgemm rate measured after each run.
	t512=$(sec logits_512)
	if [ "$t512" != - ] && [ -s "$LOGS/sgemm_rates" ]; then
		"$PY" - "$MODEL/config.json" "$t512" "$LOGS/sgemm_rates" <<'PYEOF'
import json, statistics, sys
c = json.load(open(sys.argv[1]))
T, D, H, L = 512, c["hidden_size"], c["num_attention_heads"], c["num_hidden_layers"]
G, d = c.get("num_key_value_heads", H), c.get("head_dim") or D // H
F, V = c["intermediate_size"], c["vocab_size"]
layer = 2 * T * D * (H * d + 2 * G * d) + 2 * T * H * d * D + 3 * 2 * T * D * F \
	+ 2 * 2 * T * T * d * H
flop = L * layer + 2 * T * D * V
rates = [float(x) for x in open(sys.argv[3]) if x.strip()]
rate, peak = flop / float(sys.argv[2]) / 1e9, statistics.median(rates)
share = rate / peak
print("%-44s %9.2f   target >= 0.6: %s (%.0f GFLOP in %s s: %.1f GFLOP/s; sgemm %.1f GFLOP/s,"
      " median of %d)" % ("logits T=512 / the sgemm rate", share,
                          "met" if share >= 0.6 else "NOT met", flop / 1e9, sys.argv[2],
                          rate, peak, len(rates)))
PYEOF
	else
		printf '%-44s %9s   (target >= 0.6; not measured)\n' "logits T=512 / the sgemm rate" -
	fi
fi
# one layer of A's and B's attention weights in float32: 2 * 4 * (2 H d D + 2 G d D) bytes
one=$("$PY" -c 'import json, sys
c = json.load(open(sys.argv[1]))
D, H = c["hidden_size"], c["num_attention_heads"]
G, d = c.get("num_key_value_heads", H), c.get("head_dim") or D // H
print(2 * 4 * (2 * H * d * D + 2 * G * d * D))' "$MODEL/config.json")
for k in rf_verify np_verify; do
	rss=$(summary $k | cut -d' ' -f2)
	anon=$(summary $k | cut -d' ' -f4)
	[ "$rss" = - ] && continue
	awk -v r="$rss" -v a="$anon" -v o="$one" -v k="${k%_verify}" 'BEGIN {
		printf "%-44s %9.1f   anonymous %.1f (ropefold'"'"'s target: about 2 layers)\n",
			(k == "rf" ? "ropefold" : "numpy") " verify peak RSS / layer (A+B, f32)",
			r * 1048576 / o, a * 1048576 / o }'
done
echo "notes: ropefold fold and the numpy fold fsync what they write, cp -r does not (sync is" \
	"its flush); the page cache holds ${ram} GB against a ${SHAPE} model of $(gb "$SIZE") GB" \
	"plus its copy. On a virtual machine that hands freed memory back to its host each page" \
	"costs again at its first touch: there a wide range with a high sys time is the memory," \
	"not the work (whatever first writes into memory freed a while ago runs slow)." \
	"Logs: $LOGS"
