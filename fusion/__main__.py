"""Command line: ``python -m fusion {predict,data,train,calibrate,evaluate,space,push,summarize} ...``
(``--help`` on each)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from .errors import InputError, OptionError, UserError


def cmd_predict(args) -> int:
    from .modalities import names
    from .pipeline import load_model, predict

    model = load_model(args.model, args.device)
    p = predict(model, **{m: getattr(args, m) for m in names()})
    if args.report:
        from .report import write_report

        for path in write_report(p, args.report):
            print(f"wrote {path}", file=sys.stderr)
    if args.json:
        print(json.dumps(p.to_dict()))
        return 0
    shown = p.label if p.label is not None else f"none: no {p.class_noun} recognised"
    print(f"prediction: {shown}   ({p.strategy} fusion of {', '.join(p.modalities)})")
    for label, prob in p.top(3):
        print(f"  {label:>8}  {prob:6.1%}")
    print(f"\n  {'modality':<9}{'weight':>8}{'contribution':>14}   alone says")
    for m in p.modalities:
        weight = "—" if p.modality_weights is None else f"{p.modality_weights[m]:.2f}"
        print(f"  {m:<9}{weight:>8}{p.contributions[m]:>+14.2f}   {p.alone(m)}")
    for note in p.notes:
        print(f"note: {note}")
    print(f"\n{p.timings_ms['total']:.0f} ms")
    return 0


def cmd_data(args) -> int:
    if args.name in ("examples", "sample"):
        from .data.examples import build_examples, build_sample

        if not args.source:
            raise InputError(f"data {args.name} needs --source, a folder built by `data digits`.")
        print((build_examples if args.name == "examples" else build_sample)(args.source, args.out))
        return 0
    if args.name == "checks":
        from .data.checks import build_checks

        paths = build_checks(args.out, seed=args.seed, size=args.size)
        for name, path in paths.items():
            print(f"{name}: {path}")
        return 0
    from .data.digits import build_digits

    paths = build_digits(args.out, seed=args.seed, size=args.size, hard=args.hard)
    for split, path in paths.items():
        print(f"{split}: {path}")
    return 0


def cmd_train(args) -> int:
    from .config import TrainConfig
    from .train import train

    cfg = TrainConfig(fusion=args.fusion, epochs=args.epochs, patience=args.patience, batch_size=args.batch_size,
                      lr=args.lr, weight_decay=args.weight_decay, consistency_weight=args.consistency_weight,
                      seed=args.seed,
                      image_size=args.image_size, image_preprocessing=args.image_preprocessing,
                      image_blocks=args.image_blocks or None, image_encoder=args.image_encoder,
                      audio_encoder=args.audio_encoder, text_encoder=args.text_encoder,
                      audio_layers=args.audio_layers or None, ema_decay=args.ema_decay, soup=args.soup,
                      text_aliases=args.text_aliases, negative_weight=args.negative_weight,
                      class_noun=args.class_noun, finetune=args.finetune, finetune_lr=args.finetune_lr)
    result = train(args.manifest, args.val, args.out, cfg, cache_dir=args.cache, device=args.device or "cpu")
    print(f"saved {args.out} (best val mean subset accuracy {result['best_val']:.4f})")
    return 0


def cmd_calibrate(args) -> int:
    from .train import recalibrate

    print(json.dumps({"calibration": recalibrate(args.model, args.val, cache_dir=args.cache,
                                                 device=args.device or "cpu")}, indent=1))
    return 0


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate

    metrics = evaluate(args.model, args.manifest, args.report, cache_dir=args.cache, device=args.device or "cpu",
                       robustness=not args.no_robustness)
    print(json.dumps({k: metrics[k] for k in ("subsets", "mean_relative_robustness", "mean_relative_robustness_pairs",
                                                 "conflict")}, indent=1))
    print(f"report: {args.report}/report.md")
    return 0


def cmd_summarize(args) -> int:
    from pathlib import Path

    from .evaluate import summary_table

    reports = {}
    for folder in args.reports:
        metrics = Path(folder) / "metrics.json"
        if not metrics.is_file():
            raise InputError(f"{metrics} does not exist: run `evaluate` first.")
        data = json.loads(metrics.read_text())
        reports[data["strategy"]] = data
    print(summary_table(reports))
    return 0


def cmd_space(args) -> int:
    from .space import build_space, push_space

    folder = build_space(args.dir, title=args.title, hardware=args.hardware)
    print(f"wrote the Space folder {folder} (cd there and run `python app.py` to try it)")
    if args.push:
        print(f"pushed: {push_space(folder, args.push, private=args.private)}")
    return 0


def cmd_push(args) -> int:
    from .hub import read_reports, reports_beside
    from .model import FusionModel

    reports = read_reports(args.report) if args.report else reports_beside(args.model)
    model = FusionModel.from_pretrained(args.model)
    print(f"pushed: {model.push_to_hub(args.repo, private=args.private, reports=reports)}")
    return 0


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), like every other user error."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def whole_number(low: int, high: int):
    """An argparse type: a whole number from ``low`` to ``high`` (bounded, so no option can ask for absurd
    memory or time)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}, got {text}")
        return value
    return parse


def bounded(name: str):
    """The argparse type of the TrainConfig setting ``name``, with its bounds (``WHOLE_NUMBER_BOUNDS``)."""
    from .config import WHOLE_NUMBER_BOUNDS

    return whole_number(*WHOLE_NUMBER_BOUNDS[name])


def add_output_folder(parser: argparse.ArgumentParser, *flags, **kwargs) -> None:
    """An argument naming a folder the command writes; ``main`` checks it with ``check_output_folder`` first."""
    action = parser.add_argument(*flags, **kwargs)
    parser.set_defaults(output_folders=[*(parser.get_default("output_folders") or []), action])


def check_output_folder(path: str, name: str) -> None:
    """Refuse a folder that cannot be created and written (an existing file, a path under a file, /proc/x),
    before the command spends any time; what the check creates is removed again.

    name: how the user gave it ("--out"; a positional's name), for the message."""
    folder = Path(path)
    label = f"{name} {path}" if name.startswith("-") else path
    created = []
    try:
        existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
        if existing is not None and not existing.is_dir():
            where = "" if existing == folder else f" lies under {existing}, which"
            raise OptionError(f"{label}{where} is a file, not a folder.")
        created = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):  # a folder can exist and still refuse files
            pass
    except OSError as error:
        raise OptionError(f"{label}: cannot create or write that folder ({error.strerror or error}).") from None
    finally:
        for made in created:
            if made.is_dir():
                made.rmdir()


def parser() -> argparse.ArgumentParser:
    from .config import STRATEGY_NAMES, TEXT_ALIAS_SETS, TrainConfig
    from .encoders.whisper_weights import WHISPER_MODELS
    from .modalities import modality, names

    root = OneLineParser(prog="python -m fusion", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="predict from an image, an audio file and/or a text")
    p.add_argument("--model", help="model folder (default: the shipped digits model)")
    for name in names():  # one option per registered modality
        p.add_argument(f"--{name}", help="a file path" if modality(name).files else "the value itself")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_output_folder(p, "--report", metavar="DIR", help="also write the explanation there: prediction.json, the image "
                   "maps as PNG, report.html")
    p.add_argument("--device")
    p.set_defaults(run=cmd_predict)

    p = sub.add_parser("data", help="build the digits dataset, its check sets (real handwriting, inputs of no "
                       "digit, from sources the dataset never uses), or the app's examples / the test sample")
    p.add_argument("name", choices=["digits", "checks", "examples", "sample"])
    p.add_argument("--source", help="examples, sample: a folder built by `data digits` (its test split is used)")
    add_output_folder(p, "--out", required=True)
    p.add_argument("--seed", type=bounded("seed"), default=0)
    p.add_argument("--size", choices=["small", "full"], default="full")
    p.add_argument("--hard", action="store_true", help="digits: the AV-MNIST-style variant where no modality "
                   "suffices alone (PCA-reduced images, speech at -5 dB SNR, 50 %% character noise)")
    p.set_defaults(run=cmd_data)

    defaults = TrainConfig()
    p = sub.add_parser("train", help="train a fusion head on CSV manifests (image,audio,text,label)")
    p.add_argument("--manifest", required=True, help="a CSV manifest, or a project zip from the Teach tab")
    p.add_argument("--val", help="the validation manifest (default: a stratified fifth of --manifest)")
    p.add_argument("--fusion", choices=STRATEGY_NAMES, default=defaults.fusion)
    add_output_folder(p, "--out", required=True)
    p.add_argument("--epochs", type=bounded("epochs"), default=defaults.epochs)
    p.add_argument("--patience", type=bounded("patience"), default=defaults.patience,
                   help="stop after this many epochs without a better validation score")
    p.add_argument("--batch-size", type=bounded("batch_size"), default=defaults.batch_size)
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--weight-decay", type=float, default=defaults.weight_decay, help="AdamW's decoupled weight decay")
    p.add_argument("--consistency-weight", type=float, default=defaults.consistency_weight)
    p.add_argument("--ema-decay", type=float, default=defaults.ema_decay,
                   help="validate and save a moving average of the weights (window at most a fifth of the run); 0: off")
    p.add_argument("--seed", type=bounded("seed"), default=defaults.seed)
    p.add_argument("--soup", type=bounded("soup"), default=defaults.soup,
                   help="train N runs from one initialisation (seeds seed..seed+N-1) and average their weights")
    p.add_argument("--image-size", type=bounded("image_size"), default=defaults.image_size)
    p.add_argument("--image-preprocessing", choices=["digit", "center"], default=defaults.image_preprocessing,
                   help="'digit' finds and centres a handwritten digit; 'center' is a plain centre crop")
    p.add_argument("--image-blocks", type=whole_number(0, 15), default=defaults.image_blocks,
                   help="tokens from the first N EfficientNet blocks (1-15); 0: the final 1280-d features")
    p.add_argument("--image-encoder", default=defaults.image_encoder,
                   help="efficientnet-lite0, or hf:<repo id or folder> for a transformers vision backbone")
    p.add_argument("--audio-encoder", default=defaults.audio_encoder,
                   help=f"{', '.join(sorted(WHISPER_MODELS))}, or hf:<repo id or folder> for a transformers speech "
                   "backbone")
    p.add_argument("--text-encoder", default=defaults.text_encoder,
                   help="all-minilm-l6-v2, or hf:<repo id or folder> for a transformers text backbone")
    p.add_argument("--audio-layers", type=whole_number(0, 32), default=defaults.audio_layers,
                   help="tokens from the first N Whisper layers (base 1-6, tiny.en 1-4); 0: all of them")
    p.add_argument("--text-aliases", choices=TEXT_ALIAS_SETS,
                   help="a built-in task's other words for its classes, mapped in the text ('digits': oh, nought, "
                   "nil ... -> zero); the shipped digits models have them")
    p.add_argument("--negative-weight", type=float, default=defaults.negative_weight,
                   help="how strongly rows with an empty label (negatives) pull the model towards no class")
    p.add_argument("--class-noun", default=defaults.class_noun,
                   help="what the classes are, for saying none was recognised ('digit': no digit recognised)")
    p.add_argument("--finetune", metavar="MODALITY:N[,...]",
                   help="also train the last N blocks of those encoders (image: EfficientNet blocks, audio: Whisper "
                   "layers, text: MiniLM layers), e.g. image:1; the model folder gets only those blocks' weights")
    p.add_argument("--finetune-lr", type=float, default=defaults.finetune_lr,
                   help="learning rate of the fine-tuned blocks (default: a tenth of --lr)")
    add_output_folder(p, "--cache", help="feature cache folder (default: .features beside the manifest)")
    p.add_argument("--device")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("calibrate", help="fit a trained model folder's calibration (temperature, abstention "
                                         "thresholds) again on a validation manifest, in place")
    p.add_argument("--model", required=True)
    p.add_argument("--val", required=True)
    add_output_folder(p, "--cache", help="feature cache folder (default: .features beside the manifest)")
    p.add_argument("--device")
    p.set_defaults(run=cmd_calibrate)

    p = sub.add_parser("evaluate", help="evaluate a model folder and write a report")
    p.add_argument("--model", required=True)
    p.add_argument("--manifest", required=True)
    add_output_folder(p, "--report", required=True)
    p.add_argument("--no-robustness", action="store_true",
                   help="skip the corruption sweeps and conflict test (minutes: every input re-encoded 11 times)")
    add_output_folder(p, "--cache")
    p.add_argument("--device")
    p.set_defaults(run=cmd_evaluate)

    p = sub.add_parser("space", help="write a Hugging Face Space folder (app, package, models, front matter, LFS "
                       "attributes) and optionally upload it")
    add_output_folder(p, "dir", help="a new or empty folder")
    p.add_argument("--push", metavar="USER/NAME", help="then create the Space and upload the folder (token from "
                   "HF_TOKEN or `hf auth login`)")
    p.add_argument("--private", action="store_true")
    p.add_argument("--title", default="Fusion Lens")
    p.add_argument("--hardware", choices=("cpu", "zero-gpu", "gpu"), default="cpu",
                   help="cpu (default: CPU basic, PyTorch's CPU build), zero-gpu (ZeroGPU: Python 3.12.12, handlers "
                   "run under spaces.GPU) or gpu (a dedicated GPU: PyPI's CUDA torch)")
    p.set_defaults(run=cmd_space)

    p = sub.add_parser("push", help="upload a model folder to the Hugging Face Hub with a generated model card")
    p.add_argument("model", help="a model folder")
    p.add_argument("repo", metavar="USER/NAME")
    p.add_argument("--private", action="store_true")
    p.add_argument("--report", action="append", metavar="DIR",
                   help="an `evaluate` report folder for the card's model-index (repeatable; default: the reports "
                        "in reports/ beside the model folder that were made on it, as the shipped models keep theirs)")
    p.set_defaults(run=cmd_push)

    p = sub.add_parser("summarize", help="one markdown table from several evaluation reports")
    p.add_argument("reports", nargs="+", help="report folders written by `evaluate`")
    p.set_defaults(run=cmd_summarize)
    return root


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        for action in getattr(args, "output_folders", []):
            if getattr(args, action.dest) is not None:
                check_output_folder(getattr(args, action.dest), (action.option_strings or [action.dest.upper()])[0])
        return args.run(args)
    except UserError as error:  # anything else is a bug: its traceback is kept
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
