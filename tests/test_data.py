"""Frame collection: reproducibility, file round trip, episode structure and bad files."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from envs.push import PUCK_GOAL_BOX
from rig.config import load_config
from rig.data import DTYPES, MISSING_SHAPES, OPTIONAL_ARRAYS, DatasetError, FrameDataset, collect
from tests.datasets import drop_arrays


def small(frames: int = 120, teleport: float = 0.5, env_id: str = "rig/Push-v0", **env: object):
    cfg = load_config(
        "debug", [f"data.num_frames={frames}", f"data.teleport_fraction={teleport}", f"env.id={env_id}"]
    )
    return replace(cfg.env, **env), cfg.data


def test_round_trip_keeps_every_array_and_the_config(tmp_path: Path) -> None:
    env, data = small()
    dataset = collect(env, data, seed=0, progress=False)
    dataset.save(tmp_path / "frames.npz")
    loaded = FrameDataset.load(tmp_path / "frames.npz")
    for name in ("images", "states", "episodes", "context_index", "heldout", "object_rgb", "object_radius"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(dataset, name))
    assert loaded.meta == dataset.meta
    assert loaded.meta["env"]["id"] == "rig/Push-v0" and loaded.meta["data"]["num_frames"] == 120
    assert loaded.images.dtype == np.uint8 and loaded.images.shape == (120, 48, 48, 3)


@pytest.mark.parametrize("name", OPTIONAL_ARRAYS)
def test_a_dataset_saved_before_an_array_existed_loads_with_it_empty(
    debug_frames: FrameDataset, tmp_path: Path, name: str
) -> None:
    """Datasets collected by older versions lack the arrays added since: they load with zeros (or no
    columns) in their place and every other array as it was."""
    path = tmp_path / "frames.npz"
    debug_frames.save(path)
    drop_arrays(path, [name])
    loaded = FrameDataset.load(path)
    missing = getattr(loaded, name)
    assert missing.dtype == DTYPES[name] and not missing.any()
    assert missing.shape == (len(debug_frames), *MISSING_SHAPES.get(name, ()))
    for other in ("images", "states", "episodes", *(kept for kept in OPTIONAL_ARRAYS if kept != name)):
        assert np.array_equal(getattr(loaded, other), getattr(debug_frames, other)), other


def test_same_seed_same_dataset_other_seed_other_dataset() -> None:
    env, data = small()
    first, second = collect(env, data, seed=3, progress=False), collect(env, data, seed=3, progress=False)
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.states, second.states)
    assert not np.array_equal(first.states, collect(env, data, seed=4, progress=False).states)


def test_episodes_contexts_and_heldout_split() -> None:
    env, data = small(frames=200)
    dataset = collect(env, data, seed=0, progress=False)
    per_episode = data.frames_per_episode
    for episode in np.unique(dataset.episodes):
        rows = np.flatnonzero(dataset.episodes == episode)
        assert np.all(dataset.context_index[rows] == rows[0])
        assert len(set(dataset.heldout[rows])) == 1, "an episode is split between train and held-out"
        assert len(rows) == per_episode
    # The context is the reset frame: puck at the centre, hand at its start.
    np.testing.assert_allclose(dataset.states[dataset.context_index][:, 2:], 0.0, atol=1e-6)
    assert 0 < dataset.heldout.mean() < 0.5


def test_teleported_frames_cover_the_puck_goal_range() -> None:
    teleported = collect(*small(frames=300, teleport=1.0), seed=0, progress=False)
    explored = collect(*small(frames=300, teleport=0.0), seed=0, progress=False)
    puck = teleported.states[teleported.context_index != np.arange(300)][:, 2:]
    assert np.all(puck >= np.array(PUCK_GOAL_BOX.low) - 1e-6) and np.all(
        puck <= np.array(PUCK_GOAL_BOX.high) + 1e-6
    )
    assert puck[:, 0].std() > 0.07  # uniform on [-0.15, 0.15] has std 0.087
    assert explored.states[:, 2:].std() < puck.std()


def test_multi_object_frames_share_their_contexts_appearance() -> None:
    dataset = collect(*small(frames=100, env_id="rig/PushMultiObject-v0"), seed=0, progress=False)
    np.testing.assert_array_equal(dataset.object_rgb, dataset.object_rgb[dataset.context_index])
    np.testing.assert_array_equal(dataset.object_radius, dataset.object_radius[dataset.context_index])
    assert len(np.unique(dataset.object_rgb, axis=0)) > 1


def test_dataset_from_other_settings_is_refused() -> None:
    env, data = small(image_size=32)
    dataset = collect(env, data, seed=0, progress=False)
    assert dataset.images.shape[1:] == (32, 32, 3)
    with pytest.raises(DatasetError, match=r"env.image_size=32.*env.image_size=48"):
        dataset.check_matches(replace(env, image_size=48))
    with pytest.raises(DatasetError, match="data.teleport_fraction"):
        dataset.check_matches(env, replace(data, teleport_fraction=0.9))
    dataset.check_matches(env, data)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "missing_array"])
def test_corrupt_dataset_file_is_a_clear_error(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "frames.npz"
    collect(*small(), seed=0, progress=False).save(path)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a dataset at all")
    else:
        with np.load(path) as archive:
            arrays = {name: archive[name] for name in archive.files if name != "states"}
        np.savez_compressed(path, **arrays)
    with pytest.raises(DatasetError, match="frames.npz"):
        FrameDataset.load(path)


def test_missing_dataset_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="rig collect"):
        FrameDataset.load(tmp_path / "nothing.npz")
