"""``mmtutor.fusion.cost``: the numbers chapters 6 and 10 and ``make bench`` print.

Only counts are tested (parameters, FLOPs, the shape of the inputs), never times.
"""

from __future__ import annotations

import pytest

from mmtutor.fusion import build_fusion
from mmtutor.fusion.cost import fusion_inputs, measure_fusion, median_seconds
from mmtutor.train import count_parameters


def test_concat_costs_one_linear_layer_forward_and_twice_that_backward():
    b, d, out = 8, 6, 4
    row = measure_fusion("concat", d, batch=b, repeats=1, warmup=0, output_dim=out)
    assert row["params"] == 2 * d * out + out  # Linear(2d -> out)
    forward = 2 * b * (2 * d) * out  # one multiply and one add per weight and sample
    assert row["fwd MFLOP"] * 1e6 == pytest.approx(forward)
    # backward: the gradient for the input and for the weight, each a product of that size
    assert row["fwd+bwd MFLOP"] * 1e6 == pytest.approx(3 * forward)
    assert row["fwd ms"] > 0 and row["fwd+bwd ms"] > 0
    assert (row["fusion"], row["level"], row["input"], row["width"]) == ("concat", "feature",
                                                                         "vector", d)


def test_low_rank_is_cheaper_than_tensor_fusion_as_the_book_says():
    tfn = measure_fusion("tensor", 128, batch=16, repeats=1, warmup=0, output_dim=64)
    lmf = measure_fusion("low_rank", 128, batch=16, repeats=1, warmup=0, output_dim=64, rank=4)
    assert tfn["params"] == count_parameters(build_fusion("tensor", {"text": 128, "image": 128},
                                                          output_dim=64))
    assert tfn["params"] / lmf["params"] > 10
    assert tfn["fwd MFLOP"] / lmf["fwd MFLOP"] > 10


def test_inputs_follow_the_fusion_kind():
    seq = build_fusion("cross_attention", {"text": 5, "image": 5}, d_model=8, num_heads=2)
    x = fusion_inputs(seq, 5, batch=3, seq_len=7)
    assert {m: tuple(t.shape) for m, t in x.items()} == {"image": (3, 7, 5), "text": (3, 7, 5)}
    assert all(t.requires_grad for t in x.values())
    vec = fusion_inputs(build_fusion("gated", {"text": 5, "image": 5}, output_dim=4), 5, batch=3)
    assert {tuple(t.shape) for t in vec.values()} == {(3, 5)}


def test_median_seconds_calls_warmup_plus_repeats_and_checks_its_arguments():
    calls = []
    assert median_seconds(lambda: calls.append(1), repeats=3, warmup=2) >= 0
    assert len(calls) == 5
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        median_seconds(lambda: None, repeats=0)
