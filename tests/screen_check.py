#!/usr/bin/python3
"""Check a captured explorer screen (tmux capture-pane -p) for layout faults.

usage: screen_check.py WIDTH HEIGHT UTF8_SCREEN [ASCII_SCREEN]

UTF8_SCREEN is the screen in a UTF-8 locale, whose box-drawing characters
find the boxes unambiguously: every box is a top-left corner, a run to the
first top-right corner on its row, sides down to the bottom corners. For
each box:
  - every side cell is a side and both bottom corners are there (nothing
    drew over the frame, no row ran into the next box);
  - no inner row ends in an ellipsis in the column next to the right side:
    draw_text marks text it had to cut with one, so a mark there is text
    that did not fit its box (a cut label or number).
ASCII_SCREEN, the same state in the C locale, must hold only ASCII and
have the ASCII frame ('+', '-', '|') at the same places.
Prints one line per fault and exits 1 when there is one."""

import sys

UTF8 = {"tl": "\u250c", "tr": "\u2510", "bl": "\u2514", "br": "\u2518",
        "v": "\u2502"}
ASCII = {"tl": "+", "tr": "+", "bl": "+", "br": "+", "v": "|"}
ELLIPSIS = "\u2026"


def read(path, w, h):
    with open(path, encoding="utf-8", errors="replace") as f:
        rows = f.read().split("\n")
    rows = [r.ljust(w)[:w] for r in rows[:h]]
    while len(rows) < h:
        rows.append(" " * w)
    return rows


def boxes(rows):
    """(top, left, bottom, right) of each box, and the faults found."""
    found, faults = [], []
    for y, row in enumerate(rows):
        for x, ch in enumerate(row):
            if ch != UTF8["tl"]:
                continue
            x2 = row.find(UTF8["tr"], x + 1)
            if x2 < 0:
                faults.append("row %d: box at column %d has no top-right corner" % (y, x))
                continue
            yy = y + 1
            while yy < len(rows):
                left, right = rows[yy][x], rows[yy][x2]
                if left == UTF8["bl"]:
                    if right != UTF8["br"]:
                        faults.append("row %d: box (%d,%d) bottom-right corner is %r" %
                                      (yy, y, x, right))
                    break
                if left != UTF8["v"] or right != UTF8["v"]:
                    faults.append("row %d: box (%d,%d)-(%d) side overwritten: %r ... %r" %
                                  (yy, y, x, x2, left, right))
                    break
                yy += 1
            else:
                faults.append("box (%d,%d) has no bottom" % (y, x))
                continue
            found.append((y, x, yy, x2))
    return found, faults


def main():
    w, h = int(sys.argv[1]), int(sys.argv[2])
    u = read(sys.argv[3], w, h)
    found, faults = boxes(u)
    if not found:
        faults.append("no box on the screen")
    for (t, l, b, r) in found:
        for y in range(t + 1, b):
            if r - 1 > l and u[y][r - 1] == ELLIPSIS:
                faults.append("row %d: text cut at the right side of box (%d,%d): %s" %
                              (y, t, l, u[y][l:r + 1].rstrip()))
    if len(sys.argv) > 4:
        a = read(sys.argv[4], w, h)
        for y, row in enumerate(a):
            bad = [c for c in row if ord(c) > 126 or (ord(c) < 32)]
            if bad:
                faults.append("C locale, row %d: non-ASCII %r" % (y, "".join(bad[:4])))
        for (t, l, b, r) in found:
            want = [(t, l, "tl"), (t, r, "tr"), (b, l, "bl"), (b, r, "br")]
            want += [(y, l, "v") for y in range(t + 1, b)] + [(y, r, "v") for y in range(t + 1, b)]
            for (y, x, k) in want:
                if a[y][x] != ASCII[k]:
                    faults.append("C locale, row %d col %d: %r where the frame's %r is" %
                                  (y, x, a[y][x], ASCII[k]))
                    break
    for f in faults:
        print(f)
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
