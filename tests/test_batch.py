"""The batched ``/predict`` (a GPU host's, ``--batch`` anywhere) on a CPU: the parity corpus gives the same label or
the same message through it as through the single path, one call at a time and many at once; a bad input is
that call's own ``gr.Error``; the MCP tool keeps its description; the default batches only on a GPU."""

import threading
from concurrent.futures import ThreadPoolExecutor

import gradio as gr
import pytest
from corpus import EXTRA_FILES, FILES, TEXTS, uploaded

from fusion.serving import Batcher, FusionService, shipped_models


@pytest.fixture(scope="module")
def service():
    service = FusionService({"attention": shipped_models()["attention"]}, device="cpu")
    yield service
    service.close()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, tuple]:
    """case -> (image, audio, text) as /predict takes them (files uploaded to the page)."""
    folder = tmp_path_factory.mktemp("batch-corpus")
    cases = {}
    for case, (make, modality, _) in {**FILES, **EXTRA_FILES}.items():
        path = folder / f"{len(cases)}-{case.split(' ')[0]}"
        path.write_bytes(make())
        value = {"path": uploaded(path)}
        cases[case] = tuple(value if m == modality else None for m in ("image", "audio", "text"))
    for case, text in TEXTS.items():
        cases[f"text: {case}"] = (None, None, text)
    cases["picture and text"] = (cases["fake.png"][0], None, "seven") if "fake.png" in cases else (None, None, "7")
    assert len(cases) >= 30
    return cases


def answer(service, args) -> str:
    try:
        return f"label {service.predict_digit(*args)['label']}"
    except gr.Error as error:
        return f"message {error.message}"


def test_the_batched_path_answers_as_the_single_one(service, corpus):
    service.batch(False)
    single = {case: answer(service, args) for case, args in corpus.items()}
    assert sum(a.startswith("message") for a in single.values()) >= 10  # the corpus is mostly trouble
    service.batch(True, wait_s=0.05)
    try:
        one_by_one = {case: answer(service, args) for case, args in corpus.items()}
        with ThreadPoolExecutor(8) as pool:  # at once: calls share encoder passes
            at_once = dict(zip(corpus, pool.map(lambda args: answer(service, args), corpus.values())))
        sizes = service.batcher.sizes
    finally:
        service.batch(False)
    assert one_by_one == single
    assert at_once == single
    assert max(sizes) > 1  # really batched


def test_a_batch_that_fails_fails_each_of_its_calls_and_the_others_are_served():
    calls, release = [], threading.Event()

    def run(items):
        calls.append(list(items))
        release.wait(5)
        if "boom" in items:
            raise RuntimeError("boom")
        return [item.upper() for item in items]

    batcher = Batcher(run, wait_s=0.2)
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(batcher, item) for item in ("a", "b", "boom")]
        release.set()
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result(10))
            except RuntimeError as error:
                outcomes.append(str(error))
    assert calls == [["a", "b", "boom"]] and outcomes == ["boom"] * 3
    assert Batcher(lambda items: [i * 2 for i in items], wait_s=0)(21) == 42


def test_batching_is_the_gpu_default_and_the_mcp_tool_keeps_its_description(service):
    from app import build_demo

    def predict_fn(demo):
        return next(f for f in demo.fns.values() if f.api_name == "predict")

    single = predict_fn(build_demo(service))
    assert service.batcher is None  # a CPU: no batching unless asked
    batched = predict_fn(build_demo(service, batch=True))
    try:
        assert service.batcher is not None and batched.concurrency_limit == 16
    finally:
        service.batch(False)
    assert single.fn.__doc__ == batched.fn.__doc__ == FusionService.predict_digit.__doc__
    assert "Args:" in batched.fn.__doc__ and not batched.batch
