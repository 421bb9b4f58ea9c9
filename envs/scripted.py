"""A scripted pushing controller: go behind the object, then push it along the line to its goal.

It reads the true state, so it is a sanity check of the physics and the goal API and a
source of purposeful frames, not a learning baseline.
"""

from __future__ import annotations

import numpy as np

from envs.push import HAND_RADIUS, PushEnv

Array = np.ndarray


def scripted_action(env: PushEnv, margin: float = 0.01, aligned: float = 0.012) -> Array:
    """The action that moves the hand one step along the push plan for ``env``'s current goal."""
    state, goal = env.state, env.goal
    hand, puck, puck_goal = state[:2], state[2:], goal[2:]
    to_goal = puck_goal - puck
    if np.linalg.norm(to_goal) < 0.5 * env.success_threshold:
        target = goal[:2] if np.linalg.norm(goal[:2] - puck) > 0.08 else hand
        return _toward(hand, target, env.action_scale)
    direction = to_goal / np.linalg.norm(to_goal)
    contact = HAND_RADIUS + env.appearance.radius
    relative = hand - puck
    along = float(relative @ direction)
    lateral = relative - along * direction
    behind = puck - direction * (contact + margin)
    if along > -0.5 * contact:
        # In front of or beside the object: step around it on the side the hand is already on.
        side = (
            lateral / max(np.linalg.norm(lateral), 1e-6)
            if np.linalg.norm(lateral) > 1e-6
            else _normal(direction)
        )
        target = puck + side * (contact + 2 * margin) - direction * contact
    elif np.linalg.norm(hand - behind) > aligned and np.linalg.norm(lateral) > aligned:
        target = behind
    else:
        target = puck_goal - direction * (contact - margin)
    return _toward(hand, target, env.action_scale)


def _toward(position: Array, target: Array, scale: float) -> Array:
    return np.clip((target - position) / scale, -1.0, 1.0).astype(np.float32)


def _normal(direction: Array) -> Array:
    return np.array([-direction[1], direction[0]])
