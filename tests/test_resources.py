"""The resource preflight: what a run allocates against a (fake) memory limit, and the torch thread bound."""

from __future__ import annotations

from pathlib import Path

import pytest

import rig.resources
from rig.cli import main
from rig.config import CONFIG_DIR, load_config
from rig.resources import ResourceError, available_memory, check_resources, estimate_allocations

EIGHT_GB = 8 * 10**9
TOO_MUCH = [
    ("agent.buffer_size=10000000000", "the replay buffer", "agent.buffer_size=10000000000"),
    ("data.num_frames=1000000000000", "the collected frames", "data.num_frames=1000000000000"),
    ("env.image_size=10000", "the collected frames", "env.image_size=10000"),
    ("vae.z_dim=100000000", "the replay buffer", "vae.z_dim=100000000"),
    ("vae.batch_size=100000", "the VAE's training", "vae.batch_size=100000"),
    ("agent.net_arch=[100000,100000]", "the agent's networks", "agent.net_arch=[100000, 100000]"),
]


@pytest.mark.parametrize(("override", "part", "setting"), TOO_MUCH, ids=[o for o, _, _ in TOO_MUCH])
def test_settings_the_memory_cannot_hold_are_refused_with_the_figure(
    override: str, part: str, setting: str
) -> None:
    cfg = load_config(None, [override])
    with pytest.raises(ResourceError) as error:
        check_resources(cfg, available=lambda: EIGHT_GB, cpus=2)
    message = str(error.value)
    assert "more than the 8.0 GB of memory available" in message
    assert f"the largest part is {part}" in message and setting in message
    assert len(message.splitlines()) == 1


def test_online_frames_are_counted() -> None:
    cfg = load_config("skewfit", ["agent.buffer_size=2000000"])
    parts = {part.what: part.bytes for part in estimate_allocations(cfg)}
    assert parts["the online run's frames"] > 2_000_000 * 3 * 48 * 48
    with pytest.raises(ResourceError, match="the online run's frames"):
        check_resources(cfg, available=lambda: EIGHT_GB, cpus=2)


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda path: path.stem)
def test_the_shipped_configs_fit_in_a_small_machine(path: Path) -> None:
    check_resources(load_config(path), available=lambda: 2 * 10**9, cpus=1)


def test_the_estimate_follows_the_settings() -> None:
    base = {part.what: part.bytes for part in estimate_allocations(load_config(None))}
    doubled = {
        part.what: part.bytes
        for part in estimate_allocations(load_config(None, ["agent.buffer_size=200000"]))
    }
    assert doubled["the replay buffer"] == 2 * base["the replay buffer"]
    assert base["the replay buffer"] > 100_000 * 2 * 3 * 6 * 4  # SB3 keeps observations and next observations
    oracle = {part.what for part in estimate_allocations(load_config("oracle"))}
    assert oracle == {"the replay buffer", "the agent's networks"}  # no frames, no VAE


def test_an_unknown_memory_skips_the_memory_check_only() -> None:
    check_resources(load_config(None, ["agent.buffer_size=10000000000"]), available=lambda: None, cpus=2)
    with pytest.raises(ResourceError, match="torch_threads=3 is more than the 2 CPUs"):
        check_resources(load_config(None, ["torch_threads=3"]), available=lambda: None, cpus=2)
    check_resources(load_config(None, ["torch_threads=2"]), available=lambda: None, cpus=2)


def test_available_memory_reads_memavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24683784 kB\nMemFree:   100 kB\nMemAvailable:   2000 kB\n")
    monkeypatch.setattr(rig.resources, "MEMINFO", meminfo)
    assert available_memory() == 2000 * 1024
    monkeypatch.setattr(rig.resources, "MEMINFO", tmp_path / "missing")
    assert available_memory() is None


@pytest.mark.parametrize(
    "setting", ["agent.buffer_size=10000000000", "vae.z_dim=100000000", "torch_threads=100000"]
)
def test_rig_run_refuses_before_any_stage(
    setting: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(rig.resources, "available_memory", lambda: EIGHT_GB)
    run_dir = tmp_path / "run"
    assert main(["run", "debug", f"run_dir={run_dir}", setting]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rig run: ") and len(err.splitlines()) == 1, err
    assert setting.split("=")[0] in err
    assert not run_dir.exists()
