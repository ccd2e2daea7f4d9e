"""Load generator for `/v1/batch`, run in its own process: throughput and latency figures.

Bodies are built before the clock starts so the client measures the server, not json.dumps.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import threading
import time
import uuid
from base64 import b64encode


def build_bodies(count: int, batch: int, tag: str) -> list[bytes]:
    """Return `count` batch bodies of `batch` unique track calls each."""
    bodies = []
    for n in range(count):
        calls = [
            {
                "type": "track",
                "event": "Product Viewed",
                "userId": f"user-{(n * batch + i) % 20000}",
                "messageId": f"{tag}-{n}-{i}",
                "timestamp": "2026-11-01T12:00:00Z",
                "properties": {"product_id": f"p{i % 300}", "price": 19.99, "channel": "web"},
                "context": {"library": {"name": "bench", "version": "1"}},
            }
            for i in range(batch)
        ]
        bodies.append(json.dumps({"batch": calls}).encode())
    return bodies


def _worker(
    host: str,
    port: int,
    auth: str,
    bodies: list[bytes],
    latencies: list[float],
    statuses: dict,
    interval: float | None,
    start_at: float,
) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=60)
    headers = {"Content-Type": "application/json", "Authorization": auth}
    next_send = start_at
    for body in bodies:
        if interval is not None:
            delay = next_send - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            next_send += interval
        began = time.perf_counter()
        conn.request("POST", "/v1/batch", body=body, headers=headers)
        answer = conn.getresponse()
        answer.read()
        latencies.append(time.perf_counter() - began)
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
    conn.close()


def run(
    url_host: str,
    port: int,
    key: str,
    *,
    connections: int,
    batches: int,
    batch: int,
    rate: float | None,
) -> dict:
    """Return figures of sending `batches` bodies; `rate` is events/s, None for flat out."""
    auth = "Basic " + b64encode(f"{key}:".encode()).decode()
    tag = uuid.uuid4().hex[:8]
    per_conn = batches // connections
    bodies = [build_bodies(per_conn, batch, f"{tag}-{c}") for c in range(connections)]
    interval = None if rate is None else connections * batch / rate
    latencies: list[list[float]] = [[] for _ in range(connections)]
    statuses: list[dict] = [{} for _ in range(connections)]
    start = time.perf_counter() + 0.05
    threads = [
        threading.Thread(
            target=_worker,
            args=(
                url_host,
                port,
                auth,
                bodies[c],
                latencies[c],
                statuses[c],
                interval,
                start + c * (interval or 0) / connections,
            ),
        )
        for c in range(connections)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    lat = sorted(x for part in latencies for x in part)
    merged: dict = {}
    for part in statuses:
        for status, n in part.items():
            merged[status] = merged.get(status, 0) + n
    events = per_conn * connections * batch
    return {
        "events": events,
        "seconds": elapsed,
        "events_per_s": events / elapsed,
        "p50_ms": 1000 * lat[len(lat) // 2],
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))],
        "mean_ms": 1000 * statistics.fmean(lat),
        "statuses": merged,
    }


def main() -> None:
    """Parse arguments, run the load, print the figures as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rate", type=float, default=None)
    args = parser.parse_args()
    result = run(
        "127.0.0.1",
        args.port,
        args.key,
        connections=args.connections,
        batches=args.batches,
        batch=args.batch,
        rate=args.rate,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
