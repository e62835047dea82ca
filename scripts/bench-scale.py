#!/usr/bin/env python3
"""How Kitteh's costs grow with the number of pictures (bench-scale.sh).

Usage: bench-scale.py KITTEH_BIN WORKDIR BACKEND N [N ...]

BACKEND is sqlite or a postgres://… URL of a server to create databases
on. For each N: a database seeded directly in SQL with N pictures (three
size rows and a finished job each, 0.5 % sharing bytes, 5 % expiring, a key
with 10,000 uploads, 10,000 open reports), objects on disk as hard links
for up to 100,000 of them; then the figures below, printed per N and as
the growth factor per 10x N:

  upload p50/p99, show page p50, /img p50, /metrics p50, startup time and
  the startup sweep's peak RSS, `images list` (first page) time and RSS,
  `storage fsck` time and RSS, expiry rate with 10 % due and upload
  latency meanwhile (and any 503), upload p50 with 10,000 bans.
"""
import hashlib
import json
import os
import random
import resource
import sqlite3
import statistics
import struct
import subprocess
import sys
import time
import urllib.request
import zlib

BIN, WORK, BACKEND = sys.argv[1], sys.argv[2], sys.argv[3]
SIZES = [int(n) for n in sys.argv[4:]]
ON_DISK = 100_000
LINKS_PER_FILE = 60_000
NOW = "2026-12-01 00:00:00+00:00"
OLD = "2026-01-01 00:00:00+00:00"


def png(seed):
    """A small distinct PNG: a 16x16 picture of noise from `seed`."""
    rnd = random.Random(seed)
    raw = b''.join(b'\x00' + bytes(rnd.randrange(256) for _ in range(48)) for _ in range(16))

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 16, 16, 8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))


def rows(n, key_id):
    """The images' rows, as tuples, one at a time."""
    for i in range(n):
        token = f"s{i:09d}"
        shared = i % 200 == 1
        sha = hashlib.sha256(str(i - 1 if shared else i).encode()).hexdigest()
        path = f"s{i - 1:09d}.png" if shared else f"{token}.png"
        expires = OLD if i % 20 == 0 else None
        key = key_id if i < 10_000 else None
        ip = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        yield (i + 1, 'seed.png', token, f"Seeded{i}", 'Kitty', 'image/png', path, 1000, OLD, OLD, 16, 16,
               sha, 'x', key, ip, f"{0xffff0a000000 + i:032x}", expires)


def seed_sqlite(db, n):
    con = sqlite3.connect(db)
    # The triggers' totals are set once at the end, as if kept all along.
    triggers = con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
    for name, _ in triggers:
        con.execute(f"DROP TRIGGER {name}")
    con.execute("INSERT INTO upload_keys (id, name, key_hash, admin, created_at, uploads, bytes) VALUES (1, 'seeded', 'h', 0, ?, 0, 0)", (OLD,))
    con.executemany(
        "INSERT INTO images (id, original_name, token, generated_name, type, content_type, path, size, inserted_at, updated_at, width, height, sha256, delete_token_hash, key_id, uploader_ip, uploader_ip_key, expires_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows(n, 1))
    con.executemany("INSERT INTO variants (image_id, name, width, height, path, size, sha256, created_at) VALUES (?,?,?,?,?,?,?,?)",
                    ((i + 1, size, 8, 8, f"s{i:09d}-{size}.png", 100, 'v', OLD)
                     for i in range(n) for size in ('tiny', 'large', 'monstrous')))
    con.executemany("INSERT INTO variant_jobs (image_id, state, attempts, created_at, updated_at) VALUES (?, 'done', 1, ?, ?)",
                    ((i + 1, OLD, OLD) for i in range(n)))
    con.executemany("INSERT INTO reports (token, reason, details, created_at) VALUES (?, 'spam', '', ?)",
                    ((f"s{i:09d}", OLD) for i in range(min(n, 10_000))))
    for _, sql in triggers:
        con.execute(sql)
    totals(con.execute)
    con.commit()
    con.close()


def totals(execute):
    for name, q in [
        ('images', "SELECT COUNT(*) FROM images"), ('sizes', "SELECT COUNT(*) FROM variants"),
        ('stored_bytes', "SELECT (SELECT COALESCE(SUM(size),0) FROM images) + (SELECT COALESCE(SUM(size),0) FROM variants)"),
        ('jobs_done', "SELECT COUNT(*) FROM variant_jobs WHERE state = 'done'"),
    ]:
        execute(f"UPDATE tallies SET value = ({q}) WHERE name = '{name}'")
    execute("UPDATE upload_keys SET uploads = (SELECT COUNT(*) FROM images WHERE key_id = 1), "
            "bytes = (SELECT COALESCE(SUM(size), 0) FROM images WHERE key_id = 1) WHERE id = 1")


def psql(url, sql, stdin=None):
    subprocess.run(['psql', '-q', '-v', 'ON_ERROR_STOP=1', url, '-c', sql], input=stdin, check=True, capture_output=True)


def seed_postgres(url, n):
    def copy(table, columns, lines):
        data = ''.join('\t'.join('\\N' if v is None else str(v) for v in line) + '\n' for line in lines)
        psql(url, f"SET session_replication_role = replica; COPY {table} ({columns}) FROM STDIN", data.encode())
    psql(url, f"INSERT INTO upload_keys (id, name, key_hash, admin, created_at, uploads, bytes) VALUES (1, 'seeded', 'h', false, '{OLD}', 0, 0)")
    copy('images', 'id, original_name, token, generated_name, type, content_type, path, size, inserted_at, updated_at, width, height, sha256, delete_token_hash, key_id, uploader_ip, uploader_ip_key, expires_at', rows(n, 1))
    copy('variants', 'image_id, name, width, height, path, size, sha256, created_at',
         ((i + 1, size, 8, 8, f"s{i:09d}-{size}.png", 100, 'v', OLD) for i in range(n) for size in ('tiny', 'large', 'monstrous')))
    copy('variant_jobs', 'image_id, state, attempts, created_at, updated_at', ((i + 1, 'done', 1, OLD, OLD) for i in range(n)))
    copy('reports', 'token, reason, details, created_at', ((f"s{i:09d}", 'spam', '', OLD) for i in range(min(n, 10_000))))
    psql(url, "SELECT setval(pg_get_serial_sequence('images', 'id'), (SELECT MAX(id) FROM images))")
    for sql in []:
        psql(url, sql)
    statements = []
    totals(statements.append)
    psql(url, '; '.join(statements))
    psql(url, "ANALYZE")


def link_objects(uploads, n):
    """Hard links for the first ON_DISK objects (originals and sizes)."""
    os.makedirs(uploads, exist_ok=True)
    source, made = None, 0
    for i in range(min(n, ON_DISK // 4)):
        for name in [f"s{i:09d}.png"] + [f"s{i:09d}-{s}.png" for s in ('tiny', 'large', 'monstrous')]:
            if made % LINKS_PER_FILE == 0:
                source = os.path.join(uploads, f".source-{made // LINKS_PER_FILE}")
                open(source, 'wb').write(png(made))
            os.link(source, os.path.join(uploads, name))
            made += 1
    for f in os.listdir(uploads):
        if f.startswith('.source-'):
            os.unlink(os.path.join(uploads, f))


def env_for(url, uploads, port, extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith('KITTEH_')}
    env.update({'KITTEH_DATABASE__URL': url, 'KITTEH_STORAGE__UPLOADS_DIR': uploads,
                'KITTEH_SERVER__PORT': str(port), 'KITTEH_METRICS__ENABLED': 'true',
                'KITTEH_LOG__LEVEL': 'info', 'KITTEH_STORAGE__SWEEP_MIN_AGE_SECONDS': '0',
                'KITTEH_RATE_LIMITS__UPLOADS_PER_MINUTE': '0',
                # The expiry pass runs when a test step asks for it.
                'KITTEH_UPLOADS__EXPIRY_INTERVAL_SECONDS': '3600'})
    env.update(extra or {})
    return env


def free_port():
    import socket
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def rss_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def start(url, uploads, log, extra=None):
    port = free_port()
    started = time.monotonic()
    proc = subprocess.Popen([BIN, 'serve'], env=env_for(url, uploads, port, extra), stdout=subprocess.DEVNULL,
                            stderr=open(log, 'w'), cwd=WORK)
    peak, ready = 0, None
    while True:
        peak = max(peak, rss_kib(proc.pid))
        if ready is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2)
                ready = time.monotonic() - started
            except Exception:
                pass
        if ready is not None and 'storage sweep finished' in open(log).read():
            break
        if proc.poll() is not None or time.monotonic() - started > 600:
            raise SystemExit(open(log).read())
        time.sleep(0.05)
    return proc, port, ready, peak


def timed(url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            res.read()
            status = res.status
    except urllib.error.HTTPError as e:
        status = e.code
    return status, (time.monotonic() - started) * 1000


def upload(port, seed):
    boundary = 'benchscale'
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + png(seed) + f"\r\n--{boundary}--\r\n".encode()
    return timed(f"http://127.0.0.1:{port}/api/images", body,
                 {'Content-Type': f'multipart/form-data; boundary={boundary}'})


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def command(args, url, uploads):
    """Time and peak RSS of a kitteh command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.monotonic()
    subprocess.run([BIN] + args, env=env_for(url, uploads, 0), stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, cwd=WORK)
    took = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return took * 1000, max(peak, before) // 1024


def count(url, sql):
    if url.startswith('sqlite://'):
        con = sqlite3.connect(url[len('sqlite://'):], timeout=30)
        value = con.execute(sql).fetchone()[0]
        con.close()
        return value
    out = subprocess.run(['psql', '-qtA', url, '-c', sql], check=True, capture_output=True, text=True)
    return int(out.stdout.strip())


def measure(n):
    name = f"n{n}"
    uploads = os.path.join(WORK, name, 'uploads')
    os.makedirs(os.path.join(WORK, name), exist_ok=True)
    if BACKEND == 'sqlite':
        url = f"sqlite://{os.path.join(WORK, name, 'k.db')}"
    else:
        db = f"kitteh_scale_{n}_{os.getpid()}"
        psql(BACKEND, f"CREATE DATABASE {db}")
        url = BACKEND.rsplit('/', 1)[0] + '/' + db
    subprocess.run([BIN, 'migrate'], env=env_for(url, uploads, 0), check=True, capture_output=True, cwd=WORK)
    t0 = time.monotonic()
    if BACKEND == 'sqlite':
        seed_sqlite(url[len('sqlite://'):], n)
    else:
        seed_postgres(url, n)
    link_objects(uploads, n)
    print(f"  seeded {n} pictures in {time.monotonic() - t0:.0f} s", flush=True)
    out = {}
    log = os.path.join(WORK, name, 'kitteh.log')
    proc, port, ready, sweep_peak = start(url, uploads, log)
    out['startup_s'], out['sweep_peak_mib'] = ready, sweep_peak // 1024
    base = f"http://127.0.0.1:{port}"
    lat = [upload(port, 10_000_000 + i)[1] for i in range(40)]
    out['upload_p50'], out['upload_p99'] = statistics.median(lat), pct(lat, 0.99)
    out['show_p50'] = statistics.median(timed(f"{base}/Seeded5Kitty", headers={'Accept': 'text/html'})[1] for _ in range(100))
    out['img_p50'] = statistics.median(timed(f"{base}/img/s000000005")[1] for _ in range(200))
    out['metrics_p50'] = statistics.median(timed(f"{base}/metrics")[1] for _ in range(20))
    proc.terminate()
    proc.wait()
    out['list_ms'], out['list_mib'] = command(['images', 'list', '--json'], url, uploads)
    out['fsck_ms'], out['fsck_mib'] = command(['storage', 'fsck'], url, uploads)
    # Expiry: 5 % are due already; make it 10 % and let one pass run.
    due_sql = "UPDATE images SET expires_at = '2026-01-01 00:00:00+00:00' WHERE id % 20 = 10"
    if BACKEND == 'sqlite':
        con = sqlite3.connect(url[len('sqlite://'):])
        con.execute(due_sql)
        con.commit()
        con.close()
    else:
        psql(url, due_sql)
    due_before = count(url, "SELECT COUNT(*) FROM images WHERE expires_at <= '2026-06-01 00:00:00+00:00'")
    proc, port, _, _ = start(url, uploads, log, {'KITTEH_UPLOADS__EXPIRY_INTERVAL_SECONDS': '1'})
    started, lat, errors = time.monotonic(), [], 0
    deleted = 0
    while time.monotonic() - started < 60:
        status, ms = upload(port, 20_000_000 + len(lat))
        lat.append(ms)
        errors += status == 503
        left = count(url, "SELECT COUNT(*) FROM images WHERE expires_at <= '2026-06-01 00:00:00+00:00'")
        deleted = due_before - left
        if left == 0:
            break
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    out['expiry_per_s'] = deleted / elapsed
    out['upload_during_expiry_p50'], out['upload_during_expiry_max'] = statistics.median(lat), max(lat)
    out['upload_503'] = errors
    proc.terminate()
    proc.wait()
    # Ten thousand bans.
    bans = "INSERT INTO bans (cidr, reason, created_at) VALUES " + ", ".join(
        f"('172.{i // 256 % 256}.{i % 256}.0/24', 'seeded', '{OLD}')" for i in range(10_000))
    if BACKEND == 'sqlite':
        con = sqlite3.connect(url[len('sqlite://'):])
        con.execute(bans)
        con.commit()
        con.close()
    else:
        psql(url, bans)
    proc, port, _, _ = start(url, uploads, log)
    out['upload_bans_p50'] = statistics.median(upload(port, 30_000_000 + i)[1] for i in range(40))
    proc.terminate()
    proc.wait()
    return out


def main():
    results = {}
    for n in SIZES:
        print(f"{BACKEND.split(':')[0]} with {n} pictures:", flush=True)
        results[n] = measure(n)
        print("  " + json.dumps({k: round(v, 1) for k, v in results[n].items()}), flush=True)
    keys = list(results[SIZES[0]].keys())
    print(f"\n{'figure':<28}" + ''.join(f"{n:>12}" for n in SIZES) + "   growth per 10x")
    for k in keys:
        values = [results[n][k] for n in SIZES]
        growth = ''
        if len(SIZES) > 1 and values[0] > 0:
            import math
            decades = math.log10(SIZES[-1] / SIZES[0])
            growth = f"{(values[-1] / values[0]) ** (1 / decades):.2f}x" if decades else ''
        print(f"{k:<28}" + ''.join(f"{v:>12.1f}" for v in values) + f"   {growth}")


if __name__ == '__main__':
    main()
