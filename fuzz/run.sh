#!/bin/sh
# Bounded fuzzing of every checkpoint reader with libFuzzer.
#
#   fuzz/run.sh [SECONDS]     (default 15 seconds per target)
#
# Builds one libFuzzer target per reader (fuzz_gguf, fuzz_safetensors,
# fuzz_llama2c: bytes in memory), fuzz_file (GGUF and llama2.c through a
# real file, read with pread) and fuzz_vocab (the token-text readers) with clang -fsanitize=fuzzer,address,undefined
# straight from the sources (outside automake), writes a seed corpus with the tests' own
# fixture writers (fuzz/make_seeds.c), and runs each target for SECONDS.
# A crashing input is copied to tests/bad/ (replayed by make check) and the
# script exits 1. Exit 77 when clang with libFuzzer is not available.
# FUZZ_WORK sets the work folder (default: a fresh temporary one).
set -u
secs=${1:-15}
here=$(cd "$(dirname "$0")/.." && pwd)
cc=${CLANG:-clang}
if ! command -v "$cc" >/dev/null 2>&1; then
	echo "fuzz/run.sh: $cc not found: skipping" >&2
	exit 77
fi
work=${FUZZ_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/ropefold-fuzz.XXXXXX")} || exit 99
mkdir -p "$work/include" "$work/artifacts"
cat >"$work/include/config.h" <<'EOH'
#define _GNU_SOURCE 1
#define PACKAGE_VERSION "fuzz"
#define PKGDATADIR "/nonexistent"
#define ABS_TOP_SRCDIR "/nonexistent"
EOH
jflags=$(pkg-config --cflags --libs jansson 2>/dev/null || echo -ljansson)
srcs="core/dtype.c core/layer.c core/mla.c core/moe_route.c core/rng.c core/status.c data/dtype_mix.c data/families.c
      data/ggml_quant.c data/ggml_quantize.c data/ggml_types.c data/gguf.c data/hfconfig.c
      data/hfconfig_keys.c data/hfconfig_layers.c data/infile.c data/jsonfile.c data/llama2c.c
      data/mla_model.c data/mla_moe.c data/mla_split.c data/model.c data/path.c data/safetensors.c data/tensor.c data/vocab.c"
common="-std=c11 -g -O1 -fno-omit-frame-pointer -I$work/include -I$here"
cd "$here" || exit 99
if ! "$cc" $common -fsanitize=fuzzer-no-link,address,undefined -c -x c /dev/null \
	-o "$work/probe.o" 2>/dev/null; then
	echo "fuzz/run.sh: $cc cannot build libFuzzer targets: skipping" >&2
	exit 77
fi
objs=""
for s in $srcs; do
	o="$work/$(echo "$s" | tr / _).o"
	"$cc" $common -fsanitize=fuzzer-no-link,address,undefined -c "$s" -o "$o" || exit 99
	objs="$objs $o"
done
"$cc" $common -fsanitize=address,undefined tests/ckpt_fixtures.c fuzz/make_seeds.c \
	core/dtype.c core/layer.c core/rng.c core/status.c data/ggml_quant.c data/ggml_quantize.c \
	data/ggml_types.c -o "$work/make_seeds" $jflags -lm || exit 99
"$work/make_seeds" "$work/seeds" || exit 99
# fuzz_vocab's seeds: a reader byte, then a GGUF seed, a tokenizer.json, a
# llama2.c tokenizer (max length, then per token a score, a length, bytes)
mkdir -p "$work/seeds/vocab"
for g in "$work"/seeds/gguf/*; do
	{ printf '\000'; cat "$g"; } >"$work/seeds/vocab/$(basename "$g")"
done
printf '\001{"model":{"type":"BPE","vocab":{"a":0,"\\u0120b":1,"<0x0A>":2}},"added_tokens":[{"id":3,"content":"<s>"}]}' \
	>"$work/seeds/vocab/tokenizer.json"
printf '\002\002\000\000\000\000\000\000\000\001\000\000\000a\000\000\200\077\002\000\000\000<s' \
	>"$work/seeds/vocab/tok512.bin"
status=0
for t in gguf safetensors llama2c file vocab; do
	"$cc" $common -fsanitize=fuzzer,address,undefined "fuzz/fuzz_$t.c" $objs \
		-o "$work/fuzz_$t" $jflags -lm || exit 99
	mkdir -p "$work/corpus_$t"
	# fuzz_file reads real files: seeded with the GGUF and llama2.c files
	seeds="$work/seeds/$t"
	[ "$t" = file ] && seeds="$work/seeds/gguf $work/seeds/llama2c"
	# fuzz_vocab: its first byte picks the reader; its seeds are its own
	[ "$t" = vocab ] && seeds="$work/seeds/vocab"
	echo "fuzz/run.sh: fuzz_$t for ${secs}s"
	UBSAN_OPTIONS=halt_on_error=1 "$work/fuzz_$t" -max_total_time="$secs" -max_len=65536 \
		-rss_limit_mb=2048 -timeout=10 -artifact_prefix="$work/artifacts/$t-" \
		-print_final_stats=0 "$work/corpus_$t" $seeds \
		>"$work/fuzz_$t.log" 2>&1
	rc=$?
	tail -n 3 "$work/fuzz_$t.log"
	if [ "$rc" -ne 0 ]; then
		echo "fuzz/run.sh: fuzz_$t failed (exit $rc); log in $work/fuzz_$t.log" >&2
		status=1
	fi
done
for a in "$work"/artifacts/*; do
	[ -f "$a" ] || continue
	name=fuzz-$(basename "$a")
	cp "$a" "$here/tests/bad/$name"
	echo "fuzz/run.sh: kept $name in tests/bad/ (add it to git)" >&2
	status=1
done
[ -z "${FUZZ_WORK:-}" ] && [ "$status" -eq 0 ] && rm -rf "$work"
exit $status
