"""Word labels to sub-word labels, for pretrained tokenizers that split words into pieces.

A pretrained tokenizer (WordPiece, BPE) may split one word into several sub-tokens and adds
special tokens (``[CLS]``, ``[SEP]``). A Hugging Face *fast* tokenizer reports, for each
sub-token, the index of the word it came from (``encoding.word_ids()``, ``None`` for special
tokens). The usual recipe (as in the Hugging Face token-classification examples) labels
the first sub-token of each word and gives the others ``-100``, which
``torch.nn.functional.cross_entropy`` ignores; predictions are read back at the same positions.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["IGNORE_INDEX", "align_subword_labels"]

IGNORE_INDEX = -100


def align_subword_labels(
    word_labels: Sequence[int],
    word_ids: Sequence[int | None],
    *,
    label_all_subwords: bool = False,
    ignore_index: int = IGNORE_INDEX,
) -> list[int]:
    """Give each sub-token the label of its word (first piece only by default).

    Args:
        word_labels: one label index per word, length ``W``.
        word_ids: per sub-token, the index of its word in ``[0, W)`` or ``None`` for a special
            token (what a fast tokenizer's ``word_ids()`` returns), length ``T``.
        label_all_subwords: give every piece its word's label, not only the first.
        ignore_index: the label of positions the loss must skip.

    Returns:
        ``T`` labels.

    Raises:
        ValueError: if a word id is negative or not below ``W``.

    Examples:
        >>> align_subword_labels([3, 0], [None, 0, 0, 1, None])
        [-100, 3, -100, 0, -100]
    """
    out: list[int] = []
    previous: int | None = None
    for position, word in enumerate(word_ids):
        if word is None:
            out.append(ignore_index)
            previous = None
            continue
        if not 0 <= word < len(word_labels):
            raise ValueError(
                f"word_ids[{position}] is {word}; expected None or a word index in "
                f"[0, {len(word_labels) - 1}] (word_labels has {len(word_labels)} labels)"
            )
        first_piece = word != previous
        out.append(int(word_labels[word]) if first_piece or label_all_subwords else ignore_index)
        previous = word
    return out
