"""Tests of ``Vocab`` / ``CharVocab`` built directly from a symbol list (``build`` is tested
in ``test_data_datasets.py``)."""

from __future__ import annotations

import pytest

from mmtutor.data import CharVocab, Vocab


def test_vocab_from_a_list_lowercases_its_symbols():
    # Vocab(["Paris", "London"]) used to store "Paris" but look up "paris": both were <unk>.
    v = Vocab(["Paris", "London"])
    assert v.encode(["Paris", "paris", "LONDON", "Rome"]) == [2, 2, 3, 1]
    assert v.symbols == ["<pad>", "<unk>", "paris", "london"] and "PARIS" in v
    cased = Vocab(["Paris", "paris"], lowercase=False)
    assert cased.encode(["Paris", "paris", "PARIS"]) == [2, 3, 1]
    assert CharVocab(["A"], lowercase=True).encode("aA") == [2, 2]


def test_vocab_symbols_must_be_unique_after_lowercasing():
    with pytest.raises(ValueError, match="unique after lowercasing, got 'paris' twice"):
        Vocab(["Paris", "paris"])
    with pytest.raises(ValueError, match="unique, got 'a' twice"):
        Vocab(["a", "a"], lowercase=False)
    assert len(Vocab(["<pad>", "<unk>", "x"])) == 3  # the specials are never doubled


def test_vocab_save_load_keeps_lookups(tmp_path):
    v = Vocab(["Paris"])
    v.save(tmp_path / "v.json")
    assert Vocab.load(tmp_path / "v.json").encode(["PARIS"]) == [2]
