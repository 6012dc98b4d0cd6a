#!/usr/bin/python3
"""An independent NumPy implementation of SPEC 2.1/2.2 for random layers.

For a grid of layer shapes, rotate sets, dropped assumptions and
permute-heads, it draws its own layer, input and rotations, folds them as
SPEC 2.1 says, evaluates both sides, and decides each level's prediction
and verdict. It then runs `ropefold check --json` with the same flags and
requires the same guaranteed/holds per level (the random draws differ; the
verdicts must not). Prints TAP.
"""
import itertools
import json
import os
import subprocess
import sys

import numpy as np

ROPEFOLD = os.environ.get("ROPEFOLD", "./ropefold")
ASSUMPTIONS = ["orthogonal", "commutes", "shared-qk", "per-head",
               "gqa-consistent", "v-same", "bias"]


def pairs(layout, r):
    if layout == "interleaved":
        return [(2 * i, 2 * i + 1) for i in range(r // 2)]
    return [(i, i + r // 2) for i in range(r // 2)]


def theta_matrix(freqs, layout, r, d, p):
    th = np.eye(d)
    for i, (a, b) in enumerate(pairs(layout, r)):
        c, s = np.cos(p * freqs[i]), np.sin(p * freqs[i])
        th[a, a], th[a, b], th[b, a], th[b, b] = c, -s, s, c
    return th


def haar(n, rng):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def commuting(layout, r, d, rng):
    R = np.zeros((d, d))
    for a, b in pairs(layout, r):
        t = rng.uniform(-np.pi, np.pi)
        R[a, a], R[a, b], R[b, a], R[b, b] = np.cos(t), -np.sin(t), np.sin(t), np.cos(t)
    if d > r:
        R[r:, r:] = haar(d - r, rng)
    return R


def kind_rotation(kind, layout, r, d, rng):
    other = "half" if layout == "interleaved" else "interleaved"
    if kind == "haar":
        return haar(d, rng)
    if kind == "layout-mismatch":
        return commuting(other, r, d, rng)
    if kind == "pair-reflect":
        R = np.eye(d)
        for a, b in pairs(layout, r):
            t = rng.uniform(0, 2 * np.pi)
            R[a, a], R[a, b], R[b, a], R[b, b] = np.cos(t), np.sin(t), np.sin(t), -np.cos(t)
        return R
    raise ValueError(kind)


def scale_pairs(R, layout, r, d, rng):
    S = np.ones(d)
    for a, b in pairs(layout, r):
        S[a] = S[b] = rng.choice([rng.uniform(0.5, 0.8), rng.uniform(1.25, 2.0)])
    S[r:] = rng.uniform(1.25, 2.0, d - r)
    return S[:, None] * R


def make_rotations(cfg, lay, rng):
    H, G, d, r, layout = lay["H"], lay["G"], lay["d"], lay["r"], lay["layout"]
    drop = cfg["drop"]
    hpg = H // G

    def qk():
        R = commuting(layout, r, d, rng) if "commutes" not in drop else \
            kind_rotation(cfg["kind"], layout, r, d, rng)
        return scale_pairs(R, layout, r, d, rng) if "orthogonal" in drop else R

    def vv():
        R = haar(d, rng)
        return scale_pairs(R, layout, r, d, rng) if "orthogonal" in drop else R

    per_group = [qk() for _ in range(G)] if "per-head" not in drop else [qk()] * G
    rq = []
    for g in range(G):
        for j in range(hpg):
            if j == 0 or "gqa-consistent" not in drop:
                rq.append(per_group[g])
            else:
                rq.append(qk())
    if "shared-qk" in drop:
        rk = [qk() for _ in range(G)] if "per-head" not in drop else [qk()] * G
    else:
        rk = [rq[g * hpg] for g in range(G)]
    if "v-same" in drop:
        rv = [vv() for _ in range(G)] if "per-head" not in drop else [vv()] * G
    else:
        rv = [rq[g * hpg] for g in range(G)]
    I = np.eye(d)
    rot = cfg["rotate"]
    RQ = [R if "q" in rot else I for R in rq]
    RK = [R if "k" in rot else I for R in rk]
    RV = [R if "v" in rot else I for R in rv]
    RO = [rv[h // hpg] if "o" in rot else I for h in range(H)]
    return RQ, RK, RV, RO


def fold(W, cfg, lay, rng):
    H, G, d = lay["H"], lay["G"], lay["d"]
    hpg = H // G
    RQ, RK, RV, RO = make_rotations(cfg, lay, rng)
    rb = "bias" not in cfg["drop"]
    perm = [(g + 1) % G for g in range(G)] if cfg["permute"] else list(range(G))
    F = {k: (v.copy() if v is not None else None) for k, v in W.items()}
    for g in range(G):
        og = perm[g]
        F["wk"][g * d:(g + 1) * d] = RK[og] @ W["wk"][og * d:(og + 1) * d]
        F["wv"][g * d:(g + 1) * d] = RV[og] @ W["wv"][og * d:(og + 1) * d]
        if W["bk"] is not None:
            F["bk"][g * d:(g + 1) * d] = (RK[og] if rb else np.eye(d)) @ W["bk"][og * d:(og + 1) * d]
            F["bv"][g * d:(g + 1) * d] = (RV[og] if rb else np.eye(d)) @ W["bv"][og * d:(og + 1) * d]
        for j in range(hpg):
            h, oh = g * hpg + j, og * hpg + j
            F["wq"][h * d:(h + 1) * d] = RQ[oh] @ W["wq"][oh * d:(oh + 1) * d]
            if W["bq"] is not None:
                F["bq"][h * d:(h + 1) * d] = (RQ[oh] if rb else np.eye(d)) @ W["bq"][oh * d:(oh + 1) * d]
            F["wo"][:, h * d:(h + 1) * d] = W["wo"][:, oh * d:(oh + 1) * d] @ RO[oh].T
    return F


def evaluate(W, x, lay):
    H, G, d, r, layout, T = lay["H"], lay["G"], lay["d"], lay["r"], lay["layout"], lay["T"]
    hpg = H // G
    q = x @ W["wq"].T + (W["bq"] if W["bq"] is not None else 0)
    k = x @ W["wk"].T + (W["bk"] if W["bk"] is not None else 0)
    v = x @ W["wv"].T + (W["bv"] if W["bv"] is not None else 0)
    freqs = 10000.0 ** (-2.0 * np.arange(r // 2) / r)
    for t in range(T):
        th = theta_matrix(freqs, layout, r, d, t)
        for h in range(H):
            q[t, h * d:(h + 1) * d] = th @ q[t, h * d:(h + 1) * d]
        for g in range(G):
            k[t, g * d:(g + 1) * d] = th @ k[t, g * d:(g + 1) * d]
    scores, outs = [], []
    mask = np.tril(np.ones((T, T), bool))
    for h in range(H):
        g = h // hpg
        s = q[:, h * d:(h + 1) * d] @ k[:, g * d:(g + 1) * d].T / np.sqrt(d)
        scores.append(s)
        z = np.where(mask, s, -np.inf)
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        c = p @ v[:, g * d:(g + 1) * d]
        outs.append(c @ W["wo"][:, h * d:(h + 1) * d].T)
    upd = sum(outs)
    y = x + upd + (W["bo"] if W["bo"] is not None else 0)
    return scores, outs, upd, y


def reference(lay, cfg, seed):
    rng = np.random.default_rng(seed)
    D, H, G, d, T = lay["D"], lay["H"], lay["G"], lay["d"], lay["T"]
    W = {"wq": rng.standard_normal((H * d, D)) / np.sqrt(D),
         "wk": rng.standard_normal((G * d, D)) / np.sqrt(D),
         "wv": rng.standard_normal((G * d, D)) / np.sqrt(D),
         "wo": rng.standard_normal((D, H * d)) / np.sqrt(H * d)}
    for b, n in (("bq", H * d), ("bk", G * d), ("bv", G * d), ("bo", D)):
        W[b] = 0.1 * rng.standard_normal(n) if lay["bias"] else None
    x = rng.standard_normal((T, D))
    F = fold(W, cfg, lay, rng)
    sa, oa, ua, ya = evaluate(W, x, lay)
    sb, ob, ub, yb = evaluate(F, x, lay)
    mask = np.tril(np.ones((T, T), bool))
    s_err = max(np.abs((a - b)[mask]).max() for a, b in zip(sa, sb))
    s_ref = max(np.abs(a[mask]).max() for a in sa)
    h_err = max(np.abs(a - b).max() for a, b in zip(oa, ob))
    h_ref = max(np.abs(a).max() for a in oa)
    r_err = np.abs(ya - yb).max()
    r_ref = np.abs(ua).max()
    tol = 1e-9
    holds = [s_err / s_ref <= tol, h_err / h_ref <= tol, r_err / r_ref <= tol]
    # Prediction rules of SPEC 2.2
    rot, drop = cfg["rotate"], cfg["drop"]
    rq, rk, rv, ro = ("q" in rot), ("k" in rot), ("v" in rot), ("o" in rot)
    S = rq == rk
    if S and rq:
        S = not ({"orthogonal", "commutes", "shared-qk"} & set(drop)) \
            and not ("gqa-consistent" in drop and H != G) \
            and not ("bias" in drop and lay["bias"])
    VO = rv == ro
    if VO and rv:
        VO = "orthogonal" not in drop and ("bias" not in drop or not lay["bias"])
    guaranteed = [S and not cfg["permute"], S and not cfg["permute"] and VO, S and VO]
    return guaranteed, holds


def run_tool(lay, cfg, seed):
    args = [ROPEFOLD, "check", "--json", "--d-model", str(lay["D"]), "--heads", str(lay["H"]),
            "--kv-heads", str(lay["G"]), "--head-dim", str(lay["d"]), "--rotary-dim", str(lay["r"]),
            "--rope", lay["layout"], "--seq", str(lay["T"]), "--seed", str(seed),
            "--rotate", cfg["rotate"] or "none", "--kind", cfg["kind"]]
    if cfg["drop"]:
        args += ["--drop", ",".join(cfg["drop"])]
    if cfg["permute"]:
        args.append("--permute-heads")
    if lay["bias"]:
        args.append("--with-bias")
    p = subprocess.run(args, capture_output=True, text=True)
    doc = json.loads(p.stdout)
    lv = doc["levels"]
    g = [lv[k]["guaranteed"] for k in ("score", "head", "residual")]
    h = [lv[k]["holds"] for k in ("score", "head", "residual")]
    want_rc = 1 if any(gg and not hh for gg, hh in zip(g, h)) else 0
    return g, h, p.returncode == want_rc


def main():
    layers = [
        dict(D=32, H=4, G=4, d=8, r=8, layout="half", bias=False, T=12),
        dict(D=48, H=6, G=2, d=12, r=12, layout="interleaved", bias=True, T=10),
        dict(D=40, H=4, G=2, d=16, r=8, layout="half", bias=True, T=9),
    ]
    rotates = ["".join(c for c, bit in zip("qkvo", bits) if bit)
               for bits in itertools.product([0, 1], repeat=4)]
    drops = [[]] + [[a] for a in ASSUMPTIONS] + [["commutes", "v-same"], ["per-head", "shared-qk"]]
    cases = []
    for li, lay in enumerate(layers):
        for rot in rotates:
            for drop in drops:
                cases.append((li, lay, dict(rotate=rot, drop=drop, kind="haar", permute=False)))
        for drop in drops:
            cases.append((li, lay, dict(rotate="qkvo", drop=drop, kind="haar", permute=True)))
        for kind in ("layout-mismatch", "pair-reflect"):
            cases.append((li, lay, dict(rotate="qkvo", drop=["commutes"], kind=kind, permute=False)))
    print(f"1..{len(cases)}")
    failures = 0
    for n, (li, lay, cfg) in enumerate(cases, 1):
        seed = 100 + n
        g_ref, h_ref = reference(lay, cfg, seed)
        g_tool, h_tool, rc_ok = run_tool(lay, cfg, seed)
        name = f"layer {li} rotate {cfg['rotate'] or 'none'} drop {','.join(cfg['drop']) or 'none'}" \
               f" kind {cfg['kind']}{' permute' if cfg['permute'] else ''}"
        if g_ref == g_tool and h_ref == h_tool and rc_ok:
            print(f"ok {n} - {name}")
        else:
            failures += 1
            print(f"not ok {n} - {name}: reference guaranteed {g_ref} holds {h_ref}, "
                  f"ropefold guaranteed {g_tool} holds {h_tool}, exit status ok {rc_ok}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
