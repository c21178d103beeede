"""A soak: the README-started app kept busy for a long time, in windows: errors, latency and memory over time.

    python bench/soak.py [--minutes 30] [--window 5] [--clients 3] [--json bench/results/soak.json]

Starts ``python app.py`` on a free port (``bench/load.py``'s ``start_app``) and runs ``--clients`` client
threads for ``--minutes``, each sending ``bench/load.py``'s mixed requests (good and bad ``/predict`` calls,
the Teach tab's events), a new browser session for every request. Per ``--window`` minutes it prints the
requests, the unexpected answers, p50/p95 latency and the server's RSS at the window's end, then the p95
spread across windows (largest / smallest) and the RSS growth from the end of the first window to the end.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import ROOT, drive, free_port, rss_mb, start_app, summary  # noqa: E402 (the load bench's parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--window", type=float, default=5.0, help="minutes per reported window")
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "soak.json"))
    args = parser.parse_args()
    port = free_port()
    server = start_app(port)
    url = f"http://127.0.0.1:{port}/"
    windows = []
    try:
        rss_start = rss_mb(server.pid)
        for _ in range(max(1, round(args.minutes / args.window))):
            run = drive(url, args.clients, seconds=args.window * 60, mix="mixed", new_sessions=True)
            windows.append({**summary(run), "rss_end_mb": rss_mb(server.pid)})
            w = windows[-1]
            print(f"window {len(windows)}: {w['requests']} requests, {w['errors']} errors, p50 {w['p50_s']:.2f} s, "
                  f"p95 {w['p95_s']:.2f} s, RSS {w['rss_end_mb']:.0f} MB", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    p95 = [w["p95_s"] for w in windows]
    print(f"\n{args.clients} clients, {len(windows)} windows of {args.window:g} min, RSS at start {rss_start:.0f} MB")
    print(f"{'window':>7}{'requests':>10}{'errors':>8}{'p50 s':>8}{'p95 s':>8}{'RSS end MB':>12}")
    for i, w in enumerate(windows, start=1):
        print(f"{i:>7}{w['requests']:>10}{w['errors']:>8}{w['p50_s']:>8.2f}{w['p95_s']:>8.2f}{w['rss_end_mb']:>12.0f}")
        for sample in w["error_samples"]:
            print(f"{'':>9}{sample}")
    print(f"p95 largest / smallest window: {max(p95) / min(p95):.2f}   RSS growth after the first window: "
          f"{windows[-1]['rss_end_mb'] - windows[0]['rss_end_mb']:+.0f} MB   (from start: "
          f"{windows[-1]['rss_end_mb'] - rss_start:+.0f} MB)")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"clients": args.clients, "window_min": args.window, "rss_start_mb": rss_start,
                               "windows": windows}, indent=1))


if __name__ == "__main__":
    main()
