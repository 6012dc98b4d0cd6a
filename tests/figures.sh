#!/bin/sh
# Figures, CSV, the pair-mix keys, the plots' screens and tour scripts
# (issue 12, sections 3, 4 and 6): check --plot headless, file checks of
# every format (tests/figure_check.py, from the formats' definitions), the
# CSV's numbers against check --json, and the explorer driven in tmux at
# 80x24, in color and monochrome, UTF-8 and the C locale. TAP output.
ROPEFOLD=${ROPEFOLD:-./ropefold}
SRCDIR=${SRCDIR:-.}
CHECK="python3 $SRCDIR/tests/figure_check.py"
HARNESS=fig
. "$SRCDIR/tests/tmux_harness.sh"
# under LeakSanitizer, fontconfig's lifelong cache is not ours to free:
# make check's environment names tests/lsan.supp in LSAN_OPTIONS

# a failure here may come from a file check (its output in why) before
# any screen was captured
not_ok() {
	n=$((n + 1)); failed=$((failed + 1))
	echo "not ok $n - $1"
	[ -f "$WORK/screen" ] && sed 's/^/#   |/' "$WORK/screen"
	[ -f "$WORK/why" ] && sed 's/^/#   /' "$WORK/why"
	rm -f "$WORK/screen" "$WORK/why"
}
# expect DESC CMD...: CMD succeeds
expect() { d=$1; shift; if "$@" >"$WORK/why" 2>&1; then ok "$d"; else not_ok "$d"; fi; rm -f "$WORK/why"; }

if ! python3 -c 'import json, csv' 2>/dev/null; then
	echo "1..0 # SKIP python3 is not available"
	exit 77
fi

# ---- check --plot, headless -------------------------------------------------
cd "$WORK" || exit 99
for ext in png svg pdf; do
	"$ROPEFOLD" check --drop commutes --kind pair-mix:1e-9 --plot "plot.$ext" >out.txt 2>err.txt
	rc=$?
	if [ "$rc" -eq 0 ] && [ ! -s err.txt ] && grep -q "break predicted\|predicted to pass" out.txt; then
		ok "check --plot plot.$ext: exit 0, the report as usual"
	else
		not_ok "check --plot plot.$ext: exit $rc"
	fi
done
expect "plot.png: a PNG of two panels, 2560x988 pixels" $CHECK figure plot.png 2560 988
expect "plot.svg: an SVG document 1280 points wide" $CHECK figure plot.svg 1280
expect "plot.pdf: a one-page PDF" $CHECK figure plot.pdf
"$ROPEFOLD" check --json --plot both.svg >both.json 2>err.txt
if python3 -c 'import json,sys; json.load(open(sys.argv[1]))' both.json && [ -s both.svg ]; then
	ok "check --json --plot: the JSON on stdout, the figure beside it"
else
	not_ok "check --json --plot"
fi
"$ROPEFOLD" check --plot plot.gif >out.txt 2>err.txt
rc=$?
if [ "$rc" -eq 2 ] && [ "$(wc -l <err.txt)" -eq 1 ] && grep -q "^ropefold check: --plot: 'plot.gif' does not end in .svg, .png or .pdf" err.txt &&
	[ ! -e plot.gif ]; then
	ok "--plot plot.gif: refused in one line, exit 2, nothing written"
else
	not_ok "--plot plot.gif: exit $rc, $(cat err.txt)"
fi
"$ROPEFOLD" check --plot "$WORK/none/plot.png" >out.txt 2>err.txt
rc=$?
if [ "$rc" -eq 2 ] && grep -q "none/plot.png: cannot write" err.txt && [ ! -e "$WORK/none" ]; then
	ok "--plot into a missing folder: exit 2, says why"
else
	not_ok "--plot into a missing folder: exit $rc, $(cat err.txt)"
fi
if ls -a | grep -q '\.tmp-'; then not_ok "no temporary left behind"; else ok "no temporary left behind"; fi
expect "a fold's PDF title names the fold" $CHECK pdf-title plot.pdf "rotate qkvo" " vs "

# ---- compare mode: check --model A --against B --plot ------------------------
dm="$SRCDIR/data/default-model"
case $dm in /*) ;; *) dm="$OLDPWD/$dm" ;; esac
"$ROPEFOLD" fold --model "$dm" --out good >/dev/null 2>&1
"$ROPEFOLD" fold --model "$dm" --drop commutes --layers 1 --out broken >/dev/null 2>&1
"$ROPEFOLD" check --model "$dm" --against good --plot cmp.pdf >out.txt 2>err.txt
rc=$?
if [ "$rc" -eq 0 ] && [ ! -s err.txt ] && grep -q "^relation commuting fold" out.txt; then
	ok "check --against --plot cmp.pdf: exit 0, the comparison as usual"
else
	not_ok "check --against --plot cmp.pdf: exit $rc"
fi
expect "cmp.pdf: a one-page PDF" $CHECK figure cmp.pdf
expect "cmp.pdf: titled 'A vs B (layer 0)', not with fold toggles" \
	$CHECK pdf-title cmp.pdf "default-model vs good (layer 0), T = 32: commuting fold" "rotate"
"$ROPEFOLD" check --model "$dm" --against broken --layer 1 --plot cmp.png >out.txt 2>err.txt
rc=$?
if [ "$rc" -eq 1 ] && [ ! -s err.txt ] && grep -Eq "^score +breaks" out.txt; then
	ok "check --against a broken fold --plot cmp.png: exit 1, the score level breaks"
else
	not_ok "check --against broken --plot cmp.png: exit $rc, $(head -c 300 err.txt)"
fi
expect "cmp.png: a PNG of two panels, 2560x988 pixels" $CHECK figure cmp.png 2560 988
"$ROPEFOLD" check --model "$dm" --against broken --layer 1 --plot cmpb.pdf >/dev/null 2>&1
expect "cmpb.pdf: the title says why B is not equivalent" \
	$CHECK pdf-title cmpb.pdf "vs broken (layer 1), T = 32: not equivalent, mixes-pairs"
"$ROPEFOLD" check --model "$dm" --against broken --layer 1 --json --plot cmpj.svg >cmp.json 2>err.txt
if python3 -c 'import json,sys; d = json.load(open(sys.argv[1])); assert d["relation"]["against"]' cmp.json &&
	$CHECK figure cmpj.svg 1280 >/dev/null; then
	ok "check --against --json --plot: the JSON on stdout, the figure beside it"
else
	not_ok "check --against --json --plot"
fi

# ---- the explorer, in tmux ---------------------------------------------------
if ! command -v tmux >/dev/null 2>&1; then
	echo "1..$n # the explorer's part skipped: tmux is not installed"
	[ "$failed" -eq 0 ]
	exit $?
fi
# a passed screen is removed, so that a later file check's failure does
# not show it
check() { if wait_for "$2" "$3"; then ok "$1"; rm -f "$WORK/screen"; else not_ok "$1"; fi; }
check_not() { capture; if screen_has "$2"; then not_ok "$1"; else ok "$1"; rm -f "$WORK/screen"; fi; }
# start LOCALE ENV... -- CMD...: an 80x24 session
start() {
	loc=$1; shift
	$TM has-session -t keep 2>/dev/null || $TM new-session -d -s keep -x 80 -y 24 "sleep 3600"
	$TM kill-session -t rf >/dev/null 2>&1
	$TM new-session -d -s rf -x "${COLS_:-80}" -y "${ROWS_:-24}" \
		"cd '$WORK' && env TERM=xterm-256color LANG=$loc LC_ALL=$loc $* ; echo \"EXIT=\$?\"; sleep 600"
}

# pair-mix: + and - move EPS by decades, the offset view predicts the break
start C.UTF-8 "'$ROPEFOLD' tui"
check "explorer starts" "score +yes +. holds"
keys ':kind pair-mix:1e-9' Enter c 6
check "pair-mix 1e-9: the score level breaks" "score +no +. breaks"
check "offset view: the predicted break offset" "break near offset 2"
check "offset view: the tolerance on the fitted axis" "tol +-"
check "offset view: the saturation 2 sin EPS" "2sinE"
keys -
check "- : EPS ten times smaller" "kind pair-mix:1e-10"
check "... the scores hold, saturated below the tolerance" "saturates below tol"
keys =
check "= : ten times larger again" "kind pair-mix:1e-09"
keys 5 L
check "L: the heatmap's linear scale" "rel err, lin"
check "heatmap: the worst cell marked" "X max "
keys L
check "L again: back to the log scale" ">=1e-0[0-9]"
check_not "... the linear legend gone" "rel err, lin"
keys 7
check "heads view: the fitted log scale, tolerance marked" "marks the tolerance 1e-09; bars 1e"
keys z
check "z: the view over the whole screen" "^┌─ 5 heatmap"
check_not "z: ... the toggle panel hidden" "assumptions held"
keys z
check "z again: the panels back" "assumptions held"
keys ':export-figure pic.gif' Enter
check ":export-figure pic.gif: refused" "does not end in .svg, .png or .pdf"
keys 9 ':export-figure info.png' Enter
check ":export-figure on the info view: says it has none" "this view has no figure"
for v in 5:heat 6:offset 7:heads 8:pairs; do
	keys "${v%%:*}" ":export-figure ${v##*:}.svg" Enter
	check ":export-figure ${v##*:}.svg: written" "wrote ${v##*:}.svg"
	keys ":export-csv ${v##*:}.csv" Enter
	check ":export-csv ${v##*:}.csv: written" "wrote ${v##*:}.csv"
done
for v in heat offset heads pairs; do
	expect "$v.svg: an SVG document" $CHECK figure "$WORK/$v.svg" 640
done
keys q
check "q: exits 0" "EXIT=0"

# compare mode: :export-figure titles "A vs B (layer N)", the CSV is the comparison's
start C.UTF-8 "'$ROPEFOLD' tui --model '$dm' --against broken --layer 1"
check "compare mode: the explorer starts" "against \(B\)"
keys 6 ':export-figure cmpx.pdf' Enter
check ":export-figure cmpx.pdf in compare mode: written" "wrote cmpx.pdf"
keys ':export-csv cmpx.csv' Enter
check ":export-csv cmpx.csv in compare mode: written" "wrote cmpx.csv"
keys q
check "compare mode: exits" "EXIT=[01]"
expect "cmpx.pdf: titled 'A vs B (layer 1)'" \
	$CHECK pdf-title "$WORK/cmpx.pdf" "default-model vs broken (layer 1)" "rotate"
expect "cmpx.csv: the offsets are check --against --json's" \
	$CHECK csv-offset "$WORK/cmpx.csv" "$WORK/cmp.json"

# monochrome, the C locale: the same keys, ASCII only
start C NO_COLOR=1 "'$ROPEFOLD' tui"
check "C locale, NO_COLOR: starts" "score +yes +[+.] holds"
keys c 7
check "C locale: heads bars drawn in ASCII" "h0 +g0 +#"
keys 5 + 6
check "C locale: + selects pair-mix" "kind pair-mix:0.01"
check "C locale: offset view drawn" "offset m-n"
capture
if LC_ALL=C grep -q "$(printf '[\200-\377]')" "$WORK/screen"; then
	not_ok "C locale: no byte beyond ASCII on the screen"
else
	ok "C locale: no byte beyond ASCII on the screen"
	rm -f "$WORK/screen"
fi
keys q
check "C locale: exits 0" "EXIT=0"

# T = 256: ten rows of pooled bins, the diagonal still reads exact
start C NO_COLOR=1 "'$ROPEFOLD' tui --seq 256"
check "T=256: starts" "score +yes +[+.] holds"
keys c
check "T=256, Haar: the pooled diagonal cells read exact, the rest broken" "255 (@@|X@|@X){8,}\.\."
keys q
check "T=256: exits 0" "EXIT=0"

# a wide screen: the offset curve beside the heatmap
COLS_=180 ROWS_=45 start C.UTF-8 "'$ROPEFOLD' tui --seq 64"
check "180x45: the heatmap ..." "head 0/4: .score err"
check "180x45: ... and the offset curve beside it, on one row" "across +.*max .score error. / max.score. by offset"
keys z
check "180x45 z: the view over the whole width" "^┌─ 5 heatmap"
check_not "180x45 z: one view only" "across +.*by offset"
keys z q
check "180x45: exits 0" "EXIT=0"

# a tour script: cards, commands, and its exports compared with check --json
cat >"$WORK/lecture.txt" <<'TOUR'
:load random
:seq 32
:seed 1
# Haar breaks the scores
# Written by hand for a lecture.
:drop commutes
:view offset
:export-csv t_offset.csv
:view heads
:export-csv t_heads.csv
:view heatmap
:export-csv t_heat.csv
:export-figure t_heat.png

# pair-mix, gently
# EPS = 1e-12 stays below the tolerance.
:kind pair-mix:1e-12
:view offset
TOUR
start C.UTF-8 "'$ROPEFOLD' tour lecture.txt"
check "tour FILE: its first card" "Haar breaks the scores"
check "tour FILE: 1 of 2" "tour 1/2"
check "tour FILE: the card's exports run once it is evaluated" "wrote t_heat.png"
keys Space
check "tour FILE: the second card" "pair-mix, gently"
check "tour FILE: ... its fold evaluated" "saturates below tol"
keys p
check "tour FILE: p goes back" "tour 1/2"
keys Escape q
check "tour FILE: exits 0" "EXIT=0"
"$ROPEFOLD" check --drop commutes --seq 32 --seed 1 --json >"$WORK/haar.json"
expect "tour CSV: offsets match check --json" $CHECK csv-offset "$WORK/t_offset.csv" "$WORK/haar.json"
expect "tour CSV: per-head errors match check --json" $CHECK csv-heads "$WORK/t_heads.csv" "$WORK/haar.json"
expect "tour CSV: heatmap bins cover the tokens, masked half empty" $CHECK csv-heat "$WORK/t_heat.csv" "$WORK/haar.json" 32
expect "tour PNG: a PNG of one panel" $CHECK figure "$WORK/t_heat.png" 1280 988

# a bad script is refused before the screen is taken, naming its line
printf '# A card\n:drop commutes\nwords\n' >"$WORK/bad.txt"
start C.UTF-8 "'$ROPEFOLD' tour bad.txt"
check "tour bad.txt: FILE:LINE on stderr, exit 2" "bad.txt:3: expected a text card"
check "tour bad.txt: ... exit 2" "EXIT=2"
printf '# A card\n:kind spin\n' >"$WORK/bad2.txt"
start C.UTF-8 "'$ROPEFOLD' tui"
check "explorer for :source" "score +yes +. holds"
keys ':source bad2.txt' Enter
check ":source bad2.txt: the bad line named" "bad2.txt:2: kind: 'spin'"
keys ':source lecture.txt' Enter
check ":source lecture.txt: the tour starts" "tour 1/2"
keys Escape q
check ":source: exits 0" "EXIT=0"

echo "1..$n"
[ "$failed" -eq 0 ]
