"""Tests of the generated data: determinism, the ceilings against independent estimates,
and that images and captions really carry what the generative model says."""

from __future__ import annotations

import numpy as np
import pytest

from mmtutor.data import (
    AMBIGUOUS,
    CUES,
    ENTITY_TYPES,
    MODES,
    SHAPES,
    SYNONYMS,
    TYPE_SHAPES,
    draw_shapes,
    get_spans,
    joint_table,
    make_classification,
    make_mner,
)

# ---------------------------------------------------------------- helpers: independent readers


def _distance(images: np.ndarray) -> np.ndarray:
    """``(N, 3, S, S)`` -> ``(N, S, S)`` distance of each denoised pixel from the border."""
    n, _, s, _ = images.shape
    pad = np.pad(images, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    offsets = ((1, 1), (0, 1), (2, 1), (1, 0), (1, 2))  # a plus-shaped denoising average
    blur = sum(pad[:, :, i : i + s, j : j + s] for i, j in offsets) / len(offsets)
    edges = (images[:, :, 0, :], images[:, :, -1, :], images[:, :, :, 0], images[:, :, :, -1])
    background = np.median(np.concatenate(edges, axis=2), axis=2)  # (N, 3)
    return np.linalg.norm(blur - background[:, :, None, None], axis=1)  # (N, S, S)


def _contrast(images: np.ndarray) -> np.ndarray:
    """``(N,)`` about ``|foreground - background|``; near 0 for a blank image."""
    return np.percentile(_distance(images).reshape(len(images), -1), 99, axis=1)


def is_blank(images: np.ndarray) -> np.ndarray:
    """``(N,)`` True where the image shows no shape (shapes differ by >= 0.6 in colour)."""
    return _contrast(images) < 0.3


def _foreground(images: np.ndarray) -> np.ndarray:
    """``(N, 3, S, S)`` -> ``(N, S, S)`` mask of pixels far from the border colour."""
    return _distance(images) > 0.5 * _contrast(images)[:, None, None]


def _crop(mask: np.ndarray, out: int = 16) -> np.ndarray:
    """The mask's bounding square, resampled to ``out x out`` (removes position and size)."""
    rows, cols = np.where(mask)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    side = max(r1 - r0, c1 - c0)
    grid = (np.arange(out) + 0.5) / out * side - side / 2
    ri = np.clip(((r0 + r1) / 2 + grid).astype(int), 0, mask.shape[0] - 1)
    ci = np.clip(((c0 + c1) / 2 + grid).astype(int), 0, mask.shape[1] - 1)
    return mask[np.ix_(ri, ci)]


def read_shapes(images: np.ndarray, num_classes: int) -> np.ndarray:
    """Nearest-template classifier: which shape do the pixels show? ``(N,)``."""
    rng = np.random.default_rng(123)
    size = images.shape[-1]
    templates = np.stack(
        [
            np.mean(
                [
                    _crop(m)
                    for m in _foreground(draw_shapes(np.full(20, k), rng=rng, image_size=size))
                ],
                axis=0,
            )
            for k in range(num_classes)
        ]
    )  # (C, 16, 16)
    crops = np.stack([_crop(m) for m in _foreground(images)]).astype(float)  # (N, 16, 16)
    return ((crops[:, None] - templates[None]) ** 2).sum(axis=(2, 3)).argmin(axis=1)


def read_key(caption: list[str], class_names: tuple[str, ...]) -> int:
    """The class the caption's key word names, -1 if none (fails on two key words)."""
    found = [c for c, name in enumerate(class_names) for w in caption if w in SYNONYMS[name]]
    assert len(found) <= 1, caption
    return found[0] if found else -1


def within(value: float, target: float, n: int, sigmas: float = 4.0) -> bool:
    """``value`` is a binomial proportion within ``sigmas`` standard errors of ``target``."""
    se = np.sqrt(max(target * (1 - target), 0.01) / n)
    return abs(value - target) <= sigmas * se


# ---------------------------------------------------------------- classification


@pytest.fixture(scope="module")
def default_data():
    return make_classification(600, 50, 1000, seed=0)


def test_classification_is_deterministic():
    a = make_classification(40, 10, 30, seed=7)
    b = make_classification(40, 10, 30, seed=7)
    c = make_classification(40, 10, 30, seed=8)
    for name in ("train", "val", "test"):
        sa, sb = getattr(a, name), getattr(b, name)
        assert sa.images.tobytes() == sb.images.tobytes()
        assert sa.captions == sb.captions
        assert np.array_equal(sa.labels, sb.labels)
    assert a.train.images.tobytes() != c.train.images.tobytes()
    assert a.train.captions != c.train.captions


def test_test_split_does_not_depend_on_train_size():
    a = make_classification(30, 5, 40, seed=1)
    b = make_classification(90, 5, 40, seed=1)
    assert a.test.images.tobytes() == b.test.images.tobytes()
    assert a.ceilings == b.ceilings


def test_shapes_and_types(default_data):
    s = default_data.train
    assert s.images.shape == (600, 3, 32, 32) and s.images.dtype == np.float32
    assert 0.0 <= s.images.min() and s.images.max() <= 1.0
    assert s.labels.dtype == np.int64 and set(np.unique(s.labels)) == {0, 1, 2, 3}
    assert default_data.class_names == SHAPES[:4]
    assert all(6 <= len(c) <= 14 for c in s.captions)


def test_default_ceilings_match_closed_form(default_data):
    # image alone: right in image and redundant modes, chance otherwise: 0.5 + 0.5 / 4;
    # joint: wrong only for synergy samples with s == k != 0 (redundancy explains them better)
    expected = default_data.expected_ceilings
    assert expected["image"] == pytest.approx(0.625)
    assert expected["text"] == pytest.approx(0.625)
    assert expected["joint"] == pytest.approx(1 - 0.2 * 0.25 * 0.75)
    assert expected["chance"] == pytest.approx(0.25)
    for key in ("text", "image", "joint"):
        assert within(default_data.ceilings[key], expected[key], len(default_data.test))


def test_joint_table_matches_sample_frequencies():
    data = make_classification(6000, 0, 1, image_noise=0.2, text_noise=0.1, seed=2)
    s, c = data.train, data.num_classes
    counts = np.zeros((c, c + 1, c + 1))
    np.add.at(
        counts,
        (
            s.labels,
            np.where(s.shape_class < 0, c, s.shape_class),
            np.where(s.key_class < 0, c, s.key_class),
        ),
        1,
    )
    total_variation = 0.5 * np.abs(counts / counts.sum() - data.table).sum()
    assert data.table.sum() == pytest.approx(1.0)
    assert total_variation < 0.05


def test_ceilings_agree_with_plug_in_bayes_from_observables():
    """Estimate the Bayes rule from training counts of what a model can observe (the shape
    read from pixels, the key word read from the caption) and score it on the test split."""
    data = make_classification(3000, 0, 1500, text_noise=0.2, seed=4)
    c = data.num_classes

    def observe(split):
        shape = read_shapes(split.images, c)
        shape = np.where(is_blank(split.images), c, shape)
        key = np.array([read_key(t, data.class_names) for t in split.captions])
        return shape, np.where(key < 0, c, key)

    s_tr, k_tr = observe(data.train)
    s_te, k_te = observe(data.test)
    counts = np.zeros((c, c + 1, c + 1))
    np.add.at(counts, (data.train.labels, s_tr, k_tr), 1)
    y = data.test.labels
    plug_in = {
        "joint": np.mean(counts.argmax(0)[s_te, k_te] == y),
        "image": np.mean(counts.sum(2).argmax(0)[s_te] == y),
        "text": np.mean(counts.sum(1).argmax(0)[k_te] == y),
    }
    for key, value in plug_in.items():
        assert abs(value - data.ceilings[key]) < 0.03, (key, value, data.ceilings[key])


def test_redundancy_only_makes_the_ceilings_equal():
    data = make_classification(20, 0, 400, image_unique=0, text_unique=0, redundancy=1, synergy=0)
    assert data.ceilings["text"] == data.ceilings["image"] == data.ceilings["joint"] == 1.0
    noisy = make_classification(
        20,
        0,
        1,
        image_unique=0,
        text_unique=0,
        redundancy=1,
        synergy=0,
        image_noise=0.4,
        text_noise=0.4,
    )
    assert noisy.expected_ceilings["text"] == pytest.approx(noisy.expected_ceilings["image"])


def test_synergy_only_leaves_each_modality_at_chance():
    data = make_classification(20, 0, 2000, image_unique=0, text_unique=0, redundancy=0, synergy=1)
    assert within(data.ceilings["image"], 0.25, 2000)
    assert within(data.ceilings["text"], 0.25, 2000)
    assert data.ceilings["joint"] == 1.0
    y, s, k = data.test.labels, data.test.shape_class, data.test.key_class
    assert np.array_equal(y, (s + k) % 4)


def test_image_unique_only_leaves_text_at_chance():
    data = make_classification(20, 0, 2000, image_unique=1, text_unique=0, redundancy=0, synergy=0)
    assert within(data.ceilings["text"], 0.25, 2000)
    assert data.ceilings["image"] == data.ceilings["joint"] == 1.0
    assert (data.test.key_class == -1).all()  # the caption names no class
    rand = make_classification(
        20, 0, 1, image_unique=1, text_unique=0, redundancy=0, synergy=0, uninformative="random"
    )
    assert rand.expected_ceilings["text"] == pytest.approx(0.25)


def test_distractors_cap_the_joint_ceiling():
    blank = make_classification(20, 0, 1)
    rand = make_classification(20, 0, 1, uninformative="random")
    assert rand.expected_ceilings["joint"] < blank.expected_ceilings["joint"] - 0.2


@pytest.mark.parametrize("noise", ["image_noise", "text_noise"])
def test_noise_lowers_its_own_ceiling(noise):
    clean = make_classification(20, 0, 1).expected_ceilings
    noisy = make_classification(20, 0, 1, **{noise: 0.5}).expected_ceilings
    own, other = ("image", "text") if noise == "image_noise" else ("text", "image")
    assert noisy[own] < clean[own] - 0.1
    assert noisy[other] == pytest.approx(clean[other])
    assert noisy["joint"] < clean["joint"]
    # closed form: the label shows in half the samples (own-unique + redundant), and there
    # the drawn class is right with prob (1 - eps) + eps / C; elsewhere the guess is chance
    assert noisy[own] == pytest.approx(0.5 * (0.5 + 0.5 / 4) + 0.5 * 0.25)


def test_missing_modalities():
    data = make_classification(3000, 0, 200, missing_image=0.3, missing_text=0.2, seed=5)
    s = data.train
    assert within(float((~s.image_present).mean()), 0.3, 3000)
    assert within(float((~s.text_present).mean()), 0.2, 3000)
    assert not (~s.image_present & ~s.text_present).any()
    assert (s.images[~s.image_present] == 0).all()
    assert all(len(c) == 0 for c, p in zip(s.captions, s.text_present, strict=True) if not p)
    assert data.expected_ceilings["image"] == pytest.approx(0.7 * 0.625 + 0.3 * 0.25)


def test_oracles_fall_back_when_a_modality_is_missing():
    """Per sample: without an image the joint oracle is the text oracle and the image oracle
    can only guess one class; without a text, the other way round."""
    data = make_classification(2000, 0, 1, missing_image=0.3, missing_text=0.2, seed=7)
    s = data.train
    for gone, other in (("image", "text"), ("text", "image")):
        missing = ~getattr(s, f"{gone}_present")
        assert missing.sum() > 100
        assert np.array_equal(s.oracle["joint"][missing], s.oracle[other][missing]), gone
        assert len(np.unique(s.oracle[gone][missing])) == 1, gone
        # where both are present the joint oracle does use both (it differs somewhere)
    both = s.image_present & s.text_present
    assert (s.oracle["joint"][both] != s.oracle["text"][both]).any()


def test_images_show_the_shape_class():
    """Pixels are readable: a nearest-template classifier reads the shape almost always."""
    for size, minimum in ((32, 0.99), (16, 0.95)):
        data = make_classification(400, 0, 1, num_classes=6, image_size=size, seed=size)
        s = data.train
        shown = s.shape_class >= 0
        read = read_shapes(s.images[shown], 6)
        assert np.mean(read == s.shape_class[shown]) >= minimum, size
        assert np.array_equal(is_blank(s.images), ~shown)  # blank images show no shape


def test_labels_follow_the_modes(default_data):
    s = default_data.train
    key = np.array([read_key(t, default_data.class_names) for t in s.captions])
    assert np.array_equal(key, s.key_class)
    mode = np.array(MODES)[s.mode]
    assert np.array_equal(s.labels[mode == "image"], s.shape_class[mode == "image"])
    assert np.array_equal(s.labels[mode == "text"], key[mode == "text"])
    assert (key[mode == "image"] == -1).all() and (s.shape_class[mode == "text"] == -1).all()
    weights = np.bincount(s.mode, minlength=4) / len(s)
    assert np.allclose(weights, [0.3, 0.3, 0.2, 0.2], atol=0.07)


def test_to_frame_and_repr(default_data):
    frame = default_data.to_frame()
    assert len(frame) == 1650
    assert {"split", "label", "mode", "caption", "oracle_joint"} <= set(frame.columns)
    assert "joint=" in repr(default_data)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"image_unique": 0, "text_unique": 0, "redundancy": 0, "synergy": 0}, "at least one"),
        ({"synergy": -1}, "synergy must be a number >= 0"),
        ({"missing_image": 0.7, "missing_text": 0.5}, "missing_image \\+ missing_text"),
        ({"num_classes": 7}, "num_classes must be in \\[2, 6\\]"),
        ({"image_noise": 1.5}, "image_noise must be a probability"),
        ({"uninformative": "zero"}, "uninformative must be"),
        ({"image_size": 4}, "image_size must be an integer >= 8"),
    ],
)
def test_classification_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_classification(10, 0, 10, **kwargs)


def test_joint_table_rejects_bad_mode():
    with pytest.raises(ValueError, match="uninformative"):
        joint_table((1, 0, 0, 0), num_classes=3, uninformative="x")


# ---------------------------------------------------------------- multimodal NER


@pytest.fixture(scope="module")
def mner():
    return make_mner(2000, 20, 1500, seed=0)


def _cue_type(tokens: list[str], start: int, end: int) -> str | None:
    """The type whose cue phrase sits right around the span, read from the tokens."""
    for kind, phrases in CUES.items():
        for before, after in phrases:
            b = tuple(tokens[max(0, start - len(before)) : start]) if before else ()
            a = tuple(tokens[end : end + len(after)]) if after else ()
            if b == before and a == after and (before or after):
                return kind
    return None


def test_mner_is_deterministic():
    a, b, c = (
        make_mner(30, 5, 20, seed=3),
        make_mner(30, 5, 20, seed=3),
        make_mner(30, 5, 20, seed=4),
    )
    assert [s.tokens for s in a.train.sentences] == [s.tokens for s in b.train.sentences]
    assert [s.tags for s in a.test.sentences] == [s.tags for s in b.test.sentences]
    assert a.train.images.tobytes() == b.train.images.tobytes()
    assert a.train.images.tobytes() != c.train.images.tobytes()
    assert [s.tokens for s in a.train.sentences] != [s.tokens for s in c.train.sentences]


def test_mner_structure(mner):
    s = mner.train
    for i, sent in enumerate(s.sentences):
        assert get_spans(sent.tags) == s.entities[i]
        assert 1 <= len(s.entities[i]) <= 3
        j = s.ambiguous_index[i]
        if j >= 0:
            kind, start, end = s.entities[i][j]
            name = " ".join(sent.tokens[start:end])
            assert kind in AMBIGUOUS[name] and ENTITY_TYPES[s.ambiguous_type[i]] == kind
        others = [" ".join(sent.tokens[a:b]) for k, (_, a, b) in enumerate(s.entities[i]) if k != j]
        assert not any(o in AMBIGUOUS for o in others)  # at most one ambiguous mention
    assert within(float((s.ambiguous_index >= 0).mean()), 0.6, len(s))
    assert s.images.shape == (2000, 3, 32, 32)
    multi = sum(b - a > 1 for ents in s.entities for _, a, b in ents)
    assert multi > 100  # multi-token names exist


def test_mner_context_and_image_follow_the_knobs(mner):
    s = mner.train
    amb = np.flatnonzero(s.ambiguous_index >= 0)
    for i in amb:
        kind, start, end = s.entities[i][s.ambiguous_index[i]]
        cue = _cue_type(s.sentences[i].tokens, start, end)
        assert cue == (kind if s.has_context[i] else None)
    assert within(float(s.has_context[amb].mean()), 0.4, len(amb))
    assert within(float(s.image_relevant.mean()), 0.85, len(s))
    rel = amb[s.image_relevant[amb]]
    assert np.array_equal(s.image_type[rel], s.ambiguous_type[rel])
    shapes = np.array([SHAPES.index(TYPE_SHAPES[t]) for t in ENTITY_TYPES])
    read = read_shapes(s.images[:400], len(SHAPES))
    assert np.mean(read == shapes[s.image_type[:400]]) >= 0.99


def test_mner_ceilings_match_independent_estimates(mner):
    """Plug-in Bayes rules from training counts of (name, cue read from the tokens) and of
    (name, cue, image type read from the pixels), scored on the test split; F1 by hand."""
    shapes = np.array([SHAPES.index(TYPE_SHAPES[t]) for t in ENTITY_TYPES])

    def observe(split):
        amb = np.flatnonzero(split.ambiguous_index >= 0)
        shown = read_shapes(split.images[amb], len(SHAPES))
        shown_type = np.array([int(np.flatnonzero(shapes == k)[0]) for k in shown])
        keys = []
        for i in amb:
            _, a, b = split.entities[i][split.ambiguous_index[i]]
            tokens = split.sentences[i].tokens
            keys.append((" ".join(tokens[a:b]), _cue_type(tokens, a, b)))
        return amb, keys, shown_type

    amb_tr, keys_tr, img_tr = observe(mner.train)
    amb_te, keys_te, img_te = observe(mner.test)
    text_counts: dict = {}
    joint_counts: dict = {}
    for key, img, t in zip(keys_tr, img_tr, mner.train.ambiguous_type[amb_tr], strict=True):
        text_counts.setdefault(key, np.zeros(4))[t] += 1
        joint_counts.setdefault((*key, img), np.zeros(4))[t] += 1
    truth = mner.test.ambiguous_type[amb_te]

    def rule(counts, key):
        return int(np.argmax(counts[key])) if key in counts else -1

    text_acc = np.mean([rule(text_counts, k) == t for k, t in zip(keys_te, truth, strict=True)])
    joint_keys = [(*k, i) for k, i in zip(keys_te, img_te, strict=True)]
    joint_acc = np.mean(
        [rule(joint_counts, k) == t for k, t in zip(joint_keys, truth, strict=True)]
    )
    assert abs(text_acc - mner.ceilings["ambiguous_acc_text"]) < 0.03
    assert abs(joint_acc - mner.ceilings["ambiguous_acc_joint"]) < 0.04
    n_amb = len(amb_te)
    for key in ("text", "image", "joint"):
        name = f"ambiguous_acc_{key}"
        assert within(mner.ceilings[name], mner.expected_ceilings[name], n_amb), name
    assert mner.ceilings["ambiguous_acc_text"] < mner.ceilings["ambiguous_acc_joint"]

    # entity-level micro F1 counted by hand from spans (seqeval is the reference in the library)
    for key in ("text", "joint"):
        predicted = mner.test.oracle_tags(key)
        tp = n_gold = n_pred = 0
        for sent, pred in zip(mner.test.sentences, predicted, strict=True):
            gold, guess = set(get_spans(sent.tags)), set(get_spans(pred))
            tp, n_gold, n_pred = tp + len(gold & guess), n_gold + len(gold), n_pred + len(guess)
        f1 = 2 * tp / (n_gold + n_pred)
        assert f1 == pytest.approx(mner.ceilings[f"f1_{key}"])
    assert mner.ceilings["f1_text"] < mner.ceilings["f1_joint"] < 1.0


def test_mner_knob_extremes():
    sure = make_mner(10, 0, 200, context_rate=1.0)
    assert sure.ceilings["ambiguous_acc_text"] == 1.0 and sure.ceilings["f1_text"] == 1.0
    plain = make_mner(10, 0, 100, ambiguous_rate=0.0)
    assert plain.ceilings["f1_text"] == plain.ceilings["f1_joint"] == 1.0
    assert np.isnan(plain.ceilings["ambiguous_acc_joint"])
    blind = make_mner(10, 0, 10, image_relevance=0.0)
    assert blind.expected_ceilings["ambiguous_acc_joint"] == pytest.approx(
        blind.expected_ceilings["ambiguous_acc_text"]
    )


def test_mner_frame_and_bad_arguments(mner):
    frame = mner.to_frame()
    assert len(frame) == 3520 and frame["ambiguous_name"].dropna().isin(list(AMBIGUOUS)).all()
    with pytest.raises(ValueError, match="context_rate must be a probability"):
        make_mner(10, 0, 10, context_rate=2)
    with pytest.raises(ValueError, match="n_test must be an integer >= 1"):
        make_mner(10, 0, 0)
