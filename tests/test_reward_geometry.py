"""The reward's split between hand and object, measured on teleported scenes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rig.config import EnvConfig, VAEConfig
from rig.pretrain import make_representation
from rig.reward_geometry import (
    displacement_geometry,
    part_interaction,
    reward_geometry_metrics,
    reward_part_shares,
)

MULTICOLOUR = EnvConfig(id="rig/PushMultiColor-v0")


@pytest.mark.parametrize("kind", ["beta_vae", "cc_vae"])
def test_moving_both_parts_to_the_goal_reaches_the_goal_images_latent(kind: str) -> None:
    torch.manual_seed(0)
    rep = make_representation(VAEConfig(kind=kind), 48).eval()
    shares = reward_part_shares(MULTICOLOUR, rep, "heldout", 30, 10_000)
    assert 0 < len(shares["latent_both"]) < 30  # goals whose half-way scenes would overlap are skipped
    # The teleported goal scene renders as the goal image, so moving both parts removes the whole distance.
    np.testing.assert_allclose(shares["latent_both"], 1.0, atol=1e-5)
    np.testing.assert_allclose(shares["true_both"], 1.0)
    # In the true state each part alone leaves the other's error: hand^2 + object^2 = start^2.
    true = {"latent_hand": shares["true_hand"], "latent_object": shares["true_object"]}
    np.testing.assert_allclose(part_interaction(true), 1.0, atol=1e-9)
    assert np.all(shares["true_hand"] > 0) and np.all(shares["true_object"] > 0)
    assert np.all(np.abs(shares["part_cosine"]) <= 1 + 1e-9) and np.all(shares["part_nonadditivity"] >= 0)
    assert len(shares["part_cosine"]) == len(shares["latent_both"])


def test_part_interaction_is_above_one_when_a_part_alone_removes_little() -> None:
    shares = {"latent_hand": np.array([0.0, 0.5]), "latent_object": np.array([0.0, 0.5])}
    np.testing.assert_allclose(part_interaction(shares), [2.0, 0.5])


def test_metrics_average_over_the_measured_goals() -> None:
    torch.manual_seed(0)
    rep = make_representation(VAEConfig(kind="beta_vae"), 48).eval()
    metrics = reward_geometry_metrics(EnvConfig(), rep, "train", goals=12, seed=3)
    shares = reward_part_shares(EnvConfig(), rep, "train", 12, 3)
    assert metrics["goals"] == len(shares["latent_hand"])
    assert metrics["latent_hand"] == pytest.approx(shares["latent_hand"].mean())
    assert metrics["part_interaction"] == pytest.approx(part_interaction(shares).mean())


def test_a_state_representation_is_refused() -> None:
    rep = make_representation(VAEConfig(kind="state"), 48)
    with pytest.raises(ValueError, match="image representations"):
        reward_part_shares(EnvConfig(), rep, "train", 5, 0)


def test_displacement_geometry_separates_opposed_parts_from_non_additive_ones() -> None:
    start = np.zeros(3)
    hand, moved = np.array([1.0, 0.0, 0.0]), np.array([0.0, 2.0, 0.0])
    orthogonal = displacement_geometry(start, hand, moved, hand + moved)
    assert orthogonal == pytest.approx({"part_cosine": 0.0, "part_nonadditivity": 0.0})
    # Additive but opposed: each part alone leaves more than its share, and the interaction says so.
    opposed_object = np.array([-1.0, 1.0, 0.0])
    opposed = displacement_geometry(start, hand, opposed_object, hand + opposed_object)
    assert opposed["part_cosine"] == pytest.approx(-np.sqrt(0.5)) and opposed["part_nonadditivity"] == 0
    whole = np.linalg.norm(hand + opposed_object)
    left = {"latent_hand": 1 - np.linalg.norm(opposed_object) / whole, "latent_object": 1 - 1 / whole}
    expected = 1 / (1 + 2 * opposed["part_cosine"] * np.sqrt(2) / 3)
    assert part_interaction({k: np.array([v]) for k, v in left.items()})[0] == pytest.approx(expected)
    # Moving both lands elsewhere than the sum of the moves: non-additive.
    bent = displacement_geometry(start, hand, moved, np.array([1.0, 2.0, 1.5]))
    assert bent["part_nonadditivity"] == pytest.approx(1.5 / np.linalg.norm([1.0, 2.0, 1.5]))
