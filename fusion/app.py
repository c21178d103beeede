"""Fusion Lens — show it, say it, type it: webcam + microphone + text, fused, with what counted.

    python app.py [--model DIR] [--device cpu|cuda] [--host 0.0.0.0] [--port 7860] [--share]
    fusion-lens ...                  (the same, once the package is installed)

Environment (for Hugging Face Spaces): FUSION_MODEL, FUSION_DEVICE; gradio's own GRADIO_SERVER_NAME /
GRADIO_SERVER_PORT. Layout and wiring only: the handlers live in ``fusion.serving``.
"""

try:  # ZeroGPU: `spaces` must be imported before anything touches CUDA
    import spaces

    gpu = spaces.GPU(duration=60)  # the longest a request may hold the GPU (a Compare runs four models)
except ImportError:
    def gpu(fn):
        return fn

import argparse
import functools
import logging
import os
from pathlib import Path

import gradio as gr

from . import modalities as registry
from .errors import UserError
from .inputs import MAX_FILE_BYTES
from .pipeline import ASSETS_DIR, MODELS_DIR
from .serving import FusionService, shipped_models
from .views import CSS as VIEWS_CSS

EXAMPLES_DIR = ASSETS_DIR / "examples"
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
  args[args.length - 1] = Boolean(video && video.srcObject && args[IMAGE] == null);
  return args;
}"""
SCROLL_TO_RESULT_JS = """() => {
  if (window.innerWidth < 900) document.querySelector('#prediction')?.scrollIntoView({behavior: 'smooth'});
}"""


def build_demo(service: FusionService) -> gr.Blocks:
    strategies = list(service.models)
    on_gpu = service.device.type == "cuda"
    with gr.Blocks(title="Fusion Lens", delete_cache=(600, 900), analytics_enabled=False,
                   fill_width=True) as demo:
        gr.Markdown(INTRO)
        with gr.Tab("Fuse"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=4, min_width=300):
                    widgets = {m: registry.modality(m).widget() for m in service.modalities}
                    with gr.Row(elem_classes="compact-row"):
                        strategy = gr.Dropdown(strategies, value=service.default, label="Fusion strategy", scale=2,
                                               min_width=140)
                        fuse = gr.Button("Fuse", variant="primary", scale=1, min_width=100, elem_id="fuse-button")
                    with gr.Accordion("Leave out or corrupt an input (re-fuses when you let go)", open=True):
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
                    with gr.Tab("Compare strategies"):
                        compare = gr.Button("Run every strategy on these inputs", elem_id="compare-button")
                        compare_table = gr.HTML(elem_id="compare")

            webcam_live = gr.Checkbox(False, visible=False)
            values = list(widgets.values())
            inputs = [*values, *uses, *corrupts]
            texts = [w for w in values if isinstance(w, gr.Textbox)]
            recorders = [w for w in values if isinstance(w, gr.Audio)]
            # Tells the server about a running webcam with no photo (+1: the strategy comes first).
            webcam_js = WEBCAM_JS.replace("IMAGE", str(1 + service.modalities.index("image"))) \
                if "image" in widgets else None
            outputs = [label, info, counted, maps, words, what_if]
            # Uploads reach the handlers unprocessed (their file path): fusion.inputs decodes and checks them.
            # One small progress timer on the prediction: animating all six panels costs the browser CPU time
            # the model needs on a small machine.
            progress = {"show_progress": "minimal", "show_progress_on": [label]}
            gr.on([fuse.click] + [t.submit for t in texts], gpu(service.fuse), [strategy, *inputs, webcam_live],
                  outputs, js=webcam_js, preprocess=False, time_limit=60, api_visibility="private", **progress,
                  ).then(None, js=SCROLL_TO_RESULT_JS)
            gr.on([c.release for c in corrupts] + [u.input for u in uses] + [strategy.input],
                  gpu(functools.partial(service.fuse, quiet_when_empty=True)), [strategy, *inputs, webcam_live],
                  outputs, js=webcam_js, preprocess=False, time_limit=60, api_visibility="private", **progress)
            report.click(gpu(service.report), [strategy, *inputs], report_file, preprocess=False, time_limit=60,
                         api_visibility="private")
            compare.click(gpu(service.compare), inputs, compare_table, preprocess=False, time_limit=120,
                          api_visibility="private")
            # Gradio delivers None if Fuse is pressed before a recording finished uploading: keep it disabled.
            for recorder in recorders:
                recorder.start_recording(lambda: gr.Button(interactive=False), None, fuse, queue=False,
                                         api_visibility="private")
                recorder.change(lambda: gr.Button(interactive=True), None, fuse, queue=False, api_visibility="private")

            examples, example_labels = service.examples(EXAMPLES_DIR)
            if examples:
                gr.Examples(examples, values, outputs, fn=gpu(service.fuse_example),
                            cache_examples=True, cache_mode="lazy", preprocess=False, example_labels=example_labels,
                            label="Examples (click one; the last two are conflicts)", examples_per_page=8)

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

        # The programmatic endpoint (and MCP tool): (image, audio, text) -> Prediction.to_dict() as JSON.
        if set(API_INPUTS) <= set(widgets):
            api_inputs, api_result = [widgets[m] for m in API_INPUTS], gr.JSON(visible=False)
            api_button = gr.Button(visible=False)
            if on_gpu:
                api_button.click(gpu(service.predict_digit_batch), api_inputs, api_result, api_name="predict",
                                 batch=True, max_batch_size=16, time_limit=60, preprocess=False)
            else:
                api_button.click(service.predict_digit, api_inputs, api_result, api_name="predict", time_limit=60,
                                 preprocess=False)
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(prog="fusion-lens", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.environ.get("FUSION_MODEL"),
                        help=f"a model folder or hub repo id to serve (default: every model under {MODELS_DIR})")
    parser.add_argument("--device", default=os.environ.get("FUSION_DEVICE"), help="cpu or cuda (default: auto)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true", help="also create a public gradio.live link")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    paths = {Path(args.model).name: args.model} if args.model else shipped_models()  # a folder or a repo id
    try:
        service = FusionService(paths, device=args.device)
    except UserError as error:  # a model folder, repo id or device that cannot be used: one line, exit 2
        parser.exit(2, f"error: {error}\n")
    demo = build_demo(service)
    on_gpu = service.device.type == "cuda"
    demo.queue(max_size=64, default_concurrency_limit=4 if on_gpu else 2)
    # mcp_server: /predict is also an MCP tool (described by FusionService.predict_digit's docstring).
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, max_file_size=MAX_FILE_BYTES,
                theme=THEME, css=CSS, show_error=False, mcp_server=True)
