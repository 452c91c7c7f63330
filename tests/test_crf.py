"""The hand-written CRF against brute force over every tag sequence (tiny K and T)."""

from __future__ import annotations

import itertools

import pytest
import torch
from devices import DEVICES

from mmtutor.heads import CRF, IMPOSSIBLE, allowed_transitions

K, T = 3, 4
LENGTHS = [4, 2, 1]


def _mask(lengths: list[int], T: int = T) -> torch.Tensor:
    return torch.arange(T).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)  # (B, T)


def _problem(seed: int = 0, dtype: torch.dtype = torch.float32):
    g = torch.Generator().manual_seed(seed)
    crf = CRF(K).to(dtype)
    with torch.no_grad():  # larger than the default init, so transitions matter
        for p in crf.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=dtype))
    emissions = torch.randn(len(LENGTHS), T, K, generator=g, dtype=dtype)  # (B, T, K)
    mask = _mask(LENGTHS)
    tags = torch.randint(0, K, (len(LENGTHS), T), generator=g).masked_fill(~mask, -100)
    return crf, emissions, tags, mask


def _hand_score(crf: CRF, emissions: torch.Tensor, path: tuple[int, ...]) -> float:
    """score(y) for one sentence, written as the textbook sum."""
    s = crf.start_transitions[path[0]].item() + crf.end_transitions[path[-1]].item()
    for t, tag in enumerate(path):
        s += emissions[t, tag].item()
        if t > 0:
            s += crf.transitions[path[t - 1], tag].item()
    return s


def _all_scores(crf: CRF, emissions: torch.Tensor, n: int) -> dict[tuple[int, ...], float]:
    return {p: _hand_score(crf, emissions, p) for p in itertools.product(range(K), repeat=n)}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_score_is_the_hand_sum(seed):
    crf, emissions, tags, mask = _problem(seed)
    got = crf.score(emissions, tags, mask)
    for b, n in enumerate(LENGTHS):
        path = tuple(tags[b, :n].tolist())
        assert got[b].item() == pytest.approx(_hand_score(crf, emissions[b], path), abs=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_log_partition_is_logsumexp_over_all_sequences(seed):
    crf, emissions, _, mask = _problem(seed)
    got = crf.log_partition(emissions, mask)
    for b, n in enumerate(LENGTHS):
        scores = torch.tensor(list(_all_scores(crf, emissions[b], n).values()))
        assert got[b].item() == pytest.approx(torch.logsumexp(scores, 0).item(), abs=1e-5)


@pytest.mark.parametrize("seed", range(5))
def test_viterbi_is_the_brute_force_argmax(seed):
    crf, emissions, _, mask = _problem(seed)
    paths = crf.decode(emissions, mask)
    assert [len(p) for p in paths] == LENGTHS
    for b, n in enumerate(LENGTHS):
        scores = _all_scores(crf, emissions[b], n)
        assert tuple(paths[b]) == max(scores, key=scores.get)


def test_likelihoods_sum_to_one_and_loss_is_the_mean_nll():
    crf, emissions, tags, mask = _problem(3, torch.float64)
    ll = crf.log_likelihood(emissions, tags, mask)
    assert (ll <= 0).all()
    n = LENGTHS[1]
    total = sum(
        crf.log_likelihood(emissions[1:2, :n], torch.tensor([p]), None).exp().item()
        for p in itertools.product(range(K), repeat=n)
    )
    assert total == pytest.approx(1.0, abs=1e-9)
    assert crf(emissions, tags, mask).item() == pytest.approx(-ll.mean().item())
    assert torch.allclose(crf(emissions, tags, mask, reduction="none"), -ll)
    assert crf(emissions, tags, mask, reduction="sum").item() == pytest.approx(-ll.sum().item())
    token_mean = crf(emissions, tags, mask, reduction="token_mean").item()
    assert token_mean == pytest.approx(-ll.sum().item() / sum(LENGTHS))


def test_padding_changes_nothing():
    crf, emissions, tags, mask = _problem(4)
    junk_emissions = torch.where(mask.unsqueeze(2), emissions, torch.randn_like(emissions) * 50)
    junk_tags = torch.where(mask, tags, torch.randint(0, K, tags.shape))
    assert torch.allclose(
        crf.log_partition(emissions, mask), crf.log_partition(junk_emissions, mask)
    )
    assert torch.allclose(
        crf.log_likelihood(emissions, tags, mask),
        crf.log_likelihood(junk_emissions, junk_tags, mask),
    )
    assert crf.decode(emissions, mask) == crf.decode(junk_emissions, mask)


def test_batched_equals_one_by_one():
    crf, emissions, tags, mask = _problem(5)
    ll = crf.log_likelihood(emissions, tags, mask)
    paths = crf.decode(emissions, mask)
    for b, n in enumerate(LENGTHS):
        alone = emissions[b : b + 1, :n]  # (1, n, K), no padding at all
        assert crf.log_likelihood(alone, tags[b : b + 1, :n]).item() == pytest.approx(
            ll[b].item(), abs=1e-5
        )
        assert crf.decode(alone) == [paths[b]]


def test_gradcheck_log_likelihood_float64():
    crf, emissions, tags, mask = _problem(6, torch.float64)
    names = ["start_transitions", "end_transitions", "transitions"]
    params = [getattr(crf, n).detach().clone().requires_grad_(True) for n in names]
    emissions = emissions.clone().requires_grad_(True)

    def ll(em, *p):
        values = dict(zip(names, p, strict=True))
        return torch.func.functional_call(crf, values, (em, tags, mask), {"reduction": "none"})

    assert torch.autograd.gradcheck(ll, (emissions, *params))


def test_gradients_ignore_padded_emissions():
    crf, emissions, tags, mask = _problem(7)
    emissions.requires_grad_(True)
    crf(emissions, tags, mask).backward()
    assert (emissions.grad[~mask] == 0).all()
    assert torch.isfinite(emissions.grad).all()


def test_training_learns_transitions_per_token_argmax_cannot():
    """Tags cycle 0 -> 1 -> 2 -> 0; only the first token's emission says where the cycle starts."""
    torch.manual_seed(0)
    B, T = 6, 5
    first = torch.arange(B) % K  # (B,)
    tags = (first.unsqueeze(1) + torch.arange(T)) % K  # (B, T)
    emissions = torch.zeros(B, T, K)
    emissions[torch.arange(B), 0, first] = 3.0  # evidence on the first token only
    lengths = [5, 5, 4, 3, 2, 5]
    mask = _mask(lengths, T)
    tags = tags.masked_fill(~mask, -100)
    crf = CRF(K)
    opt = torch.optim.Adam(crf.parameters(), lr=0.1)
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = crf(emissions, tags, mask)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    gold = [tags[b, :n].tolist() for b, n in enumerate(lengths)]
    assert crf.decode(emissions, mask) == gold
    per_token = emissions.argmax(dim=2)  # (B, T): all zeros after the first token
    assert [per_token[b, :n].tolist() for b, n in enumerate(lengths)] != gold


def test_bio_constraints():
    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    start, trans, end = allowed_transitions(names)
    assert start.tolist() == [True, True, False, True, False]
    assert end.all()
    assert (
        not trans[0, 2] and not trans[3, 2] and not trans[1, 4]
    )  # O, B-LOC -> I-PER; B-PER -> I-LOC
    assert trans[1, 2] and trans[2, 2] and trans[4, 4] and trans[2, 0] and trans[0, 3]

    crf = CRF(len(names)).constrain_bio(names)
    emissions = torch.full((1, 3, len(names)), -5.0)
    emissions[0, :, 2] = 5.0  # I-PER everywhere would win without constraints
    path = crf.decode(emissions)[0]
    assert path[0] != 2
    assert all(trans[a, b] for a, b in itertools.pairwise(path))
    # log Z is the sum over the allowed sequences only (the others score IMPOSSIBLE).
    allowed = [
        p
        for p in itertools.product(range(len(names)), repeat=3)
        if start[p[0]] and all(trans[a, b] for a, b in itertools.pairwise(p))
    ]
    scores = torch.stack([crf.score(emissions, torch.tensor([p]))[0] for p in allowed])
    assert crf.log_partition(emissions).item() == pytest.approx(
        torch.logsumexp(scores, 0).item(), abs=1e-4
    )
    assert "transitions_allowed" in crf.state_dict()


def test_pad_tag_is_never_predicted():
    crf = CRF(4, pad_tag=3)
    emissions = torch.zeros(2, 3, 4)
    emissions[..., 3] = 100.0
    assert all(3 not in p for p in crf.decode(emissions))
    names = ["O", "B-X", "I-X", "<pad>"]
    assert CRF(4, pad_tag=3).constrain_bio(names).start_allowed.tolist() == [
        True,
        True,
        False,
        False,
    ]
    assert crf.transitions_allowed[:, 3].sum() == 0
    assert torch.isfinite(crf.log_partition(emissions)).all()
    assert IMPOSSIBLE < -1e3


def test_half_precision_emissions_are_computed_in_float32():
    crf, emissions, tags, mask = _problem(8)
    ll = crf.log_likelihood(emissions.half(), tags, mask)
    assert ll.dtype == torch.float32
    assert torch.allclose(ll, crf.log_likelihood(emissions.half().float(), tags, mask))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c, e, t, m: c.log_partition(e[0], m), r"emissions must have shape \(B, T, 3\)"),
        (lambda c, e, t, m: c.log_partition(e[..., :2], m), r"got \(3, 4, 2\)"),
        (lambda c, e, t, m: c.log_partition(e[:, :0], None), "T >= 1"),
        (lambda c, e, t, m: c.log_partition(e, m[:, :2]), r"mask must have shape \(3, 4\)"),
        (lambda c, e, t, m: c.log_partition(e, m.float()), "bool"),
        (lambda c, e, t, m: c.decode(e, m.flip(1)), "real first token"),
        (lambda c, e, t, m: c.decode(e, torch.tensor([[1, 0, 1, 0]] * 3).bool()), "left-aligned"),
        (lambda c, e, t, m: c.score(e, t.masked_fill(m, -100), m), r"tags must lie in \[0, 3\)"),
        (lambda c, e, t, m: c.score(e, t.clamp(min=0) + 5, None), r"got \[5"),
        (lambda c, e, t, m: c.score(e, t[:, :2], m), r"tags must have shape \(3, 4\)"),
        (lambda c, e, t, m: c(e, t, m, reduction="avg"), "reduction must be one of"),
        (lambda c, e, t, m: c.constrain_bio(["O", "B-X"]), "must name 3 tags"),
        (lambda c, e, t, m: c.constrain_bio(["O", "B-X", "X"]), "not a BIO/BIOES tag"),
        (lambda c, e, t, m: CRF(3, pad_tag=3), "pad_tag"),
        (lambda c, e, t, m: CRF(0), "num_tags"),
    ],
)
def test_errors(call, message):
    crf, emissions, tags, mask = _problem()
    with pytest.raises(ValueError, match=message):
        call(crf, emissions, tags, mask)


@pytest.mark.parametrize("device", DEVICES)
def test_device_follows_the_inputs(device):
    crf, emissions, tags, mask = _problem(9)
    cpu_ll, cpu_paths = crf.log_likelihood(emissions, tags, mask), crf.decode(emissions, mask)
    crf = crf.to(device)
    ll = crf.log_likelihood(emissions.to(device), tags.to(device), mask.to(device))
    assert ll.device.type == device
    assert torch.allclose(ll.cpu(), cpu_ll, atol=1e-5)
    assert crf.decode(emissions.to(device), mask.to(device)) == cpu_paths


def test_bioes_constraints():
    names = ["O", "B-X", "I-X", "E-X", "S-X"]
    start, trans, end = allowed_transitions(names)
    assert start.tolist() == [True, True, False, False, True]
    assert end.tolist() == [True, False, False, True, True]
    assert trans[1].tolist() == [False, False, True, True, False]  # B-X -> I-X or E-X only
    assert trans[3].tolist() == [True, True, False, False, True]  # E-X closes: O, B, S next
    crf = CRF(len(names)).constrain_bio(names)
    for path in crf.decode(torch.randn(4, 5, len(names)) * 5):
        assert start[path[0]] and end[path[-1]]
        assert all(trans[a, b] for a, b in itertools.pairwise(path))
