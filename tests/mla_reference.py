#!/usr/bin/python3
"""Multi-head latent attention in NumPy, written from DeepSeek's published
definition (DeepSeek-V2 paper, section 2.1; the DeepseekV2Attention,
DeepseekV2YarnRotaryEmbedding and apply_rotary_pos_emb of DeepSeek's
modeling_deepseek.py), not from ropefold. float64 throughout.

    mla_reference.py --model DIR|FILE.gguf --dump JSON [--layer N] [--tol X]

reads the weights of one layer with this file's own small safetensors and
GGUF (F32) readers, takes x from the JSON that tests/mla_dump wrote (ropefold's
input and its attention update y), computes y here and exits 1 when the two
differ by more than tol relative to max |y|.

A GGUF layer whose kv_b_proj llama.cpp's converter split into attn_k_b
(per head W_uk,h transposed, [H, Lkv, dn]) and attn_v_b (W_uv,h, [H, dv, Lkv])
is computed in the absorbed form those tensors exist for (DeepSeek-V2
paper, section 2.1.2: W_uk folded into the query, W_uv after the softmax),
straight from the pair: the nope score q_nope,h W_uk,h . c_n against the
normed latent itself, the head's output (softmax . c_n) W_uv,h^T.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np


# ---- DeepSeek's rotary embedding -----------------------------------------

def yarn_find_correction_dim(num_rotations, dim, base, max_pos):
    return (dim * math.log(max_pos / (num_rotations * 2 * math.pi))) / (2 * math.log(base))


def yarn_find_correction_range(low_rot, high_rot, dim, base, max_pos):
    low = math.floor(yarn_find_correction_dim(low_rot, dim, base, max_pos))
    high = math.ceil(yarn_find_correction_dim(high_rot, dim, base, max_pos))
    return max(low, 0), min(high, dim - 1)


def yarn_get_mscale(scale=1.0, mscale=1.0):
    if scale <= 1:
        return 1.0
    return 0.1 * mscale * math.log(scale) + 1.0


def yarn_linear_ramp_mask(lo, hi, dim):
    if lo == hi:
        hi += 0.001
    return np.clip((np.arange(dim, dtype=np.float64) - lo) / (hi - lo), 0, 1)


def rope_cos_sin(dim, base, T, scaling):
    """cos, sin (T x dim) in DeepSeek's half-split order (emb = [f, f])."""
    exps = np.arange(0, dim, 2, dtype=np.float64) / dim
    inv_freq = 1.0 / base ** exps
    mscale = 1.0
    if scaling and scaling.get("type", scaling.get("rope_type")) == "yarn":
        f = scaling["factor"]
        freq_extra = inv_freq
        freq_inter = 1.0 / (f * base ** exps)
        lo, hi = yarn_find_correction_range(scaling.get("beta_fast", 32),
                                            scaling.get("beta_slow", 1), dim, base,
                                            scaling.get("original_max_position_embeddings", 4096))
        mask = 1.0 - yarn_linear_ramp_mask(lo, hi, dim // 2)
        inv_freq = freq_inter * (1 - mask) + freq_extra * mask
        mscale = yarn_get_mscale(f, scaling.get("mscale", 1)) / \
            yarn_get_mscale(f, scaling.get("mscale_all_dim", 0))
    freqs = np.outer(np.arange(T, dtype=np.float64), inv_freq)
    emb = np.concatenate([freqs, freqs], axis=-1)
    return np.cos(emb) * mscale, np.sin(emb) * mscale


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def apply_rotary_pos_emb(q, k, cos, sin, interleave=True):
    """DeepSeek's: the stored (interleaved) coordinates are first permuted
    to half-split: view(d/2, 2).transpose -> [x0, x2, ..., x1, x3, ...].
    HF's DeepseekV3 with rope_interleave false skips the permutation."""
    def perm(x):
        d = x.shape[-1]
        return x.reshape(x.shape[:-1] + (d // 2, 2)).swapaxes(-1, -2).reshape(x.shape)
    if interleave:
        q, k = perm(q), perm(k)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


# ---- the attention ---------------------------------------------------------

def mla_attention(W, cfg, x):
    """W: the layer's weights by HF suffix; x: T x D. Returns o_proj(attn)."""
    T = x.shape[0]
    H = cfg["num_attention_heads"]
    dn, dr, dv = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
    Lkv = cfg["kv_lora_rank"]
    # the latent norms: DeepseekV2RMSNorm(q_lora_rank) with its default eps
    # (1e-6) in DeepSeek's code; llama.cpp gives them the file's RMS eps
    eps = cfg.get("latent_norm_eps", 1e-6)
    dq = dn + dr
    if cfg.get("q_lora_rank"):
        q = rmsnorm(x @ W["q_a_proj"].T, W["q_a_layernorm"], eps) @ W["q_b_proj"].T
    else:
        q = x @ W["q_proj"].T
    q = q.reshape(T, H, dq).transpose(1, 0, 2)            # H x T x dq
    q_nope, q_pe = q[..., :dn], q[..., dn:]
    ckv = x @ W["kv_a_proj_with_mqa"].T                   # T x (Lkv + dr)
    c, k_pe = ckv[:, :Lkv], ckv[:, Lkv:]
    k_pe = k_pe.reshape(1, T, dr)                         # one head
    c_n = rmsnorm(c, W["kv_a_layernorm"], eps)            # T x Lkv
    rs = cfg.get("rope_scaling")
    cos, sin = rope_cos_sin(dr, cfg.get("rope_theta", 10000.0), T, rs)
    q_pe, k_pe = apply_rotary_pos_emb(q_pe, k_pe, cos, sin, cfg.get("rope_interleave", True))
    scale = dq ** -0.5
    if rs:
        mall = rs.get("mscale_all_dim", 0)
        if mall:
            m = yarn_get_mscale(rs["factor"], mall)
            scale = scale * m * m
    s_pe = q_pe @ np.broadcast_to(k_pe, (H, T, dr)).transpose(0, 2, 1)
    mask = np.triu(np.full((T, T), -np.inf), 1)
    if "k_b_proj" in W:
        # absorbed: k_b[h] = W_uk,h^T (Lkv x dn), v_b[h] = W_uv,h (dv x Lkv)
        k_b, v_b = W["k_b_proj"], W["v_b_proj"]
        assert k_b.shape == (H, Lkv, dn) and v_b.shape == (H, dv, Lkv)
        q_lat = q_nope @ k_b.transpose(0, 2, 1)           # H x T x Lkv
        s = (q_lat @ c_n.T + s_pe) * scale + mask
        p = np.exp(s - s.max(axis=-1, keepdims=True))
        p = p / p.sum(axis=-1, keepdims=True)
        out = (p @ c_n) @ v_b.transpose(0, 2, 1)          # H x T x dv
        return out.transpose(1, 0, 2).reshape(T, H * dv) @ W["o_proj"].T
    kv = (c_n @ W["kv_b_proj"].T)
    kv = kv.reshape(T, H, dn + dv).transpose(1, 0, 2)
    k_nope, v = kv[..., :dn], kv[..., dn:]
    s = (q_nope @ k_nope.transpose(0, 2, 1) + s_pe) * scale + mask
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p = p / p.sum(axis=-1, keepdims=True)
    ctx = (p @ v).transpose(1, 0, 2).reshape(T, H * dv)
    return ctx @ W["o_proj"].T


# ---- reading the fixtures back (F32, and F64 safetensors of a fold) ----------

def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in head.items():
        if name == "__metadata__":
            continue
        dt = {"F32": "<f4", "F64": "<f8"}[t["dtype"]]
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=dt).astype(np.float64).reshape(t["shape"])
    return out


def read_gguf(path):
    """The metadata (numbers and strings) and F32, F16 and Q8_0 tensors of a GGUF v3
    file."""
    buf = open(path, "rb").read()
    pos = [0]

    def take(fmt):
        v = struct.unpack_from(fmt, buf, pos[0])
        pos[0] += struct.calcsize(fmt)
        return v[0]

    def string():
        n = take("<Q")
        s = buf[pos[0]:pos[0] + n].decode()
        pos[0] += n
        return s

    scalar = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
              10: "<Q", 11: "<q", 12: "<d"}

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("<I"), take("<Q")
            return [value(et) for _ in range(n)]
        return take(scalar[t])

    assert buf[:4] == b"GGUF"
    pos[0] = 4
    take("<I")
    nt, nkv = take("<Q"), take("<Q")
    meta = {}
    for _ in range(nkv):
        k = string()
        meta[k] = value(take("<I"))
    infos = []
    for _ in range(nt):
        name = string()
        nd = take("<I")
        ne = [take("<Q") for _ in range(nd)]
        ty, off = take("<I"), take("<Q")
        infos.append((name, ne, ty, off))
    align = meta.get("general.alignment", 32)
    base = (pos[0] + align - 1) // align * align
    ts = {}
    for name, ne, ty, off in infos:
        assert ty in (0, 1, 8)
        n = int(np.prod(ne))
        if ty == 8:
            # ggml's block_q8_0: an f16 scale d, then 32 int8 q; x = d q
            blk = np.frombuffer(buf, dtype=np.uint8, count=n // 32 * 34,
                                offset=base + off).reshape(-1, 34)
            d = blk[:, :2].copy().view("<f2").astype(np.float64)
            a = (blk[:, 2:].copy().view(np.int8).astype(np.float64) * d).reshape(-1)
        else:
            a = np.frombuffer(buf, dtype="<f4" if ty == 0 else "<f2", count=n,
                              offset=base + off).astype(np.float64)
        ts[name] = a.reshape(list(reversed(ne)))
    return meta, ts


GGUF_TO_HF = {"attn_q_a": "q_a_proj", "attn_q_a_norm": "q_a_layernorm",
              "attn_q_b": "q_b_proj", "attn_q": "q_proj", "attn_kv_a_mqa": "kv_a_proj_with_mqa",
              "attn_kv_a_norm": "kv_a_layernorm", "attn_kv_b": "kv_b_proj",
              "attn_output": "o_proj", "attn_k_b": "k_b_proj", "attn_v_b": "v_b_proj"}


def load_layer(path, layer):
    """(weights by HF name, an HF-style config) of one layer."""
    if os.path.isdir(path):
        cfg = json.load(open(os.path.join(path, "config.json")))
        ts = read_safetensors(os.path.join(path, "model.safetensors"))
        p = "model.layers.%d.self_attn." % layer
        W = {k[len(p):-len(".weight")]: v for k, v in ts.items() if k.startswith(p)}
        return W, cfg
    meta, ts = read_gguf(path)
    a = "deepseek2."
    rope = meta[a + "rope.dimension_count"]
    # llama.cpp's MLA conversions: the per-head widths under the _mla keys
    # (key_length and value_length are then the cached latent's)
    mla = a + "attention.key_length_mla" in meta
    kl = meta[a + "attention.key_length_mla" if mla else a + "attention.key_length"]
    vl = meta[a + "attention.value_length_mla" if mla else a + "attention.value_length"]
    cfg = {"num_attention_heads": meta[a + "attention.head_count"],
           "qk_rope_head_dim": rope,
           "qk_nope_head_dim": kl - rope,
           "v_head_dim": vl,
           "kv_lora_rank": meta[a + "attention.kv_lora_rank"],
           "q_lora_rank": meta.get(a + "attention.q_lora_rank", 0),
           "latent_norm_eps": meta[a + "attention.layer_norm_rms_epsilon"],
           "rope_theta": meta.get(a + "rope.freq_base", 10000.0)}
    if meta.get(a + "rope.scaling.type") == "yarn":
        # llama.cpp's deepseek2: mscale_all_dim = yarn_log_multiplier / 0.1,
        # and cos/sin unscaled (the two mscales equal)
        mall = meta.get(a + "rope.scaling.yarn_log_multiplier", 0) / 0.1
        cfg["rope_scaling"] = {"type": "yarn", "factor": meta[a + "rope.scaling.factor"],
                               "original_max_position_embeddings":
                                   meta[a + "rope.scaling.original_context_length"],
                               "beta_fast": meta.get(a + "rope.scaling.yarn_beta_fast", 32),
                               "beta_slow": meta.get(a + "rope.scaling.yarn_beta_slow", 1),
                               "mscale": mall, "mscale_all_dim": mall}
    p = "blk.%d." % layer
    W = {GGUF_TO_HF[k[len(p):-len(".weight")]]: v for k, v in ts.items()
         if k.startswith(p) and k[len(p):-len(".weight")] in GGUF_TO_HF}
    return W, cfg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--dump", required=True)
    ap.add_argument("--layer", type=int, default=0)
    ap.add_argument("--tol", type=float, default=1e-12)
    a = ap.parse_args()
    d = json.load(open(a.dump))
    x = np.array(d["x"], dtype=np.float64).reshape(d["T"], d["D"])
    y = np.array(d["y"], dtype=np.float64).reshape(d["T"], d["D"])
    W, cfg = load_layer(a.model, a.layer)
    ref = mla_attention(W, cfg, x)
    err = np.max(np.abs(ref - y)) / np.max(np.abs(ref))
    print("relative error %.3g (tolerance %.3g)" % (err, a.tol))
    return 0 if err <= a.tol else 1


if __name__ == "__main__":
    sys.exit(main())
