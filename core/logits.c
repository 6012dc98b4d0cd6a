#include "config.h"

#include <math.h>

#include "core/logits.h"

size_t logits_argmax(const double *z, size_t V)
{
	size_t best = 0;
	for (size_t i = 1; i < V; i++)
		if (z[i] > z[best])
			best = i;
	return best;
}

/* log sum exp of a row, with its max subtracted. */
static double log_sum_exp(const double *z, size_t V, double *mx)
{
	double m = z[logits_argmax(z, V)], s = 0;
	for (size_t i = 0; i < V; i++)
		s += exp(z[i] - m);
	*mx = m;
	return log(s);
}

void logits_top(const double *z, size_t V, size_t k, LogitsTop *out)
{
	double mx, lse = log_sum_exp(z, V, &mx);
	size_t n = 0;
	/* insertion into the k best so far: k is small */
	for (size_t i = 0; i < V; i++) {
		if (n == k && !(z[i] > out[n - 1].logit))
			continue;
		size_t j = n < k ? n++ : n - 1;
		while (j > 0 && z[i] > out[j - 1].logit) {
			out[j] = out[j - 1];
			j--;
		}
		out[j].id = i;
		out[j].logit = z[i];
	}
	for (size_t j = 0; j < n; j++)
		out[j].p = exp(out[j].logit - mx - lse);
}

void logits_compare(const double *a, const double *b, size_t T, size_t V, LogitsCompare *out)
{
	double maxa = 0, maxd = 0, maxkl = 0;
	size_t agree = 0, first = (size_t)-1;
	for (size_t t = 0; t < T; t++) {
		const double *x = a + t * V, *y = b + t * V;
		double mxa, mxb, la = log_sum_exp(x, V, &mxa), lb = log_sum_exp(y, V, &mxb);
		double kl = 0;
		for (size_t i = 0; i < V; i++) {
			double d = fabs(x[i] - y[i]);
			maxd = d > maxd ? d : maxd;
			maxa = fabs(x[i]) > maxa ? fabs(x[i]) : maxa;
			double lpa = x[i] - mxa - la, lpb = y[i] - mxb - lb;
			kl += exp(lpa) * (lpa - lpb);
		}
		kl = kl > 0 ? kl : 0;   /* roundoff below zero */
		maxkl = kl > maxkl ? kl : maxkl;
		if (logits_argmax(x, V) == logits_argmax(y, V))
			agree++;
		else if (first == (size_t)-1)
			first = t;
	}
	out->max_abs_logit_err = maxd;
	out->max_rel_logit_err = maxa > 0 ? maxd / maxa : maxd;
	out->max_kl = maxkl;
	out->top1_agreement = T ? (double)agree / (double)T : 1.0;
	out->first_disagreement = first;
}
