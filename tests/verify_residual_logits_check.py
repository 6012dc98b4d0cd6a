#!/usr/bin/python3
"""`verify --logits` on residual-frame folds (QuaRot/SpinQuant's R1, R2), as TAP.

The model-level proof of issue #14: `fold --residual hadamard|haar` with
`--vo` (and with or without the commuting Q/K fold) writes a checkpoint
whose logits equal the original's up to the stored dtype's rounding, and
`verify A B --logits` says so: exit 0, the relation named, the model level
holding, its max relative logit error within the dtype's rounding. For
every case the NumPy forward pass of tests/reference_forward.py (written
from the families' published definitions, independently of ropefold)
computes both models' logits on the same tokens, and its max relative
logit error must agree with the one verify printed.

Cases: the seeded family fixtures (tests/family_fixtures.py: llama, a tied
llama the fold unties, qwen2 with q/k/v biases, mistral, gemma's (1 + w)
norms, mixtral and qwen2-moe experts) as HF folders and as GGUF files
written the way llama.cpp's converter writes them (tests/gguf_families.py:
Q/K rows permuted, Gemma's norms stored as 1 + w, experts stacked); the
shared checkpoints of ../shared/models (HF bf16, GGUF, llama2.c); folds
stored in bf16, f16 and Q8_0 (--dtype), within that dtype's rounding; across
formats, A an HF folder and B the GGUF of its fold, and the other way
round (and the llama2.c file against the GGUF's fold). Crafted breaks
(tests/verify_residual_check.py's NumPy rotator with each of its mistakes:
a norm not fused, the head rotated twice (untied, and tied embeddings
rotated as embeddings and as head), a head left tied, an online R4 left in
down_proj, a Hadamard on Q/K that does not commute with RoPE, a reader, a
writer or the embeddings off; and ropefold's own fold with --drop commutes
--kind hadamard) must fail at the model level with
the residual frame's reason, and the NumPy logits must differ as much as
verify says. Last, an online R4 at Llama's FFN widths (14336 = 7 * 2048,
11008 = 43 * 256) on a small-D model: ropefold's kind of Hadamard, QuaRot's
kind (H_28 (x) S_512, Paley's H_28), a Haar factor (x) S_64 and a
Householder reflection, each recognised and said to be a Hadamard or not.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import family_fixtures as ff  # noqa: E402
import gguf_families as gf  # noqa: E402
import reference_forward as rf  # noqa: E402
import reference_quant as rq  # noqa: E402  (GGUF blocks dequantized)
import residual_check as rc_  # noqa: E402  (gguf_read, gguf_to_llama2c)
import verify_residual_check as vr  # noqa: E402  (the NumPy rotator)

ROPEFOLD = os.environ.get("ROPEFOLD", "./ropefold")
MODELS = os.environ.get("ROPEFOLD_SHARED_MODELS",
                        os.path.join(os.environ.get("SRCDIR", "."), "..", "shared", "models"))
TOKENS = [(7 * i + 3) % 96 for i in range(24)]
IDS = ",".join(str(t) for t in TOKENS)
# the relative logit error a fold may cost: the rounding of the dtype its
# rewritten tensors are stored in (measured: f32 ~1e-7, f16 ~1e-3, bf16 ~5e-3
# to 9e-3, Q8_0 ~3e-2)
TOL = {"f32": 2e-5, "f16": 4e-3, "bf16": 3e-2, "q8_0": 8e-2}
# how far apart two independent f64 evaluations of the same error may be
AGREE = 0.02
results = []


def check(what, good, detail=""):
    results.append(bool(good))
    print("%s %d - %s%s" % ("ok" if good else "not ok", len(results), what,
                            " (%s)" % detail if detail else ""))
    sys.stdout.flush()


def skip(what, why):
    results.append(True)
    print("ok %d - %s # SKIP %s" % (len(results), what, why))


def run(*args):
    p = subprocess.run([ROPEFOLD] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True)
    return p.returncode, p.stdout, p.stderr


def verify_logits(a, b):
    """(exit status, verify --logits --json document or None, stderr)."""
    rc, out, err = run("verify", a, b, "--logits", "--tokens", IDS, "--json")
    try:
        return rc, json.loads(out), err
    except ValueError:
        return rc, None, err


# ---- the NumPy side: GGUF files back to what reference_forward reads -------------

def unpermute(w, n):
    """llama.cpp's interleaved Q/K rows back to HF's half-split ones."""
    hd = w.shape[0] // n
    return w.reshape(n, hd // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_to_hf(path, cfg, folder):
    """A GGUF of tests/gguf_families.py's layout (or ropefold's fold of one,
    in any stored type, dequantized by tests/reference_quant.py) as the HF
    folder of config cfg: names back, Q/K rows unpermuted for arch llama,
    Gemma's 1 + w norms back to w, stacked experts split."""
    t = {name: rq.dequantize(dt, raw).astype(np.float64).reshape(shape)
         for name, (dt, shape, raw) in rq.read_gguf(path).items()}
    kind = cfg["model_type"]
    arch = gf.ARCH[kind]
    H, G = cfg["num_attention_heads"], cfg.get("num_key_value_heads") or cfg["num_attention_heads"]
    plus = 1.0 if kind.startswith("gemma") else 0.0
    moe = "block_sparse_moe." if kind == "mixtral" else "mlp."
    names = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj",
             "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
             "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
             "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
             "ffn_gate_inp": moe + "gate", "ffn_gate_shexp": "mlp.shared_expert.gate_proj",
             "ffn_up_shexp": "mlp.shared_expert.up_proj",
             "ffn_down_shexp": "mlp.shared_expert.down_proj",
             "ffn_gate_inp_shexp": "mlp.shared_expert_gate"}
    experts = {"ffn_gate_exps": ("w1", "gate_proj"), "ffn_up_exps": ("w3", "up_proj"),
               "ffn_down_exps": ("w2", "down_proj")}
    out = {"model.embed_tokens.weight": t["token_embd.weight"],
           "model.norm.weight": t["output_norm.weight"] - plus}
    if "output.weight" in t:
        out["lm_head.weight"] = t["output.weight"]
    for name, w in t.items():
        if not name.startswith("blk."):
            continue
        _, l, g, part = name.split(".")
        p = "model.layers.%s." % l
        if g in experts:
            for e in range(w.shape[0]):
                hf = experts[g][0] if kind == "mixtral" else experts[g][1]
                out[p + "%sexperts.%d.%s.weight" % (moe, e, hf)] = w[e]
            continue
        if "norm" in g and part == "weight":
            w = w - plus
        if arch == "llama" and g in ("attn_q", "attn_k"):
            w = unpermute(w, H if g == "attn_q" else G)
        if g == "ffn_gate_inp_shexp":
            w = w.reshape(1, -1)
        out[p + names[g] + "." + part] = w
    cfg = dict(cfg, tie_word_embeddings="lm_head.weight" not in out, torch_dtype="float32")
    os.makedirs(folder, exist_ok=True)
    ff.write_safetensors(os.path.join(folder, "model.safetensors"),
                         {k: np.asarray(v, np.float32) for k, v in out.items()}, "f32")
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f)
    return folder


class Side:
    """A checkpoint ropefold reads, and what reference_forward reads for it."""

    def __init__(self, path, cfg=None, work=None):
        self.path = path
        self.cfg = cfg
        self.work = work

    def reference(self):
        if not self.path.endswith(".gguf"):
            return self.path
        if self.cfg is None:   # the stories GGUF: as a llama2.c file
            out = os.path.join(self.work, os.path.basename(self.path) + ".ref.bin")
            rc_.gguf_to_llama2c(self.path, out)
            return out
        return gguf_to_hf(self.path, self.cfg,
                          os.path.join(self.work, os.path.basename(self.path) + ".ref"))


def np_logits(side):
    # Gemma's sqrt(D): HF rounds it to the embeddings' dtype, llama.cpp (so
    # ropefold on a GGUF) multiplies by the exact root
    scale = "exact" if side.path.endswith(".gguf") else "hf"
    return rf.forward(rf.load_model(side.reference(), embed_scale=scale), TOKENS)


def np_rel(a, b):
    za, zb = np_logits(a), np_logits(b)
    return float(np.max(np.abs(za - zb)) / np.max(np.abs(za)))


def agrees(x, y):
    return abs(x - y) <= AGREE * max(x, y) + 1e-12


# ---- the checks --------------------------------------------------------------------

def relation(kind):
    return "same model up to a residual rotation R1 (%s)" % (
        "Hadamard" if kind == "hadamard" else "orthogonal, not a Hadamard")


def equivalent(what, a, b, kind, dtype, layout=None):
    """verify --logits says B is A's residual fold within dtype's rounding,
    and the NumPy logits agree."""
    rc, doc, err = verify_logits(a.path, b.path)
    ml = (doc or {}).get("model_level") or {}
    res = (doc or {}).get("residual") or {}
    desc = res.get("description", "")
    good = rc == 0 and doc["equivalent"] and ml.get("holds") and desc.startswith(relation(kind))
    if good and layout is not None:
        good = any(l["layout_converted"] for l in doc["layers"]) == layout
    e = ml.get("max_rel_logit_err", float("inf"))
    check("%s: verify --logits exit 0, %s, the model level holds" % (what, relation(kind)), good,
          "rc %d, %s" % (rc, desc or err.strip()[-200:]))
    check("%s: max relative logit error %.2g within %s rounding (%.0e; verify's own tolerance "
          "%.2g)" % (what, e, dtype, TOL[dtype], ml.get("tol_rel", 0)),
          e <= TOL[dtype] and e <= ml.get("tol_rel", 0))
    n = np_rel(a, b)
    check("%s: the NumPy logits agree (%.3g, verify %.3g)" % (what, n, e),
          n <= TOL[dtype] and agrees(n, e))


def broken(what, a, b, code, layer=None, hadamard=None):
    """verify --logits refuses B with the residual frame's reason, the model
    level breaks, and the NumPy logits differ as much."""
    rc, doc, err = verify_logits(a.path, b.path)
    ml = (doc or {}).get("model_level") or {}
    brk = ((doc or {}).get("residual") or {}).get("break") or {}
    good = rc == 1 and not doc["equivalent"] and brk.get("code") == code and \
        brk.get("layer") == layer and ml.get("holds") is False
    if good and hadamard is not None:
        good = brk.get("hadamard") is hadamard
    e = ml.get("max_rel_logit_err", 0.0)
    check("%s: verify --logits exit 1 naming %s at %s, the model level breaks (%.2g > %.2g)" % (
        what, code, "the model level" if layer is None else "layer %d" % layer, e,
        ml.get("tol_rel", 0)), good and e > ml.get("tol_rel", 1),
        "rc %d, %s" % (rc, brk or err.strip()[-200:]))
    n = np_rel(a, b)
    check("%s: the NumPy logits differ as much (%.3g, verify %.3g)" % (what, n, e),
          n > 100 * TOL["f32"] and agrees(n, e))


def fold(src, out, *flags):
    rc, _, err = run("fold", "--model", src, "--out", out, *flags)
    return rc == 0, err.strip()[-200:]


VARIANTS = [("hadamard", ["--residual", "hadamard", "--vo", "hadamard"], "R1, R2 Hadamard, Q/K fold"),
            ("haar", ["--residual", "haar", "--vo", "haar", "--seed", "7"], "R1, R2 Haar, Q/K fold"),
            ("hadamard", ["--residual", "hadamard", "--rotate", "none"], "R1 alone")]
FAMILIES = [("llama", False, True), ("llama", True, True), ("qwen2", False, True),
            ("mistral", False, False), ("gemma", False, True), ("mixtral", False, True),
            ("qwen2-moe", False, True)]


def families(work):
    for name, tied, gguf in FAMILIES:
        label = name + (" (tied, untied by the fold)" if tied else "")
        folder = os.path.join(work, name + ("-tied" if tied else ""))
        cfg = ff.make_fixture(name, folder, tied=tied)
        a_hf = Side(folder)
        a_gg = None
        if gguf:
            a_gg = Side(folder + ".gguf", cfg, work)
            gf.write(a_gg.path, *gf.convert(folder))
        for k, (kind, flags, vlabel) in enumerate(VARIANTS):
            out = "%s-v%d" % (folder, k)
            ok, why = fold(folder, out, *flags)
            check("%s HF: fold %s" % (label, " ".join(flags)), ok, why)
            if not ok:
                continue
            equivalent("%s HF, %s" % (label, vlabel), a_hf, Side(out), kind, "f32")
            if not a_gg or k == 2:
                continue
            b_gg = Side("%s-v%d.gguf" % (folder, k), cfg, work)
            ok, why = fold(a_gg.path, b_gg.path, *flags)
            check("%s GGUF: fold %s" % (label, " ".join(flags)), ok, why)
            if ok:
                equivalent("%s GGUF, %s" % (label, vlabel), a_gg, b_gg, kind, "f32")
            if k:
                continue
            # across formats: A HF, B the GGUF of its fold; A GGUF, B the HF fold
            conv = Side(out + ".conv.gguf", cfg, work)
            gf.write(conv.path, *gf.convert(out))
            layout = cfg["model_type"] in ("llama", "mixtral")
            equivalent("%s: A HF, B the GGUF of its fold" % label, a_hf, conv, kind, "f32",
                       layout)
            equivalent("%s: A HF, B the fold of its GGUF" % label, a_hf, b_gg, kind, "f32",
                       layout)
            equivalent("%s: A GGUF, B the HF fold" % label, a_gg, Side(out), kind, "f32",
                       layout)


def stored(work):
    """Folds stored in a coarser dtype than the original's f32 (--dtype):
    the logits within that dtype's rounding."""
    folder = os.path.join(work, "stored-llama")
    cfg = ff.make_fixture("llama", folder, tied=False)
    gguf = Side(folder + ".gguf", cfg, work)
    gf.write(gguf.path, *gf.convert(folder))
    flags = ["--residual", "hadamard", "--vo", "hadamard", "--dtype"]
    for a, ext, dtype in ((Side(folder), "", "bf16"), (Side(folder), "", "f16"),
                          (gguf, ".gguf", "f16"), (gguf, ".gguf", "q8_0")):
        b = Side("%s-%s%s" % (folder, dtype, ext), cfg, work)
        label = "llama %s, stored %s" % ("GGUF" if ext else "HF", dtype)
        ok, why = fold(a.path, b.path, *(flags + [dtype]))
        check("%s: fold --residual hadamard --vo hadamard --dtype %s" % (label, dtype), ok, why)
        if ok:
            equivalent(label, a, b, "hadamard", dtype)


def shared(work):
    hf = os.path.join(MODELS, "tiny_llama_hf")
    gguf = os.path.join(MODELS, "stories260K.gguf")
    binf = os.path.join(MODELS, "stories260K.bin")
    if os.path.isdir(hf):
        with open(os.path.join(hf, "config.json")) as f:
            cfg = json.load(f)
        for k, (kind, flags, vlabel) in enumerate(VARIANTS):
            out = os.path.join(work, "tiny-v%d" % k)
            ok, why = fold(hf, out, *flags)
            check("tiny_llama_hf: fold %s" % " ".join(flags), ok, why)
            if not ok:
                continue
            equivalent("tiny_llama_hf (bf16), %s" % vlabel, Side(hf), Side(out), kind, "bf16")
            if k == 0:
                conv = Side(out + ".gguf", cfg, work)
                gf.write(conv.path, *gf.convert(out))
                equivalent("tiny_llama_hf: A HF, B the GGUF of its fold", Side(hf), conv,
                           kind, "bf16", True)
                a_gg = Side(os.path.join(work, "tiny.gguf"), cfg, work)
                gf.write(a_gg.path, *gf.convert(hf))
                equivalent("tiny_llama_hf: A its GGUF, B the HF fold", a_gg, Side(out), kind,
                           "bf16", True)
    else:
        skip("tiny_llama_hf", "%s not present" % hf)
    for path, label in ((gguf, "stories260K.gguf"), (binf, "stories260K.bin")):
        if not os.path.exists(path):
            skip(label, "not present in %s" % MODELS)
            continue
        ext = os.path.splitext(path)[1]
        for k, (kind, flags, vlabel) in enumerate(VARIANTS):
            out = os.path.join(work, "stories-v%d%s" % (k, ext))
            ok, why = fold(path, out, *flags)
            check("%s: fold %s" % (label, " ".join(flags)), ok, why)
            if ok:
                equivalent("%s, %s" % (label, vlabel), Side(path, None, work),
                           Side(out, None, work), kind, "f32")
    if os.path.exists(gguf) and os.path.exists(binf):
        equivalent("stories260K: A the .bin, B the fold of the .gguf", Side(binf),
                   Side(os.path.join(work, "stories-v0.gguf"), None, work), "hadamard", "f32")
        equivalent("stories260K: A the .gguf, B the fold of the .bin", Side(gguf, None, work),
                   Side(os.path.join(work, "stories-v0.bin")), "hadamard", "f32")


def breaks(work):
    folder = os.path.join(work, "brk-llama")
    cfg = ff.make_fixture("llama", folder, tied=False)
    a = Side(folder)
    # every mistake tests/verify_residual_check.py crafts, and the code and
    # layer verify names it by
    for mistake, (code, layer) in vr.BREAKS.items():
        had = True if mistake in ("r3", "r4") else None
        out = os.path.join(work, "brk-" + mistake)
        vr.rotate(folder, out, "hadamard", mistake=mistake)
        broken("crafted break %s (HF)" % mistake, a, Side(out), code, layer, had)
        if mistake in ("norm", "r4"):
            conv = Side(out + ".gguf", cfg, work)
            gf.write(conv.path, *gf.convert(out))
            broken("crafted break %s, A HF, B its GGUF" % mistake, a, conv, code, layer, had)
    out = os.path.join(work, "brk-ropefold-r3")
    ok, why = fold(folder, out, "--residual", "hadamard", "--drop", "commutes", "--kind",
                   "hadamard")
    check("fold --residual hadamard --drop commutes --kind hadamard", ok, why)
    if ok:
        broken("ropefold's non-commuting Q/K Hadamard on R1", a, Side(out), "residual-online-r3",
               0, True)


# ---- an online R4 at Llama's FFN widths ------------------------------------------

def sylvester(p):
    h = np.ones((1, 1))
    while h.shape[0] < p:
        h = np.block([[h, h], [h, -h]])
    return h / np.sqrt(p)


def paley2(q):
    """Paley's second construction, order 2 (q + 1) for a prime q = 1 mod 4:
    the conference matrix C = [0 1^T; 1 Q] (Q[i][j] the quadratic character
    of j - i mod q), H = C kron [1 1; 1 -1] + I kron [1 -1; -1 -1];
    normalised."""
    res = {(x * x) % q for x in range(1, q)}
    chi = np.array([0] + [1 if x in res else -1 for x in range(1, q)])
    C = np.zeros((q + 1, q + 1))
    C[0, 1:] = C[1:, 0] = 1
    C[1:, 1:] = chi[(np.arange(q)[None, :] - np.arange(q)[:, None]) % q]
    H = np.kron(C, [[1, 1], [1, -1]]) + np.kron(np.eye(q + 1), [[1, -1], [-1, -1]])
    return H / np.sqrt(2 * (q + 1))


def wide_r4(W, rng, kind):
    """W (D x n) M^T for M = (S_p kron I_m) diag(s) (the Sylvester factor
    outside, s random signs: tests/verify_residual_check.py's Hadamard at
    any width, applied blockwise instead of as an n x n matrix); for
    "kron-paley" M = H_28 kron S_(n/28) (QuaRot's had_28 (x) S_512 at
    14336, with Paley's H_28); for "kron-haar" M = A kron S_p, A a Haar
    rotation of order n/p (the shape of had_172 (x) S_64 at 11008); or a
    Householder reflection (orthogonal, no Hadamard)."""
    D, n = W.shape
    if kind == "householder":
        u = rng.standard_normal(n)
        return W - 2 * np.outer(W @ u, u) / (u @ u)
    if kind.startswith("kron"):
        k = 28 if kind == "kron-paley" else 172
        A = paley2(13) if kind == "kron-paley" else vr.haar(k, rng)
        p = n // k
        # (W M^T)[r, a*p + b] = sum_{c,d} W[r, c*p + d] A[a, c] S[b, d]
        return np.einsum("ac,bd,rcd->rab", A, sylvester(p), W.reshape(D, k, p)).reshape(D, n)
    p = 1
    while n % (2 * p) == 0:
        p *= 2
    m = n // p
    s = rng.choice([-1.0, 1.0], n)
    # (W D_s (S kron I))[r, a*m + c] = sum_b S[b, a] (W D_s)[r, b*m + c]
    return np.einsum("ba,rbc->rac", sylvester(p), (W * s).reshape(D, p, m)).reshape(D, n)


def wide(work):
    for width, what in ((14336, "7 x 2048, Llama-3-8B"), (11008, "43 x 256, Llama-2-7B")):
        cfg, t = ff.build_fixture("llama", 1, False, "f32")
        rng = np.random.default_rng(width)
        D = cfg["hidden_size"]
        cfg["intermediate_size"] = width
        for l in range(cfg["num_hidden_layers"]):
            p = "model.layers.%d.mlp." % l
            t[p + "gate_proj.weight"] = rng.standard_normal((width, D)) / np.sqrt(D)
            t[p + "up_proj.weight"] = rng.standard_normal((width, D)) / np.sqrt(D)
            t[p + "down_proj.weight"] = rng.standard_normal((D, width)) / np.sqrt(width)
        folder = os.path.join(work, "wide-%d" % width)
        os.makedirs(folder)
        ff.write_safetensors(os.path.join(folder, "model.safetensors"), t, "f32")
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(cfg, f)
        out = os.path.join(work, "wide-%d-fold" % width)
        ok, why = fold(folder, out, "--residual", "hadamard", "--vo", "hadamard")
        check("FFN %d (%s): fold --residual hadamard" % (width, what), ok, why)
        if ok:
            equivalent("FFN %d: the fold" % width, Side(folder), Side(out), "hadamard", "f32")
        kron = ("kron-paley", True) if width == 14336 else ("kron-haar", False)
        for kind, had in (("hadamard", True), kron, ("householder", False)):
            out = os.path.join(work, "wide-%d-%s" % (width, kind))
            vr.rotate(folder, out, "hadamard")
            bt, _ = rf.read_safetensors(os.path.join(out, "model.safetensors"))
            name = "model.layers.0.mlp.down_proj.weight"
            bt[name] = wide_r4(bt[name], rng, kind)
            ff.write_safetensors(os.path.join(out, "model.safetensors"),
                                 {k: v.astype(np.float32) for k, v in bt.items()}, "f32")
            broken("FFN %d (%s): an online R4 (%s) left in down_proj" % (width, what, kind),
                   Side(folder), Side(out), "residual-online-r4", 0, had)


def main():
    work = tempfile.mkdtemp(prefix="ropefold-verify-residual-logits-")
    try:
        families(work)
        stored(work)
        shared(work)
        breaks(work)
        wide(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("1..%d" % len(results))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
