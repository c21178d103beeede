"""Concurrent clients against the app started on localhost (loopback only): throughput, latency and memory.

    python bench/load.py [--clients 1 4 16] [--seconds 20 | --requests 1000] [--mix predict|mixed]
                         [--sessions one|new] [--warmup 40] [--json bench/results/load.json]

Starts ``python app.py`` on a free port, then for each N runs N client threads in a loop until the time (or
the request count) is up. ``--mix predict`` calls /predict with the example picture, recording and text;
``--mix mixed`` cycles through good and bad requests (each subset of inputs, a number that is no digit, a
picture given as audio, no input at all) and the Teach tab's page events (a class, a typed example, the class
removed), each with the answer it must get. ``--sessions new`` gives every request a new browser session, as
many visitors do. Reports requests/s, p50/p95/max latency, unexpected answers, and the server's RSS after
``--warmup`` requests and at the end of each row. Bounded in time and count; the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from corpus import page_events, run_event, wait_until_serving  # noqa: E402 (the app tests' helpers)

EXAMPLES = ROOT / "assets" / "examples"
MAX_REQUESTS_PER_CLIENT = 100_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """The process's resident memory now (``VmRSS``) or at its peak (``VmHWM``), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_app(port: int, env: dict | None = None) -> subprocess.Popen:
    """The README's ``python app.py`` on ``port``, serving once this returns (its log read and dropped)."""
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # Keep reading the server's log so a full pipe never blocks it; its last lines explain a failed start.
    log = collections.deque(maxlen=20)
    threading.Thread(target=lambda: log.extend(server.stdout), daemon=True).start()
    if not wait_until_serving(server, f"http://127.0.0.1:{port}/"):
        server.kill()
        raise RuntimeError("the app exited or did not answer within 180 s:\n" + "".join(log))
    return server


@dataclass
class Outcome:
    kind: str
    started: float  # perf_counter at the start of the request
    seconds: float
    failure: str | None  # None: the answer the request must get


def predict_requests(client, handle_file) -> dict:
    """{kind: a call -> None when /predict answered as it must, else what went wrong}."""
    image, audio = handle_file(str(EXAMPLES / "image_7.png")), handle_file(str(EXAMPLES / "speech_7.wav"))

    def label(expected, *inputs):
        def call():
            got = client.predict(*inputs, api_name="/predict").get("label")
            return None if got == expected else f"label {got!r}, expected {expected!r}"
        return call

    def refused(phrase, *inputs):
        def call():
            try:
                client.predict(*inputs, api_name="/predict")
            except Exception as error:  # gradio_client raises the app's gr.Error as AppError
                return None if phrase in str(error) else f"message {str(error)[:120]!r}"
            return f"answered, expected {phrase!r}"
        return call

    return {"all three": label("7", image, audio, "it's a seven"), "text": label("7", None, None, "seven"),
            "image+audio": label("7", image, audio, ""), "not a digit": label(None, None, None, "twelve"),
            "picture as audio": refused("as audio", None, image, ""),
            "no input": refused("at least one", None, None, "")}


def teach_requests(url: str, events: dict, session) -> dict:
    """The Teach tab's page events for the current session: name a class, add a typed example to it, remove
    the class (so that a session sending them again gets the same answers)."""
    def run():
        for event, data in (("teach-add-class", [None, "mug", 0]),
                            ("teach-add-example", [None, "mug", 1, None, None, "a mug of tea"]),
                            ("teach-remove-class", [None, "mug", 2])):
            warnings, done = run_event(url, events[event], data, session())
            if not done.get("success") or warnings:
                return f"{event}: {warnings or done}"[:160]
        return None
    return {"teach class and example": run}


def drive(url: str, clients: int, *, seconds: float | None = None, requests: int | None = None,
          mix: str = "predict", new_sessions: bool = False) -> list[Outcome]:
    """``clients`` threads, each with its own gradio_client, sending the mix round-robin until ``seconds``
    have passed or ``requests`` have been sent in all -> every request's outcome."""
    from gradio_client import Client, handle_file

    events = page_events(url) if mix == "mixed" else {}
    outcomes, lock = [], threading.Lock()
    deadline = time.perf_counter() + seconds if seconds else float("inf")
    budget = itertools.count()  # shared: request numbers handed out across the threads

    def worker(offset: int):
        client = Client(url, verbose=False)
        session = [client.session_hash]
        calls = predict_requests(client, handle_file)
        if mix == "mixed":
            calls |= teach_requests(url, events, lambda: session[0])
        kinds = list(calls)
        for i in range(MAX_REQUESTS_PER_CLIENT):
            if time.perf_counter() >= deadline or (requests is not None and next(budget) >= requests):
                return
            kind = kinds[(i + offset) % len(kinds)] if mix == "mixed" else "all three"
            if new_sessions:
                client.reset_session()  # as a visitor opening the page: the old session's heartbeat ends
                session[0] = client.session_hash
            start = time.perf_counter()
            try:
                failure = calls[kind]()
            except Exception as error:  # counted and reported, the run goes on
                failure = repr(error)[:200]
            with lock:
                outcomes.append(Outcome(kind, start, time.perf_counter() - start, failure))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def summary(outcomes: list[Outcome]) -> dict:
    """Counts and latency percentiles of the requests answered as they must be."""
    good = sorted(o.seconds for o in outcomes if o.failure is None) or [float("nan")]
    span = (max(o.started + o.seconds for o in outcomes) - min(o.started for o in outcomes)) if outcomes else 1
    return {"requests": len(outcomes), "errors": sum(o.failure is not None for o in outcomes),
            "error_samples": sorted({f"{o.kind}: {o.failure}" for o in outcomes if o.failure})[:5],
            "requests_per_s": len(outcomes) / span, "p50_s": statistics.median(good),
            "p95_s": good[int(0.95 * (len(good) - 1))], "max_s": good[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--seconds", type=float, default=20.0, help="per row, unless --requests is given")
    parser.add_argument("--requests", type=int, help="per row: this many requests instead of a time")
    parser.add_argument("--mix", choices=["predict", "mixed"], default="predict")
    parser.add_argument("--sessions", choices=["one", "new"], default="one",
                        help="one browser session per client, or a new one for every request")
    parser.add_argument("--warmup", type=int, default=40, help="requests sent before the RSS at start is read")
    parser.add_argument("--device")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "load.json"))
    args = parser.parse_args()
    port = free_port()
    env = {**os.environ, **({"FUSION_DEVICE": args.device} if args.device else {})}
    started = time.perf_counter()
    server = start_app(port, env)
    url = f"http://127.0.0.1:{port}/"
    rows = []
    try:
        cold_start = time.perf_counter() - started
        options = {"mix": args.mix, "new_sessions": args.sessions == "new"}
        drive(url, 2, requests=args.warmup, **options)
        for n in args.clients:
            rss_start = rss_mb(server.pid)
            run = drive(url, n, seconds=None if args.requests else args.seconds, requests=args.requests,
                        **options)
            rows.append({"clients": n, **summary(run), "rss_start_mb": rss_start, "rss_end_mb": rss_mb(server.pid)})
        peak = rss_mb(server.pid, "VmHWM")
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"cold start to ready: {cold_start:.1f} s   mix: {args.mix}   sessions: {args.sessions}   "
          f"server peak RSS: {peak:.0f} MB")
    print(f"{'clients':>8}{'requests':>10}{'errors':>8}{'req/s':>8}{'p50 s':>8}{'p95 s':>8}{'max s':>8}"
          f"{'RSS start':>11}{'RSS end':>9}{'growth':>8}")
    for r in rows:
        print(f"{r['clients']:>8}{r['requests']:>10}{r['errors']:>8}{r['requests_per_s']:>8.2f}{r['p50_s']:>8.2f}"
              f"{r['p95_s']:>8.2f}{r['max_s']:>8.2f}{r['rss_start_mb']:>11.0f}{r['rss_end_mb']:>9.0f}"
              f"{r['rss_end_mb'] - r['rss_start_mb']:>+8.0f}")
        for sample in r["error_samples"]:
            print(f"{'':>10}{sample}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cold_start_s": cold_start, "peak_rss_mb": peak, "mix": args.mix,
                               "sessions": args.sessions, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
