"""Tests of the decision-level (late-fusion) tagger: each expert sees only its own modality."""

from __future__ import annotations

import pytest
import torch
from devices import DEVICES
from test_models import make_batch

from mmtutor.models import build_tagger

SMALL_CNN = {"channels": (4, 8)}
DECISION = ["average", "weighted_vote", "product_of_experts"]


def batch_of(device: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """``test_models.make_batch`` (sentence lengths 5, 3, 1) with every modality present."""
    batch = make_batch(device, seed)
    batch["text_present"] = torch.ones_like(batch["text_present"])
    batch["image_present"] = torch.ones_like(batch["image_present"])
    return batch


def tagger(fusion: str, device: str):
    torch.manual_seed(0)
    return build_tagger(vocab_size=30, num_tags=5, char_vocab_size=20, encoder="cnn-bilstm",
                        fusion=fusion, dim=8, image_kwargs=SMALL_CNN).to(device).eval()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fusion", DECISION)
def test_each_expert_reads_only_its_own_modality(fusion, device):
    model = tagger(fusion, device)
    batch = batch_of(device)
    other_text = {**batch, "tokens": batch_of(device, seed=1)["tokens"] * batch["token_mask"],
                  "chars": batch_of(device, seed=2)["chars"]}
    other_image = {**batch, "image": batch_of(device, seed=3)["image"]}
    with torch.no_grad():
        base, new_text, new_image = (model.expert_logits(b) for b in (batch, other_text,
                                                                      other_image))
    assert base["text"].shape == base["image"].shape == (3, 5, 5)
    # the image expert ignores the text: new tokens, same image scores ...
    assert torch.equal(new_text["image"], base["image"]), \
        "the image expert's tag scores changed with the tokens: it reads the text"
    # ... and gives one tag distribution per sentence, the same at every token
    assert torch.equal(base["image"], base["image"][:, :1].expand_as(base["image"])), \
        "the image expert's scores differ between tokens of one sentence"
    # the text expert ignores the image
    assert torch.equal(new_image["text"], base["text"]), \
        "the text expert's tag scores changed with the image: it reads the image"
    # and each expert does read its own modality (so the checks above are not vacuous)
    assert not torch.allclose(new_text["text"], base["text"])
    assert not torch.allclose(new_image["image"], base["image"])


@pytest.mark.parametrize("device", DEVICES)
def test_product_of_experts_is_the_sum_of_the_experts_log_probabilities(device):
    model = tagger("product_of_experts", device)
    batch = batch_of(device)
    batch["image_present"] = torch.tensor([True, False, True], device=device)
    with torch.no_grad():
        experts = model.expert_logits(batch)
        fused = model(batch)  # (B, T, K) log-probabilities
    log_p = {m: torch.log_softmax(v, dim=-1) for m, v in experts.items()}
    expected = torch.log_softmax(log_p["text"] + log_p["image"], dim=-1)
    keep = batch["image_present"]
    torch.testing.assert_close(fused[keep], expected[keep])
    # without its image, a sentence is tagged by the text expert alone
    torch.testing.assert_close(fused[~keep], log_p["text"][~keep])


def test_expert_logits_needs_a_decision_level_tagger():
    model = tagger("concat", "cpu")
    with pytest.raises(ValueError, match="decision-level"):
        model.expert_logits(batch_of("cpu"))
