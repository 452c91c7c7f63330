"""A missing modality really is ignored by the models, for every fusion of FUSIONS.

The fusion modules are checked one by one in ``test_fusion_conformance.py``; here the whole
model is: encoders -> fusion -> head of :class:`~mmtutor.models.MultimodalClassifier` and
:class:`~mmtutor.models.MultimodalTagger`. Whatever pixels (or token ids) a sample holds
whose ``image_present`` (``text_present``) is False, its output must be bit-identical; and
the same change made to a sample whose modality is present must change its output (else the
first check proves nothing).
"""

from __future__ import annotations

import pytest
import torch
from devices import DEVICES
from test_fusion_conformance import build, inputs

from mmtutor.fusion import FUSIONS
from mmtutor.models import build_classifier, build_tagger

SMALL_CNN = {"channels": (4, 8)}  # two blocks: a 16x16 image becomes 4x4 = 16 regions
PRESENT, MISSING = 0, 1  # sample 0 has every modality; sample 1 lacks the one under test
# A tagger labels the tokens of its text: a sentence cannot be missing (the tagging collate
# sets text_present = True for every non-empty sentence), so only the image side applies.
TAGGER_SKIPS = {
    "transformer": "TransformerFusion pools every token into one vector; a tagger needs one "
                   "vector per token (build_tagger refuses it, see test_models.py)",
}


def make_batch(missing: str, device: str) -> dict[str, torch.Tensor]:
    """Four samples; sample 1 lacks ``missing`` and holds random values in its place."""
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([5, 3, 4, 2])
    mask = torch.arange(5)[None] < lengths[:, None]  # (4, 5)
    present = torch.ones(4, dtype=torch.bool)
    absent = present.clone()
    absent[MISSING] = False
    batch = {
        "tokens": torch.randint(2, 30, (4, 5), generator=g) * mask,
        "token_mask": mask,
        "chars": torch.randint(1, 20, (4, 5, 4), generator=g) * mask[..., None],
        "image": torch.randn(4, 3, 16, 16, generator=g),
        "text_present": absent if missing == "text" else present,
        "image_present": absent if missing == "image" else present,
        "label": torch.tensor([0, 1, 2, 1]),
        "tags": torch.where(mask, torch.randint(0, 5, (4, 5), generator=g), -100),
    }
    return {k: v.to(device) for k, v in batch.items()}


def change(batch: dict[str, torch.Tensor], modality: str, sample: int) -> dict[str, torch.Tensor]:
    """A copy of ``batch`` with new pixels (or new real token ids) for one sample."""
    g = torch.Generator().manual_seed(123)
    new = dict(batch)
    if modality == "image":
        new["image"] = batch["image"].clone()
        new["image"][sample] = 10 * torch.randn(3, 16, 16, generator=g).to(batch["image"].device)
    else:  # the same length, other words
        new["tokens"] = batch["tokens"].clone()
        ids = torch.randint(2, 30, (5,), generator=g).to(batch["tokens"].device)
        new["tokens"][sample] = torch.where(batch["token_mask"][sample], ids, 0)
        assert not torch.equal(new["tokens"][sample], batch["tokens"][sample])
    return new


def nudged(model: torch.nn.Module, device: str) -> torch.nn.Module:
    """Move parameters off their init (FiLM starts as the identity: it would ignore the image)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
    return model.to(device)


def check_ignored(model, missing: str, device: str) -> None:
    """In eval mode, and in train mode (where BatchNorm mixes the batch's statistics)."""
    for train in (False, True):
        check_ignored_in_mode(model.train(train), missing, device)


def check_ignored_in_mode(model, missing: str, device: str) -> None:
    batch = make_batch(missing, device)
    with torch.no_grad():
        out = model(batch)
        out_missing_changed = model(change(batch, missing, MISSING))
        out_present_changed = model(change(batch, missing, PRESENT))
    assert torch.isfinite(out).all()
    # Exactly the same numbers: the model may not read the missing modality at all.
    assert torch.equal(out_missing_changed[MISSING], out[MISSING]), (
        f"changing the {missing} of a sample whose {missing}_present is False changed its "
        f"output by up to {(out_missing_changed[MISSING] - out[MISSING]).abs().max().item():.3g}"
    )
    if not model.training:  # eval: no sample depends on another (BatchNorm: running stats)
        assert torch.equal(out_missing_changed, out), "another sample's output changed"
    assert not torch.allclose(out_present_changed[PRESENT], out[PRESENT]), (
        f"changing a present {missing} did not change the output: the test proves nothing"
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("missing", ["image", "text"])
@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_classifier_ignores_a_missing_modality(fusion, missing, device):
    torch.manual_seed(0)
    model = build_classifier(fusion, vocab_size=30, num_classes=3, dim=8, image_kwargs=SMALL_CNN)
    check_ignored(nudged(model, device), missing, device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_tagger_ignores_a_missing_image(fusion, device):
    if fusion in TAGGER_SKIPS:
        with pytest.raises(ValueError, match="one vector per token"):
            build_tagger(vocab_size=30, num_tags=5, fusion=fusion, dim=8)
        pytest.skip(TAGGER_SKIPS[fusion])
    torch.manual_seed(0)
    model = build_tagger(vocab_size=30, num_tags=5, fusion=fusion, head="crf", dim=8,
                         image_kwargs=SMALL_CNN)
    check_ignored(nudged(model, device), "image", device)  # the emissions
    # ... and so are the CRF's loss and its decoded tags (the head reads only the emissions)
    batch = make_batch("image", device)
    changed = change(batch, "image", MISSING)
    model.eval()
    with torch.no_grad():
        nll, nll_changed = (model.crf(model(b), b["tags"], b["token_mask"], reduction="none")
                            for b in (batch, changed))
        assert torch.equal(nll_changed[MISSING], nll[MISSING])
        assert model.predict(changed)[MISSING] == model.predict(batch)[MISSING]


# ---------------------------------------------------------------- NaN / inf where nothing is
# Fusion modules alone (the setup of test_fusion_conformance.py): whatever a missing
# modality's features or a padded token hold, even NaN or inf, the output and every gradient
# stay finite. (Multiplying by a 0/1 mask would not do: NaN * 0 is NaN.)
PRESENT_FLAGS = {  # sample 0 has both, 1 lacks the image, 2 the text, 3 has nothing
    "image": torch.tensor([True, False, True, False]),
    "text": torch.tensor([True, True, False, False]),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("junk", [float("nan"), float("inf"), -float("inf")],
                         ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("fusion_name", sorted(FUSIONS))
def test_junk_in_missing_features_stays_out_of_outputs_and_gradients(fusion_name, junk, device):
    fusion = build(fusion_name, torch.float32, device).train()
    x, mask = inputs(fusion, torch.float32, device)
    present = {m: v.to(device) for m, v in PRESENT_FLAGS.items()}
    clean = fusion(x, present, mask).detach()
    dirty = {}
    for m, v in x.items():
        v = torch.where(~present[m].reshape(-1, *[1] * (v.dim() - 1)), junk, v)  # missing rows
        if mask is not None:  # and the padded tokens of sequences
            v = torch.where(mask[m][..., None], v, junk)
        dirty[m] = v.detach().requires_grad_()
    out = fusion(dirty, present, mask)
    assert torch.isfinite(out).all(), f"{junk} in a missing modality reached the output"
    torch.testing.assert_close(out.detach(), clean)  # and changed nothing at all
    (out * torch.randn_like(out)).sum().backward()
    for m, v in dirty.items():
        assert torch.isfinite(v.grad).all(), f"gradient of features[{m!r}] is not finite"
    for name, p in fusion.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), f"gradient of {name} not finite"
