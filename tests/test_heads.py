"""Classification heads: shapes on any leading dims, the MLP option, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mmtutor.heads import ClassificationHead, TokenClassificationHead


@pytest.mark.parametrize("hidden", [None, 16])
@pytest.mark.parametrize("lead", [(5,), (2, 7), (2, 3, 4)])
def test_shapes_on_any_leading_dims(hidden, lead):
    head = ClassificationHead(8, 3, hidden=hidden, dropout=0.1)
    assert head(torch.randn(*lead, 8)).shape == (*lead, 3)


def test_linear_head_is_one_linear_layer():
    head = ClassificationHead(8, 3).eval()
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 1
    x = torch.randn(4, 8)
    assert torch.allclose(head(x), x @ linears[0].weight.T + linears[0].bias)
    assert (
        sum(p.numel() for p in ClassificationHead(8, 3, hidden=16).parameters())
        == 8 * 16 + 16 + 16 * 3 + 3
    )


def test_token_head_scores_each_token_like_the_sample_head():
    head = TokenClassificationHead(8, 5).eval()
    assert isinstance(head, ClassificationHead)
    x = torch.randn(2, 7, 8)
    out = head(x)  # (B, T, C)
    assert out.shape == (2, 7, 5)
    assert torch.allclose(out[1, 3], head(x[1, 3].unsqueeze(0))[0])


def test_dropout_only_in_training():
    head = ClassificationHead(8, 3, dropout=0.5).eval()
    x = torch.randn(4, 8)
    assert torch.equal(head(x), head(x))


@pytest.mark.parametrize(
    ("make", "x", "message"),
    [
        (
            lambda: ClassificationHead(8, 3),
            torch.randn(4, 6),
            r"features must have shape \(\.\.\., 8\), got \(4, 6\)",
        ),
        (lambda: ClassificationHead(8, 3), torch.randn(8)[0], r"got \(\)"),
        (lambda: ClassificationHead(8, 3), torch.ones(4, 8, dtype=torch.long), "floating-point"),
        (lambda: ClassificationHead(0, 3), None, "in_dim and num_classes must be positive"),
        (lambda: ClassificationHead(8, 3, hidden=0), None, "hidden must be"),
    ],
)
def test_errors(make, x, message):
    with pytest.raises(ValueError, match=message):
        make()(x)
