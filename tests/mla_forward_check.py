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
`info`'s experts and `ropefold logits` on an MLA folder (text, JSON, .npy), `verify --logits`
on an MLA fold (the model level holds) and on a tampered one (it does not).
Last, the same weights as llama.cpp's deepseek2 GGUF stores them (names as
its converter writes them, experts stacked [E, F, D], the dense leading
layers, expert_weights_scale/norm, expert_gating_func, expert groups) give
the HF folder's reference logits, where llama.cpp's graph and DeepSeek's
code compute the same thing (no yarn: the two apply its mscale
differently; V2-Lite's greedy top-k and V3's grouped sigmoid routing).
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


def v3_no_groups(c):
    c.pop("n_group", None)
    c.pop("topk_group", None)


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
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    rc, out, err = run(ROPEFOLD, "info", "--json", folder)
    moe = (json.loads(out) if rc == 0 else {}).get("moe") or {}
    want = {"experts": cfg["n_routed_experts"], "experts_per_tok": cfg["num_experts_per_tok"],
            "sparse_layers": [l for l in range(cfg["num_hidden_layers"])
                              if l >= cfg["first_k_dense_replace"]],
            "expert_intermediate_size": cfg["moe_intermediate_size"]}
    got = {k: moe.get(k) for k in want}
    check("info --json names DeepSeek-V3's experts as config.json has them", got == want,
          "" if got == want else "%s vs %s %s" % (got, want, err.strip()[:100]))
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


ATTN = {"q_a_proj": "attn_q_a", "q_a_layernorm": "attn_q_a_norm", "q_b_proj": "attn_q_b",
        "q_proj": "attn_q", "kv_a_proj_with_mqa": "attn_kv_a_mqa",
        "kv_a_layernorm": "attn_kv_a_norm", "kv_b_proj": "attn_kv_b", "o_proj": "attn_output"}


def to_gguf(folder, path, kv_b="whole"):
    """The HF DeepSeek folder as llama.cpp's convert_hf_to_gguf.py writes
    deepseek2; kv_b "split" as its conversions since 2025 do (kv_b_proj cut
    per head into attn_k_b, the k_nope rows transposed, and attn_v_b; the
    _mla keys; head_count_kv 1), "both" with attn_kv_b kept beside them."""
    cfg, t, _ = rf.read_hf_folder(folder)
    L, E = cfg["num_hidden_layers"], cfg["n_routed_experts"]
    out = {"token_embd.weight": t["model.embed_tokens.weight"],
           "output_norm.weight": t["model.norm.weight"]}
    if "lm_head.weight" in t:
        out["output.weight"] = t["lm_head.weight"]
    for l in range(L):
        p, b = "model.layers.%d." % l, "blk.%d." % l
        out[b + "attn_norm.weight"] = t[p + "input_layernorm.weight"]
        out[b + "ffn_norm.weight"] = t[p + "post_attention_layernorm.weight"]
        for hf, gg in ATTN.items():
            if p + "self_attn." + hf + ".weight" in t:
                out[b + gg + ".weight"] = t[p + "self_attn." + hf + ".weight"]
        if kv_b != "whole":
            H, dn, dv = cfg["num_attention_heads"], cfg["qk_nope_head_dim"], cfg["v_head_dim"]
            w = out[b + "attn_kv_b.weight"] if kv_b == "both" else out.pop(b + "attn_kv_b.weight")
            w = w.reshape(H, dn + dv, -1)
            out[b + "attn_k_b.weight"] = np.ascontiguousarray(w[:, :dn, :].transpose(0, 2, 1))
            out[b + "attn_v_b.weight"] = np.ascontiguousarray(w[:, dn:, :])
        for g in ("gate", "up", "down"):
            if p + "mlp.%s_proj.weight" % g in t:
                out[b + "ffn_%s.weight" % g] = t[p + "mlp.%s_proj.weight" % g]
                continue
            out[b + "ffn_%s_exps.weight" % g] = np.stack(
                [t[p + "mlp.experts.%d.%s_proj.weight" % (e, g)] for e in range(E)])
            out[b + "ffn_%s_shexp.weight" % g] = t[p + "mlp.shared_experts.%s_proj.weight" % g]
        if p + "mlp.gate.weight" in t:
            out[b + "ffn_gate_inp.weight"] = t[p + "mlp.gate.weight"]
        if p + "mlp.gate.e_score_correction_bias" in t:
            out[b + "exp_probs_b.bias"] = t[p + "mlp.gate.e_score_correction_bias"]
    v3 = cfg["model_type"] == "deepseek_v3"
    kv = [("general.architecture", "s", "deepseek2"), ("block_count", "u", L),
          ("context_length", "u", cfg["max_position_embeddings"]),
          ("embedding_length", "u", cfg["hidden_size"]),
          ("feed_forward_length", "u", cfg["intermediate_size"]),
          ("attention.head_count", "u", cfg["num_attention_heads"]),
          ("attention.head_count_kv", "u", 1 if kv_b != "whole" else cfg["num_attention_heads"]),
          ("attention.kv_lora_rank", "u", cfg["kv_lora_rank"]),
          ("rope.dimension_count", "u", cfg["qk_rope_head_dim"]),
          ("rope.freq_base", "f", cfg["rope_theta"]),
          ("attention.layer_norm_rms_epsilon", "f", cfg["rms_norm_eps"]),
          ("leading_dense_block_count", "u", cfg["first_k_dense_replace"]),
          ("expert_count", "u", E), ("expert_used_count", "u", cfg["num_experts_per_tok"]),
          ("expert_shared_count", "u", cfg["n_shared_experts"]),
          ("expert_feed_forward_length", "u", cfg["moe_intermediate_size"]),
          ("expert_weights_scale", "f", cfg["routed_scaling_factor"]),
          ("expert_weights_norm", "b", cfg["norm_topk_prob"]),
          ("expert_gating_func", "u", 2 if v3 else 1)]
    dk, dv = cfg["qk_nope_head_dim"] + cfg["qk_rope_head_dim"], cfg["v_head_dim"]
    if kv_b == "whole":
        kv += [("attention.key_length", "u", dk), ("attention.value_length", "u", dv)]
    else:
        lkv = cfg["kv_lora_rank"]
        kv += [("attention.key_length", "u", lkv + cfg["qk_rope_head_dim"]),
               ("attention.value_length", "u", lkv),
               ("attention.key_length_mla", "u", dk), ("attention.value_length_mla", "u", dv)]
    if cfg.get("q_lora_rank"):
        kv.append(("attention.q_lora_rank", "u", cfg["q_lora_rank"]))
    if v3:
        kv += [("expert_group_count", "u", cfg["n_group"]),
               ("expert_group_used_count", "u", cfg["topk_group"])]
    gf.write(path, "deepseek2", kv, out)


def check_v3_default_groups(tmp):
    """A V3 config.json without n_group and topk_group: DeepseekV3Config's 8
    and 4, which HF's router (view(-1, n_group, E // n_group).topk(2)) cannot
    run on the fixture's 8 experts; the reference, following it, refuses,
    and so does ropefold, in one line naming the defaults, while attention
    alone (info, check, fold) needs no router."""
    folder = os.path.join(tmp, "v3-no-groups")
    ff.make_fixture("deepseek-v3", folder)
    edit_config(folder, v3_no_groups)
    try:
        rf.forward(rf.load_model(folder), TOKENS)
        ref_refused = False
    except ValueError:
        ref_refused = True
    rc, out, err = run(ROPEFOLD, "logits", "--model", folder, "--tokens", "1,2,3")
    lines = err.strip().splitlines()
    good = (ref_refused and rc == 2 and len(lines) == 1 and not out.strip() and
            "8 groups, 4 kept" in err and "DeepseekV3Config's defaults" in err)
    check("V3 without n_group/topk_group: DeepseekV3Config's 8 and 4 on 8 experts, refused "
          "as HF's router cannot run them", good, err.strip()[:240])
    rc, _, err = run(ROPEFOLD, "check", "--model", folder, "--layer", "1")
    check("... while check of its attention runs", rc == 0, err.strip()[:160])
    edit_config(folder, lambda c: c.update({"n_group": 4}))
    ref = rf.forward(rf.load_model(folder), TOKENS).astype(np.float64)
    got, why = dump(folder, "f64", os.path.join(tmp, "z.bin"))
    err = rel(got, ref) if got is not None else float("inf")
    check("V3 with n_group 4 and topk_group DeepseekV3Config's 4: the reference logits",
          err <= 1e-10, why[:200] or "rel %.1e" % err)


def check_gguf(tmp):
    for family in ("deepseek-v2-lite", "deepseek-v3"):
        folder = os.path.join(tmp, "g-" + family)
        ff.make_fixture(family, folder)
        edit_config(folder, no_yarn)
        ref = rf.forward(rf.load_model(folder), TOKENS).astype(np.float64)
        whole = {}
        for kv_b in ("whole", "split", "both"):
            path = "%s-%s.gguf" % (folder, kv_b)
            to_gguf(folder, path, kv_b)
            for prec, tol in (("f64", 1e-10), ("f32", 1e-5)):
                got, why = dump(path, prec, os.path.join(tmp, "z.bin"))
                err = rel(got, ref) if got is not None else float("inf")
                check("%s as GGUF deepseek2 (kv_b %s), %s: the HF folder's reference logits"
                      % (family, kv_b, prec), err <= tol,
                      why[:200] or "rel %.1e, tol %.0e" % (err, tol))
                if kv_b == "whole":
                    whole[prec] = got
                elif got is not None and whole.get(prec) is not None:
                    same = np.array_equal(got, whole[prec])
                    check("%s, kv_b %s, %s: logits bit for bit those of attn_kv_b"
                          % (family, kv_b, prec), same,
                          "" if same else "rel %.1e" % rel(got, whole[prec]))
        # fold the split file, then the model level of verify --logits
        path, fold = folder + "-split.gguf", folder + "-split-fold.gguf"
        rc, _, err = run(ROPEFOLD, "fold", "--model", path, "--out", fold)
        rc2, out, err2 = run(ROPEFOLD, "verify", path, fold, "--logits", "--json") if rc == 0 \
            else (rc, "", err)
        level = None
        try:
            level = json.loads(out).get("model_level")
        except (ValueError, AttributeError):
            pass
        good = rc2 == 0 and level is not None and level.get("holds") is True
        check("%s, kv_b split: fold, then verify --logits: the model level holds" % family,
              good, "" if good else (err2.strip() or out.strip())[:200])


if __name__ == "__main__":
    tmp = tempfile.mkdtemp()
    try:
        check_variants(tmp)
        check_cli(tmp)
        check_v3_default_groups(tmp)
        check_gguf(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % len(results))
    sys.exit(0 if all(results) else 1)
