"""Shared test settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

import rig.threads
from rig.config import load_config
from rig.data import FrameDataset, collect


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread() -> Iterator[None]:
    """The test models are tiny; on a shared 2-core machine extra intra-op threads only contend.

    VAE training left to rig's choice (``torch_threads=0``) sees one CPU too, so that its thread count, and
    with it the rounding of the results that resume tests compare, does not depend on the machine's load.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rig.threads, "usable_cpus", lambda: 1)
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def debug_frames() -> FrameDataset:
    """300 frames of the debug config (``rig/Push-v0``, half the episodes teleported), seed 0."""
    cfg = load_config("debug", ["device=cpu", "data.num_frames=300"])
    return collect(cfg.env, cfg.data, seed=0, progress=False)
