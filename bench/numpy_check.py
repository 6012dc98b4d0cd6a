#!/usr/bin/python3
"""The float64 check of `ropefold bench`, written as competent NumPy.

Same work as one `ropefold check` with every assumption held: draw the
commuting rotations, fold W_q, W_k, W_v, W_o, evaluate both sides from their
own weights on the same input (projections as single matmuls, RoPE from
tables, causal softmax per head), compare the three levels (scores with the
error by offset, the heat bins and the worst location; every head's output
O_h = C_h W_o,h^T; the residual y = x + sum_h O_h), and the diagnostics
(orthogonality defects, commutators with Theta_1 and their per-pair map,
Q/K, GQA and V/O mismatches). Big outputs are written into buffers
allocated once (out=), so the timing is arithmetic, not page faults.

usage: numpy_check.py [--d-model N --heads N --kv-heads N --head-dim N
                       --seq N --repeat N --json]
"""
import argparse
import json
import statistics
import sys
import time

import numpy as np


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--d-model", type=int, default=4096)
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--kv-heads", type=int, default=8)
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", action="store_true")
    return p.parse_args()


def rope_tables(T, d, theta=10000.0):
    """cos/sin of p * w_i, half-split layout (pair i is (i, i + d/2))."""
    w = theta ** (-2.0 * np.arange(d // 2) / d)
    ang = np.arange(T)[:, None] * w[None, :]
    return w, np.cos(ang), np.sin(ang)


def rope_apply(q, nh, d, cos, sin):
    """Rotate every head of q (T x nh*d) in place."""
    T = q.shape[0]
    v = q.reshape(T, nh, d)
    a = v[:, :, : d // 2].copy()
    b = v[:, :, d // 2:]
    c, s = cos[:, None, :], sin[:, None, :]
    v[:, :, : d // 2] = a * c - b * s
    v[:, :, d // 2:] = a * s + b * c


def commuting(d, rng):
    """One SO(2) angle per pair (half-split layout)."""
    t = rng.uniform(-np.pi, np.pi, d // 2)
    R = np.zeros((d, d))
    i = np.arange(d // 2)
    R[i, i] = R[i + d // 2, i + d // 2] = np.cos(t)
    R[i, i + d // 2] = -np.sin(t)
    R[i + d // 2, i] = np.sin(t)
    return R


class Check:
    def __init__(self, D, H, G, d, T, seed=1):
        rng = np.random.default_rng(seed)
        s = 1.0 / np.sqrt(D)
        self.D, self.H, self.G, self.d, self.T = D, H, G, d, T
        self.wq = rng.standard_normal((H * d, D)) * s
        self.wk = rng.standard_normal((G * d, D)) * s
        self.wv = rng.standard_normal((G * d, D)) * s
        self.wo = rng.standard_normal((D, H * d)) * s
        self.x = rng.standard_normal((T, D))
        self.freqs, self.cos, self.sin = rope_tables(T, d)
        # buffers written by every run (allocated and touched once)
        self.f_wq = np.empty_like(self.wq)
        self.f_wk = np.empty_like(self.wk)
        self.f_wv = np.empty_like(self.wv)
        self.f_wo = np.empty((H, D, d))
        self.oa = np.empty((T, D))
        self.ob = np.empty((T, D))
        for b in (self.f_wq, self.f_wk, self.f_wv, self.f_wo, self.oa, self.ob):
            b.fill(0)
        m, n = np.tril_indices(T)
        off = m - n
        order = np.argsort(off, kind="stable")
        self.tri_flat = (m * T + n)[order]
        self.off_starts = np.searchsorted(off[order], np.arange(T))
        self.mask = np.triu(np.ones((T, T), dtype=bool), 1)
        self.B = min(T, 64)

    def run(self, seed=1):
        D, H, G, d, T = self.D, self.H, self.G, self.d, self.T
        hpg = H // G
        rng = np.random.default_rng(seed)
        # ---- rotations and fold -------------------------------------------
        Rg = np.stack([commuting(d, rng) for _ in range(G)])      # G x d x d
        Rq = np.repeat(Rg, hpg, axis=0)                          # H x d x d
        np.matmul(Rq, self.wq.reshape(H, d, D), out=self.f_wq.reshape(H, d, D))
        np.matmul(Rg, self.wk.reshape(G, d, D), out=self.f_wk.reshape(G, d, D))
        np.matmul(Rg, self.wv.reshape(G, d, D), out=self.f_wv.reshape(G, d, D))
        wo_h = self.wo.reshape(D, H, d).transpose(1, 0, 2)       # H x D x d
        np.matmul(wo_h, Rq.transpose(0, 2, 1), out=self.f_wo)
        # ---- both sides ------------------------------------------------------
        sides = []
        for wq, wk, wv in ((self.wq, self.wk, self.wv),
                           (self.f_wq, self.f_wk, self.f_wv)):
            q, k, v = self.x @ wq.T, self.x @ wk.T, self.x @ wv.T
            rope_apply(q, H, d, self.cos, self.sin)
            rope_apply(k, G, d, self.cos, self.sin)
            sides.append((q, k, v))
        (qa, ka, va), (qb, kb, vb) = sides
        scale = 1.0 / np.sqrt(d)
        B = self.B
        by_off = np.zeros(T)
        heat = np.empty((H, B, B))
        score = dict(err=0.0, ref=0.0, where=None)
        head = dict(err=0.0, ref=0.0, where=None)
        s_rel, h_rel = np.empty(H), np.empty(H)
        ua, ub = np.zeros((T, D)), np.zeros((T, D))
        for h in range(H):
            g = h // hpg
            sl, gl = slice(h * d, h * d + d), slice(g * d, g * d + d)
            Sa = (qa[:, sl] @ ka[:, gl].T) * scale
            Sb = (qb[:, sl] @ kb[:, gl].T) * scale
            E = np.abs(Sa - Sb)
            E[self.mask] = 0
            ref = np.abs(Sa)
            ref[self.mask] = 0
            i = int(E.argmax())
            e, r = E.flat[i], ref.max()
            if e > score["err"] or score["where"] is None:
                score.update(err=e, where=(h, i // T, i % T))
            score["ref"] = max(score["ref"], r)
            s_rel[h] = e / r if r > 0 else e
            np.maximum(by_off, np.maximum.reduceat(E.ravel()[self.tri_flat],
                                                   self.off_starts), out=by_off)
            Em = np.where(self.mask, -1.0, E)
            if T % B == 0:
                heat[h] = Em.reshape(B, T // B, B, T // B).max(axis=(1, 3))
            # fused mask + softmax, contexts, the head's projected output
            Ca = []
            for S, v, wo, O in ((Sa, va, wo_h[h], self.oa),
                                (Sb, vb, self.f_wo[h], self.ob)):
                S[self.mask] = -np.inf
                S -= S.max(axis=1, keepdims=True)
                np.exp(S, out=S)
                S /= S.sum(axis=1, keepdims=True)
                np.matmul(S @ v[:, gl], wo.T, out=O)
            diff = np.abs(self.oa - self.ob)
            i = int(diff.argmax())
            e, r = diff.flat[i], np.abs(self.oa).max()
            if e > head["err"] or head["where"] is None:
                head.update(err=e, where=(h, i // D, i % D))
            head["ref"] = max(head["ref"], r)
            h_rel[h] = e / r if r > 0 else e
            ua += self.oa
            ub += self.ob
        ya, yb = self.x + ua, self.x + ub
        res = np.abs(ya - yb)
        i = int(res.argmax())
        resid = dict(err=res.flat[i], ref=np.abs(ua).max(), where=(i // D, i % D))
        # ---- diagnostics ----------------------------------------------------
        I = np.eye(d)
        Rall = np.concatenate([Rq, Rg, Rg])
        ortho = np.linalg.norm(Rall.transpose(0, 2, 1) @ Rall - I, axis=(1, 2)).max()
        th = np.eye(d)
        ii = np.arange(d // 2)
        c, s = np.cos(self.freqs), np.sin(self.freqs)
        th[ii, ii] = th[ii + d // 2, ii + d // 2] = c
        th[ii, ii + d // 2], th[ii + d // 2, ii] = -s, s
        K = Rq @ th - th @ Rq
        comm_q = np.linalg.norm(K, axis=(1, 2))
        grp = np.concatenate([ii, ii])
        pair_map = np.zeros((H, d // 2, d // 2))
        np.add.at(pair_map, (slice(None), grp[:, None], grp[None, :]), K ** 2)
        comm_k = np.linalg.norm(Rg @ th - th @ Rg, axis=(1, 2))
        qk = np.linalg.norm(Rq - np.repeat(Rg, hpg, axis=0), axis=(1, 2)).max()
        vo = np.linalg.norm(Rq.transpose(0, 2, 1) @ np.repeat(Rg, hpg, axis=0) - I,
                            axis=(1, 2)).max()
        return dict(score=score["err"] / score["ref"], head=head["err"] / head["ref"],
                    residual=resid["err"] / resid["ref"], ortho=ortho,
                    comm=max(comm_q.max(), comm_k.max()), qk=qk, vo=vo,
                    pair_map=float(np.sqrt(pair_map).max()))


def main():
    a = parse()
    chk = Check(a.d_model, a.heads, a.kv_heads, a.head_dim, a.seq)
    chk.run()                       # warm-up
    times = []
    for _ in range(a.repeat):
        t = time.perf_counter()
        out = chk.run()
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    if a.json:
        print(json.dumps({"seconds": med, "runs": times, "levels": out}))
    else:
        print(f"numpy check: median {med:.3f} s over {a.repeat} runs "
              f"(score {out['score']:.2g}, head {out['head']:.2g}, "
              f"residual {out['residual']:.2g})")
    ok = all(out[k] < 1e-12 for k in ("score", "head", "residual"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
