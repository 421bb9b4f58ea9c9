"""Scripted controllers that read the true state: a pusher and a door opener.

The pusher goes behind the object, then pushes it along the line to its goal. The door opener pushes the
door's handle round to the goal angle, from the front to open it and from the back to close it, going
round the door's free end when the hand is on the wrong side, then moves the hand to its goal.
They are sanity checks of the physics and the goal API and sources of purposeful frames, not learning
baselines.
"""

from __future__ import annotations

import numpy as np

from envs.door import CONTACT_DISTANCE, DOOR_LENGTH, DoorEnv, door_frame, from_door_frame
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


PUSH_RADIUS = 0.16
"""where along the door (m from the hinge) the hand pushes: on the handle"""
MAX_SWING = 0.15
"""the largest angle (rad) the door opener asks of one step, about one step of the hand at the handle"""


def scripted_door_action(env: DoorEnv, tolerance: float = 0.03, margin: float = 0.008) -> Array:
    """The action that moves the hand one step along the door plan for ``env``'s current goal.

    ``tolerance`` is the angle error (rad) left before the hand heads for its own goal; ``margin`` the
    gap (m) the hand keeps from the door while it moves round it.
    """
    hand, angle = env.hand, env.angle
    goal_hand, goal_angle = env.goal[:2], float(env.goal[2])
    error = goal_angle - angle
    if abs(error) < tolerance:
        # Hand goals lie in front of the door (across < 0 at every angle).
        target = _round_door(hand, angle, goal_hand, side=-1.0, margin=margin)
    else:
        # Opening turns the door towards its back, so the hand pushes from the front, and vice versa.
        side = -1.0 if error > 0 else 1.0
        target = _door_push_target(hand, angle, goal_angle, side, margin)
    return _toward(hand, target, env.action_scale)


def _door_push_target(hand: Array, angle: float, goal_angle: float, side: float, margin: float) -> Array:
    along, across = door_frame(hand, angle)
    stand_off = CONTACT_DISTANCE + margin
    if abs(along - PUSH_RADIUS) > 0.02 or not 0.0 < side * across < stand_off + 0.01:
        return _round_door(
            hand, angle, from_door_frame(np.array([PUSH_RADIUS, side * stand_off]), angle), side, margin
        )
    # In place at the handle: ask for the contact point as it will be after a swing towards the goal,
    # pressed a little into the door so that the door follows the hand.
    swing = min(MAX_SWING, abs(goal_angle - angle))
    next_angle = angle - side * swing
    return from_door_frame(np.array([PUSH_RADIUS, side * (CONTACT_DISTANCE - 0.003)]), next_angle)


def _round_door(hand: Array, angle: float, target: Array, side: float, margin: float) -> Array:
    """``target`` if the hand is on the door's ``side`` (-1 front, +1 back), else a waypoint round its end."""
    along, across = door_frame(hand, angle)
    if side * across > 0.0:
        return target
    beyond_end = DOOR_LENGTH + CONTACT_DISTANCE + margin
    stand_off = CONTACT_DISTANCE + margin
    if along < beyond_end:  # alongside the door: slide out past its free end on the side the hand is on
        return from_door_frame(np.array([beyond_end + 0.01, -side * stand_off]), angle)
    return from_door_frame(np.array([beyond_end + 0.01, side * stand_off]), angle)


def _toward(position: Array, target: Array, scale: float) -> Array:
    return np.clip((target - position) / scale, -1.0, 1.0).astype(np.float32)


def _normal(direction: Array) -> Array:
    return np.array([-direction[1], direction[0]])
