"""One corpus of good and bad files and texts through every surface: ``fusion.predict``, the command line
and the running app's ``/predict`` (gradio_client, against ``python app.py``). Each case must give the same
label, or the same message, on all three; no message may show a server path or an exception's name; the
server writes one log line per request, without the user's text or file names."""

import json
import time
from pathlib import Path

import pytest
from corpus import EXTRA_FILES, FILES, INTERNALS, TEXTS

import fusion
from fusion.__main__ import main as cli

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, dict]:
    """case id -> {modality: file path or text}: at least 40 cases."""
    folder = tmp_path_factory.mktemp("corpus")
    cases = {}
    for case, (make, modality, _) in {**FILES, **EXTRA_FILES}.items():
        path = folder / modality / case.split(" ")[0]  # "paper.pdf (as audio)" -> audio/paper.pdf
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(make())
        cases[case] = {modality: str(path)}
    for case, text in TEXTS.items():
        cases[f"text: {case}"] = {"text": text}
    cases["all three"] = {"image": str(EXAMPLES / "image_7.png"), "audio": str(EXAMPLES / "speech_7.wav"),
                          "text": "it's a seven"}
    cases["conflict"] = {"image": str(EXAMPLES / "conflict_image_3.png"),
                         "audio": str(EXAMPLES / "conflict_speech_8.wav"), "text": "it's eight"}
    cases["bad image, good text"] = {"image": cases["fake.png"]["image"], "text": "seven"}
    cases["silent audio, good text"] = {"audio": cases["silent.wav"]["audio"], "text": "two"}
    assert len(cases) >= 40
    return cases


def via_python(model, inputs: dict) -> str:
    try:
        return f"label {fusion.predict(model, **inputs).label}"
    except fusion.InputError as error:
        return f"message {error}"


def via_cli(capsys, inputs: dict) -> str:
    args = ["predict", "--json"] + [a for m, v in inputs.items() for a in (f"--{m}", v)]
    code = cli(args)
    out, err = capsys.readouterr()
    if code == 0:
        return f"label {json.loads(out.strip().splitlines()[-1])['label']}"
    assert code == 2 and not out.strip() and err.startswith("error: "), (code, out, err)
    return f"message {err.strip().splitlines()[-1].removeprefix('error: ')}"


def via_raw_http(url: str, text: str) -> str:
    """/predict over Gradio's plain HTTP API, for a text gradio_client cannot encode (lone surrogates)."""
    import httpx

    body = json.dumps({"data": [None, None, text]})  # ASCII-escaped, as any JSON client may send it
    event = httpx.post(f"{url}gradio_api/call/predict", content=body,
                       headers={"content-type": "application/json"}).json()["event_id"]
    stream = httpx.get(f"{url}gradio_api/call/predict/{event}", timeout=60).text
    kind, data = [line.split(": ", 1)[1] for line in stream.splitlines() if line.startswith(("event:", "data:"))][-2:]
    if kind == "complete":
        return f"label {json.loads(data)[0]['label']}"
    return f"message {json.loads(data)}"


def via_app(client, inputs: dict) -> str:
    from gradio_client import handle_file

    if "text" in inputs and inputs["text"] != inputs["text"].encode("utf-8", "replace").decode():
        return via_raw_http(client.src, inputs["text"])
    args = [handle_file(inputs[m]) if m in inputs and m != "text" else inputs.get(m) for m in ("image", "audio")]
    try:
        return f"label {client.predict(*args, inputs.get('text'), api_name='/predict')['label']}"
    except Exception as error:  # gradio_client raises AppError with the server's message
        return f"message {error}"


def test_every_surface_gives_the_same_answer(app_server, corpus, capsys):
    from gradio_client import Client

    model = fusion.load_model(device="cpu")
    client = Client(app_server.url, verbose=False)
    logged_before = sum('"event": "api"' in line for line in app_server.log)
    answers = {}
    for case, inputs in corpus.items():
        answers[case] = (via_python(model, inputs), via_cli(capsys, inputs), via_app(client, inputs))
    differing = {case: a for case, a in answers.items() if len(set(a)) != 1}
    assert not differing, json.dumps(differing, indent=1, ensure_ascii=False)
    for case, (answer, _, _) in answers.items():
        assert not INTERNALS.search(answer) and "/tmp" not in answer and "gradio" not in answer.lower(), case
    assert sum(a[0].startswith("message") for a in answers.values()) >= 15  # the corpus is mostly trouble

    time.sleep(0.5)  # the server's log reaches the pipe reader a moment after the answer
    lines = [json.loads(line.split(" fusion.serving ", 1)[1]) for line in app_server.log
             if '"event": "api"' in line][logged_before:]
    assert len(lines) == len(corpus)
    assert {line["outcome"] for line in lines} == {"ok", "input_error"}
    text = "\n".join(app_server.log)
    for secret in ("it's a seven", "blah blah", "hour.flac", "fake.png"):
        assert secret not in text


def test_an_hour_of_audio_is_refused_before_decoding(app_server, corpus):
    from gradio_client import Client, handle_file

    client = Client(app_server.url, verbose=False)
    before, started = app_server.rss_mb(), time.perf_counter()
    with pytest.raises(Exception, match="3600.0 s long"):
        client.predict(None, handle_file(corpus["hour.flac"]["audio"]), None, api_name="/predict")
    assert time.perf_counter() - started < 5
    assert app_server.rss_mb() - before < 200
    assert client.predict(None, None, "two", api_name="/predict")["label"] == "2"  # still serving
