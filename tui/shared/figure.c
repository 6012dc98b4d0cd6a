#include "config.h"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "tui/shared/figure_impl.h"

typedef enum { FMT_SVG, FMT_PNG, FMT_PDF } FigFormat;

static int format_of(const char *path, FigFormat *f)
{
	const char *dot = strrchr(path, '.');
	if (!dot || strchr(dot, '/'))
		return -1;
	if (!strcasecmp(dot, ".svg"))
		*f = FMT_SVG;
	else if (!strcasecmp(dot, ".png"))
		*f = FMT_PNG;
	else if (!strcasecmp(dot, ".pdf"))
		*f = FMT_PDF;
	else
		return -1;
	return 0;
}

int figure_format_ok(const char *path)
{
	FigFormat f;
	return format_of(path, &f);
}

FILE *figure_tmp_open(const char *path, char *tmp, size_t tmplen, char *err, size_t errlen)
{
	const char *slash = strrchr(path, '/');
	int dirlen = slash ? (int)(slash - path) + 1 : 0;
	const char *base = slash ? slash + 1 : path;
	if (!*base) {
		snprintf(err, errlen, "%s: names a folder, not a file", path);
		return NULL;
	}
	/* O_EXCL under a name of this process: created with 0666 less the
	 * umask, as the figure itself would be */
	int fd = -1;
	for (unsigned k = 0; fd < 0 && k < 100; k++) {
		if ((size_t)snprintf(tmp, tmplen, "%.*s.%s.tmp-%ld-%u", dirlen, path, base,
				     (long)getpid(), k) >= tmplen) {
			snprintf(err, errlen, "%s: path too long", path);
			return NULL;
		}
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
		return NULL;
	}
	FILE *f = fdopen(fd, "wb");
	if (!f) {
		snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
		close(fd);
		unlink(tmp);
	}
	return f;
}

int figure_tmp_commit(const char *tmp, const char *path, char *err, size_t errlen)
{
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

static cairo_status_t to_file(void *closure, const unsigned char *data, unsigned int len)
{
	return fwrite(data, 1, len, closure) == len ? CAIRO_STATUS_SUCCESS
						   : CAIRO_STATUS_WRITE_ERROR;
}

static void draw_page(cairo_t *cr, const FigureInput *in, const FigureKind *kinds, size_t n,
		      double W, double H)
{
	cairo_set_source_rgb(cr, 1, 1, 1);
	cairo_rectangle(cr, 0, 0, W, H);
	cairo_fill(cr);
	if (in->title) {
		cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
				       CAIRO_FONT_WEIGHT_NORMAL);
		cairo_set_font_size(cr, 14);
		cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
		cairo_move_to(cr, 14, 22);
		cairo_show_text(cr, in->title);
	}
	for (size_t i = 0; i < n; i++) {
		FigBox b = {FIG_PANEL_W * (double)i, FIG_TITLE_H, FIG_PANEL_W, FIG_PANEL_H};
		cairo_save(cr);
		switch (kinds[i]) {
		case FIG_OFFSET:
			figure_draw_offset(cr, in, b);
			break;
		case FIG_HEATMAP:
			figure_draw_heatmap(cr, in, b);
			break;
		case FIG_HEADS:
			figure_draw_heads(cr, in, b);
			break;
		case FIG_PAIRS:
		default:
			figure_draw_pairs(cr, in, b);
			break;
		}
		cairo_restore(cr);
	}
}

int figure_write(const FigureInput *in, const FigureKind *kinds, size_t n,
		 const char *path, char *err, size_t errlen)
{
	FigFormat fmt;
	if (format_of(path, &fmt)) {
		snprintf(err, errlen, "%s: does not end in .svg, .png or .pdf", path);
		return -1;
	}
	if (n == 0 || !in->rep || in->rep->seq == 0) {
		snprintf(err, errlen, "%s: nothing to draw", path);
		return -1;
	}
	char tmp[4096];
	FILE *f = figure_tmp_open(path, tmp, sizeof tmp, err, errlen);
	if (!f)
		return -1;
	double W = FIG_PANEL_W * (double)n, H = FIG_PANEL_H + FIG_TITLE_H;
	cairo_surface_t *s;
	if (fmt == FMT_SVG)
		s = cairo_svg_surface_create_for_stream(to_file, f, W, H);
	else if (fmt == FMT_PDF) {
		s = cairo_pdf_surface_create_for_stream(to_file, f, W, H);
		/* the title also in the document's Info, where a reader (and a
		 * test) finds it as text */
		if (in->title)
			cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_TITLE, in->title);
	} else   /* PNG: twice the points, for a projector */
		s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)(2 * W), (int)(2 * H));
	cairo_t *cr = cairo_create(s);
	if (fmt == FMT_PNG)
		cairo_scale(cr, 2, 2);
	draw_page(cr, in, kinds, n, W, H);
	cairo_status_t st = cairo_status(cr);
	cairo_destroy(cr);
	if (st == CAIRO_STATUS_SUCCESS && fmt == FMT_PNG)
		st = cairo_surface_write_to_png_stream(s, to_file, f);
	cairo_surface_finish(s);
	if (st == CAIRO_STATUS_SUCCESS)
		st = cairo_surface_status(s);
	cairo_surface_destroy(s);
	/* nothing of cairo outlives a figure: give back its font caches */
	cairo_debug_reset_static_data();
	int bad = fclose(f) != 0;
	if (st != CAIRO_STATUS_SUCCESS || bad) {
		snprintf(err, errlen, "%s: cannot write: %s", path,
			 st != CAIRO_STATUS_SUCCESS ? cairo_status_to_string(st) : strerror(errno));
		unlink(tmp);
		return -1;
	}
	return figure_tmp_commit(tmp, path, err, errlen);
}
