"""The web app: its handlers, then ``python app.py`` as the README starts it, driven through gradio_client
and a real browser (Debian's Chromium with a fake camera and microphone)."""

import html
import json
import os
import re
import shutil
import socket
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile
from corpus import capture_and_record, open_app, shape_picture, start_webcam, write_y4m

import fusion
from fusion.serving import FusionService, shipped_models
from fusion.teach import NONE
from fusion.views import headline

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "assets" / "examples"
SCREENSHOTS = {"desktop": ROOT / "assets" / "screenshot.png", "phone": ROOT / "assets" / "screenshot-phone.png",
               "teach": ROOT / "assets" / "screenshot-teach.png"}
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
DESKTOP, PHONE = {"width": 1400, "height": 900}, {"width": 390, "height": 844}
PANELS = ("#counted", "#maps", "#words", "#what-if", "#info")


@pytest.fixture(scope="module")
def service():
    return FusionService(shipped_models(), device="cpu")


def fuse(service, image=None, audio=None, text=None, strategy=None, corrupt=(0.0, 0.0, 0.0)):
    return service.fuse(strategy or service.default, image, audio, text, True, True, True, *corrupt)


EXAMPLE_7 = (str(EXAMPLES / "image_7.png"), str(EXAMPLES / "speech_7.wav"), "it's a seven")


def test_all_shipped_strategies_are_served(service):
    assert set(service.models) == {"attention", "cross", "late", "concat"}


@pytest.mark.parametrize("given", ["i", "a", "t", "ia", "it", "at", "iat"])
def test_every_subset_of_modalities(service, given):
    image, audio, text = EXAMPLE_7
    label, info, counted, maps, words, what_if = fuse(
        service, image if "i" in given else None, audio if "a" in given else None, text if "t" in given else None)
    assert max(label, key=label.get) == "7" and "ms on CPU" in info
    assert counted.count("not given") == 3 - len(given)
    assert ("Your picture" in maps) == ("i" in given) and ("Moments in the audio" in maps) == ("a" in given)
    assert ("seven" in words) == ("t" in given)
    assert what_if.count("<tr>") == (2 ** len(given) - 1 + 1 if len(given) > 1 else 0)  # + the header row


@pytest.mark.parametrize("strategy", ["attention", "cross", "late", "concat"])
def test_each_strategy_answers_and_shows_the_same_words(service, strategy):
    label, _, counted, _, words, _ = fuse(service, *EXAMPLE_7, strategy=strategy)
    assert max(label, key=label.get) == "7"
    shown = html.unescape(re.sub(r"<[^>]+>", "", words.split("</strong></p>")[1]))
    assert shown == "it's a seven"  # the text's own words, whatever the tokenizer split
    if strategy == "concat":
        assert "Concatenation has no weights" in counted and "no weights" in words


def test_a_page_file_payload_is_read_from_its_path(service):
    """The page's events run unprocessed: uploads arrive as Gradio's FileData dicts."""
    label = fuse(service, {"path": EXAMPLE_7[0], "orig_name": "x.png", "meta": {"_type": "gradio.FileData"}})[0]
    assert max(label, key=label.get) == "7"


def test_notes_for_a_webcam_without_photo_and_for_text_the_encoder_cuts(service):
    out = service.fuse(service.default, None, None, "seven", True, True, True, 0, 0, 0, True)  # webcam_live
    assert "no photo was taken" in out[1]
    long = service.fuse(service.default, None, None, "blah " * 390 + "the answer is three", True, True, True, 0, 0, 0)
    assert "only its first" in long[1]


def test_low_confidence_is_said_plainly(service):
    p = fusion.predict(service.models[service.default], text="seven")
    assert "Not sure" not in headline(p)
    p.probs = {label: 0.1 for label in p.probs} | {"3": 0.12}
    p.label = "3"
    assert headline(p).startswith("**Not sure.**")


def test_unticking_the_last_input_clears_the_result_without_a_warning(service, recwarn):
    out = service.fuse(service.default, None, None, "seven", True, True, False, 0, 0, 0, quiet_when_empty=True)
    assert out == (None, "", "", "", "", "") and not recwarn.list


def test_the_report_holds_the_explanation(service):
    archive = service.report(service.default, *EXAMPLE_7, True, True, True, 0.0, 0.0, 0.0)["value"]
    with zipfile.ZipFile(archive) as z:
        assert sorted(z.namelist()) == ["image_regions.png", "prediction.json", "report.html", "your_picture.png"]
        payload = json.loads(z.read("prediction.json"))
        assert payload["label"] == "7" and set(payload["contributions"]) == {"image", "audio", "text"}
        assert "How much each input counted" in z.read("report.html").decode()


def test_compare_runs_every_strategy(service):
    table = service.compare(*EXAMPLE_7, True, True, True, 0.0, 0.0, 0.0)
    assert all(f"<th scope=row>{s}</th><td>7</td>" in table for s in service.models)


def test_api_predict_with_gradio_client(app_server):
    from gradio_client import Client, handle_file

    client = Client(app_server.url, verbose=False)
    result = client.predict(handle_file(str(EXAMPLES / "image_3.png")), handle_file(str(EXAMPLES / "speech_3.wav")),
                            "um probably a 3", api_name="/predict")
    assert result["label"] == "3" and result["modalities"] == ["image", "audio", "text"]
    assert set(result["modality_weights"]) == {"image", "audio", "text"}
    text_only = client.predict(None, None, "it's a nine", api_name="/predict")
    assert text_only["label"] == "9" and text_only["modalities"] == ["text"]
    with pytest.raises(Exception, match="Nothing to predict"):
        client.predict(None, None, "", api_name="/predict")
    again = client.predict(None, None, "two", api_name="/predict")  # still serving after the error
    assert again["label"] == "2"


def test_a_spoken_word_that_is_no_digit_counts_for_little(app_server, tmp_path):
    """Show a 7, say "hello", type "seven": the shipped default decides by the two that show a digit."""
    import subprocess

    from gradio_client import Client, handle_file

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng (Debian package, installed by run_tests.sh) is needed to say hello")
    hello = tmp_path / "hello.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(hello), "hello"], check=True, timeout=60)
    client = Client(app_server.url, verbose=False)
    result = client.predict(handle_file(EXAMPLE_7[0]), handle_file(str(hello)), "seven", api_name="/predict")
    assert result["label"] == "7"
    assert result["unimodal"]["audio"]["evidence"] is False
    assert result["modality_weights"]["audio"] < min(result["modality_weights"][m] for m in ("image", "text"))
    alone = client.predict(None, handle_file(str(hello)), "", api_name="/predict")
    assert alone["label"] is None and alone["notes"][0].startswith("No digit recognised")


def test_predict_is_an_mcp_tool(app_server):
    import httpx

    tools = httpx.get(f"{app_server.url}gradio_api/mcp/schema", timeout=30).json()
    assert [t["meta"]["endpoint_name"] for t in tools] == ["predict"]  # the page's own events stay private
    tool = tools[0]
    assert tool["description"].startswith("Say which digit") and "Args" not in tool["description"]
    assert set(tool["inputSchema"]["properties"]) == {"image", "audio", "text"}
    assert "at most 30 s" in tool["inputSchema"]["properties"]["audio"]["description"]


def test_the_mcp_tool_returns_json_text(model_dir):
    """Over MCP (Gradio's server, a real MCP client), /predict's result is JSON text, not a Python repr."""
    import asyncio

    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    from fusion.app import build_demo

    def taken(port: int) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    port = next(p for p in range(7872, 7900) if not taken(p))  # never 7860, where the app's own tests serve
    demo = build_demo(FusionService({"attention": model_dir}, device="cpu")).queue()
    demo.launch(server_port=port, prevent_thread_lock=True, mcp_server=True, quiet=True)

    async def call_tool() -> list:
        async with streamable_http_client(f"http://127.0.0.1:{port}/gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return (await session.call_tool("predict_digit", {"text": "it's a seven"})).content

    try:
        content = asyncio.run(call_tool())
    finally:
        demo.close()
    assert [c.type for c in content] == ["text"]
    payload = json.loads(content[0].text)
    assert payload["modalities"] == ["text"] and sum(payload["probs"].values()) == pytest.approx(1, abs=1e-3)


# ---------------------------------------------------------------- in a real browser


def media_flags(folder: Path) -> list[str]:
    """Chromium flags for a fake camera showing the example 7 (with a sensor's noise: no two frames alike)
    and a microphone saying "seven"."""
    video = write_y4m(EXAMPLES / "image_7.png", folder / "digit.y4m", noise=3.0)
    speech, rate = soundfile.read(EXAMPLES / "speech_7.wav", dtype="float32")
    wav = folder / "speech.wav"  # the word, then a second of silence (Chromium loops the file)
    soundfile.write(wav, np.concatenate([speech, np.zeros(rate, np.float32)]), rate, subtype="PCM_16")
    return ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}", f"--use-file-for-fake-audio-capture={wav}"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.skip("Debian's chromium is not installed (run_tests.sh installs it when run as root)")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium,
                                     args=BROWSER_FLAGS + media_flags(tmp_path_factory.mktemp("media")))
        yield launched
        launched.close()


def open_page(browser, url: str, viewport: dict, ready: str = "#fuse-button"):
    return open_app(browser.new_context(viewport=viewport, permissions=["camera", "microphone"]), url, ready)


def wait_for_result(page, previous: str = "") -> str:
    """Wait until the notes line is drawn (and differs from ``previous``) -> the predicted label."""
    page.wait_for_function("prev => { const e = document.querySelector('#info'); "
                           "return e && e.innerText.includes('ms on') && e.innerText !== prev "
                           "&& !document.querySelector('#prediction .pending, #info .pending'); }",
                           arg=previous, timeout=60000)
    return page.locator("#prediction [data-testid='label-output-value']").inner_text().strip()


def in_viewport(page, selector: str) -> bool:
    return page.locator(selector).evaluate(
        "e => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.top < window.innerHeight - 40; }")


def overflowing_tables(page) -> list[str]:
    """Tables in the result panels whose content is wider than the space they are given."""
    return page.evaluate("""() => [...document.querySelectorAll('.fl-panel table')]
        .filter(t => t.getBoundingClientRect().width > t.closest('.fl-panel').parentElement.clientWidth + 1)
        .map(t => t.querySelector('caption')?.innerText)""")


def smallest_text_px(page) -> float:
    """The smallest font size, as displayed, of any text in the result panels."""
    return page.evaluate("""sel => Math.min(...sel.flatMap(s => [...document.querySelectorAll(s + ' *')])
        .filter(e => [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()))
        .map(e => parseFloat(getComputedStyle(e).fontSize)))""", list(PANELS))


def keep_screenshot(page, name: str, tmp_path: Path) -> None:
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=name == "phone")
    if os.environ.get("FUSION_UPDATE_SCREENSHOT") == "1":  # only where the README's pictures come from
        shutil.copyfile(tmp_path / f"{name}.png", SCREENSHOTS[name])


def test_camera_microphone_text_in_the_browser(app_server, browser, tmp_path):
    page = open_page(browser, app_server.url, DESKTOP)
    assert in_viewport(page, "#fuse-button")
    start_webcam(page)
    page.get_by_placeholder("e.g.").fill("the number seven")
    page.locator("#fuse-button").click()  # the webcam runs, but no photo was taken yet
    assert wait_for_result(page) == "7" and "no photo was taken" in page.locator("#info").inner_text()

    capture_and_record(page)
    before = page.locator("#info").inner_text()
    page.locator("#fuse-button").click()
    assert wait_for_result(page, before) == "7"
    assert "from image, audio, text" in page.locator("#info").inner_text()
    assert in_viewport(page, "#prediction") and in_viewport(page, "#counted")
    assert page.locator("#what-if tbody tr").count() == 7 and "%" in page.locator("#what-if").inner_text()
    assert page.locator("#maps img").count() == 2 and page.locator("#maps svg").count() == 1
    assert not overflowing_tables(page) and smallest_text_px(page) >= 11
    keep_screenshot(page, "desktop", tmp_path)

    # Releasing a slider re-fuses: pure noise on the image takes most of its weight away.
    image_weight = float(page.locator("#counted tbody tr").first.inner_text().split()[1])
    before = page.locator("#info").inner_text()
    slider = page.locator("#corrupt-image input[type=range]")
    slider.fill("1")
    slider.dispatch_event("pointerup")
    wait_for_result(page, before)
    assert float(page.locator("#counted tbody tr").first.inner_text().split()[1]) < image_weight

    page.locator("#report-button").click()
    page.wait_for_selector("#report-file a[href*='fusion-lens-report.zip']", timeout=30000)

    page.get_by_role("tab", name="Compare strategies").click()
    page.locator("#compare-button").click()
    page.wait_for_selector("#compare table", timeout=60000)
    assert page.locator("#compare tbody tr").count() == 4 and not overflowing_tables(page)


def test_enter_fuses_and_a_phone_scrolls_to_the_result(app_server, browser, tmp_path):
    page = open_page(browser, app_server.url, PHONE)
    box = page.get_by_placeholder("e.g.")
    box.fill("it's a four")
    box.press("Enter")
    assert wait_for_result(page) == "4"
    page.wait_for_function("() => document.querySelector('#prediction').getBoundingClientRect().top < 400",
                           timeout=5000)  # scrolled to the result
    assert not overflowing_tables(page) and smallest_text_px(page) >= 11
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    keep_screenshot(page, "phone", tmp_path)


# Gradio's own page client warns this whenever it closes an event stream (its EventSource stand-in has no
# close()): nothing an app can change.
GRADIO_STREAM_CLOSE = "warning: Method not implemented."


def console_problems(page) -> list[str]:
    """What the page's console warns or errs from now on, and every HTTP answer >= 400 (a live list)."""
    problems = []
    page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning")
            and f"{m.type}: {m.text}" != GRADIO_STREAM_CLOSE else None)
    page.on("response", lambda r: problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
    return problems


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_image_box_uploads_on_the_first_click_and_the_console_stays_quiet(app_server, browser, viewport):
    page = open_page(browser, app_server.url, viewport)
    problems = console_problems(page)
    page.locator("#image-input button[aria-label='Upload file']").click()  # not the webcam area around it
    page.wait_for_selector("#image-input :text('Click to Upload')", timeout=10000)
    assert page.locator("#image-input video").count() == 0  # no camera was asked for
    with page.expect_file_chooser() as chooser:
        page.locator("#image-input").get_by_text("Click to Upload").click()
    chooser.value.set_files(str(EXAMPLES / "image_7.png"))
    page.wait_for_selector("#image-input img", timeout=30000)
    page.get_by_placeholder("e.g.").fill("seven")
    page.locator("#fuse-button").click()
    assert wait_for_result(page) == "7"
    if viewport is DESKTOP:  # a phone folds the inner tabs into a menu
        for tab in ("Compare strategies", "Explanation", "Teach", "About", "Fuse"):
            page.get_by_role("tab", name=tab).first.click()
    assert problems == []


def test_the_report_link_goes_with_its_prediction_and_keys_move_the_sliders(app_server, browser):
    page = open_page(browser, app_server.url, DESKTOP)
    box = page.get_by_placeholder("e.g.")
    box.fill("seven")
    box.press("Enter")
    assert wait_for_result(page) == "7"
    page.locator("#report-button").click()
    page.wait_for_selector("#report-file a[href*='fusion-lens-report.zip']", timeout=30000)
    before = page.locator("#info").inner_text()
    box.fill("twelve")
    box.press("Enter")
    assert wait_for_result(page, before) == "no digit"
    page.locator("#report-file").wait_for(state="hidden", timeout=10000)  # the link was for the "7"
    info, counted = page.locator("#info").inner_text(), page.locator("#counted").inner_text()
    assert "best guess" not in info and "the likeliest class; the answer is no digit" in counted
    assert "no digit" in page.locator("#counted tbody tr").last.inner_text()  # alone, as in "What if"

    box.fill("seven")
    box.press("Enter")
    assert wait_for_result(page, info) == "7"
    before = page.locator("#info").inner_text()
    page.locator("#corrupt-text input[type=range]").focus()
    for _ in range(8):
        page.keyboard.press("ArrowRight")  # typos in most letters
    wait_for_result(page, before)
    after_keys = page.locator("#info").inner_text()
    typed = page.locator("#corrupt-text input[type=number]")
    typed.fill("0")
    typed.press("Enter")
    wait_for_result(page, after_keys)
    assert page.locator("#corrupt-text input[type=range]").input_value() == "0"


def test_live_preview_fuses_each_new_frame_with_the_latest_text(app_server, browser):
    page = open_page(browser, app_server.url, DESKTOP)
    page.get_by_placeholder("e.g.").fill("it is a seven")
    page.get_by_role("tab", name="Live").click()
    live = page.locator("#live-webcam")
    live.get_by_text("Click to Access Webcam").click()
    page.wait_for_function("() => document.querySelector('#live-webcam video')?.readyState >= 2", timeout=30000)
    live.get_by_role("button", name="capture photo").click()  # its Record button: starts the stream
    # Each update's notes ("from image, text. 41 ms: encoded image 30 ms, fused 8 ms."), without the progress
    # timer that shares the box: what that frame needed encoded.
    update = "() => (document.querySelector('#live-info')?.innerText.match(/from .*? ms: encoded[^.]*\\./) || [''])[0]"
    notes = []
    while len(notes) < 3:
        page.wait_for_function(f"prev => {{ const n = ({update})(); return n && n !== prev; }}",
                               arg=notes[-1] if notes else "", timeout=60000)
        notes.append(page.evaluate(update))
    assert page.locator("#live-prediction [data-testid='label-output-value']").inner_text().strip() == "7"
    assert all(n.startswith("from image, text") for n in notes), notes
    # The text was encoded once, with the first frame; each new frame is encoded (a frame the camera repeated,
    # as a stalled headless browser does, encodes nothing new).
    later = notes[1:]
    assert all("text" not in n.split("encoded")[1] for n in later) and any("encoded image" in n for n in later), notes
    assert "weight" in page.locator("#live-counted").inner_text()


SHAPE_TEXTS = {"circle": ["a round ring", "a circle drawn in pen"], "triangle": ["three corners", "a pointy triangle"]}
NONE_TEXTS = ["hello there", "good morning", "my name is anna"]


def test_teach_two_classes_in_the_browser_then_predict_a_new_example(app_server, browser, tmp_path):
    """The README's walkthrough: a non-digit task taught from uploaded pictures and typed texts, trained, and
    then a picture it never saw predicted by "your model" in the Fuse tab."""
    page = open_page(browser, app_server.url, DESKTOP)
    page.get_by_role("tab", name="Teach").click()
    for shape, texts in SHAPE_TEXTS.items():
        page.get_by_label("New class").fill(shape)
        page.locator("#teach-add-class").click()
        page.wait_for_selector(f".teach-class :text('{shape} · 0 examples')", timeout=30000)  # and it is selected
        pictures = [shape_picture(tmp_path / f"{shape}{seed}.png", shape, seed) for seed in range(3)]
        page.locator("#teach-files input[type=file]").set_input_files(pictures)
        page.wait_for_selector(f".teach-class :text('{shape} · 3 examples')", timeout=60000)
        for n, text in enumerate(texts, start=4):
            page.get_by_label("Example: text").fill(text)
            page.locator("#teach-add-example").click()
            page.wait_for_selector(f".teach-class :text('{shape} · {n} examples')", timeout=30000)
    assert page.locator(".teach-example img").count() == 6
    page.locator("#teach-label input").click()  # small talk is none of the shapes
    page.get_by_role("option", name=NONE).click()
    for n, text in enumerate(NONE_TEXTS, start=1):
        page.get_by_label("Example: text").fill(text)
        page.locator("#teach-add-example").click()
        page.wait_for_selector(f".teach-class :text('{NONE} · {n} example')", timeout=30000)
    page.locator("#teach-train").click()
    page.wait_for_selector("#teach-report :text('Trained in')", timeout=150000)
    report = page.locator("#teach-report").inner_text()
    assert "image + text" in report and "none recognised" in report
    page.wait_for_selector("#teach-plot img", timeout=30000)
    keep_screenshot(page, "teach", tmp_path)

    page.get_by_role("tab", name="Fuse").click()
    page.locator("#text-input textarea").fill("what a lovely day")
    page.locator("#fuse-button").click()
    assert wait_for_result(page) == "no class"
    no_class = page.locator("#info").inner_text()  # what comes next differs, whichever event draws it
    page.locator("#text-input textarea").fill("")
    new_circle = shape_picture(tmp_path / "new.png", "circle", seed=99)
    page.locator("#image-input input[type=file]").set_input_files(new_circle)
    page.wait_for_selector("#image-input img", timeout=30000)
    page.locator("#fuse-button").click()
    assert wait_for_result(page, no_class) == "circle"
    assert "your model" in page.locator("#info").inner_text()

    # The project, downloaded and uploaded in a new tab, comes back trained and says so.
    page.get_by_role("tab", name="Teach").click()
    page.locator("#teach-download").click()
    href = page.locator("#teach-zip a").first.get_attribute("href", timeout=30000)
    archive = tmp_path / "project.zip"
    archive.write_bytes(httpx.get(href if href.startswith("http") else app_server.url + href.lstrip("/")).content)
    other = open_page(browser, app_server.url, DESKTOP)
    other.get_by_role("tab", name="Teach").click()
    with other.expect_file_chooser() as chooser:
        other.locator("#teach-upload").click()
    chooser.value.set_files(str(archive))
    other.wait_for_selector("#teach-report :text('Restored 2 classes (circle, triangle)')", timeout=120000)
    assert "“your model” is selected" in other.locator("#teach-report").inner_text()
    other.get_by_role("tab", name="Fuse").click()
    assert other.get_by_label("Fusion strategy").first.input_value() == "your model"


def test_the_teach_tab_says_why_a_zip_is_no_project_and_cuts_long_texts(app_server, browser, tmp_path):
    page = open_page(browser, app_server.url, DESKTOP)
    page.get_by_role("tab", name="Teach").click()
    report = tmp_path / "fusion-lens-report.zip"  # a zip from the Fuse tab's Download report, not a project
    with zipfile.ZipFile(report, "w") as z:
        z.writestr("report.json", "{}")
    with page.expect_file_chooser() as chooser:
        page.locator("#teach-upload").click()
    chooser.value.set_files(str(report))
    page.wait_for_selector(".toast-body :text('fusion-lens-report.zip holds no manifest.csv.')", timeout=30000)
    page.get_by_label("New class").fill("long")
    page.locator("#teach-add-class").click()
    page.wait_for_selector(".teach-class :text('long · 0 examples')", timeout=30000)
    page.get_by_label("Example: text").fill("a long example " * 133)  # 1,995 characters
    page.locator("#teach-add-example").click()
    page.wait_for_selector(".teach-class :text('long · 1 example')", timeout=30000)
    example = page.locator(".teach-example details.teach-text")
    assert "(1,995 characters)" in example.locator("summary").inner_text()
    assert page.evaluate("document.documentElement.scrollHeight") < 3000
    clipped = page.evaluate("""() => { const zone = document.querySelector('#teach-files').getBoundingClientRect();
        return [...document.querySelectorAll('#teach-files *')].filter(e => e.getBoundingClientRect().height > 0)
            .filter(e => { const r = e.getBoundingClientRect();
                           return r.bottom > zone.bottom + 1 || r.top < zone.top - 1; })
            .map(e => e.innerText || e.tagName); }""")
    assert clipped == []  # the drop zone is whole: its label, icon and "Click to Upload" inside it


def test_clicking_an_example_shows_its_result(app_server, browser):
    page = open_page(browser, app_server.url, DESKTOP)
    errors = []
    page.on("response", lambda r: errors.append(r.url) if r.status >= 400 else None)
    page.get_by_text("3 · all three").click()  # cached lazily: the first click runs it, later ones read it
    assert wait_for_result(page) == "3"
    page.get_by_text("2 · text only").click()
    assert wait_for_result(page, page.locator("#info").inner_text()) == "2"
    assert page.locator("#maps img").count() == 0  # the previous example's result is gone
    assert not errors


def test_about_tab_is_short_and_shows_no_server_paths(app_server, browser):
    page = open_page(browser, app_server.url, DESKTOP)
    page.get_by_role("tab", name="About").click()
    page.wait_for_selector("text=What this is")
    text = page.locator("body").inner_text()
    for path in (str(ROOT), "site-packages", "/root", "/home", "/tmp"):
        assert path not in text
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 2500, height  # the model card waits in a closed accordion
    page.get_by_text("Model card (training, results, limits)").click()
    table = page.locator(".fl-card table").first
    assert table.evaluate("t => getComputedStyle(t).overflowX") == "auto"
    assert table.evaluate("t => t.getBoundingClientRect().width <= t.closest('div').clientWidth + 1")
    fits = page.locator("#report-plots img").evaluate_all("imgs => imgs.map(i => getComputedStyle(i).objectFit)")
    plots = len(list((ROOT / "assets" / "models" / "reports" / "attention").glob("*.png")))  # robustness.png too
    assert len(fits) == plots >= 3 and set(fits) <= {"contain", "scale-down"}  # whole plots, never cropped


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serious_violations(page) -> dict[str, int]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page).response["violations"]
    return {v["id"]: len(v["nodes"]) for v in results if v["impact"] in ("serious", "critical")}


def test_accessibility_no_worse_than_a_bare_interface(app_server, browser):
    """axe-core on the page after a fusion, against a bare gr.Interface with the same inputs and theme."""
    import gradio as gr

    page = open_page(browser, app_server.url, DESKTOP)
    page.get_by_placeholder("e.g.").fill("seven")
    page.locator("#fuse-button").click()
    wait_for_result(page)
    ours = serious_violations(page)

    bare = gr.Interface(lambda image, audio, text: {"7": 1.0}, [
        gr.Image(sources=["webcam", "upload"], type="filepath"), gr.Audio(sources=["microphone", "upload"],
                                                                          type="filepath"), gr.Textbox()],
        gr.Label())
    port = free_port()
    bare.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                theme=gr.themes.Soft())
    try:
        reference = open_page(browser, f"http://127.0.0.1:{port}/", DESKTOP, ready="button:text('Submit')")
        reference.get_by_role("textbox").first.fill("seven")
        reference.get_by_role("button", name="Submit").click()
        reference.wait_for_selector("[data-testid='label-output-value'], .output-class", timeout=30000)
        theirs = serious_violations(reference)
    finally:
        bare.close()
    print(f"serious/critical axe violations (nodes): ours {ours}, bare interface {theirs}")
    assert set(ours) <= set(theirs), {rule: n for rule, n in ours.items() if rule not in theirs}


def test_the_examples_still_work_after_the_cache_cleanup_and_a_restart(service, browser, tmp_path, monkeypatch):
    """Hours of uptime in seconds: the README's app with Gradio's clean-up every 2 s (``--cache-cleanup``) is
    left to clean twice, then every example is clicked; then the same after a restart (the lazy cache kept
    what the first run computed, and never a failure). The default period is covered below."""
    import time

    from conftest import RunningApp

    _, names = service.examples(EXAMPLES)
    expected = [line.split(",")[-1] for line in (EXAMPLES / "examples.csv").read_text().splitlines()[1:]]
    monkeypatch.setenv("GRADIO_EXAMPLES_CACHE", str(tmp_path / "cached_examples"))  # not the shared app's
    for run in ("first", "restarted"):
        app = RunningApp("--port", "7862", "--cache-cleanup", "2")
        try:
            time.sleep(7)  # two clean-ups pass: files older than 3 s go
            page = open_page(browser, app.url, DESKTOP)
            errors = []
            # Gradio's own front end asks for upload_progress without an id (a 404 the app cannot prevent).
            page.on("response", lambda r, errors=errors: errors.append(r.url) if r.status >= 400
                    and "upload_progress?upload_id=" not in r.url else None)
            shown, previous = [], ""
            for name in names:
                page.get_by_text(name, exact=True).click()
                shown.append(wait_for_result(page, previous))
                previous = page.locator("#info").inner_text()
            assert shown == expected, (run, dict(zip(names, shown)))
            assert not errors, (run, errors)
            page.context.close()
        finally:
            app.stop()
    assert all("null" not in log.read_text() for log in (tmp_path / "cached_examples").rglob("log.csv"))


def test_an_example_that_fails_is_raised_so_gradio_does_not_cache_it(service, tmp_path):
    import gradio as gr

    with pytest.raises(gr.Error):
        service.fuse_example(str(tmp_path / "gone.png"), None, None)


def test_push_signs_visitors_in_on_a_space_with_oauth_and_asks_for_a_token_elsewhere(service, monkeypatch):
    """On a Space with ``hf_oauth: true`` (which sets OAUTH_CLIENT_ID) the Teach tab's push uses the visitor's
    sign-in; anywhere else (Gradio would sign in with this machine's own token) a pasted token, and no
    handler that could receive an OAuth token."""
    from fusion.app import build_demo

    def push_parts(demo):
        """({elem_id or label: component class name}, the push handler's name, whether Gradio attaches OAuth)."""
        kinds = {getattr(b, "elem_id", None) or getattr(b, "label", None): type(b).__name__
                 for b in demo.blocks.values()}
        names = [getattr(block.fn, "__name__", "") for block in demo.fns.values()]
        return kinds, next(name for name in names if name.startswith("push")), demo.expects_oauth

    kinds, handler, oauth = push_parts(build_demo(service))
    assert kinds.get("Your access token (write)") == "Textbox" and "teach-login" not in kinds
    assert handler == "push" and not oauth
    import gradio.oauth

    # What a Space with hf_oauth sets before the app starts (gradio.oauth reads it when imported).
    space = {"SYSTEM": "spaces", "SPACE_ID": "someone/fusion-lens", "OAUTH_CLIENT_ID": "x", "OAUTH_CLIENT_SECRET": "y",
             "OAUTH_SCOPES": "openid profile contribute-repos", "OPENID_PROVIDER_URL": "https://huggingface.co"}
    for name, value in space.items():
        monkeypatch.setenv(name, value)
        if hasattr(gradio.oauth, name):
            monkeypatch.setattr(gradio.oauth, name, value)
    kinds, handler, oauth = push_parts(build_demo(service))
    assert kinds.get("teach-login") == "LoginButton" and "Your access token (write)" not in kinds
    assert handler == "push_signed_in" and oauth


def test_the_default_cache_cleanup_is_ten_minutes(service):
    from fusion.app import build_demo

    assert build_demo(service).delete_cache == (600, 900)
