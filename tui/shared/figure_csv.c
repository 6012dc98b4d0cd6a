#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tui/shared/figure_impl.h"

/* Row bin b of the heatmap holds tokens ceil(b T / B) .. ceil((b+1) T / B) - 1
 * (core/attention_impl.h bins both axes this way). */
static void bin_range(size_t b, size_t T, size_t B, size_t *first, size_t *last)
{
	*first = (b * T + B - 1) / B;
	*last = ((b + 1) * T + B - 1) / B - 1;
}

static void write_rows(FILE *f, const FigureInput *in, FigureKind kind)
{
	const InvReport *rep = in->rep;
	const Diagnostics *dg = &rep->diag;
	double ref = rep->level[LEVEL_SCORE].ref_max;
	size_t h = in->head < rep->n_heads ? in->head : 0;
	switch (kind) {
	case FIG_OFFSET:
		fprintf(f, "offset,abs_err,rel_err,max_abs_score\n");
		for (size_t o = 0; o < rep->seq; o++)
			fprintf(f, "%zu,%.17g,%.17g,%.17g\n", o, rep->by_offset[o],
				ref > 0 ? rep->by_offset[o] / ref : rep->by_offset[o],
				rep->by_offset_ref[o]);
		break;
	case FIG_HEATMAP: {
		size_t B = rep->heat_bins, T = rep->seq;
		const double *heat = rep->heat + h * B * B;
		fprintf(f, "head,m_bin,n_bin,m_first,m_last,n_first,n_last,abs_err,rel_err,"
			   "diagonal_abs_err\n");
		for (size_t i = 0; i < B; i++)
			for (size_t j = 0; j <= i; j++) {
				double v = heat[i * B + j];
				if (v < 0)
					continue;
				size_t m0, m1, n0, n1;
				bin_range(i, T, B, &m0, &m1);
				bin_range(j, T, B, &n0, &n1);
				fprintf(f, "%zu,%zu,%zu,%zu,%zu,%zu,%zu,%.17g,%.17g,", h, i, j, m0, m1,
					n0, n1, v, ref > 0 ? v / ref : v);
				if (i == j && rep->heat_diag)
					fprintf(f, "%.17g\n", rep->heat_diag[h * B + i]);
				else
					fprintf(f, "\n");
			}
		break;
	}
	case FIG_HEADS: {
		size_t H = rep->n_heads, G = rep->n_kv_heads;
		fprintf(f, "head,kv_group,head_rel_err,score_rel_err\n");
		for (size_t q = 0; q < H; q++)
			fprintf(f, "%zu,%zu,%.17g,%.17g\n", q, G ? q / (H / G) : 0,
				rep->head_rel_err[q], rep->score_rel_err[q]);
		break;
	}
	case FIG_PAIRS:
	default: {
		size_t ms = dg->map_size, np = dg->npairs;
		const double *map = dg->pair_map + h * ms * ms;
		fprintf(f, "head,pair_i,pair_j,freq_i,freq_j,norm\n");
		for (size_t i = 0; i < ms; i++)
			for (size_t j = 0; j < ms; j++) {
				fprintf(f, "%zu,", h);
				if (i < np)
					fprintf(f, "%zu,", i);
				else
					fprintf(f, "non-rotary,");
				if (j < np)
					fprintf(f, "%zu,", j);
				else
					fprintf(f, "non-rotary,");
				fprintf(f, "%.17g,%.17g,%.17g\n", i < np ? dg->freqs[i] : 0.0,
					j < np ? dg->freqs[j] : 0.0, map[i * ms + j]);
			}
		break;
	}
	}
}

int figure_write_csv(const FigureInput *in, FigureKind kind, const char *path,
		     char *err, size_t errlen)
{
	char tmp[4096];
	FILE *f = figure_tmp_open(path, tmp, sizeof tmp, err, errlen);
	if (!f)
		return -1;
	write_rows(f, in, kind);
	int bad = ferror(f);
	bad |= fclose(f) != 0;
	if (bad) {
		snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return figure_tmp_commit(tmp, path, err, errlen);
}
