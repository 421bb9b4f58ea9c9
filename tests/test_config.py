"""Config validation before any stage runs, and the CLI's one-line errors."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

import pytest
import torch

import rig
from envs.appearance import PALETTES
from rig.cli import main
from rig.config import ConfigError, Palette, load_config

BAD_SETTINGS = [
    ("agent.batch_size=0", "agent.batch_size"),
    ("agent.gamma=1.5", "agent.gamma"),
    ("agent.learning_rate=-1", "agent.learning_rate"),
    ("agent.tau=0", "agent.tau"),
    ("agent.buffer_size=15", "agent.buffer_size"),
    ("agent.learning_starts=5", "agent.learning_starts"),
    ("agent.total_steps=10", "agent.total_steps"),
    ("agent.algo=ppo", "agent.algo"),
    ("agent.reward=dense", "agent.reward"),
    ("vae.kind=vqvae", "vae.kind"),
    ("vae.lr=0", "vae.lr"),
    ("vae.batch_size=0", "vae.batch_size"),
    ("vae.decoder_channels=0", "vae.decoder_channels"),
    ("vae.z_augment=sepia", "vae.z_augment"),
    ("vae.z_augment=hue", "vae.z_augment"),
    ("env.id=rig/Missing-v0", "env.id"),
    ("env.eval_palette=blue", "env.eval_palette"),
    ("env.image_size=20", "env.image_size"),
    ("env.frame_stack=0", "env.frame_stack"),
    ("data.num_frames=10", "data.num_frames"),
    ("eval.episodes=0", "eval.episodes"),
    ("seed=-1", "seed"),
    ("device=tpu", "device"),
    ("agent.batch_size=many", "agent.batch_size"),
]


@pytest.mark.parametrize(("setting", "key"), BAD_SETTINGS, ids=[s for s, _ in BAD_SETTINGS])
def test_bad_values_are_refused_before_any_stage_runs(
    setting: str, key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    assert main(["run", "debug", f"run_dir={run_dir}", "torch_threads=1", setting]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rig run: ") and len(err.splitlines()) == 1, err
    assert key in err, err
    assert not (run_dir / "data").exists()


@pytest.mark.parametrize("setting", ["vae.kind=state", "online.enabled=true"])
def test_frame_stack_is_refused_where_no_stack_of_frames_is_observed(setting: str) -> None:
    with pytest.raises(ConfigError, match="needs env.frame_stack=1"):
        load_config("debug", [setting, "env.frame_stack=2"])
    assert load_config("debug", [setting]).env.frame_stack == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_asked_for_without_cuda_is_refused_before_any_stage(tmp_path: Path, capsys) -> None:
    assert main(["collect", "debug", f"run_dir={tmp_path}", "device=cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == "rig collect: device='cuda' was asked for, but torch sees no CUDA device; use device=auto or cpu"
    )
    assert not (tmp_path / "data").exists()


def test_a_yaml_syntax_error_is_one_line_naming_the_file(tmp_path: Path, capsys) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("agent:\n  net_arch: [64, 64\nvae:\n  beta: 1\n")
    assert main(["run", str(broken), f"run_dir={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"rig run: {broken} is not valid YAML") and "line" in err
    assert len(err.splitlines()) == 1


YAML_FILES = [
    (b"", "holds no settings (it is empty or only comments)"),
    (b"# only a comment\n", "holds no settings (it is empty or only comments)"),
    (b"hello\n", "holds a str 'hello', not a mapping of settings"),
    (b"[1, 2]\n", "holds a list [1, 2], not a mapping of settings"),
    (b"seed: 1\nrun_dir: caf\xe9\n", "is not UTF-8 text (byte 20 is b'\\xe9')"),
]


@pytest.mark.parametrize(
    ("content", "said"), YAML_FILES, ids=["empty", "comment", "string", "list", "latin-1"]
)
def test_a_yaml_file_that_holds_no_settings_says_what_it_holds(
    content: bytes, said: str, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_bytes(content)
    with pytest.raises(ConfigError) as error:  # load_config: an empty file used to run the full default job
        load_config(config)
    assert str(error.value).startswith(f"{config} {said}")
    assert len(str(error.value).splitlines()) == 1


def test_an_interpolation_that_does_not_resolve_names_its_key(tmp_path: Path, capsys) -> None:
    config = tmp_path / "interpolated.yaml"
    config.write_text("run_dir: runs/${nope}\n")
    for args in (["run", str(config)], ["run", "debug", "run_dir=runs/${nope}"]):
        assert main([*args, "torch_threads=1"]) == 2
        err = capsys.readouterr().err.strip()
        problem = "cannot resolve the interpolation: Interpolation key 'nope' not found"
        assert err == f"rig run: run_dir='runs/${{nope}}': {problem}"
    assert load_config("debug", ["run_dir=runs/seed${seed}", "seed=3"]).run_dir == "runs/seed3"


def test_a_run_dir_that_is_a_file_is_refused_before_any_stage(tmp_path: Path, capsys) -> None:
    existing = tmp_path / "README.md"
    existing.write_text("not a run directory\n")
    assert main(["run", "debug", f"run_dir={existing}", "torch_threads=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"run_dir {str(existing)!r} is an existing file, not a directory" in err
    assert len(err.splitlines()) == 1
    assert existing.read_text() == "not a run directory\n"


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as error:
        load_config("debug", ["agent.gamma=2", "eval.every=0", "vae.beta=-1"])
    assert all(key in str(error.value) for key in ("agent.gamma", "eval.every", "vae.beta"))


def test_the_shipped_configs_are_valid() -> None:
    for path in sorted((Path(rig.__file__).parent.parent / "configs").glob("*.yaml")):
        load_config(path)


def test_palette_choices_are_the_envs_palettes() -> None:
    assert set(get_args(Palette)) == set(PALETTES)


def test_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import rig.pipeline

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("a bug, not a user error")

    monkeypatch.setattr(rig.pipeline, "run_pipeline", broken)
    with pytest.raises(ValueError, match="a bug"):
        main(["run", "debug", f"run_dir={tmp_path}"])


def test_no_module_of_rig_imports_one_that_imports_it_back() -> None:
    package = Path(rig.__file__).parent
    modules = {_module_name(path, package): path for path in package.rglob("*.py")}
    graph = {name: _rig_imports(path, name, set(modules)) for name, path in modules.items()}
    cycles = [cycle for cycle in (_cycle_from(start, graph) for start in graph) if cycle]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def _module_name(path: Path, package: Path) -> str:
    parts = ["rig", *path.relative_to(package).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _rig_imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The rig modules ``path`` imports, at the top or inside functions (rig uses no relative imports)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            # `from rig import io` imports the module rig.io; `from rig.io import write_json` imports rig.io.
            found.update(
                f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                for alias in node.names
            )
    return {module for module in found if module in known and module != name}


def _cycle_from(start: str, graph: dict[str, set[str]]) -> list[str]:
    """A path of imports from ``start`` back to itself, or [] (depth-first)."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        module, path = stack.pop()
        for imported in sorted(graph[module]):
            if imported == start:
                return [*path, start]
            if imported not in seen:
                seen.add(imported)
                stack.append((imported, [*path, imported]))
    return []
