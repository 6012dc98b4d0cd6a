#!/usr/bin/env python3
"""File checks of ropefold's figures and CSV, from the formats' own
definitions: PNG (the 8-byte signature, then an IHDR chunk with width and
height, ISO/IEC 15948), SVG (an XML document whose root is the SVG
namespace's svg element), PDF (a %PDF- header and an %%EOF trailer, ISO
32000). Exit 0 when every check holds, 1 with the reason otherwise.

  figure_check.py figure PATH [WIDTH HEIGHT]
  figure_check.py csv-offset CSV JSON    offsets' errors against check --json
  figure_check.py csv-heads CSV JSON     per-head errors against check --json
  figure_check.py csv-heat CSV JSON T    heatmap bins: masked half, diagonal
  figure_check.py pdf-title PDF TEXT [NOT]  the document's /Title (ISO 32000
                                         14.3.3: a literal string, or a hex one
                                         in UTF-16BE after the FE FF mark)
                                         holds TEXT (and not NOT)
"""
import csv
import json
import re
import struct
import sys
import xml.etree.ElementTree as ET


def fail(msg):
    print("figure_check: " + msg)
    sys.exit(1)


def figure(path, want_w=None, want_h=None):
    data = open(path, "rb").read()
    if len(data) < 1000:
        fail(f"{path}: only {len(data)} bytes")
    low = path.lower()
    if low.endswith(".png"):
        if data[:8] != b"\x89PNG\r\n\x1a\n":
            fail(f"{path}: no PNG signature")
        length, ctype = struct.unpack(">I4s", data[8:16])
        if ctype != b"IHDR" or length != 13:
            fail(f"{path}: the first chunk is not IHDR")
        w, h = struct.unpack(">II", data[16:24])
        if want_w and (w, h) != (int(want_w), int(want_h)):
            fail(f"{path}: {w}x{h}, expected {want_w}x{want_h}")
        if data[-8:-4] != b"IEND":
            fail(f"{path}: no IEND chunk at the end")
    elif low.endswith(".svg"):
        root = ET.fromstring(data)
        if root.tag != "{http://www.w3.org/2000/svg}svg":
            fail(f"{path}: the root element is {root.tag}")
        if want_w and root.get("width", "").rstrip("pt") != str(want_w):
            fail(f"{path}: width {root.get('width')}, expected {want_w}")
    elif low.endswith(".pdf"):
        if not data.startswith(b"%PDF-"):
            fail(f"{path}: no %PDF- header")
        if b"%%EOF" not in data[-32:]:
            fail(f"{path}: no %%EOF trailer")
        if b"/Type /Page" not in data and b"/Type/Page" not in data:
            fail(f"{path}: no page object")
    else:
        fail(f"{path}: unknown extension")


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def close(a, b, rel=2e-5):
    return abs(a - b) <= rel * max(abs(a), abs(b)) + 1e-300


def csv_offset(path, jpath):
    j = json.load(open(jpath))
    want = j["levels"]["score"]["by_offset"]
    got = rows(path)
    if len(got) != len(want):
        fail(f"{path}: {len(got)} offsets, check --json has {len(want)}")
    for i, (r, w) in enumerate(zip(got, want)):
        if int(r["offset"]) != i or not close(float(r["abs_err"]), w):
            fail(f"{path}: offset {i}: {r['abs_err']} vs check --json {w}")
        ratio = float(r["abs_err"]) / float(r["rel_err"]) if float(r["rel_err"]) else None
        if ratio is not None and not close(ratio, float(got[0]["abs_err"]) / float(got[0]["rel_err"]), 1e-12):
            fail(f"{path}: rel_err is not abs_err over one reference")


def csv_heads(path, jpath):
    j = json.load(open(jpath))
    hw, sw = j["levels"]["head"]["by_head"], j["levels"]["score"]["by_head"]
    got = rows(path)
    if len(got) != len(hw):
        fail(f"{path}: {len(got)} heads, check --json has {len(hw)}")
    for i, r in enumerate(got):
        if not close(float(r["head_rel_err"]), hw[i]) or not close(float(r["score_rel_err"]), sw[i]):
            fail(f"{path}: head {i}: {r} vs check --json {hw[i]}, {sw[i]}")


def csv_heat(path, jpath, T):
    j = json.load(open(jpath))
    T = int(T)
    got = rows(path)
    top = max(float(r["abs_err"]) for r in got)
    if top > j["levels"]["score"]["max_abs_err"] * (1 + 2e-5):
        fail(f"{path}: a bin's error {top} passes the score level's maximum")
    covered = set()
    for r in got:
        mb, nb = int(r["m_bin"]), int(r["n_bin"])
        if nb > mb:
            fail(f"{path}: bin ({mb}, {nb}) is in the masked half")
        for m in range(int(r["m_first"]), int(r["m_last"]) + 1):
            covered.add(m)
        if mb == nb:
            d = float(r["diagonal_abs_err"])
            if d > float(r["abs_err"]) * (1 + 1e-12):
                fail(f"{path}: the diagonal of bin {mb} exceeds its bin")
    if covered != set(range(T)):
        fail(f"{path}: the bins do not cover tokens 0..{T - 1}")


def pdf_title(path, want, unwanted=None):
    data = open(path, "rb").read()
    m = re.search(rb"/Title\s*(\((?:\\.|[^\\)])*\)|<[0-9A-Fa-f\s]*>)", data)
    if not m:
        fail(f"{path}: no /Title in the document")
    raw = m.group(1)
    if raw.startswith(b"<"):
        b = bytes.fromhex(raw[1:-1].decode().replace(" ", ""))
        title = b[2:].decode("utf-16-be") if b[:2] == b"\xfe\xff" else b.decode("latin-1")
    else:
        title = re.sub(rb"\\(.)", rb"\1", raw[1:-1]).decode("latin-1")
    if want not in title:
        fail(f"{path}: title {title!r} lacks {want!r}")
    if unwanted and unwanted in title:
        fail(f"{path}: title {title!r} holds {unwanted!r}")
    print(title)


def main(argv):
    kind = argv[1]
    if kind == "figure":
        figure(*argv[2:])
    elif kind == "csv-offset":
        csv_offset(*argv[2:])
    elif kind == "csv-heads":
        csv_heads(*argv[2:])
    elif kind == "csv-heat":
        csv_heat(*argv[2:])
    elif kind == "pdf-title":
        pdf_title(*argv[2:])
    else:
        fail("unknown check " + kind)


if __name__ == "__main__":
    main(sys.argv)
