#!/usr/bin/python3
"""The quantization error bound of ggml's block quantizations, in NumPy,
written from ggml's definitions (the block structs of ggml-common.h, the
dequantize_row_* loops and the quantize_row_*_ref quantizers of
ggml-quants.c) and never from ropefold's C code; and the fixtures that need
it. For Q4_0, Q8_0, Q4_K and Q6_K (the types of a Q4_K_M mixture and of
the requantizations the tests make).

A stored value v = s l (+ o) of a sub-block with scale s and level l stands
for the inputs that round to it: round-to-nearest on the sub-block's grid
errs by at most half a step |s|; at an end of the grid (the lowest or the
highest code, or |l| at the quantizer's largest level nmax: 8 for Q4_0,
127 for Q8_0, 15 for Q4_K, 32 for Q6_K) the quantizers clamp and the error
can reach a whole step; Q4_0 and Q8_0 round on the grid of their f32 scale
and store it as f16, which moves the value by (|l| + 1) u more, u half an
f16 ulp of d (2^-25 where d is below 2^-14, subnormal or 0); a K-quant
sub-block whose scale is 0 gets the width its rounding cell is estimated
at, (nmax + 1) U (+ (mn + 1) Umin for Q4_K's min mn), U = |d| + u and Umin
= |dmin| + its u. Per tensor: frob = sqrt(sum h^2), max = max h, and the
relative bound rel = max(frob / ||w||_F, max / max|w|), in the measure
ropefold verify compares tensors by.

    reference_quant_bound.py bound FILE.gguf
        one JSON line per quantized tensor: name, dtype, frob, max, rel,
        rel_frob.
    reference_quant_bound.py near Q.gguf OUT.gguf [SEED]
        OUT: Q.gguf with every quantized tensor replaced by F16 weights
        that Q.gguf's blocks are a round-to-nearest quantization of (each
        value moved by up to 0.45 of its sub-block's step, inwards at the
        grid's ends): an F16 model and its quantization.
    reference_quant_bound.py check-verify A B VERIFY.json
        TAP: each part's tolerance in `ropefold verify --json A B` is the
        float tolerance plus the bounds of A's and B's tensors (W_q's plus
        W_k's, since W_q is explained by the rotation recovered from W_k;
        W_o's plus W_v's).
    reference_quant_bound.py check-added F16FOLD QFOLD FOLD.json
        TAP: the error `fold --dtype Q --json` reports quantizing added
        (quantization.added_rel_err) against QFOLD's values minus F16FOLD's
        (the same fold stored as F16), and within QFOLD's own bound.
    reference_quant_bound.py group-break Q.gguf OUT.gguf GROUP [SEED]
        OUT: Q.gguf (kind scale-split) with every tensor stored as F32 at
        its dequantized values, and blk.0.attn_k.weight's kv group GROUP
        rows moved by a random perturbation of relative Frobenius size
        eps, the geometric mean of group 1's own bound and the tensor's
        (both relative, as above, group 1's over its rows alone); prints
        {"eps", "group_bound": [g0, g1], "tensor_bound"}.
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_quant as rq  # noqa: E402
import gguf_quant_fixtures as gf  # noqa: E402

F32 = np.float32
TYPES = ("Q4_0", "Q8_0", "Q4_K", "Q6_K")


def _f16(b, at):
    u = b[:, at].astype(np.uint16) | (b[:, at + 1].astype(np.uint16) << 8)
    return u.view(np.float16).astype(F32).reshape(-1, 1)


def _half_ulp(d):
    """Half an ulp of the f16 |d| (2^-25 below 2^-14)."""
    a = np.abs(d.astype(np.float64))
    e = np.floor(np.log2(np.where(a > 0, a, 1.0)))
    return np.where(a < 2.0 ** -14, 2.0 ** -25, 2.0 ** (e - 11))


def fields(name, raw):
    """Per stored value (rows: blocks): the sub-block's scale s (float32 as
    ggml forms it), the level l, the code's place (-1 lowest, 1 highest,
    0 inside), the bound's extra term for an f32 scale stored as f16, and
    the bound of a sub-block whose scale is 0."""
    nb = rq.TYPES[name][2]
    b = np.frombuffer(raw, np.uint8).reshape(-1, nb)
    if name == "Q8_0":
        d = _f16(b, 0)
        lv = b[:, 2:34].view(np.int8).astype(np.int32)
        s = np.broadcast_to(d, lv.shape)
        end = np.where(lv <= -127, -1, np.where(lv >= 127, 1, 0))
        extra = (np.abs(lv) + 1) * _half_ulp(d)
        return s, lv, end, extra, None
    if name == "Q4_0":
        d = _f16(b, 0)
        c = np.concatenate([b[:, 2:18] & 15, b[:, 2:18] >> 4], axis=1).astype(np.int32)
        lv = c - 8
        s = np.broadcast_to(d, lv.shape)
        end = np.where(c == 0, -1, np.where(c == 15, 1, 0))
        extra = (np.abs(lv) + 1) * _half_ulp(d)
        return s, lv, end, extra, None
    if name == "Q4_K":
        d, dmin, scl = _f16(b, 0), _f16(b, 2), b[:, 4:16]
        ql = b[:, 16:144].astype(np.int32)
        s, lv, zero = [], [], []
        u = np.abs(d.astype(np.float64)) + _half_ulp(d)
        um = np.abs(dmin.astype(np.float64)) + _half_ulp(dmin)
        for j in range(4):
            q = ql[:, 32 * j:32 * j + 32]
            for half, codes in ((0, q & 15), (1, q >> 4)):
                sc, mn = rq._scale_min_k4(2 * j + half, scl)
                s.append(np.broadcast_to(d * sc.astype(F32), codes.shape))
                lv.append(codes)
                zero.append(np.broadcast_to(16 * u + (mn + 1) * um, codes.shape))
        s, lv = np.concatenate(s, axis=1), np.concatenate(lv, axis=1)
        end = np.where(lv == 0, -1, np.where(lv == 15, 1, 0))
        return s, lv, end, np.zeros(lv.shape), np.concatenate(zero, axis=1)
    if name == "Q6_K":
        d = _f16(b, 208)
        sc = b[:, 192:208].view(np.int8).astype(np.int32)
        s = np.zeros((b.shape[0], 256), dtype=F32)
        lv = np.zeros((b.shape[0], 256), dtype=np.int32)
        for n in (0, 1):
            ql = b[:, 64 * n:64 * n + 64].astype(np.int32)
            qh = b[:, 128 + 32 * n:128 + 32 * n + 32].astype(np.int32)
            for l in range(32):
                isx = l // 16
                q = (((ql[:, l] & 0xF) | (((qh[:, l] >> 0) & 3) << 4)),
                     ((ql[:, l + 32] & 0xF) | (((qh[:, l] >> 2) & 3) << 4)),
                     ((ql[:, l] >> 4) | (((qh[:, l] >> 4) & 3) << 4)),
                     ((ql[:, l + 32] >> 4) | (((qh[:, l] >> 6) & 3) << 4)))
                for k in range(4):
                    e = 128 * n + l + 32 * k
                    lv[:, e] = q[k] - 32
                    s[:, e] = d[:, 0] * sc[:, 8 * n + isx + 2 * k].astype(F32)
        end = np.where(lv <= -32, -1, np.where(lv >= 31, 1, 0))
        zero = 33 * (np.abs(d.astype(np.float64)) + _half_ulp(d))
        return s, lv, end, np.zeros(lv.shape), np.broadcast_to(zero, lv.shape)
    raise KeyError(name)


def element_bounds(name, raw):
    """The bound h of every stored value (flat, float64)."""
    s, lv, end, extra, zero = fields(name, raw)
    step = np.abs(s.astype(np.float64))
    h = np.where(end != 0, step, step / 2) + extra
    if zero is not None:
        h = np.where(s == 0, zero, h)
    return h.reshape(-1)


def tensor_bound(name, raw):
    h = element_bounds(name, raw)
    w = rq.dequantize(name, raw).astype(np.float64)
    frob, mx = float(np.sqrt(np.sum(h * h))), float(h.max())
    rel_frob = frob / float(np.linalg.norm(w))
    return {"frob": frob, "max": mx, "rel_frob": rel_frob,
            "rel": max(rel_frob, mx / float(np.abs(w).max()))}


def bound(path):
    for name, (dt, _, raw) in sorted(rq.read_gguf(path).items()):
        if dt in TYPES:
            r = tensor_bound(dt, raw)
            r.update(name=name, dtype=dt)
            print(json.dumps(r))
    return 0


def near(path, out, seed):
    """An F16 model that path's blocks quantize (module docstring)."""
    rng = np.random.default_rng(seed)
    src = rq.read_gguf(path)
    ts, data = [], {}
    for name, (dt, shape, raw) in src.items():
        if dt not in TYPES:
            ts.append((name, dt, shape))
            data[name] = raw
            continue
        s, _, end, _, _ = fields(dt, raw)
        u = rng.uniform(0, 0.45, s.shape)
        # inside: either way; at the low end upwards in level, at the high end downwards
        sign = np.where(end == 0, rng.choice([-1.0, 1.0], s.shape), -end.astype(np.float64))
        w = rq.dequantize(dt, raw).astype(np.float64).reshape(s.shape)
        w = w + sign * u * s.astype(np.float64)
        ts.append((name, "F16", shape))
        data[name] = w.reshape(-1).astype("<f2").tobytes()
    order = [n for n, _, _ in gf.tensors("q4_k_m")]
    ts.sort(key=lambda t: order.index(t[0]) if t[0] in order else len(order))
    gf.gguf(out, ts, data)
    return 0


def _tap(lines):
    print("1..%d" % len(lines))
    for i, (okk, what) in enumerate(lines, 1):
        print("%s %d - %s" % ("ok" if okk else "not ok", i, what))
    return 0 if all(o for o, _ in lines) else 1


def _part_tensors(path):
    """{layer: {part: (dtype, raw)}} of a GGUF's attention tensors."""
    role = {"attn_q": "q", "attn_k": "k", "attn_v": "v", "attn_output": "o"}
    out = {}
    for name, (dt, _, raw) in rq.read_gguf(path).items():
        p = name.split(".")
        if len(p) == 4 and p[0] == "blk" and p[2] in role:
            out.setdefault(int(p[1]), {})[role[p[2]]] = (dt, raw)
    return out


def check_verify(a, b, verify_json):
    doc = json.load(open(verify_json))
    ta, tb = _part_tensors(a), _part_tensors(b)
    lines = []
    for layer in doc["layers"]:
        i = layer["layer"]
        for part, got in sorted(layer["part_tol"].items()):
            want = layer["tol"]
            names = []
            # W_q is explained by the rotation W_k gives, W_o by W_v's
            parts = {"q": "qk", "o": "ov"}.get(part, part)
            for t in [x for p in parts for x in (ta[i][p], tb[i][p])]:
                if t[0] in TYPES:
                    want += tensor_bound(t[0], t[1])["rel"]
                    names.append(t[0])
            okk = abs(got - want) <= 1e-9 * want
            lines.append((okk, "layer %d W_%s: tolerance %.6g = %.3g + the bounds of %s "
                          "(NumPy %.6g)" % (i, part, got, layer["tol"],
                                            "/".join(names) or "nothing", want)))
    return _tap(lines)


def check_added(f16fold, qfold, fold_json):
    doc = json.load(open(fold_json))
    got = doc["quantization"]["added_rel_err"]
    tf, tq = _part_tensors(f16fold), _part_tensors(qfold)
    worst, own = 0.0, 0.0
    for i in tq:
        for part, (dt, raw) in tq[i].items():
            x = rq.dequantize(dt, raw).astype(np.float64)
            y = rq.dequantize(*tf[i][part]).astype(np.float64)
            worst = max(worst, float(np.linalg.norm(x - y) / np.linalg.norm(y)))
            own = max(own, tensor_bound(dt, raw)["rel_frob"])
    # the F16 fold is the rotated weights within f16 rounding (2^-11 relative)
    lines = [(abs(got - worst) <= 2.0 ** -10 + 1e-3 * worst,
              "added relative error %.6g, NumPy %.6g from the two folds" % (got, worst)),
             (got <= own, "added error %.4g within the quantization's own bound %.4g"
              % (got, own))]
    return _tap(lines)


def group_break(path, out, group, seed):
    rng = np.random.default_rng(seed)
    src = rq.read_gguf(path)
    name = "blk.0.attn_k.weight"
    dt, shape, raw = src[name]
    w = rq.dequantize(dt, raw).astype(np.float64).reshape(shape)
    h = element_bounds(dt, raw).reshape(shape)
    rows = shape[0] // gf.G

    def rel(hh, ww):
        return max(float(np.sqrt(np.sum(hh * hh)) / np.linalg.norm(ww)),
                   float(hh.max() / np.abs(ww).max()))
    gb = [rel(h[g * rows:(g + 1) * rows], w[g * rows:(g + 1) * rows]) for g in range(gf.G)]
    tb = rel(h, w)
    eps = float(np.sqrt(gb[1] * tb))
    blk = w[group * rows:(group + 1) * rows]
    p = rng.standard_normal(blk.shape)
    w[group * rows:(group + 1) * rows] = blk + p * (eps * np.linalg.norm(blk) / np.linalg.norm(p))
    ts, data = [], {}
    for n, (d, sh, r) in src.items():
        v = w if n == name else rq.dequantize(d, r).astype(np.float64)
        ts.append((n, "F32", sh))
        data[n] = np.asarray(v, "<f4").reshape(-1).tobytes()
    gf.gguf(out, ts, data)
    print(json.dumps({"eps": eps, "group_bound": gb, "tensor_bound": tb}))
    return 0


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) == 2 and a[0] == "bound":
        sys.exit(bound(a[1]))
    if len(a) in (3, 4) and a[0] == "near":
        sys.exit(near(a[1], a[2], int(a[3]) if len(a) == 4 else 1))
    if len(a) == 4 and a[0] == "check-verify":
        sys.exit(check_verify(a[1], a[2], a[3]))
    if len(a) in (4, 5) and a[0] == "group-break":
        sys.exit(group_break(a[1], a[2], int(a[3]), int(a[4]) if len(a) == 5 else 1))
    if len(a) == 4 and a[0] == "check-added":
        sys.exit(check_added(a[1], a[2], a[3]))
    sys.stderr.write(__doc__)
    sys.exit(2)
