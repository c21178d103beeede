"""Fusion strategies, explanations and checkpoints on random encoder tokens (no encoders needed)."""

import json
import math

import pytest
import torch

from fusion.encoders import Tokens
from fusion.model import CheckpointError, FusionModel, default_config
from fusion.strategies import STRATEGIES, attention_rollout

DIMS = {"image": 12, "audio": 8, "text": 10}
LABELS = [str(i) for i in range(5)]


def make_model(strategy: str, seed: int = 0) -> FusionModel:
    torch.manual_seed(seed)
    config = default_config(LABELS, strategy, encoder_dims=DIMS, d_model=16, dropout=0.0,
                            class_prior=[0.1, 0.2, 0.3, 0.2, 0.2])
    if strategy in ("attention", "cross"):
        config["strategy_config"]["heads"] = 2
    return FusionModel(config).eval()


def random_tokens(batch: int, seed: int = 0, lengths: dict | None = None) -> dict[str, Tokens]:
    g = torch.Generator().manual_seed(seed)
    lengths = lengths or {"image": 4, "audio": 9, "text": 5}
    tokens = {}
    for m, dim in DIMS.items():
        values = torch.randn(batch, lengths[m], dim, generator=g)
        mask = torch.ones(batch, lengths[m], dtype=torch.bool)
        tokens[m] = Tokens(values, mask, values.mean(1))
    return tokens


def select_rows(tokens: dict[str, Tokens], rows: list[int], keep: dict[str, list[bool]]) -> dict[str, Tokens]:
    """Rows of a batch with modality m kept on row i iff keep[m][i]; a modality kept nowhere is left out."""
    out = {}
    for m, t in tokens.items():
        flags = torch.tensor([keep[m][i] for i in range(len(rows))])
        if not flags.any():
            continue
        mask = t.mask[rows] & flags[:, None]
        out[m] = Tokens(t.values[rows] * mask.unsqueeze(-1), mask, t.pooled[rows])
    return out


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_weights_are_distributions_over_present_modalities(strategy):
    model = make_model(strategy)
    tokens = select_rows(random_tokens(3), [0, 1, 2], {"image": [True, True, False], "audio": [True, False, True],
                                                       "text": [False, True, True]})
    out = model(tokens, contributions=True)
    present = out.present
    assert present.tolist() == [[True, True, False], [True, False, True], [False, True, True]]
    if strategy == "concat":
        assert out.modality_weights is None
    else:
        weights = out.modality_weights
        torch.testing.assert_close(weights.sum(1), torch.ones(3))
        assert torch.all(weights[~present] == 0)
        for i, m in enumerate(model.modalities):
            rows = present[:, i]
            torch.testing.assert_close(out.token_weights[m][rows].sum(1), torch.ones(int(rows.sum())))
    assert out.probs.shape == (3, 5) and set(out.unimodal_logits) == set(DIMS)
    assert torch.all(out.contributions[~present] == 0)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_mixed_presence_batch_equals_rows_alone(strategy):
    model = make_model(strategy)
    full = random_tokens(2, seed=1)
    keep = {"image": [True, False], "audio": [False, True], "text": [True, False]}
    batched = model(select_rows(full, [0, 1], keep), contributions=True)
    row0 = model(select_rows(full, [0], {m: [k[0]] for m, k in keep.items()}), contributions=True)
    row1 = model(select_rows(full, [1], {m: [k[1]] for m, k in keep.items()}), contributions=True)
    for i, alone in enumerate([row0, row1]):
        torch.testing.assert_close(batched.logits[i], alone.logits[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(batched.contributions[i], alone.contributions[0], atol=1e-5, rtol=0)
        if batched.modality_weights is not None:
            torch.testing.assert_close(batched.modality_weights[i], alone.modality_weights[0], atol=1e-5, rtol=0)


def test_audio_of_different_lengths_in_one_batch_equals_alone():
    model = make_model("cross")
    long = random_tokens(1, seed=2, lengths={"image": 4, "audio": 23, "text": 5})
    short = random_tokens(1, seed=3, lengths={"image": 4, "audio": 9, "text": 5})
    padded = {}
    for m in DIMS:
        a, b = long[m], short[m]
        values = torch.zeros(2, a.values.shape[1], DIMS[m])
        mask = torch.zeros(2, a.values.shape[1], dtype=torch.bool)
        values[0], mask[0] = a.values[0], a.mask[0]
        values[1, :b.values.shape[1]], mask[1, :b.values.shape[1]] = b.values[0], b.mask[0]
        padded[m] = Tokens(values, mask, values.mean(1))
    batched = model(padded)
    torch.testing.assert_close(batched.logits[1], model(short).logits[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(batched.logits[0], model(long).logits[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_no_modality_is_a_clear_error(strategy):
    model = make_model(strategy)
    with pytest.raises(ValueError, match="modality"):
        model({})
    with pytest.raises(ValueError, match="at least one modality"):
        model(select_rows(random_tokens(2), [0, 1], {"image": [True, False], "audio": [False, False],
                                                     "text": [False, False]}))


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_shapley_efficiency(strategy):
    model = make_model(strategy)
    tokens = random_tokens(4, seed=5)
    out = model(tokens, contributions=True)
    target = out.logits.argmax(-1)
    v_all = torch.log_softmax(out.logits, -1).gather(1, target[:, None]).squeeze(1)
    v_empty = model.log_prior[target]
    torch.testing.assert_close(out.contributions.sum(1), v_all - v_empty, atol=1e-5, rtol=0)


def test_shapley_null_player_and_symmetry():
    model = make_model("late")
    late = model.strategy
    with torch.no_grad():
        # Null player: audio's gate is -inf-like and its classifier is flat -> audio never changes the output.
        for p in late.classifiers["audio"].parameters():
            p.zero_()
        late.gates["audio"][-1].bias.fill_(-1e4)
        late.agreement_scale.zero_()  # a flat audio prediction would still shift the others' agreement
        model.log_prior.fill_(-math.log(len(LABELS)))  # v(∅) = a flat prediction, as audio alone gives
        # Symmetry: identical image and text pathways fed identical tokens.
        late.classifiers["text"].load_state_dict(late.classifiers["image"].state_dict())
        late.gates["text"].load_state_dict(late.gates["image"].state_dict())
        late.pools["text"].load_state_dict(late.pools["image"].state_dict())
        model.projections["text"].linear.weight.copy_(model.projections["image"].linear.weight[:, :10])
        model.projections["image"].linear.weight[:, 10:] = 0
        model.projections["text"].linear.bias.copy_(model.projections["image"].linear.bias)
        model.projections["text"].embedding.copy_(model.projections["image"].embedding)
    tokens = random_tokens(2, seed=7, lengths={"image": 4, "audio": 6, "text": 4})
    shared = torch.randn(2, 4, 10)
    tokens["image"] = Tokens(torch.cat([shared, torch.zeros(2, 4, 2)], -1), tokens["image"].mask, shared.mean(1))
    tokens["text"] = Tokens(shared.clone(), tokens["text"].mask, shared.mean(1))
    # LayerNorm sees different widths; make both see the same normalised input by using no-op norms.
    model.projections["image"].norm = torch.nn.Identity()
    model.projections["text"].norm = torch.nn.Identity()
    phi = model(tokens, contributions=True).contributions
    assert torch.allclose(phi[:, 1], torch.zeros(2), atol=1e-5)  # audio: null player
    torch.testing.assert_close(phi[:, 0], phi[:, 2], atol=1e-5, rtol=0)  # image and text: symmetric


def test_rollout_matches_hand_computation():
    a1 = torch.tensor([[0.5, 0.5], [0.2, 0.8]])
    a2 = torch.tensor([[0.9, 0.1], [0.3, 0.7]])
    # Two heads per layer whose mean is a1 / a2.
    layer1 = torch.stack([a1 + 0.1 * torch.tensor([[1.0, -1.0], [1.0, -1.0]]),
                          a1 - 0.1 * torch.tensor([[1.0, -1.0], [1.0, -1.0]])])[None]
    layer2 = torch.stack([a2, a2])[None]
    eye = torch.eye(2)
    r1 = 0.5 * a1 + 0.5 * eye
    r2 = 0.5 * a2 + 0.5 * eye
    expected = r2 @ r1  # rows already sum to 1
    torch.testing.assert_close(attention_rollout([layer1, layer2])[0], expected)
    assert math.isclose(expected[0].sum().item(), 1.0, rel_tol=1e-6)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_gradients_reach_every_parameter(strategy):
    model = make_model(strategy).train()
    tokens = select_rows(random_tokens(3), [0, 1, 2], {"image": [True, False, True], "audio": [True, True, False],
                                                       "text": [False, True, True]})
    out = model(tokens)
    loss = out.logits.logsumexp(-1).sum() - out.logits[:, 0].sum()
    loss = loss + sum(u.logsumexp(-1).sum() - u[:, 1].sum() for u in out.unimodal_logits.values())
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_eval_is_deterministic_and_save_load_roundtrips(strategy, tmp_path):
    model = make_model(strategy)
    tokens = random_tokens(2, seed=9)
    first, second = model(tokens, contributions=True), model(tokens, contributions=True)
    assert torch.equal(first.logits, second.logits)
    model.save_pretrained(tmp_path / "m")
    loaded = FusionModel.from_pretrained(tmp_path / "m")
    again = loaded(tokens, contributions=True)
    assert torch.equal(first.logits, again.logits) and torch.equal(first.contributions, again.contributions)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["README.md", "config.json", "model.safetensors"]


def tamper(folder, **changes):
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("changes, field", [
    ({"strategy": "magic"}, "strategy"),
    ({"labels": ["a", "b", "c"], "class_prior": [1, 1, 1]}, "labels"),
    ({"weights": "../../etc/passwd"}, "weights"),
    ({"weights": "model.pt"}, "weights"),
    ({"format_version": 99}, "format_version"),
    ({"class_prior": [0.5]}, "class_prior"),
    ({"encoders": {"smell": "nose"}}, "encoders"),
])
def test_tampered_config_is_refused(tmp_path, changes, field):
    folder = tmp_path / "m"
    make_model("attention").save_pretrained(folder)
    tamper(folder, **changes)
    with pytest.raises(CheckpointError, match=field):
        FusionModel.from_pretrained(folder)


def test_pickles_and_garbage_are_refused(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(CheckpointError, match="pickled checkpoints are refused"):
        FusionModel.from_pretrained(tmp_path)
    folder = tmp_path / "m"
    make_model("concat").save_pretrained(folder)
    (folder / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="safetensors"):
        FusionModel.from_pretrained(folder)
    (folder / "config.json").write_text("{nope")
    with pytest.raises(CheckpointError, match="JSON"):
        FusionModel.from_pretrained(folder)


def test_image_positions_make_the_layout_count():
    """Without per-cell projections image tokens are a set; with them, moving a stroke changes the output."""
    tokens = random_tokens(1, seed=11)
    shuffled = dict(tokens)
    order = torch.randperm(4, generator=torch.Generator().manual_seed(0))
    image = tokens["image"]
    shuffled["image"] = Tokens(image.values[:, order], image.mask, image.pooled)
    plain = make_model("attention")
    torch.testing.assert_close(plain(tokens).logits, plain(shuffled).logits, atol=1e-5, rtol=0)
    torch.manual_seed(0)
    config = default_config(LABELS, "attention", encoder_dims=DIMS, d_model=16, dropout=0.0, image_positions=4)
    config["strategy_config"]["heads"] = 2
    placed = FusionModel(config).eval()
    assert not torch.allclose(placed(tokens).logits, placed(shuffled).logits, atol=1e-4)
    # An absent image (placeholder of one token) is fine; a real image with another layout is not.
    assert placed({"text": tokens["text"]}).logits.shape == (1, 5)
    with pytest.raises(ValueError, match="fixed layout"):
        placed({**tokens, "image": random_tokens(1, lengths={"image": 9, "audio": 9, "text": 5})["image"]})


def test_agreement_bias_marks_the_odd_modality():
    from fusion.strategies.layers import agreement_bias

    sure = lambda c: torch.nn.functional.one_hot(torch.tensor(c), 5).float() * 20  # noqa: E731
    # Row 0: image says 3, audio and text say 1. Row 1: only image and text, agreeing. Row 2: image alone.
    logits = torch.stack([torch.stack([sure(3), sure(1), sure(1)]), torch.stack([sure(1), sure(4), sure(1)]),
                          torch.stack([sure(2), sure(2), sure(2)])])
    present = torch.tensor([[True, True, True], [True, False, True], [True, False, False]])
    bias = agreement_bias(logits, present)
    assert bias[0, 0] < -6 and bias[0, 1:].abs().max() < 1e-4  # the odd one out, and the agreeing pair
    assert bias[1, [0, 2]].abs().max() < 1e-4  # audio's "4" is absent: it does not count against image
    assert bias[2, 0] == 0  # alone: nothing to disagree with


@pytest.mark.parametrize("strategy", ["attention", "late", "cross"])
def test_a_disagreeing_modality_loses_weight_through_the_agreement_term(strategy):
    """Unimodal classifiers fixed to say image 3, audio 1, text 1: with the learned scale at 0 the
    agreement is ignored; raising it moves weight off the image, the odd one out."""
    model = make_model(strategy)
    with torch.no_grad():
        for m, label in zip(model.modalities, (3, 1, 1)):
            last = model.strategy.classifiers[m][-1]
            last.weight.zero_()
            last.bias.copy_(torch.nn.functional.one_hot(torch.tensor(label), len(LABELS)) * 20.0)
    tokens = random_tokens(4, seed=3)
    weights = {}
    for scale in (0.0, 5.0):
        with torch.no_grad():
            model.strategy.agreement_scale.fill_(scale)
        weights[scale] = model(tokens).modality_weights
    assert (weights[5.0][:, 0] < 0.5 * weights[0.0][:, 0]).all()
    assert (weights[5.0][:, 1:] > weights[0.0][:, 1:]).all()
