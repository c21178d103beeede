"""What the web app's events call: inputs from the page in, finished outputs (or a friendly message) out.

``app.py`` only lays out components and wires them to these methods. The events run with Gradio's
preprocessing off, so uploads arrive as the uploaded file's path and go through ``fusion.inputs`` like
any API or CLI file: one decode path, one set of limits and messages. A user's mistake becomes a
``gr.Warning`` (page) or ``gr.Error`` (API) with that message; an unexpected failure is logged here and
shown as a short apology, never as a traceback. Every request writes one JSON log line.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import traceback
from concurrent.futures import Future
from pathlib import Path

import gradio as gr
import numpy as np
from gradio.context import LocalContext
from PIL import Image

from . import modalities as registry
from .config import STRATEGY_NAMES
from .data.manifest import read_manifest
from .errors import InputError, UserError
from .inputs import present_inputs
from .live import LiveSession
from .modalities import decode_inputs
from .pipeline import (
    ASSETS_DIR,
    DEFAULT_MODEL,
    DEFAULT_STRATEGY,
    MODELS_DIR,
    LoadedModel,
    Prediction,
    load_model,
    predict,
    predict_items,
)
from .report import zip_report
from .teach import share
from .views import compare_html, counted_html, headline, maps_html, what_if_html, words_html

log = logging.getLogger("fusion.serving")
NOT_UPLOADED = "That file was not uploaded to this page, or it has expired: please upload it again."
APOLOGY = "Sorry, something went wrong on the server with that input. Please try again or try another one."
EXAMPLES_DIR = ASSETS_DIR / "examples"
REPORTS_KEPT_S = 600
TAUGHT = "your model"  # the strategy of a session's model from the Teach tab
CLEARED = (None, "", "", "", "", "")  # every output of ``fuse`` emptied
WEBCAM_NOT_CAPTURED = ("The webcam is on but no photo was taken: press the camera button under the video to "
                       "capture one.")
STRATEGY_DIAGRAM = """### The four fusion strategies

```
 image ─ EfficientNet-Lite0 (15 blocks) ─ 4×4 tokens ─┐  every modality: LayerNorm + Linear to d=256
 audio ─ Whisper base (4 layers) ─────── 50 /s ───────┼─► + modality embedding (image: one Linear per cell)
 text ── MiniLM-L6 ───────────────────── words ───────┘

 concat     mean-pool each ─► [img | aud | txt] (absent = learned vector) ─► MLP ─► digit
 attention  attention-pool each ─► query (learned + consensus) attends over modalities ─► a_m ─► head
 cross      [CLS] img… aud… txt… ─► 2 transformer layers ─► head on [CLS];  weights = attention rollout
 late       attention-pool ─► classifier per modality ─► Σ a_m · log p_m, a = gate(summary, consensus)

 attention, cross, late: each modality's own prediction is compared with the others'; s · log agreement
 is added to its scores (to the keys of its tokens for cross), so an odd one out is weighted down

 explanations: a_m (attention / rollout / gate) · exact Shapley over the 7 subsets · unimodal heads
```"""


def shipped_models(models_dir: Path = MODELS_DIR) -> dict[str, Path]:
    """{strategy: folder} of the shipped ``digits-<strategy>`` models, the default first."""
    found = {p.name.split("-", 1)[1]: p for p in sorted(models_dir.glob("digits-*")) if (p / "config.json").is_file()}
    order = (DEFAULT_STRATEGY,) + STRATEGY_NAMES
    return {s: found[s] for s in sorted(found, key=lambda s: order.index(s) if s in order else len(order))}


class GuardedBlocks(gr.Blocks):
    """``gr.Blocks`` whose refusal of a request's payload before any handler runs (a FileData naming a file
    the client did not upload, a value that is not a file at all, too few values) is one plain message, the
    same ``NOT_UPLOADED`` the handlers give for a file, and leaves nothing of the request in the log
    (Gradio's own errors quote the values and print their traceback)."""

    async def preprocess_data(self, block_fn, inputs, state, explicit_call: bool = False):
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except gr.Error:
            raise
        except Exception as error:
            log.info(json.dumps({"event": "refused", "reason": type(error).__name__}))
            message = NOT_UPLOADED if uses_files(block_fn) else "This request does not fit the event."
            raise gr.Error(message, print_exception=False) from None


def uses_files(block_fn) -> bool:
    """Whether an event takes a file input (an image, a recording, a file)."""
    return any(isinstance(block, (gr.Image, gr.Audio, gr.File, gr.UploadButton)) for block in block_fn.inputs)


def upload_path(value):
    """A file input as an event receives it unprocessed (Gradio's FileData dict, or a path) -> its real path,
    checked whatever the request carries (events run with preprocessing off, and Gradio checks a FileData's
    path only when it has a ``meta`` key): a file of the app's examples, or one uploaded to the running app
    (Gradio's ``upload_file_set``, in its upload folder). Handlers called outside a server (tests, benches)
    accept any file in Gradio's upload folder. Anything else (a path outside, through a link or "..", a URL,
    a missing file, not a path at all) gets the same ``NOT_UPLOADED``, so no request learns which server
    files exist. Values that are not files (a webcam frame as an array) pass unchanged."""
    if isinstance(value, dict):
        value = value.get("path")
    elif value is not None and not isinstance(value, (str, os.PathLike)):
        return value
    running = LocalContext.blocks.get(None)  # the app serving this request
    try:
        path = os.fspath(value)
        real = Path(os.path.realpath(path))
        uploaded = real.is_relative_to(Path(gr.utils.get_upload_folder()).resolve()) and (
            running is None or path in running.upload_file_set or str(real) in running.upload_file_set)
        allowed = os.path.isabs(path) and (uploaded or real.is_relative_to(EXAMPLES_DIR.resolve())) and real.is_file()
    except (TypeError, ValueError, OSError):  # None, a NUL byte, a name too long for the system
        allowed = False
    if not allowed:
        raise InputError(NOT_UPLOADED)
    return str(real)


def streamed_frame(value):
    """A Live-tab webcam frame as the page streams it (a FileData whose url is a data: URL of the picture) ->
    an RGB array; any other value is taken as a file (``upload_path``)."""
    url = value.get("url") if isinstance(value, dict) else None
    if not (isinstance(url, str) and url.startswith("data:image/") and "," in url):
        return upload_path(value)
    try:
        with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1], validate=True))) as frame:
            return np.asarray(frame.convert("RGB"))
    except (ValueError, OSError, Image.DecompressionBombError):
        raise InputError("Could not read the webcam frame.") from None


def forget_served(folder: Path) -> None:
    """Delete Gradio's cached copies of the files under ``folder`` (each in the upload folder under the keyed
    hash of its content), so that what a session was shown goes with the session."""
    cache = Path(gr.utils.get_upload_folder())
    for file in (f for f in folder.rglob("*") if f.is_file()):
        try:
            shutil.rmtree(cache / gr.processing_utils.hash_file(file), ignore_errors=True)
        except OSError:  # removed meanwhile
            continue


def drop_ended_sessions(sessions: dict, end=None) -> None:
    """Remove from ``sessions`` ({session hash: what the app keeps for it}) the sessions the serving app no
    longer holds, passing each removed value to ``end``. Gradio forgets the least recently used session past
    its ``state_session_capacity`` without any callback, so what the app keeps per session must follow.
    Outside a server (tests, benches) nothing is removed."""
    running = LocalContext.blocks.get(None)
    holder = getattr(running, "state_holder", None)
    if holder is None:
        return
    for session in [s for s in list(sessions) if s not in holder]:
        value = sessions.pop(session, None)
        if end is not None and value is not None:
            end(value)


def with_paths(given: dict) -> dict:
    """``FusionService.present``'s dict with every upload (a modality whose inputs are files) as its checked
    path (``upload_path``); a refused one's ``InputError`` names its modality."""
    checked = {}
    for m, value in given.items():
        try:
            checked[m] = upload_path(value) if registry.modality(m).files else value
        except InputError as error:
            error.modality = m
            raise
    return checked


def log_request(kind: str, strategy: str, given: list[str], outcome: str, started: float) -> None:
    """One structured line per request: what kinds of input came, the outcome and the time; never content."""
    log.info(json.dumps({"event": kind, "strategy": strategy, "given": given, "outcome": outcome,
                         "ms": round((time.perf_counter() - started) * 1000, 1)}))


def shown_label(p: Prediction):
    """The prediction box's value: the top 3 with their probabilities, or "no digit" when abstaining."""
    return p.answer if p.label is None else {label: prob for label, prob in p.top(3)}


def attempt(kind: str, strategy: str, given: list[str], fn, warn=gr.Warning, advice=None):
    """Run one request's work -> (result or None, outcome), logging it; failures never escape as a trace.

    A user's mistake (a ``UserError``: an input, a manifest, a checkpoint, the hub) is shown as is through
    ``warn``, followed by ``advice(error)`` when given (what to do about it on the page); anything else is
    logged here, by its type and stack only (its message may quote what the user sent), and shown as an
    apology, so the server keeps serving whatever happens. ``warn=gr.Error`` raises instead (the API).
    """
    started = time.perf_counter()
    try:
        result, outcome, message = fn(), "ok", None
    except UserError as error:
        result, outcome, message = None, "input_error", str(error) + (advice(error) if advice else "")
    except Exception as error:
        log.error("%s failed: %s\n%s", kind, type(error).__name__, "".join(traceback.format_tb(error.__traceback__)))
        result, outcome, message = None, "error", APOLOGY
    log_request(kind, strategy, given, outcome, started)
    if message is not None:
        if warn is gr.Error:
            raise gr.Error(message, print_exception=False)  # logged above, without the content
        warn(message)
    return result, outcome


class Batcher:
    """Concurrent calls share one ``run`` over their items: a call that finds no other waiting waits ``wait_s``
    for more, then runs every item that came; each call gets its own result, or the batch's exception."""

    def __init__(self, run, wait_s: float = 0.005):
        self.run, self.wait_s = run, wait_s
        self.lock = threading.Lock()
        self.waiting: list[tuple[object, Future]] = []
        self.sizes: list[int] = []  # the last batches' sizes (for the tests and benches)

    def __call__(self, item):
        future: Future = Future()
        with self.lock:
            self.waiting.append((item, future))
            first = len(self.waiting) == 1
        if first:
            time.sleep(self.wait_s)
            with self.lock:
                batch, self.waiting = self.waiting, []
                self.sizes = [*self.sizes[-99:], len(batch)]
            try:
                results = self.run([i for i, _ in batch])
            except BaseException as error:  # every call of the batch raises it (and logs it as its own)
                for _, waiting in batch:
                    waiting.set_exception(error)
            else:
                for (_, waiting), result in zip(batch, results):
                    waiting.set_result(result)
        return future.result()


class FusionService:
    """Holds the loaded models (encoders shared) and answers the page's events."""

    def __init__(self, model_paths: dict[str, str | Path], device=None):
        """model_paths: {name: model folder or hub repo id}; the first is the default."""
        if not model_paths:
            raise FileNotFoundError(f"No model found; expected folders like {DEFAULT_MODEL}.")
        self.models: dict[str, LoadedModel] = {name: load_model(path, device) for name, path in model_paths.items()}
        self.default = next(iter(self.models))
        # Browser session -> its live preview. Kept here, not in a gr.State: frames handled at once must share
        # one, and Gradio makes a session's state on first use, once per frame that arrives before it exists.
        self.live_sessions: dict[str, LiveSession] = {}
        # The page's inputs: the default model's modalities that have a widget, in the model's order.
        self.modalities = tuple(m for m in self.models[self.default].fusion.modalities if registry.modality(m).widget)
        # Every file the server writes for a session (Teach projects, reports) lies under one folder, removed
        # by ``close`` when the server stops, whatever happened in the sessions.
        self.scratch = tempfile.TemporaryDirectory(prefix="fusion-lens-")
        self.reports = Path(self.scratch.name) / "reports"
        self.projects = Path(self.scratch.name) / "teach"
        self.reports.mkdir()
        self.projects.mkdir()
        self.stopping = threading.Event()  # set by ``close``: a Teach training or restore in flight stops early
        self.batcher: Batcher | None = None  # ``batch``: concurrent /predict calls share their encoder passes
        # Before any GPU call forks this process (ZeroGPU): what a Teach project finds again after pickling.
        share(self.models[self.default].encoders)
        share(self.stopping)

    def close(self) -> None:
        """Stop what the sessions have in flight and remove their files (and Gradio's copies of them)."""
        self.stopping.set()
        forget_served(Path(self.scratch.name))
        self.scratch.cleanup()

    @property
    def device(self):
        return self.models[self.default].device

    @staticmethod
    def present(values: dict, uses: dict | None = None) -> dict:
        """{modality: value} of the inputs that are present and ticked ("use" boxes); uploads still unread."""
        return {m: v for m, v in present_inputs(values).items() if (uses or {}).get(m, True)}

    def request(self, args: tuple) -> tuple[dict, dict, tuple]:
        """A page event's positional inputs: per modality of ``self.modalities`` its value, then its "use"
        box, then its corruption severity, then any extras -> (present inputs, {modality: severity}, extras).
        """
        n = len(self.modalities)
        values, uses, severities = (dict(zip(self.modalities, args[i * n:(i + 1) * n])) for i in range(3))
        return self.present(values, uses), severities, tuple(args[3 * n:])

    def model_for(self, strategy: str, project=None) -> LoadedModel:
        """A served strategy's model (unknown names: the default), or ``TAUGHT``: the session's taught one."""
        if strategy != TAUGHT:
            return self.models.get(strategy) or self.models[self.default]
        if project is None or project.model is None:
            raise InputError("No taught model in this session yet: train one in the Teach tab.")
        shipped = self.models[self.default]
        return LoadedModel(project.model, shipped.encoders, shipped.device, project.folder)

    def run(self, strategy: str, given: dict, corruption: dict | None = None, webcam_live: bool = False,
            project=None) -> Prediction:
        """``given`` from ``present`` -> the prediction of ``strategy`` (``project``: the session's Teach tab)."""
        model = self.model_for(strategy, project)
        if not given:
            raise InputError(WEBCAM_NOT_CAPTURED if webcam_live else
                             "Nothing to fuse yet: give at least one input (take a picture, record a number or "
                             "type some text) and keep its “use” box ticked.")
        p = predict(model, **with_paths(given), corruption=corruption)
        if webcam_live and "image" not in given:
            p.notes.insert(0, WEBCAM_NOT_CAPTURED + " Only the other inputs were used.")
        return p

    def fuse(self, strategy: str, *args, quiet_when_empty: bool = False, raise_failure: bool = False):
        """The Fuse button, Enter and the sliders: (strategy, values, uses, severities, webcam_live) as in
        ``request`` -> (top-3, notes, counted, maps, words, what-if).

        Extras: ``webcam_live``, the page saw a running webcam without a captured photo; the session's Teach
        project (for the ``TAUGHT`` strategy).
        ``quiet_when_empty``: an event that only re-runs a fusion (a slider, a "use" box) clears the result
        without a warning when nothing is left to fuse.
        ``raise_failure``: a failure raises ``gr.Error`` instead of warning and clearing (an example click,
        whose result Gradio caches unless the event fails).
        """
        given, severities, extras = self.request(args)
        webcam_live = bool(extras and extras[0])
        project = extras[1] if len(extras) > 1 else None
        if quiet_when_empty and not given:
            return CLEARED
        def advice(error) -> str:  # the box to clear, when one input failed and others could be fused
            failed = getattr(error, "modality", None)
            if raise_failure or failed not in given or len(given) < 2:
                return ""
            clear = "remove it (the × on its box) or untick" if registry.modality(failed).files else "untick"
            return f" To fuse the rest, {clear} “use {failed}”."

        p, _ = attempt("fuse", strategy, sorted(given),
                       lambda: self.run(strategy, given, severities, webcam_live, project),
                       warn=gr.Error if raise_failure else gr.Warning, advice=advice)
        if p is None:
            return CLEARED
        model = f"{TAUGHT} ({p.strategy} fusion)" if strategy == TAUGHT else f"{p.strategy} fusion"
        timing = f"{p.timings_ms['total']:.0f} ms on {self.device.type.upper()}, {model}."
        notes = "\n".join(f"- {note}" for note in p.notes)
        return (shown_label(p), f"{headline(p)} {timing}\n\n{notes}".strip(),
                counted_html(p, self.modalities), maps_html(p), words_html(p),
                what_if_html(p) if len(p.modalities) > 1 else "")

    def live(self, request: gr.Request, strategy: str, *args):
        """The live preview, on each webcam frame: (the browser session, strategy, a value per modality in
        ``self.modalities`` order (the frame as the image), the session's Teach project) -> (top-3, a line
        of notes, counted). Only what changed since the session's last frame is encoded; a problem is said
        in the notes line (a warning 4 times a second would bury the page)."""
        n = len(self.modalities)
        values, project = dict(zip(self.modalities, args[:n])), args[n]
        drop_ended_sessions(self.live_sessions)
        session = self.live_sessions.setdefault(request.session_hash, LiveSession())  # atomic: one per session
        problems = []
        given = self.present(values)
        p, _ = attempt("live", strategy, sorted(given), lambda: session.update(
            self.model_for(strategy, project), **with_paths({**given, "image": streamed_frame(given["image"])}
                                                            if "image" in given else given)), warn=problems.append)
        if p is None:
            return None, problems[0], ""
        encoded = ", ".join(f"{m} {p.timings_ms[m]:.0f} ms" for m in p.modalities if m in p.timings_ms)
        timing = (f"{p.timings_ms['total']:.0f} ms: encoded {encoded or 'nothing new'}, fused "
                  f"{p.timings_ms['fusion']:.0f} ms.")
        notes = " ".join(p.notes)
        return (shown_label(p), f"{headline(p)} {timing} {notes}".strip(),
                counted_html(p, self.modalities))

    def end_live(self, request: gr.Request) -> None:
        """``demo.unload``: the closed tab's live tokens go."""
        self.live_sessions.pop(request.session_hash, None)

    def report(self, strategy: str, *args):
        """The "Download report" button: the same fusion as Fuse (inputs as in ``request``), written as a zip
        (JSON, maps, HTML), shown in the (until then hidden) file box."""
        given, severities, extras = self.request(args)
        project = extras[-1] if extras else None
        p, _ = attempt("report", strategy, sorted(given), lambda: self.run(strategy, given, severities, False,
                                                                           project))
        if p is None:
            return gr.update(value=None, visible=False)
        for old in self.reports.iterdir():  # the page has fetched a report within minutes
            if time.time() - old.stat().st_mtime > REPORTS_KEPT_S:
                forget_served(old)
                shutil.rmtree(old, ignore_errors=True)
        return gr.update(value=str(zip_report(p, tempfile.mkdtemp(dir=self.reports))), visible=True)

    def fuse_example(self, *values):
        """Clicking an example (a value per modality): the default strategy, every input used, none corrupted;
        a failure is raised, so that Gradio's example cache never keeps it and the next click tries again."""
        n = len(self.modalities)
        return self.fuse(self.default, *values, *[True] * n, *[0.0] * n, raise_failure=True)

    def examples(self, folder: Path) -> tuple[list[list], list[str]]:
        """Rows of ``examples.csv`` (the manifest format) as a value per modality, and a label for each."""
        manifest = folder / "examples.csv"
        if not manifest.is_file():
            return [], []
        rows = read_manifest(manifest)
        labels = []
        for row in rows:
            given = [m for m in self.modalities if row.get(m)]
            every = "all " + ("three" if len(given) == 3 else str(len(given)))
            kind = every if len(given) == len(self.modalities) else " + ".join(given) + " only"
            labels.append(f"{row['label']} · {kind}" if "conflict" not in (row["image"] or "")
                          else f"conflict · {row['image'].split('_')[-1][0]} shown, {row['label']} said and typed")
        return [[row.get(m) for m in self.modalities] for row in rows], labels

    def about_markdown(self) -> str:
        served = ", ".join(f"`{name}`" for name in self.models)
        return (f"**Serving** the {served} models (default `{self.default}`) on {self.device.type.upper()}.\n\n"
                f"{STRATEGY_DIAGRAM}")

    @staticmethod
    def model_card() -> str:
        card = MODELS_DIR / "README.md"
        return card.read_text() if card.is_file() else "No model card found next to the models."

    def report_plots(self) -> list[tuple[str, str]]:
        """The default model's evaluation plots from the model card's reports folder, with captions."""
        return [(str(p), p.stem) for p in sorted((MODELS_DIR / "reports" / self.default).glob("*.png"))]

    def compare(self, *args):
        """Every served strategy on the same inputs (as in ``request``) -> one HTML table."""
        given, severities, _ = self.request(args)
        predictions, _ = attempt("compare", "all", sorted(given), lambda: {
            s: self.run(s, given, severities) for s in self.models})
        return compare_html(predictions) if predictions else ""

    def predict_digit(self, image=None, audio=None, text=None) -> dict:
        """Say which digit a picture, a recording and/or a text show, and how much each of them counted.

        Args:
            image: a picture file (PNG, JPEG, WebP, BMP, GIF or TIFF) of a handwritten or printed digit.
            audio: a recording (WAV, FLAC, OGG/Opus, MP3, M4A, WebM) of at most 30 s saying a number.
            text: a text naming a number, e.g. "it's a seven".

        Returns:
            The prediction as JSON: the label and its probabilities, each input's weight and Shapley
            contribution, what each input says alone, token weights, every subset's prediction and notes.
        """
        given = self.present({"image": image, "audio": audio, "text": text})
        p, _ = attempt("api", self.default, sorted(given), lambda: self.predict_default(given), warn=gr.Error)
        return p.to_dict()

    def predict_default(self, given: dict) -> Prediction:
        """``given`` from ``present`` -> the default model's prediction; with batching on, the encoding and
        fusion are shared with the calls running at the same time (``Batcher``), the decoding is the call's
        own, so a bad input is its own message."""
        model = self.models[self.default]
        if self.batcher is None:
            return predict(model, **with_paths(given))
        started = time.perf_counter()
        items, notes = decode_inputs(model.encoders, decode_options=model.decode_options, **with_paths(given))
        decoded = time.perf_counter()
        p = self.batcher(items)
        p.notes = notes + p.notes
        p.timings_ms.update(decode=round((decoded - started) * 1000, 2),
                            total=round((time.perf_counter() - started) * 1000, 2))
        return p

    def batch(self, enabled: bool = True, wait_s: float = 0.005) -> None:
        """Batch concurrent ``/predict`` calls (``predict_digit``) through one pass of each encoder, or not."""
        model = self.models[self.default]
        self.batcher = Batcher(lambda batch: predict_items(model, batch), wait_s) if enabled else None
