"""Fusion Lens: image, speech and text through pretrained encoders, fused with explanations.

    import fusion
    model = fusion.load_model()                 # the shipped digits model
    p = fusion.predict(model, image="digit.png", audio="seven.wav", text="it's a seven")
    p.label, p.modality_weights, p.contributions
"""

from .inputs import InputError
from .model import FusionModel, FusionOutput
from .predict import LoadedModel, Prediction, load_model, predict

__all__ = ["FusionModel", "FusionOutput", "InputError", "LoadedModel", "Prediction", "load_model", "predict"]
