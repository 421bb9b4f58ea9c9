"""Shared test settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

import rig.threads


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
