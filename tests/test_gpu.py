"""ZeroGPU on a CPU: a stand-in ``spaces`` module (in ``sys.modules``) records which handlers the page wraps in
``spaces.GPU`` and for how long, and runs each call as ZeroGPU does, its arguments and result pickled across
(a forked process runs it there), with ``SPACES_ZERO_GPU`` set."""

import base64
import functools
import io
import pickle
import sys
import types
from types import SimpleNamespace

import gradio as gr
import pytest
from corpus import digit, uploaded

from fusion import gpu
from fusion.serving import NOT_UPLOADED, TAUGHT, FusionService, shipped_models
from fusion.teach_page import TeachPage

# Every handler that runs an encoder (or trains), and the part of it spaces.GPU wraps.
ENCODING = {"fuse": "fuse", "report": "report", "compare": "compare", "live": "live", "fuse_example": "fuse_example",
            "predict_digit": "predict_digit",
            "add_example": "encode_example", "add_files": "encode_files", "train": "fit", "upload": "restore"}
# The page's other handlers: none of them touches an encoder.
OTHERS = {"add_class", "remove_class", "remove_example", "download", "push", "end_session", "end_live", "<lambda>",
          "show_examples",
          "apply", "load_example_input", "load_example_output"}  # Gradio's: gr.render, the examples (fuse_example)


class FakeSpaces(types.ModuleType):
    """``spaces`` as ZeroGPU has it, minus the GPU: ``GPU(duration=...)`` records the function and its duration,
    and each call the duration asked for; arguments and results cross a pickle boundary."""

    def __init__(self):
        super().__init__("spaces")
        self.wrapped: dict[str, list] = {}
        self.calls: list[tuple[str, int]] = []

    def GPU(self, task=None, *, duration=None, size=None):  # noqa: N802 (spaces' own name)
        def decorate(fn):
            name = getattr(fn, "__name__", None) or fn.func.__name__  # a functools.partial
            self.wrapped.setdefault(name, []).append(duration)

            @functools.wraps(fn)
            def in_another_process(*args, **kwargs):
                self.calls.append((name, duration(*args, **kwargs) if callable(duration) else duration))
                args, kwargs = pickle.loads(pickle.dumps((args, kwargs)))
                return pickle.loads(pickle.dumps(fn(*args, **kwargs)))

            return in_another_process

        return decorate(task) if callable(task) else decorate


@pytest.fixture(scope="module")
def zero_gpu():
    """The page built on "ZeroGPU" with the shipped models, /predict batched -> (demo, fake spaces module)."""
    from app import build_demo

    fake, patch = FakeSpaces(), pytest.MonkeyPatch()
    patch.setitem(sys.modules, "spaces", fake)
    patch.setenv("SPACES_ZERO_GPU", "true")
    try:
        yield build_demo(FusionService(shipped_models(), device="cpu"), batch=True), fake
    finally:
        patch.undo()


def name_of(fn) -> str:
    while isinstance(fn, functools.partial) or hasattr(fn, "__wrapped__"):
        fn = fn.func if isinstance(fn, functools.partial) else fn.__wrapped__
    return fn.__name__


def handlers(demo) -> dict[str, list]:
    found: dict[str, list] = {}
    for block_fn in demo.fns.values():
        if block_fn.fn is not None:
            found.setdefault(name_of(block_fn.fn), []).append(block_fn)
    return found


def test_every_handler_that_runs_an_encoder_holds_a_gpu_for_a_fitted_time(zero_gpu):
    demo, fake = zero_gpu
    found = handlers(demo)
    assert set(found) - set(ENCODING) <= OTHERS, "a new handler: say whether it runs an encoder"
    assert {"fuse", "report", "compare", "live", "predict_digit", "add_example", "add_files", "train",
            "upload"} <= set(found)
    assert fake.wrapped["fuse_example"] == [gpu.FUSE_S]  # gr.Examples' fn, called by Gradio's own handlers
    for name, block_fns in found.items():
        if name not in ENCODING:
            continue
        for block_fn in block_fns:
            # The Teach handlers keep the session bookkeeping and hand their encoding to a wrapped method.
            owner = getattr(block_fn.fn, "__self__", None)
            wrapped = getattr(owner, ENCODING[name]) if isinstance(owner, TeachPage) else block_fn.fn
            duration = wrapped.gpu_duration
            assert ENCODING[name] in fake.wrapped and duration in fake.wrapped[ENCODING[name]], name
            if block_fn.time_limit is not None and name != "live":  # a stream's limit is the whole stream's
                assert block_fn.time_limit <= gpu.longest(duration), (name, block_fn.time_limit, duration)
    durations = {name: set(map(str, ds)) for name, ds in fake.wrapped.items()}
    assert durations["live"] == {str(gpu.FRAME_S)} and gpu.FRAME_S <= 5  # seconds for a frame
    assert durations["fuse"] == {str(gpu.FUSE_S)} and gpu.COMPARE_S > gpu.FUSE_S
    assert fake.wrapped["fit"] == [gpu.train_duration] and fake.wrapped["encode_files"] == [gpu.files_duration]
    assert fake.wrapped["restore"] == [gpu.restore_duration]
    assert fake.wrapped["predict_digit"] == [gpu.FUSE_S]
    # Fitted: a frame asks for seconds, a training for more the more examples it has, never over the cap.
    few, many = SimpleNamespace(examples=[0] * 4), SimpleNamespace(examples=[0] * 400)
    assert gpu.FRAME_S < gpu.train_duration(few, "attention", 0) < gpu.train_duration(many, "attention", 0)
    assert gpu.train_duration(many, "attention", 0) <= gpu.MAX_S == gpu.train_duration.most
    assert gpu.files_duration(None, "a", ["f"] * 3, 0) < gpu.files_duration(None, "a", ["f"] * 40, 0) <= gpu.MAX_S


def fuse_handler(demo):
    return next(f.fn for f in handlers(demo)["fuse"] if not isinstance(f.fn.__wrapped__, functools.partial))


def test_the_teach_tab_works_across_the_process_boundary(zero_gpu, tmp_path):
    """Projects cross to the GPU process and back pickled (without their encoders); the session keeps the one
    that came back; a training's own deadline is within the GPU time it asked for."""
    demo, fake = zero_gpu
    page = next(f.fn.__self__ for f in handlers(demo)["add_example"])
    tab = SimpleNamespace(session_hash="zero")
    project, *_ = page.add_class(None, "yes", 0, tab)
    project, *_ = page.add_class(project, "no", 1, tab)
    version = 2
    for label, text in [("yes", "yes indeed"), ("yes", "sure, yes"), ("no", "no way"), ("no", "certainly not")]:
        project, version, *cleared = page.add_example(tab, project, label, version, None, None, text)
        assert cleared == [None, None, None] and page.sessions["zero"] is project
    assert len(project.examples) == 4 and project.encoders is page.service.models["attention"].encoders
    fake.calls.clear()
    project, html, plot, choices, version = page.train(project, "attention", version)
    assert fake.calls == [("fit", gpu.train_duration(project, "attention", version))]
    assert project.model is not None and "cross-validation" in html and choices["value"] == TAUGHT
    label, *_ = fuse_handler(demo)(TAUGHT, None, None, "yes indeed", True, True, True, 0.0, 0.0, 0.0, False, project)
    assert max(label, key=label.get) == "yes"

    # A project zip restored in the GPU process comes back as this session's project.
    archive = page.download(project)["value"]
    restored, *_, version = page.upload(None, {"path": uploaded(archive)}, version, tab)
    assert restored.classes == ["yes", "no"] and len(restored.examples) == 4 and page.sessions["zero"] is restored
    assert restored.model is not None and restored.folder != project.folder
    # A file the page never received is refused before the call, with the usual sentence.
    fake.calls.clear()
    (tmp_path / "secret.png").write_bytes(b"not for the page")
    with pytest.warns(UserWarning) as shown:  # gr.Warning, outside a running app
        project, files, _ = page.add_files(restored, "yes", [{"path": str(tmp_path / "secret.png")}], version, tab)
    assert fake.calls == [("encode_files", gpu.files_duration(restored, "yes", [1], version))]
    assert any(NOT_UPLOADED in str(w.message) for w in shown) and len(project.examples) == 4 and files is None


def test_fuse_live_and_predict_run_through_the_gpu_wrapper(zero_gpu):
    demo, fake = zero_gpu
    fake.calls.clear()
    label, info, *_ = fuse_handler(demo)("attention", None, None, "it's a seven", True, True, True, 0.0, 0.0, 0.0,
                                         False, None)
    assert max(label, key=label.get) == "7" and ("fuse", gpu.FUSE_S) in fake.calls
    buffer = io.BytesIO()
    digit().save(buffer, "PNG")
    frame = {"url": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode(), "path": None}
    live = handlers(demo)["live"][0].fn
    shown, line, _ = live(SimpleNamespace(session_hash="zero"), "attention", frame, None, "seven", None)
    assert shown and "ms" in line and ("live", gpu.FRAME_S) in fake.calls
    api = handlers(demo)["predict_digit"][0].fn  # batched (the fixture asks for it), inside its GPU call
    assert api(None, None, "it's a seven")["label"] == "7" and ("predict_digit", gpu.FUSE_S) in fake.calls
    with pytest.raises(gr.Error, match=NOT_UPLOADED.split(":")[0]):
        api({"path": "/etc/passwd"}, None, None)
