"""No request can make the server open a file it was not sent: every file-taking handler, called directly,
then the README-started app through its raw HTTP API and gradio_client; and project zips that try to
reach outside themselves or ask for a huge model."""

import json
import os
import warnings
import zipfile
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import httpx
import pytest
from corpus import digit, page_events, run_event, upload, uploaded

from fusion.serving import EXAMPLES_DIR, NOT_UPLOADED, FusionService
from fusion.teach_page import TeachPage

ROOT = Path(__file__).resolve().parent.parent
PICTURE = ROOT / "tests" / "data" / "digits_sample" / "test_00030.png"  # a real picture outside any upload


@pytest.fixture(scope="module")
def service(model_dir):
    service = FusionService({"attention": model_dir}, device="cpu")
    yield service
    service.close()


@pytest.fixture(scope="module")
def forbidden(service, tmp_path_factory):
    """{case: path} of files a request names but never uploaded, each of which exists but one."""
    tmp = tmp_path_factory.mktemp("forbidden")
    link = tmp / "link.png"
    link.symlink_to(PICTURE)
    upload_folder = Path(gr.utils.get_upload_folder())
    link_in_uploads = Path(uploaded(digit_file(tmp))).parent / "inside.png"
    link_in_uploads.symlink_to(PICTURE)  # a link in the upload folder pointing out of it
    other = TeachPage(service).project(None, None)  # another session's project, with a real example
    other.add_class("a")
    example, _ = other.add_example("a", image=str(PICTURE))
    return {
        "passwd": "/etc/passwd", "environ": "/proc/self/environ", "zero": "/dev/zero",
        "repo file": str(ROOT / "README.md"), "repo picture": str(PICTURE),
        "model weights": str(ROOT / "assets" / "models" / "digits-attention" / "model.safetensors"),
        "link": str(link), "link in uploads": str(link_in_uploads),
        "file url": f"file://{PICTURE}", "http url": "http://127.0.0.1:7860/gradio_api/file=/etc/passwd",
        "dot-dot": f"{upload_folder}/../../{PICTURE}", "relative": f"../../..{PICTURE}",
        "missing": "/etc/no-such-file", "missing upload": str(upload_folder / "no-such-folder" / "x.png"),
        "another session's example": example.inputs["image"], "nul": "/etc/passwd\x00.png",
    }


def digit_file(folder: Path) -> Path:
    path = folder / "digit.png"
    digit().save(path)
    return path


def payloads(path: str):
    """The ways a request can name a file: a bare path, a FileData without and with its ``meta``."""
    return [path, {"path": path}, {"path": path, "orig_name": "x.png", "meta": {"_type": "gradio.FileData"}}]


def refusals(call) -> list[str]:
    """What ``call`` said: its warnings (gr.Warning outside a request is a Python warning) or its gr.Error."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            call()
        except gr.Error as error:
            return [error.message]
    return [str(w.message) for w in caught]


# Every handler that takes a file, with ``value`` as that file: (service, teach page, project, request, value).
HANDLERS = {
    "fuse image": lambda service, page, project, request, value: service.fuse(
        "attention", value, None, None, True, True, True, 0, 0, 0),
    "fuse audio": lambda service, page, project, request, value: service.fuse(
        "attention", None, value, None, True, True, True, 0, 0, 0),
    "report": lambda service, page, project, request, value: service.report(
        "attention", value, None, None, True, True, True, 0, 0, 0),
    "compare": lambda service, page, project, request, value: service.compare(
        None, value, None, True, True, True, 0, 0, 0),
    "predict image": lambda service, page, project, request, value: service.predict_digit(value, None, None),
    "predict audio": lambda service, page, project, request, value: service.predict_digit(None, value, None),
    "teach example": lambda service, page, project, request, value: page.add_example(
        request, project, "a", 1, value, None, None),
    "teach files": lambda service, page, project, request, value: page.add_files(project, "a", [value], 1, request),
    "teach upload": lambda service, page, project, request, value: page.upload(project, value, 1, request),
}


def test_every_handler_refuses_every_file_it_was_not_sent_alike(service, forbidden):
    page = TeachPage(service)
    project = page.project(None, None)
    project.add_class("a")
    request = SimpleNamespace(session_hash="attacker")
    before = sorted(p.name for p in project.folder.rglob("*"))
    for case, path in forbidden.items():
        for value in payloads(path):
            for name, handler in HANDLERS.items():
                said = refusals(lambda handler=handler, value=value: handler(service, page, project, request, value))
                assert said and all(s.startswith(NOT_UPLOADED) for s in said), (case, value, name, said)
            for live in ([value, None], [None, value]):  # a webcam frame, a recording
                label, notes, _ = service.live(request, "attention", *live, None, None)
                assert label is None and notes == NOT_UPLOADED, (case, value, notes)
            service.batch(True)  # /predict as a GPU serves it: the same gr.Error
            try:
                said = refusals(lambda value=value: service.predict_digit(value, None, None))
            finally:
                service.batch(False)
            assert said == [NOT_UPLOADED], (case, value, said)
    assert not project.examples and sorted(p.name for p in project.folder.rglob("*")) == before


def test_uploads_and_the_examples_are_read(service):
    for image in (uploaded(PICTURE), str(EXAMPLES_DIR / "image_7.png"), {"path": uploaded(PICTURE)}):
        assert service.predict_digit(image, None, None)["modalities"] == ["image"]


def project_zip(path: Path, manifest: str, files: dict[str, bytes] | None = None,
                config: dict | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("manifest.csv", manifest)
        for name, data in (files or {}).items():
            archive.writestr(name, data)
        if config is not None:
            archive.writestr("model/config.json", json.dumps(config))
            archive.writestr("model/model.safetensors", b"\0" * 16)
    return path


@pytest.mark.parametrize("named", [str(PICTURE), f"../../../../../../..{PICTURE}", "examples/../../outside.png"])
def test_a_project_zip_naming_server_files_is_refused_with_its_own_sentence(service, tmp_path, named):
    page = TeachPage(service)
    archive = project_zip(tmp_path / "p.zip", f"image,label\n{named},a\nexamples/b.png,b\n",
                          {"examples/b.png": PICTURE.read_bytes()})
    teach_dirs = set(service.projects.iterdir())
    with pytest.warns(UserWarning) as caught:
        project, *_ = page.upload(None, uploaded(archive), 0, SimpleNamespace(session_hash="s"))
    assert project is None
    message = str(caught[0].message)
    # The sentence quotes the zip's own cell, and no server path besides (wherever the checkout lies).
    assert "is not inside the zip" in message and f"'{named}'" in message
    assert str(tmp_path) not in message and "/tmp" not in message.replace(named, "")
    assert set(service.projects.iterdir()) == teach_dirs  # the refused upload left no folder behind


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def test_a_project_zip_asking_for_a_huge_model_is_refused_before_it_is_built(service, tmp_path):
    page = TeachPage(service)
    config = json.loads((ROOT / "assets" / "models" / "digits-attention" / "config.json").read_text())
    config |= {"labels": ["a", "b"] + [f"c{i}" for i in range(4000)], "d_model": 2048,
               "encoder_dims": {m: 8192 for m in config["encoder_dims"]}}
    config["class_prior"] = [1.0] * len(config["labels"])
    config.pop("calibration", None)
    files = {"examples/a.png": PICTURE.read_bytes(), "examples/b.png": PICTURE.read_bytes()}
    archive = project_zip(tmp_path / "huge.zip", "image,label\nexamples/a.png,a\nexamples/b.png,b\n", files, config)
    before = rss_mb()
    with pytest.warns(UserWarning) as caught:
        project, *_ = page.upload(None, uploaded(archive), 0, SimpleNamespace(session_hash="s"))
    assert rss_mb() - before < 50
    assert project is None and "weights; at most" in str(caught[0].message)


def test_a_project_zip_with_too_many_examples_is_refused_before_encoding(service, tmp_path):
    page = TeachPage(service)
    rows = "".join("examples/a.png,a\n" for _ in range(41))
    archive = project_zip(tmp_path / "many.zip", "image,label\n" + rows, {"examples/a.png": PICTURE.read_bytes()})
    with pytest.warns(UserWarning) as caught:
        project, *_ = page.upload(None, uploaded(archive), 0, SimpleNamespace(session_hash="s"))
    assert project is None and "41 examples of 'a'" in str(caught[0].message)


def test_a_session_cannot_keep_more_than_its_byte_budget(service, tmp_path, monkeypatch):
    from fusion import teach

    monkeypatch.setattr(teach, "MAX_PROJECT_BYTES", 3 * PICTURE.stat().st_size)
    project = TeachPage(service).project(None, None)
    project.add_class("a")
    with pytest.raises(teach.InputError, match="a session may keep"):
        for _ in range(10):
            project.add_example("a", image=str(PICTURE))
    assert project.disk_bytes() <= 3 * PICTURE.stat().st_size + 64 * 1024  # + the cached tokens
    project.close()


def test_a_project_goes_with_gradios_copies_of_its_files(service):
    from fusion.teach_page import delete_project

    project = TeachPage(service).project(None, None)
    project.add_class("a")
    example, _ = project.add_example("a", image=str(PICTURE))
    copy = gr.processing_utils.save_file_to_cache(example.inputs["image"], gr.utils.get_upload_folder())
    delete_project(project)
    assert not project.folder.exists() and not os.path.exists(copy)


# ---------------------------------------------------------------- the README-started app, over HTTP


def test_no_request_to_the_running_app_reads_a_file_it_was_not_sent(app_server, tmp_path):
    from gradio_client import Client

    url, events = app_server.url, page_events(app_server.url)
    # Session "victim" teaches an example from a real upload; "attacker" then names its files.
    victim = upload(url, digit_file(tmp_path))
    examples_before = set(Path("/tmp").glob("fusion-lens-*/teach/*/examples/*"))
    run_event(url, events["teach-add-class"], [None, "a", 0], "victim")
    warnings, done = run_event(url, events["teach-add-example"], [None, "a", 1, {"path": victim, "meta": {
        "_type": "gradio.FileData"}}, None, ""], "victim")
    assert done.get("success"), (warnings, done)
    taught = set(Path("/tmp").glob("fusion-lens-*/teach/*/examples/*")) - examples_before
    assert len(taught) == 1
    copies = [str(p) for p in Path(gr.utils.get_upload_folder()).glob("*/*") if p.name == next(iter(taught)).name]
    paths = ["/etc/passwd", "/proc/self/environ", "/dev/zero", str(ROOT / "README.md"), str(PICTURE),
             f"file://{PICTURE}", f"{gr.utils.get_upload_folder()}/../../etc/passwd", "/etc/no-such-file",
             *map(str, taught), *copies]
    client = Client(url, verbose=False)
    run_event(url, events["teach-add-class"], [None, "a", 0], "attacker")
    for path in paths:
        for value in payloads(path):
            body = json.dumps({"data": [value, None, None]})
            event = httpx.post(f"{url}gradio_api/call/predict", content=body,
                               headers={"content-type": "application/json"}).json()["event_id"]
            stream = httpx.get(f"{url}gradio_api/call/predict/{event}", timeout=60).text
            assert f'"{NOT_UPLOADED}"' in stream and "passwd" not in stream.replace(path, ""), (path, stream)
            if "meta" not in value:  # gradio_client uploads a FileData with meta from the client's own disk
                with pytest.raises(Exception, match="not uploaded to this page"):
                    client.predict(value, None, None, api_name="/predict")
            fuse = [None, value, None, "", True, True, True, 0, 0, 0, False, None]
            warnings, _ = run_event(url, events["fuse-button"], fuse, "attacker")
            assert warnings and warnings[0].startswith(NOT_UPLOADED), (path, warnings)
            warnings, _ = run_event(url, events["teach-add-example"], [None, "a", 1, value, None, ""], "attacker")
            assert warnings == [NOT_UPLOADED], (path, warnings)
    # The victim's one example, nothing copied for the attacker.
    assert set(Path("/tmp").glob("fusion-lens-*/teach/*/examples/*")) - examples_before == taught
    assert client.predict({"path": victim}, None, None, api_name="/predict")["modalities"] == ["image"]
    logged = "\n".join(app_server.log)
    assert "passwd" not in logged and "environ" not in logged and "Traceback" not in logged  # nothing of the requests


def test_a_disconnected_clients_queued_work_is_dropped(app_server, tmp_path):
    """A visitor who queues many slow Fuse events and closes the tab (its event stream) leaves no queued work:
    Gradio drops the session's waiting events, so they never run and the next visitor is not behind them."""
    import time

    import numpy as np
    from corpus import wav

    url, events = app_server.url, page_events(app_server.url)
    recording = tmp_path / "long.wav"  # 25 s: each Fuse takes a while on a CPU
    recording.write_bytes(wav(np.random.default_rng(0).normal(0, 0.1, 16_000 * 25)))
    audio = {"path": upload(url, recording), "meta": {"_type": "gradio.FileData"}}
    fuse = [None, None, audio, "", True, True, True, 0, 0, 0, False, None]
    fused = lambda: sum('"event": "fuse"' in line for line in app_server.log)  # noqa: E731
    before, queued = fused(), 16
    for _ in range(queued):
        join = httpx.post(f"{url}gradio_api/queue/join", json={"data": fuse, "fn_index": events["fuse-button"],
                                                               "session_hash": "gone", "event_data": None})
        assert join.status_code == 200, join.text
    with httpx.stream("GET", f"{url}gradio_api/queue/data", params={"session_hash": "gone"}, timeout=60) as stream:
        for line in stream.iter_lines():
            if '"process_starts"' in line:
                break  # the tab closes while its first events run
    deadline = time.monotonic() + 60
    while httpx.get(f"{url}gradio_api/queue/status").json()["queue_size"] > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert httpx.get(f"{url}gradio_api/queue/status").json()["queue_size"] == 0
    warnings, done = run_event(url, events["fuse-button"], [None, None, None, "seven", True, True, True, 0, 0, 0,
                                                            False, None], "next")
    assert done.get("success"), (warnings, done)
    time.sleep(1)  # the log lines of the events that were running
    ran = fused() - before - 1
    assert 1 <= ran <= 4, f"{ran} of the {queued} queued events ran after the client left"


def test_the_server_stops_mid_training_and_its_files_go(tmp_path):
    """A server stopped as a Space stops it (SIGTERM) while a Teach training runs exits within seconds and
    leaves no session folder behind."""
    import time

    from conftest import RunningApp

    before = set(Path("/tmp").glob("fusion-lens-*"))
    app = RunningApp("--port", "7861")
    try:
        events = page_events(app.url)
        for name in ("a", "b"):
            run_event(app.url, events["teach-add-class"], [None, name, 0], "s")
            for i in range(8):
                run_event(app.url, events["teach-add-example"], [None, name, 1, None, None, f"{name} {i}"], "s")
        assert set(Path("/tmp").glob("fusion-lens-*")) - before
        httpx.post(f"{app.url}gradio_api/queue/join", json={"data": [None, "cross", 1], "session_hash": "s",
                                                            "fn_index": events["teach-train"]}, timeout=30)
        time.sleep(3)  # the training is under way (it takes longer alone)
    finally:
        app.process.terminate()
        stopped = time.perf_counter()
        assert app.process.wait(timeout=30) == 0
    assert time.perf_counter() - stopped < 15
    assert set(Path("/tmp").glob("fusion-lens-*")) - before == set()


def test_a_streamed_webcam_frame_is_read_from_its_data_url_only(service):
    import base64

    from corpus import encoded

    frame = {"url": "data:image/png;base64," + base64.b64encode(encoded(digit())).decode(), "path": None}
    label, notes, _ = service.live(SimpleNamespace(session_hash="frames"), "attention", frame, None, "seven", None)
    assert label is not None and "encoded image" in notes
    damaged = {"url": "data:image/png;base64,AAAA", "path": None}
    label, notes, _ = service.live(SimpleNamespace(session_hash="frames"), "attention", damaged, None, None, None)
    assert label is None and notes == "Could not read the webcam frame."
