#!/usr/bin/python3
"""Helpers of tests/compare_verify.sh: crafted breaks, an independent NumPy
judge of "is B a fold of A", and the agreement of verify's and compare
mode's JSON. Nothing here reads ropefold's output except `agree`, which
only compares ropefold against itself (verify against check --against);
the judge works from SPEC 1 and 4.4 alone.

    compare_verify.py scale DIR OUT TENSOR FACTOR
        copy the safetensors folder DIR to OUT with TENSOR (F32) times FACTOR
    compare_verify.py swap-heads DIR OUT TENSOR HEAD_DIM H1 H2
        ... with the row blocks of heads H1 and H2 of TENSOR swapped
    compare_verify.py judge A B
        print the judge's verdict per layer as JSON (HF safetensors folders
        stored in F32, F16 or BF16, the same RoPE layout, heads in order)
    compare_verify.py agree VERIFY_JSON CHECK_JSON...
        exit 0 when every check --against document (one per layer) reaches
        verify's verdict on its layer, else print what differs and exit 1
    compare_verify.py judged JUDGE_JSON VERIFY_JSON
        exit 0 when verify's verdict per layer is the judge's
"""
import json
import os
import shutil
import struct
import sys

import numpy as np

# ---- safetensors -------------------------------------------------------------


def st_read(path):
    """(header, data offset, bytes) of a safetensors file."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), 8 + n, bytearray(raw)


def st_tensor(hdr, off, raw, name):
    """Tensor name as float64, decoded as its dtype says."""
    t = hdr[name]
    a, b = t["data_offsets"]
    buf = bytes(raw[off + a:off + b])
    dt = t["dtype"]
    if dt == "F32":
        v = np.frombuffer(buf, "<f4").astype(np.float64)
    elif dt == "F64":
        v = np.frombuffer(buf, "<f8").copy()
    elif dt == "F16":
        v = np.frombuffer(buf, "<f2").astype(np.float64)
    elif dt == "BF16":
        v = (np.frombuffer(buf, "<u2").astype(np.uint32) << 16).view("<f4").astype(np.float64)
    else:
        raise SystemExit("judge: %s: dtype %s" % (name, dt))
    return v.reshape(t["shape"])


# unit roundoff of each float dtype (the spacing of 1 halved)
UNIT = {"F64": 2.0 ** -53, "F32": 2.0 ** -24, "F16": 2.0 ** -11, "BF16": 2.0 ** -8}


def craft(argv, how):
    src, out, name = argv[0], argv[1], argv[2]
    if os.path.exists(out):
        shutil.rmtree(out)
    shutil.copytree(src, out)
    for f in os.listdir(out):
        if f.endswith(".json") and f != "config.json":
            os.remove(os.path.join(out, f))   # a copied fold sidecar would not match
    path = os.path.join(out, "model.safetensors")
    hdr, off, raw = st_read(path)
    t = hdr[name]
    assert t["dtype"] == "F32", t
    a, b = t["data_offsets"]
    w = np.frombuffer(bytes(raw[off + a:off + b]), "<f4").reshape(t["shape"]).copy()
    how(w, argv[3:])
    raw[off + a:off + b] = w.astype("<f4").tobytes()
    open(path, "wb").write(bytes(raw))


def scale(w, args):
    w *= float(args[0])


def swap_heads(w, args):
    d, h1, h2 = int(args[0]), int(args[1]), int(args[2])
    blk = w[h1 * d:(h1 + 1) * d].copy()
    w[h1 * d:(h1 + 1) * d] = w[h2 * d:(h2 + 1) * d]
    w[h2 * d:(h2 + 1) * d] = blk


# ---- the judge ---------------------------------------------------------------


def pairs(layout, r):
    """Coordinates of each RoPE pair (SPEC 1)."""
    if layout == "interleaved":
        return [(2 * i, 2 * i + 1) for i in range(r // 2)]
    return [(i, i + r // 2) for i in range(r // 2)]


def procrustes(a, b):
    """The orthogonal R minimising ||R a - b||_F (a, b: d x D)."""
    u, _, vt = np.linalg.svd(b @ a.T)
    return u @ vt


def commutant_defect(R, layout, r):
    """||R - P(R)||_F / ||R||_F with P the projection onto the matrices that
    commute with every Theta_p for distinct frequencies: a complex scalar
    [[a, -b], [b, a]] per pair, anything on the coordinates >= r."""
    P = np.zeros_like(R)
    for i, j in pairs(layout, r):
        a = (R[i, i] + R[j, j]) / 2
        b = (R[j, i] - R[i, j]) / 2
        P[i, i], P[i, j], P[j, i], P[j, j] = a, -b, b, a
    P[r:, r:] = R[r:, r:]
    return np.linalg.norm(R - P) / np.linalg.norm(R)


def rel(x, ref):
    n = np.linalg.norm(ref)
    return np.linalg.norm(x - ref) / n if n > 0 else np.linalg.norm(x)


def judge(a_dir, b_dir):
    cfg = json.load(open(os.path.join(a_dir, "config.json")))
    D = cfg["hidden_size"]
    H = cfg["num_attention_heads"]
    G = cfg.get("num_key_value_heads", H)
    d = cfg.get("head_dim", D // H)
    r = int(d * cfg.get("partial_rotary_factor", 1.0))
    L = cfg["num_hidden_layers"]
    layout = "half"  # HF's rotate_half
    A = st_read(os.path.join(a_dir, "model.safetensors"))
    B = st_read(os.path.join(b_dir, "model.safetensors"))
    out = []
    for li in range(L):
        names = ["model.layers.%d.self_attn.%s_proj.weight" % (li, p) for p in "qkvo"]
        u = max(UNIT[X[0][n]["dtype"]] for X in (A, B) for n in names)
        tol = 3 * u + 1e-12
        wa = [st_tensor(*A, n) for n in names]
        wb = [st_tensor(*B, n) for n in names]
        row = {"layer": li, "break_group": None, "break_level": None, "commuting": []}
        if all(np.array_equal(x, y) for x, y in zip(wa, wb)):
            # bit for bit: nothing to recover (verify decides no group)
            row["within"], row["identical"] = "holds", True
            out.append(row)
            continue
        worst = 0.0
        hpg = H // G
        row["perm"] = []
        for g in range(G):
            # B's kv group g holds A's group ga: the one whose W_k rows a
            # rotation maps onto B's best (kv groups move with their heads)
            kb = wb[1][g * d:(g + 1) * d]
            ga = min(range(G), key=lambda x: rel(procrustes(wa[1][x * d:(x + 1) * d], kb)
                                                 @ wa[1][x * d:(x + 1) * d], kb))
            row["perm"].append(ga)
            ka = wa[1][ga * d:(ga + 1) * d]
            Rk = procrustes(ka, kb)
            comm = commutant_defect(Rk, layout, r) <= 10 * tol
            row["commuting"].append(bool(comm))
            qa = [slice(h * d, (h + 1) * d) for h in range(ga * hpg, (ga + 1) * hpg)]
            qb = [slice(h * d, (h + 1) * d) for h in range(g * hpg, (g + 1) * hpg)]
            eq = [rel(Rk @ ka, kb)] + [rel(Rk @ wa[0][x], wb[0][y]) for x, y in zip(qa, qb)]
            va, vb = wa[2][ga * d:(ga + 1) * d], wb[2][g * d:(g + 1) * d]
            Rv = procrustes(va, vb)
            ev = [rel(Rv @ va, vb)] + [rel(wa[3][:, x] @ Rv.T, wb[3][:, y])
                                       for x, y in zip(qa, qb)]
            if not comm or max(eq) > tol:
                row["break_group"], row["break_level"] = g, "score"
                break
            if max(ev) > tol:
                row["break_group"], row["break_level"] = g, "head"
                break
            worst = max([worst] + eq + ev)
        if row["break_group"] is not None:
            row["within"] = "breaks"
        else:
            row["within"] = "holds" if worst <= 3 * 2.0 ** -53 + 1e-12 else "within dtype rounding"
        out.append(row)
    json.dump(out, sys.stdout)
    print()


# ---- agreement ---------------------------------------------------------------

# what both modes say about a layer (verify_layer_json's keys)
KEYS = ("equivalent", "relation", "within", "rotated", "heads_permuted", "layout_converted",
        "heads_permutation", "quantization")
BREAK_KEYS = ("why", "level", "group", "head", "tensor")


def close(x, y):
    # check --json prints 6 significant digits, verify --json 17
    return abs(x - y) <= 1e-5 * max(abs(x), abs(y), 1e-300)


def layer_diffs(v, c):
    """What differs between verify's layer v and compare mode's relation c."""
    bad = [k for k in KEYS if v.get(k) != c.get(k)]
    bad += ["tol"] if not close(v["tol"], c["tol"]) else []
    bad += ["part_tol." + p for p in "qkvo" if not close(v["part_tol"][p], c["part_tol"][p])]
    bad += ["max_rel_err"] if not close(v["max_rel_err"], c["max_rel_err"]) else []
    gv = [(x["group"], x["commuting"]) for x in v["rotations"]]
    gc = [(x["group"], x["commuting"]) for x in c["rotations"]]
    bad += ["rotations (per kv group)"] if gv != gc else []
    bv, bc = v.get("break"), c.get("break")
    if (bv is None) != (bc is None):
        bad.append("break")
    elif bv is not None:
        bad += ["break." + k for k in BREAK_KEYS if bv.get(k) != bc.get(k)]
    return bad


def agree(vpath, cpaths):
    doc = json.load(open(vpath))
    framed = bool(doc["residual"] and doc["residual"].get("rotated"))
    by_layer = {x["layer"]: x for x in doc["layers"]}
    fails = []
    first = None
    for p in cpaths:
        c = json.load(open(p))["relation"]
        li = c["layer"]
        if c.get("residual_frame") != framed:
            fails.append("layer %d: residual frame %s, verify's %s" % (
                li, c.get("residual_frame"), framed))
        if first is None and not c["equivalent"]:
            first = li
        v = by_layer.get(li)
        if v is None:
            fails.append("layer %d: verify has no such layer" % li)
            continue
        diff = layer_diffs(v, c)
        if diff:
            fails.append("layer %d: %s differ (verify %s, compare %s)" % (
                li, ", ".join(diff), v.get("within"), c.get("within")))
    fb = doc["first_break"]
    if (fb["layer"] if fb else None) != first:
        fails.append("first break: verify %s, compare %s" % (fb and fb["layer"], first))
    if len(cpaths) != len(by_layer):
        fails.append("%d layers compared, verify decided %d" % (len(cpaths), len(by_layer)))
    for f in fails:
        print(f)
    sys.exit(1 if fails else 0)


def judged(jpath, vpath):
    ref = json.load(open(jpath))
    doc = json.load(open(vpath))
    fails = []
    for want, got in zip(ref, doc["layers"]):
        li = want["layer"]
        brk = got.get("break") or {}
        have = {"within": got["within"], "break_group": brk.get("group"),
                "break_level": brk.get("level")}
        for k in have:
            if have[k] != want[k]:
                fails.append("layer %d: %s %s, NumPy %s" % (li, k, have[k], want[k]))
        # per kv group of B up to the first break (verify stops there): the
        # group of A it holds, and whether that group's R_k commutes (verify
        # lists it by A's group)
        if want.get("identical"):
            if got["relation"] != "identical":
                fails.append("layer %d: %s, NumPy: identical" % (li, got["relation"]))
            continue
        n = want["break_group"] if want["break_group"] is not None else len(want["perm"])
        perm = got["heads_permutation"][:n]
        comm = [got["rotations"][ga]["commuting"] for ga in perm]
        if perm != want["perm"][:n] or comm != want["commuting"][:n]:
            fails.append("layer %d: kv groups %s commuting %s, NumPy %s %s" % (
                li, perm, comm, want["perm"][:n], want["commuting"][:n]))
    if len(ref) != len(doc["layers"]):
        fails.append("%d layers judged, verify decided %d" % (len(ref), len(doc["layers"])))
    for f in fails:
        print(f)
    sys.exit(1 if fails else 0)


def main():
    cmd, argv = sys.argv[1], sys.argv[2:]
    if cmd == "scale":
        craft(argv, scale)
    elif cmd == "swap-heads":
        craft(argv, swap_heads)
    elif cmd == "judge":
        judge(argv[0], argv[1])
    elif cmd == "agree":
        agree(argv[0], argv[1:])
    elif cmd == "judged":
        judged(argv[0], argv[1])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
