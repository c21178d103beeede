"""The webcam look of the digits dataset: ink on paper photographed, and any picture through a cheap camera.

``photograph`` takes an ink field (float, 0 = paper, 1 = full ink, the written thing centred) and makes a
photo of it: pose, paper, pen colour, lighting, colour cast, blur, sensor noise, JPEG; with ``extras``
(a generator of its own, so the base look draws the same numbers with or without them) it adds what real
sheets show: elastic distortion of the writing, ruled or squared paper, a shadow, a glimpse of the desk,
glare, vignetting and a perspective tilt. ``camera`` puts a colour picture (a scene, a photo crop)
through the same frame sizes, lighting, cast, blur, noise and JPEG.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy import ndimage

CLEAN_STYLE = 0.2  # share of images kept in MNIST's light-on-dark style
PEN_COLOURS = np.array(((20, 20, 25), (35, 45, 120), (60, 60, 60), (110, 30, 35)))  # black, blue, pencil, red
PENCIL = np.array((75, 75, 80))
RULING_COLOURS = np.array(((120, 150, 200), (150, 150, 160), (110, 170, 190), (200, 120, 130)))
DESK_COLOURS = np.array(((120, 80, 45), (60, 55, 50), (170, 150, 120), (35, 35, 40), (200, 200, 205)))


def photograph(ink: np.ndarray, rng: np.random.Generator, extras: np.random.Generator | None = None,
               extent: tuple[float, float] = (50.0, 50.0), pen: np.ndarray | None = None,
               box: float = 80.0) -> Image.Image:
    """An ink field (H×W floats in 0..1, the writing centred, within ``extent`` pixels of the centre
    vertically and horizontally) -> a photo-like RGB picture.

    The frame is 96-320 px on its short side (aspect 3:4 to 4:3, mostly landscape) and the ink's
    ``box``-px box fills 30-90 % of it, rotated (±15°), slanted, stretched and shifted. In the photo style
    (80 %) it is ink of a random pen colour (or ``pen``) on paper with low-frequency texture, a lighting
    gradient, a colour cast, blur, sensor noise and often a JPEG round trip; otherwise a grey
    light-on-dark picture as in MNIST. ``extras`` adds the sheet's extras (see the module docstring).
    """
    if extras is not None and extras.random() < 0.5:
        ink = elastic(ink, extras)
    short = int(rng.integers(96, 321))
    long = round(short * rng.uniform(1.0, 4 / 3))
    h, w = (short, long) if rng.random() < 0.7 else (long, short)
    scale = rng.uniform(0.3, 0.9) * short / box  # output pixels per ink pixel
    angle = np.deg2rad(rng.uniform(-15, 15))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    shape = np.array([[1.0, 0.0], [rng.uniform(-0.2, 0.2), rng.uniform(0.85, 1.15)]])  # slant, width
    forward = scale * rotation @ shape  # (row, col) offsets in the ink field -> in the output
    half = np.abs(forward) @ np.asarray(extent, np.float64)  # half-size of the writing
    fit = min(1.0, float(np.min(0.48 * np.array([h, w]) / half)))  # a turned, slanted digit must still fit
    forward, half = forward * fit, half * fit
    room = np.maximum(np.array([h, w]) / 2 - half, 0)
    centre = (np.array([h, w]) - 1) / 2 + rng.uniform(-room, room)
    inverse = np.linalg.inv(forward)
    middle = (np.array(ink.shape, np.float64) - 1) / 2
    ink = ndimage.affine_transform(ink, inverse, offset=middle - inverse @ centre, output_shape=(h, w), order=1)
    blur = rng.uniform(0, 0.5) * scale * 4  # up to half an MNIST pixel
    if rng.random() < CLEAN_STYLE:
        dark, light = rng.uniform(0, 35), rng.uniform(190, 255)
        grey = ndimage.gaussian_filter(dark + (light - dark) * ink, blur)
        grey += rng.normal(0, rng.uniform(0, 4), (h, w))
        return Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8)).convert("RGB")
    paper = rng.uniform(150, 250) * (1 + rng.normal(0, 0.025, 3))
    colour = PEN_COLOURS[rng.integers(len(PEN_COLOURS))]
    pen = (colour if pen is None else pen) + rng.normal(0, 12, 3)
    cells = rng.normal(0, rng.uniform(0, 12), rng.integers(3, 9, 2))
    zoom = (h / cells.shape[0], w / cells.shape[1])
    texture = ndimage.zoom(cells, zoom, order=3, grid_mode=True, mode="nearest")
    rows, cols = np.ogrid[0:h, 0:w]
    direction = rng.uniform(0, 2 * np.pi)
    lighting = 1 + rng.uniform(0, 0.4) * ((rows * np.cos(direction) + cols * np.sin(direction)) / max(h, w))
    opacity = ink[:, :, None] * rng.uniform(0.6, 1.0)
    sheet = (paper + texture[:, :, None])
    if extras is not None:
        sheet = ruled(sheet, paper, scale * box, extras)
    picture = (sheet * (1 - opacity) + pen * opacity) * lighting[:, :, None]
    if extras is not None:
        picture = sheet_extras(picture, extras)
    return developed(ndimage.gaussian_filter(picture * (1 + rng.normal(0, 0.035, 3)), (blur, blur, 0)), rng)


def camera(picture: np.ndarray, rng: np.random.Generator, frame: bool = True) -> Image.Image:
    """A colour picture (H×W×3, 0-255) through a cheap camera: cropped to a 96-320-px frame of aspect 3:4
    to 4:3 (``frame``), a lighting gradient, a colour cast, sometimes grey (20 %, as the light-on-dark
    digits are), blur, sensor noise, a perspective tilt (30 %) and often a JPEG round trip."""
    picture = np.asarray(picture, np.float64)
    if frame:
        short = int(rng.integers(96, 321))
        long = round(short * rng.uniform(1.0, 4 / 3))
        h, w = (short, long) if rng.random() < 0.7 else (long, short)
        picture = fit_frame(picture, h, w)
    h, w = picture.shape[:2]
    rows, cols = np.ogrid[0:h, 0:w]
    direction = rng.uniform(0, 2 * np.pi)
    lighting = 1 + rng.uniform(-0.2, 0.4) * ((rows * np.cos(direction) + cols * np.sin(direction)) / max(h, w))
    picture = picture * lighting[:, :, None] * rng.uniform(0.6, 1.15) * (1 + rng.normal(0, 0.05, 3))
    if rng.random() < 0.3:
        picture = perspective(picture, rng, rng.uniform(0.03, 0.12))
    if rng.random() < 0.2:
        picture = np.repeat(picture.mean(2, keepdims=True), 3, axis=2)
    blur = rng.uniform(0, 2.0) * min(h, w) / 200
    return developed(ndimage.gaussian_filter(picture, (blur, blur, 0)), rng)


def developed(picture: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A camera's last steps on a float picture (H×W×3): sensor noise, 8-bit pixels and, 70 % of the time,
    a JPEG round trip at quality 30-95."""
    picture = picture + rng.normal(0, rng.uniform(0, 6), picture.shape)
    image = Image.fromarray(np.clip(np.rint(picture), 0, 255).astype(np.uint8))
    if rng.random() < 0.7:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=int(rng.integers(30, 96)))
        image = Image.open(buffer).convert("RGB")
    return image


def fit_frame(picture: np.ndarray, h: int, w: int) -> np.ndarray:
    """Centre-crop ``picture`` to the aspect h:w and resize it to h×w (bilinear; area-averaged when shrinking)."""
    ph, pw = picture.shape[:2]
    if ph * w > pw * h:
        keep = max(1, round(pw * h / w))
        picture = picture[(ph - keep) // 2 : (ph - keep) // 2 + keep]
    else:
        keep = max(1, round(ph * w / h))
        picture = picture[:, (pw - keep) // 2 : (pw - keep) // 2 + keep]
    image = Image.fromarray(np.clip(np.rint(picture), 0, 255).astype(np.uint8))
    return np.asarray(image.resize((w, h), Image.Resampling.BOX if image.width > w else Image.Resampling.BILINEAR),
                      np.float64)


def elastic(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Elastic distortion (Simard et al. 2003): every point moved by a smooth random field, up to a few
    percent of the field's size, as one writer's strokes wander from another's."""
    size = max(ink.shape)
    sigma = rng.uniform(0.07, 0.13) * size
    amount = rng.uniform(0.015, 0.05) * size
    field = [ndimage.gaussian_filter(rng.uniform(-1, 1, ink.shape), sigma, mode="constant") for _ in range(2)]
    peak = max(float(np.abs(f).max()) for f in field) + 1e-9
    rows, cols = np.meshgrid(np.arange(ink.shape[0]), np.arange(ink.shape[1]), indexing="ij")
    return ndimage.map_coordinates(ink, [rows + field[0] / peak * amount, cols + field[1] / peak * amount],
                                   order=1, mode="constant")


def ruled(sheet: np.ndarray, paper: np.ndarray, writing_px: float, rng: np.random.Generator) -> np.ndarray:
    """Ruled (25 %), squared (15 %) or dotted (5 %) paper under the writing; lines about one to two per
    digit height, faint, slightly turned, sometimes with a red margin line."""
    kind = rng.random()
    if kind >= 0.45:
        return sheet
    h, w = sheet.shape[:2]
    spacing = writing_px * rng.uniform(0.45, 1.1)
    tilt = np.deg2rad(rng.uniform(-4, 4))
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    across = rows * np.cos(tilt) - cols * np.sin(tilt) + rng.uniform(0, spacing)
    along = cols * np.cos(tilt) + rows * np.sin(tilt) + rng.uniform(0, spacing)
    width = rng.uniform(0.6, 1.8)

    def near(coordinate: np.ndarray) -> np.ndarray:  # 1 on a line, falling off over ``width`` pixels
        distance = np.abs((coordinate + spacing / 2) % spacing - spacing / 2)
        return np.clip(1 - (distance - width / 2), 0, 1)

    if kind < 0.25:
        line = near(across)
    elif kind < 0.4:
        line = np.maximum(near(across), near(along))
    else:
        line = np.clip(1.5 - np.hypot((across + spacing / 2) % spacing - spacing / 2,
                                      (along + spacing / 2) % spacing - spacing / 2), 0, 1)
    colour = RULING_COLOURS[rng.integers(len(RULING_COLOURS))] * paper / 235
    strength = line[:, :, None] * rng.uniform(0.25, 0.7)
    sheet = sheet * (1 - strength) + colour * strength
    if rng.random() < 0.25:  # a margin line
        margin = np.clip(1.2 - np.abs(along - rng.uniform(0.05, 0.3) * w), 0, 1)[:, :, None] * 0.6
        sheet = sheet * (1 - margin) + np.array((210, 90, 100)) * margin
    return sheet


def sheet_extras(picture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The desk beyond the sheet's edge (12 %), a soft shadow (30 %), glare (10 %), vignetting (30 %) and a
    perspective tilt (40 %)."""
    h, w = picture.shape[:2]
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    if rng.random() < 0.12:
        side = int(rng.integers(4))
        depth = rng.uniform(0.04, 0.18) * (h if side < 2 else w)
        coordinate = (rows, h - 1 - rows, cols, w - 1 - cols)[side]
        edge = coordinate + (cols if side < 2 else rows) * rng.uniform(-0.1, 0.1)
        desk = np.clip(depth - edge, 0, 1)[:, :, None]
        grain = ndimage.gaussian_filter(rng.normal(0, 1, (h, w)), (rng.uniform(0.5, 2), rng.uniform(4, 20)))
        wood = DESK_COLOURS[rng.integers(len(DESK_COLOURS))] * (1 + 0.15 * grain / (grain.std() + 1e-9))[:, :, None]
        picture = picture * (1 - desk) + wood * desk
    if rng.random() < 0.3:  # a hand's or a phone's shadow: a soft-edged half-plane or blob
        if rng.random() < 0.6:
            direction = rng.uniform(0, 2 * np.pi)
            offset = rng.uniform(0.2, 0.8) * (h * abs(np.cos(direction)) + w * abs(np.sin(direction)))
            signed = rows * np.cos(direction) + cols * np.sin(direction) - offset
        else:
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            signed = np.hypot(rows - cy, cols - cx) - rng.uniform(0.2, 0.6) * max(h, w)
            signed = -signed
        softness = rng.uniform(0.03, 0.25) * max(h, w)
        shade = 1 / (1 + np.exp(-signed / softness))
        picture = picture * (1 - shade * rng.uniform(0.15, 0.45))[:, :, None]
    if rng.random() < 0.1:  # glare
        cy, cx, radius = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.1, 0.4) * max(h, w)
        glow = np.exp(-((rows - cy) ** 2 + (cols - cx) ** 2) / (2 * radius**2))[:, :, None] * rng.uniform(0.2, 0.6)
        picture = picture * (1 - glow) + 255 * glow
    if rng.random() < 0.3:
        distance = np.hypot((rows - h / 2) / h, (cols - w / 2) / w)
        picture = picture * (1 - rng.uniform(0.1, 0.4) * distance**2 * 2)[:, :, None]
    if rng.random() < 0.4:
        picture = perspective(picture, rng, rng.uniform(0.02, 0.1))
    return picture


def perspective(picture: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """The picture as seen by a camera not square to it: its corners moved by up to ``amount`` of its size
    (a homography); the uncovered rim repeats the nearest edge."""
    h, w = picture.shape[:2]
    corners = np.array([[0, 0], [0, w - 1], [h - 1, w - 1], [h - 1, 0]], np.float64)
    moved = corners + rng.uniform(-amount, amount, (4, 2)) * np.array([h, w])
    # The homography from output (row, col) to input (row, col): solve the 8 unknowns from 4 correspondences.
    a, b = [], []
    for (y, x), (v, u) in zip(moved, corners):
        a.append([y, x, 1, 0, 0, 0, -v * y, -v * x])
        a.append([0, 0, 0, y, x, 1, -u * y, -u * x])
        b.extend([v, u])
    p = np.linalg.solve(np.array(a), np.array(b))
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    d = p[6] * rows + p[7] * cols + 1
    src_r = (p[0] * rows + p[1] * cols + p[2]) / d
    src_c = (p[3] * rows + p[4] * cols + p[5]) / d
    return np.stack([ndimage.map_coordinates(picture[:, :, k], [src_r, src_c], order=1, mode="nearest")
                     for k in range(picture.shape[2])], axis=2)
