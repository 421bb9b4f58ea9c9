"""The reward's split between hand and object, measured on teleported scenes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rig import reward_geometry
from rig.config import EnvConfig, VAEConfig
from rig.pretrain import make_representation
from rig.reward_geometry import (
    RESOLUTION_RADII,
    displacement_geometry,
    near_goal_distances,
    part_interaction,
    ranked_above,
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


def test_near_goal_distances_move_one_part_by_each_radius(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a code that is the true state (offset to the goal image's latent), every latent distance is the
    distance the part was moved, and scenes the env refuses are NaN."""

    def true_state(env, context, hand, puck):  # type: ignore[no-untyped-def]
        env.push.set_state(hand, puck)  # raises for overlapping parts and off-table objects, as encoding does
        return env.latent_goal + np.r_[hand, puck] - env.push.goal

    monkeypatch.setattr(reward_geometry, "encode_scene", true_state)
    rep = make_representation(VAEConfig(kind="beta_vae", z_dim=4), 48).eval()
    distances = near_goal_distances(EnvConfig(), rep, "train", goals=10, seed=5, directions=6)
    np.testing.assert_allclose(distances["start"], distances["true_start"], rtol=1e-5)
    for part in ("hand", "object"):
        for r in RESOLUTION_RADII:
            moved = distances[f"{part}_{r:g}"]
            assert moved.shape == (10, 6)
            measured = moved[np.isfinite(moved)]
            assert len(measured) > 30
            np.testing.assert_allclose(measured, r, rtol=1e-5)
    assert ranked_above(distances["object_0.04"], distances["object_0.02"]) == 1.0
    # Moving the hand 4 cm towards an object 7 cm away puts them in contact: such scenes are left out.
    assert np.isnan(distances["hand_0.04"]).any() or np.isnan(distances["object_0.04"]).any()


def test_reward_geometry_measures_the_reward_scaled_by_the_goal_std(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the true state as the code and a goal std of 0.5 on the object's dims, the scaled reward pays the
    object's centimetres twice what it pays the hand's, and the shares follow the weighted distance."""

    def true_state(env, context, hand, puck):  # type: ignore[no-untyped-def]
        env.push.set_state(hand, puck)
        return env.latent_goal + np.r_[hand, puck] - env.push.goal

    monkeypatch.setattr(reward_geometry, "encode_scene", true_state)
    rep = make_representation(VAEConfig(kind="beta_vae", z_dim=4), 48).eval()
    rep.set_goal_prior([0.0] * 4, [1.0, 1.0, 0.5, 0.5])
    scaled = near_goal_distances(EnvConfig(), rep, "train", 10, 5, directions=6, reward_scale="goal_std")
    for part, weight in (("hand", 1.0), ("object", 2.0)):
        measured = scaled[f"{part}_0.02"][np.isfinite(scaled[f"{part}_0.02"])]
        np.testing.assert_allclose(measured, 0.02 * weight, rtol=1e-5)
    plain = reward_part_shares(EnvConfig(), rep, "train", 12, 3)
    shares = reward_part_shares(EnvConfig(), rep, "train", 12, 3, reward_scale="goal_std")
    np.testing.assert_allclose(plain["latent_hand"], plain["true_hand"], rtol=1e-4)
    assert np.all(shares["latent_object"] > plain["latent_object"]) and np.all(shares["latent_hand"] < 1)
    np.testing.assert_allclose(shares["true_object"], plain["true_object"])


def test_ranked_above_counts_pairs_within_each_goal_and_ties_as_half() -> None:
    farther = np.array([[2.0, 3.0, np.nan], [1.0, 1.0, 1.0]])
    nearer = np.array([[1.0, 2.5, 9.0], [1.0, np.nan, 0.0]])
    # goal 0: 2>1, 2<2.5, 2<9, 3>1, 3>2.5, 3<9: 3 of 6; goal 1: three ties with 1.0 (1.5) and three wins
    assert ranked_above(farther, nearer) == pytest.approx((3 + 1.5 + 3) / 12)
