"""Start-up cost of the package: ``import fusion`` and ``python -m fusion --help``, against a bare interpreter.

    python bench/startup.py [--runs 7]

Each command runs ``--runs`` times in a fresh interpreter (the checkout's ``fusion``); the table gives the median
wall time and what it adds to ``python -c pass`` measured in the same loop.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {"python -c pass (baseline)": ["-c", "pass"], "import fusion": ["-c", "import fusion"],
            "python -m fusion --help": ["-m", "fusion", "--help"],
            "python -m fusion train --help": ["-m", "fusion", "train", "--help"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    seconds = {name: [] for name in COMMANDS}
    for _ in range(args.runs):  # interleaved, so a busy moment costs every command alike
        for name, command in COMMANDS.items():
            started = time.perf_counter()
            subprocess.run([sys.executable, *command], cwd=ROOT, check=True, capture_output=True)
            seconds[name].append(time.perf_counter() - started)
    base = statistics.median(seconds["python -c pass (baseline)"])
    print(f"{'command':<32}{'median s':>10}{'over baseline s':>17}")
    for name, runs in seconds.items():
        print(f"{name:<32}{statistics.median(runs):>10.2f}{statistics.median(runs) - base:>17.2f}")


if __name__ == "__main__":
    main()
