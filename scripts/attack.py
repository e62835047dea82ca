#!/usr/bin/env python3
"""Slow-header and idle connections from one address, for bench-serve.sh.

Usage: attack.py PORT SOURCE_ADDRESS SLOW IDLE SECONDS

Opens SLOW connections that send a request's headers one byte a second
and IDLE connections that make one request and then sit on the open
connection, all from SOURCE_ADDRESS (any 127.x address), and keeps them
up for SECONDS. Prints one line per kind: how many the server refused at
once, how many it closed later, and how many were still open at the end.
"""
import asyncio
import sys
import time

port, source = int(sys.argv[1]), sys.argv[2]
slow_n, idle_n, seconds = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
deadline = time.monotonic() + seconds
stats = {k: {'refused': 0, 'closed': 0, 'open': 0, 'failed': 0} for k in ('slow', 'idle')}


async def opened():
    return await asyncio.open_connection('127.0.0.1', port, local_addr=(source, 0))


async def watch_close(reader, kind, started):
    """Waits for the server to close; 'refused' if it did so at once."""
    try:
        remaining = deadline - time.monotonic()
        data = await asyncio.wait_for(reader.read(65536), max(remaining, 0.01))
        while data and b'\r\n\r\n' not in data and time.monotonic() < deadline:
            more = await asyncio.wait_for(reader.read(65536), max(deadline - time.monotonic(), 0.01))
            if not more:
                break
            data += more
        if data.startswith(b'HTTP/1.1 429') or data.startswith(b'HTTP/1.1 503'):
            stats[kind]['refused'] += 1
            return True
        if data and kind == 'idle':
            return False
        stats[kind]['closed'] += 1
        return True
    except (asyncio.TimeoutError, ConnectionError, OSError):
        return False


async def slow():
    try:
        reader, writer = await opened()
    except OSError:
        stats['slow']['failed'] += 1
        return
    started = time.monotonic()
    closer = asyncio.ensure_future(watch_close(reader, 'slow', started))
    head = b'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ' + b'a' * 10000
    for byte in head:
        if closer.done() or time.monotonic() >= deadline:
            break
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except (ConnectionError, OSError):
            break
        await asyncio.sleep(1)
    ended = await closer if closer.done() else False
    if not closer.done():
        closer.cancel()
    if not ended:
        stats['slow']['open'] += 1
    writer.close()


async def idle():
    try:
        reader, writer = await opened()
    except OSError:
        stats['idle']['failed'] += 1
        return
    started = time.monotonic()
    try:
        writer.write(b'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
        await writer.drain()
        first = await asyncio.wait_for(reader.read(65536), 10)
    except (asyncio.TimeoutError, ConnectionError, OSError):
        first = b''
    if first.startswith(b'HTTP/1.1 429') or first.startswith(b'HTTP/1.1 503') or not first:
        stats['idle']['refused'] += 1
        writer.close()
        return
    # Answered: now sit on the connection.
    try:
        data = await asyncio.wait_for(reader.read(65536), max(deadline - time.monotonic(), 0.01))
        if not data:
            stats['idle']['closed'] += 1
        else:
            stats['idle']['open'] += 1
    except (asyncio.TimeoutError, ConnectionError, OSError):
        stats['idle']['open'] += 1
    writer.close()


async def main():
    tasks = [asyncio.ensure_future(slow()) for _ in range(slow_n)]
    tasks += [asyncio.ensure_future(idle()) for _ in range(idle_n)]
    await asyncio.gather(*tasks, return_exceptions=True)
    for kind, s in stats.items():
        print(f"{kind}: refused at once {s['refused']}, closed later {s['closed']}, "
              f"still open after {seconds:.0f} s {s['open']}, could not connect {s['failed']}")


asyncio.run(main())
