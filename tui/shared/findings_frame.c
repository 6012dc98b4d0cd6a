#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tui/shared/findings_frame.h"

/* Append to buf (len bytes, NUL-terminated) as printf would. */
static void add(char *buf, size_t len, const char *fmt, ...)
{
	size_t n = strlen(buf);
	if (n + 1 >= len)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + n, len - n, fmt, ap);
	va_end(ap);
}

/* Where w came from, in a parenthesis. */
static void weight_source(const FrameR1Result *r, char *buf, size_t len)
{
	if (r->w_drawn)
		add(buf, len, " The random layer has no norm weight: w is drawn, from %.3g to %.3g.",
		    r->w_min, r->w_max);
	else
		add(buf, len, " w is the layer's own input-norm weight, from %.3g to %.3g.", r->w_min,
		    r->w_max);
}

void findings_frame_r1(const FrameR1Result *r, char *buf, size_t len)
{
	buf[0] = '\0';
	if (r->mode == FRAME_R1_NONE || !len)
		return;
	char comm[160];
	snprintf(comm, sizeof comm, "||diag(w) R1 - R1 diag(w)|| = %.3g against ||diag(w)|| = %.3g",
		 r->commutator, r->w_norm);
	if (r->mode == FRAME_R1_FUSED) {
		add(buf, len, "R1 fused %s (relative error %.2g): with w folded into W_q, W_k, "
		    "W_v and the norm's weight set to 1, the norm is x / rms(x), and "
		    "rms(R1 x) = rms(x) commutes with R1.", r->holds ? "holds" : "BREAKS", r->max_rel_err);
		if (r->w_equal)
			add(buf, len, " Every w_i is equal, so unfused would hold too.");
		else
			add(buf, len, " Unfused it would break: diag(w) does not commute with R1 (%s).",
			    comm);
	} else if (r->w_equal) {
		add(buf, len, "R1 unfused %s (relative error %.2g): every w_i is equal, and "
		    "diag(c) commutes with every rotation; a learned w that varies would break it.",
		    r->holds ? "holds" : "BREAKS", r->max_rel_err);
	} else {
		add(buf, len, "R1 unfused %s (relative error %.2g at token %zu, coord %zu): the "
		    "norm keeps w, so the readers see W R1^T diag(w) R1 x / rms(x) instead of "
		    "W diag(w) x / rms(x); diag(w) does not commute with R1 (%s). rms(R1 x) = "
		    "rms(x) is the only part of the norm that commutes: fuse w into the readers "
		    "first (--r1 fused). With w = 1 unfused would hold too.",
		    r->holds ? "holds" : "breaks", r->max_rel_err, r->worst_token, r->worst_coord,
		    comm);
	}
	weight_source(r, buf, len);
}

/* "0:1e-16 1:0.03 2:0.08 4:... T-1:..." into buf. */
static void offsets(const FrameR3Result *r, char *buf, size_t len)
{
	size_t last = 0;
	for (size_t o = 0, shown = 0; o < r->seq && shown < 6; o = o ? o * 2 : 1, shown++) {
		add(buf, len, "%s%zu: %.2g", shown ? ", " : "", o, r->by_offset[o]);
		last = o;
	}
	if (r->seq > 1 && last != r->seq - 1)
		add(buf, len, ", %zu: %.2g", r->seq - 1, r->by_offset[r->seq - 1]);
}

void findings_frame_r3(const FrameR3Result *r, double tol, char *buf, size_t len)
{
	buf[0] = '\0';
	if (r->mode == FRAME_R3_NONE || !len)
		return;
	char comm[96];
	snprintf(comm, sizeof comm, "commutator norm ||H Theta_1 - Theta_1 H|| = %.3g",
		 r->commutator);
	if (r->mode == FRAME_R3_ONLINE) {
		add(buf, len, "R3 online %s (relative error %.2g): a Hadamard on every head's q "
		    "and k after RoPE leaves every score, (H q) . (H k) = q . k.",
		    r->holds ? "holds" : "BREAKS", r->max_rel_err);
		if (r->commutator > tol)
			add(buf, len, " Folded into W_q, W_k it would break: a Hadamard does not "
			    "commute with RoPE (%s), so R3 must stay online.", comm);
		return;
	}
	if (r->holds) {
		add(buf, len, "R3 folded holds here (relative error %.2g): this layer's RoPE "
		    "commutes with H (%s), as when it rotates nothing.", r->max_rel_err, comm);
		return;
	}
	add(buf, len, "R3 must stay online: a Hadamard does not commute with RoPE (%s). Folded "
	    "into W_q, W_k, before RoPE, the score at offset p becomes q^T H^T Theta_p H k "
	    "instead of q^T Theta_p k: ", comm);
	if (r->by_offset[0] <= tol)
		add(buf, len, "exact at offset 0 (Theta_0 = I), growing with the offset (");
	else if (r->qk_norm)
		add(buf, len, "broken even at offset 0, where Theta_0 = I, since the layer's "
		    "QK-norm between W_q, W_k and RoPE has a weight that does not commute with H "
		    "either (");
	else
		add(buf, len, "broken even at offset 0 (");
	offsets(r, buf, len);
	add(buf, len, "); relative error %.2g, worst at head %zu, (m, n) = (%zu, %zu).",
	    r->max_rel_err, r->worst_head, r->worst_m, r->worst_n);
}

void findings_frame_explain(const FrameReport *rep, char *buf, size_t len)
{
	char a[FINDINGS_FRAME_MAX], b[FINDINGS_FRAME_MAX];
	findings_frame_r1(&rep->r1, a, sizeof a);
	findings_frame_r3(&rep->r3, rep->tol, b, sizeof b);
	snprintf(buf, len, "%s%s%s", a, *a && *b ? " " : "", b);
}
