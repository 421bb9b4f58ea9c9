"""How many CPU threads torch uses: one for the agent loop, the free CPUs for VAE training.

torch's default, one thread per core, collapses beside any other busy process: its OpenMP workers
spin-wait for each other when a core is taken. On a 2-core machine the TD3 loop ran 82 env steps/s alone
with 2 threads but 20.5 beside one busy single-threaded process, and 84 with 1 thread beside it; its
small networks gain almost nothing from a second thread. The VAE's convolutions over batches of frames do
gain from more threads, so pretraining takes the CPUs that other processes leave free, measured when it
starts and again after every epoch. An online run's VAE updates interleave with the agent loop and run on
its thread, which also keeps a resumed online run bit-identical.

``torch_threads > 0`` in the config overrides the rule for both. The thread count changes how the CPU's
kernels round, so two runs of one seed under different loads may differ (as on different machines).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

logger = logging.getLogger(__name__)

Phase = Literal["agent", "vae"]
AGENT_THREADS = 1
"""the agent loop's threads when the config leaves the choice to rig"""
BUSY_SLACK = 0.25
"""other processes' use below this share of a core leaves the core free"""
FIRST_WINDOW_SECONDS = 0.25
"""how long the first reading of the CPUs' use looks"""
PROC_STAT = Path("/proc/stat")


def choose_threads(requested: int, phase: Phase, free_cpus: int = 1) -> int:
    """torch's intra-op threads for ``phase``: ``requested`` when > 0; else 1 for the agent loop, and the
    free CPUs (at least 1) for VAE training."""
    if requested > 0:
        return requested
    if phase == "agent":
        return AGENT_THREADS
    return max(1, free_cpus)


def free_cpus(cpus: int, busy_elsewhere: float) -> int:
    """The CPUs of ``cpus`` that other processes, using ``busy_elsewhere`` cores, leave free (at least 1)."""
    taken = max(0, math.ceil(busy_elsewhere - BUSY_SLACK))
    return max(1, cpus - taken)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class CpuReading:
    """CPU seconds spent by all processes and by this one, at a wall-clock time."""

    wall: float
    busy_total: float
    busy_own: float


def read_cpu() -> CpuReading | None:
    """The machine's busy CPU seconds (``/proc/stat``) and this process's; None where /proc is missing."""
    try:
        fields = PROC_STAT.read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    # cpu user nice system idle iowait irq softirq steal ...: everything but idle and iowait is busy
    ticks = [int(value) for value in fields[1:9]]
    busy = sum(ticks) - ticks[3] - ticks[4]
    own = os.times()
    return CpuReading(time.monotonic(), busy / os.sysconf("SC_CLK_TCK"), own.user + own.system)


class CpuMeter:
    """How many cores other processes kept busy since the last reading (the first looks a short window)."""

    def __init__(self, read: Callable[[], CpuReading | None] = read_cpu) -> None:
        self.read = read
        self.last = read()

    def busy_elsewhere(self) -> float:
        if self.last is not None and time.monotonic() - self.last.wall < FIRST_WINDOW_SECONDS:
            time.sleep(FIRST_WINDOW_SECONDS)
        now = self.read()
        before, self.last = self.last, now
        if before is None or now is None or now.wall <= before.wall:
            return 0.0
        elsewhere = (now.busy_total - before.busy_total) - (now.busy_own - before.busy_own)
        return max(0.0, elsewhere / (now.wall - before.wall))


class VAEThreads:
    """Sets torch's threads for VAE training from what the machine has free; ``adapt`` measures again."""

    def __init__(self, requested: int, meter: CpuMeter | None = None) -> None:
        self.requested = requested
        self.meter = meter or CpuMeter()
        self.threads = 0

    def adapt(self) -> int:
        cpus = usable_cpus()
        free = free_cpus(cpus, self.meter.busy_elsewhere()) if self.requested <= 0 and cpus > 1 else 1
        threads = choose_threads(self.requested, "vae", free)
        if threads != self.threads:
            logger.info("VAE training on %d torch thread(s)", threads)
            torch.set_num_threads(threads)
            self.threads = threads
        return threads


@contextmanager
def vae_threads(requested: int, meter: CpuMeter | None = None) -> Iterator[VAEThreads]:
    """torch's threads chosen for VAE training inside the block; the previous count is restored after."""
    previous = torch.get_num_threads()
    chooser = VAEThreads(requested, meter)
    chooser.adapt()
    try:
        yield chooser
    finally:
        torch.set_num_threads(previous)
