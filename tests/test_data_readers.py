"""Tests of the file readers on small fixture files written here, and of their error messages."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmtutor.data import (
    CharVocab,
    TaggingDataset,
    TagMap,
    Vocab,
    collate_tagging,
    find_real_data,
    image_transform,
    load_image,
    read_conll,
    read_manifest,
    read_twitter_mner,
)
from mmtutor.data._files import safe_join


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def write_image(path: Path, size: tuple[int, int] = (20, 12)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return path


CONLL_IOB1 = """-DOCSTART- -X- -X- O

EU NNP B-NP I-ORG
rejects VBZ B-VP O
German JJ B-NP I-MISC
call NN I-NP O
. . O O

Peter NNP B-NP I-PER
Blackburn NNP I-NP I-PER
met VBD B-VP O
Anna NNP B-NP B-PER
"""


def test_read_conll_iob1_with_docstart(tmp_path):
    sentences = read_conll(write(tmp_path / "train.txt", CONLL_IOB1))
    assert len(sentences) == 2
    assert sentences[0].tokens == ["EU", "rejects", "German", "call", "."]
    assert sentences[0].tags == ["B-ORG", "O", "B-MISC", "O", "O"]
    # IOB1's B- separates two adjacent same-type entities; here it follows O -> stays B-
    assert sentences[1].tags == ["B-PER", "I-PER", "O", "B-PER"]
    assert sentences[0].image_id is None


def test_read_conll_tabs_iob2_and_other_tags(tmp_path):
    text = "Obama\tB-PER\nin\tO\nNew\tB-OTHER\nYork\tI-OTHER\r\n\r\n\nHi\tO\n"
    sentences = read_conll(write(tmp_path / "t.txt", "\ufeff" + text))
    assert [s.tags for s in sentences] == [["B-PER", "O", "B-OTHER", "I-OTHER"], ["O"]]
    assert sentences[0].tokens[0] == "Obama"  # the BOM is gone


def test_read_conll_iobes_and_explicit_schemes(tmp_path):
    path = write(tmp_path / "e.txt", "New B-LOC\nYork E-LOC\nis O\nUK S-LOC\n")
    assert read_conll(path)[0].tags == ["B-LOC", "I-LOC", "O", "B-LOC"]
    assert read_conll(path, scheme="iobes")[0].tags == ["B-LOC", "I-LOC", "O", "B-LOC"]
    iob1 = write(tmp_path / "i.txt", "a I-PER\nb I-PER\nc B-PER\n")
    assert read_conll(iob1, scheme="iob1")[0].tags == ["B-PER", "I-PER", "B-PER"]


def test_read_conll_streams_large_files(tmp_path):
    block = "w O\nx B-PER\ny I-PER\n\n"
    sentences = read_conll(write(tmp_path / "big.txt", block * 3000))
    assert len(sentences) == 3000 and sentences[-1].tags == ["O", "B-PER", "I-PER"]


# ---------------------------------------------------------------- Twitter MNER

TWITTER = """IMGID:101
RT\tO
@jk\tO
Jordan\tB-PER
in\tO
Paris\tB-LOC

IMGID:102
Apple\tB-ORG
iPhone\tB-OTHER
launch\tO

IMGID:103
hello\tO
"""


@pytest.fixture
def twitter(tmp_path):
    images = tmp_path / "images"
    for image_id in ("101", "102"):
        write_image(images / f"{image_id}.jpg")
    return write(tmp_path / "train.txt", TWITTER), images


def test_read_twitter_text_only(twitter):
    path, _ = twitter
    corpus = read_twitter_mner(path)
    assert [s.image_id for s in corpus] == ["101", "102", "103"]
    assert corpus[1].tags == ["B-ORG", "B-OTHER", "O"]
    assert all(s.image_path is None for s in corpus)


def test_read_twitter_missing_image_is_an_error_by_default(twitter):
    path, images = twitter
    with pytest.raises(
        ValueError, match=r"train\.txt:13: the image of IMGID:103 is missing: .*103\.jpg"
    ):
        read_twitter_mner(path, images)


def test_read_twitter_missing_image_masked(twitter):
    path, images = twitter
    with pytest.warns(UserWarning, match="1 of 3 tweets have no image file"):
        corpus = read_twitter_mner(path, images, missing_image="mask")
    assert corpus.missing_images == ["103"]
    assert corpus[0].image_path == (images / "101.jpg").resolve()
    assert corpus[2].image_path is None
    # the corpus feeds a tagging dataset directly; the missing image becomes a zero image
    vocab, chars = Vocab.build(s.tokens for s in corpus), CharVocab.build(s.tokens for s in corpus)
    tags = TagMap.build(s.tags for s in corpus)
    ds = TaggingDataset(corpus, vocab, chars, tags, [s.image_path for s in corpus], image_size=16)
    batch = collate_tagging([ds[i] for i in range(3)])
    assert batch["image"].shape == (3, 3, 16, 16)
    assert batch["image_present"].tolist() == [True, True, False]
    assert (batch["image"][2] == 0).all() and batch["image"][0].abs().sum() > 0


def test_read_twitter_all_images_present_no_warning(twitter):
    path, images = twitter
    write_image(images / "103.jpg")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        corpus = read_twitter_mner(path, images)
    assert corpus.missing_images == [] and all(s.image_path is not None for s in corpus)


def test_unicode_space_tokens_are_kept(tmp_path):
    # A real Twitter-2015 validation file has a token that is a lone U+00A0 before its tab;
    # str.split() dropped it and the reader stopped with "found 1 column".
    text = "IMGID:7\nRT\tO\n\u00a0\tO\nNew York\tB-LOC\n\u3000\tO\nhi\tO \n"
    corpus = read_twitter_mner(write(tmp_path / "valid.txt", text))
    assert corpus[0].tokens == ["RT", "\u00a0", "New York", "\u3000", "hi"]
    assert corpus[0].tags == ["O", "O", "B-LOC", "O", "O"]
    # space-separated CoNLL: the columns are split at runs of ASCII spaces only
    conll = read_conll(write(tmp_path / "c.txt", "EU  NNP B-ORG\n\u00a0 SP O\n"))
    assert conll[0].tokens == ["EU", "\u00a0"] and conll[0].tags == ["B-ORG", "O"]


# ---------------------------------------------------------------- manifest


def test_read_manifest(tmp_path):
    write_image(tmp_path / "img" / "a.png")
    lines = [
        {"text": "a red circle", "image": "img/a.png", "label": "circle"},
        {"text": "no picture", "image": None, "label": 2},
    ]
    path = write(tmp_path / "m.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    examples = read_manifest(path, tmp_path)
    assert [e.label for e in examples] == ["circle", 2]
    assert examples[0].image == (tmp_path / "img" / "a.png").resolve()
    assert examples[1].image is None and examples[1].line == 2


def test_load_image_and_transform(tmp_path):
    img = load_image(write_image(tmp_path / "x.jpg", size=(40, 24)))
    x = image_transform(16)(img)
    assert tuple(x.shape) == (3, 16, 16) and x.dtype.is_floating_point
    with pytest.raises(ValueError, match="does not exist"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ValueError, match="not a readable image"):
        load_image(write(tmp_path / "bad.jpg", "not an image"))


# ---------------------------------------------------------------- malformed input

MALFORMED = [
    # (reader, file content, expected message)
    (
        "conll",
        "EU B-ORG\nrejects\n",
        r"bad\.txt:2: found 1 column \('rejects'\); expected at least 2",
    ),
    (
        "conll",
        "EU B-ORG\ncall PERSON\n",
        r"bad\.txt:2: tag 'PERSON' is not a BIO tag; expected 'O'",
    ),
    ("conll", "EU B-\n", r"bad\.txt:1: tag 'B-' is not a BIO tag"),
    ("conll", "EU o\n", r"bad\.txt:1: tag 'o' is not a BIO tag"),
    ("conll", "EU NNP B-ORG\nNew York B-LOC I-LOC\n", r"bad\.txt:2: found 4 columns .*expected 3"),
    ("conll_iob2", "a O\nb I-PER\n", r"bad\.txt:2: found 'I-PER' after 'O'.*expected B-"),
    ("conll_iob2", "a S-PER\n", r"bad\.txt:1: found the IOBES tag 'S-PER'"),
    ("conll_bytes", b"ok O\n\xff\xfe B-PER\n", r"bad\.txt:2: found bytes that are not UTF-8"),
    ("twitter", "Jordan\tB-PER\n", r"bad\.txt:1: found a token line .* before any IMGID line"),
    ("twitter", "IMGID:\nJordan\tB-PER\n", r"bad\.txt:1: found an empty image id"),
    (
        "twitter",
        "IMGID:1\na\tO\nIMGID:2\nb\tO\n",
        r"bad\.txt:3: found an IMGID line inside a tweet",
    ),
    (
        "twitter",
        "IMGID:1\n\nIMGID:2\nb\tO\n",
        r"bad\.txt:1: found a tweet 'IMGID:1' with no token lines",
    ),
    ("twitter", "IMGID:1\na\tO\n\nIMGID:2\n", r"bad\.txt:4: .*'IMGID:2' with no token lines"),
    (
        "twitter_img",
        "IMGID:../secret\na\tO\n",
        r"bad\.txt:1: found image id '\.\./secret', which points outside",
    ),
    ("twitter_img", "IMGID:/etc/passwd\na\tO\n", r"bad\.txt:1: found image id '/etc/passwd'"),
    ("twitter", "IMGID:1\nJordan\n", r"bad\.txt:2: found 1 column"),
    ("twitter", "IMGID:1\na\tO\n\u00a0\n", r"bad\.txt:3: found 1 column"),
    ("twitter", "IMGID:1\na\tO\n\tB-PER\n", r"bad\.txt:3: found an empty token"),
    (
        "manifest",
        '{"text": "a", "image": null, "label": 1}\n{"text": "b",\n',
        r"bad\.txt:2: found invalid JSON",
    ),
    # an absent "image" is a missing modality (read_manifest); an absent "label" is an error
    ("manifest", '{"text": "a", "image": null}\n', r"bad\.txt:1: the object has no key 'label'"),
    ("manifest", '["a", "b"]\n', r"bad\.txt:1: found a JSON list; expected a JSON object"),
    (
        "manifest",
        '{"text": 3, "image": null, "label": 1}\n',
        r"bad\.txt:1: 'text' is a int; expected a string",
    ),
    ("manifest", '{"text": "a", "image": null, "label": true}\n', r"bad\.txt:1: 'label' is True"),
    (
        "manifest",
        '{"text": "a", "image": "../x.jpg", "label": 1}\n',
        r"bad\.txt:1: 'image' is '\.\./x\.jpg', which points outside",
    ),
    (
        "manifest",
        '{"text": "a", "image": "/etc/x.jpg", "label": 1}\n',
        r"bad\.txt:1: 'image' is '/etc/x\.jpg'",
    ),
    (
        "manifest",
        '\n{"text": "a", "image": "gone.jpg", "label": 1}\n',
        r"bad\.txt:2: image file .*gone\.jpg does not exist",
    ),
]


@pytest.mark.parametrize(("reader", "content", "match"), MALFORMED)
def test_malformed_input_names_file_and_line(tmp_path, reader, content, match):
    path = tmp_path / "bad.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        write(path, content)
    (tmp_path / "images").mkdir()
    with pytest.raises(ValueError, match=match):
        if reader.startswith("conll"):
            read_conll(path, scheme="iob2" if reader == "conll_iob2" else "auto")
        elif reader == "twitter":
            read_twitter_mner(path)
        elif reader == "twitter_img":
            read_twitter_mner(path, tmp_path / "images")
        else:
            read_manifest(path, tmp_path / "images")


def test_bad_reader_arguments(tmp_path):
    path = write(tmp_path / "ok.txt", "a O\n")
    with pytest.raises(ValueError, match="scheme must be 'auto' or one of"):
        read_conll(path, scheme="bio")
    with pytest.raises(ValueError, match="missing_image must be 'error' or 'mask'"):
        read_twitter_mner(path, missing_image="skip")
    with pytest.raises(ValueError, match="image_dir .* is not a folder"):
        read_twitter_mner(path, tmp_path / "nowhere")
    with pytest.raises(ValueError, match="no such file"):
        read_conll(tmp_path / "missing.txt")


def test_safe_join_refuses_escapes(tmp_path):
    assert safe_join(tmp_path, "a/b.jpg") == (tmp_path / "a" / "b.jpg").resolve()
    for bad in ("../a.jpg", "a/../../b.jpg", "/etc/passwd", ""):
        assert safe_join(tmp_path, bad) is None


# ---------------------------------------------------------------- MMTUTOR_DATA


def test_find_real_data(tmp_path, monkeypatch):
    monkeypatch.delenv("MMTUTOR_DATA", raising=False)
    assert find_real_data("conll2003") is None
    monkeypatch.setenv("MMTUTOR_DATA", str(tmp_path))
    root = tmp_path / "conll2003"
    root.mkdir()
    for name in ("train.txt", "valid.txt"):
        write(root / name, "a O\n")
    assert find_real_data("conll2003") is None  # test.txt is missing
    write(root / "test.txt", "a O\n")
    paths = find_real_data("conll2003")
    assert paths is not None and paths["val"] == (root / "valid.txt").resolve()
    assert find_real_data("mine", files={"data": "conll2003/train.txt"}) is None
    with pytest.raises(ValueError, match="has no known layout"):
        find_real_data("imagenet")
    with pytest.raises(ValueError, match="plain folder name"):
        find_real_data("../etc")
