"""How big is the runtime install? The installed size of requirements.txt and everything it pulls in, measured
from this environment's installed files (each distribution's RECORD), split into what a CPU-only machine
does not need (CUDA libraries, triton, torch's own CUDA kernels) and the rest.

    python bench/install_size.py
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def closure(names: list[str]) -> dict[str, object]:
    """Every distribution the requirements need (markers evaluated here, extras followed)."""
    seen, todo = {}, [Requirement(n) for n in names]
    while todo:
        req = todo.pop()
        key = req.name.lower().replace("_", "-")
        if key in seen:
            continue
        try:
            dist = distribution(req.name)
        except PackageNotFoundError:
            continue
        seen[key] = dist
        for text in dist.requires or []:
            sub = Requirement(text)
            env = [{"extra": e} for e in req.extras] or [{"extra": ""}]
            if sub.marker is None or any(sub.marker.evaluate(e) for e in env):
                todo.append(sub)
    return seen


def size(dist, cuda_only: bool = False) -> int:
    total = 0
    for file in dist.files or []:
        path = Path(dist.locate_file(file))
        if cuda_only and not re.search(r"(cuda|cudnn|cublas|nccl|cusparse|cufft|curand|nvrtc|triton)", str(file)):
            continue
        if path.is_file():
            total += path.stat().st_size
    return total


def main() -> None:
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    dists = closure([line for line in lines if line])
    sizes = {name: size(d) for name, d in dists.items()}
    gpu = {n: s for n, s in sizes.items() if n.startswith("nvidia-") or n == "triton"}
    torch_cuda = size(dists["torch"], cuda_only=True) if "torch" in dists else 0
    total = sum(sizes.values())
    print(f"{len(dists)} distributions, {total / 2**30:.2f} GiB installed")
    print(f"  CUDA only (nvidia-* + triton): {sum(gpu.values()) / 2**30:.2f} GiB; torch's own CUDA libraries: "
          f"{torch_cuda / 2**30:.2f} GiB; the rest: {(total - sum(gpu.values()) - torch_cuda) / 2**30:.2f} GiB")
    print("largest:")
    for name, s in sorted(sizes.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {name:<32}{s / 2**20:9.0f} MiB")
    print(f"RESULT distributions={len(dists)} total_gib={total / 2**30:.2f} "
          f"without_cuda_gib={(total - sum(gpu.values()) - torch_cuda) / 2**30:.2f}")


if __name__ == "__main__":
    main()
