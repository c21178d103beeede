"""Asynchronous fusion, for the live preview: each modality is encoded when its input changes and fused
with the latest tokens of the others, so a new webcam frame costs one image encoding and one pass of the
fusion head, and an unchanged recording or text is never encoded again."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from .encoders.base import Tokens
from .errors import InputError
from .inputs import present_inputs
from .modalities import decode_inputs
from .pipeline import LoadedModel, Prediction, build_prediction, to_cpu


def fingerprint(value) -> str:
    """What identifies a raw input cheaply: an array's bytes, a file's path, size and time, a text itself."""
    if isinstance(value, np.ndarray):
        return "array:" + hashlib.blake2b(np.ascontiguousarray(value).data, digest_size=16).hexdigest()
    if isinstance(value, (str, os.PathLike)) and os.path.isfile(value):
        stat = os.stat(value)
        return f"file:{os.fspath(value)}:{stat.st_size}:{stat.st_mtime_ns}"
    return f"value:{value!r}"


@dataclass
class Latest:
    """A modality's most recent input: its fingerprint, canonical form, tokens (batch of 1) and notes."""

    key: str
    item: object
    tokens: Tokens
    notes: list[str]


class LiveFusion:
    """The latest tokens of each modality for one live session of one model (one caller at a time:
    ``LiveSession`` makes a stream's frames take turns).

    encodes counts the encoder runs per modality (what asynchronous fusion saves shows there).
    """

    def __init__(self, model: LoadedModel):
        self.model = model
        self.latest: dict[str, Latest] = {}
        self.encodes: Counter = Counter()

    @torch.inference_mode()
    def update(self, **values) -> Prediction:
        """The current raw input of each modality (None or "": absent) -> the fused prediction.

        A modality whose input is unchanged reuses its tokens; a new one is decoded (the shared decode path,
        so the same limits and messages) and encoded. Raises InputError when no modality is left.
        """
        start = time.perf_counter()
        given = {m: v for m, v in present_inputs(values).items() if m in self.model.encoders}
        self.latest = {m: latest for m, latest in self.latest.items() if m in given}
        timings = {}
        for modality, value in given.items():
            key = fingerprint(value)
            if modality in self.latest and self.latest[modality].key == key:
                continue
            t0 = time.perf_counter()
            items, notes = decode_inputs(self.model.encoders, decode_options=self.model.decode_options,
                                         **{modality: value})
            if modality not in items:  # e.g. a silent recording: nothing to fuse from it
                self.latest.pop(modality, None)
                continue
            tokens = self.model.encoders[modality].encode([items[modality]])
            self.latest[modality] = Latest(key, items[modality], tokens, notes)
            self.encodes[modality] += 1
            timings[modality] = round((time.perf_counter() - t0) * 1000, 2)
        if not self.latest:
            raise InputError("Nothing to fuse yet: show something to the webcam, record or type.")
        tokens = {m: latest.tokens for m, latest in self.latest.items()}
        t0 = time.perf_counter()
        out = to_cpu(self.model.fusion(tokens, contributions=True))
        timings["fusion"] = round((time.perf_counter() - t0) * 1000, 2)
        p = build_prediction(self.model, out, tokens, 0, {m: latest.item for m, latest in self.latest.items()},
                             timings)
        p.notes = [note for latest in self.latest.values() for note in latest.notes] + p.notes
        p.timings_ms["total"] = round((time.perf_counter() - start) * 1000, 2)
        return p


class LiveSession:
    """One browser session's live preview, shared by the frames handled at once, which take turns: the
    ``LiveFusion`` of the model in use, made anew when the model changes."""

    def __init__(self):
        self.fusion: LiveFusion | None = None
        self.lock = threading.Lock()

    def update(self, model: LoadedModel, **values) -> Prediction:
        with self.lock:
            if self.fusion is None or self.fusion.model.fusion is not model.fusion:
                self.fusion = LiveFusion(model)
            return self.fusion.update(**values)
