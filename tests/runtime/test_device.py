"""Device choice, eval mode that restores, autocast dtypes."""

import pytest
import torch

from tlearn.errors import ConfigError
from tlearn.runtime.device import autocast_dtype, eval_mode, resolve_device


def test_auto_device_and_refusing_what_is_missing():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_eval_mode_restores_the_mode_even_after_an_error():
    module = torch.nn.Dropout().train()
    with pytest.raises(RuntimeError), eval_mode(module):
        assert not module.training
        raise RuntimeError
    assert module.training


def test_autocast_dtypes():
    assert autocast_dtype("bf16-mixed") is torch.bfloat16 and autocast_dtype("32-true") is None
