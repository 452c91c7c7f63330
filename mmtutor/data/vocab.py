"""Token and character vocabularies with ``<pad>`` = 0 and ``<unk>`` = 1, saved as JSON.

A trained model is only usable with the vocabulary it was trained with, so both classes
save to and load from a small JSON file that travels with the checkpoint.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TypeVar

from mmtutor.data._files import read_json

__all__ = ["PAD", "UNK", "Vocab", "CharVocab", "tokenize"]

PAD = "<pad>"
UNK = "<unk>"

_TOKEN_RE = re.compile(r"[#@]?\w+(?:['’]\w+)?|[^\w\s]")

_V = TypeVar("_V", bound="_SymbolTable")


def tokenize(text: str) -> list[str]:
    """Split raw text into word and punctuation tokens (hashtags and @mentions kept whole).

    Examples:
        >>> tokenize("Met @ana in Paris, #fun!")
        ['Met', '@ana', 'in', 'Paris', ',', '#fun', '!']
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    return _TOKEN_RE.findall(text)


def _check_sequences(name: str, sequences: object) -> list[Sequence[str]]:
    if isinstance(sequences, str):
        raise ValueError(f"{name} must be an iterable of token lists, got a single str")
    out = list(sequences)  # type: ignore[call-overload]
    for i, seq in enumerate(out):
        if isinstance(seq, str):
            raise ValueError(
                f"{name}[{i}] is a str ({seq[:30]!r}); expected a list of tokens, "
                "e.g. mmtutor.data.tokenize(text)"
            )
    return out


class _SymbolTable:
    """Bijection between symbols and ids with the two special symbols first."""

    kind = "symbols"
    pad_id = 0
    unk_id = 1

    def __init__(self, symbols: Iterable[str], *, lowercase: bool) -> None:
        self.lowercase = bool(lowercase)
        self._itos: list[str] = [PAD, UNK]
        self._stoi: dict[str, int] = {PAD: self.pad_id, UNK: self.unk_id}
        for given in symbols:
            if given in (PAD, UNK):
                continue
            s = self._norm(given)  # stored as encode() looks it up, or "Paris" is never found
            if s in self._stoi:
                folded = " after lowercasing" if self.lowercase else ""
                raise ValueError(f"{self.kind}: symbols must be unique{folded}, got {s!r} twice")
            self._stoi[s] = len(self._itos)
            self._itos.append(s)

    def __len__(self) -> int:
        return len(self._itos)

    def __contains__(self, symbol: object) -> bool:
        return isinstance(symbol, str) and self._norm(symbol) in self._stoi

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and self._itos == other._itos  # type: ignore[attr-defined]
            and self.lowercase == other.lowercase  # type: ignore[attr-defined]
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(self._itos), self.lowercase))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={len(self)}, lowercase={self.lowercase})"

    def _norm(self, symbol: str) -> str:
        return symbol.lower() if self.lowercase else symbol

    @property
    def symbols(self) -> list[str]:
        """All symbols in id order (``symbols[0] == '<pad>'``)."""
        return list(self._itos)

    def extended(self: _V, symbols: Iterable[str]) -> _V:
        """A copy with ``symbols`` appended after the existing ones (those already held skipped).

        Every existing id keeps its meaning, so a table built from the training split can take
        the words of other texts without renumbering (see
        :func:`~mmtutor.encoders.words_with_vectors`).

        Examples:
            >>> Vocab(["a", "b"]).extended(["B", "c"]).symbols
            ['<pad>', '<unk>', 'a', 'b', 'c']
        """
        new = dict.fromkeys(s for s in map(self._norm, symbols)
                            if s not in self._stoi and s not in (PAD, UNK))
        return type(self)([*self._itos[2:], *new], lowercase=self.lowercase)

    def encode(self, sequence: Iterable[str]) -> list[int]:
        """Map symbols to ids; unknown symbols map to ``unk_id`` (1)."""
        return [self._stoi.get(self._norm(s), self.unk_id) for s in sequence]

    def decode(self, ids: Iterable[int], *, skip_pad: bool = True) -> list[str]:
        """Map ids back to symbols, dropping ``<pad>`` unless ``skip_pad=False``.

        Raises:
            ValueError: if an id is outside ``[0, len(self))``.
        """
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self._itos):
                raise ValueError(f"id {i} is outside the {self.kind} of size {len(self)}")
            if skip_pad and i == self.pad_id:
                continue
            out.append(self._itos[i])
        return out

    default_lowercase = False

    @staticmethod
    def _symbols_of(tokens: Sequence[str]) -> Iterable[str]:
        """The symbols a token list contributes (tokens, or their characters)."""
        return tokens

    @classmethod
    def build(
        cls: type[_V],
        token_lists: Iterable[Sequence[str]],
        min_freq: int = 1,
        max_size: int | None = None,
        lowercase: bool | None = None,
    ) -> _V:
        """Count the symbols of the training texts and keep the frequent ones.

        Args:
            token_lists: one list of tokens per text (build from the *training* split only).
            min_freq: keep symbols seen at least this often.
            max_size: at most this many entries in all, the two specials included.
            lowercase: fold case before counting and encoding; ``None``: the class default
                (True for :class:`Vocab`, False for :class:`CharVocab`).

        Raises:
            ValueError: if a text is a ``str`` rather than a token list, or an argument is out
                of range.
        """
        lowercase = cls.default_lowercase if lowercase is None else bool(lowercase)
        if int(min_freq) != min_freq or min_freq < 1:
            raise ValueError(f"min_freq must be an integer >= 1, got {min_freq!r}")
        if max_size is not None and (int(max_size) != max_size or max_size < 2):
            raise ValueError(
                "max_size must be None or an integer >= 2 (room for <pad> and <unk>), "
                f"got {max_size!r}"
            )
        seqs = _check_sequences("token_lists", token_lists)
        counts = Counter(
            x.lower() if lowercase else x for seq in seqs for x in cls._symbols_of(seq)
        )
        # most frequent first; ties broken alphabetically so the ids never depend on order
        kept = sorted(
            (x for x, c in counts.items() if c >= min_freq), key=lambda x: (-counts[x], x)
        )
        if max_size is not None:
            kept = kept[: int(max_size) - 2]
        return cls(kept, lowercase=lowercase)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the table as JSON (``{"kind", "lowercase", "symbols"}``)."""
        data = {"kind": type(self).__name__, "lowercase": self.lowercase, "symbols": self._itos}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False)

    @classmethod
    def load(cls: type[_V], path: str | os.PathLike[str]) -> _V:
        """Read a table written by :meth:`save`.

        Raises:
            ValueError: if the file is not such a JSON file or holds another kind of table.
        """
        data = read_json(path, f"a saved {cls.__name__}")
        if not isinstance(data, dict) or data.get("kind") != cls.__name__:
            found = data.get("kind") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"{path}: holds {found!r}; expected a saved {cls.__name__}")
        symbols = data.get("symbols")
        if not isinstance(symbols, list) or symbols[:2] != [PAD, UNK]:
            raise ValueError(f"{path}: 'symbols' must be a list starting with {PAD!r}, {UNK!r}")
        return cls(symbols[2:], lowercase=bool(data.get("lowercase", False)))


class Vocab(_SymbolTable):
    """Word vocabulary: ``<pad>`` = 0, ``<unk>`` = 1, then tokens by decreasing frequency.

    ``Vocab.build(token_lists, min_freq=1, max_size=None, lowercase=True)`` counts tokens;
    ``Vocab(tokens, lowercase=True)`` takes a ready list, whose tokens are folded to lower
    case as the lookups are (two that fold to the same token raise ``ValueError``).

    Examples:
        >>> v = Vocab.build([["a", "red", "circle"], ["a", "Circle"]])
        >>> v.encode(["a", "circle", "square"])
        [2, 3, 1]
        >>> len(v)
        5
        >>> Vocab(["Paris", "London"]).encode(["paris", "LONDON"])
        [2, 3]
    """

    kind = "vocabulary"
    default_lowercase = True

    def __init__(self, tokens: Iterable[str] = (), *, lowercase: bool = True) -> None:
        super().__init__(tokens, lowercase=lowercase)


class CharVocab(_SymbolTable):
    """Character vocabulary for character-level word encoders; case kept by default.

    ``CharVocab.build(token_lists, ...)`` counts the characters of every token;
    ``encode(token)`` maps the characters of one token to ids.

    Examples:
        >>> cv = CharVocab.build([["ab", "b"]])
        >>> cv.encode("abc")
        [3, 2, 1]
    """

    kind = "character vocabulary"

    def __init__(self, chars: Iterable[str] = (), *, lowercase: bool = False) -> None:
        super().__init__(chars, lowercase=lowercase)

    @staticmethod
    def _symbols_of(tokens: Sequence[str]) -> Iterable[str]:
        return (c for t in tokens for c in t)
