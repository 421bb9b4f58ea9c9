"""The run directory: where every product of a run lives, and the lock that gives it one writer.

    config.yaml        the resolved config              stages.json   each stage's key, settings, timing
    data/              frames.npz (+ frames_heldout_colours.npz on the multi-object env)
    pretrain/          best.pt, last.pt, metrics.json, progress.csv, tensorboard/, diagnostic grids
    agent/             checkpoint.json, checkpoints/, representation.pt, eval_curve.csv, logs/
    eval.json, gifs/   the final evaluation and its rollouts
    baselines/         random.json, a random policy on the same goals
    report.md          the report (with learning_curves.png and the figures it shows)
    archive.json       only in an archived record (``scripts/archive_runs.py``)
    source.json        only in a run trained on another run's representation
    .rig.lock          held by the process writing into the directory

This module is the only one that spells these names: every module and script that reads or writes a run
directory takes its paths from ``RunDir``, ``PretrainDir`` for ``pretrain/`` and ``AgentDir`` for
``agent/`` (which ``rig.pretrain`` and ``rig.agent`` also write on their own), and ``ReportDir`` for a
report. ``tests/test_structure.py`` checks that no other module or script spells one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from rig.errors import MissingFileError, UserError


class RunDirInUseError(UserError):
    """Another process holds the run directory's lock."""


@dataclass(frozen=True)
class PretrainDir:
    """What the pretrain stage keeps in ``pretrain/``."""

    root: Path
    """``pretrain/`` of a run, or the folder that ``rig.pretrain.pretrain`` is given"""

    @property
    def best(self) -> Path:
        """the weights with the lowest held-out loss, loadable with ``load_representation``"""
        return self.root / "best.pt"

    @property
    def last(self) -> Path:
        """the last epoch's weights with what resuming needs (optimiser, progress, random state)"""
        return self.root / "last.pt"

    @property
    def metrics(self) -> Path:
        """the diagnostics of the best weights and the training summary"""
        return self.root / "metrics.json"

    def metrics_at(self, epochs: int) -> Path:
        """``metrics.json`` as written when the pretraining had run ``epochs`` epochs: a pretraining
        extended to a larger ``vae.epochs`` keeps the diagnostics of each budget it finished"""
        return self.root / f"metrics_epochs{epochs}.json"

    def best_at(self, epochs: int) -> Path:
        """``best.pt`` as it was when the pretraining had run ``epochs`` epochs (see ``metrics_at``)"""
        return self.root / f"best_epochs{epochs}.pt"

    def budgets(self) -> dict[int, Path]:
        """The ``metrics_at`` files there are, by their epochs, in order."""
        found = {}
        for path in self.root.glob("metrics_epochs*.json"):
            digits = path.stem.removeprefix("metrics_epochs")
            if digits.isdigit():
                found[int(digits)] = path
        return dict(sorted(found.items()))

    @property
    def progress(self) -> Path:
        """one row of training and held-out metrics per epoch"""
        return self.root / "progress.csv"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def reconstructions(self) -> Path:
        """held-out frames above their reconstructions"""
        return self.root / "reconstructions.png"

    @property
    def prior_samples(self) -> Path:
        return self.root / "prior_samples.png"

    @property
    def traversals(self) -> Path:
        return self.root / "traversals.png"

    @property
    def heldout_reconstructions(self) -> Path:
        """multi-object env: frames of held-out colours above their reconstructions"""
        return self.root / "reconstructions_heldout.png"

    @property
    def heldout_prior_samples(self) -> Path:
        """multi-object env: a held-out-colour context frame, then prior samples under it"""
        return self.root / "prior_samples_heldout.png"


@dataclass(frozen=True)
class AgentDir:
    """What the train stage keeps in ``agent/``."""

    root: Path

    @property
    def checkpoint(self) -> Path:
        """the latest checkpoint's step, files and the config that trained it"""
        return self.root / "checkpoint.json"

    @property
    def checkpoints(self) -> Path:
        """``agent_<step>.zip`` (SB3) and ``replay_buffer_<step>.pkl`` (latents only)"""
        return self.root / "checkpoints"

    def agent_checkpoint(self, steps: int) -> Path:
        return self.checkpoints / f"agent_{steps:09d}.zip"

    def replay_buffer_checkpoint(self, steps: int) -> Path:
        return self.checkpoints / f"replay_buffer_{steps:09d}.pkl"

    @property
    def online_reconstructions(self) -> Path:
        """online runs: probe frames above the online VAE's reconstructions, at the end of training"""
        return self.root / "online_reconstructions.png"

    @property
    def online_goal_pool(self) -> Path:
        """online runs: the last exploration goal pool's first frames"""
        return self.root / "online_goal_pool.png"

    def training_state_checkpoint(self, steps: int) -> Path:
        """the global random generators and the training env mid-episode (``rig.snapshot``)"""
        return self.checkpoints / f"training_state_{steps:09d}.pt"

    def online_state_checkpoint(self, steps: int) -> Path:
        """online runs: the VAE's optimiser, schedule, random streams and goal pool (``rig.online``)"""
        return self.checkpoints / f"online_vae_{steps:09d}.pt"

    def online_representation_checkpoint(self, steps: int) -> Path:
        """online runs: the representation as trained up to ``steps``, loadable with load_representation"""
        return self.checkpoints / f"representation_{steps:09d}.pt"

    @property
    def representation(self) -> Path:
        """the representation the agent was trained with (with its fitted goal prior)"""
        return self.root / "representation.pt"

    @property
    def eval_curve(self) -> Path:
        return self.root / "eval_curve.csv"

    @property
    def logs(self) -> Path:
        """SB3's ``progress.csv`` and TensorBoard events"""
        return self.root / "logs"

    @property
    def progress(self) -> Path:
        return self.logs / "progress.csv"


@dataclass(frozen=True)
class RunDir:
    """The paths of one run directory; nothing is created until a stage writes it."""

    root: Path

    def __init__(self, root: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def stages(self) -> Path:
        return self.root / "stages.json"

    @property
    def lock_file(self) -> Path:
        return self.root / ".rig.lock"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def frames(self) -> Path:
        return self.data / "frames.npz"

    @property
    def heldout_colour_frames(self) -> Path:
        """frames in colours training never sees (multi-object env only)"""
        return self.data / "frames_heldout_colours.npz"

    @property
    def pretrain(self) -> Path:
        return self.root / "pretrain"

    @property
    def pretrain_dir(self) -> PretrainDir:
        return PretrainDir(self.pretrain)

    @property
    def representation(self) -> Path:
        """the pretrained representation with the lowest held-out loss"""
        return self.pretrain_dir.best

    @property
    def pretrain_metrics(self) -> Path:
        return self.pretrain_dir.metrics

    @property
    def agent(self) -> AgentDir:
        return AgentDir(self.root / "agent")

    @property
    def eval(self) -> Path:
        return self.root / "eval.json"

    @property
    def gifs(self) -> Path:
        return self.root / "gifs"

    def eval_gif(self, index: int) -> Path:
        return self.gifs / f"eval_{index}.gif"

    def eval_gifs(self) -> list[Path]:
        """The evaluation's rollout GIFs there are, in episode order."""
        if not self.gifs.is_dir():
            return []
        return sorted(self.gifs.glob("eval_*.gif"), key=lambda path: _trailing_number(path.stem))

    @property
    def baselines(self) -> Path:
        return self.root / "baselines"

    @property
    def random_baseline(self) -> Path:
        return self.baselines / "random.json"

    @property
    def demo_gif(self) -> Path:
        return self.root / "demo_rollouts.gif"

    @property
    def demo_grid(self) -> Path:
        return self.root / "demo_frames.png"

    @property
    def archive_record(self) -> Path:
        """written by ``scripts/archive_runs.py``: this directory is a run's record, without its frames,
        weights, images and GIFs"""
        return self.root / "archive.json"

    def is_archived(self) -> bool:
        return self.archive_record.is_file()

    @property
    def source_record(self) -> Path:
        """written by ``scripts/train_on_representation.py``: the run whose representation this one reuses"""
        return self.root / "source.json"

    @property
    def report(self) -> ReportDir:
        """a report of this run alone (``rig report RUN_DIR``) lies in the run directory itself"""
        return ReportDir(self.root)

    def is_run(self) -> bool:
        """Whether a rig command has written here (it records the config first)."""
        return self.config.is_file()

    def require_run(self) -> None:
        if not self.is_run():
            raise MissingFileError(f"{self.root} is not a rig run directory: it has no {self.config.name}")

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the directory for this process; another holder makes this fail at once, not wait.

        The lock is an OS file lock, which the OS releases when its process ends however it ends, so a
        killed run leaves nothing that blocks the next one.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.lock_file, timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise RunDirInUseError(
                f"run directory {self.root} is in use by another rig process (it holds "
                f"{self.lock_file.name}); wait for that process to end, or choose another run_dir"
            ) from None
        try:
            yield
        finally:
            lock.release()


@dataclass(frozen=True)
class ReportDir:
    """Where ``rig.report`` writes a report: one run's directory, or a folder for several runs."""

    root: Path
    """the folder that holds ``report.md`` and its figures"""

    @classmethod
    def for_runs(cls, run_dirs: Sequence[Path]) -> ReportDir:
        """One run's report lies in its directory; several runs' in ``report/`` in their common parent."""
        if len(run_dirs) == 1:
            return cls(run_dirs[0])
        return cls.inside(Path(os.path.commonpath([path.resolve() for path in run_dirs])))

    @classmethod
    def inside(cls, folder: Path) -> ReportDir:
        """A report in ``report/`` of ``folder``."""
        return cls(folder / "report")

    @property
    def markdown(self) -> Path:
        return self.root / "report.md"

    @property
    def learning_curves(self) -> Path:
        return self.root / "learning_curves.png"

    @property
    def online_representation(self) -> Path:
        """online runs' diagnostics against env steps"""
        return self.root / "online_representation.png"

    @property
    def assets(self) -> Path:
        """copies of the images the report shows that do not lie under its own directory"""
        return self.root / "report_files"


def _trailing_number(text: str) -> int:
    digits = text.rsplit("_", 1)[-1]
    return int(digits) if digits.isdigit() else 0
