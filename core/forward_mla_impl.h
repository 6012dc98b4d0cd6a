/* DeepSeek's multi-head latent attention in the decoder layer, written
 * once for float64 and float32: included by core/forward_impl.h (its R,
 * SUF, GEMM, ROPE_ROWS, linear and norm_rows). The formulas are
 * core/mla.h's; this is the same computation as core/mla_attention.c in
 * the layer's precision, with GEMMs per head for the scores. */

typedef struct {
	const FwdMla *m;
	size_t T;
	const R *q, *k;         /* T x H*(dn+dr): per head [q_nope; Theta q_pe],
				 * [k_nope; Theta k_pe] */
	const R *v;             /* T x H*dv */
	R *ctx;                 /* T x H*dv */
	R *scores;              /* nworkers x T x T */
	double scale;
	TaskQueue heads;
} SUF(MlaJob);

static void SUF(mla_head)(void *arg, size_t worker)
{
	SUF(MlaJob) *j = arg;
	const MlaShape *s = &j->m->shape;
	size_t T = j->T, H = s->n_heads, dq = mla_qk_dim(s), dv = s->v_head_dim;
	R *S = j->scores + worker * T * T;   /* T x T, row m: query m */
	size_t h;
	while ((h = task_queue_next(&j->heads)) != (size_t)-1) {
		GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)T, (int)dq,
		     (R)j->scale, j->q + h * dq, (int)(H * dq), j->k + h * dq, (int)(H * dq), 0, S,
		     (int)T);
		for (size_t m = 0; m < T; m++) {
			R *row = S + m * T;
			double mx = -INFINITY, sum = 0;
			for (size_t n = 0; n <= m; n++)
				mx = row[n] > mx ? row[n] : mx;
			for (size_t n = 0; n <= m; n++) {
				R e = (R)exp(row[n] - mx);
				row[n] = e;
				sum += e;
			}
			R inv = (R)(1.0 / sum);
			for (size_t n = 0; n < T; n++)
				row[n] = n <= m ? row[n] * inv : 0;
		}
		GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)dv, (int)T, 1, S,
		     (int)T, j->v + h * dv, (int)(H * dv), 0, j->ctx + h * dv, (int)(H * dv));
	}
}

/* The rope part's cos/sin tables in the state (kept while the spec is the
 * same, as for the standard attention). */
static RfStatus SUF(mla_rope)(FwdState *st, const RopeSpec *r)
{
	if (st->have_rope && rope_spec_equal(&st->rope_spec, r))
		return RF_OK;
	if (st->have_rope)
		rope_table_done(&st->rope);
	st->have_rope = false;
	RfStatus rc = rope_table_init(&st->rope, r, st->T);
	if (rc != RF_OK)
		return rc;
	st->rope_spec = *r;
	st->have_rope = true;
	return RF_OK;
}

/* out (T x D) = MLA of the normed input a (T x D); keep (or NULL) takes
 * q, k, v and ctx over instead of their release. */
static RfStatus SUF(mla_attention)(FwdState *st, const FwdMla *m, const R *a, R *out,
				   FwdMlaTrace *keep)
{
	const MlaShape *s = &m->shape;
	size_t T = st->T, D = st->D, H = s->n_heads, Lq = s->q_lora_rank, Lkv = s->kv_lora_rank;
	size_t dn = s->qk_nope_dim, dr = s->qk_rope_dim, dv = s->v_head_dim;
	size_t dq = dn + dr, dkv = dn + dv, la = Lkv + dr;
	size_t nw = st->nthreads ? st->nthreads : 1;
	if (nw > H)
		nw = H;
	R *q = malloc(T * H * dq * sizeof(R));       /* T x H*dq */
	R *k = malloc(T * H * dq * sizeof(R));       /* T x H*dq */
	R *v = malloc(T * H * dv * sizeof(R));       /* T x H*dv */
	R *ctx = malloc(T * H * dv * sizeof(R));     /* T x H*dv */
	R *qa = malloc((T * Lq + 1) * sizeof(R));    /* T x Lq */
	R *ca = malloc(T * la * sizeof(R));          /* T x (Lkv + dr) */
	R *lat = malloc(T * Lkv * sizeof(R));        /* T x Lkv, normed */
	R *kv = malloc(T * H * dkv * sizeof(R));     /* T x H*dkv */
	R *pe = malloc(T * H * dr * sizeof(R));      /* T x H*dr: q_pe, then k_pe */
	R *sc = malloc(nw * T * T * sizeof(R));
	RfStatus rc = RF_ERR_NOMEM;
	if (!q || !k || !v || !ctx || !qa || !ca || !lat || !kv || !pe || !sc)
		goto out;
	RopeSpec rope = m->rope;
	rope.rotary_dim = dr;
	if ((rc = SUF(mla_rope)(st, &rope)) != RF_OK)
		goto out;
	if (Lq) {
		SUF(linear)(a, D, T, D, m->q_a, Lq, NULL, qa, Lq);
		SUF(norm_rows)(qa, qa, T, Lq, m->q_a_norm, NULL, NORM_RMS, m->latent_eps);
		SUF(linear)(qa, Lq, T, Lq, m->q_b, H * dq, NULL, q, H * dq);
	} else {
		SUF(linear)(a, D, T, D, m->q_b, H * dq, NULL, q, H * dq);
	}
	SUF(linear)(a, D, T, D, m->kv_a, la, NULL, ca, la);
	for (size_t t = 0; t < T; t++)
		memcpy(lat + t * Lkv, ca + t * la, Lkv * sizeof(R));
	SUF(norm_rows)(lat, lat, T, Lkv, m->kv_a_norm, NULL, NORM_RMS, m->latent_eps);
	SUF(linear)(lat, Lkv, T, Lkv, m->kv_b, H * dkv, NULL, kv, H * dkv);
	/* the query heads' rope parts, turned in place */
	for (size_t t = 0; t < T; t++)
		for (size_t h = 0; h < H; h++)
			memcpy(pe + (t * H + h) * dr, q + (t * H + h) * dq + dn, dr * sizeof(R));
	ROPE_ROWS(&st->rope, T, H, dr, pe, H * dr);
	for (size_t t = 0; t < T; t++)
		for (size_t h = 0; h < H; h++)
			memcpy(q + (t * H + h) * dq + dn, pe + (t * H + h) * dr, dr * sizeof(R));
	/* the one shared k_pe (T x dr in pe), turned, then k and v per head */
	for (size_t t = 0; t < T; t++)
		memcpy(pe + t * dr, ca + t * la + Lkv, dr * sizeof(R));
	ROPE_ROWS(&st->rope, T, 1, dr, pe, dr);
	for (size_t t = 0; t < T; t++)
		for (size_t h = 0; h < H; h++) {
			const R *kvh = kv + (t * H + h) * dkv;
			R *kh = k + (t * H + h) * dq;
			memcpy(kh, kvh, dn * sizeof(R));
			memcpy(kh + dn, pe + t * dr, dr * sizeof(R));
			memcpy(v + (t * H + h) * dv, kvh + dn, dv * sizeof(R));
		}
	SUF(MlaJob) job = {.m = m, .T = T, .q = q, .k = k, .v = v, .ctx = ctx, .scores = sc,
			   .scale = m->score_scale > 0 ? m->score_scale : 1.0 / sqrt((double)dq)};
	task_queue_init(&job.heads, H);
	int saved = parallel_blas_single();
	rc = parallel_run(nw, SUF(mla_head), &job);
	parallel_blas_restore(saved);
	if (rc == RF_OK)
		SUF(linear)(ctx, H * dv, T, H * dv, m->wo, D, NULL, out, D);
	if (rc == RF_OK && keep) {
		keep->q = q;
		keep->k = k;
		keep->v = v;
		keep->ctx = ctx;
		q = k = v = ctx = NULL;
	}
out:
	free(q);
	free(k);
	free(v);
	free(ctx);
	free(qa);
	free(ca);
	free(lat);
	free(kv);
	free(pe);
	free(sc);
	return rc;
}
