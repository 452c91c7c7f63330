"""Checkpoints of both task runs (NERRun, ClassifierRun): safe to load, and portable.

A checkpoint is data, so loading one must never download, import or execute anything, and
every way it can be wrong (pickled objects, unknown keys, ill-typed values, fusion arguments
that reach the encoders, weights of another shape, a corrupt file) is a ValueError that
names the file. The stored device is "auto": a run trained on a GPU loads on a CPU.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mmtutor.data import make_classification, make_mner
from mmtutor.tasks import (
    ClassifierRun,
    ClassifyConfig,
    NERConfig,
    NERRun,
    train_classifier,
    train_ner,
)

KINDS = ("classify", "ner")


class Payload:
    """An arbitrary Python object: pickling it into a checkpoint must be refused on load."""

    def __reduce__(self):
        return (print, ("this ran while loading",))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny trained run of each kind, its checkpoint, and the inputs to predict on."""
    folder = tmp_path_factory.mktemp("checkpoints")
    shapes = make_classification(64, 16, 24, image_size=8, seed=0)
    classify = train_classifier(shapes, config=ClassifyConfig(
        dim=8, epochs=1, image_channels=[8], fusion="gated", device="cpu"))
    mner = make_mner(40, 10, 12, image_size=8, seed=0)
    ner = train_ner(mner.train.sentences, mner.val.sentences, images=(
        mner.train.images, mner.val.images), config=NERConfig(
        dim=8, epochs=1, fusion="concat", device="cpu"))
    return {
        "classify": (ClassifierRun, classify, classify.save(folder / "c.pt"),
                     lambda run: run.predict_proba(shapes.test)),
        "ner": (NERRun, ner, ner.save(folder / "n.pt"),
                lambda run: run.predict(mner.test.sentences, mner.test.images)),
    }


def rewrite(source, target, change):
    """Copy a checkpoint with its metadata changed by ``change(extra)``."""
    saved = torch.load(source, weights_only=True)
    extra = json.loads(saved["extra"])
    change(extra)
    torch.save({"state_dict": saved["state_dict"], "extra": json.dumps(extra)}, target)
    return target


@pytest.fixture
def no_downloads(monkeypatch):
    """Fail the test if anything tries to fetch weights."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a download was attempted: {args}")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


@pytest.mark.parametrize("kind", KINDS)
def test_stored_device_is_auto_and_a_cuda_checkpoint_loads_on_a_cpu(runs, kind, tmp_path,
                                                                    monkeypatch):
    cls, run, path, use = runs[kind]
    assert json.loads(torch.load(path, weights_only=True)["extra"])["config"]["device"] == "auto"
    cuda = rewrite(path, tmp_path / "cuda.pt", lambda e: e["config"].update(device="cuda"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a machine without a GPU
    monkeypatch.delenv("MMTUTOR_DEVICE", raising=False)
    loaded = cls.load(cuda)
    assert next(loaded.model.parameters()).device.type == "cpu"
    expected, got = use(run), use(loaded)
    assert np.array_equal(expected, got) if kind == "classify" else expected == got


@pytest.mark.parametrize("kind", KINDS)
def test_fusion_kwargs_that_reach_the_encoders_are_refused(runs, kind, tmp_path, no_downloads):
    cls, _, path, _ = runs[kind]
    hostile = rewrite(path, tmp_path / "h.pt", lambda e: e["config"].update(
        fusion_kwargs={"image_kwargs": {"weights": "DEFAULT"}}))
    with pytest.raises(ValueError, match=rf"{hostile}.*takes no argument 'image_kwargs'"):
        cls.load(hostile)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("change", "message"),
    [(lambda e: e.update(hook="os.system"), "expected exactly"),
     (lambda e: e.pop("sizes"), "expected exactly"),
     (lambda e: e["config"].update(image_kwargs={"weights": "DEFAULT"}), "unknown .*Config fields"),
     (lambda e: e["config"].update(epochs="2"), r"Config.epochs is '2'"),
     (lambda e: e["config"].update(dim=16), "weights do not fit"),
     (lambda e: e.update(sizes=[1, 2]), "metadata 'sizes'"),
     (lambda e: e.update(format="mmtutor-other/1"), "checkpoint")],
    ids=["extra-key", "missing-key", "unknown-config-key", "ill-typed", "shape", "bad-type",
         "format"],
)
def test_invalid_metadata_is_a_value_error_naming_the_file(runs, kind, change, message,
                                                           tmp_path, no_downloads):
    cls, _, path, _ = runs[kind]
    bad = rewrite(path, tmp_path / "bad.pt", change)
    with pytest.raises(ValueError, match=message) as caught:
        cls.load(bad)
    assert str(bad) in str(caught.value)


@pytest.mark.parametrize("kind", KINDS)
def test_a_pickled_object_is_never_executed(runs, kind, tmp_path, capsys):
    cls, _, path, _ = runs[kind]
    saved = torch.load(path, weights_only=True)
    torch.save({"state_dict": saved["state_dict"], "extra": Payload()}, tmp_path / "p.pt")
    with pytest.raises(ValueError, match="p.pt"):
        cls.load(tmp_path / "p.pt")
    assert "this ran" not in capsys.readouterr().out


@pytest.mark.parametrize("kind", KINDS)
def test_corrupt_files_and_the_other_kind_are_value_errors(runs, kind, tmp_path):
    cls, _, path, _ = runs[kind]
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(path.read_bytes()[:200])
    for bad in (truncated, tmp_path / "missing.pt"):
        with pytest.raises(ValueError, match=bad.name):
            cls.load(bad)
    other = runs["ner" if kind == "classify" else "classify"][2]
    with pytest.raises(ValueError, match=f"{other}: not a 'mmtutor-{kind}/1' checkpoint"):
        cls.load(other)
