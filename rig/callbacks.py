"""SB3 callbacks of the train stage: a progress bar, the thread count that follows the machine's load, and
the periodic real-goal evaluation that also writes the checkpoints."""

from __future__ import annotations

import logging
from typing import Any

import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from tqdm import tqdm

from rig.checkpoints import save_checkpoint
from rig.config import Config
from rig.evaluate import EvalPoint, run_goal_episodes
from rig.latent_env import LatentGoalEnv
from rig.logger import EVAL_PREFIX
from rig.online import OnlineVAE
from rig.rundir import AgentDir
from rig.threads import AgentThreads

logger = logging.getLogger(__name__)
CURVE_ONLY = ("csv", "tensorboard")
"""Evaluation records that only the learning curve keeps: ``progress.csv`` and TensorBoard show the means."""


class ProgressBar(BaseCallback):
    """A tqdm bar over env steps; SB3's own needs ``rich``, which rig does not depend on."""

    def __init__(self, total_steps: int) -> None:
        super().__init__()
        self.total_steps = total_steps
        self.bar: tqdm[Any] | None = None

    def _on_training_start(self) -> None:
        self.bar = tqdm(total=self.total_steps, initial=self.num_timesteps, unit="step", dynamic_ncols=True)

    def _on_step(self) -> bool:
        assert self.bar is not None
        self.bar.update(self.num_timesteps - self.bar.n)
        return True

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.close()


class FollowFreeCpus(BaseCallback):
    """torch's threads for the agent loop, chosen again as other processes come and go (``rig.threads``);
    the count from before training is restored after it."""

    def __init__(self, threads: AgentThreads) -> None:
        super().__init__()
        self.threads = threads
        self.previous = 0

    def _on_training_start(self) -> None:
        self.previous = torch.get_num_threads()
        torch.set_num_threads(self.threads.check())  # also when a count restored after an earlier learn()

    def _on_step(self) -> bool:
        self.threads.check()
        return True

    def _on_training_end(self) -> None:
        if self.previous:
            torch.set_num_threads(self.previous)


class PeriodicEvaluation(BaseCallback):
    """Real-goal evaluation and a checkpoint every ``cfg.eval.every`` env steps and at the end.

    The first evaluation (of the untrained policy, step 0) happens when a fresh run starts. Later ones happen
    at the start of a rollout, when the last step's transition is in the replay buffer and its gradient step
    is done: a checkpoint's buffer holds as many transitions as its step count, and its agent is the one
    that ``train`` returns.
    """

    def __init__(
        self,
        cfg: Config,
        run: AgentDir,
        eval_env: LatentGoalEnv,
        curve: list[EvalPoint],
        online: OnlineVAE | None = None,
    ) -> None:
        super().__init__()
        self.cfg, self.run, self.eval_env, self.curve, self.online = cfg, run, eval_env, curve, online
        self.next_step = 0

    def _on_training_start(self) -> None:
        if not self.curve:
            self._evaluate()
        every = self.cfg.eval.every
        self.next_step = (self.num_timesteps // every + 1) * every

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        self._evaluate_and_checkpoint_when_due()

    def _on_training_end(self) -> None:
        # Training also ends when a callback stops it early; only a finished run gets its last checkpoint.
        if self.num_timesteps >= self.cfg.agent.total_steps:
            self._evaluate_and_checkpoint_when_due()

    def _evaluate_and_checkpoint_when_due(self) -> None:
        if self.num_timesteps < min(self.next_step, self.cfg.agent.total_steps):
            return
        self._evaluate()
        assert isinstance(self.model, OffPolicyAlgorithm)
        save_checkpoint(self.model, self.cfg, self.run, self.online)
        every = self.cfg.eval.every
        self.next_step = (self.num_timesteps // every + 1) * every

    def _evaluate(self) -> None:
        eval_cfg = self.cfg.eval
        result = run_goal_episodes(self.model, self.eval_env, eval_cfg.episodes, eval_cfg.seed)
        point = EvalPoint.from_result(self.num_timesteps, result)
        self.curve.append(point)
        plotted = (*point.metric_names, "success_rate")
        for name, value in point.row().items():  # rig.logger.EvalCurveCSV makes the curve from these
            if name != "steps":
                self.logger.record(f"{EVAL_PREFIX}{name}", value, None if name in plotted else CURVE_ONLY)
        self.logger.dump(self.num_timesteps)
        names = point.metric_names
        finals = ", ".join(f"{name.replace('_', ' ')} {point.values[name]:.3f}" for name in names)
        logger.info("step %d: final %s, success %.0f%%", point.steps, finals, 100 * point.success_rate)
