#!/usr/bin/python3
"""Writes small seeded GGUF files (v3, arch llama) whose tensors are ggml
block quantizations: random codes with finite f16 scales of a weight-like
size, in the mixtures llama.cpp's quantize writes. The reference values
of every tensor come from tests/reference_quant.py; nothing here depends
on ropefold.

    gguf_quant_fixtures.py --kind KIND --out FILE [--seed N] [--expect JSON]

KIND:
    q4_k_m   llama.cpp's Q4_K_M choice for a 4-layer model: Q4_K, with
             attn_v and ffn_down of layers 2 and 3 (use_more_bits) and the
             output in Q6_K, norms F32, token embeddings Q4_K
    zoo      every quantized type ropefold reads, spread over the layers'
             attention and MLP weights (Q8_K and IQ4 too), the embeddings
             Q6_K
    nan-scale, inf-scale   q4_k_m with one NaN (Inf) f16 d in
             blk.1.attn_k.weight's third block
    bad-row  q4_k_m with one extra tensor of row length 288 in Q4_K
    bad-type q4_k_m with blk.0.attn_q.weight's type id set to 31 (a type
             ggml removed from GGUF)
    truncated  q4_k_m cut in the middle of the last tensor's last block
    scale-split  q4_k_m with blk.0.attn_k.weight in Q8_0, its kv group 0's
             rows (0-63) blocks of one outlier code (+-127) among codes of
             at most 2, at |d| 2^-4, group 1's rows codes over the whole
             range at |d| 2^-9: group 0's relative step is far larger, and
             it dominates the tensor's norm

--expect writes the file's dtype mixture as info --json gives it
("dtypes", "attention_dtypes").
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_quant as rq  # noqa: E402

D, H, G, HD, FF, NL, VOCAB = 256, 4, 2, 64, 512, 4, 64


def use_more_bits(i, n):
    """llama.cpp's rule for the layers Q4_K_M keeps at Q6_K."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def tensors(kind):
    """[(name, dtype, shape outermost first)] of the model."""
    zoo = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K",
           "Q5_K", "Q6_K", "Q8_K", "IQ4_NL", "IQ4_XS"]
    out = [("token_embd.weight", "Q6_K" if kind == "zoo" else "Q4_K", [VOCAB, D])]
    k = 0
    for i in range(NL):
        more = use_more_bits(i, NL)
        for part, shape in (("attn_q", [H * HD, D]), ("attn_k", [G * HD, D]),
                            ("attn_v", [G * HD, D]), ("attn_output", [D, H * HD]),
                            ("ffn_gate", [FF, D]), ("ffn_up", [FF, D]),
                            ("ffn_down", [D, FF])):
            if kind == "zoo":
                dt = zoo[k % len(zoo)]
                k += 1
            else:
                dt = "Q6_K" if more and part in ("attn_v", "ffn_down") else "Q4_K"
            out.append(("blk.%d.%s.weight" % (i, part), dt, shape))
        out.append(("blk.%d.attn_norm.weight" % i, "F32", [D]))
        out.append(("blk.%d.ffn_norm.weight" % i, "F32", [D]))
    out.append(("output_norm.weight", "F32", [D]))
    out.append(("output.weight", "Q6_K", [VOCAB, D]))
    return out


def blocks(rng, dt, n):
    """n values of dtype dt as stored bytes: random codes, scales that make
    weights of a weight's size (|d| in [2^-12, 2^-7]; with sub-block
    scales of 6 or 8 bits, in [2^-16, 2^-11])."""
    if dt == "F32":
        return (1 + 0.1 * rng.standard_normal(n)).astype("<f4").tobytes()
    _, blk, nbytes = rq.TYPES[dt]
    b = rng.integers(0, 256, size=(n // blk, nbytes), dtype=np.uint8)
    nb = b.shape[0]
    lo = -16 if blk == 256 else -12
    for i, at in enumerate(rq.F16_SCALES[dt]):
        mag = np.exp2(rng.uniform(lo, lo + 5, nb))
        if i == 0 and dt not in ("Q2_K", "Q4_K", "Q5_K", "Q4_1", "Q5_1"):
            mag *= rng.choice([-1.0, 1.0], nb)    # d may be negative
        h = mag.astype("<f2").view("<u2")
        b[:, at] = h & 0xff
        b[:, at + 1] = h >> 8
    if dt == "Q8_K":
        d = (np.exp2(rng.uniform(-12, -7, nb)) * rng.choice([-1.0, 1.0], nb)).astype("<f4")
        b[:, 0:4] = d.view(np.uint8).reshape(nb, 4)
        # bsums: the sums of the quants of each 16, as ggml stores them.
        q = b[:, 4:260].view(np.int8).astype(np.int32).reshape(nb, 16, 16).sum(axis=2)
        b[:, 260:292] = q.astype("<i2").view(np.uint8).reshape(nb, 32)
    return b.tobytes()


def split_scales(rng):
    """blk.0.attn_k.weight of kind scale-split, Q8_0 blocks (d f16, 32 int8)."""
    per_row = D // 32
    nb = G * HD * per_row
    q = rng.integers(-127, 128, size=(nb, 32))
    d = np.full(nb, 2.0 ** -9)
    g0 = np.arange(nb) < HD * per_row      # kv group 0's rows
    small = rng.integers(-2, 3, size=(nb, 32))
    q[g0] = small[g0]
    q[g0, rng.integers(0, 32, size=int(g0.sum()))] = 127
    d[g0] = 2.0 ** -4
    d *= rng.choice([-1.0, 1.0], nb)
    b = np.zeros((nb, 34), np.uint8)
    b[:, 0:2] = d.astype("<f2").view(np.uint8).reshape(nb, 2)
    b[:, 2:34] = q.astype(np.int8).view(np.uint8)
    return b.tobytes()


def gguf(path, ts, data, bad_type=None):
    """A GGUF v3 file of the tensors ts with stored bytes data[name]."""
    def s(x):
        x = x.encode()
        return struct.pack("<Q", len(x)) + x

    kv = [("general.architecture", 8, s("llama")),
          ("llama.block_count", 4, struct.pack("<I", NL)),
          ("llama.embedding_length", 4, struct.pack("<I", D)),
          ("llama.feed_forward_length", 4, struct.pack("<I", FF)),
          ("llama.attention.head_count", 4, struct.pack("<I", H)),
          ("llama.attention.head_count_kv", 4, struct.pack("<I", G)),
          ("llama.rope.dimension_count", 4, struct.pack("<I", HD)),
          ("llama.attention.layer_norm_rms_epsilon", 6, struct.pack("<f", 1e-5)),
          ("general.alignment", 4, struct.pack("<I", 32))]
    head = b"GGUF" + struct.pack("<IQQ", 3, len(ts), len(kv))
    for k, t, v in kv:
        head += s(k) + struct.pack("<I", t) + v
    body, off = b"", 0
    for name, dt, shape in ts:
        tid = rq.TYPES[dt][0] if name != bad_type else 31
        head += s(name) + struct.pack("<I", len(shape))
        head += b"".join(struct.pack("<Q", n) for n in reversed(shape))
        head += struct.pack("<IQ", tid, off)
        raw = data[name]
        pad = (-len(raw)) % 32
        body += raw + b"\0" * pad
        off += len(raw) + pad
    head += b"\0" * ((-len(head)) % 32)
    with open(path, "wb") as f:
        f.write(head + body)


def mixture(ts):
    mix, att = {}, {"q": {}, "k": {}, "v": {}, "o": {}}
    role = {"attn_q": "q", "attn_k": "k", "attn_v": "v", "attn_output": "o"}
    for name, dt, _ in ts:
        mix[dt] = mix.get(dt, 0) + 1
        parts = name.split(".")
        if len(parts) == 4 and parts[2] in role:
            r = att[role[parts[2]]]
            r[dt] = r.get(dt, 0) + 1
    return {"dtypes": mix, "attention_dtypes": att}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kind", required=True,
                    choices=["q4_k_m", "zoo", "nan-scale", "inf-scale", "bad-row", "bad-type",
                             "truncated", "scale-split"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--expect")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    ts = tensors("zoo" if a.kind == "zoo" else "q4_k_m")
    if a.kind == "scale-split":
        ts = [(n, "Q8_0" if n == "blk.0.attn_k.weight" else dt, sh) for n, dt, sh in ts]
    if a.kind == "bad-row":
        ts.append(("extra.weight", "Q4_K", [2, 288]))
    data = {}
    for name, dt, shape in ts:
        n = int(np.prod(shape))
        if a.kind == "bad-row" and name == "extra.weight":
            data[name] = bytes(144 * 2)       # what 512 elements would take
            continue
        data[name] = blocks(rng, dt, n)
    if a.kind == "scale-split":
        data["blk.0.attn_k.weight"] = split_scales(rng)
    if a.kind in ("nan-scale", "inf-scale"):
        raw = bytearray(data["blk.1.attn_k.weight"])
        h = 0x7e00 if a.kind == "nan-scale" else 0x7c00
        raw[2 * 144:2 * 144 + 2] = struct.pack("<H", h)   # Q4_K: d at byte 0 of block 2
        data["blk.1.attn_k.weight"] = bytes(raw)
    gguf(a.out, ts, data, "blk.0.attn_q.weight" if a.kind == "bad-type" else None)
    if a.kind == "truncated":
        size = os.path.getsize(a.out)
        last = len(data[ts[-1][0]])
        with open(a.out, "r+b") as f:
            f.truncate(size - ((-last) % 32) - 100)
    if a.expect:
        with open(a.expect, "w") as f:
            json.dump(mixture(ts), f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
