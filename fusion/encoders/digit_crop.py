"""Webcam preprocessing for digit images: find the digit, crop it and centre it the way MNIST is.

The same function runs when building training features and when serving, so a photo of ink on paper
and a clean MNIST digit end up looking alike: grey, light digit on a dark background, the digit's
longer side filling 20/28 of the frame and its centre of mass in the middle.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

WORK_SIDE = 256  # the search runs at about this size: enough detail for the output, and fast
MIN_CONTRAST = 24.0  # grey levels between ink and paper below which the picture counts as blank
MNIST_BOX = 20 / 28  # MNIST fits each digit in a 20×20 box of its 28×28 field
MIN_THRESHOLD = 0.3  # of the ink peak: Otsu alone can split faint paper texture from the paper
SPECK = 0.002  # connected ink regions under this fraction of the picture are specks
NEIGHBOURHOOD = 0.3  # other ink within this fraction of the digit's size is part of it (the bar of a 5)


def crop_digit(image: np.ndarray, size: int = 64) -> np.ndarray:
    """uint8 H×W×3 photo (or H×W grey) -> uint8 (size, size) grey, light digit on dark, MNIST-like."""
    return crop_digit_with_field(image, size)[0]


def crop_digit_with_field(image: np.ndarray, size: int = 64) -> tuple[np.ndarray, tuple[float, ...]]:
    """``crop_digit`` plus the field it shows: (top, left, bottom, right) in the input's pixels, the
    rectangle of the input that the size×size output covers (it may reach past the input's edges).

    Steps: greyscale at a working size; the background level is the median of the border pixels and
    the ink is whichever side of it deviates more, so the picture is inverted when the ink is dark;
    a coarse background (lighting gradient, paper tone) is subtracted; Otsu's threshold finds the ink,
    the largest connected region away from the frame edges (plus nearby pieces) is the digit; its box
    is cropped, scaled to 20/28 of ``size`` and placed by its centre of mass. When no ink stands out,
    the centre square of the (polarity-normalised) grey image is returned instead.
    """
    gray, factor = _work_gray(image, max(WORK_SIDE, 2 * size))
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    paper = _quantile(np.bincount(border, minlength=256), 0.5)
    hist = np.bincount(gray.ravel(), minlength=256)
    low, high = _quantile(hist, 0.005), _quantile(hist, 0.995)
    # Ink is the tail that strays further from the paper; without any, a bright picture is paper.
    light_ink = high - paper > paper - low if high - low > MIN_CONTRAST else paper < 128
    ink = gray.astype(np.float32) if light_ink else 255.0 - gray.astype(np.float32)
    signal = np.maximum(ink - _background(ink), 0.0)
    peak = _quantile(np.bincount(np.minimum(signal, 255).astype(np.uint8).ravel(), minlength=256), 0.999)
    if peak < MIN_CONTRAST:
        return _centre_square(ink, size, factor)
    signal = np.minimum(signal / peak, 1.0)
    threshold = max(_otsu(signal), MIN_THRESHOLD)
    box = _digit_box(signal > threshold)
    if box is None:
        return _centre_square(ink, size, factor)
    # Soft threshold: clears the paper's residual texture but keeps anti-aliased stroke edges.
    digit = np.clip((signal[box] - threshold / 2) / (1 - threshold / 2), 0.0, 1.0)
    out, top, left, scale = _place(digit, size)
    # Output pixel (y, x) shows work pixel (box.y0 + (y - top) / scale, ...): the field's corners.
    step = factor / scale
    y0, x0 = box[0].start * factor - top * step, box[1].start * factor - left * step
    return out, (y0, x0, y0 + size * step, x0 + size * step)


def _work_gray(image: np.ndarray, side: int) -> tuple[np.ndarray, int]:
    """Grey uint8 copy, reduced by an integer factor (fast box filter) to about ``side`` pixels,
    and that factor."""
    pil = Image.fromarray(np.ascontiguousarray(image))
    factor = max(1, max(pil.size) // side)
    if factor > 1:
        pil = pil.reduce(factor)
    return np.asarray(pil.convert("L")), factor


def _quantile(hist: np.ndarray, q: float) -> float:
    """The q-quantile of integer values 0..255 from their histogram (no sort: much faster)."""
    return float(np.searchsorted(np.cumsum(hist), q * hist.sum()))


def _background(ink: np.ndarray) -> np.ndarray:
    """Slowly varying background of an ink-bright image: a grey opening on a copy ~24 cells high
    removes the strokes, then it is smoothed and scaled back up."""
    h, w = ink.shape
    cell = max(1, min(h, w) // 24)
    small = ink[: h - h % cell, : w - w % cell].reshape(h // cell, cell, w // cell, cell).mean((1, 3))
    small = ndimage.gaussian_filter(ndimage.grey_opening(small, size=7, mode="nearest"), 1.0, mode="nearest")
    return np.asarray(Image.fromarray(small.astype(np.float32)).resize((w, h), Image.Resampling.BILINEAR))


def _otsu(values: np.ndarray, bins: int = 64) -> float:
    """Otsu's threshold of values in [0, 1]: maximises the between-class variance."""
    hist = np.bincount(np.minimum((values * bins).astype(np.int32), bins - 1).ravel(), minlength=bins)
    centres = (np.arange(bins) + 0.5) / bins
    weight = np.cumsum(hist)[:-1]
    total = hist.sum()
    first = np.cumsum(hist * centres)[:-1]
    mean_low = first / np.maximum(weight, 1)
    mean_high = (first[-1] + hist[-1] * centres[-1] - first) / np.maximum(total - weight, 1)
    between = weight * (total - weight) * (mean_low - mean_high) ** 2
    return float((np.argmax(between) + 1) / bins)


def _digit_box(mask: np.ndarray) -> tuple[slice, slice] | None:
    """Bounding box of the digit in a binary ink mask, or None when there is only specks."""
    h, w = mask.shape
    labels, count = ndimage.label(mask)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[0] = 0
    edge = np.zeros(count + 1, bool)
    for line in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
        edge[line] = True
    big = sizes >= max(4, SPECK * h * w)
    # Regions touching the frame are usually the paper's edge or a shadow; use them only if nothing else.
    chosen = np.flatnonzero(big & ~edge) if np.any(big & ~edge) else np.flatnonzero(big)
    if chosen.size == 0:
        return None
    # Boxes of the chosen regions only: find_objects over thousands of noise specks is slow.
    renumber = np.zeros(count + 1, np.int32)
    renumber[chosen] = np.arange(1, chosen.size + 1)
    boxes = ndimage.find_objects(renumber[labels], max_label=chosen.size)
    (y0, y1), (x0, x1) = ((part.start, part.stop) for part in boxes[int(np.argmax(sizes[chosen]))])
    grown = True
    while grown:  # absorb pieces near the growing box (a broken stroke, the bar of a 5)
        grown = False
        reach = NEIGHBOURHOOD * max(y1 - y0, x1 - x0)
        for ys, xs in boxes:
            inside = y0 <= ys.start and ys.stop <= y1 and x0 <= xs.start and xs.stop <= x1
            near = (ys.start < y1 + reach and ys.stop > y0 - reach and xs.start < x1 + reach
                    and xs.stop > x0 - reach)
            if near and not inside:
                y0, y1 = min(y0, ys.start), max(y1, ys.stop)
                x0, x1 = min(x0, xs.start), max(x1, xs.stop)
                grown = True
    return slice(y0, y1), slice(x0, x1)


def _place(digit: np.ndarray, size: int) -> tuple[np.ndarray, int, int, float]:
    """Scale a cropped digit (floats in [0, 1]) so its longer side is 20/28 of ``size`` and paste it
    into a size×size black field with its centre of mass in the middle (kept inside the field);
    returns the field, where the digit's top-left corner went and the scale."""
    scale = MNIST_BOX * size / max(digit.shape)
    dw, dh = max(1, round(digit.shape[1] * scale)), max(1, round(digit.shape[0] * scale))
    pil = Image.fromarray(np.rint(digit * 255).astype(np.uint8)).resize((dw, dh), Image.Resampling.BILINEAR)
    small = np.asarray(pil)
    mass = small.sum(dtype=np.float64)
    if mass > 0:
        cy = float(np.arange(dh) @ small.sum(1, dtype=np.float64)) / mass + 0.5
        cx = float(np.arange(dw) @ small.sum(0, dtype=np.float64)) / mass + 0.5
    else:
        cy, cx = dh / 2, dw / 2
    top = int(np.clip(round(size / 2 - cy), 0, size - dh))
    left = int(np.clip(round(size / 2 - cx), 0, size - dw))
    out = np.zeros((size, size), np.uint8)
    out[top : top + dh, left : left + dw] = small
    return out, top, left, scale


def _centre_square(gray: np.ndarray, size: int, factor: int) -> tuple[np.ndarray, tuple[float, ...]]:
    """The centre square of a grey float image, resized to size×size uint8, and its field."""
    h, w = gray.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = np.clip(np.rint(gray[top : top + side, left : left + side]), 0, 255).astype(np.uint8)
    out = np.asarray(Image.fromarray(square).resize((size, size), Image.Resampling.BILINEAR))
    return out, (top * factor, left * factor, (top + side) * factor, (left + side) * factor)
