"""Every fusion in FUSIONS honours the contract of CONTRIBUTING.md ("Fusion modules").

One parametrized class runs over every registered fusion x dtype x device; a new entry of
FUSIONS only needs a tiny config in SPECS below.
"""

from __future__ import annotations

import re

import pytest
import torch
from devices import DEVICES

from mmtutor.fusion import FUSION_LEVELS, FUSIONS, Fusion, build_fusion

B, T_TEXT, T_IMAGE = 4, 5, 3
VECTOR_DIMS = {"text": 4, "image": 5}
LOGIT_DIMS = {"text": 3, "image": 3}

# name -> (tiny kwargs, documented output_dim for VECTOR_DIMS / LOGIT_DIMS)
SPECS = {
    "concat": ({}, 9),
    "weighted_sum": ({"output_dim": 6}, 6),
    "tensor": ({"project_dims": 2}, 9),  # (2 + 1) * (2 + 1)
    "low_rank": ({"rank": 2, "output_dim": 6}, 6),
    "gated": ({}, 5),  # max d_m
    "film": ({}, 4),  # d_target = d_text
    "cross_attention": ({"d_model": 8, "num_heads": 2}, 8),
    "transformer": ({"d_model": 8, "num_heads": 2, "dim_feedforward": 16}, 8),
    "average": ({}, 3),
    "weighted_vote": ({}, 3),
    "product_of_experts": ({}, 3),
}

DTYPES = [torch.float32, torch.float64]


def build(name: str, dtype: torch.dtype, device: str) -> Fusion:
    """The fusion with its tiny config, parameters nudged off their init (no zero-init)."""
    torch.manual_seed(0)
    kwargs, _ = SPECS[name]
    dims = LOGIT_DIMS if FUSIONS[name].input_kind == "logits" else VECTOR_DIMS
    fusion = build_fusion(name, dims, **kwargs)
    with torch.no_grad():
        for p in fusion.parameters():
            p.add_(0.3 * torch.randn_like(p))  # e.g. FiLM starts at identity; break that
    return fusion.to(device=device, dtype=dtype).eval()


def inputs(fusion: Fusion, dtype: torch.dtype, device: str, seed: int = 1):
    """Random features (and a token_mask with padding for sequence fusions)."""
    g = torch.Generator().manual_seed(seed)
    if fusion.input_kind == "sequence":
        lengths = {"text": [5, 3, 1, 4], "image": [3, 3, 2, 1]}
        T = {"text": T_TEXT, "image": T_IMAGE}
        x = {m: torch.randn(B, T[m], d, generator=g) for m, d in fusion.input_dims.items()}
        mask = {m: torch.arange(T[m])[None] < torch.tensor(lengths[m])[:, None] for m in x}
        mask = {m: v.to(device) for m, v in mask.items()}
    else:
        x = {m: torch.randn(B, d, generator=g) for m, d in fusion.input_dims.items()}
        mask = None
    return {m: v.to(device=device, dtype=dtype) for m, v in x.items()}, mask


def expected_shape(fusion: Fusion, lead: tuple[int, ...] = (B,)) -> tuple[int, ...]:
    if fusion.input_kind != "sequence":
        return lead + (fusion.output_dim,)
    if getattr(fusion, "query", None) == "text":  # cross-attention: one output per query token
        return (B, T_TEXT, fusion.output_dim)
    return (B, fusion.output_dim)  # pooled


def all_present(device: str) -> dict[str, torch.Tensor]:
    return {m: torch.ones(B, dtype=torch.bool, device=device) for m in VECTOR_DIMS}


def test_specs_cover_the_registry():
    assert set(SPECS) == set(FUSIONS)
    assert set(FUSION_LEVELS) == set(FUSIONS)
    assert set(FUSION_LEVELS.values()) == {"feature", "model", "decision"}


def test_build_fusion_lists_valid_names():
    with pytest.raises(ValueError, match="product_of_experts"):
        build_fusion("no_such_fusion", VECTOR_DIMS)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", sorted(FUSIONS))
class TestFusionContract:
    def test_output_shape_dtype_and_output_dim(self, name, dtype, device):
        fusion = build(name, dtype, device)
        assert fusion.output_dim == SPECS[name][1]
        assert fusion.modalities == ("image", "text")
        x, mask = inputs(fusion, dtype, device)
        out = fusion(x, all_present(device), mask)
        assert out.shape == expected_shape(fusion)
        assert out.dtype == dtype and out.device.type == device
        assert torch.isfinite(out).all()

    def test_per_token_inputs(self, name, dtype, device):
        fusion = build(name, dtype, device)
        if fusion.input_kind == "sequence":
            pytest.skip("sequence fusions take (B, T_m, d_m) already")
        x = {
            m: torch.randn(B, 7, d, dtype=dtype, device=device)
            for m, d in fusion.input_dims.items()
        }
        assert fusion(x, all_present(device)).shape == expected_shape(fusion, (B, 7))

    def test_backward_reaches_every_parameter(self, name, dtype, device):
        fusion = build(name, dtype, device).train()
        x, mask = inputs(fusion, dtype, device)
        x = {m: v.requires_grad_() for m, v in x.items()}  # some fusions have no parameters
        out = fusion(x, None, mask)
        (out * torch.randn_like(out)).sum().backward()
        for m, v in x.items():
            assert v.grad is not None and v.grad.abs().sum() > 0, m
        for pname, p in fusion.named_parameters():
            assert p.grad is not None, pname
            assert torch.isfinite(p.grad).all(), pname
            assert p.grad.abs().sum() > 0, pname

    @pytest.mark.parametrize("missing", ["image", "text"])
    def test_missing_modality_is_ignored(self, name, dtype, device, missing):
        fusion = build(name, dtype, device)
        x, mask = inputs(fusion, dtype, device)
        changed = dict(x)
        changed[missing] = x[missing].clone()
        changed[missing][0] = 100 * torch.randn_like(x[missing][0])
        present = all_present(device)
        # present: the change must matter (else the check below proves nothing)
        assert not torch.allclose(fusion(x, present, mask)[0], fusion(changed, present, mask)[0])
        present[missing] = torch.tensor([False, True, True, True], device=device)
        out = fusion(x, present, mask)
        torch.testing.assert_close(fusion(changed, present, mask), out)
        # the other samples do not depend on sample 0's flag
        torch.testing.assert_close(out[1:], fusion(x, all_present(device), mask)[1:])
        assert torch.isfinite(out).all()

    def test_padded_tokens_are_ignored(self, name, dtype, device):
        fusion = build(name, dtype, device)
        if fusion.input_kind != "sequence":
            pytest.skip("only sequence fusions take token_mask")
        x, mask = inputs(fusion, dtype, device)
        out = fusion(x, None, mask)
        changed = {m: torch.where(mask[m][..., None], v, 1e3) for m, v in x.items()}
        torch.testing.assert_close(fusion(changed, None, mask), out)
        # without the mask the padded values are used
        assert not torch.allclose(fusion(changed, None, None), fusion(x, None, None))

    def test_bad_inputs_raise_value_error_with_shapes(self, name, dtype, device):
        fusion = build(name, dtype, device)
        x, mask = inputs(fusion, dtype, device)

        def raises(features, *, shows, present=None):
            with pytest.raises(ValueError, match=re.escape(shows)):
                fusion(features, present, mask)

        raises({"text": x["text"], "audio": x["image"]}, shows="'audio'")
        raises({"text": x["text"]}, shows="missing ['image']")
        wrong_d = x["text"][..., :-1]
        raises({**x, "text": wrong_d}, shows=str(tuple(wrong_d.shape)))
        fewer = x["image"][:-1]
        raises({**x, "image": fewer}, shows=str(tuple(fewer.shape)))
        raises({**x, "text": x["text"].long()}, shows="floating-point")
        bad_present = {"text": torch.ones(B + 1, dtype=torch.bool, device=device)}
        raises(x, present=bad_present, shows=f"({B + 1},)")
        raises(x, present={"audio": bad_present["text"]}, shows="'audio'")

    def test_moves_with_to_device(self, name, dtype, device):
        fusion = build(name, dtype, "cpu").to(device)
        for pname, t in [*fusion.named_parameters(), *fusion.named_buffers()]:
            assert t.device.type == device, pname
            if t.is_floating_point():
                assert t.dtype == dtype, pname
        x, mask = inputs(fusion, dtype, device)
        assert fusion(x, None, mask).device.type == device
