"""The fusions compute what the papers write: checks against independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.func import functional_call

from mmtutor.fusion import (
    AverageFusion,
    ConcatFusion,
    CrossAttentionFusion,
    GatedFusion,
    LowRankFusion,
    ProductOfExpertsFusion,
    Stacking,
    TensorFusion,
    WeightedVoteFusion,
)

DIMS3 = {"a": 2, "b": 3, "c": 2}


def rand(dims, B=4, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(B, d, generator=g, dtype=dtype) for m, d in dims.items()}


def one(h):
    return torch.cat([h, torch.ones(len(h), 1, dtype=h.dtype)], dim=1)


def test_tensor_fusion_is_the_outer_product():
    x = rand(DIMS3)
    z = TensorFusion(DIMS3).double()(x)
    ref = torch.einsum("bi,bj,bk->bijk", one(x["a"]), one(x["b"]), one(x["c"])).flatten(1)
    torch.testing.assert_close(z, ref)
    # by hand, in NumPy, for sample 0: z[(i * 4 + j) * 3 + k] = a_i b_j c_k
    a, b, c = (np.append(x[m][0].numpy(), 1.0) for m in "abc")
    for i, j, k in [(0, 0, 0), (2, 1, 0), (1, 3, 2), (2, 3, 2)]:
        assert z[0, (i * 4 + j) * 3 + k].item() == pytest.approx(a[i] * b[j] * c[k])
    # a missing modality is h = 0: only the terms of the others survive
    present = {"b": torch.tensor([False, True, True, True])}
    zero_b = torch.zeros_like(x["b"][:1])
    ref0 = torch.einsum("i,j,k->ijk", one(x["a"])[0], one(zero_b)[0], one(x["c"])[0])
    torch.testing.assert_close(TensorFusion(DIMS3).double()(x, present)[0], ref0.flatten())


def test_low_rank_fusion_is_tfn_with_the_rebuilt_weight_tensor():
    torch.manual_seed(0)
    lmf = LowRankFusion(DIMS3, rank=3, output_dim=5).double()
    with torch.no_grad():
        lmf.bias.normal_()
    x = rand(DIMS3)
    Wa, Wb, Wc = lmf.factors  # (r, d_m + 1, d_h)
    W = torch.einsum("rih,rjh,rkh->ijkh", Wa, Wb, Wc)  # sum_i of outer products of the factors
    tfn = TensorFusion(DIMS3, output_dim=5).double()
    with torch.no_grad():
        tfn.out.weight.copy_(W.reshape(-1, 5).T)
        tfn.out.bias.copy_(lmf.bias)
    torch.testing.assert_close(lmf(x), tfn(x))
    present = {"c": torch.tensor([True, False, True, False])}
    torch.testing.assert_close(lmf(x, present), tfn(x, present))


def test_concat_then_linear_is_a_sum_of_per_modality_linear_maps():
    dims = {"text": 3, "image": 4}
    fusion = ConcatFusion(dims, output_dim=2).double()
    x = rand(dims)
    W_image, W_text = fusion.out.weight.split([4, 3], dim=1)  # sorted order: image, text
    ref = x["image"] @ W_image.T + x["text"] @ W_text.T + fusion.out.bias
    torch.testing.assert_close(fusion(x), ref)


def attention_by_hand(f, x, token_mask, present):
    """softmax(Q K^T / sqrt(d_k)) V, one sample and one head at a time, with f's weights."""
    keys = [m for m in sorted(x) if m != f.query]
    H = f.num_heads
    proj = dict(zip(f.modalities, f.proj, strict=True))
    B, T_q = x[f.query].shape[:2]
    outs, attns = [], []
    for b in range(B):
        xq = proj[f.query](x[f.query][b])  # (T_q, d)
        xkv = torch.cat([proj[m](x[m][b]) for m in keys])  # (S, d)
        valid = torch.cat([token_mask[m][b] & present[m][b] for m in keys])  # (S,)
        Q, K, V = f.W_Q(xq), f.W_K(xkv), f.W_V(xkv)
        d_k = Q.shape[1] // H
        heads, A_b = [], torch.zeros(H, T_q, len(valid), dtype=Q.dtype)
        for h in range(H):
            sl = slice(h * d_k, (h + 1) * d_k)
            if valid.any():
                s = Q[:, sl] @ K[valid, sl].T / math.sqrt(d_k)
                A_b[h][:, valid] = torch.softmax(s, dim=1)
            heads.append(A_b[h] @ V[:, sl])
        a = f.W_O(torch.cat(heads, dim=1)) if valid.any() else torch.zeros_like(xq)
        z = f.norm(xq + a)
        real_q = token_mask[f.query][b] & present[f.query][b]  # (T_q,)
        outs.append(z * real_q[:, None])
        attns.append(A_b * real_q[None, :, None])
    return torch.stack(outs), torch.stack(attns)


def test_cross_attention_matches_softmax_qkt_v_by_hand():
    torch.manual_seed(0)
    dims = {"text": 3, "image": 4, "audio": 2}
    f = CrossAttentionFusion(dims, query="text", d_model=8, num_heads=2).double().eval()
    g = torch.Generator().manual_seed(1)
    T = {"text": 5, "image": 3, "audio": 2}
    x = {m: torch.randn(3, T[m], d, generator=g, dtype=torch.float64) for m, d in dims.items()}
    lengths = {"text": [5, 2, 4], "image": [3, 1, 2], "audio": [2, 2, 1]}
    token_mask = {
        m: torch.arange(T[m])[None] < torch.tensor(n)[:, None] for m, n in lengths.items()
    }
    # sample 1: no image; sample 2: no key modality at all
    present = {
        "text": torch.tensor([True, True, True]),
        "image": torch.tensor([True, False, False]),
        "audio": torch.tensor([True, True, False]),
    }
    z, A = f(x, present, token_mask, return_attention=True)
    with torch.no_grad():
        z_ref, A_ref = attention_by_hand(f, x, token_mask, present)
    torch.testing.assert_close(A, A_ref)
    torch.testing.assert_close(z, z_ref)
    torch.testing.assert_close(
        f(x, present, token_mask), z
    )  # the scaled_dot_product_attention path
    assert A.shape == (3, 2, 5, 3 + 2)  # keys: audio then image, sorted
    assert f.key_modalities == ("audio", "image")


def test_product_of_experts_is_the_normalised_product():
    dims = {"text": 4, "image": 4, "audio": 4}
    x = rand(dims)
    out = ProductOfExpertsFusion(dims)(x)
    p = np.prod([torch.softmax(x[m], 1).numpy() for m in dims], axis=0)
    np.testing.assert_allclose(out.exp().numpy(), p / p.sum(1, keepdims=True), rtol=1e-10)
    present = {"audio": torch.tensor([False, True, False, True])}
    out = ProductOfExpertsFusion(dims)(x, present)
    p = torch.softmax(x["text"], 1) * torch.softmax(x["image"], 1)
    torch.testing.assert_close(out[0].exp(), p[0] / p[0].sum())


def test_average_and_weighted_vote_mix_probabilities_over_present_modalities():
    dims = {"text": 3, "image": 3}
    x = rand(dims)
    p_image, p_text = (torch.softmax(x[m], 1) for m in ("image", "text"))
    present = {"text": torch.tensor([True, False, True, False])}
    out = AverageFusion(dims)(x, present)
    torch.testing.assert_close(out[0], ((p_image[0] + p_text[0]) / 2).log())
    torch.testing.assert_close(out[1], p_image[1].log())
    vote = WeightedVoteFusion(dims, weights={"image": 1.0, "text": 3.0})
    assert vote.weights == {"image": 0.25, "text": 0.75}
    out = vote(x, present)
    torch.testing.assert_close(out[0], (0.25 * p_image[0] + 0.75 * p_text[0]).log())
    torch.testing.assert_close(out[1], p_image[1].log())


def gradcheck_module(fusion, x, present=None):
    """gradcheck with respect to the inputs and every parameter."""
    names = [n for n, _ in fusion.named_parameters()]
    mods = list(x)

    def f(*args):
        feats = dict(zip(mods, args[: len(mods)], strict=True))
        params = dict(zip(names, args[len(mods) :], strict=True))
        return functional_call(fusion, params, (feats, present))

    args = [v.clone().requires_grad_() for v in x.values()]
    args += [p.detach().clone().requires_grad_() for p in fusion.parameters()]
    assert torch.autograd.gradcheck(f, tuple(args))


@pytest.mark.parametrize(
    "make",
    [
        lambda: TensorFusion(DIMS3, output_dim=2),
        lambda: TensorFusion(DIMS3, project_dims=1),
        lambda: LowRankFusion(DIMS3, rank=2, output_dim=2),
        lambda: GatedFusion({"a": 2, "b": 3}, output_dim=2),
        lambda: GatedFusion(DIMS3, output_dim=2),
    ],
    ids=["tfn", "tfn-projected", "lmf", "gmu-2", "gmu-3"],
)
def test_gradcheck(make):
    torch.manual_seed(0)
    fusion = make().double()
    x = rand(fusion.input_dims, B=2)
    gradcheck_module(fusion, x, {"a": torch.tensor([True, False])})


def test_gated_fusion_is_the_gmu_formula():
    torch.manual_seed(0)
    dims = {"text": 3, "image": 2}
    f = GatedFusion(dims, output_dim=4, keep_internals=True).double()
    x = rand(dims)
    W_image, W_text = f.proj  # sorted order
    z = torch.sigmoid(f.gate(torch.cat([x["image"], x["text"]], 1)))
    ref = z * torch.tanh(W_image(x["image"])) + (1 - z) * torch.tanh(W_text(x["text"]))
    torch.testing.assert_close(f(x), ref)
    torch.testing.assert_close(f.last_gates[:, 0], z.detach())


def toy_probs(rng, y, acc_noise):
    """Probabilities of a noisy 3-class predictor: informative, but wrong fairly often."""
    logits = 1.5 * np.eye(3)[y] + rng.normal(0, acc_noise, (len(y), 3))
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_stacking_beats_each_modality_when_both_are_informative():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 1200)
    probs = {"text": toy_probs(rng, y, 1.3), "image": toy_probs(rng, y, 1.3)}
    val, test = slice(0, 600), slice(600, None)  # fit on held-out predictions, score on others
    stack = Stacking().fit({m: p[val] for m, p in probs.items()}, y[val])
    acc = {m: (p[test].argmax(1) == y[test]).mean() for m, p in probs.items()}
    acc_stack = (stack.predict({m: p[test] for m, p in probs.items()}) == y[test]).mean()
    assert acc_stack > max(acc.values()) + 0.05, (acc_stack, acc)
    assert stack.predict_proba({m: torch.as_tensor(p[test]) for m, p in probs.items()}).shape == (
        600,
        3,
    )
