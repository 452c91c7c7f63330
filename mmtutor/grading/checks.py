"""The comparison engine behind every check of :mod:`mmtutor.grading`.

A check runs a student's function on a list of :class:`Case` objects (random and edge-case
inputs, on every device present) and compares each result with the package's reference
implementation. The first case that fails raises :class:`CheckFailed` with a message that
says which input failed, what was expected (a shape, a dtype, a property) and what came back,
but never the reference values themselves, so the message helps without giving the answer.

A function that still raises :class:`NotImplementedError` (the stub of a student copy) is
reported, not failed: the check warns with :class:`NotImplementedWarning` (Jupyter shows the
warning on stderr, and nbgrader scores a test cell that wrote to stderr 0 points) and
returns a :class:`CheckReport` with ``implemented=False``, so a notebook of stubs runs to the
end.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "Case",
    "CheckFailed",
    "CheckReport",
    "NotImplementedWarning",
    "available_devices",
    "cases_on_devices",
    "compare_tensors",
    "run_check",
]


class CheckFailed(AssertionError):
    """A student's answer differs from the reference (the message says on which input)."""


class NotImplementedWarning(UserWarning):
    """The function under test still raises ``NotImplementedError``."""


@dataclass(frozen=True)
class Case:
    """One input of a check.

    Attributes:
        description: the input in words, e.g. ``"batch of 5, image missing for 2 samples"``.
        run: calls the student's code on this input and raises :class:`CheckFailed`
            (with what was expected and what came back) when the answer is wrong.
    """

    description: str
    run: Callable[[], None]


@dataclass(frozen=True)
class CheckReport:
    """What a check did: its name, the cases it ran, whether the function is implemented."""

    name: str
    cases: tuple[str, ...]
    implemented: bool = True

    def __str__(self) -> str:
        if not self.implemented:
            return f"{self.name}: not implemented yet (0 of {len(self.cases)} cases run)"
        return f"{self.name}: all {len(self.cases)} cases passed"


def available_devices() -> list[str]:
    """``["cpu"]``, plus ``"cuda"`` when a GPU is visible: every check runs on each."""
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def cases_on_devices(
    specs: Sequence[tuple[str, Any]],
    run: Callable[[Any, torch.dtype, str, int], None],
    *,
    float64_case: int = 0,
) -> list[Case]:
    """Every input on every device: one :class:`Case` per spec and device, in float32.

    Args:
        specs: ``(description, spec)`` pairs; ``spec`` is whatever ``run`` needs.
        run: ``run(spec, dtype, device, seed)`` makes the inputs (``seed`` is the spec's
            position) and compares the student's answer with the reference.
        float64_case: the position of the spec that also runs in float64.
    """
    cases = []
    for device in available_devices():
        for n, (description, spec) in enumerate(specs):
            dtypes = (torch.float32, torch.float64) if n == float64_case else (torch.float32,)
            for dtype in dtypes:
                label = f"{description}, {str(dtype).removeprefix('torch.')}, {device}"
                cases.append(Case(label, functools.partial(run, spec, dtype, device, n)))
    return cases


def run_check(name: str, cases: Iterable[Case]) -> CheckReport:
    """Run ``cases`` in order; raise on the first that fails.

    Args:
        name: the check's name, the first word of every message.
        cases: the inputs; each :attr:`Case.run` raises :class:`CheckFailed` on a wrong answer.

    Returns:
        A :class:`CheckReport` (``implemented=False`` when the code under test raised
        ``NotImplementedError``; a :class:`NotImplementedWarning` says so).

    Raises:
        CheckFailed: naming the input that failed. Any other exception of the student's
            code is reported the same way, with its type and message.
    """
    cases = list(cases)
    for i, case in enumerate(cases, start=1):
        try:
            case.run()
        except NotImplementedError:
            with warnings.catch_warnings():
                warnings.simplefilter("always", NotImplementedWarning)
                warnings.warn(
                    f"{name}: not implemented yet: the code under test raises "
                    "NotImplementedError; replace the `raise NotImplementedError` with your "
                    "solution and run this cell again",
                    NotImplementedWarning,
                    stacklevel=2,
                )
            return CheckReport(name, tuple(c.description for c in cases), implemented=False)
        except CheckFailed as err:
            raise CheckFailed(f"{name} failed on case {i} ({case.description}): {err}") from None
        except Exception as err:  # the student's code crashed: say where, keep the traceback
            raise CheckFailed(
                f"{name} failed on case {i} ({case.description}): your code raised "
                f"{type(err).__name__}: {err}"
            ) from err
    return CheckReport(name, tuple(c.description for c in cases))


def compare_tensors(
    got: object,
    want: Tensor,
    *,
    what: str = "the output",
    atol: float | None = None,
    rtol: float | None = None,
    hints: Sequence[tuple[str, Tensor]] = (),
) -> None:
    """Raise :class:`CheckFailed` unless ``got`` matches the reference ``want``.

    Compared in this order: type, shape, dtype, device, NaN/inf, values. The message gives
    shapes, dtypes and how many entries differ, never ``want``'s values.

    Args:
        got: what the student's code returned.
        want: the reference result.
        what: how the message names the result (``"the output"``, ``"log Z"``).
        atol, rtol: tolerances; default by dtype (float64: 1e-8/1e-6, else 1e-5/1e-4).
        hints: ``(description, tensor)`` pairs of known mistakes: when ``got`` matches one
            of them, the message names the mistake (``"it matches attention without the
            1/sqrt(d) scaling"``).
    """
    if not isinstance(got, Tensor):
        raise CheckFailed(f"expected {what} to be a torch.Tensor, got {type(got).__name__}")
    if got.shape != want.shape:
        raise CheckFailed(
            f"expected {what} of shape {tuple(want.shape)}, got {tuple(got.shape)}"
        )
    if got.dtype != want.dtype:
        raise CheckFailed(
            f"expected {what} of dtype {want.dtype} (the inputs' dtype), got {got.dtype}"
        )
    if got.device.type != want.device.type:
        raise CheckFailed(
            f"expected {what} on the inputs' device ({want.device.type}), got {got.device.type}"
        )
    got, want = got.detach(), want.detach()
    bad = ~torch.isfinite(got) & torch.isfinite(want)
    if bad.any():
        raise CheckFailed(
            f"{what} has {int(bad.sum())} NaN or infinite entries where finite values were "
            "expected (a softmax over nothing? an exp that overflows?)"
        )
    wide = want.dtype != torch.float64
    atol = (1e-5 if wide else 1e-8) if atol is None else atol
    rtol = (1e-4 if wide else 1e-6) if rtol is None else rtol
    close = torch.isclose(got, want, atol=atol, rtol=rtol, equal_nan=True)
    if not close.all():
        diff = (got - want).abs().nan_to_num(0.0)
        msg = (
            f"{what} has the right shape, but {int((~close).sum())} of {close.numel()} "
            f"entries differ from the reference (largest difference {float(diff.max()):.3g})"
        )
        for mistake, wrong in hints:
            if wrong.shape == got.shape and torch.allclose(got, wrong.to(got), atol=atol,
                                                           rtol=rtol):
                msg += f"; it matches {mistake}"
                break
        raise CheckFailed(msg)
