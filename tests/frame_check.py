#!/usr/bin/env python3
"""check --r1 and --r3 (core/frame.h) against NumPy, written from the
definitions: RMSNorm(x) = w * x / sqrt(mean(x^2) + eps), RoPE (pair i of
rotary dim r turned by p * theta^(-2i/r); half-split pairs (i, i + r/2),
interleaved (2i, 2i + 1)), causal softmax attention with GQA, and the two
rotations as QuaRot states them: R1 x on the residual stream with readers
W diag(w) R1^T and the norm set to 1 (fused) or readers W R1^T with the
norm kept (unfused), writer R1 W_o; R3 a Hadamard on q and k after RoPE
(online) or folded into W_q, W_k before it.

Only the random draws come from ropefold (tests/frame_dump: the layer and
input check evaluates, w, R1 and each kv group's Hadamard); each is first
held to what it must be (R1 orthogonal with entries 0 or +-1/sqrt(p), the
Sylvester-times-identity pattern). Then every number of check's JSON
"frame" object is recomputed here and compared, and the verdicts: fused
holds, unfused breaks; online holds, folded breaks off the diagonal.
Prints TAP."""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROPEFOLD = os.environ.get("ROPEFOLD", "./ropefold")
BUILDDIR = os.environ.get("BUILDDIR", ".")
SRCDIR = os.environ.get("SRCDIR", ".")
DUMP = os.path.join(BUILDDIR, "tests", "frame_dump")
MODELS = os.path.join(SRCDIR, "..", "shared", "models")

results = []


def ok(cond, what, detail=""):
    results.append(bool(cond))
    print("%s %d - %s" % ("ok" if cond else "not ok", len(results), what))
    if not cond and detail:
        for line in str(detail).splitlines()[:20]:
            print("# " + line)


def skip(what, why):
    results.append(True)
    print("ok %d - %s # SKIP %s" % (len(results), what, why))


# ---- the definitions ---------------------------------------------------------

def rms_norm(x, w, eps):
    return w * x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)


def pairs(layout, r):
    if layout == "half":
        return [(i, i + r // 2) for i in range(r // 2)]
    return [(2 * i, 2 * i + 1) for i in range(r // 2)]


def rope(v, lay):
    """v: T x heads x d, row t at position t."""
    r, out = lay["rotary_dim"], v.copy()
    T = v.shape[0]
    for i, (a, b) in enumerate(pairs(lay["layout"], r)):
        ang = np.arange(T)[:, None] * lay["theta"] ** (-2.0 * i / r)
        c, s = np.cos(ang), np.sin(ang)
        out[:, :, a] = v[:, :, a] * c - v[:, :, b] * s
        out[:, :, b] = v[:, :, a] * s + v[:, :, b] * c
    return out


def theta_matrix(lay, p):
    d, r = lay["d"], lay["rotary_dim"]
    M = np.eye(d)
    for i, (a, b) in enumerate(pairs(lay["layout"], r)):
        ang = p * lay["theta"] ** (-2.0 * i / r)
        M[a, a], M[a, b], M[b, a], M[b, b] = np.cos(ang), -np.sin(ang), np.sin(ang), np.cos(ang)
    return M


def qk(L, x):
    """Post-RoPE q (T x H x d) and k (T x G x d)."""
    T, H, G, d = x.shape[0], L["H"], L["G"], L["d"]
    q = x @ L["wq"].T + (L["bq"] if L["bq"] is not None else 0)
    k = x @ L["wk"].T + (L["bk"] if L["bk"] is not None else 0)
    return rope(q.reshape(T, H, d), L), rope(k.reshape(T, G, d), L)


def attention(L, x):
    """The attention update concat_h(softmax(q k^T) v) W_o^T + b_o of x."""
    T, H, G, d = x.shape[0], L["H"], L["G"], L["d"]
    q, k = qk(L, x)
    v = (x @ L["wv"].T + (L["bv"] if L["bv"] is not None else 0)).reshape(T, G, d)
    C = np.zeros((T, H, d))
    mask = np.tril(np.ones((T, T), dtype=bool))
    for h in range(H):
        g = h // (H // G)
        s = np.where(mask, L["score_scale"] * q[:, h] @ k[:, g].T, -np.inf)
        p = np.exp(s - s.max(axis=1, keepdims=True))
        C[:, h] = (p / p.sum(axis=1, keepdims=True)) @ v[:, g]
    return C.reshape(T, H * d) @ L["wo"].T + (L["bo"] if L["bo"] is not None else 0)


def block(L, x, w):
    """out = x + Attn(RMSNorm_w(x)), and the update alone."""
    u = attention(L, rms_norm(x, w, L["norm_eps"]))
    return x + u, u


# ---- the two rotations --------------------------------------------------------

def r1_numbers(L, fused):
    R, w, x = L["R1"], L["w"], L["x"]
    out, u = block(L, x, w)
    B = dict(L)
    fw = np.diag(w) if fused else np.eye(L["D"])
    for name in ("wq", "wk", "wv"):
        B[name] = L[name] @ fw @ R.T
    B["wo"] = R @ L["wo"]
    B["bo"] = R @ L["bo"] if L["bo"] is not None else None
    outr, _ = block(B, x @ R.T, np.ones(L["D"]) if fused else w)
    err = np.abs(outr @ R - out)
    comm = np.linalg.norm(np.diag(w) @ R - R @ np.diag(w))
    return err.max() / np.abs(u).max(), comm


def r3_numbers(L, folded):
    T, H, G, d = L["T"], L["H"], L["G"], L["d"]
    Hk = L["Hk"]
    q0, k0 = qk(L, L["x"])
    if folded:
        F = dict(L)
        wq, wk = L["wq"].reshape(H, d, -1), L["wk"].reshape(G, d, -1)
        F["wq"] = np.concatenate([Hk[h // (H // G)] @ wq[h] for h in range(H)])
        F["wk"] = np.concatenate([Hk[g] @ wk[g] for g in range(G)])
        if L["bq"] is not None:
            F["bq"] = np.concatenate([Hk[h // (H // G)] @ L["bq"].reshape(H, d)[h]
                                      for h in range(H)])
            F["bk"] = np.concatenate([Hk[g] @ L["bk"].reshape(G, d)[g] for g in range(G)])
        q1, k1 = qk(F, L["x"])
    else:
        q1 = np.stack([q0[:, h] @ Hk[h // (H // G)].T for h in range(H)], axis=1)
        k1 = np.stack([k0[:, g] @ Hk[g].T for g in range(G)], axis=1)
    err, ref = np.zeros(T), 0.0
    for h in range(H):
        g = h // (H // G)
        s0 = L["score_scale"] * q0[:, h] @ k0[:, g].T
        s1 = L["score_scale"] * q1[:, h] @ k1[:, g].T
        for m in range(T):
            e = np.abs(s1[m, :m + 1] - s0[m, :m + 1])[::-1]   # offsets 0..m
            err[:m + 1] = np.maximum(err[:m + 1], e)
            ref = max(ref, np.abs(s0[m, :m + 1]).max())
    th = theta_matrix(L, 1.0)
    comm = max(np.linalg.norm(R @ th - th @ R) for R in Hk)
    return err / ref, comm


def hadamard_shape_ok(M):
    """Orthogonal, and (Sylvester H_p (x) I_m) times column signs: entry
    (i m + k, j m + l) is +-1/sqrt(p) when k = l, else 0."""
    n = M.shape[0]
    p = n & -n
    m = n // p
    idx = np.arange(n)
    pattern = (idx[:, None] % m) == (idx[None, :] % m)
    return (np.abs(M @ M.T - np.eye(n)).max() < 1e-12
            and np.allclose(np.abs(M[pattern]), 1 / np.sqrt(p), atol=1e-15)
            and np.all(M[~pattern] == 0))


# ---- one case -----------------------------------------------------------------

def check_json(args):
    """check --json (its numbers to 6 digits: JSON_REAL_PRECISION(6))."""
    p = subprocess.run([ROPEFOLD, "check", "--json"] + args, capture_output=True, text=True)
    if p.returncode not in (0, 1):
        return None, p
    return json.loads(p.stdout), p


def close(a, b, rel, floor=1e-13):
    return abs(a - b) <= floor + rel * abs(b)


def case(name, args):
    p = subprocess.run([DUMP] + args, capture_output=True, text=True)
    if p.returncode:
        ok(False, "%s: frame_dump" % name, p.stderr)
        return
    L = json.loads(p.stdout)
    D, H, G, d, T = L["D"], L["H"], L["G"], L["d"], L["T"]
    if L["qk_norm"] or L["sliding_window"] or L["softcap"] or L["scaling"] or L["norm_layer"]:
        skip("%s" % name, "a QK-norm, window, soft-cap, scaling or LayerNorm this reference "
             "does not write")
        return
    for key, shape in (("wq", (H * d, D)), ("wk", (G * d, D)), ("wv", (G * d, D)),
                       ("wo", (D, H * d)), ("x", (T, D)), ("R1", (D, D)), ("Hk", (G, d, d))):
        L[key] = np.array(L[key]).reshape(shape)
    for key in ("bq", "bk", "bv", "bo", "w"):
        L[key] = np.array(L[key]) if L[key] is not None else None
    ok(hadamard_shape_ok(L["R1"]), "%s: R1 is a randomised Hadamard of width %d%s"
       % (name, D, "" if D & (D - 1) == 0 else " (Kronecker with the identity)"))
    ok(all(hadamard_shape_ok(M) for M in L["Hk"]), "%s: each kv group's R3 is a randomised "
       "Hadamard of the head dim %d" % (name, d))
    if L["w_drawn"]:
        ok(np.all((L["w"] >= 0.5) & (L["w"] <= 1.5)), "%s: the drawn norm weight lies in "
           "[0.5, 1.5]" % name)

    for r1, r3 in (("fused", "online"), ("unfused", "folded")):
        doc, p = check_json(args + ["--r1", r1, "--r3", r3])
        if doc is None:
            ok(False, "%s: check --r1 %s --r3 %s" % (name, r1, r3), p.stderr)
            continue
        fr, tol = doc["frame"], doc["frame"]["tol"]
        ok(doc["fold"]["r1"] == r1 and doc["fold"]["r3"] == r3 and fr["r1"]["mode"] == r1
           and fr["r3"]["mode"] == r3, "%s: --json names --r1 %s, --r3 %s" % (name, r1, r3))
        # R1
        rel, comm = r1_numbers(L, r1 == "fused")
        got = fr["r1"]
        if r1 == "fused":
            ok(rel < 1e-12 and got["max_rel_err"] < 1e-12 and got["holds"] and got["guaranteed"],
               "%s: R1 fused holds to rounding (NumPy %.2g, ropefold %.2g)"
               % (name, rel, got["max_rel_err"]))
        else:
            ok(rel > 1e-3 and close(got["max_rel_err"], rel, 1e-5) and not got["holds"]
               and not got["guaranteed"],
               "%s: R1 unfused breaks by the same relative error (NumPy %.6g, ropefold %.6g)"
               % (name, rel, got["max_rel_err"]))
        ok(close(got["commutator"], comm, 1e-5), "%s: ||diag(w) R1 - R1 diag(w)|| (NumPy %.6g, "
           "ropefold %.6g)" % (name, comm, got["commutator"]))
        # R3
        by, comm = r3_numbers(L, r3 == "folded")
        got = fr["r3"]
        gb = np.array(got["by_offset"])
        if r3 == "online":
            ok(by.max() < 1e-12 and got["max_rel_err"] < 1e-12 and got["holds"]
               and got["break_offset"] is None,
               "%s: R3 online holds to rounding (NumPy %.2g, ropefold %.2g)"
               % (name, by.max(), got["max_rel_err"]))
        else:
            first = next((p for p in range(1, T) if by[p] > tol), None)
            ok(by[0] < 1e-12 and by.max() > 1e-3 and not got["holds"],
               "%s: R3 folded is exact at offset 0 and breaks off it (NumPy: %.2g at 0, max %.3g)"
               % (name, by[0], by.max()))
            ok(np.all(np.abs(gb - by) <= 1e-13 + 1e-5 * by) and got["break_offset"] == first,
               "%s: R3 folded's error by offset and first break (offset %s) as NumPy's"
               % (name, first), "ropefold %s\nnumpy    %s" % (gb[:6], by[:6]))
        ok(close(got["commutator"], comm, 1e-5), "%s: ||H Theta_1 - Theta_1 H|| (NumPy %.6g, "
           "ropefold %.6g)" % (name, comm, got["commutator"]))
        why = {"fused": "R1 fused holds", "unfused": "fuse w into the readers first",
               "online": "R3 online holds",
               "folded": "R3 must stay online: a Hadamard does not commute with RoPE"}
        ok(why[r1] in fr["explanation"] and why[r3] in fr["explanation"],
           "%s: the explanation says why (--r1 %s, --r3 %s)" % (name, r1, r3))


def refused(args, flag, why=""):
    p = subprocess.run([ROPEFOLD] + args, capture_output=True, text=True)
    lines = p.stderr.strip().splitlines()
    ok(p.returncode == 2 and len(lines) == 1 and (": %s: " % flag) in lines[0] and not p.stdout
       and why in lines[0],
       "%s refused with exit 2 and one line naming %s" % (" ".join(args), flag),
       "exit %d: %s" % (p.returncode, p.stderr))


def main():
    dm = os.path.join(SRCDIR, "data", "default-model")
    case("random layer", [])
    case("random D=48 (Kronecker), GQA, biases, interleaved, partial rotary",
         ["--d-model", "48", "--heads", "4", "--kv-heads", "2", "--head-dim", "16",
          "--rotary-dim", "12", "--rope", "interleaved", "--with-bias", "--seed", "5",
          "--seq", "20"])
    case("default model", ["--model", dm])
    hf = os.path.join(MODELS, "tiny_llama_hf")
    if os.path.isdir(hf):
        case("tiny_llama_hf layer 1, embedded tokens",
             ["--model", hf, "--layer", "1", "--tokens", "1,5,9,17,33,2,7,11,4,3"])
    else:
        skip("tiny_llama_hf", "../shared/models is missing")

    # the families R1 does not apply to, as fold --residual refuses them;
    # R3 runs on them
    fix = os.path.join(SRCDIR, "tests", "family_fixtures.py")
    with tempfile.TemporaryDirectory() as tmp:
        for fam, why in (("gpt-neox", "LayerNorm"), ("olmo2", "OLMo2 normalises each sublayer"),
                         ("gemma2", "sandwich norms")):
            out = os.path.join(tmp, fam)
            subprocess.run([sys.executable, fix, "--family", fam, "--out", out], check=True,
                           capture_output=True)
            refused(["check", "--model", out, "--r1", "fused"], "--r1", why)
            p = subprocess.run([ROPEFOLD, "check", "--model", out, "--r3", "folded", "--json"],
                               capture_output=True, text=True)
            ok(p.returncode == 0 and json.loads(p.stdout)["frame"]["r3"]["holds"] is False,
               "%s: --r3 folded runs there and breaks" % fam, p.stderr)

    refused(["check", "--r1", "half"], "--r1")
    refused(["check", "--r3", "fused"], "--r3")
    refused(["check", "--r1", "fused", "--r1", "unfused"], "--r1")
    refused(["check", "--kv-lora-rank", "16", "--r3", "online"], "--r3")
    refused(["check", "--model", dm, "--against", dm, "--r1", "fused"], "--r1")
    refused(["fold", "--model", dm, "--out", "/nonexistent/x", "--r3", "folded"], "--r3")
    p = subprocess.run([ROPEFOLD, "check", "--r1", "unfused", "--r3", "folded"],
                       capture_output=True, text=True)
    ok(p.returncode == 0 and "\nr1      unfused: breaks (not guar.)" in p.stdout
       and "\nr3      folded: breaks (not guar.)" in p.stdout
       and "R3 must stay online: a Hadamard does not commute with RoPE" in p.stdout,
       "check's text: an r1 and an r3 line, expected breaks exit 0, the reason in words",
       p.stdout[-1500:])
    doc, _ = check_json([])
    ok(doc is not None and doc["frame"]["r1"] is None and doc["frame"]["r3"] is None
       and doc["fold"]["r1"] == "none", "without the flags: frame r1, r3 null, fold r1 none")

    print("1..%d" % len(results))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
