"""A linear-chain conditional random field (CRF) for sequence tagging, written out by hand.

A tagger's encoder gives every token ``t`` a score ``E[t, k]`` for every tag ``k`` (the
*emissions*). Scoring tags one by one cannot say "I-PER never follows O". A linear-chain CRF
(Lafferty et al., 2001) adds a learned score ``A[i, j]`` for tag ``j`` following tag ``i``,
plus scores for the first (``s``) and the last (``e``) tag, and scores a whole tag sequence::

    score(y) = s[y_1] + sum_t E[t, y_t] + sum_{t>1} A[y_{t-1}, y_t] + e[y_n]

    p(y | x) = exp(score(y)) / Z,   log Z = logsumexp over all K^n tag sequences

``log Z`` is computed in ``O(n K^2)`` by the forward algorithm, the best sequence by the
Viterbi algorithm (dynamic programming with back-pointers). The training loss is the negative
log-likelihood ``log Z - score(gold)``. The BiLSTM-CRF of Lample et al. (2016) and the
CNN-BiLSTM-CRF of Ma & Hovy (2016) put this layer on top of a BiLSTM.

References:
    Lafferty, J., McCallum, A. & Pereira, F. (2001). Conditional Random Fields: Probabilistic
    Models for Segmenting and Labeling Sequence Data. ICML.
    Lample, G., Ballesteros, M., Subramanian, S., Kawakami, K. & Dyer, C. (2016). Neural
    Architectures for Named Entity Recognition. NAACL.
    Ma, X. & Hovy, E. (2016). End-to-end Sequence Labeling via Bi-directional
    LSTM-CNNs-CRF. ACL.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mmtutor.utils import check_tensor

__all__ = ["CRF", "allowed_transitions", "IMPOSSIBLE"]

#: The score of a forbidden start, transition or end. Large and negative rather than -inf, so
#: that a sum of only forbidden paths stays finite (no NaN in logsumexp or its gradient).
IMPOSSIBLE = -1e4

_REDUCTIONS = ("none", "sum", "mean", "token_mean")


def allowed_transitions(
    tag_names: Sequence[str], *, pad_tag: int | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """The moves a tagging scheme allows: BIO (IOB2), or BIOES when ``E-``/``S-`` tags occur.

    BIO: ``I-X`` only right after ``B-X`` or ``I-X`` (so never first). BIOES adds: an entity
    ``B-X`` goes on with ``I-X`` or ends with ``E-X``; ``S-X`` is a one-token entity; a
    sentence cannot start inside (``I``, ``E``) nor end inside (``B``, ``I``) an entity.

    Args:
        tag_names: one name per tag index: ``"O"``, ``"B-X"``, ``"I-X"`` (``"E-X"``, ``"S-X"``).
        pad_tag: index of a padding tag (any name), allowed nowhere.

    Returns:
        ``(start (K,), transitions (K, K), end (K,))`` bool: may a sequence start with tag
        ``j``; may tag ``j`` follow tag ``i`` (``transitions[i, j]``); may it end with ``j``.

    Raises:
        ValueError: for a name that is not a BIO/BIOES tag.

    Examples:
        >>> start, trans, end = allowed_transitions(["O", "B-PER", "I-PER"])
        >>> start.tolist(), trans[0, 2].item(), trans[1, 2].item()
        ([True, True, False], False, True)
    """
    parsed: list[tuple[str, str] | None] = []
    for k, name in enumerate(tag_names):
        if k == pad_tag:
            parsed.append(None)
        elif name == "O":
            parsed.append(("O", ""))
        elif name[:2] in ("B-", "I-", "E-", "S-") and len(name) > 2:
            parsed.append((name[0], name[2:]))
        else:
            raise ValueError(
                f"tag_names[{k}]={name!r} is not a BIO/BIOES tag ('O', 'B-X', 'I-X', 'E-X', "
                "'S-X'); give the index of a padding tag as pad_tag"
            )
    bioes = any(p is not None and p[0] in ("E", "S") for p in parsed)
    inside = ("I", "E")  # prefixes that continue an entity opened before
    open_ = ("B", "I") if bioes else ()  # prefixes after which BIOES must continue the entity

    def follows(prev: tuple[str, str], tag: tuple[str, str]) -> bool:
        if tag[0] in inside:  # continue entity X: needs B-X or I-X just before
            return prev[0] in ("B", "I") and prev[1] == tag[1]
        return prev[0] not in open_  # O, B-Y, S-Y: only once the previous entity is closed

    K = len(parsed)
    start = torch.tensor([p is not None and p[0] not in inside for p in parsed])  # (K,)
    end = torch.tensor([p is not None and p[0] not in open_ for p in parsed])  # (K,)
    transitions = torch.tensor(  # (K, K) from i to j
        [[a is not None and b is not None and follows(a, b) for b in parsed] for a in parsed]
    ).reshape(K, K)
    return start, transitions, end


class CRF(nn.Module):
    """Linear-chain CRF (Lafferty et al., ICML 2001), batched over padded sequences.

    Args:
        num_tags: number of tags ``K``.
        pad_tag: index of a tag that only labels padding, if the tag set has one; the CRF then
            never starts, ends, enters or leaves it, so it is never predicted.

    Attributes:
        start_transitions: ``(K,)`` score of starting with each tag.
        end_transitions: ``(K,)`` score of ending with each tag.
        transitions: ``(K, K)`` score of tag ``j`` following tag ``i`` (``[i, j]``).
        start_allowed, end_allowed, transitions_allowed: bool buffers of the same shapes;
            a False entry scores :data:`IMPOSSIBLE` (see :meth:`constrain_bio`).

    Inputs (every method):
        emissions: ``(B, T, K)`` float, per-token tag scores (e.g. a TokenClassificationHead).
        tags: ``(B, T)`` long gold tags in ``[0, K)``; padded positions may hold anything
            (``-100`` by convention) since the mask hides them.
        mask: ``(B, T)`` bool, True for real tokens, left-aligned, and the first token of every
            sequence real; ``None`` means no padding.

    Examples:
        >>> crf = CRF(3)
        >>> emissions = torch.randn(2, 4, 3)
        >>> mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
        >>> tags = torch.tensor([[0, 1, 2, 0], [2, 2, -100, -100]])
        >>> crf(emissions, tags, mask).shape  # the loss, a scalar
        torch.Size([])
        >>> [len(p) for p in crf.decode(emissions, mask)]
        [4, 2]
    """

    def __init__(self, num_tags: int, *, pad_tag: int | None = None) -> None:
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"num_tags must be positive, got {num_tags}")
        if pad_tag is not None and not (0 <= pad_tag < num_tags and num_tags > 1):
            raise ValueError(
                f"pad_tag must be an index in [0, {num_tags}) besides a real tag, got {pad_tag}"
            )
        self.num_tags = num_tags
        self.pad_tag = pad_tag
        # Small random start, as in pytorch-crf: zeros would also train, since the emissions differ.
        self.start_transitions = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.end_transitions = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags).uniform_(-0.1, 0.1))
        self.register_buffer("start_allowed", torch.ones(num_tags, dtype=torch.bool))
        self.register_buffer("end_allowed", torch.ones(num_tags, dtype=torch.bool))
        self.register_buffer(
            "transitions_allowed", torch.ones(num_tags, num_tags, dtype=torch.bool)
        )
        if pad_tag is not None:
            self.start_allowed[pad_tag] = False
            self.end_allowed[pad_tag] = False
            self.transitions_allowed[pad_tag, :] = False
            self.transitions_allowed[:, pad_tag] = False

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}, pad_tag={self.pad_tag}"

    def constrain_bio(self, tag_names: Sequence[str]) -> CRF:
        """Forbid the moves the BIO scheme rules out (``O -> I-PER``, starting with ``I-X``).

        With ``E-``/``S-`` tags in ``tag_names`` the BIOES rules apply
        (see :func:`allowed_transitions`).

        Forbidden moves score :data:`IMPOSSIBLE` in training and decoding, so the CRF never
        predicts a broken entity. Gold tags must then obey BIO too (a gold ``O I-PER`` costs a
        loss near ``1e4``): repair such data (``I-X`` after ``O`` -> ``B-X``) first.

        Args:
            tag_names: the name of every tag index (``pad_tag``'s name is not read).

        Returns:
            ``self``, so ``crf = CRF(K).constrain_bio(names)`` reads well.
        """
        if len(tag_names) != self.num_tags:
            raise ValueError(f"tag_names must name {self.num_tags} tags, got {len(tag_names)}")
        start, transitions, end = allowed_transitions(tag_names, pad_tag=self.pad_tag)
        self.start_allowed.copy_(start)
        self.transitions_allowed.copy_(transitions)
        self.end_allowed.copy_(end)
        return self

    # -- the pieces -----------------------------------------------------------------------

    def _check(
        self, emissions: Tensor, tags: Tensor | None, mask: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """Validate the inputs; return the emissions (at least float32) and a bool mask."""
        check_tensor("emissions", emissions, ("B", "T", self.num_tags), dtype="float")
        B, T, _ = emissions.shape
        if T == 0:
            raise ValueError("emissions must have shape (B, T, K) with T >= 1, got T = 0")
        if mask is None:
            mask = torch.ones(B, T, dtype=torch.bool, device=emissions.device)  # (B, T)
        else:
            check_tensor("mask", mask, (B, T))
            if mask.is_floating_point():
                raise ValueError(f"mask must be a bool tensor, got dtype {mask.dtype}")
            mask = mask.bool()
        if not bool(mask[:, 0].all()):
            raise ValueError(
                "mask must have a real first token in every sequence (a CRF needs at least one), "
                f"got padding first in rows {torch.nonzero(~mask[:, 0]).flatten().tolist()}"
            )
        if bool((mask[:, 1:] & ~mask[:, :-1]).any()):  # a real token right after padding
            raise ValueError("mask must be left-aligned: real tokens first, then padding")
        if tags is not None:
            check_tensor("tags", tags, (B, T), dtype="int")
            real = tags[mask]
            bad = real[(real < 0) | (real >= self.num_tags)]
            if bad.numel():
                raise ValueError(
                    f"tags must lie in [0, {self.num_tags}) at real tokens (padding may hold "
                    f"-100), got {sorted(set(bad.tolist()))[:5]}"
                )
        # Sums of many scores in float16 lose too much: compute in float32 at least.
        emissions = emissions.to(torch.promote_types(emissions.dtype, torch.float32))
        return emissions, mask

    def _potentials(self, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
        """Start ``(K,)``, transition ``(K, K)``, end ``(K,)`` scores, forbidden moves applied."""
        start = self.start_transitions.masked_fill(~self.start_allowed, IMPOSSIBLE)  # (K,)
        trans = self.transitions.masked_fill(~self.transitions_allowed, IMPOSSIBLE)  # (K, K)
        end = self.end_transitions.masked_fill(~self.end_allowed, IMPOSSIBLE)  # (K,)
        return start.to(dtype), trans.to(dtype), end.to(dtype)

    def _score(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        start, trans, end = self._potentials(emissions.dtype)
        tags = tags.masked_fill(~mask, 0)  # (B, T): padding -> a valid index, masked out below
        emit = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # (B, T) E[t, y_t]
        step = trans[tags[:, :-1], tags[:, 1:]]  # (B, T-1) A[y_{t-1}, y_t]
        last = tags.gather(1, mask.sum(dim=1, keepdim=True) - 1).squeeze(1)  # (B,) y_n
        return (
            start[tags[:, 0]]  # (B,)
            + torch.where(mask, emit, 0.0).sum(dim=1)  # (B,)
            + torch.where(mask[:, 1:], step, 0.0).sum(dim=1)  # (B,)
            + end[last]  # (B,)
        )

    def _log_partition(self, emissions: Tensor, mask: Tensor) -> Tensor:
        start, trans, end = self._potentials(emissions.dtype)
        # alpha[b, j] = log of the summed exp-scores of all prefixes that end in tag j.
        alpha = start + emissions[:, 0]  # (B, K)
        for t in range(1, emissions.shape[1]):
            # alpha'[j] = logsumexp_i (alpha[i] + A[i, j]) + E[t, j]
            nxt = torch.logsumexp(alpha.unsqueeze(2) + trans, dim=1) + emissions[:, t]  # (B, K)
            alpha = torch.where(mask[:, t].unsqueeze(1), nxt, alpha)  # (B, K) padding: keep
        return torch.logsumexp(alpha + end, dim=1)  # (B,)

    # -- the public API -------------------------------------------------------------------

    def score(self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None) -> Tensor:
        """The unnormalised score of the given tag sequences.

        Returns:
            ``(B,)`` ``s[y_1] + sum_t E[t, y_t] + sum_t A[y_{t-1}, y_t] + e[y_n]``.
        """
        emissions, mask = self._check(emissions, tags, mask)
        return self._score(emissions, tags, mask)

    def log_partition(self, emissions: Tensor, mask: Tensor | None = None) -> Tensor:
        """``log Z``, the log-sum-exp of the scores of all tag sequences (forward algorithm).

        Returns:
            ``(B,)`` one ``log Z`` per sequence, ``O(T K^2)`` work instead of ``O(K^T)``.
        """
        emissions, mask = self._check(emissions, None, mask)
        return self._log_partition(emissions, mask)

    def log_likelihood(self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None) -> Tensor:
        """``log p(tags | emissions) = score - log Z``.

        Returns:
            ``(B,)`` log-likelihood of each sequence (<= 0).
        """
        emissions, mask = self._check(emissions, tags, mask)
        return self._score(emissions, tags, mask) - self._log_partition(emissions, mask)  # (B,)

    def forward(
        self,
        emissions: Tensor,
        tags: Tensor,
        mask: Tensor | None = None,
        reduction: str = "mean",
    ) -> Tensor:
        """The training loss: the negative log-likelihood of the gold tags.

        Args:
            emissions, tags, mask: as in the class docstring.
            reduction: ``"mean"`` over sequences, ``"sum"``, ``"token_mean"`` (sum over the
                number of real tokens) or ``"none"`` for the ``(B,)`` values.

        Returns:
            A scalar (or ``(B,)`` with ``reduction="none"``).
        """
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        emissions, mask = self._check(emissions, tags, mask)
        nll = self._log_partition(emissions, mask) - self._score(emissions, tags, mask)  # (B,)
        if reduction == "none":
            return nll
        if reduction == "sum":
            return nll.sum()
        if reduction == "mean":
            return nll.mean()
        return nll.sum() / mask.sum()

    @torch.no_grad()
    def decode(self, emissions: Tensor, mask: Tensor | None = None) -> list[list[int]]:
        """The most likely tag sequence of each sentence (Viterbi algorithm).

        Returns:
            One list of tag indices per sequence, as long as its real tokens.
        """
        emissions, mask = self._check(emissions, None, mask)
        start, trans, end = self._potentials(emissions.dtype)
        # delta[b, j]: the best score of a prefix ending in tag j; pointers[t-1][b, j] the tag
        # before j on that best prefix.
        delta = start + emissions[:, 0]  # (B, K)
        pointers = []
        for t in range(1, emissions.shape[1]):
            best, previous = (delta.unsqueeze(2) + trans).max(dim=1)  # (B, K), (B, K)
            delta = torch.where(mask[:, t].unsqueeze(1), best + emissions[:, t], delta)  # (B, K)
            pointers.append(previous)
        last = (delta + end).argmax(dim=1).tolist()  # B ints: the best final tag
        back = torch.stack(pointers).cpu() if pointers else None  # (T-1, B, K), one copy to CPU
        paths = []
        for b, n in enumerate(mask.sum(dim=1).tolist()):
            path = [last[b]]
            for t in range(n - 1, 0, -1):  # follow the pointers back from the last real token
                path.append(int(back[t - 1, b, path[-1]]))
            paths.append(path[::-1])
        return paths
