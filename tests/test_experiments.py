"""Tests of mmtutor.experiments: parameter groups, split loaders and the grid runner."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmtutor.data import make_classification
from mmtutor.experiments import (
    encoder_param_groups,
    fuse_probabilities,
    run_grid,
    split_loader,
)
from mmtutor.fusion import ConcatFusion, ProductOfExpertsFusion
from mmtutor.models import build_classifier, build_unimodal_classifier

TINY = {"n_train": 48, "n_val": 16, "n_test": 40, "image_size": 8}
METHODS = {
    "text only": {"modality": "text"},
    "image only": {"modality": "image"},
    "early": {"fusion": "concat", "hidden": 8},
    "late": {"fusion": "average", "experts": {"text": "text only", "image": "image only"}},
}


def test_encoder_param_groups_cover_every_parameter_once():
    model = build_classifier("gated", vocab_size=30, num_classes=3, dim=8)
    groups = encoder_param_groups(model, 0.01, {"text": 0.05})
    assert [g["lr"] for g in groups] == [0.05, 0.01]
    text_ids = {id(p) for p in model.encoders["text"].parameters()}
    assert {id(p) for p in groups[0]["params"]} == text_ids
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    # a unimodal image model has no text encoder: one group at the base rate
    image = build_unimodal_classifier("image", num_classes=3, dim=8)
    assert [g["lr"] for g in encoder_param_groups(image, 0.01, {"text": 0.05})] == [0.01]
    text = build_unimodal_classifier("text", vocab_size=30, num_classes=3, dim=8)
    assert [g["lr"] for g in encoder_param_groups(text, 0.01, {"text": 0.05})] == [0.05, 0.01]
    with pytest.raises(ValueError, match="encoder"):
        encoder_param_groups(torch.nn.Linear(2, 2), 0.01, {"text": 0.05})


def test_fuse_probabilities_matches_the_formulas():
    rng = np.random.default_rng(0)
    probs = {m: rng.dirichlet(np.ones(3), size=6) for m in ("text", "image")}
    present = {"image": np.array([True, False, True, True, False, True])}
    average = fuse_probabilities("average", probs, present)
    product = fuse_probabilities(ProductOfExpertsFusion({"text": 3, "image": 3}), probs)
    mean = (probs["text"] + probs["image"]) / 2
    prod = probs["text"] * probs["image"]
    keep = present["image"]
    np.testing.assert_allclose(average[keep], mean[keep], rtol=1e-6)
    np.testing.assert_allclose(average[~keep], probs["text"][~keep], rtol=1e-6)  # fallback
    np.testing.assert_allclose(product, prod / prod.sum(axis=1, keepdims=True), rtol=1e-6)
    with pytest.raises(ValueError, match="decision-level"):
        fuse_probabilities(ConcatFusion({"text": 3, "image": 3}), probs)


def test_split_loader_matches_the_data_loaders():
    data = make_classification(**TINY, seed=0)
    ours = next(iter(split_loader(data, data.test, batch_size=16)))
    theirs = next(iter(data.loaders(batch_size=8, seed=0).test))  # eval batches: 2 x 8
    for key in ("tokens", "image", "label", "image_present"):
        assert torch.equal(ours[key], theirs[key]), key
    labels = torch.cat([b["label"] for b in split_loader(data, data.train, batch_size=7)])
    assert labels.tolist() == data.train.labels.tolist()  # in order, nothing dropped


def test_run_grid_rows_and_late_fallback():
    settings = {"mix": {"tests": {"no images": {"missing_image": 1.0}}}}
    frame = run_grid(settings, METHODS, seeds=[0, 1], data=TINY, model={"dim": 8},
                     epochs=1, device="cpu")
    assert len(frame) == 1 * 2 * 2 * len(METHODS)  # settings x tests x seeds x methods
    assert set(frame["level"]) == {"unimodal", "feature", "decision"}
    assert frame["accuracy"].between(0, 1).all()
    by = frame.set_index(["test", "seed", "method"])
    for seed in (0, 1):
        # late fusion costs what its experts cost
        assert by.loc[("standard", seed, "late"), "params"] == (
            by.loc[("standard", seed, "text only"), "params"]
            + by.loc[("standard", seed, "image only"), "params"])
        # with every image missing, averaging keeps only the text expert's vote ...
        late, text = by.loc[("no images", seed, "late")], by.loc[("no images", seed, "text only")]
        assert late["accuracy"] == text["accuracy"]
        # ... and the text expert reads the same captions as on the standard split (the
        # variant is drawn with the same seed; only the images went missing)
        assert text["accuracy"] == by.loc[("standard", seed, "text only"), "accuracy"]
        assert by.loc[("no images", seed, "late"), "ceiling_image"] == pytest.approx(
            by.loc[("no images", seed, "late"), "chance"], abs=0.2)
    assert np.isnan(by.loc[("standard", 0, "late"), "missing_accuracy"])


def test_a_method_does_not_depend_on_the_methods_trained_before_it(monkeypatch):
    # each method gets its own seeded loaders: a shuffling generator shared across methods
    # would give the second method of a grid other batches than the same method alone
    import mmtutor.experiments as experiments

    runs, real = [], experiments.train_classifier
    monkeypatch.setattr(experiments, "train_classifier",
                        lambda *a, **k: runs.append(real(*a, **k)) or runs[-1])
    run_grid({"mix": {}}, {"image only": METHODS["image only"], "early": METHODS["early"]},
             seeds=[0], data=TINY, model={"dim": 8}, epochs=2, batch_size=16, device="cpu")
    data = make_classification(**TINY, seed=0)  # 48 samples: 3 shuffled batches per epoch
    alone = real(data.train, data.val, config=runs[1].config, class_names=data.class_names)
    assert runs[1].config.fusion == "concat"
    np.testing.assert_array_equal(runs[1].history["train_loss"], alone.history["train_loss"])


def test_run_grid_uses_the_classification_pipeline():
    from mmtutor.tasks import ClassifyConfig, train_classifier

    frame = run_grid({"mix": {}}, {"early": {"fusion": "concat", "hidden": 8}}, seeds=[0],
                     data=TINY, model={"dim": 8}, epochs=1, device="cpu")
    data = make_classification(**TINY, seed=0)
    run = train_classifier(data, config=ClassifyConfig(
        fusion="concat", hidden=8, dim=8, epochs=1, lr=1e-2, weight_decay=0.01, device="cpu"))
    assert frame["accuracy"].iloc[0] == run.test.accuracy
    assert frame["params"].iloc[0] == sum(p.numel() for p in run.model.parameters())


def test_run_grid_is_repeatable():
    args = ({"mix": {}}, {"text only": {"modality": "text"}})
    kwargs = {"seeds": [3], "data": TINY, "model": {"dim": 8}, "epochs": 2, "device": "cpu"}
    first, second = run_grid(*args, **kwargs), run_grid(*args, **kwargs)
    assert first["accuracy"].tolist() == second["accuracy"].tolist()


@pytest.mark.parametrize(
    ("methods", "match"),
    [
        ({"x": {"modality": "text", "fusion": "concat"}}, "exactly one"),
        ({"x": {"fusion": "nope"}}, "must be one of"),
        ({"x": {"fusion": "concat", "experts": {"text": "t"}}}, "decision-level"),
        ({"x": {"fusion": "average", "experts": {"text": "later"}},
          "later": {"modality": "text"}}, "before it"),
    ],
)
def test_run_grid_rejects_bad_methods(methods, match):
    with pytest.raises(ValueError, match=match):
        run_grid({"mix": {}}, methods, seeds=[0], data=TINY)
