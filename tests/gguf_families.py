#!/usr/bin/python3
"""HF fixture folders (tests/family_fixtures.py) written as GGUF files the
way llama.cpp's converter writes them, for the families whose GGUF layout
differs from HF's: tensor names, Q/K rows permuted to interleaved for the
NORM architectures (llama), Gemma's norms stored as 1 + w (Gemma 2/3's
sandwich norms, windows, soft-caps and local RoPE base as metadata), GPT-NeoX's
per-head query_key_value split into [q; k; v], Phi-3's gate_up_proj as
ffn_up, experts stacked into [E, F, D] tensors (Mixtral, arch llama: also
as older converters wrote them, one tensor per expert,
blk.N.ffn_gate.E.weight, with old_experts). F32 throughout, so the
values are exact. Written from llama.cpp's documented conventions
(convert_hf_to_gguf.py, llama-arch), not from ropefold.

    gguf_families.py FOLDER OUT.gguf [--old-experts]
"""
import json
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference_forward as rf  # noqa: E402

ARCH = {"gemma2": "gemma2", "gemma3_text": "gemma3", "llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "gemma": "gemma",
        "olmo2": "olmo2", "phi3": "phi3", "gpt_neox": "gptneox", "qwen2_moe": "qwen2moe",
        "mixtral": "llama"}


def permute(w, n):
    """HF rows (half-split) to llama.cpp's interleaved ones."""
    hd = w.shape[0] // n
    return w.reshape(n, 2, hd // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def convert(folder, old_experts=False):
    cfg, t, _ = rf.read_hf_folder(folder)
    kind = cfg["model_type"]
    arch = ARCH[kind]
    H = cfg["num_attention_heads"]
    G = cfg.get("num_key_value_heads") or H
    hd = cfg.get("head_dim") or cfg["hidden_size"] // H
    out = {}
    plus = 1.0 if kind.startswith("gemma") else 0.0
    if kind == "gpt_neox":
        pre, layers = "gpt_neox.", "gpt_neox.layers.%d."
        names = {"input_layernorm": "attn_norm", "attention.dense": "attn_output",
                 "post_attention_layernorm": "ffn_norm", "mlp.dense_h_to_4h": "ffn_up",
                 "mlp.dense_4h_to_h": "ffn_down"}
        out["token_embd.weight"] = t["gpt_neox.embed_in.weight"]
        out["output_norm.weight"] = t["gpt_neox.final_layer_norm.weight"]
        out["output_norm.bias"] = t["gpt_neox.final_layer_norm.bias"]
        out["output.weight"] = t["embed_out.weight"]
    else:
        pre, layers = "model.", "model.layers.%d."
        sandwich = kind in ("gemma2", "gemma3_text")
        post = "post_attention_norm" if kind == "olmo2" or sandwich else "ffn_norm"
        names = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q",
                 "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
                 "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm",
                 "self_attn.k_norm": "attn_k_norm", "self_attn.qkv_proj": "attn_qkv",
                 "post_attention_layernorm": post,
                 "post_feedforward_layernorm": "post_ffw_norm",
                 "pre_feedforward_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate",
                 "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
                 "mlp.gate_up_proj": "ffn_up", "mlp.gate": "ffn_gate_inp",
                 "mlp.shared_expert.gate_proj": "ffn_gate_shexp",
                 "mlp.shared_expert.up_proj": "ffn_up_shexp",
                 "mlp.shared_expert.down_proj": "ffn_down_shexp",
                 "mlp.shared_expert_gate": "ffn_gate_inp_shexp",
                 "block_sparse_moe.gate": "ffn_gate_inp"}
        out["token_embd.weight"] = t["model.embed_tokens.weight"]
        out["output_norm.weight"] = t["model.norm.weight"] + plus
        if not cfg.get("tie_word_embeddings") and "lm_head.weight" in t:
            out["output.weight"] = t["lm_head.weight"]
    for l in range(cfg["num_hidden_layers"]):
        p = layers % l
        for hf, g in names.items():
            for part in ("weight", "bias"):
                name = p + hf + "." + part
                if name not in t:
                    continue
                w = t[name]
                if "norm" in hf and part == "weight":
                    w = w + plus
                if arch == "llama" and g in ("attn_q", "attn_k"):
                    w = permute(w, H if g == "attn_q" else G)
                if g == "ffn_gate_inp_shexp":
                    w = w.reshape(-1)
                out["blk.%d.%s.%s" % (l, g, part)] = w
        if kind == "gpt_neox":
            qkv = t[p + "attention.query_key_value.weight"].reshape(H, 3, hd, -1)
            out["blk.%d.attn_qkv.weight" % l] = np.concatenate([qkv[:, i].reshape(H * hd, -1)
                                                                for i in range(3)])
            b = t[p + "attention.query_key_value.bias"].reshape(H, 3, hd)
            out["blk.%d.attn_qkv.bias" % l] = np.concatenate([b[:, i].reshape(-1)
                                                              for i in range(3)])
        if kind == "qwen2_moe" and p + "mlp.experts.0.up_proj.weight" in t:
            E = cfg["num_experts"]
            for hf, g in (("gate_proj", "gate"), ("up_proj", "up"), ("down_proj", "down")):
                out["blk.%d.ffn_%s_exps.weight" % (l, g)] = np.stack(
                    [t[p + "mlp.experts.%d.%s.weight" % (e, hf)] for e in range(E)])
        if kind == "mixtral":
            # w1 gate, w3 up, w2 down
            for hf, g in (("w1", "gate"), ("w3", "up"), ("w2", "down")):
                ws = [t[p + "block_sparse_moe.experts.%d.%s.weight" % (e, hf)]
                      for e in range(cfg["num_local_experts"])]
                if old_experts:
                    for e, w in enumerate(ws):
                        out["blk.%d.ffn_%s.%d.weight" % (l, g, e)] = w
                else:
                    out["blk.%d.ffn_%s_exps.weight" % (l, g)] = np.stack(ws)
    kv = [("general.architecture", "s", arch), ("block_count", "u", cfg["num_hidden_layers"]),
          ("embedding_length", "u", cfg["hidden_size"]),
          ("feed_forward_length", "u", cfg["intermediate_size"]),
          ("attention.head_count", "u", H), ("attention.head_count_kv", "u", G),
          ("attention.key_length", "u", hd), ("attention.value_length", "u", hd),
          ("context_length", "u", cfg.get("max_position_embeddings", 2048)),
          ("vocab_size", "u", out["token_embd.weight"].shape[0])]
    if kind == "gpt_neox":
        kv += [("rope.dimension_count", "u", int(hd * cfg.get("rotary_pct", 1.0))),
               ("rope.freq_base", "f", cfg.get("rotary_emb_base", 10000)),
               ("attention.layer_norm_epsilon", "f", cfg.get("layer_norm_eps", 1e-5)),
               ("use_parallel_residual", "b", cfg.get("use_parallel_residual", True))]
    else:
        kv += [("rope.dimension_count", "u", int(hd * cfg.get("partial_rotary_factor", 1.0))),
               ("rope.freq_base", "f", cfg.get("rope_theta", 10000.0)),
               ("attention.layer_norm_rms_epsilon", "f", cfg.get("rms_norm_eps", 1e-6))]
    scaling = cfg.get("rope_scaling") or {}
    if scaling.get("rope_type", scaling.get("type")) == "linear":
        kv += [("rope.scaling.type", "s", "linear"), ("rope.scaling.factor", "f", scaling["factor"])]
    if kind in ("gemma2", "gemma3_text"):
        kv += [("attention.query_pre_attn_scalar", "u", cfg.get("query_pre_attn_scalar", hd))]
        if cfg.get("sliding_window"):
            kv += [("attention.sliding_window", "u", cfg["sliding_window"])]
        for key in ("attn_logit_softcapping", "final_logit_softcapping"):
            if cfg.get(key):
                kv += [(key, "f", cfg[key])]
        if kind == "gemma3_text" and cfg.get("sliding_window_pattern"):
            kv += [("attention.sliding_window_pattern", "u", cfg["sliding_window_pattern"])]
        if kind == "gemma3_text" and cfg.get("rope_local_base_freq"):
            kv += [("rope.freq_base_swa", "f", cfg["rope_local_base_freq"])]
    if kind == "qwen2_moe":
        kv += [("expert_count", "u", cfg["num_experts"]),
               ("expert_used_count", "u", cfg["num_experts_per_tok"]),
               ("expert_feed_forward_length", "u", cfg["moe_intermediate_size"]),
               ("expert_shared_feed_forward_length", "u",
                cfg["shared_expert_intermediate_size"]),
               ("expert_weights_norm", "b", bool(cfg.get("norm_topk_prob")))]
    if kind == "mixtral":
        kv += [("expert_count", "u", cfg["num_local_experts"]),
               ("expert_used_count", "u", cfg["num_experts_per_tok"])]
    return arch, kv, out


def s(x):
    x = x.encode()
    return struct.pack("<Q", len(x)) + x


def write(path, arch, kv, tensors):
    head = b""
    for key, typ, val in kv:
        k = key if key.startswith("general.") else arch + "." + key
        if typ == "s":
            head += s(k) + struct.pack("<I", 8) + s(val)
        elif typ == "u":
            head += s(k) + struct.pack("<II", 4, int(val))
        elif typ == "b":
            head += s(k) + struct.pack("<IB", 7, 1 if val else 0)
        else:
            head += s(k) + struct.pack("<If", 6, float(val))
    head += s("general.alignment") + struct.pack("<II", 4, 32)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv) + 1) + head
    body, off = b"", 0
    for name, a in tensors.items():
        raw = np.ascontiguousarray(a, "<f4").tobytes()
        head += s(name) + struct.pack("<I", a.ndim)
        head += b"".join(struct.pack("<Q", n) for n in reversed(a.shape))
        head += struct.pack("<IQ", 0, off)
        pad = (-len(raw)) % 32
        body += raw + b"\0" * pad
        off += len(raw) + pad
    head += b"\0" * ((-len(head)) % 32)
    with open(path, "wb") as f:
        f.write(head + body)


if __name__ == "__main__":
    write(sys.argv[2], *convert(sys.argv[1], "--old-experts" in sys.argv[3:]))
