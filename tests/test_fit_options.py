"""What each option of ``fit`` does, checked against its formula at every optimizer step.

A recorder wraps ``Optimizer.step`` of the optimizer class in use and notes, at every real
step, the learning rate of each parameter group, the gradients the step receives and the
parameters before it. The models are one-parameter-vector toys whose gradient is known in
closed form, so each check compares with arithmetic, not with the code under test.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mmtutor.train import fit


class Quadratic(nn.Module):
    """``loss = scale * ||w - target||^2 + (w . x)``: gradient ``2 scale (w - target) + x``.

    ``x`` comes from the batch (``batch["x"]``, ``(3,)``), so a batch holding ``inf`` gives an
    infinite gradient; ``scale = 0`` and ``x = 0`` give a zero gradient.
    """

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
        self.scale = scale

    def loss(self, batch):
        target = self.w.new_tensor([0.5, 0.5, 0.5])
        return self.scale * ((self.w - target) ** 2).sum() + (self.w * batch["x"]).sum()

    def predict(self, batch):  # pragma: no cover - fit without a val_loader never predicts
        return torch.zeros(1, dtype=torch.long)


def batches(n: int, x: float = 0.0) -> list[dict[str, torch.Tensor]]:
    return [{"x": torch.full((3,), x)} for _ in range(n)]


class Recorder:
    """Record every call of ``cls.step``: group learning rates, gradients, parameters."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, cls: type = torch.optim.AdamW):
        self.lrs: list[list[float]] = []
        self.grads: list[torch.Tensor] = []
        self.params: list[torch.Tensor] = []  # before the step
        self.after: list[torch.Tensor] = []  # after it
        original = cls.step

        def step(opt, *args, **kwargs):
            self.lrs.append([group["lr"] for group in opt.param_groups])
            ps = [p for group in opt.param_groups for p in group["params"]]
            grads = [torch.zeros_like(p) if p.grad is None else p.grad.detach() for p in ps]
            self.grads.append(torch.cat([g.flatten().clone() for g in grads]))
            self.params.append(torch.cat([p.detach().flatten().clone() for p in ps]))
            out = original(opt, *args, **kwargs)
            self.after.append(torch.cat([p.detach().flatten().clone() for p in ps]))
            return out

        monkeypatch.setattr(cls, "step", step)

    def first_group(self) -> list[float]:
        return [lrs[0] for lrs in self.lrs]


def cosine(lr: float, k: int, steps: int) -> float:
    """Cosine annealing without restarts (Loshchilov & Hutter, ICLR 2017), eta_min = 0."""
    return lr * (1 + math.cos(math.pi * k / steps)) / 2


def train(model, loader, **kwargs):
    kwargs = {"epochs": 3, "lr": 0.1, "device": "cpu", "progress": False, **kwargs}
    return fit(model, loader, **kwargs)


def test_cosine_schedule_follows_the_formula_step_by_step(monkeypatch):
    rec = Recorder(monkeypatch)
    train(Quadratic(), batches(4), epochs=3, lr=0.1, schedule="cosine")
    steps = 3 * 4  # annealed over all steps, not epochs
    assert len(rec.lrs) == steps
    expected = [cosine(0.1, k, steps) for k in range(steps)]
    assert rec.first_group() == pytest.approx(expected, rel=1e-6, abs=1e-12)
    assert rec.first_group()[0] == pytest.approx(0.1)  # the first step uses lr itself


def test_constant_schedule_keeps_lr(monkeypatch):
    rec = Recorder(monkeypatch)
    train(Quadratic(), batches(4), epochs=3, lr=0.05, schedule="constant")
    assert rec.first_group() == [0.05] * 12


def test_cosine_needs_a_length_constant_does_not():
    endless = (batch for batch in batches(2))
    with pytest.raises(ValueError, match="schedule='constant'"):
        train(Quadratic(), endless, schedule="cosine")
    history = train(Quadratic(), (batch for batch in batches(2)), epochs=1, schedule="constant")
    assert len(history) == 1


@pytest.mark.parametrize("clip", [0.5, None])
def test_clip_grad_norm_clips_what_the_step_sees(monkeypatch, clip):
    rec = Recorder(monkeypatch)
    train(Quadratic(scale=10.0), batches(3), epochs=2, clip_grad_norm=clip)
    target = torch.tensor([0.5, 0.5, 0.5])
    for w, grad in zip(rec.params, rec.grads, strict=True):
        raw = 2 * 10.0 * (w - target)  # the true gradient at these parameters (x = 0)
        assert raw.norm() > 1.0  # large: clipping must act
        factor = 1.0 if clip is None else min(1.0, clip / raw.norm().item())
        torch.testing.assert_close(grad, raw * factor)  # the same direction, norm <= clip
        if clip is not None:
            assert grad.norm().item() == pytest.approx(clip, rel=1e-5)


def test_default_clips_to_norm_one(monkeypatch):
    rec = Recorder(monkeypatch)
    train(Quadratic(scale=10.0), batches(2), epochs=1)
    assert [g.norm().item() for g in rec.grads] == pytest.approx([1.0, 1.0], rel=1e-5)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.2])
def test_weight_decay_is_decoupled_as_in_adamw(monkeypatch, schedule, weight_decay):
    """With a zero gradient Adam's own update is 0, so AdamW only shrinks: w <- (1 - lr λ) w.

    (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.) An L2 penalty
    λ||w||² in the loss would instead reach w through Adam's normalised update.
    """
    rec = Recorder(monkeypatch)
    model = Quadratic(scale=0.0)  # and x = 0: the gradient is exactly zero
    w0 = model.w.detach().clone()
    train(model, batches(5), epochs=2, lr=0.1, weight_decay=weight_decay, schedule=schedule)
    assert len(rec.lrs) == 10 and all(not g.any() for g in rec.grads)
    shrink = math.prod(1 - lr * weight_decay for lr in rec.first_group())
    torch.testing.assert_close(model.w.detach(), w0 * shrink)
    if weight_decay:
        assert shrink < 0.95  # the check above can tell decay from no decay
    else:
        assert torch.equal(model.w.detach(), w0)


def test_a_given_optimizer_is_used_with_its_own_learning_rates(monkeypatch):
    """``optimizer=`` replaces AdamW; each group is annealed from its own lr; ``lr`` is unused."""
    rec = Recorder(monkeypatch, torch.optim.SGD)
    model = Quadratic()
    groups = [{"params": [model.w], "lr": 0.02}, {"params": [nn.Parameter(torch.zeros(1))],
                                                  "lr": 0.3}]
    optimizer = torch.optim.SGD(groups, lr=0.7)
    train(model, batches(4), epochs=2, lr=0.5, optimizer=optimizer, clip_grad_norm=None)
    steps = 2 * 4
    assert len(rec.lrs) == steps  # SGD.step ran: the given optimizer, not a new AdamW
    for j, base in enumerate([0.02, 0.3]):
        expected = [cosine(base, k, steps) for k in range(steps)]
        assert [lrs[j] for lrs in rec.lrs] == pytest.approx(expected, rel=1e-6, abs=1e-12)
    # SGD without momentum: w_{k+1} = w_k - lr_k grad_k, step by step
    for k in range(steps - 1):
        torch.testing.assert_close(rec.params[k + 1][:3],
                                   rec.params[k][:3] - rec.lrs[k][0] * rec.grads[k][:3])


def real_gradscaler_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``fit``'s ``GradScaler`` a real, enabled one on the CPU (``fit`` enables AMP on
    CUDA only), so its skip-a-step path runs without a GPU."""
    real = torch.amp.GradScaler

    def cpu_scaler(device="cuda", enabled=True, **kwargs):
        return real("cpu", enabled=True, **kwargs)

    monkeypatch.setattr(torch.amp, "GradScaler", cpu_scaler)


class InfOnThirdBatch(list):
    """Batches 0, 1, 3 are finite; batch 2 holds inf (its gradient overflows)."""

    def __init__(self, n: int):
        super().__init__(batches(n))
        self[2] = {"x": torch.tensor([float("inf"), 0.0, 0.0])}


def check_skipped_step(rec: Recorder, model: Quadratic, steps: int, lr: float) -> None:
    assert len(rec.lrs) == steps - 1, "the batch with an infinite gradient must not step"
    # The schedule did not advance on the skipped step: no learning rate is left out.
    expected = [cosine(lr, k, steps) for k in range(steps - 1)]
    assert rec.first_group() == pytest.approx(expected, rel=1e-6, abs=1e-12)
    assert all(g.isfinite().all() for g in rec.grads)
    # Nothing touched the parameters between the step on batch 1 and the one on batch 3.
    assert torch.equal(rec.after[1], rec.params[2])
    assert torch.isfinite(model.w).all()


def test_a_skipped_amp_step_does_not_advance_the_schedule_cpu(monkeypatch):
    real_gradscaler_on_cpu(monkeypatch)
    rec = Recorder(monkeypatch)
    model = Quadratic()
    train(model, InfOnThirdBatch(4), epochs=1, lr=0.1)
    check_skipped_step(rec, model, steps=4, lr=0.1)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_skipped_amp_step_does_not_advance_the_schedule_cuda(monkeypatch):
    rec = Recorder(monkeypatch)
    model = Quadratic()
    train(model, InfOnThirdBatch(4), epochs=1, lr=0.1, amp=True, device="cuda")
    check_skipped_step(rec, model, steps=4, lr=0.1)
