#!/usr/bin/python3
"""Seeded tiny DeepSeek-V2-style checkpoints (multi-head latent attention).

    mla_fixtures.py --out PATH [--format hf|gguf] [--seed N] [--no-q-lora]
                    [--yarn | --yarn-mscale] [--kv-b whole|split|both] [--break KIND]

hf writes PATH/config.json (DeepseekV2Config's keys: q_lora_rank,
kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim, rope_scaling
with DeepSeek's yarn mscale keys) and PATH/model.safetensors with the tensor
names of DeepSeek's modelling code (self_attn.q_a_proj, q_a_layernorm,
q_b_proj or q_proj, kv_a_proj_with_mqa, kv_a_layernorm, kv_b_proj, o_proj;
a dense MLP on layer 0 and a tiny MoE on layer 1, as first_k_dense_replace
gives). gguf writes PATH as llama.cpp's `deepseek2` conversion stores the
same weights (attn_q_a, attn_q_a_norm, attn_q_b, attn_kv_a_mqa,
attn_kv_a_norm, attn_kv_b, attn_output; deepseek2.attention.q_lora_rank,
kv_lora_rank, key_length = nope + rope, value_length, rope.dimension_count =
rope; rows as HF stores them: the converter does not permute). All F32, but
the tensors whose names end as --f16 or --q8 list (GGUF: F16, ggml's Q8_0;
--wide makes kv_lora_rank, qk_nope_head_dim and v_head_dim 32, whole Q8_0
blocks, and q_lora_rank 48).

--rms-eps sets rms_norm_eps (DeepSeek's latent norms keep 1e-6; llama.cpp's
take the file's); --rope-half writes a DeepSeek-V3 config with
rope_interleave false (HF's option: rotate_half on the stored coordinates).

--kv-b (GGUF): whole writes attn_kv_b; split writes it as llama.cpp's
convert_hf_to_gguf.py (DeepseekV2Model.modify_tensors, since 2025) does for its
absorbed MLA graph: kv_b_proj viewed as [H, dn + dv, Lkv], cut into k_b
[H, dn, Lkv] and v_b [H, dv, Lkv], k_b transposed to [H, Lkv, dn]; GGUF dims
reversed, so attn_k_b ne {dn, Lkv, H} and attn_v_b ne {Lkv, dv, H}, as
llama-model.cpp's deepseek2 creates them. With it the converter's keys:
head_count_kv 1, key_length = kv_lora_rank + rope and value_length =
kv_lora_rank (the cached latent's widths), key_length_mla = nope + rope and
value_length_mla = v_head_dim. both writes attn_kv_b beside the pair (the
conversions that kept it).

--break: missing-kv-b (layer 1's kv_b_proj left out), no-rope-dim (the config
without qk_rope_head_dim), bad-kv-b (kv_b_proj one row short); with --kv-b
split: no-v-b (layer 1's attn_v_b left out), k-b-untransposed (layer 1's
attn_k_b stored [H, dn, Lkv]), k-b-short (layer 0's attn_k_b one head short);
with --kv-b both: split-differs (layer 1's attn_k_b not the attn_kv_b rows); with
either: no-mla-keys (key_length and value_length the latent's, but no _mla keys).
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from family_fixtures import write_safetensors  # noqa: E402

D, H, L, LQ, LKV, DN, DR, DV, V, FF = 32, 4, 2, 12, 16, 8, 4, 6, 64, 48


def weights(rng, q_lora):
    """{HF name: float32 array} in creation order."""
    ts = {}

    def lin(name, o, i):
        ts[name] = (rng.standard_normal((o, i)) / math.sqrt(i)).astype(np.float32)

    def norm(name, n):
        ts[name] = (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    ts["model.embed_tokens.weight"] = (rng.standard_normal((V, D)) * 0.5).astype(np.float32)
    for l in range(L):
        p = "model.layers.%d." % l
        norm(p + "input_layernorm.weight", D)
        a = p + "self_attn."
        if q_lora:
            lin(a + "q_a_proj.weight", LQ, D)
            norm(a + "q_a_layernorm.weight", LQ)
            lin(a + "q_b_proj.weight", H * (DN + DR), LQ)
        else:
            lin(a + "q_proj.weight", H * (DN + DR), D)
        lin(a + "kv_a_proj_with_mqa.weight", LKV + DR, D)
        norm(a + "kv_a_layernorm.weight", LKV)
        lin(a + "kv_b_proj.weight", H * (DN + DV), LKV)
        lin(a + "o_proj.weight", D, H * DV)
        norm(p + "post_attention_layernorm.weight", D)
        if l == 0:
            lin(p + "mlp.gate_proj.weight", FF, D)
            lin(p + "mlp.up_proj.weight", FF, D)
            lin(p + "mlp.down_proj.weight", D, FF)
        else:
            lin(p + "mlp.gate.weight", 4, D)
            for e in range(4):
                q = p + "mlp.experts.%d." % e
                lin(q + "gate_proj.weight", 16, D)
                lin(q + "up_proj.weight", 16, D)
                lin(q + "down_proj.weight", D, 16)
    norm("model.norm.weight", D)
    lin("lm_head.weight", V, D)
    return ts


def config(q_lora, yarn):
    c = {"architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2",
         "hidden_size": D, "num_attention_heads": H, "num_key_value_heads": H,
         "num_hidden_layers": L, "intermediate_size": FF, "moe_intermediate_size": 16,
         "n_routed_experts": 4, "num_experts_per_tok": 2, "first_k_dense_replace": 1,
         "q_lora_rank": LQ if q_lora else None, "kv_lora_rank": LKV,
         "qk_nope_head_dim": DN, "qk_rope_head_dim": DR, "v_head_dim": DV,
         "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "vocab_size": V,
         "max_position_embeddings": 256, "attention_bias": False,
         "tie_word_embeddings": False, "torch_dtype": "float32", "rope_scaling": None}
    if yarn:
        c["rope_scaling"] = {"type": "yarn", "factor": 4.0,
                             "original_max_position_embeddings": 64, "beta_fast": 32,
                             "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 0.707}
        if yarn == "mscale":
            # the two mscales apart: cos and sin are scaled too
            c["rope_scaling"]["mscale"] = 1.0
            c["rope_scaling"]["mscale_all_dim"] = 0.5
    return c


HF_TO_GGUF = {"q_a_proj": "attn_q_a", "q_a_layernorm": "attn_q_a_norm",
              "q_b_proj": "attn_q_b", "q_proj": "attn_q",
              "kv_a_proj_with_mqa": "attn_kv_a_mqa", "kv_a_layernorm": "attn_kv_a_norm",
              "kv_b_proj": "attn_kv_b", "o_proj": "attn_output"}


def gguf_name(n):
    if n == "model.embed_tokens.weight":
        return "token_embd.weight"
    if n == "model.norm.weight":
        return "output_norm.weight"
    if n == "lm_head.weight":
        return "output.weight"
    parts = n.split(".")
    l = parts[2]
    rest = ".".join(parts[3:-1])
    if rest == "input_layernorm":
        return "blk.%s.attn_norm.weight" % l
    if rest == "post_attention_layernorm":
        return "blk.%s.ffn_norm.weight" % l
    if rest.startswith("self_attn."):
        return "blk.%s.%s.weight" % (l, HF_TO_GGUF[rest[len("self_attn."):]])
    return "blk.%s.%s.weight" % (l, rest.replace(".", "_"))   # the MLP: any name


def split_kv_b(kvb):
    """kv_b_proj (H*(DN+DV) x LKV) as llama.cpp's converter cuts it: (k_b
    [H, LKV, DN], v_b [H, DV, LKV])."""
    kv = kvb.reshape(H, DN + DV, LKV)
    return (np.ascontiguousarray(kv[:, :DN, :].transpose(0, 2, 1)),
            np.ascontiguousarray(kv[:, DN:, :]))


def q8_0(arr):
    """arr's bytes as ggml's Q8_0 (block_q8_0: an f16 scale d = max|x| / 127,
    then 32 int8 round(x / d)), rows along the innermost dim."""
    x = np.ascontiguousarray(arr, dtype=np.float32).reshape(-1, 32)
    amax = np.max(np.abs(x), axis=1)
    d = amax / 127.0
    inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1), 0.0)
    q = np.round(x * inv[:, None]).astype(np.int8)
    out = bytearray()
    for k in range(x.shape[0]):
        out += np.float16(d[k]).tobytes() + q[k].tobytes()
    return bytes(out)


def write_gguf(path, ts, cfg, extra_kv=(), mla_keys=False, f16=(), q8=()):
    def s(x):
        x = x.encode()
        return struct.pack("<Q", len(x)) + x

    a = "deepseek2."
    kv = [("general.architecture", 8, s("deepseek2")),
          (a + "block_count", 4, struct.pack("<I", L)),
          (a + "embedding_length", 4, struct.pack("<I", D)),
          (a + "feed_forward_length", 4, struct.pack("<I", FF)),
          (a + "attention.head_count", 4, struct.pack("<I", H)),
          (a + "attention.head_count_kv", 4, struct.pack("<I", 1 if mla_keys else H)),
          (a + "attention.key_length", 4, struct.pack("<I", LKV + DR if mla_keys else DN + DR)),
          (a + "attention.value_length", 4, struct.pack("<I", LKV if mla_keys else DV)),
          (a + "attention.kv_lora_rank", 4, struct.pack("<I", LKV)),
          (a + "rope.dimension_count", 4, struct.pack("<I", DR)),
          (a + "rope.freq_base", 6, struct.pack("<f", 10000.0)),
          (a + "attention.layer_norm_rms_epsilon", 6, struct.pack("<f", cfg["rms_norm_eps"])),
          (a + "vocab_size", 4, struct.pack("<I", V)),
          ("general.alignment", 4, struct.pack("<I", 32))]
    if mla_keys and mla_keys != "latent-only":
        kv += [(a + "attention.key_length_mla", 4, struct.pack("<I", DN + DR)),
               (a + "attention.value_length_mla", 4, struct.pack("<I", DV))]
    if cfg["q_lora_rank"]:
        kv.append((a + "attention.q_lora_rank", 4, struct.pack("<I", LQ)))
    rs = cfg["rope_scaling"]
    if rs:
        kv += [(a + "rope.scaling.type", 8, s("yarn")),
               (a + "rope.scaling.factor", 6, struct.pack("<f", rs["factor"])),
               (a + "rope.scaling.original_context_length", 4,
                struct.pack("<I", rs["original_max_position_embeddings"])),
               (a + "rope.scaling.yarn_log_multiplier", 6,
                struct.pack("<f", 0.1 * rs["mscale_all_dim"]))]
    kv += list(extra_kv)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(ts), len(kv))
    for k, t, v in kv:
        head += s(k) + struct.pack("<I", t) + v
    body, off = b"", 0
    for name, arr in ts.items():
        half = any(name.endswith(x) for x in f16)
        quant = any(name.endswith(x) for x in q8)
        head += s(name) + struct.pack("<I", arr.ndim)
        head += b"".join(struct.pack("<Q", n) for n in reversed(arr.shape))
        head += struct.pack("<IQ", 8 if quant else 1 if half else 0, off)
        raw = q8_0(arr) if quant else \
            np.ascontiguousarray(arr, dtype="<f2" if half else "<f4").tobytes()
        pad = (-len(raw)) % 32
        body += raw + b"\0" * pad
        off += len(raw) + pad
    head += b"\0" * ((-len(head)) % 32)
    with open(path, "wb") as f:
        f.write(head + body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--format", choices=["hf", "gguf"], default="hf")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-q-lora", action="store_true")
    ap.add_argument("--yarn", action="store_true")
    ap.add_argument("--yarn-mscale", action="store_true")
    ap.add_argument("--rms-eps", type=float, default=1e-6)
    ap.add_argument("--rope-half", action="store_true",
                    help="rope_interleave false (HF DeepseekV3): the rope part half-split")
    ap.add_argument("--kv-b", choices=["whole", "split", "both"], default="whole")
    ap.add_argument("--f16", default="",
                    help="comma-separated tensor name endings stored as F16 (GGUF)")
    ap.add_argument("--q8", default="",
                    help="comma-separated tensor name endings stored as Q8_0 (GGUF)")
    ap.add_argument("--wide", action="store_true",
                    help="kv_lora_rank, qk_nope_head_dim, v_head_dim 32 (Q8_0 rows), q_lora_rank 48")
    ap.add_argument("--break", dest="brk", default=None,
                    choices=["missing-kv-b", "no-rope-dim", "bad-kv-b", "no-v-b",
                             "k-b-untransposed", "k-b-short", "split-differs",
                             "no-mla-keys"])
    a = ap.parse_args()
    if a.wide:
        # q_lora_rank past qk_nope_head_dim, as in DeepSeek's models: else
        # q_nope's rows cannot determine a head's rotation
        global LQ, LKV, DN, DV
        LQ, LKV, DN, DV = 48, 32, 32, 32
    rng = np.random.default_rng(a.seed)
    q_lora = not a.no_q_lora
    ts = weights(rng, q_lora)
    cfg = config(q_lora, "mscale" if a.yarn_mscale else a.yarn)
    cfg["rms_norm_eps"] = a.rms_eps
    if a.rope_half:
        cfg["model_type"] = "deepseek_v3"
        cfg["architectures"] = ["DeepseekV3ForCausalLM"]
        cfg["rope_interleave"] = False
    if a.brk == "missing-kv-b":
        del ts["model.layers.1.self_attn.kv_b_proj.weight"]
    if a.brk == "bad-kv-b":
        k = "model.layers.1.self_attn.kv_b_proj.weight"
        ts[k] = ts[k][:-1]
    if a.brk == "no-rope-dim":
        del cfg["qk_rope_head_dim"]
    if a.format == "hf":
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        write_safetensors(os.path.join(a.out, "model.safetensors"), ts, "f32")
        return 0
    g = {}
    for n, v in ts.items():
        name = gguf_name(n)
        if not name.endswith("attn_kv_b.weight") or a.kv_b == "whole":
            g[name] = v
            continue
        # the converter yields the pair where kv_b_proj was (and the
        # conversions that kept attn_kv_b, it first)
        if a.kv_b == "both":
            g[name] = v
        k_b, v_b = split_kv_b(v)
        g[name.replace("attn_kv_b", "attn_k_b")] = k_b
        g[name.replace("attn_kv_b", "attn_v_b")] = v_b
    if a.brk == "no-v-b":
        del g["blk.1.attn_v_b.weight"]
    if a.brk == "k-b-untransposed":
        k = "blk.1.attn_k_b.weight"
        g[k] = np.ascontiguousarray(g[k].transpose(0, 2, 1))
    if a.brk == "k-b-short":
        k = "blk.0.attn_k_b.weight"
        g[k] = g[k][:-1]
    if a.brk == "split-differs":
        k = "blk.1.attn_k_b.weight"
        g[k] = g[k].copy()
        g[k][2, 3, 1] += 0.25
    keys = a.kv_b != "whole" and ("latent-only" if a.brk == "no-mla-keys" else True)
    write_gguf(a.out, g, cfg, mla_keys=keys,
               f16=tuple(x for x in a.f16.split(",") if x),
               q8=tuple(x for x in a.q8.split(",") if x))
    return 0


if __name__ == "__main__":
    sys.exit(main())
