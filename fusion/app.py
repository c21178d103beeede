"""Fusion Lens — show it, say it, type it: webcam + microphone + text, fused, with what counted.

    python app.py [--model DIR] [--device cpu|cuda] [--host 0.0.0.0] [--port 7860] [--share] [--cache-cleanup S]
    fusion-lens ...                  (the same, once the package is installed)

Environment (for Hugging Face Spaces): FUSION_MODEL, FUSION_DEVICE, FUSION_CACHE_CLEANUP; gradio's own
GRADIO_SERVER_NAME / GRADIO_SERVER_PORT. Layout and wiring only: the handlers live in ``fusion.serving``.
"""

try:  # ZeroGPU: `spaces` must be imported before anything touches CUDA (fusion.gpu wraps the handlers with it)
    import spaces  # noqa: F401
except ImportError:
    pass

import argparse
import functools
import json
import logging
import os
import signal
from html import escape
from pathlib import Path

import gradio as gr

from . import modalities as registry
from .config import STRATEGY_NAMES
from .errors import UserError
from .gpu import (
    COMPARE_S,
    EXAMPLE_S,
    FRAME_S,
    FUSE_S,
    MAX_BATCH,
    files_duration,
    on_gpu,
    restore_duration,
    time_limit,
    train_duration,
    zero_gpu,
)
from .inputs import MAX_FILE_BYTES
from .pipeline import MODELS_DIR
from .serving import EXAMPLES_DIR, FusionService, GuardedBlocks, shipped_models
from .teach import MAX_RESTORE_SECONDS, MAX_TRAIN_SECONDS, NONE
from .teach_page import HELP as TEACH_HELP
from .teach_page import IDLE_SECONDS, TeachPage, delete_project
from .views import CSS as VIEWS_CSS

CACHE_CLEANUP_S = 600
# Gradio keeps every session's state and component configs (~0.2 MB each) for its 10,000 most recent
# sessions by default; past this many, the least recently active one is forgotten (its Teach project with it).
SESSION_CAPACITY = 200
API_INPUTS = ("image", "audio", "text")  # FusionService.predict_digit's arguments
INTRO = """# Fusion Lens — show it, say it, type it
Hold a handwritten digit up to the webcam, **say** a number, **type** one: any of the three is enough. Three
pretrained encoders feed a trained fusion model, and the results show the prediction and **how much each
input counted**. Try a conflict (show 3, say “eight”) or drag a *corrupt* slider and watch the weights move."""
ABOUT = """### What this is
Fusion Lens reads a picture, a recording and a text with three pretrained networks (EfficientNet-Lite0,
Whisper base, MiniLM), and a small trained *fusion* model combines what they found to decide which digit
you meant. Any one input is enough; with several, the page shows how much each one counted (its weight in
the fusion and its exact Shapley contribution), what each says alone, and which parts of the picture,
moments of the recording and words mattered. Four ways of fusing (strategies) can be compared. Everything
runs on this server; nothing you send is stored beyond the session's temporary files."""
CSS = VIEWS_CSS + """
.compact-row {gap: 8px; align-items: center}
#image-input .source-selection, #teach-image .source-selection {position: relative; z-index: 1}
.teach-text {margin: 0; overflow-wrap: anywhere; max-height: 16em; overflow-y: auto}
.teach-text summary {cursor: pointer}
.fl-card table {display: block; overflow-x: auto; max-width: 100%}
.fl-card th, .fl-card td {white-space: nowrap}
"""
# Gradio's Soft theme, with its indigo labels, primary button, tabs and footer text darkened to WCAG AA
# contrast (axe-core flags the originals).
THEME = gr.themes.Soft().set(
    block_label_text_color="*primary_700", block_title_text_color="*primary_700", color_accent="*primary_700",
    button_primary_background_fill="*primary_600", button_primary_background_fill_hover="*primary_700",
    body_text_color_subdued="*neutral_600")
# The page tells the server when a webcam is running with no photo captured (the photo is what is sent).
WEBCAM_JS = """(...args) => {
  const video = document.querySelector('#image-input video');
  args[LIVE] = Boolean(video && video.srcObject && args[IMAGE] == null);
  return args;
}"""
SCROLL_TO_RESULT_JS = """() => {
  if (window.innerWidth < 900) document.querySelector('#prediction')?.scrollIntoView({behavior: 'smooth'});
}"""


def example_text_html(text: str, shown: int = 80) -> str:
    """A Teach example's text in the examples list: whole when short, else its start with the rest on a click."""
    if len(text) <= shown:
        return f'<p class="teach-text">“{escape(text)}”</p>'
    return (f'<details class="teach-text"><summary>“{escape(text[:shown].rstrip())}…” '
            f'({len(text):,} characters)</summary>{escape(text)}</details>')


def signed_in_pushes() -> bool:
    """Push to Hub as the visitor signed in with Hugging Face: on a Space whose front matter has ``hf_oauth: true``
    (it sets ``OAUTH_CLIENT_ID``). Anywhere else Gradio would stand in for the sign-in with this machine's own
    token, which no visitor may use, so the page asks for a pasted token instead."""
    from gradio.utils import get_space

    return get_space() is not None and bool(os.environ.get("OAUTH_CLIENT_ID"))


def build_teach_tab(page: TeachPage, project: gr.State, version: gr.State, fuse_strategy: gr.Dropdown) -> None:
    """The Teach tab: classes, examples (from the same kinds of input as the Fuse tab), train, zip in and out."""
    gr.Markdown(TEACH_HELP)
    signed_in = signed_in_pushes()
    with gr.Row(equal_height=False):
        with gr.Column(scale=4, min_width=300):
            with gr.Row(elem_classes="compact-row"):
                name = gr.Textbox(label="New class", placeholder="e.g. mug", scale=3, min_width=150,
                                  elem_id="teach-class-name")
                add_class = gr.Button("Add class", scale=1, min_width=100, elem_id="teach-add-class")
            with gr.Row(elem_classes="compact-row"):
                label = gr.Dropdown([], label="Add examples to", scale=3, min_width=150, elem_id="teach-label")
                remove_class = gr.Button("Remove class", size="sm", variant="stop", scale=1, min_width=100,
                                         elem_id="teach-remove-class")
            widgets = []
            for modality in page.service.modalities:  # the same inputs as the Fuse tab, under their own ids
                widget = registry.modality(modality).widget()
                widget.elem_id, widget.label = f"teach-{modality}", f"Example: {modality}"
                widgets.append(widget)
            add_example = gr.Button("Add example", variant="primary", elem_id="teach-add-example")
            files = gr.File(file_count="multiple", label="Or drop several files (one example each)",
                            elem_id="teach-files")
            with gr.Row(elem_classes="compact-row"):
                strategy = gr.Dropdown(list(STRATEGY_NAMES), value="attention", label="Fusion strategy", scale=2,
                                       min_width=140)
                train = gr.Button("Train", variant="primary", scale=1, min_width=100, elem_id="teach-train")
            with gr.Row(elem_classes="compact-row"):
                download = gr.Button("Download project (.zip)", size="sm", elem_id="teach-download")
                upload = gr.UploadButton("Upload a project (.zip)", file_types=[".zip"], size="sm",
                                         elem_id="teach-upload")
            archive = gr.File(label="Project", visible=False, interactive=False, height=60, elem_id="teach-zip")
            with gr.Accordion("Push the trained model to the Hugging Face Hub", open=False):
                with gr.Row(elem_classes="compact-row"):
                    repo = gr.Textbox(label="Repository", placeholder="your-name/my-classes", scale=3, min_width=150)
                    private_repo = gr.Checkbox(True, label="private", scale=1, min_width=90)
                if signed_in:
                    gr.LoginButton(elem_id="teach-login")
                else:
                    token = gr.Textbox(label="Your access token (write)", type="password", placeholder="hf_…")
                push = gr.Button("Push to Hub", size="sm", elem_id="teach-push")
                pushed = gr.Markdown(elem_id="teach-pushed")
        with gr.Column(scale=6, min_width=320):
            report = gr.HTML(elem_id="teach-report")
            plot = gr.Plot(label="Mean weight of each input, per class", elem_id="teach-plot", format="png")

            @gr.render(inputs=[project], triggers=[version.change])
            def show_examples(current):
                if current is None or not current.classes:
                    gr.Markdown("*No classes yet: name one on the left and add it.*")
                    return
                groups = current.classes + ([None] if any(e.label is None for e in current.examples) else [])
                for cls in groups:
                    examples = [e for e in current.examples if e.label == cls]
                    with gr.Accordion(f"{cls or NONE} · {len(examples)} example{'s' * (len(examples) != 1)}",
                                      elem_classes="teach-class"):
                        with gr.Row(equal_height=False):
                            for example in examples:
                                with gr.Column(min_width=150, scale=0, elem_classes="teach-example"):
                                    if "image" in example.inputs:
                                        gr.Image(example.inputs["image"], height=90, show_label=False,
                                                 interactive=False, buttons=[])
                                    if "audio" in example.inputs:
                                        gr.Audio(example.inputs["audio"], show_label=False, interactive=False)
                                    if "text" in example.inputs:
                                        gr.HTML(example_text_html(example.inputs["text"]))
                                    gr.Button("Remove", size="sm").click(
                                        functools.partial(page.remove_example, example_id=example.id),
                                        [project, version], [project, version], api_visibility="private")

    private = {"api_visibility": "private", "preprocess": False}
    gr.on([add_class.click, name.submit], page.add_class, [project, name, version], [project, label, name, version],
          **private)
    remove_class.click(page.remove_class, [project, label, version], [project, label, version], **private)
    # On ZeroGPU no time limit exceeds the GPU time the handler's encoding or training asks for (fusion.gpu).
    add_example.click(page.add_example, [project, label, version, *widgets], [project, version, *widgets],
                      time_limit=time_limit(EXAMPLE_S, 60), **private)
    files.upload(page.add_files, [project, label, files, version], [project, files, version],
                 time_limit=time_limit(files_duration, 120), **private)
    # One training at a time across sessions: the others' predictions keep their own queue.
    train.click(page.train, [project, strategy, version], [project, report, plot, fuse_strategy, version],
                concurrency_limit=1, concurrency_id="teach-train",
                time_limit=time_limit(train_duration, MAX_TRAIN_SECONDS + 30), api_visibility="private")
    download.click(page.download, project, archive, api_visibility="private")
    if signed_in:
        push.click(page.push_signed_in, [project, repo, private_repo], pushed, time_limit=300,
                   api_visibility="private")
    else:
        push.click(page.push, [project, repo, token, private_repo], pushed, time_limit=300,
                   api_visibility="private")
    upload.upload(page.upload, [project, upload, version], [project, label, report, plot, fuse_strategy, version],
                  time_limit=time_limit(restore_duration, MAX_RESTORE_SECONDS + 30), **private)


def mcp_outputs_as_json() -> None:
    """Make Gradio's MCP server send a JSON output (gr.JSON's dict or list) as JSON text.

    Gradio 6 (``GradioMCPServer.postprocess_output_data``) turns each output that is no file into text with
    ``str()``, so the /predict tool's result reached MCP clients as a Python repr (single quotes, None, True)
    while gradio_client callers get the dict; only the MCP text changes. Values holding files keep Gradio's
    handling (an image, a URL)."""
    from gradio.mcp import GradioMCPServer
    from gradio_client.utils import is_file_obj_with_meta, traverse

    postprocess = getattr(GradioMCPServer, "postprocess_output_data", None)
    # None: a Gradio without that step still starts the app (test_the_mcp_tool_returns_json_text says so).
    if postprocess is None or getattr(postprocess, "sends_json", False):  # or installed already (per process)
        return

    def holds_files(value) -> bool:
        found = []
        traverse(value, found.append, is_file_obj_with_meta)
        return bool(found)

    def as_json(self, data, root_url):
        return postprocess(self, [json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list))
                                  and not holds_files(value) else value for value in data], root_url)

    as_json.sends_json = True
    GradioMCPServer.postprocess_output_data = as_json


def build_demo(service: FusionService, cache_cleanup_s: int = CACHE_CLEANUP_S, batch: bool | None = None) -> gr.Blocks:
    """The page for ``service``'s models; every ``cache_cleanup_s`` Gradio deletes the copies of uploads and
    outputs it keeps that are older than 1.5 times that. ``batch``: whether ``/predict`` batches concurrent
    calls through one encoder pass (default: on a GPU; ``--batch`` / ``FUSION_BATCH=1`` forces it)."""
    mcp_outputs_as_json()
    strategies = list(service.models)
    # On ZeroGPU each call holds a GPU of its own (in a process of its own), so there is nothing to share.
    batch = service.device.type == "cuda" and not zero_gpu() if batch is None else batch
    # The examples are served from the app's own folder, not as copies in Gradio's cache, which its clean-up
    # (delete_cache) empties while the page still shows them.
    gr.set_static_paths([EXAMPLES_DIR])
    teach = TeachPage(service)
    with GuardedBlocks(title="Fusion Lens", delete_cache=(cache_cleanup_s, cache_cleanup_s * 3 // 2),
                       analytics_enabled=False, fill_width=True) as demo:
        gr.Markdown(INTRO)
        with gr.Tab("Fuse"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=4, min_width=300):
                    widgets = {m: registry.modality(m).widget() for m in service.modalities}
                    add_predict_endpoint(service, widgets, batch)
                    with gr.Row(elem_classes="compact-row"):
                        strategy = gr.Dropdown(strategies, value=service.default, label="Fusion strategy", scale=2,
                                               min_width=140)
                        fuse = gr.Button("Fuse", variant="primary", scale=1, min_width=100, elem_id="fuse-button")
                    with gr.Accordion("Leave out or corrupt an input (re-fuses as you change it)", open=True):
                        uses, corrupts = [], []
                        for modality in service.modalities:
                            with gr.Row(elem_classes="compact-row"):
                                uses.append(gr.Checkbox(True, label=f"use {modality}", min_width=110, scale=1))
                                corrupts.append(gr.Slider(0, 1, 0, step=0.1, min_width=160, scale=3,
                                                          label=f"{modality}: {registry.modality(modality).corruption}",
                                                          elem_id=f"corrupt-{modality}"))
                with gr.Column(scale=6, min_width=320):
                    with gr.Tab("Explanation"):
                        with gr.Row(equal_height=False):
                            label = gr.Label(num_top_classes=3, label="Prediction", elem_id="prediction", scale=1,
                                             min_width=170)
                            with gr.Column(scale=3, min_width=300):
                                info = gr.Markdown(elem_id="info")
                                counted = gr.HTML(elem_id="counted")
                        maps = gr.HTML(elem_id="maps")
                        with gr.Row(equal_height=False):
                            with gr.Column(min_width=240):
                                words = gr.HTML(elem_id="words")
                            with gr.Column(min_width=300):
                                what_if = gr.HTML(elem_id="what-if")
                        with gr.Row(elem_classes="compact-row"):
                            report = gr.Button("Download report (JSON, maps, HTML)", elem_id="report-button",
                                               size="sm", scale=0, min_width=260)
                            report_file = gr.File(label="Report", elem_id="report-file", height=60,
                                                  interactive=False, scale=1, visible=False)
                    if "image" in widgets:
                        with gr.Tab("Live"):
                            gr.Markdown("Press **Record** to stream the webcam: every frame is fused with your "
                                        "latest recording and text, and only what changed is encoded again.")
                            with gr.Row(equal_height=False):
                                live_cam = gr.Image(
                                    sources=["webcam"], streaming=True, type="numpy", height=240, min_width=240,
                                    label="Live webcam", elem_id="live-webcam", webcam_options=gr.WebcamOptions(
                                        mirror=False, constraints={"video": {"width": {"ideal": 640},
                                                                             "height": {"ideal": 480}}}))
                                live_label = gr.Label(num_top_classes=3, label="Live prediction",
                                                      elem_id="live-prediction", min_width=170)
                            live_info = gr.Markdown(elem_id="live-info")
                            live_counted = gr.HTML(elem_id="live-counted")
                    with gr.Tab("Compare strategies"):
                        compare = gr.Button("Run every strategy on these inputs", elem_id="compare-button")
                        compare_table = gr.HTML(elem_id="compare")

            webcam_live = gr.Checkbox(False, visible=False)
            # The session's Teach project; its files go when the session ends or idles for an hour.
            project = gr.State(None, time_to_live=IDLE_SECONDS, delete_callback=delete_project)
            version = gr.State(0)  # bumped by every change to the project: re-renders its examples
            values = list(widgets.values())
            inputs = [*values, *uses, *corrupts]
            texts = [w for w in values if isinstance(w, gr.Textbox)]
            recorders = [w for w in values if isinstance(w, gr.Audio)]
            # Tells the server about a running webcam with no photo (+1: the strategy comes first).
            webcam_js = WEBCAM_JS.replace("IMAGE", str(1 + service.modalities.index("image"))).replace(
                "LIVE", str(1 + len(inputs))) \
                if "image" in widgets else None
            outputs = [label, info, counted, maps, words, what_if]
            # Uploads reach the handlers unprocessed (their file path): fusion.inputs decodes and checks them.
            # One small progress timer on the prediction: animating all six panels costs the browser CPU time
            # the model needs on a small machine.
            progress = {"show_progress": "minimal", "show_progress_on": [label]}
            # Every handler that runs an encoder holds a GPU on ZeroGPU for the time it needs (fusion.gpu), and
            # there its time limit is that time.
            fuse_limit = time_limit(FUSE_S, 60)
            gr.on([fuse.click] + [t.submit for t in texts], on_gpu(service.fuse, FUSE_S),
                  [strategy, *inputs, webcam_live, project], outputs, js=webcam_js, preprocess=False,
                  time_limit=fuse_limit, api_visibility="private", **progress,
                  ).then(None, js=SCROLL_TO_RESULT_JS)
            # `input`: a drag, the arrow keys and a typed value alike; always_last: while one fusion runs, only
            # the latest change waits.
            refuse = [c.input for c in corrupts] + [u.input for u in uses] + [strategy.input]
            gr.on(refuse, on_gpu(functools.partial(service.fuse, quiet_when_empty=True), FUSE_S),
                  [strategy, *inputs, webcam_live, project], outputs, js=webcam_js, preprocess=False,
                  time_limit=fuse_limit, api_visibility="private", trigger_mode="always_last", **progress)
            report.click(on_gpu(service.report, FUSE_S), [strategy, *inputs, project], report_file, preprocess=False,
                         time_limit=fuse_limit, api_visibility="private")
            compare.click(on_gpu(service.compare, COMPARE_S), inputs, compare_table, preprocess=False,
                          time_limit=time_limit(COMPARE_S, 120), api_visibility="private")
            # Live: each frame is fused with the latest recording and text (fusion.live encodes only changes).
            if "image" in widgets:
                live_values = [live_cam if m == "image" else widgets[m] for m in service.modalities]
                # time_limit: the whole stream's; each frame asks for FRAME_S of GPU.
                live_cam.stream(on_gpu(service.live, FRAME_S), [strategy, *live_values, project],
                                [live_label, live_info, live_counted], stream_every=0.125, time_limit=300,
                                concurrency_limit=4, concurrency_id="live", show_progress="hidden",
                                preprocess=False, api_visibility="private")
            # Gradio delivers None if Fuse is pressed before a recording finished uploading: keep it disabled.
            for recorder in recorders:
                recorder.start_recording(lambda: gr.Button(interactive=False), None, fuse, queue=False,
                                         api_visibility="private")
                recorder.change(lambda: gr.Button(interactive=True), None, fuse, queue=False, api_visibility="private")

            examples, example_labels = service.examples(EXAMPLES_DIR)
            new_result = [fuse.click, *[t.submit for t in texts], *refuse]
            if examples:
                shown = gr.Examples(examples, values, outputs, fn=on_gpu(service.fuse_example, FUSE_S),
                                    cache_examples=True, cache_mode="lazy", preprocess=False,
                                    example_labels=example_labels, examples_per_page=8,
                                    label="Examples (click one; the last two are conflicts)")
                # An example's result is the default model's (cached once for every visitor): say so.
                shown.dataset.click(lambda: gr.update(value=service.default), None, strategy, queue=False,
                                    api_visibility="private")
                new_result.append(shown.dataset.click)
            # A report link belongs to the prediction it was made for.
            gr.on(new_result, lambda: gr.update(value=None, visible=False), None, report_file, queue=False,
                  api_visibility="private")

        with gr.Tab("Teach"):
            build_teach_tab(teach, project, version, strategy)
        demo.unload(teach.end_session)
        demo.unload(service.end_live)

        with gr.Tab("About"):
            gr.Markdown(ABOUT)
            gr.Markdown(service.about_markdown())
            plots = service.report_plots()
            if plots:
                gr.Markdown(f"### Evaluation of the default model ({service.default}, test split)")
                with gr.Row(elem_id="report-plots"):
                    for path, caption in plots:  # the wide robustness figure gets the room it needs
                        gr.Image(path, label=caption, interactive=False, height=340, buttons=["fullscreen"],
                                 scale=2 if caption == "robustness" else 1, min_width=320 if caption != "robustness"
                                 else 640)
            with gr.Accordion("Model card (training, results, limits)", open=False):
                gr.Markdown(service.model_card(), elem_classes="fl-card")

    return demo


def add_predict_endpoint(service: FusionService, widgets: dict, batch: bool) -> None:
    """The programmatic endpoint (and MCP tool) on ``widgets`` (image, audio, text) -> Prediction.to_dict() as
    JSON. Registered before any other event: Gradio's page client takes a "/predict" endpoint's parameters for
    event 0's, and warns "Too many arguments" on every call of any other event 0."""
    if not set(API_INPUTS) <= set(widgets):
        return
    api_inputs, api_result = [widgets[m] for m in API_INPUTS], gr.JSON(visible=False)
    api_button = gr.Button(visible=False)
    # Batching: the calls share their encoder passes inside predict_digit, so a batched /predict has the same
    # contract (a bad input is that call's gr.Error) and docstring (the MCP tool's description).
    service.batch(batch)
    api_button.click(on_gpu(service.predict_digit, FUSE_S), api_inputs, api_result, api_name="predict",
                     time_limit=time_limit(FUSE_S, 60), preprocess=False,
                     concurrency_limit=MAX_BATCH if batch else "default")


def main() -> None:
    parser = argparse.ArgumentParser(prog="fusion-lens", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.environ.get("FUSION_MODEL"),
                        help=f"a model folder or hub repo id to serve (default: every model under {MODELS_DIR})")
    parser.add_argument("--device", default=os.environ.get("FUSION_DEVICE"), help="cpu or cuda (default: auto)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true", help="also create a public gradio.live link")
    parser.add_argument("--batch", action=argparse.BooleanOptionalAction,
                        default={"1": True, "0": False}.get(os.environ.get("FUSION_BATCH", "")),
                        help="batch concurrent /predict calls through one encoder pass (default: on a GPU)")
    parser.add_argument("--cache-cleanup", type=int, metavar="SECONDS",
                        default=int(os.environ.get("FUSION_CACHE_CLEANUP", CACHE_CLEANUP_S)),
                        help="how often Gradio's copies of uploads and outputs older than 1.5 times this are "
                             f"deleted (default: {CACHE_CLEANUP_S})")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    paths = {Path(args.model).name: args.model} if args.model else shipped_models()  # a folder or a repo id
    try:
        service = FusionService(paths, device=args.device)
    except UserError as error:  # a model folder, repo id or device that cannot be used: one line, exit 2
        parser.exit(2, f"error: {error}\n")
    demo = build_demo(service, args.cache_cleanup, args.batch)
    gpu_host = service.device.type == "cuda"
    demo.queue(max_size=64, default_concurrency_limit=4 if gpu_host else 2)
    # A stop request (a Space restarting, `kill`) closes the server as Ctrl+C does, so the sessions' files go.
    signal.signal(signal.SIGTERM, stop_serving)
    try:
        # mcp_server: /predict is also an MCP tool (described by FusionService.predict_digit's docstring).
        demo.launch(server_name=args.host, server_port=args.port, share=args.share, max_file_size=MAX_FILE_BYTES,
                    theme=THEME, css=CSS, show_error=False, mcp_server=True, state_session_capacity=SESSION_CAPACITY)
    finally:
        service.close()
    # A request still running in a worker thread (a Teach training stops within one epoch) would otherwise be
    # joined, and torch's thread pools torn down under it, at interpreter exit: the server has stopped.
    logging.shutdown()
    os._exit(0)


def stop_serving(signum, frame):
    """SIGTERM: Gradio's launch stops serving on a KeyboardInterrupt in the main thread."""
    raise KeyboardInterrupt
