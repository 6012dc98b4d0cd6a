#!/usr/bin/python3
"""Self-checks of tests/reference_forward.py, printed as TAP.

Ground truth where it exists (the shared real checkpoints, when present):
another project's f32 logits of tiny_llama_hf, llama2.c's greedy stories text
of stories260K, and the legacy RoPE tables stored inside stories260K.bin. Then
identities that hold by the families' definitions, each paired with a case
where the quantity must change, so that every check can fail.
"""
import copy
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import family_fixtures as ff  # noqa: E402
import reference_forward as rf  # noqa: E402

results = []


def check(what, good, detail=""):
    results.append((bool(good), what, detail))
    n = len(results)
    print("%s %d - %s%s" % ("ok" if good else "not ok", n, what,
                            " (%s)" % detail if detail else ""))
    sys.stdout.flush()


def skip(what, why):
    results.append((True, what, why))
    print("ok %d - %s # SKIP %s" % (len(results), what, why))


def rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def fixture(family, seed=1, **kw):
    cfg, tensors = ff.build_fixture(family, seed, **kw)
    return cfg, {k: v.astype(np.float64) for k, v in tensors.items()}


def model(cfg, tensors, dtype=np.float64, embed_scale="hf"):
    return rf.Model(copy.deepcopy(cfg), tensors, {k: "F32" for k in tensors}, dtype,
                    embed_scale)


TOKENS = [int(t) for t in np.random.default_rng(7).integers(3, 96, 24)]


# ---- ground truth: the shared checkpoints ------------------------------------

def shared_models_folder():
    """$ROPEFOLD_SHARED_MODELS, else ../shared/models beside the clone's top."""
    return os.environ.get("ROPEFOLD_SHARED_MODELS") or os.path.normpath(os.path.join(
        os.environ.get("SRCDIR", os.path.join(HERE, "..")), "..", "shared", "models"))


def check_golden_logits(models):
    folder = os.path.join(models, "tiny_llama_hf")
    meta = open(os.path.join(folder, "golden_meta.txt")).read()
    tokens = [int(t) for t in meta.split("tokens=")[1].split(",")]
    gold = np.fromfile(os.path.join(folder, "golden_logits_f32_40x112.bin"), "<f4")
    gold = gold.reshape(len(tokens), -1).astype(np.float64)
    for name, dtype in (("f64", np.float64), ("f32", np.float32)):
        err = rel(rf.forward(rf.load_model(folder, dtype), tokens).astype(np.float64), gold)
        check("tiny_llama_hf golden logits in %s" % name, err < 3e-6, "rel %.1e" % err)
    m = rf.load_model(folder)
    for layer in m.layers:
        layer["attn"]["rope"]["layout"] = "interleaved"
    err = rel(rf.forward(m, tokens), gold)
    check("tiny_llama_hf with interleaved pairing misses the golden logits", err > 0.03,
          "rel %.2f" % err)


def check_stories(models):
    path = os.path.join(models, "stories260K.bin")
    vocab = rf.read_llama2c_tokenizer(os.path.join(models, "tok512.bin"))
    want = open(os.path.join(models, "stories260K_greedy200.txt"), "rb").read()
    m = rf.load_model(path)
    got = rf.llama2c_story(m, vocab, 200)
    check("stories260K greedy 200 steps reproduces run.c's text byte for byte", got == want,
          "%d of %d bytes" % (len(got), len(want)))
    for layer in m.layers:
        layer["attn"]["rope"]["layout"] = "half"
    got = rf.llama2c_story(m, vocab, 12)
    check("stories260K with half-split pairing departs within 12 tokens",
          not want.startswith(got), repr(got[:40]))


def check_stories_rope_tables(models):
    """stories260K.bin carries run.c's legacy tables cos/sin(pos 10000^(-2i/8))."""
    blob = open(os.path.join(models, "stories260K.bin"), "rb").read()
    dim, hidden, L, H, G, vocab, seq = np.frombuffer(blob[:28], "<i4")
    hd, kv = dim // H, G * (dim // H)
    n = abs(vocab) * dim + L * (2 * dim + 2 * dim * dim + 2 * kv * dim + 3 * dim * hidden) + dim
    tables = np.frombuffer(blob, "<f4", 2 * seq * (hd // 2), 28 + 4 * n).reshape(2, seq, hd // 2)
    cos, sin = rf.rope_tables(rf.load_model(os.path.join(models, "stories260K.bin"))
                              .layers[0]["attn"]["rope"], np.arange(seq), np.float64)
    err = max(np.max(np.abs(cos - tables[0])), np.max(np.abs(sin - tables[1])))
    check("default RoPE frequencies equal the tables stored in stories260K.bin", err < 1e-4,
          "max abs %.1e" % err)


# ---- RoPE scalings against their definitions ---------------------------------

def rope_of(family, seq_len, **over):
    cfg, tensors = fixture(family)
    cfg.update(over)
    a = model(cfg, tensors).layers[-1]["attn"]
    return a["rope"], rf.rope_tables(a["rope"], np.arange(seq_len), np.float64)


def inv_freq(rope, seq_len):
    return rf.ROPE_SCALINGS[rf.rope_type(rope["scaling"])](rope, seq_len)


def check_rope_scalings():
    base = rf.default_inv_freq(10000.0, 16)
    rope, _ = rope_of("llama3", 8)
    inv, _ = inv_freq(rope, 8)
    ratio = base / inv                 # pair 0 fast (kept), 1-2 smoothed, 3-7 / 8
    check("llama3: fast pair kept, slow pairs divided by factor, middle smoothed",
          abs(ratio[0] - 1) < 1e-12 and np.allclose(ratio[3:], 8)
          and all(1 < r < 8 for r in ratio[1:3]), np.array2string(ratio, precision=2))
    rope, _ = rope_of("llama-linear", 8)
    rope0, (cos0, sin0) = rope_of("llama", 20)
    cos2, sin2 = rf.rope_tables(rope, 2 * np.arange(20), np.float64)
    cos1, _ = rf.rope_tables(rope, np.arange(20), np.float64)
    check("linear factor 2: position 2p equals default RoPE at p",
          np.allclose(cos2, cos0, atol=1e-14) and np.allclose(sin2, sin0, atol=1e-14)
          and not np.allclose(cos1, cos0))
    rope, _ = rope_of("llama-dynamic", 8)
    short, _ = inv_freq(rope, 16)
    long_, _ = inv_freq(rope, 40)
    dim = rope["dim"]
    want = rf.default_inv_freq(10000.0 * ((2.0 * 40 / 16) - 1) ** (dim / (dim - 2)), dim)
    check("dynamic NTK: default up to max_position, NTK base past it",
          np.allclose(short, base, rtol=0, atol=0) and np.allclose(long_, want, rtol=1e-14))
    rope, _ = rope_of("llama-yarn", 8)
    inv, att = inv_freq(rope, 8)
    flat = dict(rope, scaling=dict(rope["scaling"], factor=1.0,
                                   original_max_position_embeddings=None), max_pos=32)
    inv1, att1 = inv_freq(flat, 8)
    check("yarn: fast pair kept, slow pairs / factor, attention 0.1 ln 4 + 1; factor 1 is default",
          abs(inv[0] - base[0]) < 1e-15 and np.allclose(inv[2:], base[2:] / 4)
          and abs(att - (0.1 * np.log(4) + 1)) < 1e-15 and np.allclose(inv1, base) and att1 == 1.0)
    rope, _ = rope_of("phi3-longrope", 8)
    s = rope["scaling"]
    b8 = rf.default_inv_freq(10000.0, 8)
    inv_s, att_s = inv_freq(rope, 16)
    inv_l, att_l = inv_freq(rope, 17)
    att_want = np.sqrt(1 + np.log(64 / 16) / np.log(16))
    check("longrope: short factors up to original_max 16, long past it, same attention factor",
          np.allclose(inv_s, b8 / np.array(s["short_factor"]))
          and np.allclose(inv_l, b8 / np.array(s["long_factor"]))
          and abs(att_s - att_want) < 1e-15 and att_l == att_s, "attention %.4f" % att_s)


def check_mrope():
    cfg, tensors = fixture("qwen2-vl")
    plain = dict(cfg, model_type="qwen2", rope_scaling=None)
    a = rf.forward(model(cfg, tensors), TOKENS)
    b = rf.forward(model(plain, tensors), TOKENS)
    check("M-RoPE with equal text positions equals plain RoPE (Qwen2-VL = Qwen2)",
          np.array_equal(a, b))
    T = len(TOKENS)
    text_keys = ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                 "intermediate_size", "rope_scaling", "rope_theta", "vocab_size")
    nested = {k: v for k, v in cfg.items() if k not in text_keys}
    nested["text_config"] = {k: cfg[k] for k in text_keys}
    renamed = {k.replace("model.", "model.language_model.", 1) if k.startswith("model.") else k: v
               for k, v in tensors.items()}
    check("Qwen2-VL saved with text_config and model.language_model.* reads the same",
          np.array_equal(rf.forward(model(nested, renamed), TOKENS), a))
    shift = np.stack([np.arange(T)] * 3) + 5
    jump = np.stack([np.arange(T), np.arange(T) + 5 * (np.arange(T) >= T // 2), np.arange(T)])
    b = rf.forward(model(cfg, tensors), TOKENS, positions=shift)
    c = rf.forward(model(cfg, tensors), TOKENS, positions=jump)
    check("M-RoPE: a shift of all positions changes nothing; a jump in the height "
          "section's positions changes the logits", rel(b, a) < 1e-12 and rel(c, a) > 1e-3)


def check_v5_rope_parameters():
    """transformers v5 writes rope_parameters (theta inside, per layer type for
    Gemma 3) instead of rope_theta / rope_scaling: the same model."""
    for family in ("llama-yarn", "phi3-longrope", "gemma3"):
        cfg, t = fixture(family)
        v5 = dict(cfg)
        theta, scaling = v5.pop("rope_theta"), v5.pop("rope_scaling") or {}
        params = dict(scaling, rope_theta=theta)
        params.setdefault("rope_type", params.pop("type", "default"))
        if family == "gemma3":
            params = {"full_attention": params,
                      "sliding_attention": {"rope_type": "default",
                                            "rope_theta": v5.pop("rope_local_base_freq")}}
        if family == "phi3-longrope":
            params["partial_rotary_factor"] = v5.pop("partial_rotary_factor")
        v5["rope_parameters"] = params
        a = rf.forward(model(cfg, t), TOKENS)
        b = rf.forward(model(v5, t), TOKENS)
        check("%s: v5 rope_parameters equal v4 rope_theta/rope_scaling" % family,
              np.array_equal(a, b))


# ---- attention: windows, GQA, soft-capping -----------------------------------

def check_sliding_window():
    """Mistral, window 8, 2 layers: position m sees tokens down to m - 2*(8-1)."""
    cfg, tensors = fixture("mistral")
    m = model(cfg, tensors)
    toks = list(TOKENS)
    a = rf.forward(m, toks)
    toks[0] = (toks[0] + 1) % 96
    b = rf.forward(m, toks)
    changed = np.max(np.abs(a - b), axis=1) > 0
    check("sliding window 8: token 0 reaches position 14 and no further (HF's n > m - W)",
          changed[14] and not changed[15:].any(), "last reached %d" % np.nonzero(changed)[0][-1])
    full = rf.forward(model(dict(cfg, sliding_window=None), tensors), TOKENS)
    wide = rf.forward(model(dict(cfg, sliding_window=len(TOKENS)), tensors), TOKENS)
    check("a window as long as the sequence equals full attention; 8 does not",
          np.array_equal(full, wide) and rel(a, full) > 1e-3)


def check_disabled_window():
    """Qwen2's real configs write a sliding_window with use_sliding_window
    false: no window, with or without layer_types; Phi-3's window applies."""
    cfg, t = fixture("qwen2")
    a = rf.forward(model(cfg, t), TOKENS)
    b = rf.forward(model(dict(cfg, sliding_window=None), t), TOKENS)
    old = {k: v for k, v in cfg.items() if k != "layer_types"}
    c = rf.forward(model(old, t), TOKENS)
    d = rf.forward(model(dict(old, use_sliding_window=True, max_window_layers=0), t), TOKENS)
    check("Qwen2: sliding_window with use_sliding_window false is no window; true is",
          np.array_equal(a, b) and np.array_equal(a, c) and rel(d, a) > 1e-3)
    cfg, t = fixture("phi3")
    a = rf.forward(model(cfg, t), TOKENS)
    b = rf.forward(model(dict(cfg, sliding_window=None), t), TOKENS)
    check("Phi-3: its sliding_window 12 applies on every layer", rel(a, b) > 1e-3)


def check_gqa():
    """Repeating each kv head H/G times (HF's repeat_kv) gives the same model."""
    cfg, tensors = fixture("llama")
    H, G, hd = rf.head_dims(cfg)
    mha = dict(tensors)
    for l in range(cfg["num_hidden_layers"]):
        for n in ("k_proj", "v_proj"):
            key = "model.layers.%d.self_attn.%s.weight" % (l, n)
            w = tensors[key].reshape(G, hd, -1)
            mha[key] = np.repeat(w, H // G, axis=0).reshape(H * hd, -1)
    a = rf.forward(model(cfg, tensors), TOKENS)
    b = rf.forward(model(dict(cfg, num_key_value_heads=H), mha), TOKENS)
    check("GQA 4/2 equals MHA with each kv head repeated for its group", rel(b, a) < 1e-13)
    bad = dict(mha)
    for l in range(cfg["num_hidden_layers"]):
        for n in ("k_proj", "v_proj"):
            key = "model.layers.%d.self_attn.%s.weight" % (l, n)
            w = tensors[key].reshape(G, hd, -1)
            bad[key] = np.tile(w, (H // G, 1, 1)).reshape(H * hd, -1)
    c = rf.forward(model(dict(cfg, num_key_value_heads=H), bad), TOKENS)
    check("GQA with kv heads tiled (h % G) instead differs", rel(c, a) > 1e-3)


def check_softcap():
    cfg, tensors = fixture("gemma2")
    a = rf.forward(model(cfg, tensors), TOKENS)
    huge = dict(cfg, attn_logit_softcapping=1e9, final_logit_softcapping=1e9)
    none = dict(cfg, attn_logit_softcapping=None, final_logit_softcapping=None)
    b = rf.forward(model(huge, tensors), TOKENS)
    c = rf.forward(model(none, tensors), TOKENS)
    check("Gemma2: softcaps at 1e9 equal no softcaps; the fixture's caps change the logits",
          rel(b, c) < 1e-12 and rel(a, c) > 1e-3, "rel %.1e" % rel(a, c))
    check("Gemma2: final softcap bounds every logit by the cap",
          np.max(np.abs(a)) < cfg["final_logit_softcapping"])


def check_gemma2_as_gemma():
    """Gemma2 with its extras off (no caps, scalar = head_dim, no window, the
    post-norms taken out of the plan) is Gemma with pre_feedforward_layernorm
    playing Gemma's post_attention_layernorm."""
    cfg, tensors = fixture("gemma2")
    g2 = dict(cfg, attn_logit_softcapping=None, final_logit_softcapping=None,
              query_pre_attn_scalar=cfg["head_dim"], sliding_window=None)
    m2 = model(g2, tensors)
    for layer in m2.layers:
        layer["block"] = "pre"
        layer["norms"]["post_attention_layernorm"] = layer["norms"]["pre_feedforward_layernorm"]
    g1 = {k: v for k, v in g2.items() if k in ff.gemma_config(
        "GemmaForCausalLM", "gemma", 1, 1, 1, 1, 1, 1, 1) or k == "tie_word_embeddings"}
    g1.update(model_type="gemma", architectures=["GemmaForCausalLM"])
    t1 = {}
    for k, v in tensors.items():
        if "post_attention_layernorm" in k or "post_feedforward_layernorm" in k:
            continue
        t1[k.replace("pre_feedforward_layernorm", "post_attention_layernorm")] = v
    a = rf.forward(m2, TOKENS)
    b = rf.forward(model(g1, t1), TOKENS)
    check("Gemma2 without softcaps, windows and post-norms equals Gemma", rel(a, b) < 1e-13)
    c = rf.forward(model(cfg, tensors), TOKENS)
    check("Gemma2's sandwich norms, caps and windows change the logits", rel(c, b) > 1e-2)


def check_embed_scale():
    cfg, tensors = fixture("gemma")
    stored = {k: "BF16" for k in tensors}
    hf = rf.Model(copy.deepcopy(cfg), tensors, stored)
    exact = rf.Model(copy.deepcopy(cfg), tensors, stored, embed_scale="exact")
    check("Gemma: sqrt(96) rounded to bf16 as HF does (9.8125) differs from exact",
          hf.embed_scale == 9.8125 and abs(exact.embed_scale - 96 ** 0.5) < 1e-15
          and rel(rf.forward(hf, TOKENS), rf.forward(exact, TOKENS)) > 1e-4)


# ---- fused projections, residual arrangements --------------------------------

def check_phi3_fused():
    """Phi-3's qkv_proj = [q; k; v] and gate_up_proj = [gate; up] split into
    Llama's separate projections give the same model (same partial rotary)."""
    cfg, tensors = fixture("phi3")
    H, G, hd = rf.head_dims(cfg)
    I = cfg["intermediate_size"]
    split = {}
    for k, v in tensors.items():
        if k.endswith("qkv_proj.weight"):
            p = k[:-len("qkv_proj.weight")]
            split[p + "q_proj.weight"], split[p + "k_proj.weight"], split[p + "v_proj.weight"] = \
                np.split(v, [H * hd, (H + G) * hd])
        elif k.endswith("gate_up_proj.weight"):
            p = k[:-len("gate_up_proj.weight")]
            split[p + "gate_proj.weight"], split[p + "up_proj.weight"] = v[:I], v[I:]
        else:
            split[k] = v
    mistral = dict(cfg, model_type="mistral")        # Llama's layer with Phi-3's window
    ml = model(mistral, split)
    for layer in ml.layers:
        layer["attn"]["rope"]["dim"] = int(hd * cfg["partial_rotary_factor"])
    a = rf.forward(model(cfg, tensors), TOKENS)
    b = rf.forward(ml, TOKENS)
    check("Phi-3 fused qkv_proj/gate_up_proj equal the split projections", rel(a, b) < 1e-13)
    for layer in ml.layers:
        layer["attn"]["rope"]["dim"] = hd
    c = rf.forward(ml, TOKENS)
    check("Phi-3 with full instead of partial rotary differs", rel(c, a) > 1e-3)


def check_neox_residual():
    cfg, tensors = fixture("gpt-neox")
    a = rf.forward(model(cfg, tensors), TOKENS)
    b = rf.forward(model(dict(cfg, use_parallel_residual=False), tensors), TOKENS)
    check("GPT-NeoX parallel and sequential residuals differ", rel(a, b) > 1e-3,
          "rel %.2f" % rel(a, b))
    x = np.random.default_rng(3).standard_normal((len(TOKENS), cfg["hidden_size"]))
    m = model(cfg, tensors)
    layer = m.layers[0]
    attn = rf.attention_block(m, layer["attn"], rf.apply_norm(m, layer["norms"]["input_layernorm"], x),
                              np.arange(len(TOKENS)))
    mlp = rf.mlp_block(m, layer["mlp"], rf.apply_norm(
        m, layer["norms"]["post_attention_layernorm"], x))
    check("GPT-NeoX parallel layer is x + attn(ln1 x) + mlp(ln2 x)",
          rel(rf.decoder_layer(m, layer, x, np.arange(len(TOKENS))), x + attn + mlp) < 1e-14)


def check_neox_qkv_order():
    """NeoX's fused rows go per head [q_h; k_h; v_h]; read as [q; k; v] blocks
    (Phi-3's order) the same tensor is a different model."""
    cfg, tensors = fixture("gpt-neox")
    m = model(cfg, tensors)
    a = rf.forward(m, TOKENS)
    renamed = {k.replace("attention.query_key_value", "attention.qkv_proj"): v
               for k, v in tensors.items()}
    m2 = model(cfg, renamed)
    for layer in m2.layers:
        layer["attn"]["fused"] = "phi3"
    b = rf.forward(m2, TOKENS)
    check("GPT-NeoX: the per-head fused QKV order matters", rel(a, b) > 1e-3)


# ---- MoE ---------------------------------------------------------------------

def one_expert(family, drop_shared=True):
    """The family's fixture cut down to a single expert, routed with weight 1."""
    cfg, tensors = fixture(family)
    E_key = "num_local_experts" if family == "mixtral" else "num_experts"
    cfg = dict(cfg, **{E_key: 1, "num_experts_per_tok": 1, "norm_topk_prob": True})
    t = {}
    for k, v in tensors.items():
        if ".experts." in k and ".experts.0." not in k:
            continue
        if k.endswith("gate.weight") and ".mlp." in k or "block_sparse_moe.gate" in k:
            v = v[:1]
        t[k] = v
    return cfg, t


def check_moe_single_expert():
    for family, moe_prefix, names in (("mixtral", "block_sparse_moe.", ("w1", "w3", "w2")),
                                      ("qwen3-moe", "mlp.", ("gate_proj", "up_proj", "down_proj"))):
        cfg, t = one_expert(family)
        dense = {}
        for k, v in t.items():
            if "experts.0." in k:
                name = k.replace(moe_prefix + "experts.0.", "mlp.")
                for src, dst in zip(names, ("gate_proj", "up_proj", "down_proj")):
                    name = name.replace("mlp." + src, "mlp." + dst)
                dense[name] = v
            elif moe_prefix + "gate" not in k:
                dense[k] = v
        base = "qwen3" if family == "qwen3-moe" else "llama"
        a = rf.forward(model(cfg, t), TOKENS)
        b = rf.forward(model(dict(cfg, model_type=base), dense), TOKENS)
        check("%s with one expert, top-1, equals the dense MLP" % family, rel(a, b) < 1e-13)


def check_qwen2_moe_shared_gate():
    cfg, t = fixture("qwen2-moe")
    a = rf.forward(model(cfg, t), TOKENS)
    t2 = dict(t)
    for k in t:
        if k.endswith("shared_expert_gate.weight"):
            t2[k] = t[k] + 1.0
    b = rf.forward(model(cfg, t2), TOKENS)
    check("Qwen2-MoE's shared_expert_gate matters", rel(a, b) > 1e-3)
    m = model(cfg, t)
    check("Qwen2-MoE: mlp_only_layers [0] dense, layers 1-2 sparse with a shared expert",
          m.layers[0]["mlp"]["kind"] == "gated" and all(
              l["mlp"]["kind"] == "moe" and l["mlp"]["shared"] for l in m.layers[1:]))


def plain_route_v3(logits, bias, n_group, topk_group, k, scaling):
    """DeepSeek-V3's routing for one token, written out with Python lists."""
    E = len(logits)
    scores = [1 / (1 + np.exp(-z)) for z in logits]
    choice = [s + b for s, b in zip(scores, bias)]
    size = E // n_group
    group_score = [sum(sorted(choice[g * size:(g + 1) * size])[-2:]) for g in range(n_group)]
    groups = sorted(range(n_group), key=lambda g: -group_score[g])[:topk_group]
    allowed = [e for e in range(E) if e // size in groups]
    chosen = sorted(allowed, key=lambda e: -choice[e])[:k]
    total = sum(scores[e] for e in chosen)
    return {e: scores[e] / total * scaling for e in chosen}


def plain_route_v2(logits, n_group, topk_group, k, scaling, method):
    E = len(logits)
    p = np.exp(logits - max(logits))
    p = list(p / p.sum())
    allowed = list(range(E))
    if method == "group_limited_greedy":
        size = E // n_group
        best = [max(p[g * size:(g + 1) * size]) for g in range(n_group)]
        groups = sorted(range(n_group), key=lambda g: -best[g])[:topk_group]
        allowed = [e for e in range(E) if e // size in groups]
    chosen = sorted(allowed, key=lambda e: -p[e])[:k]
    return {e: p[e] * scaling for e in chosen}


def check_deepseek_routers():
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((64, 8)) * 2
    bias = rng.uniform(0, 0.2, 8)
    r = {"n_group": 4, "topk_group": 2, "k": 3, "scaling": 2.5, "normalize": True,
         "method": "noaux_tc"}
    ids, w = rf.route_deepseek_v3(logits, r, bias)
    ok = all({int(e): float(x) for e, x in zip(ids[t], w[t])}.keys() ==
             plain_route_v3(logits[t], bias, 4, 2, 3, 2.5).keys() and
             np.allclose(sorted(w[t]), sorted(plain_route_v3(logits[t], bias, 4, 2, 3, 2.5).values()))
             for t in range(64))
    check("DeepSeek-V3 router equals the per-token definition (sigmoid, bias, group top-2 sums)", ok)
    differs = any(set(rf.top_k(1 / (1 + np.exp(-logits)), 3)[t]) != set(ids[t]) for t in range(64))
    check("DeepSeek-V3 group limit and bias change some choices against plain top-k", differs)
    for method in ("greedy", "group_limited_greedy"):
        r2 = dict(r, method=method, normalize=False, scaling=1.5)
        ids, w = rf.route_deepseek_v2(logits, r2)
        ok = all(np.allclose([plain_route_v2(logits[t], 4, 2, 3, 1.5, method)[int(e)]
                              for e in ids[t]], w[t]) and len(set(ids[t])) == 3
                 for t in range(64))
        check("DeepSeek-V2 %s router equals the per-token definition" % method, ok)


# ---- MLA ---------------------------------------------------------------------

def check_mla():
    for family in ("deepseek-v2", "deepseek-v2-lite", "deepseek-v3"):
        cfg, t = fixture(family)
        m = model(cfg, t)
        x = np.random.default_rng(2).standard_normal((len(TOKENS), cfg["hidden_size"]))
        a = m.layers[1]["attn"]
        naive = rf.mla_block(m, a, x, np.arange(len(TOKENS)))
        absorbed = rf.mla_block_absorbed(m, a, x, np.arange(len(TOKENS)))
        check("%s MLA absorbed form equals the naive form" % family, rel(absorbed, naive) < 1e-12)
    cfg, t = fixture("deepseek-v3")
    m = model(cfg, t)
    s = cfg["rope_scaling"]
    mscale = 0.1 * s["mscale_all_dim"] * np.log(s["factor"]) + 1
    want = (cfg["qk_nope_head_dim"] + cfg["qk_rope_head_dim"]) ** -0.5 * mscale ** 2
    _, att = inv_freq(m.layers[0]["attn"]["rope"], 8)
    att_want = (0.1 * s["mscale"] * np.log(4) + 1) / mscale
    check("DeepSeek yarn: softmax scale times mscale(all_dim)^2, cos/sin times mscale ratio",
          abs(m.layers[0]["attn"]["scale"] - want) < 1e-15 and abs(att - att_want) < 1e-15)
    a = rf.forward(m, TOKENS)
    for layer in m.layers:
        layer["attn"]["rope"]["layout"] = "half"
    b = rf.forward(m, TOKENS)
    check("DeepSeek rope part: interleaved pairs differ from half-split", rel(a, b) > 1e-3)
    m = model(cfg, t)
    check("DeepSeek: first_k_dense_replace 1 gives a dense layer 0, MoE after",
          m.layers[0]["mlp"]["kind"] == "gated"
          and all(l["mlp"]["kind"] == "moe" for l in m.layers[1:]))


# ---- every fixture: files, seeds, precision ----------------------------------

def check_fixture_files():
    """Each family written to disk (f32, and bf16 for one) reads back, is
    seeded, and the f32 and f64 forwards agree."""
    with tempfile.TemporaryDirectory() as tmp:
        worst = 0.0
        failed = []
        for family in ff.FAMILIES:
            d = os.path.join(tmp, family)
            ff.make_fixture(family, d, seed=1)
            try:
                a = rf.forward(rf.load_model(d), TOKENS)
                b = rf.forward(rf.load_model(d, np.float32), TOKENS).astype(np.float64)
                worst = max(worst, rel(b, a))
                if not np.all(np.isfinite(a)):
                    failed.append(family)
            except Exception as e:  # noqa: BLE001 - reported as a failed check
                failed.append("%s: %s" % (family, e))
        check("every family's folder reads back and runs (%d families)" % len(ff.FAMILIES),
              not failed, "; ".join(failed))
        check("f32 and f64 forwards agree on every family", worst < 2e-5, "worst rel %.1e" % worst)
        d1, d2 = os.path.join(tmp, "s1"), os.path.join(tmp, "s2")
        ff.make_fixture("qwen3", d1, seed=1)
        same = open(os.path.join(d1, "model.safetensors"), "rb").read() == \
            open(os.path.join(tmp, "qwen3", "model.safetensors"), "rb").read()
        ff.make_fixture("qwen3", d2, seed=2)
        check("fixtures are reproducible by seed and differ across seeds",
              same and rel(rf.forward(rf.load_model(d2), TOKENS),
                           rf.forward(rf.load_model(d1), TOKENS)) > 1e-2)
        d3 = os.path.join(tmp, "bf16")
        ff.make_fixture("llama", d3, seed=1, dtype="bf16")
        _, stored = rf.read_safetensors(os.path.join(d3, "model.safetensors"))
        a = rf.forward(rf.load_model(d3), TOKENS)
        b = rf.forward(rf.load_model(os.path.join(tmp, "llama")), TOKENS)
        check("a bf16 fixture reads as BF16 and stays near the f32 one",
              set(stored.values()) == {"BF16"} and 1e-5 < rel(a, b) < 0.05, "rel %.1e" % rel(a, b))
        tied = os.path.join(tmp, "tied")
        ff.make_fixture("llama", tied, seed=1, tied=True)
        names, _ = rf.read_safetensors(os.path.join(tied, "model.safetensors"))
        check("--tied writes no lm_head and the reference uses the embeddings",
              "lm_head.weight" not in names and rf.load_model(tied).head == "model.embed_tokens.weight")


def check_cli():
    """The command lines the C tests will run: generator, then reference."""
    import subprocess
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        d = os.path.join(tmp, "m")
        gen = subprocess.run([py, os.path.join(HERE, "family_fixtures.py"), "--family", "qwen3",
                              "--out", d, "--seed", "1"], capture_output=True, text=True)
        ids = ",".join(map(str, TOKENS[:10]))
        out64, out32 = os.path.join(tmp, "ref.npy"), os.path.join(tmp, "ref32.npy")
        runs = [subprocess.run([py, os.path.join(HERE, "reference_forward.py"), d, "--tokens", ids,
                                "--out", out] + extra, capture_output=True, text=True)
                for out, extra in ((out64, []), (out32, ["--f32"]))]
        ok = gen.returncode == 0 and all(r.returncode == 0 for r in runs)
        if ok:
            a, b = np.load(out64), np.load(out32)
            want = rf.forward(rf.load_model(d), TOKENS[:10])
            ok = (a.dtype == np.float64 and b.dtype == np.float32 and a.shape == (10, 128)
                  and np.array_equal(a, want) and np.array_equal(b, want.astype(np.float32)))
        check("CLI: family_fixtures.py --out DIR, reference_forward.py DIR --tokens --out [--f32]", ok)
        bad = subprocess.run([py, os.path.join(HERE, "reference_forward.py"), d, "--tokens", "1,999",
                              "--out", os.path.join(tmp, "bad.npy")], capture_output=True, text=True)
        check("CLI: an id out of range exits 2 with one line and writes nothing",
              bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
              and not os.path.exists(os.path.join(tmp, "bad.npy")), bad.stderr.strip())
        helps = [subprocess.run([py, os.path.join(HERE, f), "--help"], capture_output=True,
                                text=True).stdout for f in ("family_fixtures.py", "reference_forward.py")]
        check("CLI: --help lists every family", all(n in helps[0] for n in ff.FAMILIES) and all(
            k in helps[1] for k in rf.FAMILY_PLANS if k != "llama2c"))


def main():
    models = shared_models_folder()
    if os.path.exists(os.path.join(models, "tiny_llama_hf", "config.json")):
        check_golden_logits(models)
    else:
        skip("tiny_llama_hf golden logits", "no tiny_llama_hf in %s" % models)
    if os.path.exists(os.path.join(models, "stories260K.bin")):
        check_stories(models)
        check_stories_rope_tables(models)
    else:
        skip("stories260K greedy text", "no stories260K.bin in %s" % models)
    check_rope_scalings()
    check_mrope()
    check_v5_rope_parameters()
    check_sliding_window()
    check_disabled_window()
    check_gqa()
    check_softcap()
    check_gemma2_as_gemma()
    check_embed_scale()
    check_phi3_fused()
    check_neox_residual()
    check_neox_qkv_order()
    check_moe_single_expert()
    check_qwen2_moe_shared_gate()
    check_deepseek_routers()
    check_mla()
    check_fixture_files()
    check_cli()
    print("1..%d" % len(results))
    return 0 if all(r[0] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
