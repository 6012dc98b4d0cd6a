#!/usr/bin/python3
"""A NumPy forward pass, teacher-forced, for every model family ropefold reads.

    reference_forward.py MODEL --tokens 1,2,3 [--out logits.npy] [--f32]
                         [--precision f64|f32] [--generate N] [--embed-scale hf|exact]

MODEL is an HF folder (config.json + model.safetensors, or sharded with
model.safetensors.index.json) or a llama2.c .bin. The logits, T x V, go to
--out as a NumPy .npy (float64; float32 with --f32, the dtype `ropefold
logits --out` writes). Without --out the top token per position is printed.
--generate N continues greedily for N tokens (each step a full teacher-forced
pass over the whole sequence, so dynamic and longrope scalings see the
length they would see in one pass) and prints the ids.

Written from the families' published definitions (HF transformers' modelling
code, llama2.c's run.c, DeepSeek's own modelling code; see tests/REFERENCE.md),
independently of ropefold's C code. Everything is computed in float64 unless
--precision f32. Families (config model_type): %(families)s, and llama2.c.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np

# ---- reading checkpoints -----------------------------------------------------

SAFETENSORS_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2"}


def read_safetensors(path):
    """{name: float64 array}, {name: stored dtype name} of one .safetensors file."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack_from("<Q", blob, 0)
    header = json.loads(blob[8:8 + n])
    base = 8 + n
    tensors, dtypes = {}, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = np.frombuffer(blob, SAFETENSORS_DTYPES[info["dtype"]],
                            (end - begin) // np.dtype(SAFETENSORS_DTYPES[info["dtype"]]).itemsize,
                            base + begin)
        if info["dtype"] == "BF16":
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = raw.astype(np.float64).reshape(info["shape"])
        dtypes[name] = info["dtype"]
    return tensors, dtypes


def read_hf_folder(folder):
    """config dict, tensors, dtypes of an HF folder (single or sharded file)."""
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors, dtypes = {}, {}
    for name in files:
        t, d = read_safetensors(os.path.join(folder, name))
        tensors.update(t)
        dtypes.update(d)
    return config, tensors, dtypes


def read_llama2c(path):
    """A llama2.c legacy .bin (7 int32 header, then float32 weights) as an HF
    Llama config and HF tensor names. Its RoPE is interleaved (run.c rotates
    coordinates (2i, 2i+1)); a positive vocab_size means a tied classifier."""
    with open(path, "rb") as f:
        blob = f.read()
    dim, hidden, L, H, G, vocab, seq_len = struct.unpack_from("<7i", blob, 0)
    tied = vocab > 0
    V = abs(vocab)
    hd = dim // H
    data = np.frombuffer(blob, "<f4", offset=28).astype(np.float64)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        a = data[pos:pos + n].reshape(shape)
        pos += n
        return a

    t = {"model.embed_tokens.weight": take(V, dim)}
    per_layer = [("input_layernorm.weight", (dim,)), ("self_attn.q_proj.weight", (dim, dim)),
                 ("self_attn.k_proj.weight", (G * hd, dim)),
                 ("self_attn.v_proj.weight", (G * hd, dim)),
                 ("self_attn.o_proj.weight", (dim, dim)),
                 ("post_attention_layernorm.weight", (dim,)),
                 ("mlp.gate_proj.weight", (hidden, dim)), ("mlp.down_proj.weight", (dim, hidden)),
                 ("mlp.up_proj.weight", (hidden, dim))]
    for suffix, shape in per_layer:       # stored as [L][...] per kind
        stacked = take(L, *shape)
        for l in range(L):
            t["model.layers.%d.%s" % (l, suffix)] = stacked[l]
    t["model.norm.weight"] = take(dim)
    take(seq_len, hd // 2)                # legacy freq_cis_real
    take(seq_len, hd // 2)                # legacy freq_cis_imag
    t["lm_head.weight"] = t["model.embed_tokens.weight"] if tied else take(V, dim)
    config = {"model_type": "llama2c", "hidden_size": dim, "intermediate_size": hidden,
              "num_hidden_layers": L, "num_attention_heads": H, "num_key_value_heads": G,
              "vocab_size": V, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
              "hidden_act": "silu", "tie_word_embeddings": tied,
              "max_position_embeddings": seq_len}
    return config, t, {name: "F32" for name in t}


# ---- elementary functions ----------------------------------------------------

def rms_norm(x, w, eps, offset=0.0):
    """w * x / rms(x); Gemma's norms store w - 1 and use offset 1 ((1 + w) * x / rms)."""
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * (offset + w)


def layer_norm(x, w, b, eps):
    mu = np.mean(x, axis=-1, keepdims=True)
    var = np.mean((x - mu) ** 2, axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


_erf = np.frompyfunc(math.erf, 1, 1)


def gelu_erf(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(x.dtype))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def silu(x):
    return x / (1.0 + np.exp(-x))


ACTIVATIONS = {"silu": silu, "swish": silu, "gelu": gelu_erf, "gelu_pytorch_tanh": gelu_tanh,
               "gelu_new": gelu_tanh, "gelu_fast": gelu_tanh,
               "relu": lambda x: np.maximum(x, 0)}


def softmax(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softcap(x, cap):
    """Gemma 2's soft-capping: cap * tanh(x / cap); None leaves x alone."""
    return x if not cap else cap * np.tanh(x / cap)


# ---- RoPE: frequencies and their scalings (HF modeling_rope_utils.py) ---------

def default_inv_freq(theta, dim):
    """theta^(-2i/dim) for the dim/2 pairs of the rotary part."""
    return 1.0 / theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim)


def linear_inv_freq(rope, seq_len):
    return default_inv_freq(rope["theta"], rope["dim"]) / rope["scaling"]["factor"], 1.0


def dynamic_inv_freq(rope, seq_len):
    """Dynamic NTK: the base grows only once the sequence passes max_position."""
    s, dim, max_pos = rope["scaling"], rope["dim"], rope["max_pos"]
    base = rope["theta"]
    if seq_len > max_pos:
        base = base * ((s["factor"] * seq_len / max_pos) - (s["factor"] - 1)) ** (dim / (dim - 2))
    return default_inv_freq(base, dim), 1.0


def yarn_mscale(scale, mscale=1.0):
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def yarn_inv_freq(rope, seq_len):
    """YaRN: interpolate slow pairs by factor, keep fast ones, ramp between; the
    attention factor multiplies cos and sin (so q.k gets its square)."""
    s, dim, theta = rope["scaling"], rope["dim"], rope["theta"]
    factor = s["factor"]
    original = s.get("original_max_position_embeddings") or rope["max_pos"]
    if s.get("original_max_position_embeddings"):
        factor = rope["max_pos"] / original      # HF derives it so; fixtures agree
    attention = s.get("attention_factor")
    if attention is None:
        if s.get("mscale") and s.get("mscale_all_dim"):
            attention = yarn_mscale(factor, s["mscale"]) / yarn_mscale(factor, s["mscale_all_dim"])
        else:
            attention = yarn_mscale(factor)
    beta_fast = s.get("beta_fast") or 32
    beta_slow = s.get("beta_slow") or 1

    def correction_dim(rotations):
        return dim * math.log(original / (rotations * 2 * math.pi)) / (2 * math.log(theta))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if s.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    ramp = np.clip((np.arange(dim // 2, dtype=np.float64) - low) / (high - low), 0, 1)
    extrapolation = 1.0 - ramp
    pos_freqs = theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    inv = (1.0 / (factor * pos_freqs)) * (1 - extrapolation) + (1.0 / pos_freqs) * extrapolation
    return inv, attention


def longrope_inv_freq(rope, seq_len):
    """Phi-3 longrope: per-pair divisors, short_factor up to the pretrained
    length, long_factor past it; the attention factor applies at every length."""
    s, dim = rope["scaling"], rope["dim"]
    original = rope.get("original_max_pos")
    factor = s.get("factor")
    if original:
        factor = rope["max_pos"] / original
    else:
        original = rope["max_pos"]
    attention = s.get("attention_factor")
    if attention is None:
        attention = 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(original))
    ext = np.array(s["long_factor"] if seq_len > original else s["short_factor"], dtype=np.float64)
    return 1.0 / (ext * rope["theta"] ** (np.arange(0, dim, 2, dtype=np.float64) / dim)), attention


def llama3_inv_freq(rope, seq_len):
    """Llama 3.1: divide slow pairs by factor, keep fast ones, smooth between."""
    s = rope["scaling"]
    inv = default_inv_freq(rope["theta"], rope["dim"])
    factor, low, high = s["factor"], s["low_freq_factor"], s["high_freq_factor"]
    old = s["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv
    scaled = np.where(wavelen > old / low, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < old / high) & ~(wavelen > old / low)
    return np.where(medium, smoothed, scaled), 1.0


ROPE_SCALINGS = {"default": lambda rope, n: (default_inv_freq(rope["theta"], rope["dim"]), 1.0),
                 "linear": linear_inv_freq, "dynamic": dynamic_inv_freq,
                 "yarn": yarn_inv_freq, "longrope": longrope_inv_freq,
                 "llama3": llama3_inv_freq}


def rope_type(scaling):
    if not scaling:
        return "default"
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    return "default" if kind == "mrope" else kind


def rope_tables(rope, positions, dtype):
    """cos, sin of shape T x dim/2 (already times the attention factor).
    positions: T ids, or 3 x T for M-RoPE (pair i reads the row of its section)."""
    inv, attention = ROPE_SCALINGS[rope_type(rope["scaling"])](rope, positions.shape[-1])
    if dtype == np.float32:                     # as HF: inv_freq and angles in f32
        inv = inv.astype(np.float32)
    if rope.get("mrope_section"):
        section = np.repeat(np.arange(3), rope["mrope_section"])
        angles = positions[section, :].T.astype(dtype) * inv
    else:
        angles = np.outer(positions.astype(dtype), inv)
    return (np.cos(angles) * attention).astype(dtype), (np.sin(angles) * attention).astype(dtype)


def rope_pairs(dim, layout):
    """Coordinates (a_i, b_i) of pair i: half-split (i, i + dim/2), HF's
    rotate_half; interleaved (2i, 2i+1), Meta's and llama2.c's complex form."""
    i = np.arange(dim // 2)
    if layout == "interleaved":
        return 2 * i, 2 * i + 1
    return i, i + dim // 2


def apply_rope(x, cos, sin, dim, layout):
    """x: T x n x hd; rotate the first dim coordinates of every head; the rest
    pass through (partial rotary)."""
    a, b = rope_pairs(dim, layout)
    out = x.copy()
    xa, xb = x[:, :, a], x[:, :, b]
    c, s = cos[:, None, :], sin[:, None, :]
    out[:, :, a] = xa * c - xb * s
    out[:, :, b] = xb * c + xa * s
    return out


# ---- attention ---------------------------------------------------------------

def allowed_keys(T, window=None):
    """T x T: query m sees key n when n <= m and, with a window W, m - n < W."""
    m, n = np.arange(T)[:, None], np.arange(T)[None, :]
    ok = n <= m
    if window:
        ok &= (m - n) < window
    return ok


def attend(q, k, v, scale, allowed, cap=None):
    """q: T x H x dq, k: T x G x dq, v: T x G x dv; query head h reads kv head
    h // (H/G). Returns T x (H*dv)."""
    T, H, _ = q.shape
    G = k.shape[1]
    group = np.arange(H) // (H // G)
    qh = q.transpose(1, 0, 2)                            # H x T x dq
    kh = k[:, group, :].transpose(1, 2, 0)               # H x dq x T
    scores = softcap((qh @ kh) * scale, cap)             # H x T x T
    scores = np.where(allowed[None], scores, -np.inf)
    ctx = softmax(scores, axis=-1) @ v[:, group, :].transpose(1, 0, 2)
    return ctx.transpose(1, 0, 2).reshape(T, -1)


# ---- the model: weights and the family's description -------------------------

class Model:
    """The weights (in the compute dtype) and the family's plan of the forward."""

    def __init__(self, config, tensors, dtypes, dtype=np.float64, embed_scale="hf"):
        config, tensors, dtypes = flatten_text_model(config, tensors, dtypes)
        self.config = config
        self.dtype = dtype
        self.tensors = {k: v.astype(dtype) for k, v in tensors.items()}
        self.stored = dtypes
        self.embed_scale_rule = embed_scale
        self.family = family_of(config)
        FAMILY_PLANS[self.family](self)

    def w(self, name):
        if name not in self.tensors:
            raise KeyError("%s: tensor %s is missing" % (self.family, name))
        return self.tensors[name]

    def opt(self, name):
        return self.tensors.get(name)

    def linear(self, x, name):
        """x @ W^T (+ b): W is [out][in] as checkpoints store it."""
        y = x @ self.w(name + ".weight").T
        b = self.opt(name + ".bias")
        return y if b is None else y + b


def flatten_text_model(config, tensors, dtypes):
    """Qwen2-VL as newer transformers save it: the text keys nested under
    text_config, the text tensors under model.language_model. Read as the
    flat layout of the Hub's checkpoints (model.layers.N..., keys on top)."""
    if config.get("model_type") != "qwen2_vl":
        return config, tensors, dtypes
    if "text_config" in config:
        config = dict(config, **{k: v for k, v in config["text_config"].items()
                                 if k != "model_type"})
    prefix = "model.language_model."
    rename = {k: "model." + k[len(prefix):] for k in tensors if k.startswith(prefix)}
    tensors = {rename.get(k, k): v for k, v in tensors.items()}
    dtypes = {rename.get(k, k): v for k, v in dtypes.items()}
    return config, tensors, dtypes


def family_of(config):
    kind = config.get("model_type", "")
    if kind in FAMILY_PLANS:
        return kind
    raise ValueError("model_type %r is not a family this reference knows (%s)"
                     % (kind, ", ".join(sorted(FAMILY_PLANS))))


def rope_settings(cfg, layer_type="full_attention"):
    """(theta, scaling dict or None): the v4 keys rope_theta / rope_scaling, or
    v5's rope_parameters (per layer type where Gemma 3 splits them)."""
    params = cfg.get("rope_parameters")
    if params:
        if layer_type in params:
            params = params[layer_type]
        params = dict(params)
        theta = params.pop("rope_theta", 10000.0)
        return theta, (params if params.get("rope_type", "default") != "default" else None)
    return cfg.get("rope_theta", 10000.0), cfg.get("rope_scaling")


def rope_spec(cfg, dim, layout="half", theta=None, scaling="config"):
    t, s = rope_settings(cfg)
    return {"theta": t if theta is None else theta, "dim": dim, "layout": layout,
            "scaling": s if scaling == "config" else scaling,
            "max_pos": cfg.get("max_position_embeddings", 2048),
            "original_max_pos": cfg.get("original_max_position_embeddings"),
            "mrope_section": (s or {}).get("mrope_section") if scaling == "config" else None}


def default_layer_types(cfg, family):
    """Which layers use the sliding window where the config has no layer_types."""
    L = cfg["num_hidden_layers"]
    window = cfg.get("sliding_window")
    if family in ("mistral", "mixtral", "phi3"):
        return ["sliding_attention" if window else "full_attention"] * L
    if family in ("qwen2", "qwen3", "qwen2_moe", "qwen3_moe", "qwen2_vl"):
        on = cfg.get("use_sliding_window") and window
        first = cfg.get("max_window_layers", L)
        return ["sliding_attention" if on and l >= first else "full_attention" for l in range(L)]
    if family == "gemma2":
        return ["sliding_attention" if (l + 1) % 2 else "full_attention" for l in range(L)]
    if family == "gemma3_text":
        pattern = cfg.get("sliding_window_pattern", 6)
        return ["sliding_attention" if (l + 1) % pattern else "full_attention" for l in range(L)]
    return ["full_attention"] * L


def layer_windows(cfg, family):
    types = cfg.get("layer_types") or default_layer_types(cfg, family)
    return [cfg.get("sliding_window") if t == "sliding_attention" else None for t in types]


def partial_rotary(cfg, legacy_key=None):
    """The rotary fraction: top-level (v4), inside rope_parameters (v5), or a
    family's own key (NeoX's rotary_pct)."""
    for value in (cfg.get(legacy_key) if legacy_key else None, cfg.get("partial_rotary_factor"),
                  (cfg.get("rope_parameters") or {}).get("partial_rotary_factor")):
        if value is not None:
            return value
    return 1.0


def head_dims(cfg):
    H = cfg["num_attention_heads"]
    return H, cfg.get("num_key_value_heads") or H, cfg.get("head_dim") or cfg["hidden_size"] // H


def round_to_stored(value, stored):
    """value rounded to a stored dtype (BF16: nearest, ties to even)."""
    if stored == "BF16":
        u = int(np.array(value, np.float32).view(np.uint32))
        u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16 << 16
        return float(np.array(u, np.uint32).view(np.float32))
    if stored == "F16":
        return float(np.float16(value))
    if stored == "F32":
        return float(np.float32(value))
    return value


def embed_scale_value(m, name):
    """Gemma multiplies the embeddings by sqrt(D) *as a tensor of the hidden
    dtype*: HF rounds the constant to the dtype the model runs in, which for a
    checkpoint run as stored is the embedding's stored dtype."""
    value = math.sqrt(m.config["hidden_size"])
    if m.embed_scale_rule == "exact":
        return value
    return round_to_stored(value, m.stored.get(name, "F32"))


# Each plan sets on the model: embed (name, scale), layers (a list of dicts:
# block style, norms, attention, mlp), final norm, head, final softcap.

def norm(kind, name, eps):
    return {"kind": kind, "name": name, "eps": eps}


def apply_norm(m, spec, x):
    w = m.w(spec["name"] + ".weight")
    if spec["kind"] == "layernorm":
        return layer_norm(x, w, m.w(spec["name"] + ".bias"), spec["eps"])
    return rms_norm(x, w, spec["eps"], 1.0 if spec["kind"] == "rms1p" else 0.0)


def plan_decoder(m, *, norm_kind="rms", block="pre", qk_norm=None, attn_scale=None,
                 attn_cap=None, fused=None, mlp="gated", moe=None,
                 embed_scale=False, final_cap=None, layout="half", rotary_dim=None):
    """The common decoder: embed_tokens, layers of attention and MLP, norm, lm_head."""
    cfg = m.config
    H, G, hd = head_dims(cfg)
    eps = cfg.get("rms_norm_eps", 1e-6)
    windows = layer_windows(cfg, m.family)
    m.embed = "model.embed_tokens.weight"
    m.embed_scale = embed_scale_value(m, m.embed) if embed_scale else None
    m.layers = []
    for l in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % l
        rope = rope_spec(cfg, rotary_dim or hd, layout)
        m.layers.append({
            "prefix": p, "block": block,
            "norms": {k: norm(norm_kind, p + k, eps) for k in
                      ("input_layernorm", "post_attention_layernorm",
                       "pre_feedforward_layernorm", "post_feedforward_layernorm")},
            "attn": {"kind": "mha", "prefix": p + "self_attn.", "H": H, "G": G, "hd": hd,
                     "rope": rope, "window": windows[l], "fused": fused,
                     "scale": attn_scale or hd ** -0.5, "cap": attn_cap,
                     "qk_norm": qk_norm and dict(qk_norm, eps=eps)},
            "mlp": moe(m, l, p) if moe else {"kind": mlp, "prefix": p + "mlp.",
                                               "act": cfg.get("hidden_act", "silu")},
        })
    m.final_norm = norm(norm_kind, "model.norm", eps)
    m.head = head_name(m, "lm_head.weight")
    m.final_cap = final_cap


def head_name(m, untied):
    tied = m.config.get("tie_word_embeddings")
    if tied is None:
        tied = untied not in m.tensors
    return m.embed if tied else untied


def plan_llama(m):
    plan_decoder(m)


def plan_llama2c(m):
    plan_decoder(m, layout="interleaved")


def plan_qwen3(m):
    plan_decoder(m, qk_norm={"over": "head", "kind": "rms"})


def plan_olmo2(m):
    plan_decoder(m, block="post", qk_norm={"over": "all", "kind": "rms"})


def gemma_act(m):
    return m.config.get("hidden_activation") or "gelu_pytorch_tanh"


def plan_gemma(m):
    plan_decoder(m, norm_kind="rms1p", embed_scale=True)
    for layer in m.layers:
        layer["mlp"]["act"] = gemma_act(m)


def plan_gemma2(m):
    cfg = m.config
    plan_decoder(m, norm_kind="rms1p", block="sandwich", embed_scale=True,
                 attn_scale=cfg.get("query_pre_attn_scalar", 256) ** -0.5,
                 attn_cap=cfg.get("attn_logit_softcapping"),
                 final_cap=cfg.get("final_logit_softcapping"))
    for layer in m.layers:
        layer["mlp"]["act"] = gemma_act(m)


def gemma3_local_rope(cfg, hd):
    """Local (sliding) layers: rope_local_base_freq, no scaling."""
    params = cfg.get("rope_parameters") or {}
    if "sliding_attention" in params:
        theta, scaling = rope_settings(cfg, "sliding_attention")
        return rope_spec(cfg, hd, theta=theta, scaling=scaling)
    return rope_spec(cfg, hd, theta=cfg.get("rope_local_base_freq", 10000.0), scaling=None)


def plan_gemma3(m):
    """Gemma 2's layer with (1 + w) q/k norms per head; sliding layers take the
    local RoPE, global ones rope_theta with rope_scaling."""
    plan_gemma2(m)
    cfg = m.config
    _, _, hd = head_dims(cfg)
    for layer in m.layers:
        a = layer["attn"]
        a["qk_norm"] = {"over": "head", "kind": "rms1p", "eps": cfg.get("rms_norm_eps", 1e-6)}
        if a["window"]:
            a["rope"] = gemma3_local_rope(cfg, hd)


def plan_phi3(m):
    cfg = m.config
    _, _, hd = head_dims(cfg)
    plan_decoder(m, fused="phi3", mlp="gate_up", rotary_dim=int(hd * partial_rotary(cfg)))


def softmax_topk_moe(cfg, p, *, gate, experts, names, normalize, shared=None):
    return {"kind": "moe", "router": "softmax_topk", "gate": p + gate, "experts": p + experts,
            "names": names, "E": cfg.get("num_experts") or cfg.get("num_local_experts"),
            "k": cfg["num_experts_per_tok"], "normalize": normalize, "shared": shared,
            "act": cfg.get("hidden_act", "silu")}


def qwen_moe_layer(m, l, p):
    """Qwen2/3-MoE: sparse where l is not mlp_only and (l + 1) % step == 0;
    Qwen2-MoE adds a shared expert."""
    cfg = m.config
    sparse = (l not in cfg.get("mlp_only_layers", []) and cfg.get("num_experts", 0) > 0
              and (l + 1) % cfg.get("decoder_sparse_step", 1) == 0)
    if not sparse:
        return {"kind": "gated", "prefix": p + "mlp.", "act": cfg.get("hidden_act", "silu")}
    shared = None
    if p + "mlp.shared_expert.gate_proj.weight" in m.tensors:
        shared = {"prefix": p + "mlp.shared_expert.", "gate": p + "mlp.shared_expert_gate"}
    return softmax_topk_moe(cfg, p, gate="mlp.gate", experts="mlp.experts.",
                            names=("gate_proj", "up_proj", "down_proj"),
                            normalize=cfg.get("norm_topk_prob", False), shared=shared)


def plan_qwen2_moe(m):
    plan_decoder(m, moe=qwen_moe_layer)


def plan_qwen3_moe(m):
    plan_decoder(m, moe=qwen_moe_layer, qk_norm={"over": "head", "kind": "rms"})


def plan_mixtral(m):
    plan_decoder(m, moe=lambda m, l, p: softmax_topk_moe(
        m.config, p, gate="block_sparse_moe.gate", experts="block_sparse_moe.experts.",
        names=("w1", "w3", "w2"), normalize=True))


def plan_gpt_neox(m):
    """GPT-NeoX: LayerNorm with bias, fused per-head QKV, GELU MLP, partial
    rotary (rotary_pct), parallel or sequential residual."""
    cfg = m.config
    H = cfg["num_attention_heads"]
    hd = cfg["hidden_size"] // H
    eps = cfg.get("layer_norm_eps", 1e-5)
    pct = partial_rotary(cfg, "rotary_pct")
    theta = cfg.get("rotary_emb_base", cfg.get("rope_theta", 10000.0))
    if cfg.get("rope_parameters"):
        theta = cfg["rope_parameters"].get("rope_theta", theta)
    m.embed = "gpt_neox.embed_in.weight"
    m.embed_scale = None
    m.layers = []
    for l in range(cfg["num_hidden_layers"]):
        p = "gpt_neox.layers.%d." % l
        rope = rope_spec(cfg, int(hd * pct), theta=theta)
        m.layers.append({
            "prefix": p,
            "block": "parallel" if cfg.get("use_parallel_residual", True) else "pre",
            "norms": {k: norm("layernorm", p + k, eps)
                      for k in ("input_layernorm", "post_attention_layernorm")},
            "attn": {"kind": "mha", "prefix": p + "attention.", "H": H, "G": H, "hd": hd,
                     "rope": rope, "window": None, "fused": "neox", "out": "dense",
                     "scale": hd ** -0.5, "cap": None, "qk_norm": None},
            "mlp": {"kind": "neox", "prefix": p + "mlp.", "act": cfg.get("hidden_act", "gelu")},
        })
    m.final_norm = norm("layernorm", "gpt_neox.final_layer_norm", eps)
    m.head = head_name(m, "embed_out.weight")
    m.final_cap = None


def deepseek_moe_layer(m, l, p):
    """Dense below first_k_dense_replace (and off the moe_layer_freq beat),
    routed experts plus shared experts above."""
    cfg = m.config
    if not (cfg.get("n_routed_experts") and l >= cfg.get("first_k_dense_replace", 0)
            and l % cfg.get("moe_layer_freq", 1) == 0):
        return {"kind": "gated", "prefix": p + "mlp.", "act": cfg.get("hidden_act", "silu")}
    v3 = cfg["model_type"] == "deepseek_v3"
    return {"kind": "moe", "router": "deepseek_v3" if v3 else "deepseek_v2",
            "gate": p + "mlp.gate", "experts": p + "mlp.experts.",
            "names": ("gate_proj", "up_proj", "down_proj"), "E": cfg["n_routed_experts"],
            "k": cfg["num_experts_per_tok"], "normalize": cfg.get("norm_topk_prob", False),
            # DeepseekV3Config's defaults are 8 groups, 4 kept (HF's V3
            # router always groups); DeepSeek's V2 code groups only when asked
            "n_group": cfg.get("n_group") or (8 if v3 else 1),
            "topk_group": cfg.get("topk_group") or (4 if v3 else 1),
            "method": cfg.get("topk_method", "greedy"),
            "scaling": cfg.get("routed_scaling_factor", 1.0),
            "shared": {"prefix": p + "mlp.shared_experts.", "gate": None}
            if cfg.get("n_shared_experts") else None,
            "act": cfg.get("hidden_act", "silu")}


def plan_deepseek(m):
    """DeepSeek-V2/V3: MLA attention, dense then MoE layers. The softmax scale
    gets yarn's mscale(factor, mscale_all_dim)^2 as DeepSeek defines it."""
    cfg = m.config
    plan_decoder(m, moe=deepseek_moe_layer)
    nope, rope_dim = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"]
    scale = (nope + rope_dim) ** -0.5
    _, scaling = rope_settings(cfg)
    if scaling and rope_type(scaling) != "default" and scaling.get("mscale_all_dim"):
        scale *= yarn_mscale(scaling["factor"], scaling["mscale_all_dim"]) ** 2
    layout = "interleaved" if cfg.get("rope_interleave", True) else "half"
    for layer in m.layers:
        a = layer["attn"]
        layer["attn"] = {"kind": "mla", "prefix": a["prefix"], "H": a["H"],
                         "nope": nope, "rope_dim": rope_dim, "v": cfg["v_head_dim"],
                         "kv_lora": cfg["kv_lora_rank"], "q_lora": cfg.get("q_lora_rank"),
                         "rope": rope_spec(cfg, rope_dim, layout), "window": None,
                         "scale": scale, "latent_eps": 1e-6}


FAMILY_PLANS = {
    "llama": plan_llama, "mistral": plan_llama, "qwen2": plan_llama, "qwen2_vl": plan_llama,
    "qwen3": plan_qwen3, "qwen2_moe": plan_qwen2_moe, "qwen3_moe": plan_qwen3_moe,
    "mixtral": plan_mixtral, "olmo2": plan_olmo2, "gemma": plan_gemma,
    "gemma2": plan_gemma2, "gemma3_text": plan_gemma3, "phi3": plan_phi3,
    "gpt_neox": plan_gpt_neox, "deepseek_v2": plan_deepseek, "deepseek_v3": plan_deepseek,
    "llama2c": plan_llama2c,
}


# ---- attention blocks --------------------------------------------------------

def qkv_projections(m, a, x):
    """q: T x H x hd, k, v: T x G x hd, from separate, Phi-3-fused or
    NeoX-fused projections."""
    T = x.shape[0]
    H, G, hd, p = a["H"], a["G"], a["hd"], a["prefix"]
    if a["fused"] == "phi3":                  # rows [q (H*hd); k (G*hd); v (G*hd)]
        qkv = m.linear(x, p + "qkv_proj")
        q, k, v = np.split(qkv, [H * hd, (H + G) * hd], axis=1)
    elif a["fused"] == "neox":                # rows per head: [q_h; k_h; v_h]
        qkv = m.linear(x, p + "query_key_value").reshape(T, H, 3 * hd)
        return qkv[:, :, :hd], qkv[:, :, hd:2 * hd], qkv[:, :, 2 * hd:]
    else:
        q, k, v = (m.linear(x, p + n) for n in ("q_proj", "k_proj", "v_proj"))
    qn = a["qk_norm"]
    if qn and qn["over"] == "all":            # OLMo2: over all heads at once
        q = rms_norm(q, m.w(p + "q_norm.weight"), qn["eps"])
        k = rms_norm(k, m.w(p + "k_norm.weight"), qn["eps"])
    q, k, v = q.reshape(T, H, hd), k.reshape(T, G, hd), v.reshape(T, G, hd)
    if qn and qn["over"] == "head":           # Qwen3, Gemma 3: per head, before RoPE
        offset = 1.0 if qn["kind"] == "rms1p" else 0.0
        q = rms_norm(q, m.w(p + "q_norm.weight"), qn["eps"], offset)
        k = rms_norm(k, m.w(p + "k_norm.weight"), qn["eps"], offset)
    return q, k, v




def mha_block(m, a, x, positions):
    """Multi-head attention with GQA, RoPE in the family's layout, causal (and
    sliding-window) mask, optional soft-capping; T x D in, T x D out."""
    q, k, v = qkv_projections(m, a, x)
    rope = a["rope"]
    cos, sin = rope_tables(rope, positions, m.dtype)
    q = apply_rope(q, cos, sin, rope["dim"], rope["layout"])
    k = apply_rope(k, cos, sin, rope["dim"], rope["layout"])
    ctx = attend(q, k, v, a["scale"], allowed_keys(x.shape[0], a["window"]), a["cap"])
    return m.linear(ctx, a["prefix"] + a.get("out", "o_proj"))


def mla_projections(m, a, x, positions):
    """DeepSeek MLA: q (T x H x (nope+rope)) from q_proj or the q_a/q_b low-rank
    pair; one latent c (T x kv_lora) and one shared k_pe (T x rope) from
    kv_a_proj_with_mqa; k_nope and v per head from kv_b_proj(norm(c)). The
    rope parts are rotated as pairs (2i, 2i+1): HF's V3 code permutes them to
    half-split before rotate_half, V2 multiplies them as complex numbers."""
    T, H, p = x.shape[0], a["H"], a["prefix"]
    nope, r, dv = a["nope"], a["rope_dim"], a["v"]
    if a["q_lora"]:
        qa = rms_norm(m.linear(x, p + "q_a_proj"), m.w(p + "q_a_layernorm.weight"), a["latent_eps"])
        q = m.linear(qa, p + "q_b_proj")
    else:
        q = m.linear(x, p + "q_proj")
    q = q.reshape(T, H, nope + r)
    ckv = m.linear(x, p + "kv_a_proj_with_mqa")
    c = rms_norm(ckv[:, :a["kv_lora"]], m.w(p + "kv_a_layernorm.weight"), a["latent_eps"])
    k_pe = ckv[:, None, a["kv_lora"]:]
    kv = m.linear(c, p + "kv_b_proj").reshape(T, H, nope + dv)
    rope = a["rope"]
    cos, sin = rope_tables(rope, positions, m.dtype)
    q_pe = apply_rope(q[:, :, nope:], cos, sin, r, rope["layout"])
    k_pe = apply_rope(k_pe, cos, sin, r, rope["layout"])
    return q[:, :, :nope], q_pe, kv[:, :, :nope], k_pe, kv[:, :, nope:], c


def mla_block(m, a, x, positions):
    q_nope, q_pe, k_nope, k_pe, v, _ = mla_projections(m, a, x, positions)
    H = a["H"]
    q = np.concatenate([q_nope, q_pe], axis=2)
    k = np.concatenate([k_nope, np.repeat(k_pe, H, axis=1)], axis=2)
    ctx = attend(q, k, v, a["scale"], allowed_keys(x.shape[0]))
    return m.linear(ctx, a["prefix"] + "o_proj")


def mla_block_absorbed(m, a, x, positions):
    """The same attention in MLA's absorbed form: W_uk folded into the query
    (scores against the latent c directly), W_uv applied after the weighted sum
    of latents. Used by the self-checks: it must equal mla_block."""
    q_nope, q_pe, _, k_pe, _, c = mla_projections(m, a, x, positions)
    T, H, nope, dv = x.shape[0], a["H"], a["nope"], a["v"]
    w_kv = m.w(a["prefix"] + "kv_b_proj.weight").reshape(H, nope + dv, a["kv_lora"])
    w_uk, w_uv = w_kv[:, :nope, :], w_kv[:, nope:, :]
    q_latent = np.einsum("thn,hnc->thc", q_nope, w_uk)            # T x H x kv_lora
    scores = (np.einsum("mhc,nc->hmn", q_latent, c)
              + np.einsum("mhr,nr->hmn", q_pe, k_pe[:, 0, :])) * a["scale"]
    scores = np.where(allowed_keys(T)[None], scores, -np.inf)
    p = softmax(scores, axis=-1)
    latent_ctx = np.einsum("hmn,nc->mhc", p, c)                    # T x H x kv_lora
    ctx = np.einsum("mhc,hvc->mhv", latent_ctx, w_uv).reshape(T, H * dv)
    return m.linear(ctx, a["prefix"] + "o_proj")


# ---- MLPs and mixtures of experts --------------------------------------------

def gated_mlp(m, p, x, act, names=("gate_proj", "up_proj", "down_proj")):
    """down(act(gate x) * up x): SwiGLU with silu, GeGLU with gelu."""
    f = ACTIVATIONS[act]
    return m.linear(f(m.linear(x, p + names[0])) * m.linear(x, p + names[1]), p + names[2])


def gate_up_mlp(m, p, x, act):
    """Phi-3's fused gate_up_proj: the first half of the rows is the gate."""
    gate, up = np.split(m.linear(x, p + "gate_up_proj"), 2, axis=1)
    return m.linear(ACTIVATIONS[act](gate) * up, p + "down_proj")


def neox_mlp(m, p, x, act):
    return m.linear(ACTIVATIONS[act](m.linear(x, p + "dense_h_to_4h")), p + "dense_4h_to_h")


def top_k(scores, k):
    """Indices of the k largest entries of each row (ties: the lower index)."""
    return np.argsort(-scores, axis=-1, kind="stable")[:, :k]


def route_softmax_topk(logits, k, normalize):
    """Mixtral, Qwen-MoE: softmax over all experts, keep the top k, renormalise
    them if asked. Returns T x k expert ids and weights."""
    p = softmax(logits)
    ids = top_k(p, k)
    w = np.take_along_axis(p, ids, axis=1)
    if normalize:
        w = w / np.sum(w, axis=1, keepdims=True)
    return ids, w


def group_mask(group_scores, topk_group, E):
    """T x E: True for the experts of each row's topk_group best groups."""
    T, n_group = group_scores.shape
    keep = np.zeros((T, n_group), dtype=bool)
    np.put_along_axis(keep, top_k(group_scores, topk_group), True, axis=1)
    return np.repeat(keep, E // n_group, axis=1)


def route_deepseek_v2(logits, r):
    """DeepSeek-V2: softmax scores; greedy top-k, or group-limited greedy (groups
    ranked by their best expert, the rest masked to 0). DeepSeek's own code then
    either renormalises (norm_topk_prob and k > 1) or multiplies by
    routed_scaling_factor."""
    scores = softmax(logits)
    T, E = scores.shape
    choice = scores
    if r["method"] == "group_limited_greedy":
        groups = scores.reshape(T, r["n_group"], -1).max(axis=2)
        choice = np.where(group_mask(groups, r["topk_group"], E), scores, 0.0)
    ids = top_k(choice, r["k"])
    w = np.take_along_axis(choice, ids, axis=1)
    if r["k"] > 1 and r["normalize"]:
        return ids, w / (np.sum(w, axis=1, keepdims=True) + 1e-20)
    return ids, w * r["scaling"]


def route_deepseek_v3(logits, r, bias):
    """DeepSeek-V3: sigmoid scores; choice by scores + e_score_correction_bias,
    groups ranked by the sum of their two best, the rest masked to 0; the
    weights are the unbiased scores, renormalised if norm_topk_prob, times
    routed_scaling_factor."""
    scores = sigmoid(logits)
    T, E = scores.shape
    if E % r["n_group"] or E // r["n_group"] < 2:
        # HF's view(-1, n_group, E // n_group).topk(2) cannot run on these
        raise ValueError("DeepSeek-V3 routing: %d experts in %d groups (top two of each)"
                         % (E, r["n_group"]))
    choice = scores + bias
    groups = np.sort(choice.reshape(T, r["n_group"], -1), axis=2)[:, :, -2:].sum(axis=2)
    choice = np.where(group_mask(groups, r["topk_group"], E), choice, 0.0)
    ids = top_k(choice, r["k"])
    w = np.take_along_axis(scores, ids, axis=1)
    if r["normalize"]:
        w = w / (np.sum(w, axis=1, keepdims=True) + 1e-20)
    return ids, w * r["scaling"]


def moe_block(m, r, x):
    """Sum over each token's chosen experts of weight * expert(x), plus the
    shared expert(s): Qwen2-MoE's gated by sigmoid(shared_expert_gate x)."""
    logits = x @ m.w(r["gate"] + ".weight").T
    if r["router"] == "softmax_topk":
        ids, w = route_softmax_topk(logits, r["k"], r["normalize"])
    elif r["router"] == "deepseek_v2":
        ids, w = route_deepseek_v2(logits, r)
    else:
        ids, w = route_deepseek_v3(logits, r, m.w(r["gate"] + ".e_score_correction_bias"))
    out = np.zeros_like(x)
    for e in np.unique(ids):
        rows, slot = np.nonzero(ids == e)
        y = gated_mlp(m, "%s%d." % (r["experts"], e), x[rows], r["act"], r["names"])
        out[rows] += w[rows, slot][:, None] * y
    s = r["shared"]
    if s:
        y = gated_mlp(m, s["prefix"], x, r["act"])
        if s["gate"]:
            y = sigmoid(m.linear(x, s["gate"])) * y
        out += y
    return out


def mlp_block(m, spec, x):
    kind = spec["kind"]
    if kind == "moe":
        return moe_block(m, spec, x)
    if kind == "gate_up":
        return gate_up_mlp(m, spec["prefix"], x, spec["act"])
    if kind == "neox":
        return neox_mlp(m, spec["prefix"], x, spec["act"])
    return gated_mlp(m, spec["prefix"], x, spec["act"])


# ---- layers and the whole model ----------------------------------------------

def attention_block(m, a, x, positions):
    return mla_block(m, a, x, positions) if a["kind"] == "mla" else mha_block(m, a, x, positions)


def decoder_layer(m, layer, x, positions):
    """One layer in the family's residual arrangement:
    pre      h = x + attn(n1 x);           out = h + mlp(n2 h)       (Llama, ...)
    post     h = x + n_pa attn(x);         out = h + n_pf mlp(h)     (OLMo2)
    sandwich h = x + n_pa attn(n_in x);    out = h + n_pf mlp(n_pre h) (Gemma 2/3)
    parallel out = x + attn(n1 x) + mlp(n2 x)                        (NeoX)"""
    n = layer["norms"]

    def N(key, v):
        return apply_norm(m, n[key], v)

    attn = lambda v: attention_block(m, layer["attn"], v, positions)
    mlp = lambda v: mlp_block(m, layer["mlp"], v)
    block = layer["block"]
    if block == "parallel":
        return x + attn(N("input_layernorm", x)) + mlp(N("post_attention_layernorm", x))
    if block == "post":
        h = x + N("post_attention_layernorm", attn(x))
        return h + N("post_feedforward_layernorm", mlp(h))
    if block == "sandwich":
        h = x + N("post_attention_layernorm", attn(N("input_layernorm", x)))
        return h + N("post_feedforward_layernorm", mlp(N("pre_feedforward_layernorm", h)))
    h = x + attn(N("input_layernorm", x))
    return h + mlp(N("post_attention_layernorm", h))


def embed(m, tokens):
    x = m.w(m.embed)[tokens]
    if m.embed_scale is not None:
        x = x * m.dtype(m.embed_scale)
    return x


def forward(m, tokens, positions=None):
    """T token ids -> T x V logits (teacher-forced). positions: T ids (default
    0..T-1), or 3 x T for M-RoPE (default: all three rows 0..T-1)."""
    tokens = np.asarray(tokens, dtype=np.int64)
    V = m.w(m.embed).shape[0]
    if tokens.ndim != 1 or len(tokens) == 0 or tokens.min() < 0 or tokens.max() >= V:
        raise ValueError("token ids must be a non-empty list in [0, %d)" % V)
    if positions is None:
        positions = np.arange(len(tokens))
        if any(layer["attn"]["rope"].get("mrope_section") for layer in m.layers):
            positions = np.stack([positions] * 3)
    x = embed(m, tokens)
    for layer in m.layers:
        x = decoder_layer(m, layer, x, positions)
    x = apply_norm(m, m.final_norm, x)
    return softcap(x @ m.w(m.head).T, m.final_cap)


def greedy_generate(m, prompt, n, stop=None):
    """Append the argmax token n times (stopping after `stop` if it appears);
    returns only the new ids."""
    seq = list(prompt)
    for _ in range(n):
        nxt = int(np.argmax(forward(m, seq)[-1]))
        if stop is not None and nxt == stop:
            break
        seq.append(nxt)
    return seq[len(prompt):]


def load_model(path, dtype=np.float64, embed_scale="hf"):
    """An HF folder (or a .safetensors inside one) or a llama2.c .bin."""
    if os.path.isdir(path):
        config, tensors, dtypes = read_hf_folder(path)
    elif path.endswith(".safetensors"):
        config, tensors, dtypes = read_hf_folder(os.path.dirname(path) or ".")
    else:
        config, tensors, dtypes = read_llama2c(path)
    return Model(config, tensors, dtypes, dtype, embed_scale)


# ---- llama2.c tokenizer, for the stories text --------------------------------

def read_llama2c_tokenizer(path):
    """tok512.bin: int32 max_token_length, then per token float32 score, int32
    length, bytes."""
    with open(path, "rb") as f:
        blob = f.read()
    pos, vocab = 4, []
    while pos < len(blob):
        (length,) = struct.unpack_from("<i", blob, pos + 4)
        vocab.append(blob[pos + 8:pos + 8 + length])
        pos += 8 + length
    return vocab


def llama2c_piece(vocab, prev, token):
    """run.c's decode + safe_printf: drop the space after BOS, turn <0xNN> into
    its byte, print nothing for a lone unprintable byte."""
    piece = vocab[token]
    if prev == 1 and piece.startswith(b" "):
        piece = piece[1:]
    if len(piece) == 6 and piece.startswith(b"<0x") and piece.endswith(b">"):
        try:
            piece = bytes([int(piece[3:5], 16)])
        except ValueError:
            pass
    if len(piece) == 1 and not (32 <= piece[0] < 127 or piece[0] in b"\t\n\v\f\r"):
        return b""
    return piece


def llama2c_story(m, vocab, steps):
    """run.c's generate at temperature 0 from BOS: `steps` positions, stopping
    at a BOS; returns the printed bytes."""
    ids = greedy_generate(m, [1], steps, stop=1)
    out, prev = [], 1
    for t in ids:
        out.append(llama2c_piece(vocab, prev, t))
        prev = t
    return b"".join(out)


# ---- command line ------------------------------------------------------------

def parse_ids(text):
    try:
        return [int(t) for t in text.split(",") if t.strip() != ""]
    except ValueError:
        raise argparse.ArgumentTypeError("--tokens: not a comma-separated list of ids: %r" % text)


def main(argv):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="families (model_type): %s, llama2c (.bin)" % ", ".join(
            k for k in FAMILY_PLANS if k != "llama2c"))
    ap.add_argument("model", help="HF folder or llama2.c .bin")
    ap.add_argument("--tokens", type=parse_ids, required=True, help="comma-separated ids")
    ap.add_argument("--out", help="write the T x V logits as .npy")
    ap.add_argument("--f32", action="store_true", help="write float32 (default float64)")
    ap.add_argument("--precision", choices=("f64", "f32"), default="f64",
                    help="compute precision (default f64)")
    ap.add_argument("--embed-scale", choices=("hf", "exact"), default="hf",
                    help="Gemma's sqrt(D): rounded to the stored dtype as HF (default) or exact")
    ap.add_argument("--generate", type=int, default=0, metavar="N",
                    help="continue greedily for N tokens and print the ids")
    args = ap.parse_args(argv)
    dtype = np.float32 if args.precision == "f32" else np.float64
    try:
        m = load_model(args.model, dtype, args.embed_scale)
        logits = forward(m, args.tokens)
    except (OSError, ValueError, KeyError, IndexError, struct.error) as e:
        print("reference_forward.py: %s: %s" % (args.model, e), file=sys.stderr)
        return 2
    if args.out:
        np.save(args.out, logits.astype(np.float32 if args.f32 else np.float64))
    else:
        for t, row in enumerate(logits):
            print("%d\t%d\t%.6f" % (t, int(np.argmax(row)), float(np.max(row))))
    if args.generate:
        print(",".join(str(t) for t in greedy_generate(m, args.tokens, args.generate)))
    return 0


__doc__ = __doc__ % {"families": ", ".join(k for k in FAMILY_PLANS if k != "llama2c")}

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
