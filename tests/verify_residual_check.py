#!/usr/bin/python3
"""verify A B on residual-frame rewrites (QuaRot/SpinQuant R1, R2).

Three kinds of B:
  * ropefold's own `fold --residual hadamard|haar` of every pre-norm family
    fixture (tests/family_fixtures.py) and of the shared checkpoints: verify
    must say equivalent and name R1's kind;
  * checkpoints rotated by the independent NumPy rotator below, written from
    QuaRot's published definition (Ashkboos et al. 2024, sections 3-4): fuse
    each RMSNorm weight into the linears that follow it, then embeddings
    E R1^T, readers W R1^T, writers R1 W, head W_head R1^T, and R2 per kv
    group on V's rows and O's columns;
  * the same rotator with one deliberate mistake each: verify must refuse it
    with the finding code of that mistake.
Prints TAP.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import family_fixtures as ff  # noqa: E402
import reference_forward as rf  # noqa: E402

ROPEFOLD = os.environ.get("ROPEFOLD", "./ropefold")
MODELS = os.environ.get("ROPEFOLD_SHARED_MODELS",
                        os.path.join(os.environ.get("SRCDIR", "."), "..", "shared", "models"))
# the families R1 does not apply to (fold refuses them; tests/residual_check.py)
REFUSED = {"olmo2", "gemma2", "gemma3", "gemma3-pattern", "gpt-neox", "gpt-neox-sequential"}
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


def verify(a, b):
    """(exit status, the residual object of verify --json or None, stderr)."""
    rc, out, err = run("verify", a, b, "--json")
    try:
        doc = json.loads(out)
    except ValueError:
        return rc, None, err
    return rc, doc.get("residual"), err


# ---- the independent rotator ---------------------------------------------------

def sylvester(n):
    h = np.ones((1, 1))
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h / np.sqrt(n)


def hadamard(n, rng):
    """Random signs times a normalised Hadamard: Sylvester on the largest power
    of two dividing n, Kronecker with the identity on the rest."""
    p = 1
    while n % (2 * p) == 0:
        p *= 2
    h = np.kron(sylvester(p), np.eye(n // p))
    return h * rng.choice([-1.0, 1.0], n)[None, :]


def haar(n, rng):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))[None, :]


def rotate(folder, out, kind="hadamard", seed=3, vo=True, mistake=None):
    """Write QuaRot's rewrite of HF folder `folder` (a Llama-style checkpoint)
    to `out`, f32; `mistake` names one deliberate error."""
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    t, _ = rf.read_safetensors(os.path.join(folder, "model.safetensors"))
    t = {k: np.array(v, dtype=np.float64) for k, v in t.items()}
    rng = np.random.default_rng(seed)
    D, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    H, G = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or D // H
    R1 = hadamard(D, rng) if kind == "hadamard" else haar(D, rng)
    E = t["model.embed_tokens.weight"]
    head = t.get("lm_head.weight", E).copy()
    # fuse the final norm into the head, then rotate
    wf = t["model.norm.weight"]
    t["lm_head.weight"] = head * wf[None, :] @ R1.T
    if mistake == "head-twice":
        t["lm_head.weight"] = t["lm_head.weight"] @ R1.T
    t["model.norm.weight"] = np.ones(D)
    t["model.embed_tokens.weight"] = E @ R1.T
    if mistake == "embeddings":
        t["model.embed_tokens.weight"] += 0.05 * rng.standard_normal(E.shape) * np.abs(E).max()
    for l in range(L):
        p = "model.layers.%d." % l
        for norm, readers in (("input_layernorm", ("self_attn.q_proj", "self_attn.k_proj",
                                                   "self_attn.v_proj")),
                              ("post_attention_layernorm", ("mlp.gate_proj", "mlp.up_proj"))):
            w = t[p + norm + ".weight"]
            unfused = mistake == "norm" and l == 1 and norm == "post_attention_layernorm"
            for r in readers:
                W = t[p + r + ".weight"]
                t[p + r + ".weight"] = (W if unfused else W * w[None, :]) @ R1.T
            if not unfused:
                t[p + norm + ".weight"] = np.ones(D)
        t[p + "self_attn.o_proj.weight"] = R1 @ t[p + "self_attn.o_proj.weight"]
        down = R1 @ t[p + "mlp.down_proj.weight"]
        if mistake == "r4" and l == 0:
            down = down @ hadamard(down.shape[1], rng).T
        if mistake == "writer" and l == 1:
            down += 0.05 * rng.standard_normal(down.shape) * np.abs(down).max()
        t[p + "mlp.down_proj.weight"] = down
        if mistake == "reader" and l == 0:
            up = t[p + "mlp.up_proj.weight"]
            t[p + "mlp.up_proj.weight"] = up + 0.05 * rng.standard_normal(up.shape) * np.abs(up).max()
        if vo:
            for g in range(G):
                R2 = hadamard(hd, rng) if kind == "hadamard" else haar(hd, rng)
                rows = slice(g * hd, (g + 1) * hd)
                t[p + "self_attn.v_proj.weight"][rows] = R2 @ t[p + "self_attn.v_proj.weight"][rows]
                for h in range(g * (H // G), (g + 1) * (H // G)):
                    cols = slice(h * hd, (h + 1) * hd)
                    t[p + "self_attn.o_proj.weight"][:, cols] = \
                        t[p + "self_attn.o_proj.weight"][:, cols] @ R2.T
        if mistake == "r3" and l == 0:
            # a Hadamard on every Q and K head: q.k is unchanged without RoPE,
            # but it mixes RoPE's frequency pairs
            R3 = hadamard(hd, rng)
            for name, n in (("self_attn.q_proj.weight", H), ("self_attn.k_proj.weight", G)):
                for h in range(n):
                    rows = slice(h * hd, (h + 1) * hd)
                    t[p + name][rows] = R3 @ t[p + name][rows]
    if mistake == "tied-twice":
        # one tied tensor rotated as the embeddings and again as the head
        t["model.embed_tokens.weight"] = E * wf[None, :] @ R1.T @ R1.T
    if mistake in ("tied", "tied-twice"):
        del t["lm_head.weight"]
        cfg["tie_word_embeddings"] = True
    else:
        cfg["tie_word_embeddings"] = False
    cfg["torch_dtype"] = "float32"
    os.makedirs(out, exist_ok=True)
    ff.write_safetensors(os.path.join(out, "model.safetensors"),
                         {k: v.astype(np.float32) for k, v in t.items()}, "f32")
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


# ---- the checks ------------------------------------------------------------------

def recognised(what, a, b, hadamard_kind, rotations=True):
    rc, res, err = verify(a, b)
    good = rc == 0 and res and res["rotated"] and res["norms_fused"] and res["equivalent"] \
        and res["hadamard"] == hadamard_kind
    if good and rotations:
        good = res["vo_rotated"]
    check(what, good, (res or {}).get("description", err.strip()[-200:]))
    return res


def own_folds(work):
    for name in ff.FAMILIES:
        if name.startswith("deepseek") or name in REFUSED:
            continue
        folder = os.path.join(work, name)
        ff.make_fixture(name, folder, tied=False)
        for kind in ("hadamard", "haar"):
            out = os.path.join(work, "%s-%s" % (name, kind))
            rc, _, err = run("fold", "--model", folder, "--out", out, "--residual", kind,
                             "--vo", "same", "--seed", "5")
            if rc:
                check("%s: fold --residual %s" % (name, kind), False, err.strip()[-200:])
                continue
            recognised("%s: verify recognises ropefold's --residual %s" % (name, kind),
                       folder, out, kind == "hadamard")


def shared(work):
    hf = os.path.join(MODELS, "tiny_llama_hf")
    if not os.path.isdir(hf):
        skip("tiny_llama_hf", "%s not present" % hf)
        return
    for kind in ("hadamard", "haar"):
        out = os.path.join(work, "tiny-" + kind)
        rc, _, err = run("fold", "--model", hf, "--out", out, "--residual", kind, "--vo", "same")
        check("tiny_llama_hf: fold --residual %s" % kind, rc == 0, err.strip()[-200:])
        if rc == 0:
            res = recognised("tiny_llama_hf: verify recognises ropefold's --residual %s" % kind,
                             hf, out, kind == "hadamard")
            if kind == "hadamard":
                check("tiny_llama_hf: the relation in one sentence",
                      res and res["description"] ==
                      "same model up to a residual rotation R1 (Hadamard) with norms fused, "
                      "per-group V/O rotations and commuting Q/K rotations",
                      (res or {}).get("description"))
        out = os.path.join(work, "tiny-np-" + kind)
        rotate(hf, out, kind)
        recognised("tiny_llama_hf: the NumPy rotator's %s rewrite recognised" % kind, hf, out,
                   kind == "hadamard")
    gguf = os.path.join(MODELS, "stories260K.gguf")
    if os.path.exists(gguf):
        out = os.path.join(work, "stories-r1.gguf")
        rc, _, err = run("fold", "--model", gguf, "--out", out, "--residual", "hadamard",
                         "--vo", "hadamard")
        check("stories260K.gguf: fold --residual hadamard", rc == 0, err.strip()[-200:])
        if rc == 0:
            recognised("stories260K.gguf: verify recognises it", gguf, out, True)
    else:
        skip("stories260K.gguf", "not present in %s" % MODELS)
    binf = os.path.join(MODELS, "stories260K.bin")
    if os.path.exists(binf):
        out = os.path.join(work, "stories-r1.bin")
        rc, _, err = run("fold", "--model", binf, "--out", out, "--residual", "haar")
        check("stories260K.bin: fold --residual haar (the head untied)", rc == 0,
              err.strip()[-200:])
        if rc == 0:
            recognised("stories260K.bin: verify recognises it", binf, out, False)
    else:
        skip("stories260K.bin", "not present in %s" % MODELS)


# mistake -> the finding code verify must name, and where (None: model level)
BREAKS = {
    "norm": ("residual-norm-not-fused", 1),
    "head-twice": ("residual-head-rotated-twice", None),
    "tied": ("residual-tied-head", None),
    "tied-twice": ("residual-head-rotated-twice", None),
    "reader": ("residual-reader-unexplained", 0),
    "writer": ("residual-writer-unexplained", 1),
    "r4": ("residual-online-r4", 0),
    "r3": ("residual-online-r3", 0),
    "embeddings": ("residual-embeddings-unexplained", None),
}


def numpy_rotator(work):
    folder = os.path.join(work, "np-llama")
    ff.make_fixture("llama", folder, tied=False)
    for kind in ("hadamard", "haar"):
        out = os.path.join(work, "np-llama-" + kind)
        rotate(folder, out, kind)
        recognised("llama fixture: the NumPy rotator's %s rewrite recognised" % kind, folder,
                   out, kind == "hadamard")
    out = os.path.join(work, "np-llama-novo")
    rotate(folder, out, "hadamard", vo=False)
    res = recognised("llama fixture: R1 alone (no R2) recognised", folder, out, True, False)
    check("... and names no V/O rotation", res and not res["vo_rotated"])
    for mistake, (code, layer) in BREAKS.items():
        out = os.path.join(work, "np-llama-" + mistake)
        rotate(folder, out, "hadamard", mistake=mistake)
        rc, res, err = verify(folder, out)
        brk = (res or {}).get("break") or {}
        check("crafted break %s: verify names %s at %s" % (mistake, code, layer),
              rc == 1 and brk.get("code") == code and brk.get("layer") == layer,
              "rc %d, %s" % (rc, brk or err.strip()[-200:]))
        if mistake in ("r3", "r4"):
            check("... and says the extra matrix is a Hadamard", brk.get("hadamard") is True)


def main():
    work = tempfile.mkdtemp(prefix="ropefold-verify-residual-")
    try:
        numpy_rotator(work)
        shared(work)
        own_folds(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("1..%d" % len(results))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
