"""What each fusion documents it does, above all with missing modalities."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmtutor.fusion import (
    AverageFusion,
    ConcatFusion,
    CrossAttentionFusion,
    FiLMFusion,
    GatedFusion,
    ProductOfExpertsFusion,
    Stacking,
    TransformerFusion,
    WeightedSumFusion,
    WeightedVoteFusion,
)

DIMS = {"text": 3, "image": 2}
ONLY_IMAGE = {"text": torch.tensor([False, True])}  # sample 0 has the image only
NONE = {m: torch.tensor([False, True]) for m in DIMS}  # sample 0 has nothing


def rand(dims, lead=(2,), seed=0):
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(*lead, d, generator=g) for m, d in dims.items()}


def test_concat_zeroes_missing_blocks_and_can_append_presence():
    x = rand(DIMS)
    z = ConcatFusion(DIMS, append_presence=True)(x, ONLY_IMAGE)
    torch.testing.assert_close(
        z[0], torch.cat([x["image"][0], torch.zeros(3), torch.tensor([1.0, 0.0])])
    )
    torch.testing.assert_close(z[1], torch.cat([x["image"][1], x["text"][1], torch.ones(2)]))


@pytest.mark.parametrize("alpha", ["learnable", "fixed", "per_modality"])
def test_weighted_sum_projects_then_renormalises_over_present(alpha):
    f = WeightedSumFusion(DIMS, alpha=alpha, alpha_init=0.3)
    assert f.output_dim == 3  # max d_m
    x = rand(DIMS)
    w = f.weights
    assert sum(w.values()) == pytest.approx(1.0)
    if alpha != "per_modality":
        assert w["image"] == pytest.approx(0.3)  # alpha weighs the first sorted modality
    W_image, W_text = f.proj
    z = f(x, ONLY_IMAGE)
    torch.testing.assert_close(z[0], W_image(x["image"][0]))  # weight 1 on the present one
    ref = w["image"] * W_image(x["image"][1]) + w["text"] * W_text(x["text"][1])
    torch.testing.assert_close(z[1], ref)
    torch.testing.assert_close(f(x, NONE)[0], torch.zeros(3))
    assert (alpha == "fixed") == (len(list(f.parameters())) == 4)


def test_weighted_sum_rejects_alpha_for_three_modalities():
    with pytest.raises(ValueError, match="per_modality"):
        WeightedSumFusion({"a": 1, "b": 1, "c": 1}, alpha="learnable")
    f = WeightedSumFusion({"a": 1, "b": 1, "c": 1}, alpha="per_modality")
    assert f.weights == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})


@pytest.mark.parametrize("dims", [DIMS, {"text": 3, "image": 2, "audio": 4}])
def test_gated_fusion_forces_the_gate_to_the_present_modality(dims):
    f = GatedFusion(dims, keep_internals=True)
    x = rand(dims)
    z = f(x, ONLY_IMAGE)
    j = f.modalities.index("image")
    assert f.last_gates.shape == (2, len(dims), f.output_dim)
    torch.testing.assert_close(f.last_gates.sum(1), torch.ones(2, f.output_dim))
    if len(dims) == 2:
        torch.testing.assert_close(f.last_gates[0, j], torch.ones(f.output_dim))
        torch.testing.assert_close(z[0], torch.tanh(f.proj[j](x["image"][0])))
    none = {m: torch.tensor([False, True]) for m in dims}
    torch.testing.assert_close(f(x, none)[0], torch.zeros(f.output_dim))


def test_film_starts_at_identity_broadcasts_over_tokens_and_ignores_missing_condition():
    dims = {"text": 4, "image": 3}
    f = FiLMFusion(dims)
    x = {"text": torch.randn(2, 5, 4), "image": torch.randn(2, 3)}  # per-token text, pooled image
    torch.testing.assert_close(f(x), x["text"])  # identity at init
    with torch.no_grad():
        f.film.weight.normal_()
    z = f(x)
    gamma, beta = f.film(x["image"]).chunk(2, dim=-1)
    torch.testing.assert_close(z, (1 + gamma[:, None]) * x["text"] + beta[:, None])
    no_image = {"image": torch.tensor([False, True])}
    torch.testing.assert_close(f(x, no_image)[0], x["text"][0])
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        f({"text": x["text"], "image": torch.randn(3, 3)})
    with pytest.raises(ValueError, match="condition='audio'"):
        FiLMFusion(dims, condition="audio")


def test_cross_attention_without_keys_is_the_query_path_only():
    torch.manual_seed(0)
    f = CrossAttentionFusion(DIMS, d_model=4, num_heads=2, keep_internals=True)
    x = {"text": torch.randn(2, 5, 3), "image": torch.randn(2, 4, 2)}
    z, A = f(x, {"image": torch.tensor([False, True])}, return_attention=True)
    torch.testing.assert_close(z[0], f.norm(f.proj[1](x["text"][0])))
    assert (A[0] == 0).all() and torch.allclose(A[1].sum(-1), torch.ones(2, 5))
    assert f.last_attention.shape == (2, 2, 5, 4)
    z = f(x, {"text": torch.tensor([False, True])})  # no query: nothing to say
    assert (z[0] == 0).all() and (z[1] != 0).any()


def test_internals_are_stored_only_when_asked():
    """``last_gates`` / ``last_attention`` are opt-in: by default a forward stores nothing."""
    torch.manual_seed(0)
    seqs = {"text": torch.randn(2, 5, 3), "image": torch.randn(2, 4, 2)}  # vectors: [:, 0]
    for f, name, kwargs in [
        (GatedFusion(DIMS), "last_gates", {}),
        (CrossAttentionFusion(DIMS, d_model=4, num_heads=2), "last_attention", {}),
        (CrossAttentionFusion(DIMS, d_model=4, num_heads=2), "last_attention",
         {"return_attention": True}),
    ]:
        assert f.keep_internals is False
        x = seqs if f.input_kind == "sequence" else {m: v[:, 0] for m, v in seqs.items()}
        out = f(x, **kwargs)
        assert getattr(f, name) is None, f"{type(f).__name__} stored {name} unasked"
        f.keep_internals = True  # a plain attribute: switch recording on for a built model
        again = f(x, **kwargs)
        kept = getattr(f, name)
        assert kept is not None and not kept.requires_grad
        torch.testing.assert_close(again, out)  # recording changes no output
    # cross-attention records A on a plain call, equal to the one return_attention gives
    _, A = f(x, return_attention=True)
    f(x)
    torch.testing.assert_close(f.last_attention, A)


def test_transformer_missing_modality_equals_all_its_tokens_padded():
    torch.manual_seed(0)
    f = TransformerFusion(DIMS, d_model=8, num_heads=2, num_layers=2).eval()
    x = {"text": torch.randn(2, 5, 3), "image": torch.randn(2, 4, 2)}
    missing = f(x, {"image": torch.tensor([False, True])})
    padded = f(x, token_mask={"image": torch.tensor([[False] * 4, [True] * 4])})
    torch.testing.assert_close(missing, padded)
    nothing = f(x, {m: torch.tensor([False, False]) for m in DIMS})
    torch.testing.assert_close(nothing[0], nothing[1])  # the learned default


def test_transformer_sees_token_order():
    """Self-attention is blind to order; the learned position table is what tells it."""
    torch.manual_seed(0)
    f = TransformerFusion(DIMS, d_model=8, num_heads=2, max_len=6).eval()
    x = {"text": torch.randn(2, 5, 3), "image": torch.randn(2, 4, 2)}
    flipped = {"text": x["text"].flip(1), "image": x["image"].flip(1)}  # reversed order
    assert f.position_embedding.shape == (2, 6, 8)
    torch.testing.assert_close(f(x), f(flipped))  # zero table at the start: a bag of tokens
    with torch.no_grad():
        f.position_embedding.normal_()  # what training can learn
    assert not torch.allclose(f(x), f(flipped), atol=1e-4), "the fusion ignores token order"
    for m in DIMS:  # each modality's order counts, not only the text's
        one = {**x, m: flipped[m]}
        assert not torch.allclose(f(x), f(one), atol=1e-4), f"the fusion ignores {m} order"
    with pytest.raises(ValueError, match=r"features\['text'\] has 7 tokens, more than max_len=6"):
        f({"text": torch.randn(2, 7, 3), "image": x["image"]})
    with pytest.raises(ValueError, match="max_len must be a positive int"):
        TransformerFusion(DIMS, max_len=0)


@pytest.mark.parametrize("cls", [AverageFusion, WeightedVoteFusion, ProductOfExpertsFusion])
def test_decision_fusions_return_log_probs_and_uniform_when_nothing_is_present(cls):
    dims = {"text": 4, "image": 4}
    f = cls(dims)
    x = rand(dims, lead=(2, 6))  # per-token logits (B, T, C)
    out = f(x, NONE)
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(2, 6))
    torch.testing.assert_close(out[0], torch.full((6, 4), -math.log(4)))
    only_image = f(x, ONLY_IMAGE)[0]
    torch.testing.assert_close(only_image, torch.log_softmax(x["image"][0], -1))
    with pytest.raises(ValueError, match="same number of classes"):
        cls({"text": 4, "image": 5})


def test_weighted_vote_learns_and_fixed_weights_do_not():
    dims = {"text": 2, "image": 2}
    assert len(list(WeightedVoteFusion(dims).parameters())) == 1
    assert len(list(WeightedVoteFusion(dims, weights=[1, 1]).parameters())) == 0
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        WeightedVoteFusion(dims, weights=[1, 2, 3])


def test_stacking_fills_missing_modalities_with_uniform_probabilities():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 90)
    probs = {m: rng.dirichlet(np.ones(3), 90) for m in ("text", "image")}
    stack = Stacking().fit(probs, y)
    uniform = np.full((90, 3), 1 / 3)
    ref = stack.predict_proba({"text": probs["text"], "image": uniform})
    np.testing.assert_allclose(stack.predict_proba({"text": probs["text"]}), ref)
    present = {"image": torch.zeros(90, dtype=torch.bool)}
    np.testing.assert_allclose(stack.predict_proba(probs, present), ref)
    assert set(stack.predict(probs)) <= {0, 1, 2}
    with pytest.raises(ValueError, match=r"\(90, 2\)"):
        stack.predict_proba({"text": probs["text"][:, :2]})
    with pytest.raises(ValueError, match="not fitted"):
        Stacking().predict(probs)
