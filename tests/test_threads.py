"""The thread rule: the free CPUs for the agent loop and VAE training, one for an online run's loop, or the
config's count."""

from __future__ import annotations

import pytest
import torch

import rig.resources
import rig.threads
from rig.config import load_config
from rig.pipeline import preflight
from rig.threads import AgentThreads, CpuMeter, CpuReading, choose_threads, free_cpus, vae_threads


@pytest.mark.parametrize("free", [1, 2, 16])
def test_an_online_runs_loop_takes_one_thread_however_many_cpus_are_free(free: int) -> None:
    assert choose_threads(0, "online", free) == 1


@pytest.mark.parametrize("phase", ["agent", "vae"])
@pytest.mark.parametrize(("free", "threads"), [(0, 1), (1, 1), (2, 2), (16, 16)])
def test_the_agent_loop_and_vae_training_take_the_free_cpus_and_at_least_one(
    phase: rig.threads.Phase, free: int, threads: int
) -> None:
    assert choose_threads(0, phase, free) == threads


@pytest.mark.parametrize("phase", ["agent", "online", "vae"])
def test_a_requested_count_overrides_the_rule(phase: rig.threads.Phase) -> None:
    assert choose_threads(3, phase, 1) == 3
    assert choose_threads(1, phase, 16) == 1


@pytest.mark.parametrize(
    ("busy", "free"),
    [(0.0, 2), (0.2, 2), (0.3, 1), (1.0, 1), (1.2, 1), (1.4, 1), (3.0, 1)],
)
def test_free_cpus_counts_a_core_taken_once_another_process_uses_a_quarter_of_it(
    busy: float, free: int
) -> None:
    assert free_cpus(2, busy) == free


def readings(*values: tuple[float, float, float]):
    queue = [CpuReading(*value) for value in values]
    return lambda: queue.pop(0)


def test_the_meter_counts_what_other_processes_used_not_this_one() -> None:
    # 10 s: the machine was busy 18 CPU-seconds, 8 of them this process's: others kept one core busy
    meter = CpuMeter(readings((0.0, 100.0, 5.0), (10.0, 118.0, 13.0), (20.0, 128.0, 23.0)))
    assert meter.busy_elsewhere() == pytest.approx(1.0)
    assert meter.busy_elsewhere() == pytest.approx(0.0)  # then only this process: others left


def test_without_proc_stat_the_meter_sees_no_other_process() -> None:
    assert CpuMeter(lambda: None).busy_elsewhere() == 0.0


def test_vae_threads_follow_the_free_cpus_and_restore_the_agents_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rig.threads, "usable_cpus", lambda: 2)
    busy = [1.0, 0.0]

    class FakeMeter(CpuMeter):
        def __init__(self) -> None:
            pass

        def busy_elsewhere(self) -> float:
            return busy.pop(0)

    torch.set_num_threads(1)
    with vae_threads(0, FakeMeter()) as threads:
        assert torch.get_num_threads() == 1  # another process holds one of the two CPUs
        threads.adapt()
        assert torch.get_num_threads() == 2  # it has ended
    assert torch.get_num_threads() == 1
    with vae_threads(2, FakeMeter()):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == 1


class ScriptedMeter(CpuMeter):
    """Reports the busy cores it is given, one per measurement."""

    def __init__(self, busy: list[float]) -> None:
        self.busy = busy

    def busy_elsewhere(self) -> float:
        return self.busy.pop(0)


def test_the_agent_loop_measures_again_only_when_its_recheck_time_is_due(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rig.threads, "usable_cpus", lambda: 2)
    clock = [100.0]
    monkeypatch.setattr(rig.threads.time, "monotonic", lambda: clock[0])
    meter = ScriptedMeter([0.0, 1.0, 0.1])
    try:
        threads = AgentThreads(0, online=False, meter=meter, recheck=5.0)
        assert threads.check() == 2 and torch.get_num_threads() == 2  # alone: both CPUs
        clock[0] += 4.9
        assert threads.check() == 2 and len(meter.busy) == 2  # not due: no measurement
        clock[0] += 0.2
        assert threads.check() == 1 and torch.get_num_threads() == 1  # a busy neighbour arrived
        clock[0] += 5.0
        assert threads.check() == 2  # and left
        assert meter.busy == []
    finally:
        torch.set_num_threads(1)


@pytest.mark.parametrize(("requested", "online", "threads"), [(0, True, 1), (2, True, 2), (1, False, 1)])
def test_an_online_loop_or_a_requested_count_never_measures(
    monkeypatch: pytest.MonkeyPatch, requested: int, online: bool, threads: int
) -> None:
    monkeypatch.setattr(rig.threads, "usable_cpus", lambda: 2)
    meter = ScriptedMeter([])  # a measurement would pop from an empty list
    try:
        assert AgentThreads(requested, online=online, meter=meter).check() == threads
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(1)


def test_preflight_gives_the_agent_one_thread_unless_the_config_asks(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(rig.resources, "usable_cpus", lambda: 4)
    try:
        torch.set_num_threads(2)
        preflight(load_config("debug", [f"run_dir={tmp_path}", "device=cpu"]))
        assert torch.get_num_threads() == 1
        preflight(load_config("debug", [f"run_dir={tmp_path}", "device=cpu", "torch_threads=2"]))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
