"""Fixtures shared by the test modules."""

import pytest

import fusion
from fusion.model import FusionModel, default_config


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """A model folder for the digit labels with untrained fusion weights (real encoders load with it)."""
    folder = tmp_path_factory.mktemp("model")
    FusionModel(default_config([str(i) for i in range(10)], "attention")).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def model(model_dir):
    return fusion.load_model(model_dir, device="cpu")
