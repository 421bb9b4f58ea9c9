"""How many CPU threads torch uses: the CPUs other processes leave free, measured as the run goes.

torch's default, one thread per core, collapses beside any other busy process: its OpenMP workers
spin-wait for each other when a core is taken. On a 2-core machine the TD3 loop ran 82 env steps/s alone
with 2 threads but 20.5 beside one busy single-threaded process, and 84 with 1 thread beside it. So each
phase takes only the CPUs that other processes leave free, measured over the last few seconds: VAE
pretraining when it starts and after every epoch, the agent loop when it starts and every
``AGENT_RECHECK_SECONDS`` (``AgentThreads``). Alone on 2 cores both run on 2 threads; beside a busy process
they drop to 1 within one check.

An online run's VAE updates interleave with the agent loop and run on its thread, which stays at 1 there:
the VAE's gradients round differently on another thread count, and a fixed count keeps a resumed online
run bit-identical. The agent's own networks, at the default sizes, compute the same numbers on 1 and 2
threads (``scripts/thread_rounding.py``), so following the load costs the agent no exactness there.

``torch_threads > 0`` in the config overrides the rule everywhere. The VAE's pretraining rounds
differently with the thread count, so two runs of one seed under different loads may differ (as on
different machines); pin ``torch_threads`` for exact repeats.
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

Phase = Literal["agent", "online", "vae"]
ONLINE_THREADS = 1
"""an online run's agent loop (with its VAE updates) when the config leaves the choice to rig"""
AGENT_RECHECK_SECONDS = 5.0
"""how often the agent loop measures the free CPUs again"""
BUSY_SLACK = 0.25
"""other processes' use below this share of a core leaves the core free"""
FIRST_WINDOW_SECONDS = 0.25
"""how long the first reading of the CPUs' use looks"""
PROC_STAT = Path("/proc/stat")


def choose_threads(requested: int, phase: Phase, free_cpus: int = 1) -> int:
    """torch's intra-op threads for ``phase``: ``requested`` when > 0; else 1 for an online run's loop, and
    the free CPUs (at least 1) for the agent loop and VAE training."""
    if requested > 0:
        return requested
    if phase == "online":
        return ONLINE_THREADS
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


class FreeCpuThreads:
    """Sets torch's threads for ``phase`` from what the machine has free; ``adapt`` measures again."""

    def __init__(self, requested: int, phase: Phase, meter: CpuMeter | None = None) -> None:
        self.requested = requested
        self.phase = phase
        self.meter = meter or CpuMeter()
        self.threads = 0

    def adapt(self) -> int:
        cpus = usable_cpus()
        measure = self.requested <= 0 and self.phase != "online" and cpus > 1
        free = free_cpus(cpus, self.meter.busy_elsewhere()) if measure else 1
        threads = choose_threads(self.requested, self.phase, free)
        if threads != self.threads:
            logger.info("%s on %d torch thread(s)", PHASE_NAMES[self.phase], threads)
            torch.set_num_threads(threads)
            self.threads = threads
        return threads


PHASE_NAMES = {"agent": "the agent loop", "online": "the online agent loop", "vae": "VAE training"}


class AgentThreads(FreeCpuThreads):
    """The agent loop's threads: measured when it starts and again every ``recheck`` seconds of wall time
    (``check`` is called every env step and is a clock read between measurements)."""

    def __init__(
        self,
        requested: int,
        online: bool,
        meter: CpuMeter | None = None,
        recheck: float = AGENT_RECHECK_SECONDS,
    ) -> None:
        super().__init__(requested, "online" if online else "agent", meter)
        self.recheck = recheck
        self.due = 0.0

    def check(self) -> int:
        now = time.monotonic()
        if now >= self.due:
            self.due = now + self.recheck
            self.adapt()
        return self.threads


@contextmanager
def vae_threads(requested: int, meter: CpuMeter | None = None) -> Iterator[FreeCpuThreads]:
    """torch's threads chosen for VAE training inside the block; the previous count is restored after."""
    previous = torch.get_num_threads()
    chooser = FreeCpuThreads(requested, "vae", meter)
    chooser.adapt()
    try:
        yield chooser
    finally:
        torch.set_num_threads(previous)
