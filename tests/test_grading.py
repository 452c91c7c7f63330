"""mmtutor.grading: every check passes a correct answer and fails plausible wrong ones.

For each check: one correct implementation (written here, independently of the package)
passes; at least two wrong ones, each a mistake students make, fail with a message that
names the case and says what was wrong, without the reference values. A stub that raises
``NotImplementedError`` is reported (a warning, ``implemented=False``), not failed.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from mmtutor import grading
from mmtutor.grading import CheckFailed, NotImplementedWarning
from mmtutor.grading.experiment import fusion_gain

# ---------------------------------------------------------------- feature level


def concat_ok(features, present=None):
    blocks = []
    for m in sorted(features):
        x = features[m]
        if present is not None and m in present:
            x = x * present[m].reshape(-1, *[1] * (x.dim() - 1)).to(x.dtype)
        blocks.append(x)
    return torch.cat(blocks, dim=-1)


def concat_unsorted(features, present=None):
    return torch.cat([features[m] for m in features], dim=-1)


def concat_ignores_present(features, present=None):
    return torch.cat([features[m] for m in sorted(features)], dim=-1)


def concat_float32(features, present=None):
    return concat_ok(features, present).float()


class WeightedSumOk(nn.Module):
    def __init__(self, input_dims, output_dim, weights=torch.softmax):
        super().__init__()
        self.names = sorted(input_dims)
        self.proj = nn.ModuleList(nn.Linear(input_dims[m], output_dim) for m in self.names)
        self.weight_logits = nn.Parameter(torch.zeros(len(self.names)))
        self.weigh = weights

    def forward(self, features, present=None):
        w = self.weigh(self.weight_logits, 0)  # (M,)
        B = features[self.names[0]].shape[0]
        p = torch.stack([present[m] if present and m in present
                         else torch.ones(B, dtype=torch.bool, device=w.device)
                         for m in self.names], dim=1)  # (B, M)
        w = torch.where(p, w, 0)  # (B, M)
        w = torch.where(w.sum(1, keepdim=True) > 0, w / w.sum(1, keepdim=True).clamp_min(1e-30), 0)
        z = 0
        for j, m in enumerate(self.names):
            h = self.proj[j](features[m])  # (..., out)
            z = z + w[:, j].reshape(-1, *[1] * (h.dim() - 1)).to(h.dtype) * h
        return z


class WeightedSumSigmoid(WeightedSumOk):  # non-convex: each weight in (0, 1), no sum to 1
    def __init__(self, input_dims, output_dim):
        super().__init__(input_dims, output_dim,
                         weights=lambda a, dim: torch.sigmoid(a))

    def forward(self, features, present=None):
        w = torch.sigmoid(self.weight_logits)
        return sum(w[j] * self.proj[j](features[m]) for j, m in enumerate(self.names))


class WeightedSumNoRenorm(WeightedSumOk):  # a missing modality just drops out, w not rescaled
    def forward(self, features, present=None):
        w = torch.softmax(self.weight_logits, 0)
        z = 0
        for j, m in enumerate(self.names):
            h = self.proj[j](features[m])
            if present is not None and m in present:
                h = h * present[m].reshape(-1, *[1] * (h.dim() - 1)).to(h.dtype)
            z = z + w[j] * h
        return z


class WeightedSumDetached(WeightedSumOk):  # weights never trained
    def forward(self, features, present=None):
        self.weight_logits.data = self.weight_logits.data  # noqa: PLW0127
        w = torch.softmax(self.weight_logits.detach(), 0)
        return sum(w[j] * self.proj[j](features[m]) for j, m in enumerate(self.names))


# ---------------------------------------------------------------- attention


def attention_ok(q, k, v, key_mask):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, Tq, S)
    scores = scores.masked_fill(~key_mask[:, None, :], float("-inf"))
    w = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # no key: all -inf -> 0
    return w @ v


def attention_unscaled(q, k, v, key_mask):
    scores = (q @ k.transpose(-2, -1)).masked_fill(~key_mask[:, None, :], float("-inf"))
    return torch.softmax(scores, dim=-1).nan_to_num(0.0) @ v


def attention_query_axis(q, k, v, key_mask):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~key_mask[:, :, None][:, : q.shape[1]], -1e9)
    return torch.softmax(scores, dim=-1) @ v


def attention_nan_when_no_key(q, k, v, key_mask):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return torch.softmax(scores.masked_fill(~key_mask[:, None, :], float("-inf")), -1) @ v


def attention_mask_after_softmax(q, k, v, key_mask):
    w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    return (w * key_mask[:, None, :]) @ v  # masked keys zeroed but weights not renormalised


# ---------------------------------------------------------------- decision level


def vote_ok(logits, weight_logits, present=None):
    names = sorted(logits)
    B = logits[names[0]].shape[0]
    p = torch.stack([present[m] if present and m in present
                     else torch.ones(B, dtype=torch.bool, device=weight_logits.device)
                     for m in names], 1)  # (B, M)
    w = torch.where(p, torch.softmax(weight_logits, 0), 0)
    w = w / w.sum(1, keepdim=True)  # NaN where none present, replaced below
    probs = torch.stack([torch.softmax(logits[m], -1) for m in names], -2)  # (..., M, C)
    mix = (w.reshape(B, *[1] * (probs.dim() - 3), -1, 1) * probs).sum(-2)  # (..., C)
    C = mix.shape[-1]
    none = (~p.any(1)).reshape(B, *[1] * (mix.dim() - 1))
    return torch.where(none, torch.full_like(mix, 1.0 / C), mix).log()


def vote_mixes_logits(logits, weight_logits, present=None):
    w = torch.softmax(weight_logits, 0)
    return torch.log_softmax(sum(w[j] * logits[m] for j, m in enumerate(sorted(logits))), -1)


def vote_raw_weights(logits, weight_logits, present=None):  # not normalised: not log-probs
    return sum(weight_logits[j] * torch.softmax(logits[m], -1)
               for j, m in enumerate(sorted(logits))).clamp_min(1e-9).log()


def vote_ignores_present(logits, weight_logits, present=None):
    return vote_ok(logits, weight_logits, None)


def folds_ok(n, k, seed):
    idx = np.random.default_rng(seed).permutation(n)
    parts = np.array_split(idx, k)
    return [(np.setdiff1d(idx, held), held) for held in parts]


def folds_leaky(n, k, seed):  # fits on everything: the classic stacking leak
    return [(np.arange(n), held) for _, held in folds_ok(n, k, seed)]


def folds_overlapping(n, k, seed):  # windows that overlap: some samples held out twice
    idx = np.arange(n)
    size = math.ceil(n / k) + 1
    return [(np.setdiff1d(idx, idx[i * (n // k): i * (n // k) + size]),
             idx[i * (n // k): i * (n // k) + size]) for i in range(k)]


def folds_unseeded(n, k, seed):
    return folds_ok(n, k, int(np.random.randint(1 << 30)))


# ---------------------------------------------------------------- CRF


def _forward(emissions, mask, start, trans, end, reduce):
    alpha = start + emissions[:, 0]  # (B, K)
    for t in range(1, emissions.shape[1]):
        nxt = reduce(alpha[:, :, None] + trans, 1) + emissions[:, t]
        alpha = torch.where(mask[:, t, None], nxt, alpha)
    return reduce(alpha + end, 1)


def crf_ok(emissions, mask, start, trans, end):
    return _forward(emissions, mask, start, trans, end, torch.logsumexp)


def crf_max(emissions, mask, start, trans, end):
    return _forward(emissions, mask, start, trans, end, lambda x, d: x.max(d).values)


def crf_transposed(emissions, mask, start, trans, end):
    return crf_ok(emissions, mask, start, trans.T, end)


def crf_naive_exp(emissions, mask, start, trans, end):  # log(sum(exp)) overflows
    return _forward(emissions, mask, start, trans, end, lambda x, d: x.exp().sum(d).log())


def crf_ignores_mask(emissions, mask, start, trans, end):
    return crf_ok(emissions, torch.ones_like(mask), start, trans, end)


def viterbi(emissions, mask, start, trans, end, shift=0, use_end=True):
    delta = start + emissions[:, 0]
    back = []
    for t in range(1, emissions.shape[1]):
        best, prev = (delta[:, :, None] + trans).max(1)
        delta = torch.where(mask[:, t, None], best + emissions[:, t], delta)
        back.append(prev)
    last = (delta + (end if use_end else 0)).argmax(1).tolist()
    paths = []
    for b, n in enumerate(mask.sum(1).tolist()):
        path = [last[b]]
        for t in range(n - 1, 0, -1):
            path.append(int(back[min(max(t - 1 + shift, 0), len(back) - 1)][b, path[-1]]))
        paths.append(path[::-1])
    return paths


def viterbi_ok(emissions, mask, start, trans, end):
    return viterbi(emissions, mask, start, trans, end)


def viterbi_off_by_one(emissions, mask, start, trans, end):
    return viterbi(emissions, mask, start, trans, end, shift=-1)


def viterbi_no_end(emissions, mask, start, trans, end):
    return viterbi(emissions, mask, start, trans, end, use_end=False)


def viterbi_full_length(emissions, mask, start, trans, end):  # ignores padding
    return viterbi(emissions, torch.ones_like(mask), start, trans, end)


# ---------------------------------------------------------------- experiment


def gain_ok(frame):
    return fusion_gain(frame)


def gain_best_seed(frame):  # best unimodal per seed, not over the mean
    uni = frame[frame.level == "unimodal"].groupby("setting")["accuracy"].max()
    fused = frame[frame.level != "unimodal"].groupby(["setting", "method"])["accuracy"].mean()
    return fused - uni.reindex(fused.index.get_level_values(0)).to_numpy()


def gain_global_best(frame):  # one best unimodal over all settings
    mean = frame.groupby(["setting", "method", "level"])["accuracy"].mean().reset_index()
    best = mean[mean.level == "unimodal"]["accuracy"].max()
    return mean[mean.level != "unimodal"].set_index(["setting", "method"])["accuracy"] - best


def gain_with_unimodal(frame):
    mean = frame.groupby(["setting", "method"])["accuracy"].mean()
    return mean - mean.groupby(level=0).transform("min")


CHECKS = {
    "check_concat_fusion": (concat_ok, [
        (concat_unsorted, "dict's order; sort the modality names"),
        (concat_ignores_present, "image missing for samples 1 and 3.*missing modalities left in"),
        (concat_float32, "expected the output of dtype torch.float64"),
    ]),
    "check_weighted_sum": (WeightedSumOk, [
        (WeightedSumSigmoid, "non-negative and sum to 1|entries differ"),
        (WeightedSumNoRenorm, "image missing for samples 1 and 3"),
        (WeightedSumDetached, "weight_logits got no gradient"),
    ]),
    "check_masked_cross_attention": (attention_ok, [
        (attention_unscaled, "without the 1/sqrt\\(d\\) scaling"),
        (attention_query_axis, "query axis|masked positions"),
        (attention_nan_when_no_key, "NaN or infinite"),
        (attention_mask_after_softmax, "padded keys"),
    ]),
    "check_late_fusion_weights": (vote_ok, [
        (vote_mixes_logits, "weighted sum of logits"),
        (vote_raw_weights, "must be log-probabilities"),
        (vote_ignores_present, "image missing for sample 1"),
    ]),
    "check_out_of_fold_splits": (folds_ok, [
        (folds_leaky, "leak the labels"),
        (folds_overlapping, "exactly once"),
        (folds_unseeded, "same seed"),
    ]),
    "check_crf_forward": (crf_ok, [
        (crf_max, "max instead of log-sum-exp"),
        (crf_transposed, "transposed"),
        (crf_naive_exp, "NaN or infinite"),
        (crf_ignores_mask, "padded"),
    ]),
    "check_viterbi": (viterbi_ok, [
        (viterbi_off_by_one, "not the best one"),
        (viterbi_no_end, "not the best one"),
        (viterbi_full_length, "expected a path of 2 tags, got 5"),
    ]),
    "check_fusion_gain": (gain_ok, [
        (gain_best_seed, "gains differ"),
        (gain_global_best, "gains differ"),
        (gain_with_unimodal, "unexpected"),
    ]),
}


def test_every_check_is_tested():
    assert set(CHECKS) == {n for n in grading.__all__ if n.startswith("check_")}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_correct_answer_passes(name):
    report = getattr(grading, name)(CHECKS[name][0])
    assert report.implemented and len(report.cases) >= 3
    assert str(report) == f"{name}: all {len(report.cases)} cases passed"


WRONG = [(name, wrong, expected) for name, (_, bad) in CHECKS.items() for wrong, expected in bad]


@pytest.mark.parametrize(("name", "wrong", "expected"), WRONG,
                         ids=[f"{n}-{w.__name__}" for n, w, _ in WRONG])
def test_wrong_answer_fails_with_a_helpful_message(name, wrong, expected):
    with pytest.raises(CheckFailed) as info:
        getattr(grading, name)(wrong)
    msg = str(info.value)
    assert msg.startswith(f"{name} failed on case "), msg
    assert re.search(expected, msg), msg


@pytest.mark.parametrize("wrong", [crf_transposed, attention_unscaled, vote_mixes_logits],
                         ids=lambda f: f.__name__)
def test_messages_never_show_reference_values(wrong):
    """A wrong answer is told how many entries differ, not what they should be."""
    name = {crf_transposed: "check_crf_forward", attention_unscaled:
            "check_masked_cross_attention", vote_mixes_logits: "check_late_fusion_weights"}[wrong]
    with pytest.raises(CheckFailed) as info:
        getattr(grading, name)(wrong)
    message = str(info.value)
    assert "largest difference" in message
    assert len(re.findall(r"-?\d+\.\d+", message)) == 1, message  # that difference only


def test_a_crash_in_student_code_names_the_case():
    def crashes(features, present=None):
        raise KeyError("text")

    with pytest.raises(CheckFailed, match=r"case 1 \(two modalities.*raised KeyError"):
        grading.check_concat_fusion(crashes)


def test_a_stub_is_reported_not_failed():
    def stub(*args, **kwargs):
        raise NotImplementedError

    for name in CHECKS:
        with pytest.warns(NotImplementedWarning, match="not implemented yet"):
            report = getattr(grading, name)(stub)
        assert not report.implemented and "not implemented yet" in str(report)


def test_fusion_gain_on_a_hand_made_table():
    frame = pd.DataFrame({
        "setting": ["s"] * 6, "seed": [0, 1] * 3,
        "method": ["text", "text", "image", "image", "concat", "concat"],
        "level": ["unimodal"] * 4 + ["feature"] * 2,
        "accuracy": [0.5, 0.7, 0.4, 0.4, 0.8, 0.9],
    })
    assert fusion_gain(frame).to_dict() == pytest.approx({("s", "concat"): 0.85 - 0.6})
