#!/usr/bin/python3
"""DeepSeek-V2/V3's whole-model forward pass against the NumPy reference, as TAP.

The reference is tests/reference_forward.py's plan_deepseek (MLA attention,
dense then routed and shared experts, V2 and V3 routing), written from
DeepSeek's modelling code, never from ropefold. The fixtures are
tests/family_fixtures.py's DeepSeek folders (layer 0 dense, layers 1-2
with experts) and variants of their config.json: without yarn, with
norm_topk_prob on V2 (renormalised, unscaled), V2's greedy top-k, V3 with
one expert group. Each is held to 1e-10 relative in float64 and 1e-5 in
float32 (the logits tests/mla_forward_dump writes in float64). Then
`ropefold logits` on an MLA folder (text, JSON, .npy), `verify --logits`
on an MLA fold (the model level holds) and on a tampered one (it does not).
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
import reference_forward as rf  # noqa: E402

ROPEFOLD = os.environ.get("ROPEFOLD", "./ropefold")
DUMP = os.path.join(os.environ.get("BUILDDIR", "."), "tests", "mla_forward_dump")
TOKENS = [3, 17, 0, 42, 9, 55, 1, 23, 8, 31, 12, 47, 5, 60, 2, 38, 19, 27, 44, 7]
results = []


def check(what, good, detail=""):
    results.append(bool(good))
    print("%s %d - %s%s" % ("ok" if good else "not ok", len(results), what,
                            " (%s)" % detail if detail else ""))
    sys.stdout.flush()


def run(*args):
    p = subprocess.run([str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def edit_config(folder, change):
    path = os.path.join(folder, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    change(cfg)
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)


def no_yarn(c):
    c.pop("rope_scaling", None)


def v2_norm(c):
    c["norm_topk_prob"] = True


def v2_greedy(c):
    c["topk_method"] = "greedy"


def v3_one_group(c):
    c["n_group"] = 1
    c["topk_group"] = 1


VARIANTS = [
    ("deepseek-v2", None, "V2: q latent, group-limited greedy, yarn"),
    ("deepseek-v2-lite", None, "V2-Lite: q_proj, greedy, yarn"),
    ("deepseek-v3", None, "V3: sigmoid + bias, noaux_tc, norm_topk_prob, yarn mscale"),
    ("deepseek-v2", no_yarn, "V2 without rope_scaling"),
    ("deepseek-v3", no_yarn, "V3 without rope_scaling"),
    ("deepseek-v2", v2_norm, "V2 with norm_topk_prob (renormalised, not scaled)"),
    ("deepseek-v2", v2_greedy, "V2 greedy top-k with a q latent"),
    ("deepseek-v3", v3_one_group, "V3 with one expert group"),
]


def dump(folder, prec, out):
    rc, _, err = run(DUMP, folder, prec, ",".join(map(str, TOKENS)), out)
    if rc:
        return None, err.strip()
    return np.fromfile(out, "<f8").reshape(len(TOKENS), -1), ""


def check_variants(tmp):
    for k, (family, change, what) in enumerate(VARIANTS):
        folder = os.path.join(tmp, "v%d" % k)
        ff.make_fixture(family, folder)
        if change:
            edit_config(folder, change)
        ref = rf.forward(rf.load_model(folder), TOKENS).astype(np.float64)
        for prec, tol in (("f64", 1e-10), ("f32", 1e-5)):
            got, why = dump(folder, prec, os.path.join(tmp, "z.bin"))
            if got is None:
                check("%s, %s: logits" % (what, prec), False, why[:200])
                continue
            err = rel(got, ref)
            check("%s, %s: logits against the reference" % (what, prec), err <= tol,
                  "rel %.1e, tol %.0e" % (err, tol))


def check_cli(tmp):
    folder = os.path.join(tmp, "cli")
    ff.make_fixture("deepseek-v3", folder)
    ids = ",".join(map(str, TOKENS[:8]))
    rc, out, err = run(ROPEFOLD, "logits", "--model", folder, "--tokens", ids)
    check("logits on a DeepSeek-V3 folder prints the top tokens", rc == 0 and out.strip(),
          err.strip()[:160])
    rc, out, err = run(ROPEFOLD, "logits", "--model", folder, "--tokens", ids, "--json")
    ok = rc == 0
    try:
        doc = json.loads(out)
    except ValueError:
        ok, doc = False, None
    check("logits --json on a DeepSeek-V3 folder is one JSON document", ok and doc,
          err.strip()[:160])
    npy = os.path.join(tmp, "l.npy")
    rc, _, err = run(ROPEFOLD, "logits", "--model", folder, "--tokens", ids, "--precision",
                     "f64", "--out", npy)
    ref = rf.forward(rf.load_model(folder), TOKENS[:8])
    e = rel(np.load(npy).astype(np.float64), ref) if rc == 0 else float("inf")
    check("logits --out .npy of a DeepSeek-V3 folder (float32 file)", e < 1e-6,
          err.strip()[:160] or "rel %.1e" % e)
    # verify's model level on a fold, and on the fold with one expert moved
    fold = os.path.join(tmp, "fold")
    rc, _, err = run(ROPEFOLD, "fold", "--model", folder, "--out", fold)
    check("fold of a DeepSeek-V3 folder", rc == 0, err.strip()[:160])
    rc, out, err = run(ROPEFOLD, "verify", folder, fold, "--logits", "--json")
    level = None
    try:
        level = json.loads(out).get("model_level")
    except (ValueError, AttributeError):
        pass
    good = rc == 0 and level is not None and level.get("holds") is True
    check("verify --logits: the MLA fold's model level holds", good,
          "" if good else (err.strip() or out.strip())[:200])
    bad = os.path.join(tmp, "bad")
    shutil.copytree(folder, bad)
    name = "model.layers.2.mlp.experts.0.down_proj.weight"
    st = os.path.join(bad, "model.safetensors")
    t, _ = ff_tensors(st)
    t[name] = t[name] * 1.5
    write_safetensors(st, t)
    rc, out, err = run(ROPEFOLD, "verify", folder, bad, "--logits", "--json")
    level = None
    try:
        level = json.loads(out).get("model_level")
    except (ValueError, AttributeError):
        pass
    good = level is not None and level.get("holds") is False
    check("verify --logits: an expert scaled by 1.5 breaks the model level", good,
          "" if good else (err.strip() or out.strip())[:200])


def ff_tensors(path):
    tensors, dtypes = rf.read_safetensors(path)
    return dict(tensors), dtypes


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        raw = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h + b"".join(blobs))


if __name__ == "__main__":
    tmp = tempfile.mkdtemp()
    try:
        check_variants(tmp)
        check_cli(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % len(results))
    sys.exit(0 if all(results) else 1)
