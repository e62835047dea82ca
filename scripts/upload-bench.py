#!/usr/bin/env python3
"""Times uploads against a running Kitteh on 127.0.0.1, in one process so
that no interpreter start-up lands inside a measurement.

  upload-bench.py ready PORT FILE RUNS
      Uploads FILE RUNS times, one after another. For each run, prints the
      milliseconds until the upload was answered and until every size was
      ready (polling the API every 2 ms when the answer did not have them).
      Ends with a line `median ready_ms=… answered_ms=…`.

  upload-bench.py load PORT FILE CLIENTS SECONDS
      CLIENTS threads upload FILE in a loop for SECONDS, then the script
      waits until every accepted upload has all its sizes. Prints uploads,
      errors, the time until the last size was ready, and uploads with
      their sizes per second over that time.
"""
import http.client
import json
import statistics
import sys
import threading
import time

BOUNDARY = 'kittehbench'


def body_of(path):
    data = open(path, 'rb').read()
    return (b'--' + BOUNDARY.encode()
            + b'\r\nContent-Disposition: form-data; name="file"; filename="photo"\r\n'
            + b'Content-Type: application/octet-stream\r\n\r\n'
            + data + b'\r\n--' + BOUNDARY.encode() + b'--\r\n')


def upload(conn, body):
    conn.request('POST', '/api/images', body=body, headers={
        'Content-Type': 'multipart/form-data; boundary=' + BOUNDARY,
        'Accept': 'application/json',
    })
    res = conn.getresponse()
    return res.status, json.loads(res.read() or b'{}')


def all_ready(answer):
    sizes = answer.get('sizes') or []
    return bool(sizes) and all(s['state'] == 'ready' for s in sizes)


def wait_ready(conn, token, pause):
    while True:
        conn.request('GET', '/api/images/' + token)
        res = conn.getresponse()
        answer = json.loads(res.read())
        if all_ready(answer):
            return
        if any(s['state'] == 'failed' for s in answer.get('sizes', [])):
            raise SystemExit('a size failed: %r' % answer)
        time.sleep(pause)


def ready(port, path, runs):
    body = body_of(path)
    conn = http.client.HTTPConnection('127.0.0.1', port)
    answered_ms, ready_ms, inline = [], [], 0
    for i in range(runs):
        start = time.perf_counter()
        status, answer = upload(conn, body)
        answered = time.perf_counter()
        if status != 201:
            raise SystemExit('upload failed: %s %r' % (status, answer))
        if all_ready(answer):
            inline += 1
        else:
            wait_ready(conn, answer['token'], 0.002)
        done = time.perf_counter()
        answered_ms.append((answered - start) * 1000)
        ready_ms.append((done - start) * 1000)
        print('run %d: answered %.0f ms, all sizes ready %.0f ms' % (i + 1, answered_ms[-1], ready_ms[-1]))
    print('median ready_ms=%.1f answered_ms=%.1f sizes_in_answer=%d/%d'
          % (statistics.median(ready_ms), statistics.median(answered_ms), inline, runs))


def load(port, path, clients, seconds):
    body = body_of(path)
    tokens, errors, lock = [], [0], threading.Lock()
    start = time.perf_counter()
    stop_at = start + seconds

    def client():
        conn = http.client.HTTPConnection('127.0.0.1', port, timeout=120)
        while time.perf_counter() < stop_at:
            try:
                status, answer = upload(conn, body)
            except (OSError, http.client.HTTPException):
                status, answer = 0, {}
                conn = http.client.HTTPConnection('127.0.0.1', port, timeout=120)
            with lock:
                if status == 201:
                    tokens.append(answer['token'])
                else:
                    errors[0] += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    loaded = time.perf_counter()
    conn = http.client.HTTPConnection('127.0.0.1', port)
    for token in tokens:
        wait_ready(conn, token, 0.01)
    done = time.perf_counter()
    print('uploads=%d errors=%d load_s=%.1f all_sizes_ready_s=%.1f per_s=%.2f'
          % (len(tokens), errors[0], loaded - start, done - start, len(tokens) / (done - start)))


def main():
    mode = sys.argv[1]
    if mode == 'ready':
        ready(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    elif mode == 'load':
        load(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    else:
        raise SystemExit(__doc__)


if __name__ == '__main__':
    main()
