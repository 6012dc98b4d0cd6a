#!/usr/bin/python3
"""The model families of tests/family_fixtures.py through ropefold, as TAP.

For every family: `info` and `info --json` (the layer kinds, windows,
soft-caps, experts and M-RoPE sections against the plan that
tests/reference_forward.py builds from the config by the families' own HF
rules), and `check --json` on every layer at T = 8 and T = 24 (and 16, 17: both
sides of the phi3-longrope and llama-dynamic switch at 16): the layer's frequencies
and attention factor against the reference's RoPE functions, written from
HF's modeling_rope_utils.py, never from ropefold. DeepSeek's MLA folders:
info's MLA dims, and check on every layer. Then `fold` on the families that add
something, with the reference's whole forward pass (which applies the
windows, soft-caps, longrope at T and M-RoPE positions) equal on the
original and the fold, and far from equal on a non-commuting fold. Last,
bad values of every key read for these families: exit 2, one stderr line
naming config.json and the key.
"""
import copy
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
results = []


def check(what, good, detail=""):
    results.append(bool(good))
    print("%s %d - %s%s" % ("ok" if good else "not ok", len(results), what,
                            " (%s)" % detail if detail else ""))
    sys.stdout.flush()


def run(*args):
    p = subprocess.run([ROPEFOLD] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True)
    return p.returncode, p.stdout, p.stderr


def run_json(*args):
    rc, out, err = run(*args)
    try:
        return rc, json.loads(out), err
    except ValueError:
        return rc, None, err


def reference_model(folder):
    return rf.load_model(folder)


def ref_frequencies(rope, T):
    """The reference's inv_freq and attention factor of one layer at T."""
    inv, att = rf.ROPE_SCALINGS[rf.rope_type(rope["scaling"])](rope, T)
    return np.asarray(inv, dtype=np.float64), float(att)


def close(a, b, tol):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= tol * np.abs(b) + 1e-300))


# ---- info and check on every family ------------------------------------------

def check_info(name, folder, m):
    rc, doc, err = run_json("info", "--json", folder)
    if rc != 0 or doc is None:
        check("%s: info --json" % name, False, err.strip())
        return
    cfg = m.config
    L = cfg["num_hidden_layers"]
    windows = [layer["attn"]["window"] for layer in m.layers]
    sliding = [t == "sliding_attention" for t in doc["layer_types"]]
    want_sliding = [w is not None for w in windows]
    check("%s: info layer_types as the reference's windows" % name,
          len(sliding) == L and sliding == want_sliding, "%s vs %s" % (sliding, want_sliding))
    want_w = next((w for w in windows if w), None)
    check("%s: info sliding_window %s" % (name, want_w), doc["sliding_window"] == want_w,
          "got %s" % doc["sliding_window"])
    cap = m.layers[0]["attn"]["cap"]
    check("%s: info soft-caps" % name,
          doc["attn_logit_softcapping"] == cap and doc["final_logit_softcapping"] == m.final_cap,
          "got %s, %s" % (doc["attn_logit_softcapping"], doc["final_logit_softcapping"]))
    moe = [layer["mlp"] for layer in m.layers if layer["mlp"]["kind"] == "moe"]
    if moe:
        r = moe[0]
        sparse = [i for i, layer in enumerate(m.layers) if layer["mlp"]["kind"] == "moe"]
        got = doc["moe"] or {}
        want = (r["E"], r["k"], bool(r["normalize"]), sparse)
        have = (got.get("experts"), got.get("experts_per_tok"), got.get("norm_topk_prob"),
                got.get("sparse_layers"))
        check("%s: info experts, top-k, renormalisation, sparse layers" % name, have == want,
              "%s vs %s" % (have, want))
        shared = cfg.get("shared_expert_intermediate_size")
        check("%s: info shared expert" % name,
              got.get("shared_expert_intermediate_size") == (shared or None))
    else:
        check("%s: info moe null" % name, doc["moe"] is None)
    sec = (m.layers[0]["attn"]["rope"] or {}).get("mrope_section")
    check("%s: info mrope_section %s" % (name, sec), doc["rope"]["mrope_section"] == sec,
          "got %s" % doc["rope"]["mrope_section"])
    rc, text, err = run("info", folder)
    check("%s: info (text)" % name, rc == 0 and err == "", err.strip())
    if want_w:
        check("%s: info text names the window" % name, "window      %d tokens" % want_w in text)
    if cap:
        check("%s: info text names the soft-cap" % name, "softcap     scores %g" % cap in text)


def check_layers(name, folder, m):
    # either side of a switch at 16 positions, and right at it
    Ts = (8, 16, 17, 24) if name in ("phi3-longrope", "llama-dynamic") else (8, 24)
    for T in Ts:
        for l, layer in enumerate(m.layers):
            a = layer["attn"]
            rc, doc, err = run_json("check", "--json", "--model", folder, "--layer", str(l),
                                    "--seq", str(T))
            if rc != 0 or doc is None:
                check("%s layer %d T=%d: check" % (name, l, T), False, err.strip())
                continue
            c = doc["config"]
            inv, att = ref_frequencies(a["rope"], T)
            # the JSON holds 6 significant digits: 5e-6 of rounding
            good = close(c["rope_frequencies"], inv, 1e-5) and abs(
                c["rope_attention_factor"] - att) <= 1e-5 * att
            check("%s layer %d T=%d: frequencies and attention factor as the reference's"
                  % (name, l, T), good, "%s x %s vs %s x %s" % (
                      c["rope_frequencies"][:4], c["rope_attention_factor"], list(inv[:4]), att))
            check("%s layer %d T=%d: window %s, soft-cap %s" % (name, l, T, a["window"], a["cap"]),
                  c["sliding_window"] == a["window"] and c["attn_softcap"] == a["cap"]
                  and c["window_softcap_applied"] is True,
                  "got %s, %s" % (c["sliding_window"], c["attn_softcap"]))
            # scores that hold under a window or a cap: the explanation says
            # why they still do (Gemma 3's learned QK-norm breaks them here)
            said = "the fold leaves equal: masked or capped" in doc["explanation"]
            masked = bool(a["window"] or a["cap"]) and doc["levels"]["score"]["holds"]
            check("%s layer %d T=%d: the explanation %s the window and the cap"
                  % (name, l, T, "names" if masked else "does not name"),
                  said == masked, doc["explanation"][-200:])


def check_mla(name, folder):
    """DeepSeek's MLA folders: info names the dims as config.json has them,
    and check holds on every layer (tests/mla.sh compares ropefold's MLA
    attention with a NumPy MLA written from DeepSeek's code)."""
    cfg = json.load(open(os.path.join(folder, "config.json")))
    keys = ("kv_lora_rank", "q_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")
    want = {k: cfg[k] for k in keys}
    rc, doc, err = run_json("info", "--json", folder)
    mla = (doc or {}).get("mla") or {}
    got = {k: mla.get(k) for k in keys}
    check("%s: info names the MLA dims" % name, rc == 0 and got == want,
          err.strip()[:200] or "%s vs %s" % (got, want))
    for l in range(cfg["num_hidden_layers"]):
        rc, out, err = run("check", "--model", folder, "--layer", str(l), "--seq", "24")
        check("%s layer %d: check holds on the MLA layer" % (name, l), rc == 0, err.strip()[:200])


# ---- the fold, judged by the whole model -------------------------------------

FOLDED = ["phi3-longrope", "gemma2", "gemma3", "qwen2-vl", "mixtral", "qwen2-moe", "mistral",
          "llama3", "qwen2-swa", "llama-dynamic"]
TOKENS = [int(t) for t in np.random.default_rng(3).integers(3, 96, 24)]


def check_fold(name, folder, work):
    out = os.path.join(work, name + "-folded")
    rc, _, err = run("fold", "--model", folder, "--out", out)
    check("%s: fold" % name, rc == 0, err.strip()[-200:])
    if rc:
        return
    rc, _, err = run("verify", folder, out)
    check("%s: verify calls the fold a fold" % name, rc == 0, err.strip()[-200:])
    a, b = reference_model(folder), reference_model(out)
    for T in (8, 24):
        x, y = rf.forward(a, TOKENS[:T]), rf.forward(b, TOKENS[:T])
        e = float(np.max(np.abs(x - y)) / np.max(np.abs(x)))
        check("%s: the reference's logits of the fold at T=%d equal the original's" % (name, T),
              e < 1e-5, "rel %.1e" % e)
    bad = os.path.join(work, name + "-noncommuting")
    rc, _, err = run("fold", "--model", folder, "--out", bad, "--drop", "commutes")
    if rc == 0:
        x, y = rf.forward(a, TOKENS), rf.forward(reference_model(bad), TOKENS)
        e = float(np.max(np.abs(x - y)) / np.max(np.abs(x)))
        check("%s: ... and a non-commuting fold's differ" % name, e > 1e-3, "rel %.1e" % e)
    else:
        check("%s: non-commuting fold" % name, False, err.strip()[-200:])


# ---- bad values --------------------------------------------------------------

def pop(cfg, key):
    cfg.pop(key, None)
    return cfg


BAD = [
    ("phi3-longrope", lambda c: c["rope_scaling"].update(short_factor="abc"),
     "rope_scaling.short_factor: bad value of type string"),
    ("phi3-longrope", lambda c: c["rope_scaling"].update(short_factor=[1, 1, 1],
                                                         long_factor=[1, 2, 4]),
     "rope_scaling.short_factor: 3 factors, but rotary dim 8 has 4 pairs"),
    ("phi3-longrope", lambda c: c["rope_scaling"].update(long_factor=[1, 2, 4, 8, 16]),
     "rope_scaling.long_factor: 5 entries, but short_factor has 4"),
    ("phi3-longrope", lambda c: c["rope_scaling"].update(short_factor=[1, -1, 1, 1]),
     "rope_scaling.short_factor[1]: bad value -1"),
    ("phi3-longrope", lambda c: c["rope_scaling"].update(long_factor=[1, 2, "x", 8]),
     "rope_scaling.long_factor[2]: bad value of type string"),
    ("phi3-longrope", lambda c: pop(c["rope_scaling"], "long_factor"),
     "rope_scaling.long_factor: missing"),
    ("phi3-longrope", lambda c: c.update(original_max_position_embeddings=-16),
     "original_max_position_embeddings: bad value -16"),
    ("mistral", lambda c: c.update(sliding_window=-8), "sliding_window: bad value -8"),
    ("mistral", lambda c: c.update(sliding_window="eight"),
     "sliding_window: bad value of type string"),
    ("gemma2", lambda c: c.update(layer_types=["sliding_attention", "full_attention"]),
     "layer_types: 2 entries, but num_hidden_layers is 3"),
    ("gemma2", lambda c: c.update(layer_types=["sliding_attention", "chunked_attention",
                                               "full_attention"]),
     "layer_types[1]: 'chunked_attention' is not a layer type ropefold knows"),
    ("gemma2", lambda c: c.update(layer_types=["sliding_attention", 1, "full_attention"]),
     "layer_types[1]: bad value of type integer"),
    ("gemma2", lambda c: c.update(layer_types="sliding_attention"),
     "layer_types: bad value of type string"),
    ("gemma2", lambda c: c.update(attn_logit_softcapping=-4),
     "attn_logit_softcapping: bad value -4"),
    ("gemma2", lambda c: c.update(final_logit_softcapping="5"),
     "final_logit_softcapping: bad value of type string"),
    ("gemma3", lambda c: c.update(sliding_window_pattern=0),
     "sliding_window_pattern"),
    ("qwen2-swa", lambda c: c.update(use_sliding_window="yes"),
     "use_sliding_window: bad value of type string (must be true or false)"),
    ("qwen2-swa", lambda c: c.update(max_window_layers=-1), "max_window_layers: bad value -1"),
    ("qwen2-moe", lambda c: c.update(num_experts_per_tok=9), "num_experts_per_tok: bad value 9"),
    ("qwen2-moe", lambda c: pop(c, "num_experts_per_tok"), "num_experts_per_tok is missing"),
    ("qwen2-moe", lambda c: c.update(mlp_only_layers=[7]), "mlp_only_layers[0]: bad value 7"),
    ("qwen2-moe", lambda c: c.update(mlp_only_layers=0),
     "mlp_only_layers: bad value of type integer"),
    ("qwen2-moe", lambda c: c.update(norm_topk_prob=1),
     "norm_topk_prob: bad value of type integer"),
    ("qwen2-moe", lambda c: c.update(decoder_sparse_step=0), "decoder_sparse_step: bad value 0"),
    ("qwen2-moe", lambda c: c.update(num_experts=4),
     "gives [4, 64] (experts, D)"),
    ("qwen2-moe", lambda c: c.update(mlp_only_layers=[]),
     "layer 0: config.json gives 8 experts, but the router model.layers.0.mlp.gate.weight "
     "is missing"),
    ("mixtral", lambda c: c.update(num_local_experts=-4), "num_local_experts: bad value -4"),
    ("qwen2-vl", lambda c: c["rope_scaling"].update(mrope_section=[2, 3]),
     "rope_scaling.mrope_section: 2 entries"),
    ("qwen2-vl", lambda c: c["rope_scaling"].update(mrope_section=[2, 3, 4]),
     "rope_scaling.mrope_section [2, 3, 4] sums to 9 pairs, but rotary dim 16 has 8"),
    ("qwen2-vl", lambda c: c["rope_scaling"].update(mrope_section=[2, -3, 3]),
     "rope_scaling.mrope_section[1]: bad value -3"),
]


def nest_qwen2_vl(folder):
    """Qwen2-VL as newer transformers save it: the text keys under
    text_config (model_type qwen2_vl_text), the text tensors under
    model.language_model."""
    path = os.path.join(folder, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    keep = ("architectures", "model_type", "vision_config", "torch_dtype",
            "transformers_version", "vision_start_token_id", "vision_end_token_id",
            "image_token_id", "video_token_id")
    text = {k: v for k, v in cfg.items() if k not in keep}
    text["model_type"] = "qwen2_vl_text"
    top = {k: v for k, v in cfg.items() if k in keep}
    top["text_config"] = text
    with open(path, "w") as f:
        json.dump(top, f, indent=2)
    tensors, _ = rf.read_safetensors(os.path.join(folder, "model.safetensors"))
    renamed = {("model.language_model." + k[len("model."):] if k.startswith("model.") else k):
               v.astype(np.float32) for k, v in tensors.items()}
    ff.write_safetensors(os.path.join(folder, "model.safetensors"), renamed, "f32")


def check_nested(work):
    folder = os.path.join(work, "qwen2-vl-nested")
    ff.make_fixture("qwen2-vl", folder)
    nest_qwen2_vl(folder)
    rc, doc, err = run_json("info", "--json", folder)
    check("qwen2-vl nested under text_config: info", rc == 0 and doc is not None and err == ""
          and doc["arch"] == "qwen2_vl_text" and doc["rope"]["mrope_section"] == [2, 3, 3]
          and doc["tensors"]["q"] == "model.language_model.layers.0.self_attn.q_proj.weight",
          err.strip() or str(doc and (doc["arch"], doc["rope"]["mrope_section"])))
    m = reference_model(folder)
    check_layers("qwen2-vl-nested", folder, m)
    check_fold("qwen2-vl-nested", folder, work)


def check_flags(work):
    """Flags against what a family fixes: --rotary-dim against longrope's
    table is refused naming the flag; --rope-scaling replaces the rule."""
    folder = os.path.join(work, "phi3-longrope")
    rc, out, err = run("check", "--model", folder, "--rotary-dim", "4")
    check("longrope with --rotary-dim 4: exit 2, one line naming the flag",
          rc == 2 and out == "" and err.count("\n") == 1
          and "--rotary-dim: 4 does not fit" in err and "4 factors, for rotary dim 8" in err,
          err.strip())
    rc, doc, err = run_json("check", "--json", "--model", folder, "--rope-scaling", "linear:2")
    want = list(rf.default_inv_freq(10000.0, 8) / 2)
    check("longrope with --rope-scaling linear:2: the flag's rule",
          rc == 0 and doc and doc["config"]["rope_scaling"] == "linear:2"
          and close(doc["config"]["rope_frequencies"], want, 1e-5)
          and doc["config"]["longrope_factors"] is None, err.strip())


def check_bad(work):
    for i, (family, edit, want) in enumerate(BAD):
        folder = os.path.join(work, "bad%d" % i)
        ff.make_fixture(family, folder)
        path = os.path.join(folder, "config.json")
        with open(path) as f:
            cfg = json.load(f)
        edit(cfg)
        with open(path, "w") as f:
            json.dump(cfg, f)
        rc, out, err = run("info", folder)
        lines = err.strip().split("\n")
        check("%s with a bad key: exit 2, one line naming %s" % (family, want),
              rc == 2 and out == "" and len(lines) == 1 and "config.json" in err and want in err
              and folder in err, err.strip()[:240])
        shutil.rmtree(folder)


def main():
    work = tempfile.mkdtemp(prefix="ropefold-families-")
    try:
        for name in ff.FAMILIES:
            folder = os.path.join(work, name)
            ff.make_fixture(name, folder)
            if name.startswith("deepseek"):
                check_mla(name, folder)
                continue
            m = reference_model(folder)
            check_info(name, folder, m)
            check_layers(name, folder, m)
            if name in FOLDED:
                check_fold(name, folder, work)
        check_nested(work)
        check_flags(work)
        check_bad(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("1..%d" % len(results))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
