"""Load test of the Respond service: sustained report intake and upload screening from several client
processes
on loopback, for a bounded time. Prints throughput, p50/p99 latency and errors for each request kind, beside a
baseline measured in the same run (GET /healthz: one database round trip, no work).

    PYTHONPATH=src python benchmarks/service.py --clients 4 --seconds 20 [--database-url postgresql://...]

The server is `deepshield serve` in a subprocess on a fresh DEEPSHIELD_HOME (SQLite WAL unless
--database-url).
Target: zero errors.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _png(seed: int) -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray((rng.random((120, 160, 3)) * 255).astype("uint8")).save(buf, "PNG")
    return buf.getvalue()


def _multipart(filename: str, data: bytes, fields: dict[str, str]) -> tuple[bytes, str]:
    b = uuid.uuid4().hex
    parts = [f'--{b}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]
    parts.append(
        f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: image/png\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{b}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={b}"


REPORT = {
    "category": "ncii",
    "jurisdiction": "US",
    "content_locations": ["https://social.example/p/1"],
    "explanation": "sexual deepfake posted without consent",
    "good_faith": True,
    "signature": "J. Roe",
    "reporter_name": "J. Roe",
    "reporter_email": "j@example.org",
    "reporter_role": "depicted_person",
}


def client(idx: int, port: int, key: str, mode: str, seconds: float, start_at: float, out: Any) -> None:
    """mode: "health" (baseline) or "mixed" (4 intakes : 1 screening)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    auth = {"Authorization": f"Bearer {key}"}
    images = [_png(idx * 1000 + i) for i in range(8)]
    lat: dict[str, list[float]] = {"health": [], "intake": [], "screen": []}
    errors: dict[str, int] = {"health": 0, "intake": 0, "screen": 0}
    while time.time() < start_at:
        time.sleep(0.001)
    end = start_at + seconds
    i = 0
    while time.time() < end:
        if mode == "health":
            kind, method, path, body, headers = "health", "GET", "/healthz", None, {}
        elif i % 5 == 4:
            data, ctype = _multipart(f"u{i}.png", images[i % len(images)], {"content_ref": f"c{idx}-{i}"})
            kind, method, path, body, headers = (
                "screen",
                "POST",
                "/v1/uploads",
                data,
                {**auth, "Content-Type": ctype},
            )
        else:
            kind, method, path = "intake", "POST", "/v1/reports"
            body = json.dumps({**REPORT, "explanation": f"report {idx}-{i}"}).encode()
            headers = {
                **auth,
                "Content-Type": "application/json",
                "Idempotency-Key": f"bench-{idx}-{i}-{start_at}",
            }
        t0 = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            ok = resp.status in (200, 201)
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        dt = time.perf_counter() - t0
        if ok:
            lat[kind].append(dt)
        else:
            errors[kind] += 1
        i += 1
    out.put((lat, errors))


def run_phase(
    port: int, key: str, mode: str, clients: int, seconds: float
) -> tuple[dict[str, list[float]], dict[str, int]]:
    q: Any = mp.Queue()
    start_at = time.time() + 1.0
    procs = [mp.Process(target=client, args=(i, port, key, mode, seconds, start_at, q)) for i in range(clients)]
    for p in procs:
        p.start()
    lat: dict[str, list[float]] = {"health": [], "intake": [], "screen": []}
    err = {"health": 0, "intake": 0, "screen": 0}
    for _ in procs:
        part_lat, part_err = q.get(timeout=seconds + 120)
        for k in lat:
            lat[k] += part_lat[k]
            err[k] += part_err[k]
    for p in procs:
        p.join()
    return lat, err


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="ds-bench-"))
    env = {**os.environ, "DEEPSHIELD_HOME": str(home), "PYTHONPATH": str(ROOT / "src")}
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    sys.path.insert(0, str(ROOT / "src"))
    os.environ.update({k: v for k, v in env.items() if k in ("DEEPSHIELD_HOME", "DATABASE_URL")})
    from deepshield.accounts.service import create_api_key
    from deepshield.config import Settings
    from deepshield.store.db import reset_engines, session_scope, upgrade_schema

    settings = Settings(home=home, database_url=args.database_url)
    settings.ensure_dirs()
    upgrade_schema(settings)
    with session_scope(settings) as s:
        key, _ = create_api_key(s, ["cases", "scan"], "bench")
    reset_engines()

    port = _free_port()
    log = open(home / "server.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(
        [sys.executable, "-m", "deepshield.cli.main", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(600):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        # warm-up: the first screening builds the face analyzer
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        data, ctype = _multipart("w.png", _png(0), {})
        c.request(
            "POST",
            "/v1/uploads",
            body=data,
            headers={"Authorization": f"Bearer {key}", "Content-Type": ctype},
        )
        warm = c.getresponse()
        warm.read()
        print(
            f"server: {settings.db_url.split('@')[-1]}, {args.clients} client processes, "
            f"{args.seconds:.0f} s per phase; warm-up screening HTTP {warm.status}"
        )

        base_lat, base_err = run_phase(port, key, "health", args.clients, args.seconds)
        lat, err = run_phase(port, key, "mixed", args.clients, args.seconds)
    finally:
        server.terminate()
        server.wait(20)
        log.close()

    rows = [
        ("baseline GET /healthz", base_lat["health"], base_err["health"]),
        ("POST /v1/reports", lat["intake"], err["intake"]),
        ("POST /v1/uploads", lat["screen"], err["screen"]),
    ]
    base_rps = len(base_lat["health"]) / args.seconds
    print(f"{'request':<24}{'ok':>8}{'errors':>8}{'req/s':>9}{'x base':>8}{'p50 ms':>9}{'p99 ms':>9}")
    for name, xs, e in rows:
        rps = len(xs) / args.seconds
        print(
            f"{name:<24}{len(xs):>8}{e:>8}{rps:>9.1f}{rps / base_rps if base_rps else 0:>8.2f}"
            f"{pct(xs, 50):>9.1f}{pct(xs, 99):>9.1f}"
        )
    total_err = sum(err.values()) + sum(base_err.values())
    reports = len(lat["intake"])
    print(
        f"report throughput: {reports / args.seconds:.1f} reports/s (mixed with "
        f"{len(lat['screen']) / args.seconds:.1f} screenings/s); errors: {total_err}"
    )
    if statistics and total_err:
        print("FAIL: errors > 0")
    return 1 if total_err else 0


if __name__ == "__main__":
    raise SystemExit(main())
