#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "core/finding.h"
#include "core/report.h"

RfStatus report_init(InvReport *r, size_t seq, size_t n_heads,
		     size_t n_kv_heads, size_t head_dim, size_t rotary_dim)
{
	memset(r, 0, sizeof *r);
	size_t B = seq < 64 ? seq : 64;
	size_t np = rotary_dim / 2;
	size_t ms = np + (head_dim > rotary_dim ? 1 : 0);
	r->seq = seq;
	r->n_heads = n_heads;
	r->n_kv_heads = n_kv_heads;
	r->heat_bins = B;
	r->by_offset = calloc(seq, sizeof(double));
	r->by_offset_ref = calloc(seq, sizeof(double));
	r->head_rel_err = calloc(n_heads, sizeof(double));
	r->score_rel_err = calloc(n_heads, sizeof(double));
	r->heat = calloc(n_heads * B * B, sizeof(double));
	r->heat_diag = calloc(n_heads * B + 1, sizeof(double));
	r->diag.npairs = np;
	r->diag.map_size = ms;
	r->diag.comm_q = calloc(n_heads, sizeof(double));
	r->diag.comm_k = calloc(n_kv_heads, sizeof(double));
	r->diag.pair_map = calloc(n_heads * ms * ms + 1, sizeof(double));
	r->diag.freqs = calloc(np + 1, sizeof(double));
	r->findings = calloc(REPORT_MAX_FINDINGS, sizeof(Finding));
	if (!r->by_offset || !r->by_offset_ref || !r->head_rel_err ||
	    !r->score_rel_err || !r->heat || !r->heat_diag || !r->diag.comm_q ||
	    !r->diag.comm_k || !r->diag.pair_map || !r->diag.freqs ||
	    !r->findings) {
		report_done(r);
		return RF_ERR_NOMEM;
	}
	return RF_OK;
}

void report_done(InvReport *r)
{
	free(r->by_offset);
	free(r->by_offset_ref);
	free(r->head_rel_err);
	free(r->score_rel_err);
	free(r->heat);
	free(r->heat_diag);
	free(r->diag.comm_q);
	free(r->diag.comm_k);
	free(r->diag.pair_map);
	free(r->diag.freqs);
	free(r->findings);
	memset(r, 0, sizeof *r);
}

const char *level_name(LevelId id)
{
	static const char *names[LEVEL_COUNT] = {"score", "head", "residual"};
	return (unsigned)id < LEVEL_COUNT ? names[id] : "?";
}

bool report_ok(const InvReport *r)
{
	for (int i = 0; i < LEVEL_COUNT; i++)
		if (r->level[i].guaranteed && !r->level[i].holds)
			return false;
	return true;
}
