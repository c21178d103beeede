"""Good and bad inputs shared by the input, parity and app tests (and bench/browser.py): files as bytes,
the checks that a message is fit for a user (no exception names, no traceback), a fake camera's clip, and
the page's own events sent as the page sends them (also used by bench/load.py)."""

import io
import json
import re
import shutil
import struct
import tempfile
import time
import zlib
from pathlib import Path

import httpx
import numpy as np
import soundfile
from PIL import Image

LABELS = [str(i) for i in range(10)]
RATE = 16000
TONE = (0.3 * np.sin(2 * np.pi * 220 * np.arange(RATE) / RATE)).astype(np.float32)  # 1 s
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
TEXT_FILE = b"Dear user,\nthis is a plain text file, not a picture and not a recording.\n"
# Names of exception classes (ours or a library's) and traceback text: none may reach the user.
INTERNALS = re.compile(r"Traceback|File \"|\b[A-Z]\w*(Error|Exception|Warning)\b|<class |\[Errno")


def digit() -> Image.Image:
    image = Image.new("RGB", (96, 96), "white")
    image.paste((20, 20, 20), (42, 14, 54, 82))
    return image


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def wav(samples, rate: int = RATE, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, subtype=subtype, format="WAV")
    return buffer.getvalue()


def wav_claiming_hours() -> bytes:
    """A valid 16-bit mono WAV header whose RIFF and data sizes claim ~37 hours, then 1 s of samples."""
    claimed = 0xFFFF_FF00  # the largest a RIFF size field holds: 37 hours at 16 kHz, 16-bit
    fmt = struct.pack("<HHIIHH", 1, 1, RATE, RATE * 2, 2, 16)
    header = (b"RIFF" + struct.pack("<I", claimed + 36) + b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
              + b"data" + struct.pack("<I", claimed))
    return header + (TONE * 32767).astype("<i2").tobytes()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(side: int = 20_000) -> bytes:
    """A valid 1-bit side×side PNG of zeros, written row by row: ~50 kB on disk, never 400 MP in memory."""
    compressor, row = zlib.compressobj(9), bytes(1 + side // 8)  # filter byte + 1 bit per pixel
    pixels = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
            + png_chunk(b"IDAT", pixels) + png_chunk(b"IEND", b""))


def transparent_digit() -> Image.Image:
    image = digit().convert("RGBA")
    alpha = np.full((96, 96), 255, np.uint8)
    alpha[:, :30] = 0  # a fully transparent band, composited on white
    image.putalpha(Image.fromarray(alpha))
    return image


def page_events(url: str) -> dict[str, int]:
    """{elem_id of the button or box an event starts from: its fn_index} of the page's events; where one
    element starts several (Fuse also hides the report link), the first registered, its own."""
    config = httpx.get(f"{url}config", timeout=30).json()
    elem = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    events = {}
    for dep in config["dependencies"]:
        for target, _ in dep["targets"]:
            if elem.get(target):
                events.setdefault(elem[target], dep["id"])
    return events


def run_event(url: str, fn_index: int, data: list, session: str) -> tuple[list[str], dict]:
    """One page event through Gradio's queue, as the page sends it -> (what the page would show: warnings and
    the error of a refused event, the last message)."""
    join = httpx.post(f"{url}gradio_api/queue/join", json={"data": data, "fn_index": fn_index,
                                                           "session_hash": session, "event_data": None}, timeout=30)
    assert join.status_code == 200, join.text
    warnings, last = [], {}
    with httpx.stream("GET", f"{url}gradio_api/queue/data", params={"session_hash": session}, timeout=120) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            last = json.loads(line[5:])
            if last.get("msg") == "log":
                warnings.append(last["log"])
            if last.get("msg") == "process_completed":
                if not last.get("success"):
                    warnings.append(last["output"]["error"])
                break
    return warnings, last


def upload(url: str, path: Path) -> str:
    with path.open("rb") as f:
        return httpx.post(f"{url}gradio_api/upload", files=[("files", (path.name, f))], timeout=30).json()[0]


def uploaded(path) -> str:
    """``path`` copied into Gradio's upload folder, in a folder of its own, as an upload through the page
    lands: the only place (with the app's examples) a handler opens a file from."""
    from gradio.utils import get_upload_folder

    folder = Path(get_upload_folder())
    folder.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(dir=folder)) / Path(path).name
    shutil.copyfile(path, target)
    return str(target)


def assert_user_facing(message: str, phrase: str) -> None:
    assert phrase.lower() in message.lower(), message
    assert not INTERNALS.search(message), f"internals in the user's message: {message!r}"


FILES = {  # file name -> (content, given as which modality, "ok" or a phrase of the message)
    "truncated.png": (lambda: encoded(digit())[:80], "image", "damaged or incomplete"),
    "truncated.jpg": (lambda: encoded(digit(), "JPEG")[:300], "image", "damaged or incomplete"),
    "paper.pdf (as image)": (lambda: PDF, "image", "not a picture format"),
    "notes.txt (as image)": (lambda: TEXT_FILE, "image", "not a picture format"),
    "one_pixel.png": (lambda: encoded(Image.new("RGB", (1, 1), "gray")), "image", "ok"),
    "cmyk.jpg": (lambda: encoded(digit().convert("CMYK"), "JPEG"), "image", "ok"),
    "gray16.png": (lambda: encoded(Image.fromarray(np.asarray(digit().convert("L"), np.uint16) * 257)),
                   "image", "ok"),
    "palette.png": (lambda: encoded(digit().convert("P", palette=Image.Palette.ADAPTIVE, colors=4)), "image", "ok"),
    "transparent.png": (lambda: encoded(transparent_digit()), "image", "ok"),
    # A valid header, then bytes that are no recording: they decode to (noise) samples.
    "garbage.wav": (lambda: wav(TONE)[:44] + bytes(range(256)) * 8, "audio", "ok"),
    "truncated.wav": (lambda: wav(TONE)[:30], "audio", "as audio"),
    "paper.pdf (as audio)": (lambda: PDF, "audio", "as audio"),
    "notes.txt (as audio)": (lambda: TEXT_FILE, "audio", "as audio"),
    "empty.wav": (lambda: b"", "audio", "is empty"),
    "one_sample.wav": (lambda: wav(TONE[4:5]), "audio", "ok"),
    "u8.wav": (lambda: wav(TONE, subtype="PCM_U8"), "audio", "ok"),
    "pcm24.wav": (lambda: wav(TONE, subtype="PCM_24"), "audio", "ok"),
    "float32.wav": (lambda: wav(TONE, subtype="FLOAT"), "audio", "ok"),
    "stereo.wav": (lambda: wav(np.stack([TONE, -0.5 * TONE], 1)), "audio", "ok"),
    "six_channels.wav": (lambda: wav(np.tile(TONE[:, None], (1, 6)) * np.linspace(0.2, 1, 6)), "audio", "ok"),
    "8khz.wav": (lambda: wav(TONE[::2], 8000), "audio", "ok"),
    "96khz.wav": (lambda: wav(np.repeat(TONE, 6), 96000), "audio", "ok"),
    "silent.wav": (lambda: wav(np.zeros(RATE, np.float32)), "audio", "silent"),
}




def silent_flac(seconds: int) -> bytes:
    """A FLAC of silence: an hour of it is ~180 kB on disk (and 230 MB as float32 once decoded)."""
    buffer = io.BytesIO()
    with soundfile.SoundFile(buffer, "w", RATE, 1, format="FLAC", subtype="PCM_16") as f:
        for _ in range(seconds // 60):
            f.write(np.zeros(60 * RATE, np.float32))
        f.write(np.zeros((seconds % 60) * RATE, np.float32))
    return buffer.getvalue()


def opus(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, RATE, format="OGG", subtype="OPUS")
    return buffer.getvalue()


EXTRA_FILES = {  # more of what users send, named as they would be
    "fake.png": (lambda: PDF, "image", "not a picture format"),
    "empty.png": (lambda: b"", "image", "is empty"),
    "notes.wav": (lambda: TEXT_FILE, "audio", "as audio"),
    "float64.wav": (lambda: wav(TONE.astype(np.float64), subtype="DOUBLE"), "audio", "ok"),
    "nan.wav": (lambda: wav(np.full(RATE, np.nan, np.float32), subtype="FLOAT"), "audio", "silent"),
    "hour.flac": (lambda: silent_flac(3600), "audio", "at most 30 s"),
    "long.opus": (lambda: opus(np.tile(TONE, 40)), "audio", "at most 30 s"),
    "tone.opus": (lambda: opus(TONE), "audio", "ok"),
    "huge.png": (lambda: bomb_png(8000), "image", "too large"),
    "digit.webp": (lambda: encoded(digit(), "WEBP"), "image", "ok"),
    "digit.bmp": (lambda: encoded(digit(), "BMP"), "image", "ok"),
    "digit.gif": (lambda: encoded(digit(), "GIF"), "image", "ok"),
}

TEXTS = {  # id -> text
    "seven": "it's a seven",
    "empty": "",
    "whitespace": "  \n\t ",
    "lone surrogate": "seven \ud800",
    "cut by the encoder": "blah " * 390 + "the answer is three",
    "10k characters": "nine " * 2000,
    "emoji": "🙂 sev🔢en ✨👍🏽",
    "arabic": "هذا الرقم سبعة",
    "markup": "<script>alert(1)</script>",
    "NUL": "eight\x00",
}


def write_y4m(image_path: Path, out: Path, width: int = 640, height: int = 480, frames: int = 10,
              noise: float = 0.0) -> Path:
    """A Y4M clip of a still picture for Chromium's fake camera (header says C420: Chromium rejects the
    C420mpeg2 that ffmpeg writes). noise: the standard deviation of a sensor-like noise drawn anew for
    each frame, so that, as with a real camera, no two frames are equal."""
    rgb = np.asarray(Image.open(image_path).convert("RGB").resize((width, height)), dtype=np.float32)
    rng = np.random.default_rng(0)
    clip = []
    for _ in range(frames):
        frame = rgb + rng.normal(0, noise, rgb.shape) if noise else rgb
        r, g, b = frame[..., 0], frame[..., 1], frame[..., 2]
        y = 0.257 * r + 0.504 * g + 0.098 * b + 16
        u = (-0.148 * r - 0.291 * g + 0.439 * b + 128).reshape(height // 2, 2, width // 2, 2).mean((1, 3))
        v = (0.439 * r - 0.368 * g - 0.071 * b + 128).reshape(height // 2, 2, width // 2, 2).mean((1, 3))
        clip.append(b"".join(np.clip(p, 0, 255).astype(np.uint8).tobytes() for p in (y, u, v)))
    out.write_bytes(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420\n".encode() + b"FRAME\n".join([b""] + clip))
    return out


def open_app(context, url: str, ready: str = "#fuse-button"):
    """A new page of ``context`` on a Gradio app at ``url``, once ``ready`` (a selector) is drawn.

    Not Playwright's "networkidle": a page with per-session state keeps a heartbeat request open for as
    long as it lives, so the network is never idle.
    """
    page = context.new_page()
    page.goto(url, wait_until="load")
    page.wait_for_selector(ready, state="visible", timeout=60000)
    return page


def start_webcam(page) -> None:
    """On the app's page: switch the webcam on and wait for its first frame."""
    page.locator("#image-input").get_by_text("Click to Access Webcam").click()
    page.wait_for_function("() => { const v = document.querySelector('video');"
                           " return v && v.readyState >= 2 && v.videoWidth > 0; }", timeout=30000)


def capture_and_record(page, seconds: float = 2.5) -> None:
    """On the app's page with the webcam on: take the photo, record ``seconds`` and wait for the upload."""
    page.get_by_label("capture photo").click()
    page.wait_for_selector("#image-input img", timeout=30000)
    page.get_by_role("button", name="Record", exact=True).click()
    time.sleep(seconds)
    page.get_by_role("button", name="Stop", exact=True).first.click()
    page.wait_for_function("() => !document.querySelector('#fuse-button').disabled", timeout=30000)


def wait_until_serving(process, url: str, timeout: float = 180.0) -> bool:
    """Poll ``url`` until the app started as ``process`` answers (True), exits or ``timeout`` s pass (False).

    Asking the server, not reading its banner: a piped child's stdout is block-buffered (unless
    PYTHONUNBUFFERED is set), so "Running on local URL" can sit in its buffer long after it is ready.
    """
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    return False


def cache_repo(cache, repo_id: str, revision: str, files: dict, kind: str = "models"):
    """Lay out files ({name: bytes}) as huggingface_hub caches a snapshot, with refs/main -> revision."""
    repo = cache / f"{kind}--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    for name, data in files.items():
        (repo / "snapshots" / revision / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / "snapshots" / revision / name).write_bytes(data)
    return repo / "snapshots" / revision


class RecordingApi:
    """Stands in for huggingface_hub's ``HfApi``: records the calls, and the files an upload would send
    ({path in the folder: bytes}), instead of making them. ``calls`` is reset by the ``recording_api`` fixture."""

    calls: list = []

    def __init__(self, token=None):
        self.calls.append(("HfApi", token, {}))

    def create_repo(self, repo_id, **options):
        self.calls.append(("create_repo", repo_id, options))
        return f"https://huggingface.co/{'spaces/' if options.get('repo_type') == 'space' else ''}{repo_id}"

    def upload_folder(self, repo_id, folder_path, **options):
        files = {str(p.relative_to(folder_path)): p.read_bytes() for p in Path(folder_path).rglob("*") if p.is_file()}
        self.calls.append(("upload_folder", repo_id, {**options, "files": files}))
        return f"https://huggingface.co/{repo_id}/commit/0"


def shape_picture(path: Path, shape: str, seed: int) -> Path:
    """A photo-like drawing of a "circle", "triangle" or "square" (pen on paper, random size, place and tilt),
    or the "blank" paper alone -> ``path`` (PNG): the non-digit task the Teach tests and the README's
    walkthrough teach."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    size = 240
    picture = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(200, 250, 3)))
    draw = ImageDraw.Draw(picture)
    radius = rng.uniform(50, 95)
    cx, cy = rng.uniform(radius + 5, size - radius - 5, 2)
    turn = rng.uniform(0, 2 * np.pi)
    ink = tuple(int(v) for v in rng.integers(10, 70, 3))
    width = int(rng.integers(4, 10))
    if shape == "blank":
        pass
    elif shape == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], outline=ink, width=width)
    else:
        corners = 3 if shape == "triangle" else 4
        points = [(cx + radius * np.cos(turn + 2 * np.pi * k / corners), cy + radius * np.sin(turn + 2 * np.pi * k /
                                                                                              corners))
                  for k in range(corners)]
        draw.polygon(points, outline=ink, width=width)
    picture = picture.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 1.2))))
    noisy = np.asarray(picture, np.float32) + rng.normal(0, 4, (size, size, 3))
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path)
    return path
