"""Online representation learning: the VAE trains on the agent's own frames during RL (online RIG, Skew-Fit).

Three parts, used by ``rig.agent.train`` when ``online.enabled`` is set:

- ``FrameReplayBuffer``: the imagined-goal replay buffer, plus each transition's next frame (uint8) and true
  state, and each episode's first frame and goal image, so every stored latent can be recomputed;
- ``OnlineVAE``: the VAE's optimiser and schedule in env steps. Each update draws a pool of stored frames
  uniformly, scores them with the importance-sampled log p(x) (``rig.skew``) and trains on batches drawn
  from the pool with weights p(x)^alpha (sampling-importance-resampling: scoring every stored frame at each
  update would cost more decoder passes than the training itself on a CPU). Then it re-encodes every stored
  frame (observations, achieved goals and the episodes' goal images), refits the imagined-goal Gaussian to
  the pool's weighted latents, and hands the env a goal pool drawn from the pool with the same weights;
- ``OnlineRepresentationCallback``: runs the updates at the start of rollouts, when they are due.

Memory: a transition keeps one 48x48x3 frame (6,912 bytes) and a 4-float state next to SB3's latents, and
an episode of 50 steps two more frames, about 7.2 KB per transition, 0.72 GB for 100,000 transitions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

from rig import io
from rig.config import Config, EnvConfig
from rig.diagnostics.grids import reconstruction_grid
from rig.diagnostics.probes import linear_probe_r2
from rig.envs import make_env
from rig.errors import UNREADABLE_ERRORS, UserError, unreadable
from rig.goal_env import GoalEnvView
from rig.media import image_grid, save_png
from rig.relabel import ImaginedGoalReplayBuffer
from rig.representation import BetaVAE, images_to_tensor
from rig.rundir import AgentDir
from rig.skew import coverage_entropy, effective_sample_size, log_likelihood, skew_weights

ENCODE_BATCH = 1024
"""frames per encoder pass when the stored latents are refreshed"""
COVERAGE_BINS = 10
"""cells per side of the puck-position grid that goal coverage is measured on"""
PROBE_FRAMES = 400
"""teleported frames the online VAE's linear probes are measured on at each update (half fit, half test)"""


class NonFiniteOnlineLossError(UserError, RuntimeError):
    """The online VAE's loss became NaN or infinite."""


# ------------------------------------------------------------------------------ buffer
class FrameReplayBuffer(ImaginedGoalReplayBuffer):
    """``ImaginedGoalReplayBuffer`` that also keeps the frames behind every stored latent.

    The env must pass, in each step's ``info``: ``frame`` (the frame after the step, uint8 H x W x 3) and
    ``state`` (the true achieved state); and at an episode's first step ``start_frame`` (the reset frame)
    and ``goal_frame`` (the episode's goal image). ``LatentGoalEnv(frames_in_info=True)`` does.

    Args:
        image_size: side of the frames.
        state_dim: size of the true state kept per transition.
        Everything else is passed to ``ImaginedGoalReplayBuffer``.
    """

    def __init__(self, *args: Any, image_size: int = 48, state_dim: int = 4, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.next_frames = np.zeros((self.buffer_size, self.n_envs, image_size, image_size, 3), np.uint8)
        self.next_states = np.zeros((self.buffer_size, self.n_envs, state_dim), np.float32)
        # Keyed by (position, env) of the episode's first transition; an entry goes when that slot is reused.
        self.start_frames: dict[tuple[int, int], np.ndarray] = {}
        self.goal_frames: dict[tuple[int, int], np.ndarray] = {}

    def add(  # type: ignore[override]
        self,
        obs: dict[str, np.ndarray],
        next_obs: dict[str, np.ndarray],
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        for env_index, info in enumerate(infos):
            slot = (self.pos, env_index)
            self.start_frames.pop(slot, None)
            self.goal_frames.pop(slot, None)
            if self.pos == self._current_ep_start[env_index]:
                self.start_frames[slot] = _required(info, "start_frame").copy()
                self.goal_frames[slot] = _required(info, "goal_frame").copy()
            self.next_frames[self.pos, env_index] = _required(info, "frame")
            self.next_states[self.pos, env_index] = _required(info, "state")
        super().add(obs, next_obs, action, reward, done, infos)

    def __getstate__(self) -> dict[str, Any]:
        """SB3 pickles the buffer whole; only the frames stored so far are written, not the empty rest."""
        state = super().__getstate__()
        state["next_frames"] = self.next_frames[: self.stored()]
        state["next_states"] = self.next_states[: self.stored()]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        stored = len(state["next_frames"])
        for key in ("next_frames", "next_states"):
            full = np.zeros((state["buffer_size"], *state[key].shape[1:]), dtype=state[key].dtype)
            full[:stored] = state[key]
            state[key] = full
        super().__setstate__(state)

    def stored(self) -> int:
        """Transitions held per env."""
        return self.buffer_size if self.full else self.pos

    def draw_indices(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(positions, envs) of ``n`` stored transitions drawn uniformly with replacement."""
        stored = self.stored()
        if stored == 0:
            raise RuntimeError("the frame buffer is empty: no frame to train on yet")
        flat = rng.integers(0, stored * self.n_envs, size=n)
        return flat // self.n_envs, flat % self.n_envs

    def refresh_latents(self, encode: Callable[[np.ndarray], np.ndarray]) -> None:
        """Recompute every stored latent from its frame with ``encode`` (uint8 frames -> latents).

        Next observations and achieved goals come from the transitions' frames, observations from the
        previous transition's frame (the reset frame at an episode's start), and the desired goals of every
        transition from its episode's goal image.
        """
        stored = self.stored()
        if stored == 0:
            return
        for env_index in range(self.n_envs):
            next_latents = encode(self.next_frames[:stored, env_index])
            # Index 0 is an episode start until the buffer wraps, then its previous transition is the last.
            latents = np.roll(next_latents, 1, axis=0)
            starts = sorted(pos for pos, env in self.start_frames if env == env_index)
            goal_of_start = np.zeros((self.buffer_size, next_latents.shape[1]), dtype=np.float32)
            has_goal = np.zeros(self.buffer_size, dtype=bool)
            if starts:
                latents[starts] = encode(np.stack([self.start_frames[(pos, env_index)] for pos in starts]))
                goal_of_start[starts] = encode(
                    np.stack([self.goal_frames[(pos, env_index)] for pos in starts])
                )
                has_goal[starts] = True
            episode_starts = self.ep_start[:stored, env_index]
            with_goal = has_goal[episode_starts]
            desired = goal_of_start[episode_starts[with_goal]]
            for observations, values in (
                (self.observations, latents),
                (self.next_observations, next_latents),
            ):
                observations["observation"][:stored, env_index] = values
                observations["achieved_goal"][:stored, env_index] = values
                observations["desired_goal"][:stored, env_index][with_goal] = desired


def _required(info: dict[str, Any], key: str) -> np.ndarray:
    if key not in info:
        raise KeyError(
            f"FrameReplayBuffer needs info[{key!r}] from the env; "
            "make it with LatentGoalEnv(frames_in_info=True)"
        )
    return np.asarray(info[key])


# --------------------------------------------------------------------------- trainer
@dataclass
class GoalPool:
    """Exploration goals drawn from the buffer with the skew weights: latents, frames and true states."""

    latents: np.ndarray
    frames: np.ndarray
    states: np.ndarray


def probe_frames(env_cfg: EnvConfig, n: int, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``n`` frames of random valid states (``sample_state``: on the pushers the hand anywhere in its box,
    the puck in the puck-goal box) and the states; None for an env that cannot teleport. They are made by
    teleporting, so they only measure the online VAE and never train it."""
    env = make_env(env_cfg, render=True)
    try:
        env.reset(seed=seed)
        view = GoalEnvView(env)
        if not view.teleports:
            return None
        frames: list[np.ndarray] = []
        states: list[np.ndarray] = []
        for _ in range(n):
            state = view.sample_state()
            view.set_to_state(state)
            frame = env.render()
            assert isinstance(frame, np.ndarray)
            frames.append(frame)
            states.append(state)
    finally:
        env.close()
    return np.stack(frames), np.stack(states).astype(np.float32)


@dataclass(frozen=True)
class StateLayout:
    """The parts of an env's state the online diagnostics measure."""

    factors: dict[str, slice]
    """named parts of the state, each probed from the latents (``state_factors``)"""
    coverage_dims: slice
    """the part whose spread over the goal pool is the goal coverage: the last factor (the pushers' puck)"""
    coverage_low: np.ndarray
    coverage_high: np.ndarray
    """the goal box of that part"""


def state_layout(env_cfg: EnvConfig) -> StateLayout:
    """The env's ``state_factors``, and its last factor's goal box for the coverage."""
    env = make_env(env_cfg, render=False)
    try:
        view = GoalEnvView(env)
        factors = view.state_factors()
        low, high = view.goal_box()
    finally:
        env.close()
    last = list(factors.values())[-1]
    return StateLayout(factors, last, low[last], high[last])


class OnlineVAE:
    """The online VAE's optimiser, schedule and random streams; ``update`` runs one scheduled update.

    ``probe`` (frames, true states), when given, is measured after every update: the linear probe R^2 of
    each part of the state (``StateLayout``; hand and puck on the pushers) from the latents, fitted on one
    half and tested on the other.
    """

    def __init__(
        self,
        cfg: Config,
        vae: BetaVAE,
        device: torch.device,
        probe: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        if not isinstance(vae, BetaVAE):
            raise TypeError(f"online training needs a beta-VAE, got {type(vae).__name__}")
        self.cfg, self.vae, self.device = cfg, vae, device
        self.optimizer = torch.optim.Adam(vae.parameters(), lr=cfg.vae.lr)
        self.rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 1]))
        self.generator = torch.Generator(device=device).manual_seed(int(cfg.seed) * 7919 + 17)
        self.updates = 0
        self.next_update = cfg.agent.learning_starts
        self.goal_pool: GoalPool | None = None
        self.probe = probe
        self.layout = state_layout(cfg.env)

    def due(self, env_steps: int) -> bool:
        return env_steps >= self.next_update

    def update(self, buffer: FrameReplayBuffer, env_steps: int) -> dict[str, float]:
        """Train on skew-weighted buffer frames, refresh the buffer's latents, refit the goals."""
        online = self.cfg.online
        positions, envs = buffer.draw_indices(online.skew_pool, self.rng)
        frames = buffer.next_frames[positions, envs]
        log_p = self._log_likelihood(frames)
        alpha = online.skew_alpha if env_steps >= online.skew_start_steps else 0.0
        weights = skew_weights(log_p, alpha, online.skew_cap)
        batches = online.first_batches if self.updates == 0 else online.batches
        losses = self._train(frames, weights, batches, env_steps)
        self.vae.eval()
        buffer.refresh_latents(self.encode)
        latents = self.encode(frames)
        self._fit_goal_prior(latents, weights)
        chosen = self.rng.choice(len(frames), size=online.goal_pool, p=weights)
        states = buffer.next_states[positions[chosen], envs[chosen]]
        self.goal_pool = GoalPool(latents[chosen], frames[chosen], states)
        self.updates += 1
        self.next_update = env_steps + online.update_every
        return {
            "online/vae_loss": float(np.mean(losses)),
            "online/vae_batches": float(batches),
            "online/log_p_mean": float(log_p.mean()),
            "online/skew_alpha": float(alpha),
            "online/effective_sample_share": effective_sample_size(weights) / len(weights),
            "online/goal_coverage_entropy": self.goal_coverage_entropy(),
            **self.probe_metrics(),
        }

    def probe_metrics(self) -> dict[str, float]:
        """Linear probe R^2 of each state part (hand and puck xy) on the probe frames (none without them)."""
        if self.probe is None:
            return {}
        frames, states = self.probe
        latents, half = self.encode(frames), len(frames) // 2
        return {
            f"online/probe_{part}_r2": linear_probe_r2(
                latents[:half], states[:half, dims], latents[half:], states[half:, dims]
            )
            for part, dims in self.layout.factors.items()
        }

    def goal_coverage_entropy(self) -> float:
        """Entropy (nats) of the goal pool's object positions (puck xy) on a grid over their goal box."""
        if self.goal_pool is None:
            return float("nan")
        layout = self.layout
        part = self.goal_pool.states[:, layout.coverage_dims]
        return coverage_entropy(part, layout.coverage_low, layout.coverage_high, COVERAGE_BINS)

    @torch.no_grad()
    def encode(self, frames: np.ndarray) -> np.ndarray:
        chunks = [
            self.vae.encode(images_to_tensor(frames[start : start + ENCODE_BATCH], self.device)).cpu().numpy()
            for start in range(0, len(frames), ENCODE_BATCH)
        ]
        return np.concatenate(chunks).astype(np.float32)

    def _log_likelihood(self, frames: np.ndarray) -> np.ndarray:
        self.vae.eval()
        chunks = [
            log_likelihood(
                self.vae,
                images_to_tensor(frames[start : start + ENCODE_BATCH], self.device),
                self.cfg.online.skew_samples,
                self.generator,
            )
            .cpu()
            .numpy()
            for start in range(0, len(frames), ENCODE_BATCH)
        ]
        return np.concatenate(chunks).astype(np.float64)

    def _train(self, frames: np.ndarray, weights: np.ndarray, batches: int, env_steps: int) -> list[float]:
        self.vae.train()
        losses = []
        for batch in range(batches):
            rows = self.rng.choice(len(frames), size=self.cfg.vae.batch_size, p=weights)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(self.rng.integers(2**31)))
                loss, _ = self.vae.loss(images_to_tensor(frames[rows], self.device))
            if not torch.isfinite(loss):
                raise NonFiniteOnlineLossError(
                    f"the online VAE's loss became {loss.item()} at env step {env_steps}, batch {batch}; "
                    "the last checkpoint keeps the run before this update. Try a lower vae.lr or vae.beta."
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            losses.append(float(loss.detach()))
        return losses

    def _fit_goal_prior(self, latents: np.ndarray, weights: np.ndarray) -> None:
        """Imagined goals (exploration before a pool exists, and prior relabelling) from the weighted fit."""
        mean = (weights[:, None] * latents).sum(axis=0)
        std = np.sqrt((weights[:, None] * np.square(latents - mean)).sum(axis=0))
        self.vae.set_goal_prior(mean.tolist(), np.maximum(std, 1e-6).tolist())

    def write_grids(self, agent_dir: AgentDir) -> None:
        """Probe frames above their reconstructions, and the goal pool's first frames, as PNGs."""
        if self.probe is not None:
            grid = reconstruction_grid(self.vae, self.probe[0], n=16, ncols=8)
            save_png(agent_dir.online_reconstructions, grid, scale=2)
        if self.goal_pool is not None:
            save_png(agent_dir.online_goal_pool, image_grid(self.goal_pool.frames[:32], 8), scale=2)

    # ----------------------------------------------------------------- checkpoints
    def state(self) -> dict[str, Any]:
        """Everything that resuming needs, as tensors, arrays and plain values."""
        pool = None
        if self.goal_pool is not None:
            pool = {
                "latents": self.goal_pool.latents,
                "frames": self.goal_pool.frames,
                "states": self.goal_pool.states,
            }
        return {
            "vae": {name: tensor.detach().cpu() for name, tensor in self.vae.state_dict().items()},
            "goal_prior": self.vae.goal_prior,
            "optimizer": self.optimizer.state_dict(),
            "rng": self.rng.bit_generator.state,
            "generator": self.generator.get_state(),
            "updates": self.updates,
            "next_update": self.next_update,
            "goal_pool": pool,
        }

    def save(self, path: Path) -> None:
        state = self.state()
        io.write_with(path, lambda handle: torch.save(state, handle))

    def load(self, path: Path) -> None:
        try:
            state = torch.load(path, map_location=self.device, weights_only=False)
            self.vae.load_state_dict(state["vae"])
            prior = state["goal_prior"]
            self.vae.set_goal_prior(*(prior if prior is not None else (None, None)))
            self.optimizer.load_state_dict(state["optimizer"])
            self.rng.bit_generator.state = state["rng"]
            self.generator.set_state(state["generator"].cpu())
            self.updates, self.next_update = int(state["updates"]), int(state["next_update"])
            pool = state["goal_pool"]
            self.goal_pool = (
                None if pool is None else GoalPool(pool["latents"], pool["frames"], pool["states"])
            )
        except UNREADABLE_ERRORS as error:
            raise unreadable(path, "the online VAE's state", error) from error
        self.vae.eval()


class OnlineRepresentationCallback(BaseCallback):
    """Runs ``OnlineVAE.update`` at the start of a rollout once it is due, and logs what it measured.

    Rollouts start after the previous step's transition is stored and its gradient step is done, so an
    update sees every frame so far; placed before ``PeriodicEvaluation``, a checkpoint taken at the same
    step holds the updated VAE and the refreshed buffer.
    """

    def __init__(self, trainer: OnlineVAE, agent_dir: AgentDir | None = None) -> None:
        super().__init__()
        self.trainer = trainer
        self.agent_dir = agent_dir

    def _on_training_start(self) -> None:
        self._send_goal_pool()

    def _on_training_end(self) -> None:
        if self.agent_dir is not None:
            self.trainer.write_grids(self.agent_dir)

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        if not self.trainer.due(self.num_timesteps):
            return
        buffer = getattr(self.model, "replay_buffer", None)
        assert isinstance(buffer, FrameReplayBuffer), "online training needs the FrameReplayBuffer"
        # On the agent loop's threads (rig.threads): the updates interleave with it, and a fixed count
        # keeps a resumed online run bit-identical.
        metrics = self.trainer.update(buffer, self.num_timesteps)
        for key, value in metrics.items():
            self.logger.record(key, value)
        self._send_goal_pool()

    def _send_goal_pool(self) -> None:
        pool = self.trainer.goal_pool
        if pool is not None:
            self.training_env.env_method("set_goal_pool", pool.latents, pool.frames)
