#!/usr/bin/python3
"""Whole-model verify and fold of an HF BF16 Llama checkpoint, in NumPy.

The reference `make bench-model` times ropefold against, as
bench/numpy_check.py is for one layer. Written the way a competent engineer
would: the shards memmapped (each safetensors header parsed with json and
checked to tile its data exactly), bf16 widened to float32 by a bit shift,
every check batched over kv groups and heads.

verify A B: per layer and kv group g, the Q/K rotation R_g is the
orthogonal Procrustes solution of B's W_k block against A's (SVD of
W_k,g' W_k,g^T in float32). R_g must commute with RoPE: be, within the
error that bf16 rounding of B can cause in it, a rotation in every
half-split pair (i, i + d/2) and zero elsewhere. Its projection C_g onto
those rotations must then explain W_k,g' and every query head of the group
(W_q,h' = C_g W_q,h) to within TOL relative (Frobenius), where rounding B
to bf16 alone moves each block by at most u = 2^-8 relative; TOL = 3u, as
ropefold's default. V/O: R_v,g = Procrustes of the W_v blocks, W_v,g' =
R_v,g W_v,g and W_o,h' = W_o,h R_v,g^T (the column block of each head of
the group), to TOL. No head-permutation search and no confirming
evaluation (ropefold does both). Exit 0: a fold, 1: not a fold, 2: bad
input.

fold --model M --out O [--seed S] [--break-layer N]: per layer and kv
group, a commuting rotation C_g (one angle per pair, seeded by (S,
layer)); W_q,h <- C_g W_q,h, W_k,g <- C_g W_k,g, W_v,g <- C_g W_v,g,
W_o,h <- W_o,h C_g^T, each rounded to bf16 to nearest even. --break-layer N
uses a Haar rotation (not commuting) for Q and K of layer N instead: a
crafted break. O is written shard by shard into a temporary folder beside
it (headers copied verbatim: the layout does not change; untouched tensor
bytes copied by the kernel with copy_file_range, never through this
process's memory; each shard fsynced), then renamed to O.

read A [B ...]: read every attention tensor of each checkpoint once (into
one reused buffer): the floor under any verify.

All print their wall time (also in --json: "seconds").
"""
import argparse
import json
import os
import shutil
import sys
import time

import numpy as np

U_BF16 = 2.0 ** -8              # unit roundoff of bfloat16 (round to nearest)
TOL = 3 * U_BF16
ATTN = ("q_proj", "k_proj", "v_proj", "o_proj")


class BadInput(Exception):
    pass


# ---- reading -------------------------------------------------------------

class Shard:
    """One safetensors file: its header and a read-only memmap of it."""

    def __init__(self, path):
        self.path = path
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                raise BadInput(f"{path}: shorter than the 8-byte header length")
            n = int.from_bytes(raw, "little")
            if n > size - 8:
                raise BadInput(f"{path}: offset 0: header length {n} past the end of the file")
            try:
                hdr = json.loads(f.read(n))
            except ValueError as e:
                raise BadInput(f"{path}: offset 8: header is not JSON ({e})")
        self.header_bytes = 8 + n
        self.tensors = hdr
        if not isinstance(hdr, dict):
            raise BadInput(f"{path}: offset 8: the header is not a JSON object")
        self.meta = hdr.pop("__metadata__", None)
        spans = []
        for name, t in hdr.items():
            try:
                b, e = t["data_offsets"]
                t["dtype"], list(t["shape"])
                spans.append((int(b), int(e), name))
            except (TypeError, KeyError, ValueError):
                raise BadInput(f"{path}: tensor {name}: no dtype, shape and data_offsets [b, e]")
        spans.sort()
        end = 0
        for b, e, name in spans:
            if b != end or e < b:
                raise BadInput(f"{path}: tensor {name}: data_offsets [{b}, {e}] do not tile "
                               f"the buffer (expected to start at {end})")
            end = e
        if self.header_bytes + end != size:
            raise BadInput(f"{path}: data ends at {self.header_bytes + end}, file has {size} bytes")
        self.order = [name for _, _, name in spans]
        self.map = np.memmap(path, dtype=np.uint8, mode="r") if size else None

    def span(self, name):
        """(file offset, byte count) of a tensor's data."""
        b, e = self.tensors[name]["data_offsets"]
        return self.header_bytes + b, e - b

    def bf16(self, name):
        """The tensor's raw bf16 bits as uint16, shaped; no copy."""
        t = self.tensors[name]
        if t["dtype"] != "BF16":
            raise BadInput(f"{self.path}: tensor {name}: dtype {t['dtype']}, this reference "
                           f"reads BF16 only")
        off, n = self.span(name)
        count = int(np.prod(t["shape"]))
        if n != 2 * count:
            raise BadInput(f"{self.path}: tensor {name}: {n} bytes for shape {t['shape']}")
        return self.map[off:off + n].view(np.uint16).reshape(t["shape"])


class Checkpoint:
    """An HF folder: config.json and one safetensors file or indexed shards."""

    def __init__(self, path):
        self.path = path
        try:
            with open(os.path.join(path, "config.json")) as f:
                cfg = json.load(f)
        except (OSError, ValueError) as e:
            raise BadInput(f"{path}/config.json: {e}")
        try:
            self.layers = cfg["num_hidden_layers"]
            self.D = cfg["hidden_size"]
            self.H = cfg["num_attention_heads"]
            self.G = cfg.get("num_key_value_heads", self.H)
            self.d = cfg.get("head_dim") or self.D // self.H
        except KeyError as e:
            raise BadInput(f"{path}/config.json: no {e}")
        if self.H % self.G or self.d % 2:
            raise BadInput(f"{path}/config.json: {self.H} heads over {self.G} kv heads of dim "
                           f"{self.d}: not grouped query attention with even head dim")
        idx = os.path.join(path, "model.safetensors.index.json")
        if os.path.exists(idx):
            try:
                with open(idx) as f:
                    wmap = json.load(f)["weight_map"]
                files = sorted(set(wmap.values()))
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise BadInput(f"{idx}: not a safetensors index ({e!r})")
        else:
            files, wmap = ["model.safetensors"], None
        self.shards = {fn: Shard(os.path.join(path, fn)) for fn in files}
        self.where = {}
        for fn, sh in self.shards.items():
            for name in sh.tensors:
                self.where[name] = sh
        if wmap:
            for name, fn in wmap.items():
                if self.where.get(name) is not self.shards[fn]:
                    raise BadInput(f"{idx}: {name} is not in {fn}")

    def name(self, layer, part):
        return f"model.layers.{layer}.self_attn.{part}.weight"

    def bf16(self, layer, part):
        """An attention tensor's bf16 bits, checked against config.json's shape."""
        n = self.name(layer, part)
        if n not in self.where:
            raise BadInput(f"{self.path}: no tensor {n}")
        bits = self.where[n].bf16(n)
        H, G, d, D = self.H, self.G, self.d, self.D
        want = {"q_proj": (H * d, D), "k_proj": (G * d, D), "v_proj": (G * d, D),
                "o_proj": (D, H * d)}[part]
        if bits.shape != want:
            raise BadInput(f"{self.path}: {n}: shape {list(bits.shape)}, config.json says "
                           f"{list(want)}")
        return bits


def widen(bits):
    """bf16 bits (uint16) -> float32, exactly: the bits are the top half."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def round_bf16(x):
    """float32 -> bf16 bits, round to nearest even (NaN stays a quiet NaN)."""
    u = x.view(np.uint32)
    r = ((u + (0x7FFF + ((u >> 16) & 1))) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        r[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return r


# ---- the commutant --------------------------------------------------------

def commutant_projection(R):
    """Nearest rotation in every half-split pair: R is ... x d x d; returns
    C (same shape) and the pair angles' cos/sin it was built from."""
    h = R.shape[-1] // 2
    i = np.arange(h)
    a = 0.5 * (R[..., i, i] + R[..., i + h, i + h])
    b = 0.5 * (R[..., i + h, i] - R[..., i, i + h])
    n = np.hypot(a, b)
    n[n == 0] = 1
    return rotations(a / n, b / n)


def rotations(c, s):
    """Block rotations over pairs (i, i + d/2) from cos/sin (... x d/2)."""
    h = c.shape[-1]
    i = np.arange(h)
    C = np.zeros(c.shape[:-1] + (2 * h, 2 * h), dtype=np.float32)
    C[..., i, i] = c
    C[..., i + h, i + h] = c
    C[..., i, i + h] = -s
    C[..., i + h, i] = s
    return C


def procrustes(A, B):
    """argmin over orthogonal R of ||R A - B||_F, batched: A, B ... x d x n.
    Also the singular values of B A^T (for the error bound)."""
    M = np.matmul(B, A.swapaxes(-1, -2))
    U, S, Vt = np.linalg.svd(M)
    return np.matmul(U, Vt), S


def rel_residual(X, Y):
    """||X - Y||_F / ||Y||_F over the last two axes; X is overwritten."""
    np.subtract(X, Y, out=X)
    num = np.sqrt(np.einsum("...ij,...ij->...", X, X))
    den = np.sqrt(np.einsum("...ij,...ij->...", Y, Y))
    return num / np.where(den > 0, den, 1)


# ---- verify ----------------------------------------------------------------

def verify_layer(A, B, l):
    """First failing check of layer l as (group, check, value, bound), or None;
    and the layer's largest residuals."""
    G, H, d, D = A.G, A.H, A.d, A.D
    hpg = H // G
    wk_a = widen(A.bf16(l, "k_proj")).reshape(G, d, D)
    wk_b = widen(B.bf16(l, "k_proj")).reshape(G, d, D)
    R, S = procrustes(wk_a, wk_b)
    # error R can carry from rounding B to bf16 (perturbation of the polar
    # factor: ||dR||_F <= 2 ||dM||_F / (s_d + s_d-1), dM = E A^T, ||E||_F <= u ||B||_F,
    # ||A||_2 ~ sqrt(s_1)), with a margin of 2
    nb = np.sqrt(np.einsum("gij,gij->g", wk_b, wk_b))
    bound_r = 2 * (2 * U_BF16 * nb * np.sqrt(S[:, 0]) / (S[:, -1] + S[:, -2]))
    C = commutant_projection(R)
    defect = np.sqrt(np.einsum("gij,gij->g", R - C, R - C))
    ck = rel_residual(np.matmul(C, wk_a), wk_b)
    wq_a = widen(A.bf16(l, "q_proj")).reshape(G, hpg, d, D)
    wq_b = widen(B.bf16(l, "q_proj")).reshape(G, hpg, d, D)
    cq = rel_residual(np.matmul(C[:, None], wq_a), wq_b)
    del wq_a, wq_b
    wv_a = widen(A.bf16(l, "v_proj")).reshape(G, d, D)
    wv_b = widen(B.bf16(l, "v_proj")).reshape(G, d, D)
    Rv, _ = procrustes(wv_a, wv_b)
    cv = rel_residual(np.matmul(Rv, wv_a), wv_b)
    del wv_a, wv_b
    # W_o is D x (H d): head h's column block, as G x hpg x D x d
    wo_a = widen(A.bf16(l, "o_proj")).reshape(D, G, hpg, d).transpose(1, 2, 0, 3)
    wo_b = widen(B.bf16(l, "o_proj")).reshape(D, G, hpg, d).transpose(1, 2, 0, 3)
    co = rel_residual(np.matmul(wo_a, Rv.swapaxes(-1, -2)[:, None]), wo_b)
    checks = (("R_k commutes with RoPE", defect, bound_r),
              ("C_g explains W_k", ck, TOL),
              ("C_g explains W_q (every head of the group)", cq.max(axis=1), TOL),
              ("R_v explains W_v", cv, TOL),
              ("W_o absorbs R_v^T (every head of the group)", co.max(axis=1), TOL))
    worst = {"commutator_defect": float(defect.max()), "k": float(ck.max()),
             "q": float(cq.max()), "v": float(cv.max()), "o": float(co.max())}
    for g in range(G):
        for what, val, bound in checks:
            b = bound[g] if np.ndim(bound) else bound
            if not val[g] <= b:
                return dict(layer=l, group=g, check=what, value=float(val[g]),
                            bound=float(b)), worst
    return None, worst


def cmd_verify(a):
    t0 = time.perf_counter()
    A, B = Checkpoint(a.a), Checkpoint(a.b)
    out = {"a": a.a, "b": a.b, "layers": 0, "fold": True, "first_break": None}
    if (A.layers, A.D, A.H, A.G, A.d) != (B.layers, B.D, B.H, B.G, B.d):
        out.update(fold=False, first_break={
            "check": "the config.json shapes (layers, D, H, G, d) differ: "
                     f"{[A.layers, A.D, A.H, A.G, A.d]} and {[B.layers, B.D, B.H, B.G, B.d]}"})
    else:
        worst = {}
        for l in layer_list(a.layers, A.layers):
            brk, w = verify_layer(A, B, l)
            for k, v in w.items():
                worst[k] = max(worst.get(k, 0.0), v)
            out["layers"] += 1
            if brk:
                out.update(fold=False, first_break=brk)
                break
        out["worst"] = worst
    out["seconds"] = time.perf_counter() - t0
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        if out["fold"]:
            print(f"numpy verify: a fold ({out['layers']} layers; largest relative residuals "
                  + ", ".join(f"{k} {v:.2g}" for k, v in out["worst"].items()) + ")")
        else:
            fb = out["first_break"]
            where = f"layer {fb['layer']}, kv group {fb['group']}: " if "layer" in fb else ""
            extra = f" fails ({fb['value']:.3g} > {fb['bound']:.3g})" if "value" in fb else ""
            print(f"numpy verify: not a fold: {where}{fb['check']}{extra}")
        print(f"numpy verify: {out['seconds']:.2f} s")
    return 0 if out["fold"] else 1


def layer_list(spec, n):
    if spec in (None, "all"):
        return range(n)
    lo, _, hi = spec.partition("..")
    try:
        lo, hi = int(lo), int(hi or lo)
    except ValueError:
        raise BadInput(f"--layers {spec}: not all, N or N..M")
    if not 0 <= lo <= hi < n:
        raise BadInput(f"--layers {spec}: out of range (the model has {n} layers)")
    return range(lo, hi + 1)


# ---- fold ------------------------------------------------------------------

def layer_rotations(seed, l, G, d, broken):
    """G x d x d rotations of layer l: commuting (one angle per pair), or, for
    the crafted break, Haar (QR of a Gaussian with the sign fix)."""
    rng = np.random.default_rng([seed, l])
    if broken:
        Z = rng.standard_normal((G, d, d))
        Q, Rr = np.linalg.qr(Z)
        Q *= np.sign(np.diagonal(Rr, axis1=1, axis2=2))[:, None, :]
        return Q.astype(np.float32)
    t = rng.uniform(-np.pi, np.pi, (G, d // 2))
    return rotations(np.cos(t).astype(np.float32), np.sin(t).astype(np.float32))


def rotated(M, l, part, C, Cqk):
    """The rotated bf16 bits of one attention tensor of layer l."""
    G, H, d, D = M.G, M.H, M.d, M.D
    hpg = H // G
    w = widen(M.bf16(l, part))
    if part == "q_proj":
        y = np.matmul(Cqk[:, None], w.reshape(G, hpg, d, D))
    elif part == "k_proj":
        y = np.matmul(Cqk, w.reshape(G, d, D))
    elif part == "v_proj":
        y = np.matmul(C, w.reshape(G, d, D))
    else:  # W_o,h <- W_o,h C_g^T on head h's column block (D x d)
        blocks = w.reshape(D, G, hpg, d).transpose(1, 2, 0, 3)
        y = np.matmul(blocks, C.swapaxes(-1, -2)[:, None]).transpose(2, 0, 1, 3)
    return round_bf16(np.ascontiguousarray(y).reshape(-1))


def copy_range(src, dst, off, n):
    """n bytes of src from off to dst's current end, in the kernel."""
    pos = os.lseek(dst, 0, os.SEEK_CUR)
    while n > 0:
        k = os.copy_file_range(src, dst, n, off, pos)
        if k <= 0:
            raise OSError(f"copy_file_range returned {k}")
        off, pos, n = off + k, pos + k, n - k
    os.lseek(dst, pos, os.SEEK_SET)


def write_all(fd, arr):
    mv = memoryview(arr).cast("B")
    while mv:
        mv = mv[os.write(fd, mv):]


def cmd_fold(a):
    t0 = time.perf_counter()
    M = Checkpoint(a.model)
    out = os.path.abspath(a.out)
    if os.path.exists(out):
        raise BadInput(f"--out {a.out}: exists (remove it first)")
    layers = set(layer_list(a.layers, M.layers))
    tmp = out + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    rot = {}
    try:
        for fn in sorted(os.listdir(a.model)):
            src = os.path.join(a.model, fn)
            if fn not in M.shards:
                if os.path.isfile(src):
                    shutil.copyfile(src, os.path.join(tmp, fn))
                continue
            sh = M.shards[fn]
            sfd = os.open(src, os.O_RDONLY)
            dfd = os.open(os.path.join(tmp, fn), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                copy_range(sfd, dfd, 0, sh.header_bytes)   # the same header
                run = None                                 # untouched bytes pending
                for name in sh.order:
                    off, n = sh.span(name)
                    parts = name.split(".")
                    hit = (len(parts) == 6 and parts[0] == "model" and parts[1] == "layers"
                           and parts[3] == "self_attn" and parts[4] in ATTN
                           and int(parts[2]) in layers)
                    if not hit:
                        run = (run[0], run[1] + n) if run else (off, n)
                        continue
                    if run:
                        copy_range(sfd, dfd, *run)
                        run = None
                    l = int(parts[2])
                    if l not in rot:
                        C = layer_rotations(a.seed, l, M.G, M.d, False)
                        Cqk = layer_rotations(a.seed, l, M.G, M.d, True) \
                            if l == a.break_layer else C
                        rot = {l: (C, Cqk)}
                    write_all(dfd, rotated(M, l, parts[4], *rot[l]))
                if run:
                    copy_range(sfd, dfd, *run)
                os.fsync(dfd)
            finally:
                os.close(sfd)
                os.close(dfd)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    dt = time.perf_counter() - t0
    res = {"model": a.model, "out": a.out, "layers_folded": len(layers), "seed": a.seed,
           "break_layer": a.break_layer, "seconds": dt}
    if a.json:
        print(json.dumps(res, indent=2))
    else:
        brk = f", layer {a.break_layer} broken (Haar Q/K)" if a.break_layer is not None else ""
        print(f"numpy fold: {len(layers)} layers folded into {a.out}{brk}")
        print(f"numpy fold: {dt:.2f} s")
    return 0


def cmd_read(a):
    """Read every attention tensor of each checkpoint once (the floor under
    any verify): preadv of its byte range into one reused buffer."""
    t0 = time.perf_counter()
    total = 0
    for path in a.checkpoints:
        M = Checkpoint(path)
        spans = []
        for l in range(M.layers):
            for part in ATTN:
                n = M.name(l, part)
                if n not in M.where:
                    raise BadInput(f"{path}: no tensor {n}")
                spans.append((M.where[n].path, *M.where[n].span(n)))
        buf = bytearray(max(n for _, _, n in spans))
        for fn, off, n in spans:
            fd = os.open(fn, os.O_RDONLY)
            try:
                mv, done = memoryview(buf)[:n], 0
                while done < n:
                    k = os.preadv(fd, [mv[done:]], off + done)
                    if k <= 0:
                        raise BadInput(f"{fn}: offset {off + done}: short read")
                    done += k
            finally:
                os.close(fd)
            total += n
    dt = time.perf_counter() - t0
    print(json.dumps({"bytes": total, "seconds": dt}) if a.json else
          f"numpy read: {total / 1e9:.2f} GB of attention tensors in {dt:.2f} s")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("verify", help="is B a commuting fold of A?")
    v.add_argument("a")
    v.add_argument("b")
    v.add_argument("--layers")
    v.add_argument("--json", action="store_true")
    f = sub.add_parser("fold", help="write a folded copy")
    f.add_argument("--model", required=True)
    f.add_argument("--out", required=True)
    f.add_argument("--seed", type=int, default=1)
    f.add_argument("--layers")
    f.add_argument("--break-layer", type=int)
    f.add_argument("--json", action="store_true")
    r = sub.add_parser("read", help="read the attention tensors once")
    r.add_argument("checkpoints", nargs="+")
    r.add_argument("--json", action="store_true")
    a = p.parse_args()
    try:
        return {"verify": cmd_verify, "fold": cmd_fold, "read": cmd_read}[a.cmd](a)
    except BadInput as e:
        print(f"model_numpy: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"model_numpy: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
