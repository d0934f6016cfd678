"""Shared fixtures: the same test body runs on CPU and, where present, CUDA."""

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    """Each available device in turn; CUDA is skipped where absent."""
    return torch.device(request.param)
