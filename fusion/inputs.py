"""Decoding raw user inputs (paths, arrays, PIL images) into each encoder's canonical form, with limits:
one decode path for the app, the API, the CLI, evaluation and the feature cache of training.

Every problem a user can cause is an ``InputError`` whose message can be shown as is.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError
from .textnorm import apply_aliases, normalize, visible

MAX_IMAGE_PIXELS = 40_000_000  # ~ 7,000 x 6,000: more is refused before decoding (decompression bombs)
MAX_AUDIO_SECONDS = 30.0  # the Whisper encoder's window; longer clips are refused, read from the header
MAX_TEXT_CHARS = 2_000  # far beyond 128 tokens; longer texts are cut, with a note
MAX_FILE_BYTES = 20 * 1024 * 1024  # also the web app's upload limit, so every surface refuses alike
SAMPLE_RATE = 16_000  # what load_audio resamples to
TORCHVISION_FORMATS = {"JPEG", "PNG", "WEBP"}  # still pictures decoded by torchvision.io; the others by PIL
SILENCE_PEAK = 1e-4  # a clip whose loudest sample is below this carries no speech

Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


def check_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise InputError(f"The {what} file {path.name!r} does not exist.")
    if path.stat().st_size == 0:
        raise InputError(f"The {what} file {path.name!r} is empty.")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InputError(f"The {what} file {path.name!r} is larger than {MAX_FILE_BYTES // 2**20} MB.")
    return path


def decode_with_torchvision(path: Path, alpha: bool) -> np.ndarray:
    """JPEG, PNG or WebP -> H×W×3 (or ×4 with ``alpha``) array, turned upright as its EXIF tag says (phone
    photos). torchvision's libjpeg-turbo / libpng decoders take about half of PIL's time on a 12-MP photo."""
    from torchvision.io import ImageReadMode, decode_image

    mode = ImageReadMode.RGB_ALPHA if alpha else ImageReadMode.RGB
    return decode_image(str(path), mode=mode, apply_exif_orientation=True).permute(1, 2, 0).numpy()


def load_image(image) -> np.ndarray:
    """A path, PIL image or array -> RGB uint8 H×W×3 (alpha composited on white); an animation (GIF, WebP,
    APNG) gives its first frame."""
    from .encoders.image import to_rgb_array

    if isinstance(image, (str, os.PathLike)):
        path = check_file(Path(image), "image")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as opened:  # reads the header only
                    if opened.width * opened.height > MAX_IMAGE_PIXELS:
                        raise InputError(f"The image is too large ({opened.width}×{opened.height} pixels).")
                    alpha = opened.mode in ("RGBA", "LA", "PA") or "transparency" in opened.info
                    # torchvision refuses an animated WebP; PIL reads any animation's first frame.
                    if opened.format in TORCHVISION_FORMATS and not getattr(opened, "is_animated", False):
                        image = None
                    else:
                        image = ImageOps.exif_transpose(opened)  # a copy, decoded
                if image is None:
                    image = decode_with_torchvision(path, alpha)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise InputError("The image is too large to decode safely.") from None
        # Say what is wrong in the user's words, never which exception a decoder raised.
        except UnidentifiedImageError:
            raise InputError(f"Could not read {path.name!r} as an image: it is damaged, or not a picture "
                             "format this app knows (PNG, JPEG, WebP, BMP, GIF, TIFF).") from None
        except (OSError, SyntaxError, ValueError, RuntimeError):
            raise InputError(f"Could not read {path.name!r} as an image: the file is damaged or incomplete.") from None
    elif isinstance(image, Image.Image) and image.width * image.height > MAX_IMAGE_PIXELS:
        raise InputError(f"The image is too large ({image.width}×{image.height} pixels).")
    elif isinstance(image, np.ndarray) and image.ndim >= 2 and image.shape[0] * image.shape[1] > MAX_IMAGE_PIXELS:
        raise InputError(f"The image is too large ({image.shape[1]}×{image.shape[0]} pixels).")
    try:
        return to_rgb_array(image)
    except ValueError as error:
        raise InputError(f"Unusable image: {error}") from None


def check_duration(seconds: float) -> None:
    if seconds > MAX_AUDIO_SECONDS:
        raise InputError(f"The recording is {seconds:.1f} s long; at most {MAX_AUDIO_SECONDS:.0f} s can be used. "
                         "Please send a shorter clip.")


def load_audio_file(path) -> tuple[int, np.ndarray]:
    """An audio file -> (sample_rate, array in the file's own scale); its length is checked before decoding."""
    path = check_file(Path(path), "audio")
    try:
        with soundfile.SoundFile(path) as f:
            if f.frames > 0 and f.samplerate > 0:
                check_duration(f.frames / f.samplerate)
            return f.samplerate, f.read(dtype="float32", always_2d=False)
    except InputError:  # too long: refused, not retried by the slower decoder
        raise
    except (soundfile.LibsndfileError, RuntimeError, ValueError, OSError, TypeError):
        pass
    try:  # compressed formats libsndfile cannot read (mp3, m4a, webm): audioread, through ffmpeg or GStreamer
        import audioread

        # audioread's raw reader only retries WAV/AIFF/AU, which libsndfile just refused, and it leaves
        # its file handle open when it fails (one per bad upload, until the garbage collector runs).
        backends = [b for b in audioread.available_backends() if b.__module__ != "audioread.rawread"]
        with audioread.audio_open(str(path), backends=backends) as reader:
            if reader.duration:  # from the container's header: refused before any decoding
                check_duration(float(reader.duration))
            rate, channels = int(reader.samplerate), int(reader.channels)
            # Streams without a duration in their header are decoded to just past the limit, then checked.
            limit = int((MAX_AUDIO_SECONDS + 1) * rate) * channels
            chunks, decoded = [], 0
            for buffer in reader:  # 16-bit little-endian PCM, channels interleaved
                chunks.append(np.frombuffer(buffer, "<i2"))
                decoded += chunks[-1].size
                if decoded > limit:
                    break
        pcm = np.concatenate(chunks) if chunks else np.zeros(0, "<i2")
        samples = pcm[: pcm.size - pcm.size % channels].reshape(-1, channels).astype(np.float32) / 32768.0
    except InputError:
        raise
    except Exception:  # audioread and its backends raise many unrelated types for undecodable files
        raise InputError(f"Could not read {path.name!r} as audio.") from None
    check_duration(len(samples) / rate)
    return rate, samples[:, 0] if channels == 1 else samples


def load_audio(audio) -> tuple[np.ndarray, list[str]]:
    """A path or (sample_rate, array) -> (mono float32 16 kHz waveform, notes for the user).

    Raises InputError for unusable audio; silent audio is returned with a note (the caller drops it).
    """
    from .encoders.audio import load_audio as to_16k_mono

    notes = []
    if isinstance(audio, (str, os.PathLike)):
        audio = load_audio_file(audio)
    if not (isinstance(audio, (tuple, list)) and len(audio) == 2):
        raise InputError("Audio must be a file path or a (sample_rate, samples) pair.")
    rate, samples = audio
    samples = np.asarray(samples)
    if not np.issubdtype(samples.dtype, np.number) or samples.dtype.kind == "c":
        raise InputError(f"Audio samples must be real numbers, got {samples.dtype}.")
    if samples.size == 0:
        raise InputError("The audio clip is empty.")
    if np.issubdtype(samples.dtype, np.floating) and not np.isfinite(samples).all():
        notes.append("Audio contained NaN/Inf samples; they were treated as silence.")
    try:
        rate = int(rate)
    except (TypeError, ValueError):
        raise InputError(f"Invalid sample rate {rate!r}.") from None
    if not 1000 <= rate <= 384_000:
        raise InputError(f"Unsupported sample rate {rate} Hz.")
    check_duration(max(samples.shape[:2]) / rate)  # (samples,), (samples, channels) or (channels, samples)
    try:
        waveform = to_16k_mono((rate, samples))
    except ValueError as error:
        raise InputError(f"Unusable audio: {error}") from None
    return waveform, notes


def load_text(text) -> tuple[str, list[str]]:
    """Any text -> (cleaned text in the form the encoder reads (``fusion.textnorm.normalize``), notes); a text
    with nothing visible (whitespace, zero-width or control characters only) is no text, with a note."""
    if not isinstance(text, str):
        raise InputError("Text must be a string.")
    notes = []
    # Lone surrogates (from JSON escapes or undecodable command-line bytes) cannot be tokenized or encoded.
    valid = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if valid != text:
        notes.append("The text held characters that are not valid Unicode; they were replaced with “�”.")
    text = valid.replace("\x00", " ").strip()
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS]
        notes.append(f"Text longer than {MAX_TEXT_CHARS} characters was cut.")
    text = normalize(text).strip()  # stripped again: a text of variation selectors only is empty
    if text and not visible(text):
        return "", notes + ["The text has no visible characters, only zero-width or control ones, so it was left "
                            "out."]
    return text, notes


def is_silent(waveform: np.ndarray) -> bool:
    return waveform.size == 0 or float(np.abs(waveform).max()) < SILENCE_PEAK


def decode_image(image) -> tuple[np.ndarray, list[str]]:
    """The image modality's decoder: a path, PIL image or array -> (RGB uint8 H×W×3, notes)."""
    return load_image(image), []


def decode_audio(audio) -> tuple[tuple[int, np.ndarray] | None, list[str]]:
    """The audio modality's decoder: a path or (rate, array) -> ((16000, waveform) or None if silent, notes)."""
    waveform, notes = load_audio(audio)
    if is_silent(waveform):
        return None, notes + ["The audio is silent, so it was left out."]
    return (SAMPLE_RATE, waveform), notes


def decode_text(text, aliases: dict | None = None, labels=()) -> tuple[str | None, list[str]]:
    """The text modality's decoder: any text -> (normalised text or None if only whitespace, notes).

    aliases, labels: the model's other words for its classes and its labels (``fusion.model.decode_options``),
    applied by ``fusion.textnorm.apply_aliases``; none for a model whose config has no ``text_aliases``.
    """
    cleaned, notes = load_text(text)
    return apply_aliases(cleaned, aliases, labels) or None, notes


def present_inputs(values: dict) -> dict:
    """{modality: raw value} without the absent ones: None, or a blank text (an empty text box)."""
    return {m: v for m, v in values.items() if v is not None and not (isinstance(v, str) and not v.strip())}
