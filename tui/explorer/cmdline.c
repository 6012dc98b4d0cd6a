#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wchar.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "tui/explorer/cmdline.h"
#include "tui/explorer/commands.h"

#define HISTORY_MAX 1000

static bool active;
static CmdlineDone on_done;
static void *done_ctx;
static unsigned char queue[64];   /* bytes waiting for readline */
static size_t q_head, q_len;
static char matches[512];
static char hist_path[1024];
static FILE *null_out;

/* ---- readline hooks ---------------------------------------------------- */

static int hook_getc(FILE *f)
{
	(void)f;
	if (!q_len)
		return EOF;   /* never asked: we only call in with bytes queued */
	int c = queue[q_head];
	q_head = (q_head + 1) % sizeof queue;
	q_len--;
	return c;
}

static int hook_input_available(void)
{
	return q_len > 0;
}

static void hook_redisplay(void)
{
	/* The event loop repaints after every key; nothing to do here. */
}

static void hook_prep(int meta)
{
	(void)meta;
}

static void hook_deprep(void)
{
}

static void hook_display_matches(char **m, int n, int max)
{
	(void)max;
	matches[0] = 0;
	/* m[0] is the common prefix; copy: readline frees them after. */
	for (int i = 1; i <= n; i++) {
		if (strlen(matches) + strlen(m[i]) + 3 >= sizeof matches)
			break;
		if (i > 1)
			strcat(matches, "  ");
		strcat(matches, m[i]);
	}
}

static const char *const *gen_words;

static char *gen_match(const char *text, int state)
{
	static size_t idx, len;
	if (!state) {
		idx = 0;
		len = strlen(text);
	}
	while (gen_words && gen_words[idx]) {
		const char *w = gen_words[idx++];
		if (!strncmp(w, text, len))
			return strdup(w);
	}
	return NULL;
}

static char **hook_complete(const char *text, int start, int end)
{
	(void)end;
	matches[0] = 0;
	gen_words = commands_completions(rl_line_buffer, (size_t)start);
	if (!gen_words) {
		/* a file path: readline's own filename completion */
		rl_attempted_completion_over = 0;
		return NULL;
	}
	rl_attempted_completion_over = 1;
	return rl_completion_matches(text, gen_match);
}

static void on_line(char *line)
{
	/* Remove the handler here, or readline redraws an empty prompt. */
	rl_callback_handler_remove();
	active = false;
	matches[0] = 0;
	curs_set(0);
	if (line && *line) {
		add_history(line);
		if (hist_path[0])
			append_history(1, hist_path);
	}
	CmdlineDone d = on_done;
	on_done = NULL;
	if (d)
		d(line, done_ctx);
	free(line);
}

/* ---- history file ------------------------------------------------------ */

static int mkdir_p(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		int rc = mkdir(path, 0700);
		*p = '/';
		if (rc && errno != EEXIST)
			return -1;
	}
	return 0;
}

static void history_setup(void)
{
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	if (xdg && *xdg == '/')
		snprintf(hist_path, sizeof hist_path, "%s/ropefold/history", xdg);
	else if (home && *home)
		snprintf(hist_path, sizeof hist_path, "%s/.local/state/ropefold/history", home);
	else
		return;
	if (mkdir_p(hist_path)) {
		hist_path[0] = 0;
		return;
	}
	/* A regular file only: readline opens it by name, and a FIFO there
	 * would block that open (O_NONBLOCK keeps this one from blocking). */
	int fd = open(hist_path, O_WRONLY | O_CREAT | O_APPEND | O_NONBLOCK | O_CLOEXEC, 0600);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		hist_path[0] = 0;
		return;
	}
	close(fd);
	read_history(hist_path);
}

/* ---- public ------------------------------------------------------------- */

void cmdline_init(void)
{
	/* Readline must never write to the terminal curses owns. */
	rl_readline_name = "ropefold";
	rl_catch_signals = 0;
	rl_catch_sigwinch = 0;
	rl_change_environment = 0;
	rl_prep_term_function = hook_prep;
	rl_deprep_term_function = hook_deprep;
	rl_getc_function = hook_getc;
	rl_input_available_hook = hook_input_available;
	rl_redisplay_function = hook_redisplay;
	rl_completion_display_matches_hook = hook_display_matches;
	rl_attempted_completion_function = hook_complete;
	rl_completer_word_break_characters = " \t,";
	rl_instream = stdin;
	null_out = fopen("/dev/null", "w");
	if (null_out)
		rl_outstream = null_out;
	rl_initialize();
	rl_variable_bind("show-all-if-ambiguous", "on");
	rl_variable_bind("bell-style", "none");
	using_history();
	history_setup();
}

void cmdline_open(CmdlineDone done, void *ctx)
{
	on_done = done;
	done_ctx = ctx;
	q_head = q_len = 0;
	matches[0] = 0;
	active = true;
	rl_set_screen_size(1, COLS > 2 ? COLS : 80);
	using_history();
	rl_callback_handler_install(":", on_line);
	curs_set(1);
}

bool cmdline_active(void)
{
	return active;
}

static void push(const char *bytes)
{
	for (; *bytes && q_len < sizeof queue; bytes++) {
		queue[(q_head + q_len) % sizeof queue] = (unsigned char)*bytes;
		q_len++;
	}
}

void cmdline_key(int ch)
{
	if (!active)
		return;
	switch (ch) {
	case KEY_UP: push("\033[A"); break;
	case KEY_DOWN: push("\033[B"); break;
	case KEY_RIGHT: push("\033[C"); break;
	case KEY_LEFT: push("\033[D"); break;
	case KEY_HOME: push("\033[H"); break;
	case KEY_END: push("\033[F"); break;
	case KEY_DC: push("\033[3~"); break;
	case KEY_BACKSPACE: push("\177"); break;
	case KEY_ENTER: push("\n"); break;
	default:
		if (ch >= 0 && ch < 256) {
			char b[2] = {(char)ch, 0};
			if (ch == 0)
				return;
			push(b);
		}
		break;
	}
	while (q_len && active)
		rl_callback_read_char();
	q_len = 0;
}

void cmdline_cancel(void)
{
	if (!active)
		return;
	rl_replace_line("", 0);
	rl_point = rl_end = 0;
	rl_callback_sigcleanup();
	rl_callback_handler_remove();
	active = false;
	matches[0] = 0;
	curs_set(0);
	CmdlineDone d = on_done;
	on_done = NULL;
	if (d)
		d(NULL, done_ctx);
}

/* Display columns of the first n bytes of s. */
static int cols_of(const char *s, size_t n)
{
	mbstate_t st;
	memset(&st, 0, sizeof st);
	int cols = 0;
	size_t i = 0;
	while (i < n) {
		wchar_t wc;
		size_t k = mbrtowc(&wc, s + i, n - i, &st);
		if (k == (size_t)-1 || k == (size_t)-2 || k == 0) {
			memset(&st, 0, sizeof st);
			cols++;
			i++;
			continue;
		}
		int wd = wcwidth(wc);
		cols += wd < 0 ? 1 : wd;
		i += k;
	}
	return cols;
}

void cmdline_draw(WINDOW *win, int y)
{
	if (!active)
		return;
	int width = getmaxx(win);
	const char *prompt = rl_display_prompt ? rl_display_prompt : ":";
	const char *buf = rl_line_buffer ? rl_line_buffer : "";
	size_t len = strlen(buf);
	size_t point = rl_point < 0 ? 0 : (size_t)rl_point;
	if (point > len)
		point = len;
	int pw = cols_of(prompt, strlen(prompt));
	int room = width - pw - 1;
	if (room < 1)
		room = 1;
	/* Scroll horizontally so the cursor stays in sight. */
	size_t start = 0;
	while (start < point && cols_of(buf + start, point - start) >= room) {
		start++;
		while (start < len && ((unsigned char)buf[start] & 0xc0) == 0x80)
			start++;
	}
	/* The visible part: as many bytes as fit in room columns. */
	size_t end = start;
	while (end < len) {
		size_t next = end + 1;
		while (next < len && ((unsigned char)buf[next] & 0xc0) == 0x80)
			next++;
		if (cols_of(buf + start, next - start) > room)
			break;
		end = next;
	}
	wmove(win, y, 0);
	wclrtoeol(win);
	mvwaddstr(win, y, 0, prompt);
	waddnstr(win, buf + start, (int)(end - start));
	wmove(win, y, pw + cols_of(buf + start, point - start));
}

const char *cmdline_matches(void)
{
	return matches;
}

void cmdline_done(void)
{
	if (active) {
		rl_callback_handler_remove();
		active = false;
	}
	if (hist_path[0])
		history_truncate_file(hist_path, HISTORY_MAX);
	clear_history();
	if (null_out) {
		rl_outstream = stdout;
		fclose(null_out);
		null_out = NULL;
	}
}

const char *cmdline_history_path(void)
{
	return hist_path;
}
