"""ZeroGPU: every handler that runs an encoder holds a GPU through ``spaces.GPU``, for a duration fitted to it.

On a ZeroGPU Space (https://huggingface.co/docs/hub/spaces-zerogpu) a real GPU exists only inside functions
decorated with ``spaces.GPU``; each call asks for its ``duration`` in seconds, which ZeroGPU checks against
the visitor's remaining daily quota (2 minutes for anonymous visitors) and at which it stops the call. So
each handler asks for what it needs: seconds for a webcam frame, more for a Compare of four models, and for
adding files, training or restoring a project a callable duration that grows with the work (``spaces``
calls it with the handler's own arguments). ``time_limit`` gives each event's Gradio time limit: on ZeroGPU
never more than its GPU duration, elsewhere the CPU limits the page always had.

A decorated function runs in a process forked from the server, its arguments and result pickled across
(``fusion.teach.Project`` pickles without its encoders, see ``Project.__getstate__``); what it changes in
the server's memory stays in that process, so the handlers keep session bookkeeping outside the GPU part.
Off ZeroGPU ``spaces.GPU`` returns the function unchanged, and without the ``spaces`` package ``on_gpu``
does.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

from .teach import MAX_RESTORE_SECONDS, MAX_TRAIN_SECONDS

# Seconds of GPU per call. A fusion encodes at most three inputs once (10-50 ms each on a GPU) and runs the
# seven Shapley subsets through the small head; the rest is the first call's transfer of the models to
# the GPU, decoding and drawing.
FRAME_S = 5  # a Live frame: one picture encoded, fused with the cached recording and text
FUSE_S = 15  # Fuse, a slider, Download report, an example, one /predict
COMPARE_S = 30  # every served strategy on the same inputs (the encodings are shared)
EXAMPLE_S = 15  # Teach: one example encoded
MAX_S = 120  # the longest any handler asks for
# Teach: adding files, training and restoring grow with the work.
FILE_S = 2  # per dropped file (a .txt file's lines are short texts)
TRAIN_BASE_S, TRAIN_PER_EXAMPLE_S = 15, 0.5  # bench/teach.py: 50 examples in 18 s, 100 in 16 s on 2 CPU cores
RESTORE_BASE_S, RESTORE_PER_MB_S = 15, 2.0  # a zip's examples are re-encoded
MAX_BATCH = 16  # the most /predict calls that share an encoder pass (off ZeroGPU, ``FusionService.batch``)


def zero_gpu() -> bool:
    """Whether this server runs on ZeroGPU (``SPACES_ZERO_GPU``, as the ``spaces`` package reads it)."""
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")


def capped(seconds: float) -> int:
    return int(min(MAX_S, max(1, round(seconds))))


def files_duration(project, label, files, version, request=None) -> int:
    """``TeachPage.encode_files``: a few seconds, and ``FILE_S`` per file."""
    return capped(10 + FILE_S * len(files or []))


def train_duration(project, strategy, version, progress=None) -> int:
    """``TeachPage.fit``: grows with the examples, at most ``MAX_TRAIN_SECONDS`` + 30 (``MAX_S``)."""
    examples = len(project.examples) if project is not None else 0
    return min(capped(TRAIN_BASE_S + TRAIN_PER_EXAMPLE_S * examples), MAX_TRAIN_SECONDS + 30)


def restore_duration(archive) -> int:
    """``TeachPage.restore``: grows with the zip's size (its examples are encoded again)."""
    try:
        megabytes = os.path.getsize(archive) / 2**20
    except (TypeError, ValueError, OSError):
        megabytes = 0
    return min(capped(RESTORE_BASE_S + RESTORE_PER_MB_S * megabytes), MAX_RESTORE_SECONDS)


files_duration.most = MAX_S
train_duration.most = min(MAX_S, MAX_TRAIN_SECONDS + 30)
restore_duration.most = min(MAX_S, MAX_RESTORE_SECONDS)


def longest(duration: int | Callable) -> int:
    """A duration's most: itself, or for a callable the most it returns."""
    return getattr(duration, "most", MAX_S) if callable(duration) else int(duration)


def time_limit(duration: int | Callable, cpu_limit: float) -> float:
    """The Gradio time limit of an event whose GPU part asks for ``duration``: on ZeroGPU no more than that
    (the GPU is gone after it), elsewhere ``cpu_limit``."""
    return min(cpu_limit, longest(duration)) if zero_gpu() else cpu_limit


def deadline_s(duration: int | Callable, default: float, *args, **kwargs) -> float:
    """How long a handler with its own deadline (training, restoring) may run: ``default``, and on ZeroGPU
    10 s less than the GPU time it asked for, so it stops with its own message before ZeroGPU stops it."""
    if not zero_gpu():
        return default
    asked = duration(*args, **kwargs) if callable(duration) else duration
    return max(1.0, min(default, asked - 10))


REFUSED = "\0not uploaded"  # an upload refused before the GPU call: ``upload_path`` refuses it in any process


def checked_upload(value):
    """An event's value with every upload (Gradio's FileData dict; in a list too) replaced by its checked real
    path, or by ``REFUSED``. Done in the server's process before a GPU call: the forked process that runs the
    call has no running app to tell this session's uploads from others' (``serving.upload_path``)."""
    from .errors import InputError
    from .serving import upload_path

    if isinstance(value, list):
        return [checked_upload(v) for v in value]
    if isinstance(value, dict) and value.get("path") and not str(value.get("url") or "").startswith("data:"):
        try:
            return upload_path(value)
        except InputError:
            return REFUSED
    return value


def on_gpu(fn: Callable, duration: int | Callable) -> Callable:
    """``fn`` decorated with ``spaces.GPU(duration=duration)`` (``fn`` itself without the ``spaces`` package);
    on ZeroGPU its uploads are checked before the call (``checked_upload``). Gradio sees ``fn``'s signature
    (what it injects: a ``gr.Request``, a ``gr.Progress``) and docstring through both wrappers."""
    try:
        import spaces
    except ImportError:
        return fn
    decorated = spaces.GPU(duration=duration)(fn)

    @functools.wraps(fn)
    def checked_first(*args, **kwargs):
        if zero_gpu():
            args = tuple(checked_upload(a) for a in args)
        return decorated(*args, **kwargs)

    checked_first.gpu_duration = duration
    return checked_first
