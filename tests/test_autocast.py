"""bfloat16 autocast on the CPU: every fusion, the CRF and whole models stay finite and close.

``torch.autocast("cpu", dtype=torch.bfloat16)`` runs matrix products in bfloat16 (8 bits of
mantissa: a relative rounding error of 2^-8 ~ 0.4% per product) and leaves element-wise ops in
the dtype of their inputs. A fusion must then give finite outputs of a floating dtype no wider
than float32, close to its float32 result within what bfloat16 can resolve, also with missing
modalities (where large negative fills and softmaxes over nothing live), and finite gradients.
"""

from __future__ import annotations

import pytest
import torch
from test_fusion_conformance import build, inputs
from test_missing_modality import PRESENT_FLAGS, SMALL_CNN, make_batch

from mmtutor.fusion import FUSIONS
from mmtutor.heads import CRF
from mmtutor.models import build_classifier, build_tagger

BF16 = {"device_type": "cpu", "dtype": torch.bfloat16}
SENSIBLE = (torch.bfloat16, torch.float32)  # never float16 or float64 out of bf16 autocast
RTOL = 1.6e-2  # torch.testing's default rtol for bfloat16


def close_in_bf16(out: torch.Tensor, ref: torch.Tensor) -> None:
    # rounding errors scale with the size of the numbers, not of each entry
    torch.testing.assert_close(out.float(), ref, rtol=RTOL, atol=RTOL * ref.abs().max().item())


@pytest.mark.parametrize("fusion_name", sorted(FUSIONS))
def test_every_fusion_under_bf16_autocast(fusion_name):
    fusion = build(fusion_name, torch.float32, "cpu").train()
    x, mask = inputs(fusion, torch.float32, "cpu")
    x = {m: v.requires_grad_() for m, v in x.items()}
    for present in (None, PRESENT_FLAGS):  # all present; and 1 or 0 modalities per sample
        ref = fusion(x, present, mask)
        with torch.autocast(**BF16):
            out = fusion(x, present, mask)
        assert out.dtype in SENSIBLE, out.dtype
        assert torch.isfinite(out).all()
        close_in_bf16(out, ref.detach())
        (out.float() * torch.randn_like(ref)).sum().backward()
        for name, p in [*fusion.named_parameters(), *((f"features[{m!r}]", v) for m, v in x.items())]:
            assert p.grad is None or torch.isfinite(p.grad).all(), f"gradient of {name}"


def crf_inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    emissions = 3 * torch.randn(3, 6, 5, generator=g)  # (B, T, K)
    mask = torch.arange(6)[None] < torch.tensor([6, 4, 1])[:, None]  # (B, T)
    tags = torch.where(mask, torch.randint(0, 5, (3, 6), generator=g), -100)
    return emissions, tags, mask


def test_crf_computes_in_float32_under_bf16_autocast():
    torch.manual_seed(0)
    crf = CRF(5).constrain_bio(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])
    emissions, tags, mask = crf_inputs()
    tags = torch.where(mask, 0, -100)  # all "O": a path the constraints allow
    ref = crf.log_likelihood(emissions, tags, mask)
    with torch.autocast(**BF16):
        # float32 emissions under autocast: nothing in the CRF is a bf16 op, same numbers
        torch.testing.assert_close(crf.log_likelihood(emissions, tags, mask), ref)
        # bf16 emissions, as a bf16 emission head gives them: computed in float32
        e16 = emissions.to(torch.bfloat16).requires_grad_()
        ll = crf.log_likelihood(e16, tags, mask)
        log_z = crf.log_partition(e16, mask)
        paths = crf.decode(e16, mask)
    assert ll.dtype == torch.float32 and log_z.dtype == torch.float32
    assert torch.isfinite(ll).all() and (ll <= 0).all()
    # the same as float32 on the rounded emissions: only the inputs were rounded
    torch.testing.assert_close(ll, crf.log_likelihood(e16.detach().float(), tags, mask))
    close_in_bf16(ll, ref)
    assert paths == crf.decode(e16.detach().float(), mask)
    ll.sum().backward()
    assert e16.grad.dtype == torch.bfloat16 and torch.isfinite(e16.grad).all()


@pytest.mark.parametrize("fusion_name", sorted(FUSIONS))
def test_classifier_trains_under_bf16_autocast(fusion_name):
    torch.manual_seed(0)
    model = build_classifier(fusion_name, vocab_size=30, num_classes=3, dim=8,
                             image_kwargs=SMALL_CNN).eval()
    batch = make_batch("image", "cpu")
    ref = model(batch)
    with torch.autocast(**BF16):
        out = model(batch)
        loss = model.loss(batch)
    assert out.dtype in SENSIBLE and torch.isfinite(out).all()
    close_in_bf16(out, ref.detach())
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), f"gradient of {name}"


@pytest.mark.parametrize("fusion_name", ["concat", "cross_attention", "product_of_experts"])
def test_crf_tagger_under_bf16_autocast(fusion_name):
    torch.manual_seed(0)
    model = build_tagger(vocab_size=30, num_tags=5, fusion=fusion_name, dim=8,
                         image_kwargs=SMALL_CNN).eval()
    batch = make_batch("image", "cpu")
    ref_loss = model.loss(batch)
    with torch.autocast(**BF16):
        emissions = model(batch)
        loss = model.loss(batch)
        paths = model.predict(batch)
    assert emissions.dtype in SENSIBLE
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    close_in_bf16(loss, ref_loss.detach())
    assert [len(p) for p in paths] == batch["token_mask"].sum(dim=1).tolist()
    loss.backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
