"""Fusion Lens: image, speech and text through pretrained encoders, fused with explanations.

    import fusion
    model = fusion.load_model()                 # the shipped digits model
    p = fusion.predict(model, image="digit.png", audio="seven.wav", text="it's a seven")
    p.label, p.modality_weights, p.contributions
"""

import importlib

from .errors import CheckpointError, InputError, UserError

# The model and predict path need torch and transformers: they load on first use, so `import fusion`
# (and the CLI's --help) does not pay for them.
_LAZY = {"FusionModel": ".model", "FusionOutput": ".model", "LoadedModel": ".pipeline", "Prediction": ".pipeline",
         "load_model": ".pipeline", "predict": ".pipeline"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CheckpointError", "FusionModel", "FusionOutput", "InputError", "LoadedModel", "Prediction", "UserError",
           "load_model", "predict"]
