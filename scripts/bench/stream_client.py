"""Streaming load for scripts/bench/gateway.sh: plain asyncio sockets, no dependencies.

ttft:  N sequential streaming requests over fresh connections; for each, the time from sending
       the request to the first byte of the body that contains MARKER (the first token), and
       to the end of the response. Prints p50/p99 in milliseconds as JSON.
hold:  opens N streaming requests at once, waits until every one has received its first token,
       then reads VmRSS/VmHWM of PID from /proc, holds them a moment, reads again, and closes
       them all. Prints the figures as JSON.

Every wait is bounded (--timeout), and so is every loop (N requests).
"""
import argparse
import asyncio
import json
import statistics
import sys
import time
from urllib.parse import urlsplit


def request_bytes(host, path, body, headers):
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json",
             f"Content-Length: {len(body)}", "Connection: close"]
    lines += headers
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def one_stream(host, port, payload, marker, timeout, first_event=None, release=None):
    """Sends one request; returns (ttft_s, total_s, status). With first_event/release: signals
    after the first token, then waits for `release` before closing the connection."""
    t0 = time.perf_counter()
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(payload)
        await writer.drain()
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            if not chunk:
                raise RuntimeError("connection closed before the response headers")
            buf += chunk
        head, body = buf.split(b"\r\n\r\n", 1)
        status = int(head.split()[1])
        if status != 200:
            raise RuntimeError(f"status {status}: {body[:300]!r}")
        # The marker may straddle reads: keep a small tail of the previous read.
        seen = body
        while marker not in seen:
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            if not chunk:
                raise RuntimeError("the stream ended before the first token")
            seen = seen[-len(marker):] + chunk
        ttft = time.perf_counter() - t0
        if first_event is not None:
            first_event()
            await asyncio.wait_for(release.wait(), timeout)
            return ttft, None, status
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            if not chunk:
                break
        return ttft, time.perf_counter() - t0, status
    finally:
        writer.close()


def pct(values, p):
    values = sorted(values)
    if not values:
        return None
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = value.strip()
    return out


def kib(v):
    return int(v.split()[0])


async def ttft(args, payload, host, port):
    marker = args.marker.encode()
    # Warm-up: connections, credential resolution and allocator state.
    for _ in range(min(20, args.n)):
        await one_stream(host, port, payload, marker, args.timeout)
    ttfts, totals = [], []
    deadline = time.monotonic() + args.max_seconds
    for _ in range(args.n):
        if time.monotonic() > deadline:
            break
        t, total, _ = await one_stream(host, port, payload, marker, args.timeout)
        ttfts.append(t * 1000)
        totals.append(total * 1000)
    return {
        "requests": len(ttfts),
        "ttft_p50_ms": round(statistics.median(ttfts), 3),
        "ttft_p99_ms": round(pct(ttfts, 99), 3),
        "total_p50_ms": round(statistics.median(totals), 3),
    }


async def hold(args, payload, host, port):
    marker = args.marker.encode()
    before = proc_status(args.pid)
    started = 0
    all_started = asyncio.Event()
    release = asyncio.Event()

    def first():
        nonlocal started
        started += 1
        if started == args.n:
            all_started.set()

    # Open connections in waves so the listen backlog is never the bottleneck.
    sem = asyncio.Semaphore(args.open_concurrency)

    async def guarded():
        # The semaphore covers connecting and the first token only; the stream stays open.
        await sem.acquire()
        released = False

        def on_first():
            nonlocal released
            released = True
            sem.release()
            first()

        try:
            return await one_stream(host, port, payload, marker, args.timeout, on_first, release)
        finally:
            if not released:
                sem.release()

    t0 = time.perf_counter()
    tasks = [asyncio.create_task(guarded()) for _ in range(args.n)]
    try:
        await asyncio.wait_for(all_started.wait(), args.timeout)
    except asyncio.TimeoutError:
        failed = [t for t in tasks if t.done() and t.exception()]
        sys.stderr.write(f"only {started} of {args.n} streams started; "
                         f"{len(failed)} failed: {failed[0].exception() if failed else ''}\n")
        release.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        sys.exit(1)
    open_s = time.perf_counter() - t0
    during = proc_status(args.pid)
    await asyncio.sleep(args.hold_seconds)
    later = proc_status(args.pid)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [r for r in results if isinstance(r, Exception)]
    ttfts = [r[0] * 1000 for r in results if not isinstance(r, Exception)]
    return {
        "streams": args.n,
        "errors": len(errors),
        "open_all_s": round(open_s, 3),
        "ttft_p50_ms": round(statistics.median(ttfts), 3) if ttfts else None,
        "ttft_p99_ms": round(pct(ttfts, 99), 3) if ttfts else None,
        "rss_idle_mib": round(kib(before["VmRSS"]) / 1024, 1),
        "rss_open_mib": round(kib(during["VmRSS"]) / 1024, 1),
        "rss_open_later_mib": round(kib(later["VmRSS"]) / 1024, 1),
        "hwm_mib": round(kib(later["VmHWM"]) / 1024, 1),
        "threads": int(later["Threads"]),
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["ttft", "hold"])
    p.add_argument("--url", required=True, help="http://127.0.0.1:PORT")
    p.add_argument("--path", required=True)
    p.add_argument("--body", required=True)
    p.add_argument("--header", action="append", default=[])
    p.add_argument("--marker", required=True, help="bytes that mark the first token")
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--max-seconds", type=float, default=60.0)
    p.add_argument("--pid", type=int)
    p.add_argument("--hold-seconds", type=float, default=3.0)
    p.add_argument("--open-concurrency", type=int, default=200)
    args = p.parse_args()
    u = urlsplit(args.url)
    if u.hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("loopback only")
    payload = request_bytes(u.netloc, args.path, args.body.encode(), args.header)
    fn = ttft if args.mode == "ttft" else hold
    print(json.dumps(asyncio.run(fn(args, payload, u.hostname, u.port))))


if __name__ == "__main__":
    main()
