"""Representation pretraining: a frame dataset in, a trained representation and its diagnostics out.

The VAEs learn from the frames alone; the supervised encoder (``output_kind`` "state") also reads each
frame's true state as its target.

The stage directory holds ``last.pt`` (weights, optimiser and progress, written after every epoch),
``best.pt`` (the weights with the lowest held-out loss, loadable with ``load_representation``),
``progress.csv``, TensorBoard events, the diagnostic grids and ``metrics.json``, also kept as
``metrics_epochs<N>.json`` with ``best_epochs<N>.pt`` for its budget of N epochs (an extended pretraining
keeps each). A run that stops
for any reason resumes from ``last.pt``, and a larger ``vae.epochs`` continues a finished one to the weights
a longer run would have reached; a non-finite loss stops training and keeps it.
"""

from __future__ import annotations

import math
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from tqdm import tqdm

from envs.push import HAND_GOAL_BOX, PUCK_GOAL_BOX
from rig import io
from rig.config import Config, ConfigError, EnvConfig, VAEConfig, is_unset_neutral
from rig.data import SWAP_ROLES, FrameDataset, collection_mismatch
from rig.device import resolve_device
from rig.diagnostics import write_diagnostics
from rig.envs import make_env
from rig.errors import UserError
from rig.goal_env import GoalEnvView
from rig.logger import ProgressCSV, make_logger
from rig.representation import (
    RepresentationModule,
    SupervisedEncoder,
    build_representation,
    load_representation,
    read_checkpoint,
    save_representation,
)
from rig.representation.checkpoint import load_state_checked
from rig.representation.inference import contexts_of, encode_dataset
from rig.representation.inverse import (
    InverseModel,
    acted_pairs,
    action_variance,
    check_inverse_frames,
    inverse_loss,
)
from rig.rundir import PretrainDir
from rig.threads import FreeCpuThreads, vae_threads

EpochHook = Callable[[int, RepresentationModule, float], None]
"""Called as ``hook(epoch, model, heldout_loss)`` after every pretraining epoch."""


class NonFiniteLossError(UserError, RuntimeError):
    """The training loss became NaN or infinite."""


class PretrainMismatchError(UserError, ValueError):
    """A pretraining in the stage directory was made with other settings or frames."""


@dataclass
class PretrainResult:
    representation: RepresentationModule
    checkpoint: Path
    metrics: dict[str, Any]


GoalBox = tuple[Sequence[float] | np.ndarray, Sequence[float] | np.ndarray]
"""(low, high) of a box of goals"""


PUSHER_GOAL_BOX = ([*HAND_GOAL_BOX.low, *PUCK_GOAL_BOX.low], [*HAND_GOAL_BOX.high, *PUCK_GOAL_BOX.high])
"""the pushers' goal box, [hand_x, hand_y, puck_x, puck_y]"""


def make_representation(
    cfg: VAEConfig, image_size: int, goal_box: GoalBox | None = None, states: np.ndarray | None = None
) -> RepresentationModule:
    """A fresh, untrained representation of the configured kind.

    The state oracle's identity draws its goals uniformly in ``goal_box`` (the env's ``goal_box()``; by
    default the pushers' goal box). The supervised encoder regresses states like ``states`` (the training
    frames' states), standardised by their per-dim mean and std; without them it is built unstandardised
    for the pushers' 4-d state, which is enough to check that its settings fit the image size.
    """
    if cfg.is_oracle:
        low, high = PUSHER_GOAL_BOX if goal_box is None else goal_box
        return build_representation("state", {"low": list(map(float, low)), "high": list(map(float, high))})
    if cfg.kind == "supervised":
        return supervised_encoder(cfg, image_size, states)
    shared = {
        "z_dim": cfg.z_dim,
        "beta": cfg.beta,
        "likelihood": cfg.likelihood,
        "image_size": image_size,
        "decoder": cfg.decoder,
        "decoder_channels": cfg.decoder_channels,
        "coord_channels": cfg.coord_channels,
        "encoder": cfg.encoder,
    }
    if cfg.kind == "cc_vae":
        cc_settings = {
            "context_dim": cfg.context_dim,
            "context_film": cfg.context_film,
            "z_augment": cfg.z_augment,
        }
        return build_representation("cc_vae", {**shared, **cc_settings})
    return build_representation("beta_vae", shared)


def supervised_encoder(cfg: VAEConfig, image_size: int, states: np.ndarray | None) -> SupervisedEncoder:
    """The VAEs' encoder (same CoordConv setting) with a head for the states, standardised by ``states``."""
    state_dim = len(PUSHER_GOAL_BOX[0]) if states is None else states.shape[1]
    model = SupervisedEncoder(state_dim, image_size, coord_channels=cfg.coord_channels)
    if states is not None:
        model.fit_standardisation(states)
    return model


def pretrain(
    cfg: Config,
    dataset: FrameDataset,
    out_dir: str | Path,
    heldout_colours: FrameDataset | None = None,
    progress: bool = True,
    on_epoch: EpochHook | None = None,
) -> PretrainResult:
    """Train on ``dataset`` (resuming a run found in ``out_dir``), then diagnose the best weights.

    ``on_epoch(epoch, model, heldout_loss)`` is called after each epoch's checkpoint is written.
    """
    out_dir = Path(out_dir)
    if cfg.vae.is_oracle:
        return save_state_representation(cfg, out_dir)
    files = PretrainDir(out_dir)
    dataset.check_matches(cfg.env)
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    train_states = dataset.states[dataset.split(heldout=False)]
    model = make_representation(cfg.vae, cfg.env.image_size, states=train_states).to(device)
    trainer = _Trainer(cfg, model, dataset, out_dir, device)
    with vae_threads(cfg.torch_threads) as threads:
        trainer.fit(progress, _adapting_threads(threads, on_epoch))
        if cfg.vae.epochs == 0:  # an online run's VAE starts untrained (online.enabled; checked by validate)
            save_representation(files.best, model, {"epoch": -1})
        model = load_representation(files.best, map_location=device)
        model.eval()
        metrics = write_diagnostics(
            model,
            dataset,
            out_dir,
            heldout_colour_dataset=heldout_colours,
            env_cfg=cfg.env,
            goal_seed=cfg.eval.seed,
        )
    metrics["training"] = {**trainer.summary(), "torch_threads": threads.threads}
    io.write_json(files.metrics, metrics)
    io.write_json(files.metrics_at(cfg.vae.epochs), metrics)
    with io.atomic_path(files.best_at(cfg.vae.epochs)) as tmp:
        shutil.copyfile(files.best, tmp)
    return PretrainResult(model, files.best, metrics)


def _adapting_threads(threads: FreeCpuThreads, on_epoch: EpochHook | None) -> EpochHook:
    """``on_epoch``, then the thread count chosen again from what other processes left free."""

    def hook(epoch: int, model: RepresentationModule, heldout_loss: float) -> None:
        if on_epoch is not None:
            on_epoch(epoch, model, heldout_loss)
        threads.adapt()

    return hook


def fit_goal_prior(
    rep: RepresentationModule, dataset: FrameDataset, teleported: bool = False
) -> tuple[list[float], list[float]]:
    """Per-dim mean and std of the encoder means of z over the dataset's training frames; with
    ``teleported``, over those at teleported states only (``agent.goal_prior=teleported``).

    Imagined goals drawn from this Gaussian lie where the encoder actually puts frames. N(0, I) also puts
    goals on dims the encoder leaves unused (near 0 for every frame), which no state can reach. Random-action
    frames mostly show the object where the reset put it; teleported frames show it where the env draws
    states, which on the pushers is the whole goal range.
    """
    train = dataset.split(heldout=False)
    if teleported:
        check_teleported_frames(dataset)
        train = train[dataset.teleported[train]]
    z = encode_dataset(rep, dataset.images[train], contexts_of(rep, dataset, train))[:, : rep.z_dim]
    z = z.astype(np.float64)
    return z.mean(axis=0).tolist(), np.maximum(z.std(axis=0), 1e-6).tolist()


MIN_TELEPORTED_FRAMES = 20
"""training frames at teleported states that ``agent.goal_prior=teleported`` needs to fit its Gaussian"""


def check_teleported_frames(dataset: FrameDataset) -> None:
    """Raise unless ``dataset`` has enough training frames at teleported states to fit the goal prior to."""
    count = int(np.count_nonzero(dataset.teleported & ~dataset.heldout))
    if count >= MIN_TELEPORTED_FRAMES:
        return
    reason = (
        "records none (collected with data.teleport_fraction=0, by an env that cannot teleport, or before "
        "datasets recorded them)"
        if count == 0
        else f"has {count}"
    )
    raise ConfigError(
        f"agent.goal_prior=teleported fits imagined goals to at least {MIN_TELEPORTED_FRAMES} training "
        f"frames at teleported states, and {dataset.origin} {reason}: raise data.teleport_fraction and "
        "collect into a new run_dir, or use agent.goal_prior=fitted"
    )


def save_state_representation(cfg: Config, out_dir: Path) -> PretrainResult:
    """The state oracle's identity representation: nothing to learn, saved so later stages load it alike."""
    model = make_representation(cfg.vae, cfg.env.image_size, env_goal_box(cfg.env))
    best = PretrainDir(out_dir).best
    save_representation(best, model)
    return PretrainResult(model, best, {})


def env_goal_box(env_cfg: EnvConfig) -> tuple[np.ndarray, np.ndarray]:
    """The box the env draws its goals from (``rig.goal_env``), where the state oracle imagines goals."""
    env = make_env(env_cfg, render=False)
    try:
        return GoalEnvView(env).goal_box()
    finally:
        env.close()


def fingerprint(cfg: Config, frames: int, dataset_meta: dict[str, Any]) -> dict[str, Any]:
    """What ``last.pt`` records of the pretraining that wrote it: everything that shapes the weights except
    the epoch budget (the settings and seed, and the dataset's size and ``meta``). Settings at their
    ``UNSET_NEUTRAL`` values are left out, so that runs recorded before those settings existed resume."""
    settings = {
        key: value
        for key, value in asdict(cfg.vae).items()
        if key != "epochs" and not is_unset_neutral(f"vae.{key}", value)
    }
    return {"vae": settings, "seed": cfg.seed, "frames": frames, "data": dataset_meta}


def pretrained_epochs(cfg: Config, out_dir: Path) -> int:
    """How many epochs the pretraining in ``out_dir`` has finished, when ``last.pt`` says it was made with
    ``cfg``'s settings on frames collected with them; a ``PretrainMismatchError`` otherwise."""
    files = PretrainDir(out_dir)
    state = read_checkpoint(files.last)
    recorded = state.get("fingerprint")
    frames_meta = recorded.get("data") if isinstance(recorded, dict) else None
    if not isinstance(frames_meta, dict) or collection_mismatch(frames_meta, cfg.env, cfg.data, cfg.seed):
        raise PretrainMismatchError(f"{files.last} was trained on frames of other settings")
    if recorded != fingerprint(cfg, cfg.data.num_frames, frames_meta):
        raise PretrainMismatchError(f"{files.last} was trained with other settings")
    epochs = int(state.get("epoch", -1)) + 1
    _check_budget(files.last, epochs, cfg.vae.epochs)
    return epochs


def check_extendable(cfg: Config, out_dir: Path) -> None:
    """Refuse, before anything runs, a ``vae.epochs`` below what the pretraining in ``out_dir`` has done:
    a larger budget extends it (``_Trainer`` resumes from ``last.pt``), a smaller one cannot undo epochs."""
    files = PretrainDir(out_dir)
    if files.last.is_file():
        _check_budget(files.last, int(read_checkpoint(files.last).get("epoch", -1)) + 1, cfg.vae.epochs)


def _check_budget(path: Path, trained: int, epochs: int) -> None:
    if trained > epochs:
        raise PretrainMismatchError(
            f"{path} has trained {trained} epochs, more than vae.epochs={epochs}; a pretraining can be "
            f"extended, not shortened: ask for at least {trained}, or use another run_dir"
        )


def swap_starts(dataset: FrameDataset, heldout: bool) -> np.ndarray:
    """Indices of the first frames of the dataset's complete factor swaps in one split (``rig.data``)."""
    roles, episodes = dataset.swap_role, dataset.episodes
    first = np.flatnonzero((roles == SWAP_ROLES[0]) & (dataset.heldout == heldout))
    first = first[first + 2 < len(roles)]
    complete = (roles[first + 1] == SWAP_ROLES[1]) & (roles[first + 2] == SWAP_ROLES[2])
    same_episode = (episodes[first + 2] == episodes[first]) & (dataset.context_index[first] < first)
    return first[complete & same_episode]


def check_balance_swaps(dataset: FrameDataset) -> None:
    """Raise unless every swap in ``dataset`` records its factors, and splits an env's two factors."""
    first = dataset.swap_factors[dataset.swap_role == SWAP_ROLES[0]]
    if not np.isin(first, (1, 2)).all():
        reason = (
            "was collected before swaps recorded which factors they took"
            if not first.any()
            else "comes from an env with more than two state factors"
        )
        raise ConfigError(
            f"vae.balance_weight compares the moves of an env's two state factors, and {dataset.origin} "
            f"{reason}: collect the frames again into a new run_dir"
        )


def swap_losses(
    rep: RepresentationModule,
    start: torch.Tensor,
    first_part: torch.Tensor,
    other_part: torch.Tensor,
    both: torch.Tensor,
    contexts: torch.Tensor | None = None,
    first_takes_first_factor: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The factor swaps' losses on the z posterior means, mean over swaps; with s00 the start, s' the state
    both parts come from, a = mu(first) - mu(s00) and b = mu(other) - mu(s00) the parts' moves:

    - ``additivity``: ||mu(s') - mu(s00) - a - b||^2 / ||mu(s') - mu(s00)||^2, 0 for a code that moves by
      the sum of the parts' moves (``rig.reward_geometry`` measures the same of the latent the agent sees);
    - ``orthogonality``: the squared cosine of a and b, 0 when the parts move z in orthogonal directions,
      1 when they move it along one line, whatever the lengths of the moves: shrinking one part's moves
      does not lower it. (A length-weighted form, (2 a.b / (|a|^2 + |b|^2))^2, was lowered that way: it
      shrank the object's moves to 3% of the latent distance.) Each |a|^2 and |b|^2 has 1% of the swaps'
      mean squared move added, so that a part that hardly moved in a swap does not dominate the gradient.

    - ``balance``, given ``first_takes_first_factor`` (bool per swap: whether the first part is the one
      holding the env's first state factor, for an env with two): (log m1 - log m2)^2, with m1 the mean
      squared move over the swaps of the part holding the first factor and m2 the other's. 0 when each
      factor moves the latent by as much on average, so that the latent distance weighs them alike.

    For an additive code with orthogonal parts the latent distance splits between the parts as the sum of
    their squared moves, a reward interaction of 1. The losses are scale-free. ``contexts`` are the
    CC-VAE's context frames.
    """
    context = contexts if rep.context_dim else None
    mus = [rep.encode(x, context=context)[:, : rep.z_dim] for x in (start, first_part, other_part, both)]
    first, other, whole = mus[1] - mus[0], mus[2] - mus[0], mus[3] - mus[0]
    residual = whole - first - other
    additivity = residual.pow(2).sum(dim=1) / (whole.pow(2).sum(dim=1) + 1e-6)
    lengths = first.pow(2).sum(dim=1), other.pow(2).sum(dim=1)
    floor = 0.01 * (lengths[0] + lengths[1]).mean().detach() / 2 + 1e-12
    cosine_squared = (first * other).sum(dim=1).pow(2) / ((lengths[0] + floor) * (lengths[1] + floor))
    losses = {"additivity": additivity.mean(), "orthogonality": cosine_squared.mean()}
    if first_takes_first_factor is not None:
        takes = first_takes_first_factor[:, None]
        one, two = torch.where(takes, first, other), torch.where(takes, other, first)
        ratio = (one.pow(2).sum(dim=1).mean() + 1e-12) / (two.pow(2).sum(dim=1).mean() + 1e-12)
        losses["balance"] = torch.log(ratio).pow(2)
    return losses


class _Batch(NamedTuple):
    images: torch.Tensor
    contexts: torch.Tensor | None
    """the frames' context images, for the CC-VAE"""
    targets: torch.Tensor | None
    """the frames' true states, for a representation that regresses them (``output_kind`` "state")"""


class _Trainer:
    """The epoch loop with its checkpoints and logs; one instance per pretraining run."""

    def __init__(
        self,
        cfg: Config,
        model: RepresentationModule,
        dataset: FrameDataset,
        out_dir: Path,
        device: torch.device,
    ) -> None:
        self.cfg, self.model, self.files, self.device = cfg, model, PretrainDir(out_dir), device
        self.inverse = self._inverse_model(dataset)
        trained = [*model.parameters(), *(self.inverse.parameters() if self.inverse is not None else ())]
        self.optimizer = torch.optim.Adam(trained, lr=cfg.vae.lr)
        frames = torch.from_numpy(dataset.images).to(device)
        self.frames = frames.permute(0, 3, 1, 2).contiguous()  # uint8 on the device: 4x less than float
        self.context_index = torch.from_numpy(dataset.context_index).to(device)
        self.states = torch.from_numpy(dataset.states).to(device)
        self.train_index = torch.from_numpy(dataset.split(heldout=False)).to(device)
        self.heldout_index = torch.from_numpy(dataset.split(heldout=True)).to(device)
        self.swaps = {
            heldout: torch.from_numpy(swap_starts(dataset, heldout)).to(device) for heldout in (False, True)
        }
        if self.swap_weights and not len(self.swaps[False]):
            raise ConfigError(
                f"vae.additivity_weight, orthogonality_weight and balance_weight train on factor swaps, and "
                f"{dataset.origin} holds none in training: collect with data.factor_swaps > 0"
            )
        self.swap_factors = torch.from_numpy(dataset.swap_factors.astype(np.int64)).to(device)
        if cfg.vae.balance_weight > 0:
            check_balance_swaps(dataset)
        self.pairs = {
            heldout: torch.from_numpy(acted_pairs(dataset, heldout)).to(device) for heldout in (False, True)
        }
        self.actions = torch.from_numpy(dataset.actions).to(device)
        variance = action_variance(dataset) if self.inverse is not None else None
        self.action_var = torch.from_numpy(variance).to(device) if variance is not None else None
        self.fingerprint = fingerprint(cfg, len(dataset), dataset.meta)
        self.history: list[dict[str, float]] = []
        self.start_epoch, self.best_loss, self.train_seconds, self.images_seen = 0, math.inf, 0.0, 0
        self._resume()

    def fit(self, progress: bool, on_epoch: EpochHook | None = None) -> None:
        resume_from = self.start_epoch - 1 if self.start_epoch > 0 else None
        csv_format = ProgressCSV(self.files.progress, resume_from, step_key="epoch")
        log = make_logger(self.files.tensorboard, csv_format, tensorboard_prefix="pretrain/")
        epochs = range(self.start_epoch, self.cfg.vae.epochs)
        try:
            for epoch in tqdm(
                epochs,
                desc="pretrain",
                unit="epoch",
                disable=not progress,
                initial=self.start_epoch,
                total=self.cfg.vae.epochs,
            ):
                row = {"epoch": float(epoch), **self._train_epoch(epoch), **self._heldout_metrics()}
                self.history.append(row)
                for key, value in row.items():
                    log.record(key, value, exclude="tensorboard" if key == "epoch" else None)
                log.dump(epoch)
                self._save(epoch, row["heldout/loss"])
                if on_epoch is not None:
                    on_epoch(epoch, self.model, row["heldout/loss"])
        finally:
            log.close()

    def summary(self) -> dict[str, float | str]:
        rate = self.images_seen / self.train_seconds if self.train_seconds else float("nan")
        return {
            "epochs": float(len(self.history)),
            "train_seconds": self.train_seconds,
            "images_per_second": rate,
            "best_heldout_loss": self.best_loss,
            "device": str(self.device),
        }

    def _batch(self, index: torch.Tensor) -> _Batch:
        images = self.frames[index].float().div_(255.0)
        contexts = None
        if self.cfg.vae.kind == "cc_vae":
            contexts = self.frames[self.context_index[index]].float().div_(255.0)
        targets = self.states[index] if self.model.output_kind == "state" else None
        return _Batch(images, contexts, targets)

    def _loss(self, batch: _Batch, kl_weight: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
        return self.model.loss(batch.images, batch.contexts, kl_weight=kl_weight, targets=batch.targets)

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        self.model.train()
        generator = torch.Generator(device="cpu").manual_seed(self.cfg.seed * 100_003 + epoch)
        order = self.train_index[torch.randperm(len(self.train_index), generator=generator).to(self.device)]
        totals: dict[str, float] = defaultdict(float)
        kl_weight = self.kl_weight(epoch)
        weights = self.swap_weights
        swaps_per_batch = max(1, self.cfg.vae.batch_size // 4)
        start = time.perf_counter()
        for batch_number, index in enumerate(order.split(self.cfg.vae.batch_size)):
            loss, metrics = self._loss(self._batch(index), kl_weight)
            if weights:
                drawn = torch.randint(len(self.swaps[False]), (swaps_per_batch,), generator=generator)
                terms = self._swap_losses(self.swaps[False][drawn.to(self.device)])
                for name, weight in weights.items():
                    loss = loss + weight * terms[name]
                    metrics[name] = float(terms[name].detach())
            if self.inverse is not None:
                drawn = torch.randint(len(self.pairs[False]), (swaps_per_batch,), generator=generator)
                term = self._inverse_loss(self.pairs[False][drawn.to(self.device)])
                loss = loss + self.cfg.vae.inverse_weight * term
                metrics["inverse"] = float(term.detach())
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"pretraining loss became {loss.item()} at epoch {epoch}, batch {batch_number}; "
                    f"{self.files.last} keeps the last good epoch. Try a lower vae.lr or vae.beta."
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            for key, value in metrics.items():
                totals[key] += value * len(index)
        self.train_seconds += time.perf_counter() - start
        self.images_seen += len(order)
        return {
            "train/kl_weight": kl_weight,
            **{f"train/{key}": value / len(order) for key, value in totals.items()},
        }

    def kl_weight(self, epoch: int) -> float:
        """The share of beta that ``epoch`` trains with: a linear warm-up, then 1.

        Held-out metrics, and so the choice of ``best.pt``, always use the full beta.
        """
        warmup = self.cfg.vae.kl_warmup_epochs
        return min(1.0, (epoch + 1) / warmup) if warmup > 0 else 1.0

    @property
    def swap_weights(self) -> dict[str, float]:
        """The factor swaps' losses that train, by ``swap_losses`` name, with their weights."""
        weights = {
            "additivity": self.cfg.vae.additivity_weight,
            "orthogonality": self.cfg.vae.orthogonality_weight,
            "balance": self.cfg.vae.balance_weight,
        }
        return {name: weight for name, weight in weights.items() if weight > 0}

    def _inverse_model(self, dataset: FrameDataset) -> InverseModel | None:
        """The inverse model that ``vae.inverse_weight`` trains with the representation, or None."""
        if self.cfg.vae.inverse_weight == 0:
            return None
        check_inverse_frames(dataset)
        return InverseModel(self.model.z_dim, dataset.actions.shape[1]).to(self.device)

    def _inverse_loss(self, after: torch.Tensor) -> torch.Tensor:
        """``inverse_loss`` of the pairs of frames (after - 1, after), which share their context."""
        assert self.inverse is not None and self.action_var is not None
        z_before, z_after = (self._z_means(index) for index in (after - 1, after))
        return inverse_loss(self.inverse(z_before, z_after), self.actions[after], self.action_var)

    def _z_means(self, index: torch.Tensor) -> torch.Tensor:
        """The z posterior means of the frames ``index`` (the CC-VAE's without the context c)."""
        batch = self._batch(index)
        return self.model.encode(batch.images, context=batch.contexts)[:, : self.model.z_dim]

    def _swap_losses(self, starts: torch.Tensor) -> dict[str, torch.Tensor]:
        """``swap_losses`` of the factor swaps beginning at frames ``starts``; their start is the episode's
        reset frame, which is also the CC-VAE's context."""
        start = self._batch(self.context_index[starts]).images
        first, other, both = (self._batch(starts + offset).images for offset in (0, 1, 2))
        takes = (self.swap_factors[starts] & 1) > 0 if self.cfg.vae.balance_weight > 0 else None
        return swap_losses(
            self.model, start, first, other, both, contexts=start, first_takes_first_factor=takes
        )

    @torch.no_grad()
    def _heldout_metrics(self) -> dict[str, float]:
        """The held-out loss that picks ``best.pt`` (the VAE's own, without the swap and inverse losses) and
        its parts; with a swap loss on, the swap losses on the held-out swaps too, and with the inverse
        model, its loss on the held-out pairs of frames."""
        self.model.eval()
        totals: dict[str, float] = defaultdict(float)
        for index in self.heldout_index.split(512):
            _, metrics = self._loss(self._batch(index))
            for key, value in metrics.items():
                totals[key] += value * len(index)
        heldout = {f"heldout/{key}": value / len(self.heldout_index) for key, value in totals.items()}
        swaps = self.swaps[True]
        if self.swap_weights and len(swaps):
            sums: dict[str, float] = defaultdict(float)
            for starts in swaps.split(512):
                for name, term in self._swap_losses(starts).items():
                    sums[name] += float(term) * len(starts)
            heldout.update({f"heldout/{name}": value / len(swaps) for name, value in sums.items()})
        pairs = self.pairs[True]
        if self.inverse is not None and len(pairs):
            total = sum(float(self._inverse_loss(after)) * len(after) for after in pairs.split(512))
            heldout["heldout/inverse"] = total / len(pairs)
        return heldout

    def _save(self, epoch: int, heldout_loss: float) -> None:
        if heldout_loss < self.best_loss:
            self.best_loss = heldout_loss
            save_representation(self.files.best, self.model, {"epoch": epoch, "heldout_loss": heldout_loss})
        # last.pt is a representation checkpoint too, with what resuming needs on top.
        progress = {
            "optimizer": self.optimizer.state_dict(),
            "epoch": epoch,
            "best_loss": self.best_loss,
            "history": self.history,
            "train_seconds": self.train_seconds,
            "images_seen": self.images_seen,
            "fingerprint": self.fingerprint,
            "torch_rng": torch.get_rng_state(),
            **({"inverse_model": self.inverse.state_dict()} if self.inverse is not None else {}),
        }
        save_representation(self.files.last, self.model, progress)

    def _resume(self) -> None:
        path = self.files.last
        if not path.exists():
            return
        state = read_checkpoint(path, map_location=self.device)
        if state.get("fingerprint") != self.fingerprint:
            raise PretrainMismatchError(
                f"{path} belongs to a pretraining run with other settings or data, which is kept; "
                "choose another run_dir"
            )
        trained = int(state["epoch"]) + 1
        _check_budget(path, trained, self.cfg.vae.epochs)
        load_state_checked(self.model, state["state_dict"])
        if self.inverse is not None:
            self.inverse.load_state_dict(state["inverse_model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.start_epoch = trained
        self.best_loss = float(state["best_loss"])
        self.history = list(state["history"])
        self.train_seconds = float(state["train_seconds"])
        self.images_seen = int(state["images_seen"])
        torch.set_rng_state(state["torch_rng"].cpu())
