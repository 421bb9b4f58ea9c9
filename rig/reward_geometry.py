"""What the latent reward pays for each part of a pushing task, measured on teleported scenes.

The agent is rewarded with -||e(s) - e(g)||, so what it learns to do depends on how that distance splits
between moving the hand and moving the object. For a real goal g and the episode's reset scene s0, four
scenes are encoded, all under the episode's context (CC-VAE):

- ``start``: s0 itself;
- ``hand``: the hand at its goal, the object where it started;
- ``object``: the object at its goal, the hand where it started;
- ``both``: hand and object at the goal, which is the goal image, so its distance is 0.

The share of a part is 1 - d(scene) / d(start): how much of the distance moving only that part removes.
The same shares of the true state distance say what they should be. For a code in which hand and object
move the latent along orthogonal directions, as they move the true state, (1 - hand share)^2 +
(1 - object share)^2 is 1 (``part_interaction``). Above 1, moving one part alone leaves more of the
distance than that: each part's code depends on where the other is, and the reward pays for a part only
once the other is in place.

The default VAE on ``rig/Push-v0`` scores about 1.0, and its agent learns; the multi-colour VAEs scored
1.2 to 1.3 and their agents did not (README, CC-RIG).

Two numbers say where an interaction comes from (``displacement_geometry``). With h = e(hand) - e(start)
and o = e(object) - e(start), the latent moves of each part alone:

- ``part_nonadditivity``: ||e(both) - e(start) - h - o|| / ||e(both) - e(start)||, 0 when moving both
  parts moves the latent by the sum of the parts' moves, whatever the other part's place;
- ``part_cosine``: the cosine of the angle between h and o, 0 for orthogonal parts as in the true state.
  For additive parts the interaction is 1 / (1 + 2 cos |h| |o| / (|h|^2 + |o|^2)): parts whose moves
  point against each other (cosine below 0) leave more of the distance than their share, and push the
  interaction above 1 without any dependence of one part's code on the other's place.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rig.config import EnvConfig, Palette, RewardScale
from rig.latent_env import GoalMode, LatentGoalEnv, make_latent_env
from rig.representation import RepresentationModule, images_to_tensor

Array = np.ndarray
PARTS = ("hand", "object", "both")
MARGIN = 1e-3
"""Scenes with hand and object closer than the contact distance plus this (m) are skipped."""


def encode_scene(env: LatentGoalEnv, context: Array, hand: Array, puck: Array) -> Array:
    """The latent of the scene with hand and object teleported to ``hand`` and ``puck``, under ``context``."""
    env.push.set_state(hand, puck)
    frame = env.push.render()
    if frame is None:
        raise ValueError("measuring reward geometry needs an env that renders")
    rep = env.representation
    with torch.inference_mode():
        contexts = images_to_tensor(context, env.device) if rep.context_dim else None
        latent = rep.encode(images_to_tensor(frame, env.device), context=contexts)
    return latent[0].cpu().numpy()


def weighted(env: LatentGoalEnv, latent: Array) -> Array:
    """``latent`` in the units of the env's reward (``agent.reward_scale``), whose plain norm it pays."""
    return latent if env.reward_weights is None else latent * env.reward_weights


def reward_part_shares(
    env_cfg: EnvConfig,
    rep: RepresentationModule,
    palette: Palette,
    goals: int,
    seed: int,
    reward_scale: RewardScale = "none",
) -> dict[str, Array]:
    """Per goal (episodes seeded ``seed`` onwards), the share of the distance removed by each part.

    Keys are ``latent_<part>`` and ``true_<part>`` for the parts in ``PARTS``. Goals whose scenes would
    put hand and object on top of each other are skipped, so the arrays can be shorter than ``goals``.
    Latents are measured in the units of the reward ``reward_scale`` makes (``rig.latent_env``).
    """
    if rep.input_kind != "image":
        raise ValueError("reward geometry is measured on image representations")
    env = make_latent_env(env_cfg, rep, GoalMode.EVAL, seed, palette, reward_scale=reward_scale)
    shares: dict[str, list[float]] = {f"{kind}_{part}": [] for kind in ("latent", "true") for part in PARTS}
    shares.update({key: [] for key in GEOMETRY})
    try:
        for index in range(goals):
            env.reset(seed=seed + index)
            goal, start = env.push.goal.copy(), env.push.state.copy()
            scenes = {
                "start": start,
                "hand": np.r_[goal[:2], start[2:]],
                "object": np.r_[start[:2], goal[2:]],
                "both": goal,
            }
            overlap = env.push.contact_distance + MARGIN
            if any(np.linalg.norm(state[:2] - state[2:]) < overlap for state in scenes.values()):
                continue
            context = env.push.render()
            assert context is not None
            latent = {
                name: weighted(env, encode_scene(env, context, state[:2], state[2:]))
                for name, state in scenes.items()
            }
            latent_goal = weighted(env, env.latent_goal)
            latent_start = np.linalg.norm(latent["start"] - latent_goal)
            true_start = np.linalg.norm(start - goal)
            moves = displacement_geometry(latent["start"], latent["hand"], latent["object"], latent["both"])
            for key, value in moves.items():
                shares[key].append(value)
            for part in PARTS:
                latent_left = np.linalg.norm(latent[part] - latent_goal) / latent_start
                shares[f"latent_{part}"].append(float(1 - latent_left))
                shares[f"true_{part}"].append(float(1 - np.linalg.norm(scenes[part] - goal) / true_start))
    finally:
        env.close()
    return {key: np.asarray(values, dtype=np.float64) for key, values in shares.items()}


GEOMETRY = ("part_cosine", "part_nonadditivity")
"""what ``displacement_geometry`` measures per goal"""


def displacement_geometry(start: Array, hand: Array, moved_object: Array, both: Array) -> dict[str, float]:
    """The cosine between the latent moves of hand and object alone, and how far moving both departs from
    their sum, relative to the whole move (the module's docstring); from the four scenes' latents."""
    hand_move, object_move, whole = hand - start, moved_object - start, both - start
    norms = np.linalg.norm(hand_move) * np.linalg.norm(object_move)
    cosine = float(hand_move @ object_move / norms) if norms > 0 else 0.0
    residual = np.linalg.norm(whole - hand_move - object_move)
    scale = np.linalg.norm(whole)
    return {"part_cosine": cosine, "part_nonadditivity": float(residual / scale) if scale > 0 else 0.0}


def part_interaction(shares: dict[str, Array]) -> Array:
    """Per goal, (1 - hand share)^2 + (1 - object share)^2 of the latent distance; 1 for additive parts."""
    return (1 - shares["latent_hand"]) ** 2 + (1 - shares["latent_object"]) ** 2


RESOLUTION_RADII = (0.01, 0.02, 0.04)
"""how far (m) ``near_goal_distances`` moves one part from its goal"""


def near_goal_distances(
    env_cfg: EnvConfig,
    rep: RepresentationModule,
    palette: Palette,
    goals: int,
    seed: int,
    radii: tuple[float, ...] = RESOLUTION_RADII,
    directions: int = 8,
    reward_scale: RewardScale = "none",
) -> dict[str, Array]:
    """How the latent reward pays for the last centimetres, per goal (episodes seeded ``seed`` onwards).

    From the goal scene, one part (``hand`` or ``object``) is moved ``r`` from its goal in ``directions``
    directions evenly spaced from a random angle, the other part kept at its goal. Keys ``<part>_<r>``
    hold the latent distances to the goal image's latent, (goals, directions), NaN where the scene would
    overlap the parts or leave the table; ``start`` and ``true_start`` hold each goal's latent and true
    distance from its reset scene, (goals, 1), the scale of the whole task's reward. A reward that
    resolves the last centimetres has distances that grow with ``r`` (compare ``ranked_above``), and pays
    for each part about what the true distance does. Latent distances are the ones the reward of
    ``reward_scale`` pays.
    """
    if rep.input_kind != "image":
        raise ValueError("reward geometry is measured on image representations")
    env = make_latent_env(env_cfg, rep, GoalMode.EVAL, seed, palette, reward_scale=reward_scale)
    rng = np.random.default_rng(seed)
    parts = {"hand": slice(0, 2), "object": slice(2, 4)}
    distances: dict[str, list[list[float]]] = {f"{part}_{r:g}": [] for part in parts for r in radii}
    distances["start"], distances["true_start"] = [], []
    try:
        for index in range(goals):
            env.reset(seed=seed + index)
            goal, start = env.push.goal.copy(), env.push.state.copy()
            context = env.push.render()
            assert context is not None
            latent_start = encode_scene(env, context, start[:2], start[2:])
            distances["start"].append([float(env.reward_distance(latent_start, env.latent_goal))])
            distances["true_start"].append([float(np.linalg.norm(start - goal))])
            offset = rng.uniform(0, 2 * np.pi)
            angles = offset + 2 * np.pi * np.arange(directions) / directions
            steps = np.stack([np.cos(angles), np.sin(angles)], axis=1)
            for part, where in parts.items():
                for r in radii:
                    row = []
                    for step in steps:
                        scene = goal.copy()
                        scene[where] += r * step
                        try:
                            latent = encode_scene(env, context, scene[:2], scene[2:])
                        except ValueError:  # the parts overlap, or the object is off the table
                            row.append(np.nan)
                            continue
                        row.append(float(env.reward_distance(latent, env.latent_goal)))
                    distances[f"{part}_{r:g}"].append(row)
    finally:
        env.close()
    return {key: np.asarray(values, dtype=np.float64) for key, values in distances.items()}


def ranked_above(farther: Array, nearer: Array) -> float:
    """The chance that a scene moved farther from the goal is paid less (a larger latent distance) than one
    moved less far from the same goal: pairs within each goal (rows), NaNs left out; 0.5 is chance."""
    wins, pairs = 0.0, 0
    for far, near in zip(farther, nearer, strict=True):
        far, near = far[np.isfinite(far)], near[np.isfinite(near)]
        difference = far[:, None] - near[None, :]
        wins += float((difference > 0).sum() + 0.5 * (difference == 0).sum())
        pairs += difference.size
    return wins / pairs if pairs else float("nan")


def reward_geometry_metrics(
    env_cfg: EnvConfig, rep: RepresentationModule, palette: Palette, goals: int = 100, seed: int = 10_000
) -> dict[str, Any]:
    """Means over goals of the shares and of ``part_interaction``, JSON-ready."""
    shares = reward_part_shares(env_cfg, rep, palette, goals, seed)
    if not len(shares["latent_both"]):
        raise ValueError(f"none of the {goals} goals from seed {seed} could be measured")
    metrics: dict[str, Any] = {key: float(values.mean()) for key, values in shares.items()}
    metrics["part_interaction"] = float(part_interaction(shares).mean())
    metrics["goals"] = len(shares["latent_both"])
    return metrics
