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


# ---------------------------------------------------------------- one forward per batch


def model_batches() -> list[dict[str, torch.Tensor]]:
    """Two small batches as the collate functions make them (CONTRIBUTING.md)."""
    g = torch.Generator().manual_seed(0)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    tags = torch.tensor([[1, 2, 0, 3], [0, 1, -100, -100], [3, -100, -100, -100]])
    return [{"tokens": torch.randint(2, 30, (3, 4), generator=g) * mask, "token_mask": mask,
             "image": torch.randn(3, 3, 16, 16, generator=g),
             "image_present": torch.tensor([True, False, True]),
             "label": torch.tensor([0, 1, 2]), "tags": tags} for _ in range(2)]


def package_models() -> dict[str, nn.Module]:
    from mmtutor.models import build_classifier, build_tagger, build_unimodal_classifier

    small = {"image_kwargs": {"channels": (4, 8)}}
    torch.manual_seed(0)
    return {
        "classifier+aux": build_classifier("gated", vocab_size=30, num_classes=3, dim=8,
                                           aux_weight=0.5, **small),
        "late classifier": build_classifier("product_of_experts", vocab_size=30,
                                            num_classes=3, dim=8, **small),
        "unimodal": build_unimodal_classifier("text", vocab_size=30, num_classes=3, dim=8),
        "crf tagger": build_tagger(vocab_size=30, num_tags=4, fusion="concat", dim=8, **small),
        "softmax tagger": build_tagger(vocab_size=30, num_tags=4, head="softmax", dim=8),
    }


@pytest.mark.parametrize("name", list(package_models()))
def test_evaluate_runs_one_forward_pass_per_batch(name):
    model = package_models()[name].eval()
    batches = model_batches()
    with torch.no_grad():  # the reference: loss and predict, each with its own forward pass
        for batch in batches:
            loss, guess = model.loss_and_predict(batch)
            torch.testing.assert_close(loss, model.loss(batch))
            expected = model.predict(batch)
            assert (guess == expected).all() if isinstance(guess, torch.Tensor) else (
                guess == expected)
    calls = []  # every model embeds the tokens once per forward pass
    embedding = next(m for m in model.modules() if isinstance(m, nn.Embedding))
    embedding.register_forward_hook(lambda *_: calls.append(1))
    scores = evaluate(model, batches, device="cpu")
    assert len(calls) == len(batches), f"{len(calls)} forward passes for {len(batches)} batches"
    with torch.no_grad():
        mean_loss = sum(model.loss(b).item() for b in batches) / len(batches)  # equal sizes
    assert scores["loss"] == pytest.approx(mean_loss, rel=1e-6)


def test_evaluate_without_loss_and_predict_falls_back():
    # the minimal protocol (loss + predict) still works: TinyClassifier has no loss_and_predict
    assert not hasattr(TinyClassifier(), "loss_and_predict")
    batch = {"x": torch.randn(4, 2), "label": torch.tensor([0, 1, 0, 1])}
    model = new_model()
    with torch.no_grad():
        want = model.loss(batch).item()
    assert evaluate(model, [batch], device="cpu")["loss"] == pytest.approx(want)


# ---------------------------------------------------------------- global state


@pytest.mark.parametrize("fails", [False, True])
def test_fit_restores_the_cudnn_flags(loaders, fails):
    cudnn = torch.backends.cudnn
    before = (cudnn.deterministic, cudnn.benchmark)
    model = new_model()
    if fails:  # an error in the middle of training must not leave the flags changed either
        model.loss = lambda batch: (_ for _ in ()).throw(RuntimeError("boom"))
    try:
        cudnn.deterministic, cudnn.benchmark = False, True  # the caller's own choice
        if fails:
            with pytest.raises(RuntimeError, match="boom"):
                fit(model, *loaders, epochs=1, device="cpu", progress=False)
        else:
            fit(model, *loaders, epochs=1, device="cpu", progress=False)
        assert (cudnn.deterministic, cudnn.benchmark) == (False, True)
    finally:
        cudnn.deterministic, cudnn.benchmark = before


def test_fit_trains_with_deterministic_cudnn(loaders):
    seen = []
    model = new_model()
    loss = model.loss

    def spy(batch):
        seen.append((torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark))
        return loss(batch)

    model.loss = spy
    fit(model, *loaders, epochs=1, device="cpu", progress=False)
    assert seen and set(seen) == {(True, False)}


# ---------------------------------------------------------------- bad checkpoint files


def test_load_checkpoint_bad_files_are_value_errors(tmp_path):
    good = tmp_path / "good.pt"
    save_checkpoint(new_model(), good, config={"dim": 2})
    data = good.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "random.pt").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "text.pt").write_text("not a checkpoint", encoding="utf-8")
    for name in ("truncated", "random", "empty", "text"):
        path = tmp_path / f"{name}.pt"
        with pytest.raises(ValueError, match=rf"{name}\.pt is corrupt"):
            load_checkpoint(path, new_model())
    with pytest.raises(ValueError, match=r"missing\.pt: no such file"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"state_dict": new_model().state_dict()}, tmp_path / "no_meta.pt")
    with pytest.raises(ValueError, match=r"no_meta\.pt is not a file written by save_checkpoint: "
                                         r"found \['state_dict'\]"):
        load_checkpoint(tmp_path / "no_meta.pt")
    torch.save({"state_dict": new_model().state_dict(), "extra": "{oops"}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"bad\.pt: the metadata 'extra' is not JSON"):
        load_checkpoint(tmp_path / "bad.pt")
    torch.save({"state_dict": [1, 2], "extra": "{}"}, tmp_path / "list.pt")
    with pytest.raises(ValueError, match=r"list\.pt: 'state_dict' is not a mapping"):
        load_checkpoint(tmp_path / "list.pt")


def test_load_checkpoint_names_the_parameter_that_does_not_fit(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(new_model(), path)
    with pytest.raises(ValueError, match=r"model\.pt does not fit the model TinyClassifier: "
                                         r"parameter 'linear\.weight' has shape \(2, 2\) in the "
                                         r"file, but the model wants \(3, 2\)"):
        load_checkpoint(path, TinyClassifier(in_dim=2, num_classes=3))
    with pytest.raises(ValueError, match=r"model\.pt does not fit .*missing from the file "
                                         r"\['weight', 'bias'\]"):
        load_checkpoint(path, nn.Linear(2, 2))
