"""Tests of vocabularies, tag maps and schemes, datasets, collate functions and loaders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from mmtutor.data import (
    CharVocab,
    ClassificationDataset,
    TaggedSentence,
    TaggingDataset,
    TagMap,
    Vocab,
    align_subword_labels,
    channel_stats,
    collate_classification,
    collate_tagging,
    detect_scheme,
    get_spans,
    make_classification,
    make_loaders,
    make_mner,
    read_manifest,
    spans_to_tags,
    to_iob2,
    tokenize,
)

# ---------------------------------------------------------------- vocabularies


def test_vocab_build_encode_decode():
    v = Vocab.build([["The", "cat", "sat"], ["the", "dog"], ["the", "cat"]])
    assert v.symbols[:4] == ["<pad>", "<unk>", "the", "cat"]  # by frequency, then alphabet
    assert v.encode(["THE", "cat", "zebra"]) == [2, 3, 1]
    assert v.decode([2, 3, 0, 1]) == ["the", "cat", "<unk>"]
    assert len(v) == 6 and "Dog" in v and "zebra" not in v
    assert len(Vocab.build([["a", "a", "b"]], min_freq=2)) == 3
    grown = v.extended(["DOG", "fish", "<unk>", "fish"])  # held, new, special, repeated
    assert grown.symbols == [*v.symbols, "fish"] and grown.lowercase
    assert grown.encode(["the", "cat", "fish"]) == [*v.encode(["the", "cat"]), len(v)]
    assert CharVocab.build([["ab"]]).extended("bA").symbols[2:] == ["a", "b", "A"]
    assert len(Vocab.build([["a", "b", "c", "d"]], max_size=3)) == 3
    cased = Vocab.build([["A", "a"]], lowercase=False)
    assert cased.encode(["A", "a"]) == [2, 3]


def test_vocab_save_load_roundtrip(tmp_path):
    v = Vocab.build([["héllo", "world", "😀"]])
    v.save(tmp_path / "v.json")
    assert Vocab.load(tmp_path / "v.json") == v
    cv = CharVocab.build([["Ab", "b"]])
    cv.save(tmp_path / "c.json")
    assert CharVocab.load(tmp_path / "c.json") == cv
    with pytest.raises(ValueError, match="holds 'CharVocab'; expected a saved Vocab"):
        Vocab.load(tmp_path / "c.json")
    (tmp_path / "bad.json").write_text("{oops", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.json:1: invalid JSON"):
        Vocab.load(tmp_path / "bad.json")


def test_char_vocab_keeps_case():
    cv = CharVocab.build([["Paris", "pa"]])
    assert cv.encode("Pa") != cv.encode("pa")
    assert cv.encode("Z") == [1]


def test_vocab_errors():
    with pytest.raises(ValueError, match=r"token_lists\[1\] is a str"):
        Vocab.build([["a"], "a sentence"])
    with pytest.raises(ValueError, match="min_freq must be an integer >= 1"):
        Vocab.build([["a"]], min_freq=0)
    with pytest.raises(ValueError, match="max_size must be None or an integer >= 2"):
        Vocab.build([["a"]], max_size=1)
    with pytest.raises(ValueError, match="id 9 is outside"):
        Vocab.build([["a"]]).decode([9])


def test_tokenize():
    assert tokenize("RT @ana: Paris's best #food!") == [
        "RT",
        "@ana",
        ":",
        "Paris's",
        "best",
        "#food",
        "!",
    ]


# ---------------------------------------------------------------- tags


def test_tag_schemes_and_spans():
    assert to_iob2(["I-PER", "I-PER", "B-PER", "O", "I-LOC"], "iob1") == [
        "B-PER",
        "I-PER",
        "B-PER",
        "O",
        "B-LOC",
    ]
    assert to_iob2(["S-PER", "B-LOC", "E-LOC"], "iobes") == ["B-PER", "B-LOC", "I-LOC"]
    assert detect_scheme([["B-PER", "I-PER"], ["O"]]) == "iob2"
    assert detect_scheme([["O", "I-PER"]]) == "iob1"
    assert detect_scheme([["S-PER"]]) == "iobes"
    tags = ["B-LOC", "I-LOC", "O", "B-PER", "B-PER", "I-ORG"]
    spans = get_spans(tags)
    assert spans == [("LOC", 0, 2), ("PER", 3, 4), ("PER", 4, 5), ("ORG", 5, 6)]
    assert spans_to_tags(spans, 6) == ["B-LOC", "I-LOC", "O", "B-PER", "B-PER", "B-ORG"]
    with pytest.raises(ValueError, match="overlaps"):
        spans_to_tags([("A", 0, 2), ("B", 1, 3)], 4)


def test_tag_map(tmp_path):
    tm = TagMap.build([["O", "B-PER", "I-PER"], ["B-LOC", "O", "B-OTHER"]])
    assert tm.tags == ["O", "B-LOC", "B-OTHER", "B-PER", "I-PER"]
    assert tm.types == ["LOC", "OTHER", "PER"]
    assert tm.decode(tm.encode(["B-PER", "I-PER", "O"])) == ["B-PER", "I-PER", "O"]
    with pytest.raises(ValueError, match="tag 'B-MISC' is not in the tag map"):
        tm.encode(["B-MISC"])
    tm.save(tmp_path / "t.json")
    assert TagMap.load(tmp_path / "t.json") == tm
    full = TagMap.from_types(["PER", "LOC"])
    mask = full.transition_mask()  # O, B-LOC, I-LOC, B-PER, I-PER
    assert mask[1, 2] and mask[2, 2] and not mask[0, 2] and not mask[3, 2] and mask[0, 3]
    assert full.start_mask().tolist() == [True, True, False, True, False]
    with pytest.raises(ValueError, match="tokens and tags must have the same length"):
        TaggedSentence(["a", "b"], ["O"])


def test_align_subword_labels():
    # "Jordan flew to Paris" -> [CLS] Jor ##dan flew to Paris [SEP]
    word_ids = [None, 0, 0, 1, 2, 3, None]
    assert align_subword_labels([3, 0, 0, 1], word_ids) == [-100, 3, -100, 0, 0, 1, -100]
    assert align_subword_labels([3, 0, 0, 1], word_ids, label_all_subwords=True) == [
        -100,
        3,
        3,
        0,
        0,
        1,
        -100,
    ]
    with pytest.raises(ValueError, match=r"word_ids\[1\] is 4"):
        align_subword_labels([1, 2], [None, 4])


# ---------------------------------------------------------------- classification batches


def test_collate_classification_shapes_and_masks():
    images = np.random.default_rng(0).random((4, 3, 8, 8), dtype=np.float32)
    captions = [["a", "red", "circle"], [], ["big", "box"], ["x"]]
    vocab = Vocab.build(captions)
    ds = ClassificationDataset(
        images, captions, [0, 1, 2, 3], vocab, image_present=[True, True, False, True]
    )
    batch = collate_classification([ds[i] for i in range(4)])
    assert batch["tokens"].shape == (4, 3) and batch["tokens"].dtype == torch.long
    assert batch["token_mask"].tolist()[1] == [False, False, False]
    assert batch["token_mask"].sum(1).tolist() == [3, 0, 2, 1]
    assert batch["image"].shape == (4, 3, 8, 8) and batch["image"].dtype == torch.float32
    assert (batch["image"][2] == 0).all()
    assert batch["text_present"].tolist() == [True, False, True, True]
    assert batch["image_present"].tolist() == [True, True, False, True]
    assert batch["label"].dtype == torch.long
    only_empty = collate_classification([ds[1]])
    assert only_empty["tokens"].shape == (1, 1) and not only_empty["token_mask"].any()


def test_images_are_normalised_with_training_statistics():
    data = make_classification(300, 50, 50, missing_image=0.2, seed=1)
    train, val, _ = data.datasets()
    x = train.images._array[torch.from_numpy(train.images.present)]  # normalised, present only
    per_channel = x.transpose(0, 1).reshape(3, -1)
    assert torch.allclose(per_channel.mean(1), torch.zeros(3), atol=1e-4)
    assert torch.allclose(per_channel.std(1), torch.ones(3), atol=1e-3)
    assert (
        val.images.mean
        == train.images.mean
        == channel_stats(data.train.images, data.train.image_present)[0]
    )


def test_array_images_with_an_augmentation_transform():
    images = np.random.default_rng(1).random((3, 3, 8, 8), dtype=np.float32)
    captions = [["a"], ["b"], ["c"]]
    vocab = Vocab.build(captions)
    plain = ClassificationDataset(images, captions, [0, 1, 0], vocab)
    flipped = ClassificationDataset(
        images, captions, [0, 1, 0], vocab, transform=lambda x: x.flip(-1)
    )
    assert torch.allclose(flipped[1]["image"], plain[1]["image"].flip(-1), atol=1e-6)


def test_classification_loaders_one_line_and_seeded():
    data = make_classification(100, 20, 30, missing_text=0.3, seed=2)
    train_dl, val_dl, test_dl = data.loaders(batch_size=16, seed=5)
    first = next(iter(train_dl))
    assert first["image"].shape == (16, 3, 32, 32) and first["label"].shape == (16,)
    again = next(iter(data.loaders(batch_size=16, seed=5).train))
    assert torch.equal(first["tokens"], again["tokens"])
    assert sum(len(b["label"]) for b in test_dl) == 30
    assert len(data.vocab) > 20


def test_classification_dataset_from_files(tmp_path):
    rng = np.random.default_rng(0)
    lines = []
    for i, label in enumerate(["cat", "dog", "cat"]):
        Image.fromarray(rng.integers(0, 255, (10, 14, 3), dtype=np.uint8)).save(
            tmp_path / f"{i}.png"
        )
        lines.append({"text": f"a photo of a {label}", "image": f"{i}.png", "label": label})
    lines.append({"text": "", "image": None, "label": "dog"})
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(x) for x in lines), encoding="utf-8")
    examples = read_manifest(tmp_path / "m.jsonl", tmp_path)
    vocab = Vocab.build(tokenize(e.text) for e in examples)
    ds = ClassificationDataset.from_manifest(examples, vocab, image_size=24)
    batch = collate_classification([ds[i] for i in range(4)])
    assert batch["image"].shape == (4, 3, 24, 24)
    assert batch["label"].tolist() == [0, 1, 0, 1]
    assert batch["image_present"].tolist() == [True, True, True, False]
    assert batch["text_present"].tolist() == [True, True, True, False]
    with pytest.raises(ValueError, match="label 'cat' is not one of the classes"):
        ClassificationDataset.from_manifest(examples, vocab, classes=["dog"])


def test_dataset_argument_errors():
    vocab = Vocab.build([["a"]])
    images = np.zeros((2, 3, 8, 8), dtype=np.float32)
    with pytest.raises(ValueError, match=r"images must have shape \(2, 3, H, W\).*got \(2, 8, 8\)"):
        ClassificationDataset(images[:, 0], [["a"], ["a"]], [0, 1], vocab)
    with pytest.raises(ValueError, match=r"captions\[0\] is a str"):
        ClassificationDataset(images, ["a b", ["a"]], [0, 1], vocab)
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\)"):
        ClassificationDataset(images, [["a"], ["a"]], [0], vocab)
    with pytest.raises(ValueError, match="samples must be a non-empty list"):
        collate_classification([])


# ---------------------------------------------------------------- tagging batches


def test_collate_tagging_shapes_and_padding():
    sentences = [
        TaggedSentence(["Jordan", "flew", "to", "Paris"], ["B-PER", "O", "O", "B-LOC"]),
        TaggedSentence(["Hi"], ["O"]),
    ]
    vocab = Vocab.build(s.tokens for s in sentences)
    chars = CharVocab.build(s.tokens for s in sentences)
    tags = TagMap.from_types(["PER", "LOC"])
    ds = TaggingDataset(sentences, vocab, chars, tags, max_word_len=4)
    batch = collate_tagging([ds[0], ds[1]])
    assert batch["tokens"].shape == (2, 4) and batch["chars"].shape == (2, 4, 4)
    assert batch["tags"][1].tolist() == [0, -100, -100, -100]
    assert batch["tags"][0].tolist() == tags.encode(sentences[0].tags)
    assert batch["token_mask"].tolist() == [[True] * 4, [True, False, False, False]]
    assert (batch["chars"][1, 1:] == 0).all() and (batch["chars"][1, 0, :2] > 0).all()
    assert batch["image"].shape == (2, 3, 32, 32) and not batch["image_present"].any()


def test_mner_loaders():
    data = make_mner(60, 10, 10, seed=1)
    train_dl, val_dl, _ = data.loaders(batch_size=8)
    batch = next(iter(train_dl))
    b, t = batch["tokens"].shape
    assert batch["chars"].shape[:2] == (b, t) and batch["tags"].shape == (b, t)
    assert batch["image"].shape == (b, 3, 32, 32) and batch["image_present"].all()
    assert ((batch["tags"] == -100) == ~batch["token_mask"]).all()
    assert len(data.tag_map) == 9


def test_make_loaders_rejects_foreign_datasets():
    with pytest.raises(ValueError, match="has no 'collate' attribute"):
        make_loaders(torch.utils.data.TensorDataset(torch.zeros(3)))
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        make_loaders(None, batch_size=0)
