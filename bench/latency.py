"""Latency of one request, per stage and end to end, against the naive pipeline in the same process.

    python bench/latency.py [--device cpu|cuda] [--runs 30] [--json bench/results/latency.json]

The request: a photo-like digit image (PNG file), 3 s of speech (WAV file), a 10-word sentence, through
the shipped default model with explanations (Shapley over all subsets). "Ours" is ``fusion.predict``:
Whisper on the clip's real frames, the digit crop at 128 px, the 7 Shapley coalitions in one fusion
pass over tokens computed once. The naive pipeline is what a straightforward implementation does:
audio padded to 30 s as Whisper's feature extractor does, the image at the full 224 px, encoders one
after another in fp32, and each subset's explanation re-running the encoders. The last line is
``RESULT device=<cpu|cuda> p50_ms=<ours> naive_p50_ms=<naive> ratio=<naive/ours>``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path

import numpy as np
import soundfile
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import fusion  # noqa: E402
from fusion.encoders import Tokens, load_encoder  # noqa: E402
from fusion.encoders.audio import N_SAMPLES_30S, SECONDS_PER_TOKEN, log_mel  # noqa: E402
from fusion.inputs import load_audio, load_image  # noqa: E402
from fusion.views import counted_html, maps_html, what_if_html, words_html  # noqa: E402

EXAMPLES = ROOT / "assets" / "examples"
SENTENCE = "well I think the number you are looking for is seven"


def percentiles(times: list[float]) -> dict:
    ordered = sorted(times)
    return {"p50_ms": statistics.median(ordered), "p95_ms": ordered[int(0.95 * (len(ordered) - 1))]}


def measure(fn, runs: int, device) -> dict:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000)
    return percentiles(times)


def request_files(folder: Path) -> tuple[Path, Path]:
    """The example 7 as a PNG and its speech padded with silence to exactly 3 s."""
    speech, rate = soundfile.read(EXAMPLES / "speech_7.wav", dtype="float32")
    speech = np.pad(speech, (0, max(0, 3 * rate - len(speech))))[: 3 * rate]
    wav = folder / "speech_3s.wav"
    soundfile.write(wav, speech, rate, subtype="PCM_16")
    return EXAMPLES / "image_7.png", wav


def whisper_padded30(encoder, batch: list):
    """The standard Whisper pass: every clip zero-padded to 30 s (transformers' feature extractor's
    features, peak over all 3000 frames) -> (B, 1500, D), all tokens real."""
    waveforms = torch.zeros(len(batch), N_SAMPLES_30S)
    for row, (_, clip) in enumerate(batch):  # 16-kHz (rate, samples) pairs
        waveforms[row, :len(clip)] = torch.from_numpy(clip)
    with torch.inference_mode(), encoder.autocast():
        values = encoder(log_mel(waveforms.to(encoder.device))).float()
    mask = torch.ones(values.shape[:2], dtype=torch.bool, device=values.device)
    return Tokens(values, mask, values.mean(1), seconds_per_token=SECONDS_PER_TOKEN)


def naive_predict(model, full_image_encoder, grid, image_path, audio_path, text):
    """Decode, run each encoder at full size in fp32, then re-run encoders for every subset.

    The 224-px image's 7×7 feature map is average-pooled to the model's ``grid`` so the same fusion
    model can read it: the naive cost is the larger encoder pass, the fusion is identical.
    """
    image = load_image(image_path)
    audio = (16000, load_audio(audio_path)[0])

    def image_tokens():
        t = full_image_encoder.encode([image])
        fmap = t.values.transpose(1, 2).reshape(1, -1, *t.grid)
        values = F.adaptive_avg_pool2d(fmap, grid).flatten(2).transpose(1, 2)
        mask = torch.ones(values.shape[:2], dtype=torch.bool, device=values.device)
        return Tokens(values, mask, values.mean(1), grid=grid)

    def encode(modalities):
        tokens = {}
        if "image" in modalities:
            tokens["image"] = image_tokens()
        if "audio" in modalities:
            tokens["audio"] = whisper_padded30(model.encoders["audio"], [audio])
        if "text" in modalities:
            tokens["text"] = model.encoders["text"].encode([text])
        return tokens

    with torch.inference_mode():
        everything = model.fusion(encode(("image", "audio", "text")))
        for size in (1, 2, 3):
            for subset in combinations(("image", "audio", "text"), size):
                model.fusion(encode(subset))
    return everything


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "latency.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    model = fusion.load_model(device=args.device)
    device = model.device
    full_image = load_encoder("image", {**model.fusion.config["encoders"]["image"], "size": 224,
                                        "preprocessing": "center"}, device)
    with tempfile.TemporaryDirectory() as tmp:
        image_path, audio_path = request_files(Path(tmp))
        image, audio = load_image(image_path), (16000, load_audio(audio_path)[0])
        enc = model.encoders
        stages = {
            "decode image (PNG)": lambda: load_image(image_path),
            "decode + resample audio (WAV)": lambda: load_audio(audio_path),
            "preprocess image (digit crop, 128 px)": lambda: enc["image"].preprocess(image),
            "encoder: image": lambda: enc["image"].encode([image]),
            "encoder: audio (3 s, real frames)": lambda: enc["audio"].encode([audio]),
            "encoder: text": lambda: enc["text"].encode([SENTENCE]),
        }
        tokens = {"image": enc["image"].encode([image]), "audio": enc["audio"].encode([audio]),
                  "text": enc["text"].encode([SENTENCE])}

        @torch.inference_mode()
        def fuse(explain: bool):
            return model.fusion(tokens, contributions=explain)

        stages["fusion only"] = lambda: fuse(False)
        stages["fusion + Shapley (7 coalitions, 1 pass)"] = lambda: fuse(True)
        prediction = fusion.predict(model, image=image_path, audio=audio_path, text=SENTENCE)
        stages["page panels (counted, maps, words, what-if)"] = lambda: (
            counted_html(prediction), maps_html(prediction), words_html(prediction), what_if_html(prediction))
        rows = {name: measure(fn, args.runs, device) for name, fn in stages.items()}
        ours = measure(lambda: fusion.predict(model, image=image_path, audio=audio_path, text=SENTENCE), args.runs,
                       device)
        naive = measure(lambda: naive_predict(model, full_image, tokens["image"].grid, image_path, audio_path,
                                              SENTENCE),
                        max(10, args.runs // 3), device)

    ratio = naive["p50_ms"] / ours["p50_ms"]
    print(f"device={device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'}), "
          f"threads={torch.get_num_threads()}, runs={args.runs}, model={model.strategy}")
    print(f"{'stage':<44}{'p50 ms':>10}{'p95 ms':>10}")
    for name, r in rows.items():
        print(f"{name:<44}{r['p50_ms']:>10.1f}{r['p95_ms']:>10.1f}")
    print(f"{'end to end: fusion.predict (ours)':<44}{ours['p50_ms']:>10.1f}{ours['p95_ms']:>10.1f}")
    print(f"{'end to end: naive pipeline':<44}{naive['p50_ms']:>10.1f}{naive['p95_ms']:>10.1f}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": str(device), "stages": rows, "ours": ours, "naive": naive,
                               "ratio": ratio}, indent=1))
    print(f"RESULT device={device.type} p50_ms={ours['p50_ms']:.1f} naive_p50_ms={naive['p50_ms']:.1f} "
          f"ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
