#!/usr/bin/python3
"""Seeded tiny HF checkpoint folders, one per model family.

    family_fixtures.py --family NAME --out DIR [--seed N] [--dtype f32|bf16|f16]
                       [--tied | --untied]

writes DIR/config.json (the keys of the family's HF config class, as
`save_pretrained` writes them for a real checkpoint: rope_theta and
rope_scaling, not the newer rope_parameters) and DIR/model.safetensors (the
tensor names and shapes of the checkpoints people download: per-expert MoE
weights, fused Phi-3/NeoX projections). Every family is small (width 32-128,
2-3 layers, vocabulary 96-256) and shaped so that each code path of its
forward runs: GQA, partial rotary, biases, sliding windows shorter than the
test sequences, dense and MoE layers, RoPE scalings whose frequency ramps fall
inside the tiny head dims. Weights are random but scaled so that logits are
spread over a few units (softcapping and routing decisions really bite).
`--list` prints the family names.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np

# ---- writing safetensors by hand ---------------------------------------------

DTYPE_NAMES = {"f32": "F32", "bf16": "BF16", "f16": "F16"}
TORCH_DTYPE = {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}


def to_bf16_bits(a):
    """Round float32 values to bfloat16 (nearest, ties to even): uint16 bits."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def tensor_bytes(a, dtype):
    """The little-endian bytes of array a stored as dtype (f32, bf16, f16)."""
    if dtype == "f32":
        return np.ascontiguousarray(a, dtype="<f4").tobytes()
    if dtype == "f16":
        return np.ascontiguousarray(a, dtype="<f2").tobytes()
    return to_bf16_bits(a).astype("<u2").tobytes()


def write_safetensors(path, tensors, dtype):
    """tensors: {name: float array}. Header: 8-byte LE length, JSON padded with
    spaces to a multiple of 8, then the data, offsets tiling it exactly."""
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for name, a in tensors.items():
        blob = tensor_bytes(a, dtype)
        header[name] = {"dtype": DTYPE_NAMES[dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


# ---- random weights ----------------------------------------------------------

class Checkpoint:
    """Collects named random tensors in creation order (the seed fixes them)."""

    def __init__(self, rng):
        self.rng = rng
        self.tensors = {}

    def normal(self, name, shape, std):
        self.tensors[name] = (self.rng.standard_normal(shape) * std).astype(np.float32)

    def linear(self, name, out_dim, in_dim, bias=False):
        """name.weight [out][in] with std 1/sqrt(in); name.bias if asked."""
        self.normal(name + ".weight", (out_dim, in_dim), 1.0 / math.sqrt(in_dim))
        if bias:
            self.normal(name + ".bias", (out_dim,), 0.2)

    def norm(self, name, n, zero_centered=False, bias=False):
        """A norm weight near 1 (or near 0 where the family stores w of 1 + w)."""
        w = self.rng.standard_normal(n) * 0.1 + (0.0 if zero_centered else 1.0)
        self.tensors[name + ".weight"] = w.astype(np.float32)
        if bias:
            self.normal(name + ".bias", (n,), 0.1)

    def embedding(self, name, vocab, dim):
        self.normal(name, (vocab, dim), 2.0 / math.sqrt(dim))


def add_attention(ck, p, D, H, G, hd, qkv_bias=False, o_bias=False):
    ck.linear(p + "q_proj", H * hd, D, qkv_bias)
    ck.linear(p + "k_proj", G * hd, D, qkv_bias)
    ck.linear(p + "v_proj", G * hd, D, qkv_bias)
    ck.linear(p + "o_proj", D, H * hd, o_bias)


def add_gated_mlp(ck, p, D, inter, bias=False, names=("gate_proj", "up_proj", "down_proj")):
    ck.linear(p + names[0], inter, D, bias)
    ck.linear(p + names[1], inter, D, bias)
    ck.linear(p + names[2], D, inter, bias)


def add_head(ck, cfg, tied, final_norm="model.norm", zero_centered=False):
    ck.norm(final_norm, cfg["hidden_size"], zero_centered)
    if not tied:
        ck.normal("lm_head.weight", (cfg["vocab_size"], cfg["hidden_size"]),
                  2.0 / math.sqrt(cfg["hidden_size"]))
    cfg["tie_word_embeddings"] = tied


def base_config(arch, model_type, D, L, H, G, inter, vocab, max_pos=512):
    """The keys every decoder config shares, in HF's spelling."""
    return {"architectures": [arch], "model_type": model_type, "vocab_size": vocab,
            "hidden_size": D, "intermediate_size": inter, "num_hidden_layers": L,
            "num_attention_heads": H, "num_key_value_heads": G, "hidden_act": "silu",
            "max_position_embeddings": max_pos, "initializer_range": 0.02,
            "rms_norm_eps": 1e-6, "use_cache": True, "bos_token_id": 1,
            "eos_token_id": 2, "attention_dropout": 0.0, "rope_theta": 10000.0,
            "rope_scaling": None}


# ---- Llama, Mistral ----------------------------------------------------------

def llama_like(ck, tied, arch="LlamaForCausalLM", model_type="llama", bias=False, **extra):
    D, L, H, G, hd, inter, V = 64, 2, 4, 2, 16, 96, 128
    cfg = base_config(arch, model_type, D, L, H, G, inter, V)
    cfg.update({"pretraining_tp": 1, "attention_bias": bias, "mlp_bias": bias,
                "head_dim": hd, "pad_token_id": None})
    cfg.update(extra)
    ck.embedding("model.embed_tokens.weight", V, D)
    for l in range(L):
        p = "model.layers.%d." % l
        ck.norm(p + "input_layernorm", D)
        add_attention(ck, p + "self_attn.", D, H, G, hd, bias, bias)
        ck.norm(p + "post_attention_layernorm", D)
        add_gated_mlp(ck, p + "mlp.", D, inter, bias)
    add_head(ck, cfg, tied)
    return cfg


def fam_llama(ck, tied):
    return llama_like(ck, tied)


def fam_llama_bias(ck, tied):
    return llama_like(ck, tied, bias=True)


def fam_llama3(ck, tied):
    # original_max 64 puts the ramp's ends (wavelengths 16 and 64) among the
    # 8 pairs of head dim 16: pair 0 unscaled, pairs 1-2 smoothed, 3-7 divided.
    return llama_like(ck, tied, rope_scaling={
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 64})


def fam_llama_linear(ck, tied):
    # the legacy spelling "type" on purpose: HF still accepts it
    return llama_like(ck, tied, rope_scaling={"type": "linear", "factor": 2.0})


def fam_llama_dynamic(ck, tied):
    # dynamic NTK changes the base only past max_position_embeddings: 16 here
    return llama_like(ck, tied, max_position_embeddings=16,
                      rope_scaling={"rope_type": "dynamic", "factor": 2.0})


def fam_llama_yarn(ck, tied):
    # max_position_embeddings = factor * original, so HF versions that derive
    # the factor from that ratio and those that read it agree
    return llama_like(ck, tied, max_position_embeddings=128, rope_scaling={
        "rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32,
        "beta_fast": 32.0, "beta_slow": 1.0})


def fam_mistral(ck, tied):
    cfg = llama_like(ck, tied, arch="MistralForCausalLM", model_type="mistral",
                     sliding_window=8)
    for key in ("pretraining_tp", "attention_bias", "mlp_bias", "rope_scaling"):
        cfg.pop(key)
    return cfg


# ---- Qwen2, Qwen3, Qwen2-VL --------------------------------------------------

def qwen_config(arch, model_type, D, L, H, G, inter, V, window_layers=None, window=8):
    """Qwen's sliding-window keys; layer_types written out as newer HF does.
    Without window_layers the window stays written but disabled, as in the
    Qwen2 family's real configs (use_sliding_window false decides)."""
    cfg = base_config(arch, model_type, D, L, H, G, inter, V)
    sliding = window_layers is not None
    cfg.update({"use_sliding_window": sliding, "sliding_window": window,
                "max_window_layers": window_layers if sliding else L})
    cfg["layer_types"] = ["sliding_attention" if sliding and l >= window_layers
                          else "full_attention" for l in range(L)]
    return cfg


def qwen2_like(ck, tied, window_layers=None):
    D, L, H, G, hd, inter, V = 64, 2, 4, 2, 16, 96, 128
    cfg = qwen_config("Qwen2ForCausalLM", "qwen2", D, L, H, G, inter, V, window_layers)
    ck.embedding("model.embed_tokens.weight", V, D)
    for l in range(L):
        p = "model.layers.%d." % l
        ck.norm(p + "input_layernorm", D)
        add_attention(ck, p + "self_attn.", D, H, G, hd, qkv_bias=True)
        ck.norm(p + "post_attention_layernorm", D)
        add_gated_mlp(ck, p + "mlp.", D, inter)
    add_head(ck, cfg, tied)
    return cfg


def fam_qwen2(ck, tied):
    return qwen2_like(ck, tied)


def fam_qwen2_swa(ck, tied):
    return qwen2_like(ck, tied, window_layers=1)


def fam_qwen3(ck, tied):
    # head_dim 32 with 4 heads: H*hd = 128 differs from the width 64
    D, L, H, G, hd, inter, V = 64, 2, 4, 2, 32, 96, 128
    cfg = qwen_config("Qwen3ForCausalLM", "qwen3", D, L, H, G, inter, V, window=None)
    cfg.update({"head_dim": hd, "attention_bias": False})
    ck.embedding("model.embed_tokens.weight", V, D)
    for l in range(L):
        p = "model.layers.%d." % l
        ck.norm(p + "input_layernorm", D)
        add_attention(ck, p + "self_attn.", D, H, G, hd)
        ck.norm(p + "self_attn.q_norm", hd)
        ck.norm(p + "self_attn.k_norm", hd)
        ck.norm(p + "post_attention_layernorm", D)
        add_gated_mlp(ck, p + "mlp.", D, inter)
    add_head(ck, cfg, tied)
    return cfg


def fam_qwen2_vl(ck, tied):
    # the text part of Qwen2VLForConditionalGeneration, in the Hub checkpoints'
    # flat layout (model.layers.N...); mrope_section sums to head_dim / 2
    cfg = qwen2_like(ck, tied)
    cfg["architectures"] = ["Qwen2VLForConditionalGeneration"]
    cfg["model_type"] = "qwen2_vl"
    cfg["rope_scaling"] = {"type": "mrope", "mrope_section": [2, 3, 3]}
    cfg["vision_start_token_id"] = 3
    cfg["vision_end_token_id"] = 4
    cfg["image_token_id"] = 5
    cfg["video_token_id"] = 6
    cfg["vision_config"] = {"depth": 1, "embed_dim": 32, "hidden_size": cfg["hidden_size"],
                            "num_heads": 2, "patch_size": 14, "spatial_merge_size": 2,
                            "temporal_patch_size": 2, "in_chans": 3}
    return cfg


# ---- MoE: Qwen2-MoE, Qwen3-MoE, Mixtral --------------------------------------

def add_experts(ck, p, D, inter, n, names=("gate_proj", "up_proj", "down_proj")):
    for e in range(n):
        add_gated_mlp(ck, "%sexperts.%d." % (p, e), D, inter, names=names)


def fam_qwen2_moe(ck, tied):
    D, L, H, G, hd, inter, V = 64, 3, 4, 2, 16, 96, 128
    E, K, moe_inter, shared_inter = 8, 2, 32, 48
    cfg = qwen_config("Qwen2MoeForCausalLM", "qwen2_moe", D, L, H, G, inter, V)
    cfg.update({"decoder_sparse_step": 1, "moe_intermediate_size": moe_inter,
                "shared_expert_intermediate_size": shared_inter, "num_experts_per_tok": K,
                "num_experts": E, "norm_topk_prob": False, "output_router_logits": False,
                "router_aux_loss_coef": 0.001, "mlp_only_layers": [0]})
    ck.embedding("model.embed_tokens.weight", V, D)
    for l in range(L):
        p = "model.layers.%d." % l
        ck.norm(p + "input_layernorm", D)
        add_attention(ck, p + "self_attn.", D, H, G, hd, qkv_bias=True)
        ck.norm(p + "post_attention_layernorm", D)
        if l in cfg["mlp_only_layers"]:
            add_gated_mlp(ck, p + "mlp.", D, inter)
            continue
        ck.normal(p + "mlp.gate.weight", (E, D), 1.0)
        add_experts(ck, p + "mlp.", D, moe_inter, E)
        add_gated_mlp(ck, p + "mlp.shared_expert.", D, shared_inter)
        ck.linear(p + "mlp.shared_expert_gate", 1, D)
    add_head(ck, cfg, tied)
    return cfg


def fam_qwen3_moe(ck, tied):
    D, L, H, G, hd, inter, V = 64, 2, 4, 2, 32, 96, 128
    E, K, moe_inter = 8, 3, 32
    cfg = qwen_config("Qwen3MoeForCausalLM", "qwen3_moe", D, L, H, G, inter, V, window=None)
    cfg.update({"head_dim": hd, "attention_bias": False, "decoder_sparse_step": 1,
                "moe_intermediate_size": moe_inter, "num_experts_per_tok": K,
                "num_experts": E, "norm_topk_prob": True, "output_router_logits": False,
                "router_aux_loss_coef": 0.001, "mlp_only_layers": []})
    ck.embedding("model.embed_tokens.weight", V, D)
    for l in range(L):
        p = "model.layers.%d." % l
        ck.norm(p + "input_layernorm", D)
        add_attention(ck, p + "self_attn.", D, H, G, hd)
        ck.norm(p + "self_attn.q_norm", hd)
        ck.norm(p + "self_attn.k_norm", hd)
        ck.norm(p + "post_attention_layernorm", D)
        ck.normal(p + "mlp.gate.weight", (E, D), 1.0)
        add_experts(ck, p + "mlp.", D, moe_inter, E)
    add_head(ck, cfg, tied)
    return cfg


def fam_mixtral(ck, tied):
    D, L, H, G, hd, inter, V = 64, 2, 4, 2, 16, 48, 128
    E, K = 4, 2
    cfg = base_config("MixtralForCausalLM", "mixtral", D, L, H, G, inter, V)
    cfg.update({"head_dim": hd, "sliding_window": None, "num_experts_per_tok": K,
                "num_local_experts": E, "output_router_logits": False,
                "router_aux_loss_coef": 0.001, "router_jitter_noise": 0.0,
                "pad_token_id": None})
    cfg.pop("rope_scaling")
    ck.embedding("model.embed_tokens.weight", V, D)
    for l in range(L):
        p = "model.layers.%d." % l
        ck.norm(p + "input_layernorm", D)
        add_attention(ck, p + "self_attn.", D, H, G, hd)
        ck.norm(p + "post_attention_layernorm", D)
        ck.normal(p + "block_sparse_moe.gate.weight", (E, D), 1.0)
        add_experts(ck, p + "block_sparse_moe.", D, inter, E, names=("w1", "w3", "w2"))
    add_head(ck, cfg, tied)
    return cfg


# ---- OLMo2 -------------------------------------------------------------------

def fam_olmo2(ck, tied):
    D, L, H, G, hd, inter, V = 64, 2, 4, 2, 16, 96, 128
    cfg = base_config("Olmo2ForCausalLM", "olmo2", D, L, H, G, inter, V)
    cfg.update({"attention_bias": False, "pad_token_id": 1})
    ck.embedding("model.embed_tokens.weight", V, D)
    for l in range(L):
        p = "model.layers.%d." % l
        add_attention(ck, p + "self_attn.", D, H, G, hd)
        ck.norm(p + "self_attn.q_norm", H * hd)
        ck.norm(p + "self_attn.k_norm", G * hd)
        ck.norm(p + "post_attention_layernorm", D)
        add_gated_mlp(ck, p + "mlp.", D, inter)
        ck.norm(p + "post_feedforward_layernorm", D)
    add_head(ck, cfg, tied)
    return cfg


# ---- Gemma, Gemma2, Gemma3 ---------------------------------------------------

def gemma_layers(ck, cfg, hd, sandwich=False, qk_norm=False):
    D, H, G = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    # stored small: the model multiplies them by sqrt(D)
    ck.normal("model.embed_tokens.weight", (cfg["vocab_size"], D), 1.0 / math.sqrt(D))
    for l in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % l
        ck.norm(p + "input_layernorm", D, zero_centered=True)
        add_attention(ck, p + "self_attn.", D, H, G, hd)
        if qk_norm:
            ck.norm(p + "self_attn.q_norm", hd, zero_centered=True)
            ck.norm(p + "self_attn.k_norm", hd, zero_centered=True)
        ck.norm(p + "post_attention_layernorm", D, zero_centered=True)
        if sandwich:
            ck.norm(p + "pre_feedforward_layernorm", D, zero_centered=True)
            ck.norm(p + "post_feedforward_layernorm", D, zero_centered=True)
        add_gated_mlp(ck, p + "mlp.", D, cfg["intermediate_size"])


def gemma_config(arch, model_type, D, L, H, G, hd, inter, V):
    cfg = base_config(arch, model_type, D, L, H, G, inter, V)
    cfg.update({"head_dim": hd, "hidden_act": "gelu_pytorch_tanh",
                "hidden_activation": "gelu_pytorch_tanh", "pad_token_id": 0,
                "eos_token_id": 1, "bos_token_id": 2, "attention_bias": False})
    cfg.pop("rope_scaling")
    return cfg


def fam_gemma(ck, tied):
    # multi-query (one kv head) as gemma-2b; head_dim 32 explicit (H*hd != D);
    # width 96 so that sqrt(D) is not exact in 16-bit dtypes
    cfg = gemma_config("GemmaForCausalLM", "gemma", 96, 2, 4, 1, 32, 128, 128)
    gemma_layers(ck, cfg, 32)
    add_head(ck, cfg, tied, zero_centered=True)
    return cfg


def fam_gemma2(ck, tied):
    cfg = gemma_config("Gemma2ForCausalLM", "gemma2", 64, 3, 4, 2, 16, 96, 128)
    cfg.update({"query_pre_attn_scalar": 24, "sliding_window": 8,
                "final_logit_softcapping": 5.0, "attn_logit_softcapping": 4.0,
                "cache_implementation": "hybrid"})
    cfg["layer_types"] = ["sliding_attention" if (l + 1) % 2 else "full_attention"
                          for l in range(cfg["num_hidden_layers"])]
    gemma_layers(ck, cfg, 16, sandwich=True)
    add_head(ck, cfg, tied, zero_centered=True)
    return cfg


def gemma3_like(ck, tied, write_layer_types):
    cfg = gemma_config("Gemma3ForCausalLM", "gemma3_text", 64, 3, 4, 2, 16, 96, 128)
    cfg.update({"query_pre_attn_scalar": 16, "sliding_window": 8,
                "final_logit_softcapping": None, "attn_logit_softcapping": None,
                "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0,
                "rope_scaling": {"rope_type": "linear", "factor": 8.0},
                "sliding_window_pattern": 3, "cache_implementation": "hybrid",
                "use_bidirectional_attention": False})
    cfg.pop("hidden_act")
    if write_layer_types:
        cfg["layer_types"] = ["sliding_attention" if (l + 1) % 3 else "full_attention"
                              for l in range(cfg["num_hidden_layers"])]
    gemma_layers(ck, cfg, 16, sandwich=True, qk_norm=True)
    add_head(ck, cfg, tied, zero_centered=True)
    return cfg


def fam_gemma3(ck, tied):
    return gemma3_like(ck, tied, write_layer_types=True)


def fam_gemma3_pattern(ck, tied):
    # older configs: no layer_types, the layer pattern from sliding_window_pattern
    return gemma3_like(ck, tied, write_layer_types=False)


# ---- Phi-3 -------------------------------------------------------------------

def phi3_like(ck, tied, rope_scaling=None, original_max=4096, max_pos=4096, window=None):
    D, L, H, G, inter, V = 64, 2, 4, 2, 96, 128
    hd = D // H
    cfg = base_config("Phi3ForCausalLM", "phi3", D, L, H, G, inter, V, max_pos)
    cfg.update({"resid_pdrop": 0.0, "embd_pdrop": 0.0, "original_max_position_embeddings":
                original_max, "rope_scaling": rope_scaling, "partial_rotary_factor": 0.5,
                "sliding_window": window, "pad_token_id": 0, "eos_token_id": 2,
                "rms_norm_eps": 1e-5})
    ck.embedding("model.embed_tokens.weight", V, D)
    for l in range(L):
        p = "model.layers.%d." % l
        ck.norm(p + "input_layernorm", D)
        ck.linear(p + "self_attn.qkv_proj", (H + 2 * G) * hd, D)
        ck.linear(p + "self_attn.o_proj", D, H * hd)
        ck.norm(p + "post_attention_layernorm", D)
        ck.linear(p + "mlp.gate_up_proj", 2 * inter, D)
        ck.linear(p + "mlp.down_proj", D, inter)
    add_head(ck, cfg, tied)
    return cfg


def fam_phi3(ck, tied):
    # Phi-3-mini applies its sliding_window (2047 there) on every layer
    return phi3_like(ck, tied, window=12)


def fam_phi3_longrope(ck, tied):
    # rotary dim 8 (partial 0.5 of 16): 4 factors each; sequences longer than
    # original_max_position_embeddings = 16 switch to the long factors
    short = [1.0, 1.25, 1.5, 2.0]
    long = [1.0, 2.0, 4.0, 8.0]
    return phi3_like(ck, tied, {"type": "longrope", "short_factor": short,
                                "long_factor": long}, original_max=16, max_pos=64)


# ---- GPT-NeoX / Pythia -------------------------------------------------------

def neox_like(ck, tied, parallel):
    D, L, H, inter, V = 64, 2, 4, 256, 128
    cfg = {"architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox",
           "vocab_size": V, "hidden_size": D, "num_hidden_layers": L,
           "num_attention_heads": H, "intermediate_size": inter, "hidden_act": "gelu",
           "rotary_pct": 0.25, "rotary_emb_base": 10000, "attention_dropout": 0.0,
           "hidden_dropout": 0.0, "classifier_dropout": 0.1,
           "max_position_embeddings": 512, "initializer_range": 0.02,
           "layer_norm_eps": 1e-5, "use_cache": True, "bos_token_id": 0,
           "eos_token_id": 0, "use_parallel_residual": parallel, "rope_scaling": None,
           "attention_bias": True}
    ck.embedding("gpt_neox.embed_in.weight", V, D)
    for l in range(L):
        p = "gpt_neox.layers.%d." % l
        ck.norm(p + "input_layernorm", D, bias=True)
        ck.norm(p + "post_attention_layernorm", D, bias=True)
        # rows per head: [q_h; k_h; v_h] (NeoX's interleaved fused order)
        ck.linear(p + "attention.query_key_value", 3 * D, D, bias=True)
        ck.linear(p + "attention.dense", D, D, bias=True)
        ck.linear(p + "mlp.dense_h_to_4h", inter, D, bias=True)
        ck.linear(p + "mlp.dense_4h_to_h", D, inter, bias=True)
    ck.norm("gpt_neox.final_layer_norm", D, bias=True)
    if not tied:
        ck.normal("embed_out.weight", (V, D), 2.0 / math.sqrt(D))
    cfg["tie_word_embeddings"] = tied
    return cfg


def fam_gpt_neox(ck, tied):
    return neox_like(ck, tied, parallel=True)


def fam_gpt_neox_sequential(ck, tied):
    return neox_like(ck, tied, parallel=False)


# ---- DeepSeek-V2, DeepSeek-V3 (MLA) ------------------------------------------

def deepseek_like(ck, tied, version, q_lora_rank, topk_method, mscale, mscale_all_dim):
    D, L, H, inter, V = 64, 3, 4, 96, 128
    nope, rope, v_dim, kv_lora = 16, 8, 12, 24
    E, K, moe_inter = 8, 3, 32
    n_shared = 2 if version == 2 else 1
    arch = "DeepseekV%dForCausalLM" % version
    cfg = base_config(arch, "deepseek_v%d" % version, D, L, H, H, inter, V, max_pos=128)
    cfg.update({
        "moe_intermediate_size": moe_inter, "n_shared_experts": n_shared,
        "n_routed_experts": E, "ep_size": 1, "routed_scaling_factor": 1.5 if version == 2 else 2.5,
        "kv_lora_rank": kv_lora, "q_lora_rank": q_lora_rank, "qk_rope_head_dim": rope,
        "v_head_dim": v_dim, "qk_nope_head_dim": nope, "topk_method": topk_method,
        "n_group": 4, "topk_group": 2, "num_experts_per_tok": K, "moe_layer_freq": 1,
        "first_k_dense_replace": 1, "norm_topk_prob": version == 3,
        "scoring_func": "softmax" if version == 2 else "sigmoid",
        "aux_loss_alpha": 0.001, "seq_aux": True, "pretraining_tp": 1,
        "attention_bias": False, "pad_token_id": None,
        "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32,
                         "beta_fast": 32, "beta_slow": 1, "mscale": mscale,
                         "mscale_all_dim": mscale_all_dim}})
    ck.embedding("model.embed_tokens.weight", V, D)
    for l in range(L):
        p = "model.layers.%d." % l
        a = p + "self_attn."
        ck.norm(p + "input_layernorm", D)
        if q_lora_rank is None:
            ck.linear(a + "q_proj", H * (nope + rope), D)
        else:
            ck.linear(a + "q_a_proj", q_lora_rank, D)
            ck.norm(a + "q_a_layernorm", q_lora_rank)
            ck.linear(a + "q_b_proj", H * (nope + rope), q_lora_rank)
        ck.linear(a + "kv_a_proj_with_mqa", kv_lora + rope, D)
        ck.norm(a + "kv_a_layernorm", kv_lora)
        ck.linear(a + "kv_b_proj", H * (nope + v_dim), kv_lora)
        ck.linear(a + "o_proj", D, H * v_dim)
        ck.norm(p + "post_attention_layernorm", D)
        if l < cfg["first_k_dense_replace"]:
            add_gated_mlp(ck, p + "mlp.", D, inter)
            continue
        ck.normal(p + "mlp.gate.weight", (E, D), 1.0)
        if version == 3:
            # nonnegative: HF fills masked groups with 0.0 where DeepSeek's own
            # code uses -inf; with scores + bias > 0 both choose alike
            ck.tensors[p + "mlp.gate.e_score_correction_bias"] = \
                ck.rng.uniform(0.0, 0.2, E).astype(np.float32)
        add_experts(ck, p + "mlp.", D, moe_inter, E)
        add_gated_mlp(ck, p + "mlp.shared_experts.", D, moe_inter * n_shared)
    add_head(ck, cfg, tied)
    return cfg


def fam_deepseek_v2(ck, tied):
    return deepseek_like(ck, tied, 2, 32, "group_limited_greedy", 0.707, 0.707)


def fam_deepseek_v2_lite(ck, tied):
    return deepseek_like(ck, tied, 2, None, "greedy", 0.707, 0.707)


def fam_deepseek_v3(ck, tied):
    # mscale differs from mscale_all_dim, so both yarn factors are exercised
    return deepseek_like(ck, tied, 3, 32, "noaux_tc", 1.0, 0.707)


# ---- the table ---------------------------------------------------------------

# name: (builder, tied by default, what it exercises)
FAMILIES = {
    "llama": (fam_llama, False, "Llama: GQA 4/2, SwiGLU, RMSNorm, untied head"),
    "llama-bias": (fam_llama_bias, False, "Llama with attention_bias and mlp_bias"),
    "llama3": (fam_llama3, True, "Llama with llama3 rope_scaling, tied head"),
    "llama-linear": (fam_llama_linear, False, "Llama with linear rope_scaling (legacy 'type')"),
    "llama-dynamic": (fam_llama_dynamic, False, "Llama with dynamic NTK past max_position 16"),
    "llama-yarn": (fam_llama_yarn, False, "Llama with yarn rope_scaling"),
    "mistral": (fam_mistral, False, "Mistral: sliding_window 8 on every layer"),
    "qwen2": (fam_qwen2, True, "Qwen2: q/k/v biases, tied head, sliding_window written but disabled"),
    "qwen2-swa": (fam_qwen2_swa, False, "Qwen2 with sliding window from layer 1"),
    "qwen3": (fam_qwen3, False, "Qwen3: per-head q_norm/k_norm, head_dim 32 != D/H"),
    "qwen2-moe": (fam_qwen2_moe, False, "Qwen2-MoE: 8 experts top-2, shared expert with sigmoid gate, dense layer 0"),
    "qwen3-moe": (fam_qwen3_moe, False, "Qwen3-MoE: 8 experts top-3, norm_topk_prob"),
    "mixtral": (fam_mixtral, False, "Mixtral: block_sparse_moe, 4 experts top-2"),
    "olmo2": (fam_olmo2, False, "OLMo2: post-norms, q_norm/k_norm over all heads"),
    "gemma": (fam_gemma, True, "Gemma: GeGLU, (1+w) norms, sqrt(D) embed scale, MQA, head_dim 32"),
    "gemma2": (fam_gemma2, True, "Gemma2: sandwich norms, both softcaps, query_pre_attn_scalar, alternating windows"),
    "gemma3": (fam_gemma3, True, "Gemma3 text: q/k norms, local/global rope bases, layer_types, linear scaling on global"),
    "gemma3-pattern": (fam_gemma3_pattern, True, "Gemma3 text with sliding_window_pattern and no layer_types"),
    "phi3": (fam_phi3, False, "Phi-3: fused qkv_proj/gate_up_proj, partial_rotary_factor 0.5, sliding_window 12"),
    "phi3-longrope": (fam_phi3_longrope, False, "Phi-3 with longrope (switch at original_max_position_embeddings 16)"),
    "gpt-neox": (fam_gpt_neox, False, "GPT-NeoX/Pythia: fused per-head QKV, LayerNorm+bias, GELU, rotary_pct 0.25, parallel residual"),
    "gpt-neox-sequential": (fam_gpt_neox_sequential, False, "GPT-NeoX with use_parallel_residual false"),
    "deepseek-v2": (fam_deepseek_v2, False, "DeepSeek-V2 MLA with q_lora_rank, group_limited_greedy softmax router, yarn"),
    "deepseek-v2-lite": (fam_deepseek_v2_lite, False, "DeepSeek-V2 MLA with q_lora_rank null, greedy router"),
    "deepseek-v3": (fam_deepseek_v3, False, "DeepSeek-V3 MLA, sigmoid router with e_score_correction_bias, group top-k"),
    "qwen2-vl": (fam_qwen2_vl, False, "Qwen2-VL text part: q/k/v biases, mrope_section"),
}


def build_fixture(family, seed=1, tied=None, dtype="f32"):
    """The family's config dict and {name: float32 array}, in memory."""
    builder, default_tied, _ = FAMILIES[family]
    ck = Checkpoint(np.random.default_rng(seed))
    cfg = builder(ck, default_tied if tied is None else tied)
    cfg["torch_dtype"] = TORCH_DTYPE[dtype]
    cfg["transformers_version"] = "4.56.0"
    return cfg, ck.tensors


def make_fixture(family, out_dir, seed=1, dtype="f32", tied=None):
    """Write the family's folder; returns its config dict."""
    cfg, tensors = build_fixture(family, seed, tied, dtype)
    os.makedirs(out_dir, exist_ok=True)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors, dtype)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    return cfg


def family_list_text():
    width = max(len(n) for n in FAMILIES)
    return "\n".join("  %-*s  %s" % (width, n, FAMILIES[n][2]) for n in FAMILIES)


def main(argv):
    ap = argparse.ArgumentParser(
        description="Write a seeded tiny HF checkpoint folder of one model family.",
        epilog="families:\n" + family_list_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", choices=sorted(FAMILIES), metavar="NAME")
    ap.add_argument("--out", metavar="DIR")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dtype", choices=sorted(DTYPE_NAMES), default="f32")
    tie = ap.add_mutually_exclusive_group()
    tie.add_argument("--tied", dest="tied", action="store_true", default=None,
                     help="tie lm_head to the embeddings (no lm_head tensor)")
    tie.add_argument("--untied", dest="tied", action="store_false",
                     help="write a separate lm_head")
    ap.add_argument("--list", action="store_true", help="print the family names")
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(FAMILIES))
        return 0
    if not args.family or not args.out:
        ap.error("--family and --out are required")
    make_fixture(args.family, args.out, args.seed, args.dtype, args.tied)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
