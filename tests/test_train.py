"""Tests of mmtutor.train with tiny hand-written models that follow the model protocol."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from mmtutor.train import (
    count_parameters,
    evaluate,
    fit,
    load_checkpoint,
    move_batch,
    predict,
    predict_proba,
    save_checkpoint,
)
from mmtutor.utils import seed_everything


class TinyClassifier(nn.Module):
    """Logistic regression on ``batch["x"]`` following the model protocol."""

    def __init__(self, in_dim: int = 2, num_classes: int = 2):
        super().__init__()
        self.linear = nn.Linear(in_dim, num_classes)

    def forward(self, batch):
        return self.linear(batch["x"])  # (B, C)

    def loss(self, batch):
        return nn.functional.cross_entropy(self(batch), batch["label"])

    def predict(self, batch):
        return self(batch).argmax(dim=-1)


class EchoTagger(nn.Module):
    """Predicts ``batch["guess"]`` (true length) so scores are known in advance."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(()))

    def loss(self, batch):
        return self.bias**2 + 1.0

    def predict(self, batch):
        lengths = batch["token_mask"].sum(dim=1).tolist()
        return [row[:n] for row, n in zip(batch["guess"].tolist(), lengths, strict=True)]


def blobs(n: int, seed: int) -> list[dict[str, torch.Tensor]]:
    """Two well-separated Gaussian blobs in 2-D, as a list of samples."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 2, generator=g) * 0.5 + (y[:, None] * 2 - 1) * 2.0  # (n, 2)
    return [{"x": x[i], "label": y[i]} for i in range(n)]


@pytest.fixture(scope="module")
def loaders():
    train = DataLoader(blobs(128, seed=1), batch_size=16, shuffle=True)
    val = DataLoader(blobs(64, seed=2), batch_size=32)
    return train, val


def new_model(seed: int = 0) -> TinyClassifier:
    seed_everything(seed)
    return TinyClassifier()


def test_fit_learns_a_separable_problem(loaders):
    model = new_model()
    history = fit(model, *loaders, epochs=5, lr=0.05, device="cpu", progress=False)
    assert list(history.columns) == ["epoch", "train_loss", "val_loss", "val_accuracy", "seconds"]
    assert history["epoch"].tolist() == [1, 2, 3, 4, 5]
    assert history["val_accuracy"].max() >= 0.95
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]


def test_same_seed_same_history(loaders):
    runs = [fit(new_model(), *loaders, epochs=3, lr=0.05, device="cpu", progress=False, seed=7)
            for _ in range(2)]
    pd.testing.assert_frame_equal(runs[0].drop(columns="seconds"), runs[1].drop(columns="seconds"))


def test_early_stopping_restores_best_weights(loaders):
    model = new_model()
    scripted = iter([0.5, 0.9, 0.6, 0.7, 0.8, 0.95])
    snapshots = []

    def scripted_score(y_true, y_pred):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return next(scripted)

    history = fit(model, *loaders, epochs=6, lr=0.05, metric=scripted_score, patience=2,
                  device="cpu", progress=False)
    assert history["epoch"].tolist() == [1, 2, 3, 4]  # best at 2, then 2 epochs without gain
    assert history["val_scripted_score"].tolist() == [0.5, 0.9, 0.6, 0.7]
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, snapshots[1][name], rtol=0, atol=0)
        assert not torch.equal(value, snapshots[-1][name])


def test_progress_false_prints_nothing(loaders, capsys):
    fit(new_model(), *loaders, epochs=1, device="cpu", progress=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    fit(new_model(), *loaders, epochs=1, device="cpu", progress=True)
    assert "epochs" in capsys.readouterr().err


def test_amp_on_cpu_warns_and_trains(loaders):
    with pytest.warns(UserWarning, match="amp=True needs a CUDA device"):
        history = fit(new_model(), *loaders, epochs=1, amp=True, device="cpu", progress=False)
    assert len(history) == 1


def test_bad_arguments_raise(loaders):
    with pytest.raises(ValueError, match="patience"):
        fit(new_model(), loaders[0], epochs=1, patience=2, device="cpu", progress=False)
    with pytest.raises(ValueError, match="metric"):
        fit(new_model(), *loaders, epochs=1, metric="auc", device="cpu", progress=False)
    with pytest.raises(ValueError, match="empty"):
        evaluate(new_model(), [], device="cpu")


def check_round_trip(model, val, tmp_path, device):
    fit(model, *[DataLoader(blobs(64, 1), batch_size=16)], epochs=1, device=device,
        progress=False)
    before = predict_proba(model, val, device=device)
    path = tmp_path / "model.pt"
    save_checkpoint(model, path, vocab=["<pad>", "<unk>"], config={"dim": 2})
    loaded, extra = load_checkpoint(path, new_model(seed=3), device=device)
    assert extra == {"vocab": ["<pad>", "<unk>"], "config": {"dim": 2}}
    assert next(loaded.parameters()).device.type == torch.device(device).type
    np.testing.assert_array_equal(predict_proba(loaded, val, device=device), before)
    state, _ = load_checkpoint(path)
    assert set(state) == {"linear.weight", "linear.bias"}


def test_checkpoint_round_trip_cpu(loaders, tmp_path):
    check_round_trip(new_model(), loaders[1], tmp_path, "cpu")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_checkpoint_round_trip_cuda(loaders, tmp_path):
    check_round_trip(new_model(), loaders[1], tmp_path, "cuda")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fit_on_cuda_with_amp(loaders):
    model = new_model()
    history = fit(model, *loaders, epochs=3, lr=0.05, amp=True, device="cuda", progress=False)
    assert history["val_accuracy"].max() >= 0.95
    assert next(model.parameters()).device.type == "cuda"


class Payload:
    """An arbitrary object: weights_only loading must refuse to unpickle it."""


def test_load_checkpoint_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "extra": Payload()}, path)
    with pytest.raises(ValueError, match="weights_only") as info:
        load_checkpoint(path)
    assert isinstance(info.value.__cause__, pickle.UnpicklingError)
    with pytest.raises(ValueError, match="JSON"):
        save_checkpoint(new_model(), tmp_path / "x.pt", config=Payload())


def test_predict_and_proba_shapes(loaders):
    model = new_model()
    labels = predict(model, loaders[1], device="cpu")
    probs = predict_proba(model, loaders[1], device="cpu")
    assert labels.shape == (64,) and probs.shape == (64, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(probs.argmax(axis=1), labels)


def tag_batch():
    tags = torch.tensor([[1, 2, 0, -100], [0, 3, -100, -100]])  # -100: padding
    return {
        "tokens": torch.ones(2, 4, dtype=torch.long),
        "token_mask": tags != -100,
        "tags": tags,
        "guess": torch.tensor([[1, 0, 0, 0], [0, 3, 0, 0]]),  # I-PER missed: entity wrong
    }


def test_evaluate_tagger_scores_entities_without_padding():
    names = ["O", "B-PER", "I-PER", "B-LOC"]
    model = EchoTagger()
    loader = [tag_batch()]
    f1 = evaluate(model, loader, device="cpu", metric="f1", tag_names=names)
    assert f1 == {"loss": 1.0, "f1": 0.5}  # LOC right, PER wrong -> P = R = 1/2
    acc = evaluate(model, loader, device="cpu", metric="accuracy")
    assert acc["accuracy"] == pytest.approx(4 / 5)  # 5 real tokens, one wrong
    assert predict(model, loader, device="cpu") == [[1, 0, 0], [0, 3]]
    with pytest.raises(ValueError, match="tag_names"):
        evaluate(model, loader, device="cpu", metric="f1")


def test_move_batch_and_count_parameters():
    batch = move_batch({"x": torch.zeros(2), "ids": [1, 2]}, "cpu")
    assert batch["ids"] == [1, 2] and batch["x"].device.type == "cpu"
    model = TinyClassifier(3, 4)
    assert count_parameters(model) == 3 * 4 + 4
    model.linear.bias.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 12
