"""Argument checks shared by the generators (one place, one style of message)."""

from __future__ import annotations

import numbers


def check_count(name: str, value: object, minimum: int = 0) -> int:
    """``value`` as an ``int`` if it is an integer ``>= minimum``; else ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_probability(name: str, value: object) -> float:
    """Return ``value`` as a ``float`` if it lies in ``[0, 1]``, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def check_nonnegative(name: str, value: object) -> float:
    """``value`` as a ``float`` if it is a real number ``>= 0``; else ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0.0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)
