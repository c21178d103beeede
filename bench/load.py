"""Concurrent gradio_client clients against the app started on localhost (loopback only).

    python bench/load.py [--clients 1 4 16] [--seconds 20] [--json bench/results/load.json]

Starts ``python app.py`` on a free port, then for each N runs N client threads, each calling /predict
(example image + speech + text) in a loop until the time is up. Reports requests/s, p50/p95/max latency,
errors and the server's peak RSS (VmHWM). Bounded in time and count; the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from corpus import wait_until_serving  # noqa: E402 (the app tests' readiness check)

EXAMPLES = ROOT / "assets" / "examples"
MAX_REQUESTS_PER_CLIENT = 2000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_clients(url: str, clients: int, seconds: float) -> dict:
    from gradio_client import Client, handle_file

    latencies, errors, lock = [], [], threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker():
        client = Client(url, verbose=False)
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if time.perf_counter() >= deadline:
                return
            start = time.perf_counter()
            try:
                result = client.predict(handle_file(str(EXAMPLES / "image_7.png")),
                                        handle_file(str(EXAMPLES / "speech_7.wav")), "it's a seven",
                                        api_name="/predict")
                failure = None if result.get("label") == "7" else f"wrong label {result.get('label')}"
            except Exception as error:  # counted and reported, the run goes on
                failure = repr(error)[:200]
            with lock:
                if failure is None:
                    latencies.append(time.perf_counter() - start)
                else:
                    errors.append(failure)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 120)
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies) or [float("nan")]
    return {"clients": clients, "requests": len(latencies), "errors": len(errors), "error_samples": errors[:3],
            "requests_per_s": len(latencies) / elapsed, "p50_s": statistics.median(ordered),
            "p95_s": ordered[int(0.95 * (len(ordered) - 1))], "max_s": ordered[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--device")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "load.json"))
    args = parser.parse_args()
    port = free_port()
    env = {**os.environ, **({"FUSION_DEVICE": args.device} if args.device else {})}
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # Keep reading the server's log so a full pipe never blocks it.
        threading.Thread(target=server.stdout.read, daemon=True).start()
        url = f"http://127.0.0.1:{port}/"
        if not wait_until_serving(server, url):
            raise RuntimeError("the app exited or did not answer within 180 s")
        cold_start = time.perf_counter() - started
        rows = [run_clients(url, n, args.seconds) for n in args.clients]
        rss = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"cold start to ready: {cold_start:.1f} s   server peak RSS: {rss:.0f} MB")
    print(f"{'clients':>8}{'requests':>10}{'errors':>8}{'req/s':>8}{'p50 s':>8}{'p95 s':>8}{'max s':>8}")
    for r in rows:
        print(f"{r['clients']:>8}{r['requests']:>10}{r['errors']:>8}{r['requests_per_s']:>8.2f}{r['p50_s']:>8.2f}"
              f"{r['p95_s']:>8.2f}{r['max_s']:>8.2f}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cold_start_s": cold_start, "peak_rss_mb": rss, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
