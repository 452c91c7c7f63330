"""Tests of mmtutor.models: every fusion wired into a classifier, taggers with both heads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from devices import DEVICES
from torch.utils.data import DataLoader

from mmtutor.fusion import FUSIONS
from mmtutor.models import (
    MultimodalClassifier,
    MultimodalTagger,
    UnimodalClassifier,
    build_classifier,
    build_tagger,
    build_unimodal_classifier,
)
from mmtutor.train import evaluate, fit, predict_proba

SMALL_CNN = {"channels": (4, 8)}  # two blocks: a 16x16 image becomes 4x4 = 16 regions
TAG_NAMES = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def make_batch(device: str = "cpu", seed: int = 0) -> dict[str, torch.Tensor]:
    """A batch as the collate functions make it (CONTRIBUTING.md), sentence lengths 5, 3, 1."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    batch = {
        "tokens": torch.randint(2, 30, (3, 5), generator=g) * mask,
        "token_mask": mask,
        "chars": torch.randint(1, 20, (3, 5, 4), generator=g) * mask[..., None],
        "image": torch.randn(3, 3, 16, 16, generator=g),
        "text_present": torch.tensor([True, True, False]),
        "image_present": torch.tensor([True, False, True]),
        "label": torch.tensor([0, 1, 2]),
        "tags": torch.tensor([[1, 2, 0, 3, 4], [0, 1, 0, -100, -100], [3, -100, -100, -100, -100]]),
    }
    return {k: v.to(device) for k, v in batch.items()}


def classifier(fusion: str, **kwargs) -> MultimodalClassifier:
    torch.manual_seed(0)
    return build_classifier(fusion, vocab_size=30, num_classes=3, dim=8, image_kwargs=SMALL_CNN,
                            **kwargs)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_every_fusion_trains_in_a_classifier(fusion, device):
    model = classifier(fusion).to(device)
    batch = make_batch(device)
    scores = model(batch)
    assert scores.shape == (3, 3) and scores.device.type == device
    loss = model.loss(batch)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    for m, encoder in model.encoders.items():  # in the graph (FiLM's zero init: zero grads)
        assert any(p.grad is not None for p in encoder.parameters()), f"{m} encoder not trained"
    assert any(p.grad.abs().sum() > 0 for p in model.parameters() if p.grad is not None)
    assert model.predict(batch).shape == (3,)
    probs = model.predict_proba(batch)
    torch.testing.assert_close(probs.sum(dim=-1), torch.ones(3, device=device))


def test_decision_level_fusion_returns_log_probs_and_trains_each_expert():
    model = classifier("average", aux_weight=1.0)
    batch = make_batch()
    # Each expert by hand: its encoder's pooled vector, then its own head.
    text = model.head["text"](model.encoders["text"](batch["tokens"], batch["token_mask"]).pooled)
    image = model.head["image"](model.encoders["image"](batch["image"]).pooled)
    p_text, p_image = text.softmax(dim=-1), image.softmax(dim=-1)  # (3, C)
    # Sample 0 has both modalities (mean of the two), 1 only text, 2 only the image.
    expected = torch.stack([(p_text[0] + p_image[0]) / 2, p_text[1], p_image[2]])  # (3, C)
    torch.testing.assert_close(model(batch), expected.log())
    torch.testing.assert_close(model.predict_proba(batch), expected)
    # The loss is NLL(fused) + mean over modalities of the CE on samples where m is present.
    y, ce = batch["label"], torch.nn.functional.cross_entropy
    text_ce = ce(text[:2], y[:2])  # text present in samples 0 and 1
    image_ce = ce(image[[0, 2]], y[[0, 2]])  # image present in samples 0 and 2
    loss = model.loss(batch)
    torch.testing.assert_close(loss, -expected.log()[torch.arange(3), y].mean()
                               + (text_ce + image_ce) / 2)
    loss.backward()  # every expert learns: its head and its encoder get gradients
    for m in ("text", "image"):
        for part in (model.head[m], model.encoders[m]):
            assert any(p.grad is not None and p.grad.abs().sum() > 0
                       for p in part.parameters()), f"{m} expert gets no gradient"


def test_uncertainty_weighting_follows_kendall():
    model = classifier("concat", aux_weighting="uncertainty")
    with torch.no_grad():
        model.log_vars.copy_(torch.tensor([0.5, -1.0, 2.0]))
    batch = make_batch()
    fused, unimodal = model.scores(batch)
    ce = torch.nn.functional.cross_entropy
    y = batch["label"]
    losses = torch.stack([ce(fused, y), ce(unimodal["image"][[0, 2]], y[[0, 2]]),
                          ce(unimodal["text"][:2], y[:2])])  # sorted: fused, image, text
    s = model.log_vars.detach()
    torch.testing.assert_close(model.loss(batch), (torch.exp(-s) * losses + s / 2).sum())
    model.loss(batch).backward()
    assert model.log_vars.grad is not None


def test_aux_loss_ignores_missing_modality():
    model = classifier("concat", aux_weight=1.0)
    batch = make_batch()
    batch["image_present"] = torch.zeros(3, dtype=torch.bool)
    model.loss(batch).backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0
               for p in model.aux_heads["image"].parameters())


def test_classifier_rejects_bad_wiring():
    model = classifier("average")
    with pytest.raises(ValueError, match="one head per modality"):
        MultimodalClassifier(model.encoders, model.fusion, model.head["text"])
    with pytest.raises(ValueError, match="need aux_heads"):
        MultimodalClassifier(model.encoders, classifier("concat").fusion, torch.nn.Identity(),
                             aux_weight=0.5)
    with pytest.raises(ValueError, match="encoders"):
        MultimodalClassifier({"text": model.encoders["text"]}, classifier("concat").fusion,
                             torch.nn.Identity())
    with pytest.raises(ValueError, match="unknown fusion"):
        classifier("sum")


@pytest.mark.parametrize("modality", ["text", "image"])
def test_unimodal_baselines(modality):
    model = build_unimodal_classifier(modality, vocab_size=30, num_classes=3, dim=8,
                                      **({"channels": (4, 8)} if modality == "image" else {}))
    assert isinstance(model, UnimodalClassifier)
    batch = make_batch()
    assert model(batch).shape == (3, 3)
    model.loss(batch).backward()
    assert model.predict(batch).shape == (3,)


TAGGER_FUSIONS = [None, "concat", "gated", "film", "cross_attention", "product_of_experts"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("head", ["softmax", "crf"])
@pytest.mark.parametrize("fusion", TAGGER_FUSIONS)
def test_tagger_shapes_and_lengths(fusion, head, device):
    torch.manual_seed(0)
    model = build_tagger(vocab_size=30, num_tags=5, fusion=fusion, head=head, dim=8,
                         image_kwargs=SMALL_CNN).to(device)
    assert (model.fusion is None) == (fusion is None)
    batch = make_batch(device)
    emissions = model(batch)
    assert emissions.shape == (3, 5, 5)
    loss = model.loss(batch)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    predicted = model.predict(batch)
    assert [len(p) for p in predicted] == [5, 3, 1]
    assert all(0 <= t < 5 for p in predicted for t in p)


def test_tagger_with_char_cnn_and_bio_constraints():
    model = build_tagger(vocab_size=30, num_tags=5, char_vocab_size=20, encoder="cnn-bilstm",
                         fusion="concat", dim=8, image_kwargs=SMALL_CNN, tag_names=TAG_NAMES)
    assert model.text_encoder.char_cnn is not None
    batch = make_batch()
    model.loss(batch).backward()
    for path in model.predict(batch):  # a constrained CRF never starts an entity with I-
        names = [TAG_NAMES[t] for t in path]
        assert all(not b.startswith("I-") or a[2:] == b[2:] and a != "O"
                   for a, b in zip(["O", *names], names, strict=False))


def test_tagger_rejects_bad_wiring():
    with pytest.raises(ValueError, match="one vector per token"):
        build_tagger(vocab_size=30, num_tags=5, fusion="transformer", dim=8)
    with pytest.raises(ValueError, match="cnn-bilstm"):
        build_tagger(vocab_size=30, num_tags=5, encoder="cnn-bilstm")
    model = build_tagger(vocab_size=30, num_tags=5, fusion="concat", dim=8)
    with pytest.raises(ValueError, match="both image_encoder and fusion"):
        MultimodalTagger(model.text_encoder, model.image_encoder, None, num_tags=5)
    with pytest.raises(ValueError, match="fusion_level"):
        MultimodalTagger(model.text_encoder, model.image_encoder, model.fusion, num_tags=5,
                         fusion_level="decision")


def test_models_train_with_fit():
    batches = [make_batch(seed=s) for s in range(4)]
    loader = DataLoader(batches, batch_size=None)  # already batched
    model = classifier("gated")
    history = fit(model, loader, loader, epochs=6, lr=0.05, device="cpu", progress=False)
    assert history["train_loss"].iloc[-1] < 0.5 * history["train_loss"].iloc[0]  # it learns
    # fit kept the best epoch's weights, and evaluate scores them as a hand count does
    scores = evaluate(model, loader, device="cpu")
    best = history.loc[history["val_accuracy"].idxmax()]
    assert scores["accuracy"] == best["val_accuracy"]
    assert scores["loss"] == pytest.approx(best["val_loss"])
    model.eval()
    with torch.no_grad():
        labels = torch.cat([b["label"] for b in batches])
        hand = torch.cat([model.predict(b) for b in batches])
        mean_loss = sum(model.loss(b).item() * 3 for b in batches) / 12
    assert scores["accuracy"] == pytest.approx((hand == labels).float().mean().item())
    assert scores["loss"] == pytest.approx(mean_loss)
    probs = predict_proba(model, loader, device="cpu")
    assert probs.shape == (12, 3)
    assert (probs.argmax(axis=1) == hand.numpy()).all()

    torch.manual_seed(0)
    tagger = build_tagger(vocab_size=30, num_tags=5, fusion="cross_attention", dim=8,
                          image_kwargs=SMALL_CNN)
    history = fit(tagger, loader, loader, epochs=4, lr=0.05, metric="f1", tag_names=TAG_NAMES,
                  device="cpu", progress=False)
    assert list(history.columns) == ["epoch", "train_loss", "val_loss", "val_f1", "seconds"]
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert evaluate(tagger, loader, device="cpu", metric="f1",
                    tag_names=TAG_NAMES)["f1"] == history["val_f1"].max()
    scores = evaluate(tagger, loader, device="cpu", metric="accuracy")
    tagger.eval()
    right = real = 0
    with torch.no_grad():
        for b in batches:  # token accuracy by hand: every real token counts once
            for path, gold, n in zip(tagger.predict(b), b["tags"].tolist(),
                                     b["token_mask"].sum(dim=1).tolist(), strict=True):
                right += sum(p == g for p, g in zip(path, gold[:n], strict=True))
                real += n
    assert real == 36 and scores["accuracy"] == pytest.approx(right / real)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("fusion", ["cross_attention", "product_of_experts"])
def test_models_train_with_amp_on_cuda(fusion):
    loader = DataLoader([make_batch(seed=s) for s in range(2)], batch_size=None)
    torch.manual_seed(0)
    tagger = build_tagger(vocab_size=30, num_tags=5, fusion=fusion, dim=8, image_kwargs=SMALL_CNN)
    torch.manual_seed(0)
    model = classifier(fusion)
    for net in (tagger, model):
        history = fit(net, loader, loader, epochs=4, lr=0.05, amp=True, device="cuda",
                      progress=False)
        # isfinite, not notna: an overflowing float16 loss is inf, which notna lets through
        assert np.isfinite(history[["train_loss", "val_loss"]].to_numpy()).all()
        assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
        # autocast computes in float16, but the weights the optimizer updates stay float32
        assert all(p.dtype == torch.float32 and p.device.type == "cuda"
                   for p in net.parameters())
        assert all(torch.isfinite(p).all() for p in net.parameters())
