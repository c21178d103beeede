"""Fixtures shared by the test modules."""

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from corpus import wait_until_serving

import fusion
from fusion.model import FusionModel, default_config

ROOT = Path(__file__).resolve().parent.parent
README_URL = "http://127.0.0.1:7860/"  # where the README says the app is once `python app.py` runs


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """A model folder for the digit labels with untrained fusion weights (real encoders load with it)."""
    folder = tmp_path_factory.mktemp("model")
    FusionModel(default_config([str(i) for i in range(10)], "attention")).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def model(model_dir):
    return fusion.load_model(model_dir, device="cpu")


class RunningApp:
    """``python app.py`` as the README runs it: a subprocess, the repository as working folder, the
    environment unchanged. ``log`` collects what the server prints, line by line. ``args``: options of the
    README's (a second server on ``--port``)."""

    def __init__(self, *args: str):
        port = int(args[args.index("--port") + 1]) if "--port" in args else 7860
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                pytest.fail(f"port {port} is taken: stop whatever runs there, the tests start the app on it")
        self.started = time.perf_counter()
        self.process = subprocess.Popen([sys.executable, "app.py", *args], cwd=ROOT, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
        self.log: list[str] = []
        # Keep reading what the server prints (the tests read its log lines; a full pipe would block it).
        threading.Thread(target=lambda: self.log.extend(line.rstrip("\n") for line in self.process.stdout),
                         daemon=True).start()
        self.url = README_URL.replace("7860", str(port))
        if not wait_until_serving(self.process, self.url):
            self.process.kill()
            pytest.fail("`python app.py` did not start:\n" + "\n".join(self.log[-30:]))

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="session")
def app_server():
    """The app started exactly as the README says, shared by the API, parity and browser tests."""
    app = RunningApp()
    yield app
    app.stop()


@pytest.fixture
def recording_api(monkeypatch):
    """huggingface_hub's HfApi replaced by ``RecordingApi`` (nothing leaves the machine) -> its call list."""
    import huggingface_hub
    from corpus import RecordingApi

    RecordingApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    return RecordingApi.calls
