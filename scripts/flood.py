#!/usr/bin/env python3
"""Connection floods from many addresses and stalled readers, for
bench-hostile.sh. Loopback only, bounded in time.

Usage:
  flood.py heads|idle PORT ADDRESSES SECONDS PAGE PICTURE
  flood.py stalled PORT READERS SECONDS PICTURE

heads/idle: from ADDRESSES loopback addresses (127.1.x.y), each opens as
many connections as the server lets it, and keeps them full of half-sent
request heads (heads) or idle after one request (idle), reconnecting
whatever is closed, for SECONDS. Meanwhile a normal client on 127.0.0.2
fetches PAGE and PICTURE in turn on fresh connections. Prints the normal
client's requests, errors and p50/p99 latency, and how many attack
connections were open at the end.

stalled: READERS connections from 127.0.0.3 each ask for PICTURE and never
read the answer, for SECONDS, while a normal client fetches it in full.
"""
import asyncio
import socket
import statistics
import sys
import time


def address(i):
    return f"127.1.{i // 250}.{i % 250 + 1}"


class Attack:
    def __init__(self, port, kind, deadline):
        self.port, self.kind, self.deadline = port, kind, deadline
        self.open = 0
        self.opened = 0
        self.refused = 0

    async def connection(self, source):
        """One attack connection, reopened whenever the server closes it."""
        while time.monotonic() < self.deadline:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection('127.0.0.1', self.port, local_addr=(source, 0)), 2)
            except (OSError, asyncio.TimeoutError):
                await asyncio.sleep(0.2)
                continue
            self.opened += 1
            self.open += 1
            try:
                if self.kind == 'idle':
                    writer.write(b'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
                else:
                    writer.write(b'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a')
                await writer.drain()
                while time.monotonic() < self.deadline:
                    data = await asyncio.wait_for(reader.read(65536), self.deadline - time.monotonic())
                    if not data:
                        break
                    if data.startswith(b'HTTP/1.1 429') or data.startswith(b'HTTP/1.1 503'):
                        self.refused += 1
                        break
            except (OSError, asyncio.TimeoutError, ValueError):
                pass
            finally:
                self.open -= 1
                writer.close()
            await asyncio.sleep(0.05)


async def fetch(port, path, source='127.0.0.2', read=True):
    started = time.monotonic()
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection('127.0.0.1', port, local_addr=(source, 0)), 5)
    writer.write(f'GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'.encode())
    await writer.drain()
    data = b''
    while True:
        chunk = await asyncio.wait_for(reader.read(1 << 20), 10)
        if not chunk:
            break
        data += chunk
    writer.close()
    status = data.split(b' ', 2)[1] if data.startswith(b'HTTP/1.1') else b'000'
    return status == b'200', time.monotonic() - started


async def normal_client(port, paths, deadline, results):
    i = 0
    while time.monotonic() < deadline:
        path = paths[i % len(paths)]
        i += 1
        try:
            ok, took = await fetch(port, path)
        except (OSError, asyncio.TimeoutError):
            ok, took = False, 10.0
        results.append((ok, took))
        await asyncio.sleep(0.02)


def report(results, extra):
    took = sorted(t for _, t in results)
    errors = sum(1 for ok, _ in results if not ok)
    p50 = statistics.median(took) * 1000 if took else 0
    p99 = took[min(len(took) - 1, int(len(took) * 0.99))] * 1000 if took else 0
    print(f"normal client: {len(results)} requests, {errors} errors, p50 {p50:.1f} ms, p99 {p99:.1f} ms; {extra}")


async def flood(kind, port, addresses, seconds, page, picture):
    deadline = time.monotonic() + seconds
    attack = Attack(port, kind, deadline)
    # As many connections as each address can hold: more than any cap.
    per_address = 200
    tasks = [asyncio.ensure_future(attack.connection(address(a)))
             for a in range(addresses) for _ in range(per_address)]
    await asyncio.sleep(min(3, seconds / 3))
    results = []
    await normal_client(port, [page, picture], deadline, results)
    open_at_end = attack.open
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    report(results, f"attack: {addresses} addresses, {attack.opened} connections opened, "
                    f"{attack.refused} refused, {open_at_end} open at the end")


async def stalled(port, readers, seconds, picture):
    deadline = time.monotonic() + seconds
    socks = []
    for _ in range(readers):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.bind(('127.0.0.3', 0))
        try:
            s.connect(('127.0.0.1', port))
            s.sendall(f'GET {picture} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'.encode())
            socks.append(s)
        except OSError:
            s.close()
    results = []
    await normal_client(port, [picture], deadline, results)
    report(results, f"{len(socks)} stalled readers of {picture}")
    for s in socks:
        s.close()


def main():
    kind = sys.argv[1]
    if kind in ('heads', 'idle'):
        port, addresses, seconds = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
        asyncio.run(flood(kind, port, addresses, seconds, sys.argv[5], sys.argv[6]))
    elif kind == 'stalled':
        port, readers, seconds = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
        asyncio.run(stalled(port, readers, seconds, sys.argv[5]))
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main()
