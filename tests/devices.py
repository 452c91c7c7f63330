"""Devices every device-dependent test runs on: the CPU always, CUDA when a GPU is visible.

Import as ``from devices import DEVICES`` (pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import pytest
import torch

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[
            pytest.mark.cuda,
            pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
        ],
    ),
]
