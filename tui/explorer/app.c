#include "config.h"

#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <limits.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "core/rope.h"
#include "core/verify.h"
#include "tui/explorer/app.h"
#include "tui/explorer/cmdline.h"
#include "tui/explorer/colors.h"
#include "tui/explorer/commands.h"
#include "tui/explorer/fold_actions.h"
#include "tui/explorer/keys.h"
#include "tui/explorer/msglog.h"
#include "tui/explorer/figure_actions.h"
#include "tui/explorer/tour.h"
#include "tui/explorer/views/compare_panel.h"
#include "tui/explorer/views/draw.h"
#include "tui/explorer/views/pager.h"
#include "tui/explorer/views/panels.h"
#include "tui/explorer/views/views.h"
#include "tui/explorer/worker.h"

#define MIN_COLS 80
#define MIN_LINES 24
#define LEFT_W 26
#define WIDE_COLS 160   /* from here two views side by side */

/* ======================================================================
 * Signals: a self-pipe wakes the loop; nothing curses happens in a handler
 * ====================================================================== */

static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t got_signal;
static struct termios saved_tio;
static bool have_tio;
static int saved_stderr = -1;

static void on_signal(int sig)
{
	int e = errno;
	got_signal = sig;
	if (sig_pipe[1] >= 0) {
		ssize_t n = write(sig_pipe[1], "s", 1);
		(void)n;
	}
	errno = e;
}

/* A crash: put the terminal back with async-signal-safe calls only, then
 * die of the same signal. */
static void on_fatal(int sig)
{
	static const char seq[] = "\033[?1000l\033[?1002l\033[?1006l\033[?1049l\033[?25h\r\n";
	if (have_tio)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
	ssize_t n = write(STDOUT_FILENO, seq, sizeof seq - 1);
	(void)n;
	if (saved_stderr >= 0)
		dup2(saved_stderr, STDERR_FILENO);
	signal(sig, SIG_DFL);
	raise(sig);
}

static int signals_install(void)
{
	if (pipe(sig_pipe))
		return -1;
	for (int i = 0; i < 2; i++) {
		fcntl(sig_pipe[i], F_SETFL, fcntl(sig_pipe[i], F_GETFL) | O_NONBLOCK);
		fcntl(sig_pipe[i], F_SETFD, FD_CLOEXEC);
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sa.sa_handler = on_fatal;
	sa.sa_flags = SA_RESETHAND;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGFPE, &sa, NULL);
	sigaction(SIGILL, &sa, NULL);
	sigaction(SIGABRT, &sa, NULL);
	return 0;
}

static void signals_remove(void)
{
	int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		signal(sigs[i], SIG_DFL);
	for (int i = 0; i < 2; i++)
		if (sig_pipe[i] >= 0) {
			close(sig_pipe[i]);
			sig_pipe[i] = -1;
		}
}

/* ======================================================================
 * stderr: kept in a file while curses owns the screen, replayed after
 * ====================================================================== */

static FILE *err_file;

static void stderr_redirect(void)
{
	fflush(stderr);
	err_file = tmpfile();
	if (!err_file)
		return;
	saved_stderr = dup(STDERR_FILENO);
	if (saved_stderr < 0 || dup2(fileno(err_file), STDERR_FILENO) < 0) {
		fclose(err_file);
		err_file = NULL;
	}
}

static void stderr_restore(void)
{
	if (!err_file)
		return;
	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	saved_stderr = -1;
	rewind(err_file);
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, err_file)) > 0)
		fwrite(buf, 1, n, stderr);
	fclose(err_file);
	err_file = NULL;
}

/* ======================================================================
 * The explorer's state
 * ====================================================================== */

/* File commands (:export-figure, ...) one tour stop may run. */
#define TOUR_MAX_DEFERRED 16
#define FILE_BITS (CMD_EXPORT | CMD_VERIFY | CMD_FIGURE | CMD_CSV)

typedef struct {
	TuiSettings set;          /* what the user asks for */
	TuiSettings applied;      /* what the shown result was computed for */
	EvalResult *res;          /* the shown result */
	Worker *worker;
	unsigned long gen;        /* last request */
	unsigned long pending;    /* request still awaited, 0 when none */
	bool submitted;           /* a request went out in this iteration */
	int sel;                  /* toggle panel cursor */
	char status[512];
	bool status_err;
	bool help;
	int help_scroll;
	int help_max;             /* the last scroll the help drew at its end, so
				   * keys pressed faster than it redraws stop
				   * there too ("k" after "j j j" moves at once) */
	/* a full-screen page: the message log, or the whole explanation */
	bool pager, pager_log;
	int pager_scroll;
	char pager_text[4096];
	MsgLog log;
	bool tour;
	size_t tour_i;
	TuiSettings tour_set;     /* what the tour card's claim is for */
	Tour *tours;              /* the tour shown (built-in or :source), or NULL */
	bool tours_builtin;
	TuiSettings tour_base;    /* the settings the tour started from */
	/* a stop's file commands, run once its evaluation arrives */
	struct { unsigned bits; TuiSettings snap; } deferred[TOUR_MAX_DEFERRED];
	size_t n_deferred;
	unsigned long deferred_gen;
	bool quit;
	bool resized;
	bool zoom;                /* the main view over the whole screen */
	/* windows, rebuilt on resize */
	bool small;
	WINDOW *w_frame2, *w_view2;   /* a wide screen: a second view beside */
	WINDOW *w_title, *w_left, *w_levels, *w_expl, *w_frame, *w_view,
		*w_status, *w_bar, *w_help;
	int left_y, frame_y, frame_x;
	int row_of[TOGGLE_COUNT];
	int tab_x[VIEW_COUNT + 1];
} App;

static void set_status(App *a, bool err, const char *msg)
{
	snprintf(a->status, sizeof a->status, "%.500s", msg);
	a->status_err = err;
	msglog_add(&a->log, err ? MSG_ERROR : MSG_INFO, msg);
}

/* An error of the layer's build names the flag ("--layer: ..."); here
 * the same value came from a command (":layer ..."). */
static void set_error_for_command(App *a, const char *err)
{
	char m[512];
	if (!strncmp(err, "--", 2))
		snprintf(m, sizeof m, ":%.500s", err + 2);
	else
		snprintf(m, sizeof m, "%.500s", err);
	set_status(a, true, m);
}

/* One line saying what a finished request loaded or compared with. */
static void say_loaded(App *a, const EvalResult *r, const TuiSettings *before)
{
	const TuiSettings *s = &r->settings;
	const LayerInfo *li = &r->info;
	char m[512];
	bool loaded = s->source != before->source || strcmp(s->model_path, before->model_path) ||
		      s->opts.layer != before->opts.layer;
	bool against = strcmp(s->against_path, before->against_path) != 0;
	if (against && r->cmp.on)
		snprintf(m, sizeof m, "comparing layer %zu with %.300s: %s", li->layer_index,
			 r->cmp.against,
			 r->cmp.equivalent ? verify_relation_name(r->cmp.relation)
					   : "NOT a fold of it");
	else if (loaded)
		snprintf(m, sizeof m, "loaded %.300s, layer %zu: D=%zu H=%zu G=%zu d=%zu, %s RoPE",
			 li->source, li->layer_index, li->shape.d_model, li->shape.n_heads,
			 li->shape.n_kv_heads, li->shape.head_dim, rope_layout_name(li->rope.layout));
	else
		return;
	set_status(a, false, m);
}

static void submit(App *a)
{
	a->gen++;
	a->pending = a->gen;
	a->submitted = true;
	worker_submit(a->worker, &a->set, a->gen);
}

static size_t n_heads(const App *a)
{
	return a->res ? a->res->rep.n_heads : 1;
}

static void run_deferred(App *a);

/* Take a finished evaluation: show it, or report its error and go back to
 * the settings of what is shown. Stale answers are dropped. */
static void take_result(App *a)
{
	EvalResult *r = worker_take(a->worker);
	if (!r)
		return;
	if (r->gen != a->pending) {
		worker_result_free(r);
		return;
	}
	a->pending = 0;
	if (r->status) {
		a->n_deferred = 0;
		a->deferred_gen = 0;
		set_error_for_command(a, r->err);
		if (a->res) {
			ViewId v = a->set.view;
			size_t h = a->set.head;
			a->set = a->applied;
			a->set.view = v;
			a->set.head = h;
		}
		worker_result_free(r);
		return;
	}
	TuiSettings before = a->applied;
	bool first = !a->res;
	worker_result_free(a->res);
	a->res = r;
	a->applied = r->settings;
	if (!first)
		say_loaded(a, r, &before);
	char why[4096];
	panels_why_text(r, why, sizeof why);
	msglog_add(&a->log, MSG_EXPLAIN, why);
	if (a->deferred_gen && r->gen == a->deferred_gen)
		run_deferred(a);
	/* Show the layer's own layout on the toggle until the user sets one. */
	if (!a->set.opts.layout_set)
		a->set.opts.rope.layout = r->info.rope.layout;
	if (!a->applied.opts.layout_set)
		a->applied.opts.rope.layout = r->info.rope.layout;
	if (a->set.head >= n_heads(a))
		a->set.head = n_heads(a) - 1;
}

static void apply_bits(App *a, unsigned bits, const char *msg);

/* Run a stop's file commands against the evaluation that just arrived. */
static void run_deferred(App *a)
{
	for (size_t k = 0; k < a->n_deferred; k++) {
		const TuiSettings *sn = &a->deferred[k].snap;
		unsigned bits = a->deferred[k].bits;
		char m[512];
		int rc;
		if (bits & (CMD_FIGURE | CMD_CSV)) {
			rc = figure_action_export(a->res, sn, (bits & CMD_CSV) != 0, sn->action_path,
						  m, sizeof m);
		} else if (bits & CMD_EXPORT) {
			rc = fold_action_export(sn, sn->action_path, m, sizeof m);
		} else {
			FoldBreak br;
			rc = fold_action_verify(sn, sn->action_path, &br, m, sizeof m);
			rc = rc || !br.equivalent;
		}
		set_status(a, rc != 0, m);
		if (rc)
			break;
	}
	a->n_deferred = 0;
	a->deferred_gen = 0;
}

/* Run cmds on s; with live, keep their file commands for run_deferred.
 * -1 with the status set on the first error. */
static int run_list(App *a, const char *const *cmds, TuiSettings *s, bool live)
{
	char msg[512];
	for (size_t k = 0; cmds && cmds[k]; k++) {
		unsigned b = commands_run(s, cmds[k], msg, sizeof msg);
		if (b & CMD_ERROR) {
			set_status(a, true, msg);
			return -1;
		}
		if (live && (b & FILE_BITS) && a->n_deferred < TOUR_MAX_DEFERRED) {
			a->deferred[a->n_deferred].bits = b & FILE_BITS;
			a->deferred[a->n_deferred].snap = *s;
			a->n_deferred++;
		}
	}
	return 0;
}

/* Stop i of the tour: the starting settings after the script's first
 * commands and every stop's up to i (see tour.h). start: the tour begins
 * here, so the first commands' file commands run too. */
static void tour_goto_from(App *a, size_t i, bool start)
{
	const TourStep *st = tour_step(a->tours, i);
	if (!st && !(start && tour_count(a->tours) == 0))
		return;
	TuiSettings s = a->tour_base;
	a->n_deferred = 0;
	if (run_list(a, tour_setup(a->tours), &s, start && i == 0))
		return;
	for (size_t k = 0; k < i; k++)
		if (run_list(a, tour_step(a->tours, k)->commands, &s, false))
			return;
	if (st && run_list(a, st->commands, &s, true))
		return;
	a->tour = st != NULL;
	a->tour_i = i;
	a->set = s;
	a->tour_set = a->set;
	set_status(a, false, "");
	submit(a);
	if (a->n_deferred)
		a->deferred_gen = a->gen;
}

static void tour_goto(App *a, size_t i)
{
	tour_goto_from(a, i, false);
}

/* Start a tour: the built-in one (path NULL) or a script's. */
static void tour_start(App *a, const char *path)
{
	char err[512];
	if (!path && a->tours && a->tours_builtin) {
		a->tour_base = a->set;
		tour_goto_from(a, 0, true);
		return;
	}
	Tour *t;
	if (tour_open(path, &a->set, &t, err, sizeof err)) {
		set_status(a, true, err);
		return;
	}
	tour_free(a->tours);
	a->tours = t;
	a->tours_builtin = path == NULL;
	a->tour_base = a->set;
	tour_goto_from(a, 0, true);
}

/* The tour card's claim holds for the settings its stop made. */
static bool tour_changed(const App *a)
{
	const RunOptions *x = &a->set.opts, *y = &a->tour_set.opts;
	return memcmp(&x->fold, &y->fold, sizeof x->fold) || x->precision != y->precision ||
	       x->rope.layout != y->rope.layout || x->seq != y->seq || x->tol != y->tol ||
	       a->set.source != a->tour_set.source || strcmp(a->set.against_path, a->tour_set.against_path);
}

static void open_pager(App *a, bool log)
{
	a->pager = true;
	a->pager_log = log;
	/* the log opens at its newest entry, the explanation at its start */
	a->pager_scroll = log ? INT_MAX / 2 : 0;
	if (!log)
		panels_why_text(a->res, a->pager_text, sizeof a->pager_text);
}

static void run_command(App *a, const char *line)
{
	char msg[512];
	CellStyle cells = a->set.cells;
	unsigned bits = commands_run(&a->set, line, msg, sizeof msg);
	if (a->res)
		commands_rotation_clamp(&a->set, a->res->info.shape.head_dim);
	/* a style this locale cannot draw: say what is drawn instead */
	if (a->set.cells != cells && draw_cells(a->set.cells) != a->set.cells) {
		size_t n = strlen(msg);
		snprintf(msg + n, sizeof msg - n, " (drawn in ASCII: the locale is not UTF-8)");
	}
	apply_bits(a, bits, msg);
}

static void apply_bits(App *a, unsigned bits, const char *msg)
{
	if (bits & CMD_ERROR) {
		set_status(a, true, msg);
		return;
	}
	set_status(a, false, msg);
	if (bits & CMD_CHANGED)
		submit(a);
	if (bits & CMD_QUIT)
		a->quit = true;
	if (bits & CMD_HELP) {
		a->help = true;
		a->help_scroll = 0;
		a->help_max = INT_MAX / 2;   /* until the help is drawn */
	}
	if (bits & CMD_TOUR)
		tour_start(a, NULL);
	if (bits & CMD_SOURCE) {
		char path[sizeof a->set.action_path];
		snprintf(path, sizeof path, "%s", a->set.action_path);
		tour_start(a, path);
	}
	if (bits & CMD_LOG)
		open_pager(a, true);
	if (bits & CMD_EXPORT) {
		char m[512];
		int rc = fold_action_export(&a->set, a->set.action_path, m, sizeof m);
		set_status(a, rc != 0, m);
	}
	if (bits & (CMD_FIGURE | CMD_CSV)) {
		char m[512];
		int rc = figure_action_export(a->res, &a->set, (bits & CMD_CSV) != 0,
					      a->set.action_path, m, sizeof m);
		set_status(a, rc != 0, m);
	}
	if (bits & CMD_VERIFY) {
		char m[2048];
		FoldBreak br;
		int rc = fold_action_verify(&a->set, a->set.action_path, &br, m, sizeof m);
		set_status(a, rc != 0 || !br.equivalent, m);
		msglog_add(&a->log, MSG_VERIFY, m);
		if (rc == 0) {
			/* Compare mode on the real difference, at the first break,
			 * in the layers view. */
			snprintf(a->set.against_path, sizeof a->set.against_path, "%s",
				 a->set.action_path);
			a->set.view = VIEW_LAYERS;
			if (!br.equivalent) {
				a->set.head = br.head;
				if (a->set.source != SOURCE_RANDOM)
					a->set.opts.layer = br.layer;
			}
			submit(a);
		}
	}
}

static void on_prompt_done(const char *line, void *ctx)
{
	App *a = ctx;
	if (line)
		run_command(a, line);
}

/* ======================================================================
 * Layout and drawing
 * ====================================================================== */

static void layout_free(App *a)
{
	WINDOW **ws[] = {&a->w_view2, &a->w_frame2, &a->w_view, &a->w_title, &a->w_left, &a->w_levels, &a->w_expl,
			 &a->w_frame, &a->w_status, &a->w_bar, &a->w_help};
	for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
		if (*ws[i]) {
			delwin(*ws[i]);
			*ws[i] = NULL;
		}
}

/* Geometry from LINES and COLS: title, toggles on the left, levels and
 * the explanation on the right, the main view below them, status and the
 * function bar at the bottom. */
static void layout_make(App *a)
{
	layout_free(a);
	a->small = LINES < MIN_LINES || COLS < MIN_COLS;
	if (a->small)
		return;
	int H = LINES, W = COLS;
	int rw = W - LEFT_W;
	int expl_h = 2 + (H - MIN_LINES) / 8;
	if (expl_h > 4)
		expl_h = 4;
	a->w_title = newwin(1, W, 0, 0);
	a->left_y = 1;
	a->w_left = newwin(H - 3, LEFT_W, 1, 0);
	a->w_levels = newwin(6, rw, 1, LEFT_W);
	a->w_expl = newwin(expl_h, rw, 7, LEFT_W);
	a->frame_y = 7 + expl_h;
	a->frame_x = LEFT_W;
	if (a->zoom) {  /* z: the view over everything but the title and status */
		a->frame_y = 1;
		a->frame_x = 0;
		rw = W;
	}
	if (!a->zoom && W >= WIDE_COLS) {
		/* side by side: the view asked for, and a companion beside it */
		int w1 = rw * 11 / 20;
		a->w_frame2 = newwin(H - 2 - a->frame_y, rw - w1, a->frame_y, a->frame_x + w1);
		a->w_view2 = derwin(a->w_frame2, H - 2 - a->frame_y - 2, rw - w1 - 2, 1, 1);
		rw = w1;
	}
	a->w_frame = newwin(H - 2 - a->frame_y, rw, a->frame_y, a->frame_x);
	a->w_view = derwin(a->w_frame, H - 2 - a->frame_y - 2, rw - 2, 1, 1);
	a->w_status = newwin(1, W, H - 2, 0);
	a->w_bar = newwin(1, W, H - 1, 0);
	a->w_help = newwin(H - 1, W, 0, 0);
}

/* Every cell of w dimmed, colors dropped; line-drawing cells stay
 * line drawing. */
static void dim_window(WINDOW *w)
{
	int h = getmaxy(w), wd = getmaxx(w);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < wd; x++) {
			cchar_t c;
			wchar_t wc[CCHARW_MAX + 1];
			attr_t at;
			short pair;
			if (mvwin_wch(w, y, x, &c) == ERR ||
			    getcchar(&c, wc, &at, &pair, NULL) == ERR)
				continue;
			if (setcchar(&c, wc, (at & A_ALTCHARSET) | A_DIM, 0, NULL) == OK)
				mvwadd_wch(w, y, x, &c);
		}
}

static void draw_all(App *a)
{
	if (a->small) {
		erase();
		panels_too_small(stdscr);
		wnoutrefresh(stdscr);
		doupdate();
		return;
	}
	WINDOW *all[] = {a->w_title, a->w_left, a->w_levels, a->w_expl, a->w_frame,
			 a->w_status, a->w_bar};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		werase(all[i]);
	bool computing = a->pending != 0;
	panels_title(a->w_title, a->res, computing);
	if (a->tour) {
		panels_tour(a->w_left, tour_step(a->tours, a->tour_i), a->tour_i,
			    tour_count(a->tours), &a->set);
		if (tour_changed(a))
			draw_wrap(a->w_left, getmaxy(a->w_left) - 6, 2, LEFT_W - 4, 2,
				  colors_attr(CLR_EXPECTED),
				  "changed: the card speaks of its own settings");
	} else if (a->res && a->res->cmp.on && a->set.against_path[0]) {
		panels_compare(a->w_left, a->res);
		for (int t = 0; t < TOGGLE_COUNT; t++)
			a->row_of[t] = -1;
	} else {
		panels_toggles(a->w_left, &a->set, a->sel, a->row_of);
	}
	if (!a->zoom) {
		panels_levels(a->w_levels, a->res);
		panels_explanation(a->w_expl, a->res);
	}
	panels_view_frame(a->w_frame, a->set.view, a->tab_x);
	if (a->res) {
		ViewContext vc;
		vc.win = a->w_view;
		getmaxyx(a->w_view, vc.h, vc.w);
		vc.res = a->res;
		vc.set = &a->set;
		vc.head = a->set.head < a->res->rep.n_heads ? a->set.head : 0;
		int smax = -1;
		vc.scroll_max = &smax;
		views_get(a->set.view)->draw(&vc);
		if (smax >= 0 && a->set.view_scroll > smax)
			a->set.view_scroll = smax;
	}
	if (computing) {
		/* what is shown answers an older request: dimmed until the new
		 * one arrives */
		WINDOW *stale[] = {a->zoom ? NULL : a->w_levels, a->zoom ? NULL : a->w_expl,
				   a->w_view};
		for (size_t i = 0; i < sizeof stale / sizeof stale[0]; i++)
			if (stale[i])
				dim_window(stale[i]);
	}
	if (a->w_frame2) {
		/* the companion: the offset curve, or the heatmap beside it */
		ViewId comp = a->set.view == VIEW_OFFSET ? VIEW_HEATMAP : VIEW_OFFSET;
		int tabs[VIEW_COUNT + 1];
		werase(a->w_frame2);
		panels_view_frame(a->w_frame2, comp, tabs);
		if (a->res) {
			ViewContext vc = {a->w_view2, 0, 0, a->res, &a->set, 0, NULL};
			getmaxyx(a->w_view2, vc.h, vc.w);
			vc.head = a->set.head < a->res->rep.n_heads ? a->set.head : 0;
			views_get(comp)->draw(&vc);
		}
		wnoutrefresh(a->w_frame2);
	}
	panels_bar(a->w_bar, cmdline_active(), cmdline_matches());
	if (cmdline_active())
		cmdline_draw(a->w_status, 0);
	else
		panels_status(a->w_status, a->status, a->status_err, a->res);
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		if (all[i] != a->w_status && (!a->zoom || i < 1 || i > 3))
			wnoutrefresh(all[i]);
	if (a->help) {
		/* over the status line too: its last row shows where one is */
		int n = panels_help(a->w_help, &a->help_scroll);
		a->help_max = n - (getmaxy(a->w_help) - 2);
		wnoutrefresh(a->w_help);
	} else if (a->pager) {
		pager_draw(a->w_help, a->pager_log ? "message log" : "why: the whole explanation",
			   a->pager_log ? &a->log : NULL, a->pager_text, &a->pager_scroll);
		wnoutrefresh(a->w_help);
	} else {
		/* Last, so the cursor lands on the command line. */
		wnoutrefresh(a->w_status);
	}
	doupdate();
}

/* ======================================================================
 * Keys
 * ====================================================================== */

static void flip(App *a, int t)
{
	char msg[512];
	if (a->set.against_path[0]) {
		set_status(a, true, "compare mode: nothing to toggle (':against off' folds again)");
		return;
	}
	unsigned bits = commands_toggle_flip(&a->set, (ToggleId)t, msg, sizeof msg);
	apply_bits(a, bits, msg);
}

static void do_action(App *a, const KeyDef *k)
{
	size_t H = n_heads(a);
	switch (k->action) {
	case ACT_QUIT:
		a->quit = true;
		break;
	case ACT_HELP:
		a->help = true;
		a->help_scroll = 0;
		a->help_max = INT_MAX / 2;   /* until the help is drawn */
		break;
	case ACT_PROMPT:
		set_status(a, false, "");
		cmdline_open(on_prompt_done, a);
		break;
	case ACT_UP:
		a->sel = (a->sel + TOGGLE_COUNT - 1) % TOGGLE_COUNT;
		break;
	case ACT_DOWN:
		a->sel = (a->sel + 1) % TOGGLE_COUNT;
		break;
	case ACT_FLIP:
		flip(a, a->sel);
		break;
	case ACT_TOGGLE:
		a->sel = k->arg;
		flip(a, k->arg);
		break;
	case ACT_VIEW:
		a->set.view = (ViewId)k->arg;
		break;
	case ACT_VIEW_NEXT:
		a->set.view = (ViewId)((a->set.view + 1) % VIEW_COUNT);
		break;
	case ACT_VIEW_PREV:
		a->set.view = (ViewId)((a->set.view + VIEW_COUNT - 1) % VIEW_COUNT);
		break;
	case ACT_HEAD_PREV:
		a->set.head = (a->set.head + H - 1) % H;
		break;
	case ACT_HEAD_NEXT:
		a->set.head = (a->set.head + 1) % H;
		break;
	case ACT_TOUR:
		tour_start(a, NULL);
		break;
	case ACT_RESET:
		run_command(a, "reset");
		break;
	case ACT_REDRAW:
		clearok(curscr, TRUE);
		break;
	case ACT_EXPLAIN:
		open_pager(a, false);
		break;
	case ACT_LOG:
		open_pager(a, true);
		break;
	case ACT_EPS_UP:
	case ACT_EPS_DOWN:
		run_command(a, k->action == ACT_EPS_UP ? "eps up" : "eps down");
		break;
	case ACT_HEAT_SCALE:
		run_command(a, "heat-scale toggle");
		break;
	case ACT_COMMAND:
		run_command(a, k->command);
		break;
	case ACT_ZOOM:
		a->zoom = !a->zoom;
		a->resized = true;
		break;
	case ACT_NONE:
		break;
	}
}

static void on_mouse(App *a)
{
	MEVENT ev;
	if (getmouse(&ev) != OK || a->small)
		return;
	if (!(ev.bstate & (BUTTON1_CLICKED | BUTTON1_PRESSED | BUTTON1_RELEASED)))
		return;
	if (ev.bstate & BUTTON1_RELEASED && !(ev.bstate & BUTTON1_CLICKED))
		return;
	if (!a->tour && !a->zoom && ev.x < LEFT_W) {
		for (int t = 0; t < TOGGLE_COUNT; t++)
			if (a->row_of[t] >= 0 && a->left_y + a->row_of[t] == ev.y) {
				a->sel = t;
				flip(a, t);
				return;
			}
	}
	if (ev.y == a->frame_y) {
		int x = ev.x - a->frame_x;
		for (int v = 0; v < VIEW_COUNT; v++)
			if (x >= a->tab_x[v] && x < a->tab_x[v + 1] - 1)
				a->set.view = (ViewId)v;
	}
}

/* Tour keys first while the tour runs; returns true when used. */
static bool tour_key(App *a, int ch)
{
	switch (ch) {
	case ' ':
	case 'n':
	case '\n':
	case KEY_ENTER:
	case KEY_NPAGE:
		if (a->tour_i + 1 < tour_count(a->tours))
			tour_goto(a, a->tour_i + 1);
		else {
			a->tour = false;
			set_status(a, false, "tour finished");
		}
		return true;
	case 'p':
	case KEY_BACKSPACE:
	case KEY_PPAGE:
		if (a->tour_i > 0)
			tour_goto(a, a->tour_i - 1);
		return true;
	case 27:
		a->tour = false;
		set_status(a, false, "left the tour");
		return true;
	default:
		return false;
	}
}

static void on_key(App *a, int ch)
{
	if (ch == KEY_RESIZE) {
		a->resized = true;
		return;
	}
	if (cmdline_active()) {
		if (ch == 27) {
			int next = getch();
			if (next == ERR) {
				cmdline_cancel();
				return;
			}
			cmdline_key(27);
			ch = next;
		}
		cmdline_key(ch);
		return;
	}
	if (a->help) {
		int rows = LINES - 3;
		if (ch == KEY_DOWN || ch == 'j')
			a->help_scroll++;
		else if (ch == KEY_UP || ch == 'k')
			a->help_scroll--;
		else if (ch == KEY_NPAGE || ch == ' ')
			a->help_scroll += rows;
		else if (ch == KEY_PPAGE)
			a->help_scroll -= rows;
		else if (ch == KEY_HOME || ch == 'g')
			a->help_scroll = 0;
		else if (ch == KEY_END || ch == 'G')
			a->help_scroll = INT_MAX / 2;  /* the draw clamps it to the end */
		else
			a->help = false;
		if (a->help_scroll > a->help_max)
			a->help_scroll = a->help_max;
		if (a->help_scroll < 0)
			a->help_scroll = 0;
		return;
	}
	if (a->pager) {
		int rows = LINES - 3;
		if (ch == KEY_DOWN || ch == 'j')
			a->pager_scroll++;
		else if (ch == KEY_UP || ch == 'k')
			a->pager_scroll--;
		else if (ch == KEY_NPAGE || ch == ' ')
			a->pager_scroll += rows;
		else if (ch == KEY_PPAGE)
			a->pager_scroll -= rows;
		else if (ch == KEY_HOME || ch == 'g')
			a->pager_scroll = 0;
		else if (ch == KEY_END || ch == 'G')
			a->pager_scroll = INT_MAX / 2;  /* the draw clamps it to the end */
		else
			a->pager = false;
		if (a->pager_scroll < 0)
			a->pager_scroll = 0;
		return;
	}
	if (a->small) {
		if (ch == 'q')
			a->quit = true;
		return;
	}
	if (ch == KEY_MOUSE) {
		on_mouse(a);
		return;
	}
	if (a->tour && tour_key(a, ch))
		return;
	const KeyDef *k = keys_lookup(ch);
	if (k) {
		do_action(a, k);
		return;
	}
	if (a->res) {
		const View *v = views_get(a->set.view);
		if (v->key) {
			ViewContext vc = {a->w_view, 0, 0, a->res, &a->set, a->set.head, NULL};
			getmaxyx(a->w_view, vc.h, vc.w);
			if (v->key(&vc, ch) & KR_HANDLED)
				return;
		}
	}
	if (ch != 27 && ch != ERR)
		set_status(a, false, "key not bound: '?' lists the keys");
}

/* ======================================================================
 * The loop
 * ====================================================================== */

/* Wait for the worker's answer for up to ms milliseconds. */
static void wait_result(App *a, int ms)
{
	struct pollfd p = {worker_fd(a->worker), POLLIN, 0};
	if (poll(&p, 1, ms) > 0)
		take_result(a);
}

static int loop(App *a)
{
	layout_make(a);
	while (!a->quit) {
		if (a->resized) {
			a->resized = false;
			layout_make(a);
			clearok(curscr, TRUE);
		}
		draw_all(a);
		struct pollfd p[3] = {
			{STDIN_FILENO, POLLIN, 0},
			{worker_fd(a->worker), POLLIN, 0},
			{sig_pipe[0], POLLIN, 0},
		};
		int n = poll(p, 3, -1);
		if (n < 0 && errno != EINTR)
			return 2;
		if (got_signal) {
			a->quit = true;
			break;
		}
		int ch;
		while (!a->quit && (ch = getch()) != ERR)
			on_key(a, ch);
		if (a->submitted) {
			/* The default layer answers in a few ms: show the answer
			 * in the same frame rather than flash "computing". */
			a->submitted = false;
			wait_result(a, 60);
		}
		take_result(a);
	}
	return 0;
}

int app_run(const RunOptions *o, bool use_default, bool tour, const char *tour_file)
{
	App *a = calloc(1, sizeof *a);
	if (!a) {
		fprintf(stderr, "ropefold: out of memory\n");
		return 2;
	}
	commands_settings_init(&a->set, o, use_default);
	/* A tour's script is read and checked before anything else, so a
	 * bad line fails with a plain message. */
	Tour *pre = NULL;
	if (tour) {
		char err[512];
		if (tour_open(tour_file, &a->set, &pre, err, sizeof err)) {
			fprintf(stderr, "ropefold tour: %s\n", err);
			free(a);
			return 2;
		}
	}
	a->tours = pre;
	a->worker = worker_new();
	if (!a->worker) {
		fprintf(stderr, "ropefold: cannot start the evaluation thread\n");
		tour_free(a->tours);
		free(a);
		return 2;
	}
	/* The first evaluation runs before the screen is taken, so a bad
	 * model or flag fails with a plain message. */
	submit(a);
	wait_result(a, 300);
	if (a->pending) {
		fprintf(stderr, "ropefold: building the layer...\n");
		wait_result(a, -1);
	}
	if (!a->res) {
		fprintf(stderr, "ropefold tui: %s\n", a->status);
		worker_free(a->worker);
		tour_free(a->tours);
		free(a);
		return 2;
	}
	a->applied = a->res->settings;
	set_status(a, false, "");

	if (tcgetattr(STDIN_FILENO, &saved_tio) == 0)
		have_tio = true;
	if (signals_install()) {
		fprintf(stderr, "ropefold: cannot set up signal handling\n");
		worker_free(a->worker);
		tour_free(a->tours);
		free(a);
		return 2;
	}
	/* Line drawing as UTF-8 in a UTF-8 locale: terminals (and multiplexers)
	 * that ignore the VT100 alternate character set still draw frames. */
	const char *cs = nl_langinfo(CODESET);
	if (cs && !strcmp(cs, "UTF-8"))
		setenv("NCURSES_NO_UTF8_ACS", "1", 0);
	stderr_redirect();
	SCREEN *scr = newterm(NULL, stdout, stdin);
	if (!scr) {
		stderr_restore();
		signals_remove();
		fprintf(stderr, "ropefold: cannot use this terminal (TERM=%s)\n",
			getenv("TERM") ? getenv("TERM") : "");
		worker_result_free(a->res);
		worker_free(a->worker);
		tour_free(a->tours);
		free(a);
		return 2;
	}
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	set_escdelay(25);
	curs_set(0);
	mousemask(BUTTON1_CLICKED | BUTTON1_PRESSED, NULL);
	colors_init();
	cmdline_init();
	refresh();
	if (tour) {
		a->tours_builtin = tour_file == NULL;
		a->tour_base = a->set;
		tour_goto_from(a, 0, true);
	}

	int rc = loop(a);

	cmdline_done();
	layout_free(a);
	endwin();
	delscreen(scr);
	stderr_restore();
	signals_remove();
	if (got_signal && got_signal != SIGINT)
		rc = 128 + got_signal;
	worker_result_free(a->res);
	worker_free(a->worker);
	msglog_clear(&a->log);
	tour_free(a->tours);
	free(a);
	return rc;
}
