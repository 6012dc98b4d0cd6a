#!/usr/bin/python3
"""NumPy reference for ggml's block quantizations, written from ggml's own
definitions (the block structs of ggml-common.h and the dequantize_row_*
loops of ggml-quants.c, followed loop by loop, vectorized over blocks) and
never from ropefold's C code. ggml computes every weight in float32: d from
its f16 bits, then d * sc, then * q, then - dmin * m; NumPy's float32
operations round the same way, so the reference values are ggml's bit for
bit.

    reference_quant.py selfcheck
        hand-made blocks of every type against values worked out by hand
        from the definitions (TAP lines).
    reference_quant.py compare FILE.gguf DUMPDIR
        every tensor of FILE dequantized here, against DUMPDIR/NAME.f64
        (float64, as ropefold's tensor_read gave it): equal bit for bit
        (TAP lines).

Also a small GGUF reader (read_gguf) and the layout facts the fixture
generator (tests/gguf_quant_fixtures.py) uses to write valid blocks.
"""
import struct
import sys

import numpy as np

# name: (ggml type id, elements per block, bytes per block)
TYPES = {
    "F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20),
    "Q5_0": (6, 32, 22), "Q5_1": (7, 32, 24), "Q8_0": (8, 32, 34),
    "Q2_K": (10, 256, 84), "Q3_K": (11, 256, 110), "Q4_K": (12, 256, 144),
    "Q5_K": (13, 256, 176), "Q6_K": (14, 256, 210), "Q8_K": (15, 256, 292),
    "IQ4_NL": (20, 32, 18), "IQ4_XS": (23, 256, 136), "BF16": (30, 1, 2),
}
BY_ID = {v[0]: k for k, v in TYPES.items()}
QUANTIZED = [k for k, v in TYPES.items() if v[1] > 1]

# Byte offsets of each block's f16 scales (d, and the min / dmin where
# there is one); Q8_K's d is an f32 at 0.
F16_SCALES = {
    "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
    "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
    "Q8_K": [], "IQ4_NL": [0], "IQ4_XS": [0],
}

KVALUES_IQ4NL = np.array([-127, -104, -83, -65, -49, -35, -22, -10,
                          1, 13, 25, 38, 53, 69, 89, 113], dtype=np.int8)

F32 = np.float32


def _f16(b, at):
    """The f16 at byte at of every block (rows of b), as float32 (nb, 1)."""
    u = b[:, at].astype(np.uint16) | (b[:, at + 1].astype(np.uint16) << 8)
    return u.view(np.float16).astype(F32).reshape(-1, 1)


def _u32(b, at):
    return (b[:, at].astype(np.uint32) | (b[:, at + 1].astype(np.uint32) << 8)
            | (b[:, at + 2].astype(np.uint32) << 16) | (b[:, at + 3].astype(np.uint32) << 24))


def _halves(qs):
    """block_q4_0's nibbles: y[j] = qs[j] & 15, y[j + 16] = qs[j] >> 4."""
    return np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.int32)


def _q4_0(b):
    d = _f16(b, 0)
    return (_halves(b[:, 2:18]) - 8).astype(F32) * d


def _q4_1(b):
    d, m = _f16(b, 0), _f16(b, 2)
    return _halves(b[:, 4:20]).astype(F32) * d + m


def _fifth(qh):
    """qh's bit j: the 5th bit of element j, as ggml's xh_0/xh_1 take it."""
    j = np.arange(16, dtype=np.uint32)
    xh0 = ((qh[:, None] >> j) << 4) & 0x10
    xh1 = (qh[:, None] >> (j + 12)) & 0x10
    return np.concatenate([xh0, xh1], axis=1).astype(np.int32)


def _q5_0(b):
    d = _f16(b, 0)
    q = _halves(b[:, 6:22]) | _fifth(_u32(b, 2))
    return (q - 16).astype(F32) * d


def _q5_1(b):
    d, m = _f16(b, 0), _f16(b, 2)
    q = _halves(b[:, 8:24]) | _fifth(_u32(b, 4))
    return q.astype(F32) * d + m


def _q8_0(b):
    d = _f16(b, 0)
    return b[:, 2:34].view(np.int8).astype(F32) * d


def _q2_k(b):
    sc, qs = b[:, 0:16], b[:, 16:80]
    d, dmin = _f16(b, 80), _f16(b, 82)
    y, isx = [], 0
    for n in (0, 1):                      # the two halves of 128
        q = qs[:, 32 * n:32 * n + 32]
        for shift in (0, 2, 4, 6):
            for part in (0, 16):
                s = sc[:, isx:isx + 1]
                isx += 1
                dl = d * (s & 15).astype(F32)
                ml = dmin * (s >> 4).astype(F32)
                y.append(dl * ((q[:, part:part + 16] >> shift) & 3).astype(F32) - ml)
    return np.concatenate(y, axis=1)


def _q3_scales(raw):
    """dequantize_row_q3_K's aux[] trick on the 12 scale bytes: 16 int8
    scales (before the - 32)."""
    aux = np.ascontiguousarray(raw).view("<u4").reshape(-1, 3).copy()
    km1, km2 = np.uint32(0x03030303), np.uint32(0x0f0f0f0f)
    tmp = aux[:, 2]
    a0 = (aux[:, 0] & km2) | (((tmp >> 0) & km1) << 4)
    a1 = (aux[:, 1] & km2) | (((tmp >> 2) & km1) << 4)
    a2 = ((aux[:, 0] >> 4) & km2) | (((tmp >> 4) & km1) << 4)
    a3 = ((aux[:, 1] >> 4) & km2) | (((tmp >> 6) & km1) << 4)
    return np.stack([a0, a1, a2, a3], axis=1).astype("<u4").view(np.int8).astype(np.int32)


def _q3_k(b):
    hm, qs, d_all = b[:, 0:32], b[:, 32:96], _f16(b, 108)
    scales = _q3_scales(b[:, 96:108])
    y, isx, m = [], 0, 1
    for n in (0, 1):
        q = qs[:, 32 * n:32 * n + 32]
        for shift in (0, 2, 4, 6):
            for part in (0, 16):
                dl = d_all * (scales[:, isx:isx + 1] - 32).astype(F32)
                isx += 1
                lo = ((q[:, part:part + 16] >> shift) & 3).astype(np.int32)
                hi = np.where(hm[:, part:part + 16] & m, 0, 4)
                y.append(dl * (lo - hi).astype(F32))
            m <<= 1
    return np.concatenate(y, axis=1)


def _scale_min_k4(j, q):
    """get_scale_min_k4: scale and min j of the 12 bytes q (columns)."""
    q = q.astype(np.int32)
    if j < 4:
        return q[:, j:j + 1] & 63, q[:, j + 4:j + 5] & 63
    sc = (q[:, j + 4:j + 5] & 0xF) | ((q[:, j - 4:j - 3] >> 6) << 4)
    mn = (q[:, j + 4:j + 5] >> 4) | ((q[:, j:j + 1] >> 6) << 4)
    return sc, mn


def _q45_k(b, five):
    d, dmin, scl = _f16(b, 0), _f16(b, 2), b[:, 4:16]
    qh = b[:, 16:48] if five else None
    ql = b[:, 48:176] if five else b[:, 16:144]
    y, isx, u1, u2 = [], 0, 1, 2
    for j in range(4):
        q = ql[:, 32 * j:32 * j + 32].astype(np.int32)
        sc, m = _scale_min_k4(isx, scl)
        d1, m1 = d * sc.astype(F32), dmin * m.astype(F32)
        sc, m = _scale_min_k4(isx + 1, scl)
        d2, m2 = d * sc.astype(F32), dmin * m.astype(F32)
        lo, hi = q & 15, q >> 4
        if five:
            lo = lo + np.where(qh & u1, 16, 0)
            hi = hi + np.where(qh & u2, 16, 0)
        y.append(d1 * lo.astype(F32) - m1)
        y.append(d2 * hi.astype(F32) - m2)
        isx += 2
        u1 <<= 2
        u2 <<= 2
    return np.concatenate(y, axis=1)


def _q6_k(b):
    d = _f16(b, 208)
    sc = b[:, 192:208].view(np.int8).astype(np.int32)
    out = np.zeros((b.shape[0], 256), dtype=F32)
    for n in (0, 1):
        ql = b[:, 64 * n:64 * n + 64].astype(np.int32)
        qh = b[:, 128 + 32 * n:128 + 32 * n + 32].astype(np.int32)
        s = sc[:, 8 * n:8 * n + 8]
        for l in range(32):
            isx = l // 16
            q1 = ((ql[:, l] & 0xF) | (((qh[:, l] >> 0) & 3) << 4)) - 32
            q2 = ((ql[:, l + 32] & 0xF) | (((qh[:, l] >> 2) & 3) << 4)) - 32
            q3 = ((ql[:, l] >> 4) | (((qh[:, l] >> 4) & 3) << 4)) - 32
            q4 = ((ql[:, l + 32] >> 4) | (((qh[:, l] >> 6) & 3) << 4)) - 32
            base = 128 * n
            for off, qq, k in ((0, q1, 0), (32, q2, 2), (64, q3, 4), (96, q4, 6)):
                out[:, base + l + off] = (d[:, 0] * s[:, isx + k].astype(F32)) * qq.astype(F32)
    return out


def _q8_k(b):
    d = np.ascontiguousarray(b[:, 0:4]).view("<f4").astype(F32).reshape(-1, 1)
    return d * b[:, 4:260].view(np.int8).astype(F32)


def _iq4_nl(b):
    d = _f16(b, 0)
    return d * KVALUES_IQ4NL[_halves(b[:, 2:18])].astype(F32)


def _iq4_xs(b):
    d = _f16(b, 0)
    sh = (b[:, 2].astype(np.int32) | (b[:, 3].astype(np.int32) << 8))
    sl = b[:, 4:8].astype(np.int32)
    y = []
    for ib in range(8):
        ls = ((sl[:, ib // 2] >> 4 * (ib % 2)) & 0xf) | (((sh >> 2 * ib) & 3) << 4)
        dl = d * (ls - 32).astype(F32).reshape(-1, 1)
        qs = b[:, 8 + 16 * ib:8 + 16 * ib + 16]
        y.append(dl * KVALUES_IQ4NL[_halves(qs)].astype(F32))
    return np.concatenate(y, axis=1)


DEQUANT = {
    "Q4_0": _q4_0, "Q4_1": _q4_1, "Q5_0": _q5_0, "Q5_1": _q5_1, "Q8_0": _q8_0,
    "Q2_K": _q2_k, "Q3_K": _q3_k, "Q4_K": lambda b: _q45_k(b, False),
    "Q5_K": lambda b: _q45_k(b, True), "Q6_K": _q6_k, "Q8_K": _q8_k,
    "IQ4_NL": _iq4_nl, "IQ4_XS": _iq4_xs,
}


def dequantize(name, raw):
    """The float32 values of the stored bytes raw of dtype name."""
    if name == "F32":
        return np.frombuffer(raw, "<f4").astype(F32)
    if name == "F16":
        return np.frombuffer(raw, "<f2").astype(F32)
    if name == "BF16":
        u = np.frombuffer(raw, "<u2").astype(np.uint32) << 16
        return u.view("<f4").astype(F32)
    _, blk, nbytes = TYPES[name]
    b = np.frombuffer(raw, np.uint8).reshape(-1, nbytes)
    with np.errstate(invalid="ignore", over="ignore"):
        return DEQUANT[name](b).reshape(-1).astype(F32)


# ---- GGUF ------------------------------------------------------------------

_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<B",
           10: "<Q", 11: "<q", 12: "<d"}


def read_gguf(path):
    """{name: (dtype name, shape outermost first, stored bytes)} of a GGUF."""
    data = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, data, pos)[0]
        pos += struct.calcsize(fmt)
        return v

    def string():
        nonlocal pos
        n = take("<Q")
        s = data[pos:pos + n].decode()
        pos += n
        return s

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("<I"), take("<Q")
            return [value(et) for _ in range(n)]
        return take(_SCALAR[t])

    assert data[:4] == b"GGUF"
    pos = 4
    take("<I")
    nt, nkv = take("<Q"), take("<Q")
    kv = {}
    for _ in range(nkv):
        k = string()
        kv[k] = value(take("<I"))
    infos = []
    for _ in range(nt):
        name = string()
        nd = take("<I")
        ne = [take("<Q") for _ in range(nd)]
        t, off = take("<I"), take("<Q")
        infos.append((name, ne, t, off))
    align = kv.get("general.alignment", 32)
    start = (pos + align - 1) // align * align
    out = {}
    for name, ne, t, off in infos:
        dt = BY_ID[t]
        _, blk, nbytes = TYPES[dt]
        n = int(np.prod(ne))
        size = n // blk * nbytes
        out[name] = (dt, list(reversed(ne)), data[start + off:start + off + size])
    return out


# ---- self-check: blocks worked out by hand --------------------------------------

def _block(name, fields):
    """A block of name with every byte 0 except fields {offset: bytes}."""
    b = bytearray(TYPES[name][2])
    for at, v in fields.items():
        b[at:at + len(v)] = v
    return bytes(b)


def _h(x):
    return np.array([x], dtype="<f2").tobytes()


def selfcheck():
    cases = []
    # Q4_0: d = 0.5; byte 0 = 0x9f: element 0 = 15 - 8 = 7 -> 3.5,
    # element 16 = 9 - 8 = 1 -> 0.5; the other nibbles 0 -> -8 * 0.5 = -4.
    v = dequantize("Q4_0", _block("Q4_0", {0: _h(0.5), 2: b"\x9f"}))
    cases.append(("Q4_0 nibbles and offset 8", v[0] == 3.5 and v[16] == 0.5 and v[1] == -4))
    # Q4_1: d = 0.25, m = -1; byte 0 = 0x31: 1 * 0.25 - 1, 3 * 0.25 - 1.
    v = dequantize("Q4_1", _block("Q4_1", {0: _h(0.25), 2: _h(-1), 4: b"\x31"}))
    cases.append(("Q4_1 d q + m", v[0] == -0.75 and v[16] == -0.25 and v[5] == -1))
    # Q5_0: d = 1; qh bit 0 and bit 17 set; qs[0] = 0x00, qs[1] = 0x20:
    # element 0 = 16 - 16 = 0, element 17 = (2 | 16) - 16 = 2, element 1
    # = 0 - 16.
    v = dequantize("Q5_0", _block("Q5_0", {0: _h(1), 2: struct.pack("<I", 1 | 1 << 17),
                                           6: b"\x00\x20"}))
    cases.append(("Q5_0 fifth bits", v[0] == 0 and v[17] == 2 and v[1] == -16))
    # Q5_1: d = 2, m = 0.5; qh bit 31; qs[15] = 0xf0: element 31 = 15 | 16
    # = 31 -> 62.5; element 15 = 0 -> 0.5.
    v = dequantize("Q5_1", _block("Q5_1", {0: _h(2), 2: _h(0.5),
                                           4: struct.pack("<I", 1 << 31), 23: b"\xf0"}))
    cases.append(("Q5_1 d q + m", v[31] == 62.5 and v[15] == 0.5))
    # Q8_0: d = 0.125, qs[3] = -128.
    v = dequantize("Q8_0", _block("Q8_0", {0: _h(0.125), 5: b"\x80"}))
    cases.append(("Q8_0 int8", v[3] == -16 and v[0] == 0))
    # Q2_K: d = 1, dmin = 0.5; scales[0] = 0x23 (scale 3, min 2),
    # scales[9] = 0x01; qs[16] bits 2-3 = 3 -> element 128*0 + 32*1 + 0
    # (sub-block 2, scale 0) ... use qs[0] = 0x0e: element 0 = 2, element
    # 32 = 3 (sub-block 2: scales[2] = 0 -> 0). Element 0: 3 * 2 - 0.5 * 2.
    v = dequantize("Q2_K", _block("Q2_K", {0: b"\x23", 16: b"\x0e", 80: _h(1), 82: _h(0.5)}))
    cases.append(("Q2_K scale, min and crumbs", v[0] == 5 and v[1] == -1 and v[32] == 0))
    # Q3_K: d = 1; scale 0 = 33 (low nibble 1 in byte 0, top bits 10 in
    # byte 8 -> 1 | 2 << 4 = 33: level 1); hmask[0] bit 0 set; qs[0] = 3:
    # element 0 = 1 * (3 - 0) = 3; element 1 (hmask 0) = 1 * (0 - 4);
    # element 16 (scale 1: all its bits 0, level -32) = -32 * (0 - 4).
    v = dequantize("Q3_K", _block("Q3_K", {0: b"\x01", 32: b"\x03", 96: b"\x01",
                                           104: b"\x02", 108: _h(1)}))
    cases.append(("Q3_K hmask and 6-bit scales", v[0] == 3 and v[1] == -4 and v[16] == 128))
    # Q4_K: d = 0.5, dmin = 0.25; scale 0 = 2, min 0 = 4 (bytes 4 and 8
    # of the 12); scale 4 = 1 | (1 << 4) = 17 (byte 12 low nibble 1, byte
    # 4 bits 6-7 = 01); qs[0] = 0x07: element 0 = 0.5 * 2 * 7 - 0.25 * 4.
    v = dequantize("Q4_K", _block("Q4_K", {0: _h(0.5), 2: _h(0.25), 4: b"\x42", 8: b"\x04",
                                           12: b"\x01", 16: b"\x07", 80: b"\x03"}))
    cases.append(("Q4_K 6-bit scales and mins", v[0] == 6 and v[128] == 0.5 * 17 * 3))
    # Q5_K: as Q4_K with qh[0] = 1: element 0 gets 16.
    v = dequantize("Q5_K", _block("Q5_K", {0: _h(0.5), 2: _h(0.25), 4: b"\x02", 8: b"\x04",
                                           16: b"\x01", 48: b"\x07"}))
    cases.append(("Q5_K fifth bit", v[0] == 0.5 * 2 * 23 - 1 and v[1] == -1))
    # Q6_K: d = 0.5, scales[0] = -3; ql[0] = 0x21, qh[0] = 0x03:
    # element 0 = (1 | 3 << 4) - 32 = 17 -> 0.5 * -3 * 17; element 64
    # = 2 - 32 = -30 with scales[4] = 0; element 1 = 0.5 * -3 * (0 - 32).
    v = dequantize("Q6_K", _block("Q6_K", {0: b"\x21", 128: b"\x03", 192: b"\xfd",
                                           208: _h(0.5)}))
    cases.append(("Q6_K ql, qh and int8 scales", v[0] == -25.5 and v[64] == 0 and v[1] == 48))
    # Q8_K: d = 0.1 (f32), qs[0] = 3: float32(0.1) * 3 rounded in float32.
    v = dequantize("Q8_K", _block("Q8_K", {0: struct.pack("<f", 0.1), 4: b"\x03"}))
    cases.append(("Q8_K f32 scale", v[0] == np.float32(np.float32(0.1) * np.float32(3))))
    # IQ4_NL: d = 1, qs[0] = 0xf0: element 0 -> -127, element 16 -> 113.
    v = dequantize("IQ4_NL", _block("IQ4_NL", {0: _h(1), 2: b"\xf0"}))
    cases.append(("IQ4_NL table", v[0] == -127 and v[16] == 113 and v[1] == -127))
    # IQ4_XS: d = 0.5; sub-block 1: low nibble of scales_l[0] high half = 3,
    # scales_h bits 2-3 = 2 -> 3 | 2 << 4 = 35: level 3; qs[16] = 0x08 ->
    # element 32 = 1.5 * 1.
    v = dequantize("IQ4_XS", _block("IQ4_XS", {0: _h(0.5), 2: struct.pack("<H", 2 << 2),
                                               4: b"\x30", 24: b"\x08"}))
    cases.append(("IQ4_XS 6-bit sub-block scales", v[32] == 1.5 and v[33] == 1.5 * -127))
    print("1..%d" % len(cases))
    bad = 0
    for i, (what, okk) in enumerate(cases, 1):
        print("%s %d - reference: %s" % ("ok" if okk else "not ok", i, what))
        bad += not okk
    return 1 if bad else 0


def compare(path, dumpdir):
    ts = read_gguf(path)
    lines = []
    for name, (dt, shape, raw) in sorted(ts.items()):
        if dt not in DEQUANT and dt not in ("F32", "F16", "BF16"):
            continue
        ref = dequantize(dt, raw).astype(np.float64)
        try:
            got = np.fromfile("%s/%s.f64" % (dumpdir, name), dtype="<f8")
        except OSError:
            lines.append((False, "%s (%s): no dump" % (name, dt)))
            continue
        same = got.shape == ref.shape and np.array_equal(got.view("<u8"), ref.view("<u8"))
        what = "%s (%s, %d values) equals the reference bit for bit" % (name, dt, ref.size)
        if not same and got.shape == ref.shape:
            k = int(np.argmax(got.view("<u8") != ref.view("<u8")))
            what += ": first difference at %d (%r, reference %r)" % (k, got[k], ref[k])
        lines.append((same, what))
    print("1..%d" % len(lines))
    for i, (okk, what) in enumerate(lines, 1):
        print("%s %d - %s" % ("ok" if okk else "not ok", i, what))
    return 0 if all(o for o, _ in lines) else 1


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "selfcheck":
        sys.exit(selfcheck())
    if len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    sys.stderr.write(__doc__)
    sys.exit(2)
