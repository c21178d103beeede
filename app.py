"""Fusion Lens — show it, say it, type it: webcam + microphone + text, fused, with what counted.

    python app.py [--model DIR] [--device cpu|cuda] [--host 0.0.0.0] [--port 7860] [--share]

Environment (for Hugging Face Spaces): FUSION_MODEL, FUSION_DEVICE; gradio's own GRADIO_SERVER_NAME /
GRADIO_SERVER_PORT. Layout and wiring only: the handlers live in ``fusion.serving``.
"""

try:  # ZeroGPU: `spaces` must be imported before anything touches CUDA
    import spaces

    gpu = spaces.GPU
except ImportError:
    def gpu(fn):
        return fn

import argparse
import logging
import os
from pathlib import Path

import gradio as gr

from fusion.serving import MODELS_DIR, FusionService, audio_length_validator, shipped_models

EXAMPLES_DIR = Path(__file__).parent / "assets" / "examples"
INTRO = """# Fusion Lens — show it, say it, type it
Hold a handwritten digit up to the webcam, **say** a number, **type** one — any of the three is enough.
Three pretrained encoders (EfficientNet-Lite0, Whisper base, MiniLM) feed a trained fusion model (four
strategies to choose from); the right side shows the prediction and **how much each input counted**. Try a
conflict (show 3, say “eight”) or drag a *corrupt* slider and watch the weights move."""
CSS = ".compact-row {gap: 8px; align-items: center} footer {display: none !important}"


def build_demo(service: FusionService) -> gr.Blocks:
    strategies = list(service.models)
    on_gpu = service.device.type == "cuda"
    with gr.Blocks(title="Fusion Lens", delete_cache=(600, 900)) as demo:
        gr.Markdown(INTRO)
        with gr.Tab("Fuse"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=5, min_width=320):
                    # Not mirrored: a mirrored capture would hand the model a flipped digit.
                    image = gr.Image(sources=["webcam", "upload"], type="numpy", label="Show a digit", height=220,
                                     webcam_options=gr.WebcamOptions(
                                         mirror=False, constraints={"video": {"width": {"ideal": 640},
                                                                              "height": {"ideal": 480}}}))
                    audio = gr.Audio(sources=["microphone", "upload"], type="numpy", label="Say a number (≤ 10 s)")
                    text = gr.Textbox(label="Type it", placeholder="e.g. “it's a seven”", max_length=2000, lines=1)
                    with gr.Row(elem_classes="compact-row"):
                        with gr.Column(min_width=100):
                            use_image = gr.Checkbox(True, label="use image")
                            corrupt_image = gr.Slider(0, 1, 0, step=0.1, label="corrupt: noise + blur")
                        with gr.Column(min_width=100):
                            use_audio = gr.Checkbox(True, label="use audio")
                            corrupt_audio = gr.Slider(0, 1, 0, step=0.1, label="corrupt: noise")
                        with gr.Column(min_width=100):
                            use_text = gr.Checkbox(True, label="use text")
                            corrupt_text = gr.Slider(0, 1, 0, step=0.1, label="corrupt: typos")
                    with gr.Row(elem_classes="compact-row"):
                        strategy = gr.Dropdown(strategies, value=service.default, label="Fusion strategy", scale=2)
                        fuse = gr.Button("Fuse", variant="primary", scale=1, elem_id="fuse-button")
                with gr.Column(scale=7, min_width=420):
                    with gr.Tab("Explanation"):
                        with gr.Row(equal_height=True):
                            label = gr.Label(num_top_classes=3, label="Prediction", elem_id="prediction", scale=2,
                                             min_width=150)
                            chart = gr.Image(label="How much each modality counted", interactive=False, scale=5,
                                             elem_id="weights-chart", buttons=[], height=230)
                        with gr.Row(equal_height=True):
                            crop_map = gr.Image(label="Image regions (what the network saw)", interactive=False,
                                                height=190, buttons=[], scale=2, min_width=150)
                            original_map = gr.Image(label="Your picture", interactive=False, height=190, buttons=[],
                                                    scale=2, min_width=150)
                            audio_map = gr.Image(label="Moments in the audio", interactive=False, height=190,
                                                 buttons=[], scale=5, elem_id="audio-map")
                        with gr.Row(equal_height=True):
                            words = gr.HighlightedText(label="Words (darker = more weight)", show_legend=False,
                                                       elem_id="words", scale=1)
                            what_if = gr.Dataframe(headers=["only these modalities", "prediction", "confidence"],
                                                   label="What if a modality were missing?", interactive=False,
                                                   scale=1, max_height=190)
                        info = gr.Markdown(elem_id="info")
                    with gr.Tab("Compare strategies"):
                        compare = gr.Button("Run every strategy on these inputs")
                        compare_table = gr.Dataframe(headers=["strategy", "prediction", "confidence", "weights",
                                                              "contributions", "ms"], interactive=False)
                        compare_chart = gr.Image(label="Side by side", interactive=False, buttons=[])

            inputs = [image, audio, text, use_image, use_audio, use_text, corrupt_image, corrupt_audio, corrupt_text]
            outputs = [label, chart, crop_map, original_map, audio_map, words, what_if, info]
            fuse.click(gpu(service.fuse), [strategy, *inputs], outputs, validator=audio_length_validator(2),
                       time_limit=60, api_visibility="private")
            compare.click(gpu(service.compare), inputs, [compare_table, compare_chart],
                          validator=audio_length_validator(1), time_limit=120, api_visibility="private")
            # Gradio delivers None if Fuse is pressed before a recording finished uploading: keep it disabled.
            audio.start_recording(lambda: gr.Button(interactive=False), None, fuse, queue=False,
                                  api_visibility="private")
            audio.change(lambda: gr.Button(interactive=True), None, fuse, queue=False, api_visibility="private")

            examples = service.examples(EXAMPLES_DIR)
            if examples:
                gr.Examples(examples, [image, audio, text], outputs, fn=gpu(service.fuse_example),
                            cache_examples="lazy" if os.environ.get("FUSION_CACHE_EXAMPLES", "1") == "1" else False,
                            label="Examples (the last ones are conflicts)", examples_per_page=8)

        with gr.Tab("About"):
            gr.Markdown(service.about_markdown())
            plots = service.report_plots()
            if plots:
                gr.Gallery(plots, label="Evaluation of the shipped model", columns=3, height=320)

        # The programmatic endpoint: (image, audio, text) -> Prediction.to_dict() as JSON.
        api_result = gr.JSON(visible=False)
        api_button = gr.Button(visible=False)
        if on_gpu:
            api_button.click(gpu(service.api_predict_batch), [image, audio, text], api_result, api_name="predict",
                             batch=True, max_batch_size=16, time_limit=60)
        else:
            api_button.click(service.api_predict, [image, audio, text], api_result, api_name="predict",
                             time_limit=60)
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.environ.get("FUSION_MODEL"),
                        help=f"a model folder to serve (default: every model under {MODELS_DIR})")
    parser.add_argument("--device", default=os.environ.get("FUSION_DEVICE"), help="cpu or cuda (default: auto)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true", help="also create a public gradio.live link")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    paths = {Path(args.model).name: Path(args.model)} if args.model else shipped_models()
    service = FusionService(paths, device=args.device)
    demo = build_demo(service)
    on_gpu = service.device.type == "cuda"
    demo.queue(max_size=64, default_concurrency_limit=4 if on_gpu else 2)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, max_file_size="20mb",
                theme=gr.themes.Soft(), css=CSS, show_error=False)


if __name__ == "__main__":
    main()
