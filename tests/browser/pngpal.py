"""pngpal - rewrite a screenshot as an 8-bit palette PNG (standard library only).

Screenshots of the inspector have few colours but Chromium writes them as RGB, three
times the bytes docs/img/ needs. The 256 most frequent colours become the palette;
any other colour (antialiased text edges) takes the nearest of them, which a reader
does not notice on a flat UI. Only what Chromium writes is read: 8-bit RGB or RGBA,
not interlaced.

The browser test leaves Chromium's screenshots in build/inspector/; docs/img/'s copies
are made with `python3 tests/browser/pngpal.py build/inspector/*.png docs/img/`.
"""

import os
import struct
import sys
import zlib
from collections import Counter


def _chunks(data):
    pos = 8
    while pos < len(data):
        n, = struct.unpack(">I", data[pos:pos + 4])
        yield data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def _unfilter(raw, w, h, bpp):
    stride, out, prev, i = w * bpp, bytearray(), bytearray(w * bpp), 0
    for _ in range(h):
        kind, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride) if kind else ():
            a = line[x - bpp] if x >= bpp else 0
            c = prev[x - bpp] if x >= bpp else 0
            line[x] = (line[x] + (a, prev[x], (a + prev[x]) // 2, _paeth(a, prev[x], c))[kind - 1]) & 255
        out += line
        prev = line
    return out


def _chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _header(data):
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    chunks = list(_chunks(data))
    return chunks, struct.unpack(">IIBBBBB", chunks[0][1])


def pixels(data):
    """(width, height, each pixel's RGB as 3 bytes) of an 8-bit RGB, RGBA or palette PNG."""
    chunks, (w, h, depth, ctype, _, _, interlace) = _header(data)
    if depth != 8 or ctype not in (2, 3, 6) or interlace:
        raise ValueError("not an 8-bit RGB, RGBA or palette PNG")
    bpp = {2: 3, 3: 1, 6: 4}[ctype]
    px = _unfilter(zlib.decompress(b"".join(b for t, b in chunks if t == b"IDAT")), w, h, bpp)
    if ctype == 3:
        plte = dict(chunks)[b"PLTE"]
        return w, h, [plte[3 * i:3 * i + 3] for i in px]
    return w, h, [bytes(px[i:i + 3]) for i in range(0, len(px), bpp)]


def palettize(data):
    """PNG bytes in, smaller PNG bytes out."""
    chunks, (w, h, depth, ctype, _, _, interlace) = _header(data)
    if depth != 8 or ctype not in (2, 6) or interlace:
        return data
    bpp = 3 if ctype == 2 else 4
    px = _unfilter(zlib.decompress(b"".join(b for t, b in chunks if t == b"IDAT")), w, h, bpp)
    colours = [bytes(px[i:i + 3]) for i in range(0, len(px), bpp)]
    counts = Counter(colours)
    palette = [c for c, _ in counts.most_common(256)]
    index = {c: i for i, c in enumerate(palette)}
    for c in counts:
        if c not in index:
            index[c] = min(range(len(palette)), key=lambda i: sum((palette[i][k] - c[k]) ** 2 for k in range(3)))
    rows = bytearray()
    for y in range(h):
        rows.append(0)
        rows += bytes(index[c] for c in colours[y * w:(y + 1) * w])
    return (data[:8] + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0))
            + _chunk(b"PLTE", b"".join(palette)) + _chunk(b"IDAT", zlib.compress(bytes(rows), 9))
            + _chunk(b"IEND", b""))


def main(argv):
    if len(argv) < 3 or not os.path.isdir(argv[-1]):
        sys.exit("usage: pngpal.py SCREENSHOT.png... DIRECTORY")
    for path in argv[1:-1]:
        with open(path, "rb") as f:
            small = palettize(f.read())
        with open(os.path.join(argv[-1], os.path.basename(path)), "wb") as f:
            f.write(small)


if __name__ == "__main__":
    main(sys.argv)
