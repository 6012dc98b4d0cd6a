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
    compare_verify.py rope-turn DIR OUT LAYER ANGLE
        copy the DeepSeek MLA folder DIR (F32) to OUT with layer LAYER's
        rope part (k_pe's rows of kv_a_proj_with_mqa, every head's q_pe
        rows) turned by one rotation of ANGLE radians in the plane of its
        coordinates 0 and 2: the same on q and k, so that without RoPE the
        scores would not change, but it mixes frequency pairs 0 and 1
        (interleaved), so it does not commute with RoPE
    compare_verify.py turn-commutator ANGLE ROPE_DIM THETA
        print ||R Theta_1 - Theta_1 R||_F of rope-turn's rotation R with
        RoPE's one-position rotation Theta_1 (interleaved pairs, frequency
        THETA^(-2i/ROPE_DIM)): the commutator norm SPEC 1 says measures how
        far R is from commuting
    compare_verify.py judge A B [HEAD_DIM]
        print the judge's verdict per layer as JSON: of two HF safetensors
        folders stored in F32, F16 or BF16, or (HEAD_DIM given) two llama
        GGUF files, floats or Q4_0/Q8_0/Q4_K/Q6_K blocks
    compare_verify.py agree [--levels] VERIFY_JSON CHECK_JSON...
        exit 0 when every check --against document (one per layer) reaches
        verify's verdict on its layer, else print what differs and exit 1;
        --levels: their three levels too (verify's input is check's
        default one: seed 1, 32 random tokens)
    compare_verify.py judged JUDGE_JSON VERIFY_JSON
        exit 0 when verify's verdict per layer is the judge's
"""
import json
import os
import shutil
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

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


def turn_matrix(angle, dr):
    """rope-turn's rotation: ANGLE radians in the plane of coordinates 0, 2."""
    R = np.eye(dr)
    c, s_ = np.cos(angle), np.sin(angle)
    R[0, 0], R[0, 2], R[2, 0], R[2, 2] = c, -s_, s_, c
    return R


def turn_commutator(argv):
    angle, dr, theta = float(argv[0]), int(argv[1]), float(argv[2])
    R = turn_matrix(angle, dr)
    th = np.zeros((dr, dr))
    for i in range(dr // 2):
        w = theta ** (-2.0 * i / dr)
        th[2 * i:2 * i + 2, 2 * i:2 * i + 2] = [[np.cos(w), -np.sin(w)], [np.sin(w), np.cos(w)]]
    print("%.9g" % np.linalg.norm(R @ th - th @ R))


def rope_turn(argv):
    src, out, layer, angle = argv[0], argv[1], int(argv[2]), float(argv[3])
    if os.path.exists(out):
        shutil.rmtree(out)
    shutil.copytree(src, out)
    for f in os.listdir(out):
        if f.endswith(".json") and f != "config.json":
            os.remove(os.path.join(out, f))
    cfg = json.load(open(os.path.join(out, "config.json")))
    H, dn, dr = cfg["num_attention_heads"], cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"]
    lkv = cfg["kv_lora_rank"]
    assert dr >= 4, "rope-turn: needs two frequency pairs"
    R = turn_matrix(angle, dr)
    path = os.path.join(out, "model.safetensors")
    hdr, off, raw = st_read(path)
    pre = "model.layers.%d.self_attn." % layer
    q = pre + ("q_b_proj.weight" if cfg.get("q_lora_rank") else "q_proj.weight")

    def edit(name, turn):
        t = hdr[name]
        assert t["dtype"] == "F32", t
        a, b = t["data_offsets"]
        w = np.frombuffer(bytes(raw[off + a:off + b]), "<f4").reshape(t["shape"])
        w = w.astype(np.float64)
        turn(w)
        raw[off + a:off + b] = w.astype("<f4").tobytes()

    def kpe(w):
        w[lkv:lkv + dr] = R @ w[lkv:lkv + dr]

    def qpe(w):
        for h in range(H):
            r0 = h * (dn + dr) + dn
            w[r0:r0 + dr] = R @ w[r0:r0 + dr]
    edit(pre + "kv_a_proj_with_mqa.weight", kpe)
    edit(q, qpe)
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


def hf_layers(path):
    """(shape, layout, [per layer {part: (dtype, values, bound)}]) of an HF
    safetensors folder."""
    cfg = json.load(open(os.path.join(path, "config.json")))
    D = cfg["hidden_size"]
    H = cfg["num_attention_heads"]
    shape = (H, cfg.get("num_key_value_heads", H), cfg.get("head_dim", D // H))
    st = st_read(os.path.join(path, "model.safetensors"))
    layers = []
    for li in range(cfg["num_hidden_layers"]):
        layers.append({p: (st[0][n]["dtype"], st_tensor(*st, n), 0.0) for p, n in (
            (p, "model.layers.%d.self_attn.%s_proj.weight" % (li, p)) for p in "qkvo")})
    return shape, "half", layers   # HF's rotate_half


def gguf_layers(path, d):
    """The same of a llama GGUF with head dim d: interleaved pairs (ggml's
    NORM mode), a block-quantized tensor's values dequantized as ggml
    defines them and its relative bound (tests/reference_quant_bound.py)."""
    import reference_quant as rq
    import reference_quant_bound as qb
    ts = rq.read_gguf(path)
    role = {"q": "attn_q", "k": "attn_k", "v": "attn_v", "o": "attn_output"}
    layers = []
    while "blk.%d.attn_q.weight" % len(layers) in ts:
        li = len(layers)
        parts = {}
        for p, r in role.items():
            dt, shp, raw = ts["blk.%d.%s.weight" % (li, r)]
            w = rq.dequantize(dt, raw).astype(np.float64).reshape(shp)
            b = qb.tensor_bound(dt, raw)["rel"] if dt in qb.TYPES else 0.0
            parts[p] = (dt if dt in UNIT else "Q", w, b)
        layers.append(parts)
    H, G = layers[0]["q"][1].shape[0] // d, layers[0]["k"][1].shape[0] // d
    return (H, G, d), "interleaved", layers


def judge(a_path, b_path, head_dim=None):
    """Per layer: bit for bit, else per kv group of B the group of A a
    rotation maps onto it, that rotation's distance from RoPE's commutant,
    and the relative residuals of W_k, W_q, W_v, W_o under it, each against
    SPEC 4.4's tolerance: 3 units of the coarser stored float's roundoff
    plus the quantization bounds of A's and B's tensors of the part (W_q
    adding W_k's, W_o W_v's: their rotations are recovered there)."""
    load = (lambda p: gguf_layers(p, int(head_dim))) if head_dim else hf_layers
    (H, G, d), layout, la = load(a_path)
    _, _, lb = load(b_path)
    r = d
    out = []
    for li, (A, B) in enumerate(zip(la, lb)):
        us = [UNIT[X[p][0]] for X in (A, B) for p in "qkvo" if X[p][0] in UNIT]
        u = max(us) if us else 2.0 ** -53
        tol = 3 * u + 1e-12
        quant = {p: A[p][2] + B[p][2] for p in "qkvo"}
        tolp = {"q": tol + quant["q"] + quant["k"], "k": tol + quant["k"],
                "v": tol + quant["v"], "o": tol + quant["o"] + quant["v"]}
        wa = [A[p][1] for p in "qkvo"]
        wb = [B[p][1] for p in "qkvo"]
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
            # a rotation off the commutant by more than the weights' own error
            # (half of it at most: a mixing rotation is off by ~1)
            comm = commutant_defect(Rk, layout, r) <= min(10 * tolp["k"], 0.5)
            row["commuting"].append(bool(comm))
            qa = [slice(h * d, (h + 1) * d) for h in range(ga * hpg, (ga + 1) * hpg)]
            qb = [slice(h * d, (h + 1) * d) for h in range(g * hpg, (g + 1) * hpg)]
            ek = rel(Rk @ ka, kb)
            eq = [rel(Rk @ wa[0][x], wb[0][y]) for x, y in zip(qa, qb)]
            va, vb = wa[2][ga * d:(ga + 1) * d], wb[2][g * d:(g + 1) * d]
            Rv = procrustes(va, vb)
            ev = rel(Rv @ va, vb)
            eo = [rel(wa[3][:, x] @ Rv.T, wb[3][:, y]) for x, y in zip(qa, qb)]
            if not comm or ek > tolp["k"] or max(eq) > tolp["q"]:
                row["break_group"], row["break_level"] = g, "score"
                break
            if ev > tolp["v"] or max(eo) > tolp["o"]:
                row["break_group"], row["break_level"] = g, "head"
                break
            worst = max([worst, ek, ev] + eq + eo)
        if row["break_group"] is not None:
            row["within"] = "breaks"
        elif worst > tol:
            row["within"] = "within quantization"
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


def level_diffs(v, c):
    """What differs between the levels of verify's layer v and compare
    mode's c, evaluated on the same input."""
    lv, lc = v.get("levels"), c.get("levels")
    if (lv is None) != (lc is None):
        return ["levels"]
    if lv is None:
        return []
    bad = ["levels_tol"] if not close(v["levels_tol"], c["levels_tol"]) else []
    for name in ("score", "head", "residual"):
        a, b = lv[name], lc[name]
        bad += ["levels.%s.%s" % (name, k) for k in ("expected", "holds", "overflow")
                if a[k] != b[k]]
        if not close(a["max_rel_err"], b["max_rel_err"]):
            bad.append("levels.%s.max_rel_err" % name)
    return bad


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


def agree(vpath, cpaths, levels=False):
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
        diff = layer_diffs(v, c) + (level_diffs(v, c) if levels else [])
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
        judge(*argv[:3])
    elif cmd == "agree" and argv[:1] == ["--levels"]:
        agree(argv[1], argv[2:], levels=True)
    elif cmd == "agree":
        agree(argv[0], argv[1:])
    elif cmd == "rope-turn":
        rope_turn(argv)
    elif cmd == "turn-commutator":
        turn_commutator(argv)
    elif cmd == "judged":
        judged(argv[0], argv[1])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
