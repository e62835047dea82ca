#!/usr/bin/env python3
"""Hostile load against a running Kitteh, measured from outside.

Usage: hostile.py BASE_URL PID PHOTO [--workers N] [--seconds S]

Sends worst-case uploads from N threads in parallel (frame-bomb GIFs, a
16-bit PNG near the pixel limit and one that fits the decode budget, an
ICC bomb, bodies that stall) while one
normal client uploads PHOTO in a loop, and prints:
  - the server's peak RSS (sampled from /proc/PID every 50 ms),
  - the normal client's latency (median, p99) and errors,
  - per kind of hostile request: how long it took to be refused or
    accepted (median, max) and the statuses it got.
Every file is built here, in memory; nothing is read from elsewhere.
"""
import http.client
import io
import socket
import struct
import sys
import threading
import time
import urllib.parse
import zlib


def png_chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def frame_bomb_gif(frames=4000, screen=4000):
    """Thousands of 1x1 frames on a 4000x4000 logical screen (~50 KB)."""
    out = io.BytesIO()
    out.write(b"GIF89a" + struct.pack("<HH", screen, screen) + bytes([0x80, 0, 0]))
    out.write(bytes([0, 0, 0, 255, 255, 255]))  # two-colour global table
    out.write(b"\x21\xFF\x0BNETSCAPE2.0\x03\x01\x00\x00\x00")
    for i in range(frames):
        out.write(b"\x21\xF9\x04\x00\x01\x00\x00\x00")  # 10 ms, no transparency
        out.write(b"\x2C" + struct.pack("<HHHH", i % screen, (i // screen) % screen, 1, 1) + b"\x00")
        out.write(b"\x02\x02\x44\x01\x00")  # LZW: one pixel of colour 1
    out.write(b"\x3B")
    return out.getvalue()


def deep_png(side=7745):
    """A 16-bit RGBA PNG of side x side (inside the default pixel limit),
    all zeros: a few hundred KB that decodes to hundreds of MB."""
    ihdr = struct.pack(">IIBBBBB", side, side, 16, 6, 0, 0, 0)
    comp = zlib.compressobj(9)
    row = b"\x00" * (1 + side * 8)
    parts = [comp.compress(row) for _ in range(side)]
    parts.append(comp.flush())
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", b"".join(parts)) + png_chunk(b"IEND", b""))


def icc_bomb_png():
    """A 16x16 PNG whose iCCP chunk is ~1 MB that inflates to ~1 GB."""
    ihdr = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
    comp = zlib.compressobj(9)
    zero = b"\x00" * (1 << 20)
    parts = [comp.compress(zero) for _ in range(1024)]
    parts.append(comp.flush())
    iccp = b"bomb\x00\x00" + b"".join(parts)
    pixels = zlib.compress(b"".join(b"\x00" + b"\x80" * 48 for _ in range(16)))
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"iCCP", iccp)
            + png_chunk(b"IDAT", pixels) + png_chunk(b"IEND", b""))


def multipart(name, data):
    boundary = "kittehhostile"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    body += data + f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


def post(base, name, data, timeout=120):
    url = urllib.parse.urlparse(base)
    ctype, body = multipart(name, data)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    start = time.monotonic()
    try:
        conn.request("POST", "/api/images", body=body, headers={"Content-Type": ctype})
        res = conn.getresponse()
        res.read()
        return res.status, time.monotonic() - start
    except Exception as e:  # a refused or reset connection is an outcome too
        return f"error:{type(e).__name__}", time.monotonic() - start
    finally:
        conn.close()


def stalled_body(base, timeout=120):
    """Declares a 20 MB body, sends the head of its file part, then nothing.
    (A body of fewer than 14 bytes never reaches Kitteh's code: Rocket
    waits for them before routing, with no timeout of its own.)"""
    url = urllib.parse.urlparse(base)
    start = time.monotonic()
    s = socket.create_connection((url.hostname, url.port), timeout=timeout)
    try:
        s.sendall(b"POST /api/images HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: multipart/form-data; boundary=x\r\n"
                  b"Content-Length: 20000000\r\n\r\n--x\r\n"
                  b"Content-Disposition: form-data; name=\"file\"; filename=\"s.png\"\r\n\r\n")
        data = s.recv(4096)
        status = int(data.split()[1]) if data.startswith(b"HTTP/") else "closed"
        return status, time.monotonic() - start
    except Exception as e:
        return f"error:{type(e).__name__}", time.monotonic() - start
    finally:
        s.close()


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def main():
    args = sys.argv[1:]
    base, pid, photo = args[0], int(args[1]), open(args[2], "rb").read()
    workers = int(args[args.index("--workers") + 1]) if "--workers" in args else 4
    seconds = float(args[args.index("--seconds") + 1]) if "--seconds" in args else 30
    files = {
        "frame-bomb GIF": ("bomb.gif", frame_bomb_gif()),
        "16-bit PNG 7745x7745": ("deep.png", deep_png()),
        # Fits the default budget alone (200 MB to check, 300 MB for its
        # sizes), so it is accepted, and parallel ones must share.
        "16-bit PNG 5000x5000": ("deep5k.png", deep_png(5000)),
        "ICC bomb PNG": ("icc.png", icc_bomb_png()),
    }
    for kind, (_, data) in files.items():
        print(f"{kind}: {len(data)} bytes")
    print("stalled body: declares 20000000 bytes, sends the part head (~80 bytes), then waits")

    stop = time.monotonic() + seconds
    peak = [rss_kib(pid)]
    idle = peak[0]
    outcomes = {kind: [] for kind in list(files) + ["stalled body"]}
    normal = []
    lock = threading.Lock()

    def sample():
        while time.monotonic() < stop + 5:
            peak[0] = max(peak[0], rss_kib(pid))
            time.sleep(0.05)

    def hostile(i):
        kinds = list(outcomes)
        n = i
        while time.monotonic() < stop:
            kind = kinds[n % len(kinds)]
            n += 1
            if kind == "stalled body":
                outcome = stalled_body(base)
            else:
                outcome = post(base, *files[kind])
            with lock:
                outcomes[kind].append(outcome)

    def normal_client():
        while time.monotonic() < stop:
            normal.append(post(base, "photo.jpg", photo))

    threads = [threading.Thread(target=sample)]
    threads += [threading.Thread(target=hostile, args=(i,)) for i in range(workers)]
    threads.append(threading.Thread(target=normal_client))
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    print(f"\nserver RSS: idle {idle // 1024} MiB, peak {peak[0] // 1024} MiB")
    ok = [t for s, t in normal if s == 201]
    bad = [s for s, _ in normal if s != 201]
    print(f"normal client: {len(normal)} uploads, {len(bad)} not 201 {sorted(set(map(str, bad)))}, "
          f"median {pct(ok, 0.5) * 1000:.0f} ms, p99 {pct(ok, 0.99) * 1000:.0f} ms")
    for kind, results in outcomes.items():
        times = [t for _, t in results]
        statuses = {}
        for s, _ in results:
            statuses[str(s)] = statuses.get(str(s), 0) + 1
        print(f"{kind}: {len(results)} requests, statuses {statuses}, "
              f"time to answer median {pct(times, 0.5):.2f} s, max {max(times) if times else float('nan'):.2f} s")


if __name__ == "__main__":
    main()
