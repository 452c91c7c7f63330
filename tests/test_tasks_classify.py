"""Tests of mmtutor.tasks.classify and mmtutor.data.write_manifest: the classification pipeline
the chapters, the experiment grid and ``python -m mmtutor classify`` share."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from sklearn import metrics as sk

from mmtutor.data import make_classification, read_manifest, write_manifest
from mmtutor.models import UnimodalClassifier, build_classifier
from mmtutor.tasks import ClassifierRun, ClassifyConfig, ClassifyEvaluation, train_classifier
from mmtutor.train import fit, predict
from mmtutor.utils import seed_everything

TINY = {"dim": 8, "epochs": 2, "batch_size": 32, "image_channels": [8], "device": "cpu"}


@pytest.fixture(scope="module")
def data():
    return make_classification(96, 32, 48, image_size=8, seed=0)


@pytest.fixture(scope="module")
def manifests(data, tmp_path_factory):
    root = tmp_path_factory.mktemp("manifest")
    files = write_manifest(data, root, image_format="png")
    return root, {k: read_manifest(f, root) for k, f in files.items()}


def test_generated_run_equals_the_build_seed_fit_recipe(data):
    """The chapters' recipe by hand, and train_classifier, give the same predictions."""
    run = train_classifier(data, config=ClassifyConfig(**TINY, fusion="gated", hidden=16))
    dl = data.loaders(batch_size=32, seed=0)
    seed_everything(0)
    model = build_classifier("gated", vocab_size=len(data.vocab), num_classes=data.num_classes,
                             dim=8, hidden=16, image_kwargs={"channels": (8,)})
    history = fit(model, dl.train, dl.val, epochs=2, lr=5e-3, device="cpu", seed=0,
                  progress=False)
    assert np.array_equal(run.predict(data.test), predict(model, dl.test, device="cpu"))
    assert np.allclose(run.history["train_loss"], history["train_loss"])
    assert run.dev_score == pytest.approx(history["val_accuracy"].max())
    assert run.classes == list(data.class_names) and run.sizes == {"train": 96, "dev": 32,
                                                                   "test": 48}


def test_evaluation_matches_scikit_learn(data):
    run = train_classifier(data, config=ClassifyConfig(**TINY))
    ev = run.test
    assert isinstance(ev, ClassifyEvaluation)
    assert np.array_equal(ev.gold, data.test.labels)
    assert np.array_equal(ev.predicted, run.predict(data.test))
    assert ev.accuracy == pytest.approx(sk.accuracy_score(data.test.labels, ev.predicted))
    labels = list(range(data.num_classes))  # every class counts, predicted or not
    assert ev.macro_f1 == pytest.approx(sk.f1_score(data.test.labels, ev.predicted,
                                                    labels=labels, average="macro",
                                                    zero_division=0))
    assert list(ev.report.index[:data.num_classes]) == list(data.class_names)
    confusion = ev.confusion()
    assert confusion.to_numpy().sum() == len(data.test)
    assert np.trace(confusion.to_numpy()) == (ev.gold == ev.predicted).sum()
    summary = ev.to_dict()
    assert summary["n"] == 48 and set(summary["report"]) >= {"macro avg", "circle"}
    json.dumps(run.metrics())  # every number is plain JSON


def test_write_manifest_writes_files_that_read_back(data, manifests):
    root, splits = manifests
    line = json.loads((root / "train.jsonl").read_text().splitlines()[0])
    assert set(line) == {"text", "image", "label"} and line["label"] in data.class_names
    train = splits["train"]
    assert len(train) == 96 and train[0].path == root / "train.jsonl" and train[0].line == 1
    pixels = np.asarray(Image.open(train[5].image), dtype=np.float64) / 255  # (H, W, 3)
    assert np.abs(pixels.transpose(2, 0, 1) - data.train.images[5]).max() <= 0.5 / 255 + 1e-9
    assert [e.text.split() for e in train] == data.train.captions
    assert [e.label for e in train] == [data.class_names[y] for y in data.train.labels]


def test_missing_modalities_are_absent_keys(tmp_path):
    gaps = make_classification(20, 0, 10, image_size=8, missing_image=0.3, missing_text=0.3,
                               seed=1)
    files = write_manifest(gaps, tmp_path)  # JPEG
    assert set(files) == {"train", "test"}  # the empty validation split is skipped
    examples = read_manifest(files["train"], tmp_path)
    assert [e.image is not None for e in examples] == list(gaps.train.image_present)
    assert [e.text is not None for e in examples] == list(gaps.train.text_present)
    written = sorted(p.name for p in (tmp_path / "images" / "train").iterdir())
    assert len(written) == int(gaps.train.image_present.sum())
    assert all(name.endswith(".jpg") for name in written)
    with pytest.raises(ValueError, match="image_format"):
        write_manifest(gaps, tmp_path, image_format="gif")


def test_manifest_run_saves_loads_and_predicts_exactly(manifests, tmp_path):
    _, splits = manifests
    config = ClassifyConfig(**TINY, fusion="concat", image_size=8)
    run = train_classifier(splits["train"], splits["val"], splits["test"], config=config)
    assert run.classes == sorted({e.label for e in splits["train"]})
    path = run.save(tmp_path / "model.pt")
    loaded = ClassifierRun.load(path)
    assert loaded.config.device == "auto" and loaded.classes == run.classes
    assert loaded.vocab == run.vocab and loaded.image_mean == pytest.approx(run.image_mean)
    assert np.array_equal(loaded.predict_proba(splits["test"]), run.predict_proba(splits["test"]))
    assert loaded.predict_labels(splits["test"]) == [run.classes[i] for i in run.test.predicted]
    assert loaded.evaluate(splits["test"]).accuracy == run.test.accuracy


def test_a_dev_label_outside_the_training_classes_names_file_and_line(manifests):
    _, splits = manifests
    dev = list(splits["val"])
    dev[3] = type(dev[3])(dev[3].text, dev[3].image, "hexagon", dev[3].line, dev[3].path)
    with pytest.raises(ValueError, match=rf"val.jsonl:{dev[3].line}: label 'hexagon' is not"):
        train_classifier(splits["train"], dev, config=ClassifyConfig(**TINY))


def test_a_text_only_baseline_never_opens_an_image(manifests, tmp_path):
    _, splits = manifests
    moved = [type(e)(e.text, tmp_path / "gone.png", e.label, e.line, e.path)
             for e in splits["test"]]  # image files that do not exist
    run = train_classifier(splits["train"], splits["val"], moved,
                           config=ClassifyConfig(**TINY, modality="text"))
    assert isinstance(run.model, UnimodalClassifier) and run.model.modality == "text"
    assert run.image_mean == (0.0, 0.0, 0.0)  # no image statistics for a text-only run
    assert len(run.predict(moved)) == len(moved)


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"fusion": "sum"}, "fusion must be one of"), ({"dim": 0}, r"dim must be .*min 1"),
     ({"lr": 0.0}, r"lr must be .*above 0"), ({"epochs": 1.5}, "epochs must be of type int"),
     ({"encoder_lr": {"audio": 0.1}}, "encoder_lr keys"),
     ({"modality": "text", "fusion_kwargs": {"output_dim": 4}}, "need modality='both'")],
)
def test_config_checks_each_field(changes, message):
    with pytest.raises(ValueError, match=message):
        ClassifyConfig(**changes)


def test_config_round_trips_and_refuses_unknown_or_ill_typed_keys():
    config = ClassifyConfig(fusion="cross_attention", fusion_kwargs={"d_model": 16},
                            image_channels=(16, 32), encoder_lr={"text": 0.05})
    assert ClassifyConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="unknown ClassifyConfig fields"):
        ClassifyConfig.from_dict({"image_kwargs": {"weights": "DEFAULT"}})
    with pytest.raises(ValueError, match="ClassifyConfig.hidden is '8'"):
        ClassifyConfig.from_dict({"hidden": "8"})


def test_fusion_kwargs_are_checked_against_the_fusion_signature(data):
    config = ClassifyConfig(**TINY, fusion="gated", fusion_kwargs={"image_kwargs": {}})
    with pytest.raises(ValueError, match=r"fusion 'gated' takes no argument 'image_kwargs'; "
                                         r"its arguments are \[.*'output_dim'"):
        train_classifier(data, config=config)


def test_wrong_inputs_are_clear_errors(data):
    with pytest.raises(ValueError, match="ClassificationSplit .* or a list of ManifestExample"):
        train_classifier("train.jsonl")
    with pytest.raises(ValueError, match=r"train\[0\] is a dict"):
        train_classifier([{"text": "a", "label": "b"}])
    with pytest.raises(ValueError, match="config must be a ClassifyConfig"):
        train_classifier(data, config={"epochs": 1})
