"""Load on the REST service over loopback: last-detect requests from concurrent clients.

Starts ``ad-pipeline serve`` (``python -m ad_pipeline.cli serve``: uvicorn, ``--workers`` processes)
on a free loopback port, warms it up (the engine's JIT compiles on the first request), sends
``--requests`` last-detect requests of ``--points`` points from ``--concurrency`` clients
(httpx, asyncio, one connection per client), checks every answer, prints requests/s and latency
percentiles, and stops the server.

Run::

    .venv/bin/python -m benchmarks.serve                       # 10,000 requests, 16 clients, 100 points
    .venv/bin/python -m benchmarks.serve --requests 2000 --points 500 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from tests.support.net import free_port

KEY = "bench-key"


def make_bodies(n_bodies: int, points: int, seed: int = 0) -> list[bytes]:
    """Distinct 5-minute series (daily cycle + noise, some with a spike at the end) as JSON bytes."""
    rng = np.random.default_rng(seed)
    t0 = np.datetime64("2024-01-01T00:00")
    stamps = [f"{t0 + np.timedelta64(5 * i, 'm')}:00Z" for i in range(points)]
    bodies = []
    for b in range(n_bodies):
        x = 100 + 10 * np.sin(np.arange(points) * 2 * np.pi / 288) + rng.normal(0, 1, points)
        if b % 4 == 0:
            x[-1] += 25
        series = [{"timestamp": s, "value": round(float(v), 4)} for s, v in zip(stamps, x, strict=True)]
        body = {"series": series, "granularity": "minutely", "customInterval": 5, "sensitivity": 95}
        bodies.append(json.dumps(body).encode())
    return bodies


def start_server(port: int, max_points: int, workers: int, log) -> subprocess.Popen:
    env = {**os.environ, "AD_PIPELINE_API_KEYS": KEY}
    cmd = [sys.executable, "-m", "ad_pipeline.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning", "--max-points", str(max_points), "--workers", str(workers)]  # fmt: skip
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


async def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with status {proc.returncode}")
            try:
                if (await client.get(url + "/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError("server not ready in time")


async def run_load(url: str, bodies: list[bytes], n_requests: int, concurrency: int) -> dict:
    import httpx

    path = url + "/anomalydetector/v1.1/timeseries/last/detect"
    headers = {"Content-Type": "application/json", "Ocp-Apim-Subscription-Key": KEY}
    latencies = np.zeros(n_requests)
    statuses: dict[int, int] = {}
    anomalies = 0
    next_i = 0

    async def worker() -> None:
        nonlocal next_i, anomalies
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(limits=limits, timeout=120) as client:
            while next_i < n_requests:
                i = next_i
                next_i += 1
                t = time.perf_counter()
                r = await client.post(path, content=bodies[i % len(bodies)], headers=headers)
                latencies[i] = time.perf_counter() - t
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 200:
                    anomalies += bool(r.json()["isAnomaly"])

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    return {"wall": wall, "latencies": latencies, "statuses": statuses, "anomalies": anomalies}


async def main_async(args: argparse.Namespace) -> int:
    bodies = make_bodies(64, args.points)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tempfile.NamedTemporaryFile("w+", prefix="ad_pipeline_serve_", suffix=".log", delete=False)
    proc = start_server(port, max(args.points, 8640), args.workers, log)
    try:
        t = time.perf_counter()
        await wait_ready(url, proc)
        started = time.perf_counter() - t
        t = time.perf_counter()
        warm = await run_load(url, bodies, 32 * args.workers, 4 * args.workers)  # first requests compile the engine
        warmup = time.perf_counter() - t
        if set(warm["statuses"]) != {200}:
            print(f"warm-up failed: {warm['statuses']}", file=sys.stderr)
            return 1
        res = await run_load(url, bodies, args.requests, args.concurrency)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    lat = res["latencies"] * 1000
    errors = args.requests - res["statuses"].get(200, 0)
    print(f"server: ad-pipeline serve --workers {args.workers} (uvicorn) on {url}; ready in {started:.1f} s, "
          f"warm-up ({32 * args.workers} requests, JIT) {warmup:.1f} s")  # fmt: skip
    print(f"load: {args.requests} last-detect requests x {args.points} points, {args.concurrency} concurrent clients")
    print(f"  wall time      {res['wall']:.2f} s")
    print(f"  requests/s     {args.requests / res['wall']:.0f}")
    print(f"  points/s       {args.requests * args.points / res['wall']:.0f}")
    print(f"  latency ms     p50 {np.percentile(lat, 50):.1f}  p90 {np.percentile(lat, 90):.1f}  "
          f"p99 {np.percentile(lat, 99):.1f}  max {lat.max():.1f}")  # fmt: skip
    print(f"  statuses       {res['statuses']}  errors {errors}")
    print(f"  last point flagged in {res['anomalies']} of {args.requests} answers")
    print(f"  server log     {log.name}")
    print(f"  machine        {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (client and server share it)")
    return 1 if errors else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--points", type=int, default=100)
    p.add_argument("--workers", type=int, default=1, help="server processes (ad-pipeline serve --workers)")
    return asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
