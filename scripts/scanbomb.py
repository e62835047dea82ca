#!/usr/bin/env python3
"""Makes a progressive JPEG scan bomb from a progressive grey JPEG, as
tests/it/fixtures.rs does: a Huffman table of end-of-band runs, then the
same AC scan again and again, a few bytes each and a pass of the decoder
over the whole picture each.

Usage: scanbomb.py BASE.jpg SCANS OUT.jpg
"""
import sys


def scan_end(jpeg, start):
    i = start
    while i < len(jpeg) - 1:
        if jpeg[i] == 0xFF and jpeg[i + 1] != 0 and not 0xD0 <= jpeg[i + 1] <= 0xD7:
            return i
        i += 1
    return len(jpeg)


def main():
    base, scans, out = open(sys.argv[1], 'rb').read(), int(sys.argv[2]), sys.argv[3]
    soss = [i for i in range(len(base) - 1) if base[i] == 0xFF and base[i + 1] == 0xDA]
    sof = next(i for i in range(len(base) - 1) if base[i] == 0xFF and base[i + 1] in (0xC0, 0xC1, 0xC2))
    height = base[sof + 5] << 8 | base[sof + 6]
    width = base[sof + 7] << 8 | base[sof + 8]
    last = soss[-1]
    component = base[last + 5]
    end = scan_end(base, last + 2 + (base[last + 2] << 8 | base[last + 3]))
    body = bytearray(base[:end])
    counts = [1, 1] + [0] * 14
    body += bytes([0xFF, 0xC4, 0x00, 21, 0x11]) + bytes(counts) + bytes([0xE0, 0x10])
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    bits, left = [], blocks
    while left > 0:
        if left >= 1 << 14:
            run = min(left, (1 << 15) - 1)
            bits.append(0)
            bits += [(run - (1 << 14)) >> i & 1 for i in range(13, -1, -1)]
            left -= run
        else:
            run = min(max(left, 2), 3)
            bits += [1, 0, run & 1]
            left = max(left - run, 0)
    data = bytearray()
    for i in range(0, len(bits), 8):
        chunk = bits[i:i + 8]
        byte = 0xFF
        for j, bit in enumerate(chunk):
            if not bit:
                byte &= ~(0x80 >> j) & 0xFF
        data.append(byte)
        if byte == 0xFF:
            data.append(0)
    header = bytes([0xFF, 0xDA, 0x00, 0x08, 0x01, component, 0x01, 63, 63, 0x00])
    for _ in range(len(soss), scans):
        body += header + data
    body += base[end:]
    open(out, 'wb').write(bytes(body))


if __name__ == '__main__':
    main()
