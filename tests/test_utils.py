"""Tests for mmtutor.utils: device choice, seeding and input checks."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from mmtutor.utils import check_modalities, check_tensor, get_device, seed_everything


def test_cpu_is_always_available() -> None:
    assert get_device("cpu") == torch.device("cpu")
    assert get_device(torch.device("cpu")) == torch.device("cpu")


def fake_backends(monkeypatch: pytest.MonkeyPatch, *, cuda: bool, mps: bool) -> None:
    """Pretend this machine has (or lacks) CUDA and Apple's MPS."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu")],
)
def test_auto_order_is_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected) -> None:
    fake_backends(monkeypatch, cuda=cuda, mps=mps)
    monkeypatch.delenv("MMTUTOR_DEVICE", raising=False)
    assert get_device("auto") == torch.device(expected)
    assert get_device() == torch.device(expected)  # None means "auto" without the variable
    monkeypatch.setenv("MMTUTOR_DEVICE", "")  # an empty variable too
    assert get_device() == torch.device(expected)
    monkeypatch.setenv("MMTUTOR_DEVICE", "auto")
    assert get_device() == torch.device(expected)


def test_environment_variable_overrides_auto(monkeypatch) -> None:
    fake_backends(monkeypatch, cuda=True, mps=True)
    monkeypatch.setenv("MMTUTOR_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")  # not the CUDA that "auto" would pick
    monkeypatch.setenv("MMTUTOR_DEVICE", " MPS ")  # case and spaces do not matter
    assert get_device() == torch.device("mps")
    fake_backends(monkeypatch, cuda=False, mps=False)
    with pytest.raises(ValueError, match="MPS backend is not available"):
        get_device()


def test_environment_variable_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMTUTOR_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    monkeypatch.setenv("MMTUTOR_DEVICE", "not-a-device")
    with pytest.raises(ValueError, match="not-a-device"):
        get_device()


def test_explicit_argument_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMTUTOR_DEVICE", "not-a-device")
    assert get_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_absent_cuda_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no CUDA GPU"):
        get_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_index_out_of_range_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="CUDA device"):
        get_device(f"cuda:{torch.cuda.device_count()}")


def test_unknown_device_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="'gpu'"):
        get_device("gpu")


def test_seed_everything_repeats_every_generator() -> None:
    def draw() -> tuple[float, float, torch.Tensor]:
        return random.random(), float(np.random.rand()), torch.rand(3)

    seed_everything(123)
    first = draw()
    seed_everything(123)
    second = draw()
    assert first[:2] == second[:2]
    assert torch.equal(first[2], second[2])
    assert torch.backends.cudnn.deterministic
    assert not torch.backends.cudnn.benchmark


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True])
def test_seed_everything_rejects_bad_seeds(seed: object) -> None:
    with pytest.raises(ValueError, match="seed"):
        seed_everything(seed)  # type: ignore[arg-type]


def test_check_tensor_names_argument_and_shapes() -> None:
    image = torch.zeros(3, 32, 32)
    with pytest.raises(ValueError, match=r"image must have shape \(B, 3, H, W\), got \(3, 32, 32\)"):
        check_tensor("image", image, ("B", 3, "H", "W"))
    batch = image[None]
    assert check_tensor("image", batch, ("B", 3, "H", "W")) is batch  # returned, not copied


def test_check_tensor_leading_dims_and_dtype() -> None:
    x = torch.zeros(2, 5, 8)
    check_tensor("x", x, ("...", 8), dtype="float")
    with pytest.raises(ValueError, match=r"got \(2, 5, 8\)"):
        check_tensor("x", x, ("...", 4))
    with pytest.raises(ValueError, match="integer"):
        check_tensor("x", x, ("...", 8), dtype="int")
    with pytest.raises(ValueError, match="torch.Tensor"):
        check_tensor("x", [1, 2], ("B",))


def test_check_modalities_lists_missing_and_extra() -> None:
    with pytest.raises(ValueError, match=r"missing \['image'\], unexpected \['audio'\]"):
        check_modalities("features", {"text": 1, "audio": 2}, ["text", "image"])
    check_modalities("features", {"text": 1, "image": 2}, ["image", "text"])


def test_format_table_dashes_gaps_and_keeps_decimals_even() -> None:
    import numpy as np
    import pandas as pd

    from mmtutor.utils import format_table

    frame = pd.DataFrame({"method": ["text", "fused"], "F1": [0.96, 0.9834],
                          "gain": [np.nan, 1.5], "params": [365358, 12]})
    shown = format_table(frame)
    assert shown["F1"].tolist() == ["0.960", "0.983"]  # the same decimals in one column
    assert shown["gain"].tolist() == ["—", "1.500"]  # a dash, never NaN
    assert shown["params"].tolist() == [365358, 12] and shown["method"].tolist() == ["text", "fused"]
    assert format_table(frame, decimals=1)["F1"].tolist() == ["1.0", "1.0"]
    with pytest.raises(ValueError, match="decimals"):
        format_table(frame, decimals=-1)


def test_glue_prints_the_value_under_the_name_the_prose_shows(capsys) -> None:
    from IPython.display import Markdown

    from mmtutor.utils import glue

    results = [glue("acc", np.float32(0.853125)), glue("n_train", np.int64(1228)),
               glue("third", 1 / 3), glue("best", Markdown("gated")), glue("ok", True)]
    assert results == [None] * 5  # a cell ending in glue(...) shows no execute_result
    assert capsys.readouterr().out.splitlines() == [
        "acc = 0.8531249761581421", "n_train = 1228", "third = 0.3333333333333333", "best = gated", "ok = True"]
    glue("tie", 0.8612500000000001)  # .4f: 0.8613, but 0.86125 itself rounds to 0.8612
    assert f"{float(capsys.readouterr().out.split(' = ')[-1]):.4f}" == "0.8613"


def test_glue_records_with_myst_nb_inside_a_kernel(monkeypatch, capsys) -> None:
    myst_nb = pytest.importorskip("myst_nb")
    import IPython

    from mmtutor.utils import glue

    calls = []
    monkeypatch.setattr(myst_nb, "glue", lambda *a, **k: calls.append((a, k)))
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    glue("acc", 0.5)  # a plain Python process: nothing to record into
    assert calls == []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    glue("acc", 0.5)
    assert calls == [(("acc", 0.5), {"display": False})]
    assert capsys.readouterr().out == "acc = 0.5\nacc = 0.5\n"


@pytest.mark.parametrize("name", ["", "two words", "acc:.2f", 3])
def test_glue_refuses_a_name_the_prose_cannot_cite(name) -> None:
    from mmtutor.utils import glue

    with pytest.raises(ValueError, match="glue name must be an identifier"):
        glue(name, 1.0)
