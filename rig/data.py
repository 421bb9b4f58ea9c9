"""Frame collection: rendered 48x48 frames with their true states, grouped by episode.

Each collection episode starts with the env's reset frame, which is the episode's context for the
CC-VAE. The rest of the episode is either random-action exploration, or states teleported to
states the env draws (``sample_state``; on the pushers the hand anywhere in its box, the object anywhere
in the puck-goal range) so that the object is seen all over the table and not only near its start. An env
that cannot teleport (``rig.goal_env``) gives random-action frames only. True states (the env's
``achieved_goal``) and object appearances are stored for diagnostics; the VAEs train on the images alone,
the supervised encoder (``vae.kind=supervised``) learns to read the states from them. The action of each
random-action step is stored with the frame it led to, for the inverse model (``vae.inverse_weight``).
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from envs.appearance import SHAPES
from rig import io
from rig.config import DataConfig, EnvConfig, Palette, is_unset_neutral
from rig.envs import make_env
from rig.errors import MissingFileError, UserError
from rig.goal_env import GoalEnvView

logger = logging.getLogger(__name__)

ARRAYS = (
    "images",
    "states",
    "episodes",
    "context_index",
    "heldout",
    "object_rgb",
    "object_radius",
    "object_shape",
    "swap_role",
    "swap_factors",
    "teleported",
    "actions",
    "acted",
)
OPTIONAL_ARRAYS = ("swap_role", "swap_factors", "teleported", "actions", "acted")
"""arrays that datasets collected before they existed lack: such a dataset loads with zeros in their place"""
DTYPES: dict[str, Any] = {
    "images": np.uint8,
    "states": np.float32,
    "episodes": np.int64,
    "context_index": np.int64,
    "heldout": bool,
    "object_rgb": np.float32,
    "object_radius": np.float32,
    "object_shape": np.int64,
    "swap_role": np.int8,
    "swap_factors": np.int8,
    "teleported": bool,
    "actions": np.float32,
    "acted": bool,
}
"""the type each array is stored with"""
MISSING_SHAPES: dict[str, tuple[int, ...]] = {"actions": (0,)}
"""the trailing shape of an optional array that a dataset lacks, where it is not (N,)"""
SWAP_ROLES = (1, 2, 3)
"""``swap_role`` of a factor swap's three frames, in order: s00 with one part of the state factors from s',
s00 with the other part from s', and s'; 0 for every other frame"""
SWAP_TRIES = 100
"""draws of s' before a swap is given up (an env refuses states whose parts overlap)"""


class DatasetError(UserError, ValueError):
    """A dataset file that is unreadable, inconsistent, or made with other settings."""


@dataclass
class FrameDataset:
    images: np.ndarray
    """uint8 (N, H, W, 3) frames"""
    states: np.ndarray
    """float32 (N, goal_dim) the env's achieved_goal ([hand_x, hand_y, puck_x, puck_y] on the pushers);
    for diagnostics, and the supervised encoder's targets"""
    episodes: np.ndarray
    """int64 (N,) collection episode of each frame"""
    context_index: np.ndarray
    """int64 (N,) index of the first frame of the frame's episode (the CC-VAE context)"""
    heldout: np.ndarray
    """bool (N,) frames kept out of training; whole episodes are held out together"""
    object_rgb: np.ndarray
    """float32 (N, 3) object colour in [0, 1] (zeros, as radius and shape, for envs without ``appearance``)"""
    object_radius: np.ndarray
    """float32 (N,) object radius (half width for boxes), metres"""
    object_shape: np.ndarray
    """int64 (N,) index into envs.appearance.SHAPES"""
    swap_role: np.ndarray
    """int8 (N,) the frame's place in a factor swap (``SWAP_ROLES``; ``data.factor_swaps``), 0 outside one"""
    swap_factors: np.ndarray
    """int8 (N,) which of the env's state factors a swap frame took from s', a bit per factor in the order
    ``state_factors`` lists them (hand 1, object 2 on the pushers); 0 outside swaps, and in datasets
    collected before it was recorded"""
    teleported: np.ndarray
    """bool (N,) whether the frame shows a state the env drew (``sample_state``) in a teleported episode, as
    opposed to a reset frame, a random-action frame or a swap frame; all False in datasets collected before
    it was recorded (``agent.goal_prior=teleported`` fits imagined goals to these frames)"""
    actions: np.ndarray
    """float32 (N, action_dim) the action whose env step led from the frame before to this one, where
    ``acted``; zeros elsewhere, and (N, 0) in datasets collected before actions were recorded"""
    acted: np.ndarray
    """bool (N,) whether the frame follows the one before it by one env step of ``actions`` (the
    random-action frames after an episode's first); ``vae.inverse_weight`` trains on these pairs"""
    meta: dict[str, Any] = field(default_factory=dict)
    """the env and data config that made it, and the seed"""
    origin: str = field(default="the dataset", init=False, compare=False)
    """where it was loaded from, for messages"""

    def __len__(self) -> int:
        return len(self.images)

    @property
    def contexts(self) -> np.ndarray:
        """uint8 (N, H, W, 3) the context frame of every frame."""
        return self.images[self.context_index]

    def split(self, heldout: bool) -> np.ndarray:
        """Indices of the training (``heldout=False``) or held-out frames."""
        return np.flatnonzero(self.heldout == heldout)

    def save(self, path: str | Path) -> None:
        arrays = {name: getattr(self, name) for name in ARRAYS}
        arrays["meta"] = np.array(json.dumps(self.meta, sort_keys=True))
        io.savez_compressed(path, arrays)

    @classmethod
    def load(cls, path: str | Path) -> FrameDataset:
        arrays, meta = _read_archive(Path(path), ARRAYS)
        dataset = cls(**arrays, meta=meta)
        dataset.origin = f"dataset {path}"
        dataset.check_consistent(str(path))
        return dataset

    def check_consistent(self, origin: str) -> None:
        count = len(self.images)
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise DatasetError(
                f"{origin}: images must be uint8 (N, H, W, 3), got {self.images.dtype} {self.images.shape}"
            )
        wrong = [name for name in ARRAYS if len(getattr(self, name)) != count]
        if wrong:
            raise DatasetError(f"{origin}: arrays {wrong} do not have {count} entries like the images")
        if count and (self.context_index.min() < 0 or self.context_index.max() >= count):
            raise DatasetError(f"{origin}: context_index points outside the dataset")

    def check_matches(self, env: EnvConfig, data: DataConfig | None = None, seed: int | None = None) -> None:
        """Raise if the dataset was collected with other env (or data) settings, or another seed."""
        mismatch = collection_mismatch(self.meta, env, data, seed)
        if mismatch is not None:
            raise DatasetError(
                f"{self.origin} was collected with {mismatch}: it is another run's dataset; run with that "
                "run's settings, or choose another run_dir to collect this run's frames"
            )


def collection_mismatch(
    meta: dict[str, Any], env: EnvConfig, data: DataConfig | None = None, seed: int | None = None
) -> str | None:
    """The first setting that a dataset's ``meta`` records otherwise than asked, e.g.
    ``seed=1, but this run asks for seed=0``; None when they agree."""
    expected = {f"env.{key}": value for key, value in _collection_env(env).items()}
    if data is not None:
        expected.update({f"data.{key}": value for key, value in asdict(data).items()})
    if seed is not None:
        expected["seed"] = seed
    stored = {
        **{
            f"{section}.{key}": value
            for section in ("env", "data")
            for key, value in meta.get(section, {}).items()
        },
        "seed": meta.get("seed"),
    }
    for key, value in expected.items():
        if key not in stored and is_unset_neutral(key, value):
            continue  # a setting recorded only when set
        if stored.get(key) != value:
            return f"{key}={stored.get(key)!r}, but this run asks for {key}={value!r}"
    return None


def read_dataset_meta(path: str | Path) -> dict[str, Any]:
    """What made the dataset at ``path`` (its env and data settings and seed), read without its frames.

    Also checks that every array is there; a ``DatasetError`` (or ``MissingFileError``) says what is wrong.
    """
    return _read_archive(Path(path), ())[1]


def _read_archive(path: Path, names: Sequence[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays ``names`` of the dataset at ``path`` and its ``meta``, once every array is known there."""
    if not path.is_file():
        raise MissingFileError(f"dataset {path} does not exist; run `rig collect` first")
    try:
        with np.load(path, allow_pickle=False) as archive:
            required = [name for name in ARRAYS if name not in OPTIONAL_ARRAYS]
            missing = [name for name in (*required, "meta") if name not in archive.files]
            arrays = {} if missing else {name: archive[name] for name in names if name in archive.files}
            if not missing and names:
                count = len(arrays["images"]) if "images" in arrays else len(archive["images"])
                arrays.update(
                    {
                        name: np.zeros((count, *MISSING_SHAPES.get(name, ())), DTYPES[name])
                        for name in names
                        if name not in arrays
                    }
                )
            meta = None if missing else json.loads(str(archive["meta"]))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, json.JSONDecodeError) as error:
        raise DatasetError(
            f"dataset {path} is corrupt or truncated ({error}); delete it and collect again"
        ) from None
    if missing:
        raise DatasetError(f"dataset {path} lacks arrays {missing}")
    if not isinstance(meta, dict):
        raise DatasetError(f"dataset {path} is corrupt: its meta is not a record of settings")
    return arrays, meta


def collect(
    env_cfg: EnvConfig, data_cfg: DataConfig, seed: int, palette: Palette | None = None, progress: bool = True
) -> FrameDataset:
    """Collect ``data_cfg.num_frames`` frames; same arguments, same dataset."""
    env = make_env(env_cfg, palette=palette)
    view = GoalEnvView(env)
    if data_cfg.teleport_fraction > 0 and not view.teleports:
        logger.warning(
            "collect: %s cannot teleport (no sample_state/set_to_state); all frames come from random actions",
            env_cfg.id,
        )
    factors = _swap_factors(view, env_cfg) if data_cfg.factor_swaps > 0 else {}
    rng = np.random.default_rng(seed)
    action_size = int(np.prod(env.action_space.shape or (0,)))
    per_episode = data_cfg.frames_per_episode
    n_episodes = -(-data_cfg.num_frames // per_episode)
    n_heldout = max(1, round(n_episodes * data_cfg.heldout_fraction))
    heldout_episodes = set(rng.choice(n_episodes, size=n_heldout, replace=False).tolist())
    columns: dict[str, list[Any]] = {name: [] for name in ARRAYS}
    for episode in tqdm(range(n_episodes), desc="collect", unit="episode", disable=not progress):
        obs, _ = env.reset(seed=int(rng.integers(2**31)))
        env.action_space.seed(int(rng.integers(2**31)))
        swap = bool(factors) and rng.random() < data_cfg.factor_swaps
        teleport = rng.random() < data_cfg.teleport_fraction and view.teleports
        start = len(columns["states"])
        reset_state = np.asarray(obs["achieved_goal"], dtype=np.float64)
        frames: list[tuple[np.ndarray, int]] = []
        state = reset_state
        for step in range(per_episode):
            role, taken, action = 0, 0, None
            if swap and step > 0:
                if step == 1:  # drawn after the reset frame is rendered: drawing them teleports the env
                    frames = _swap_frames(view, factors, reset_state, per_episode, rng)
                (state, taken), role = frames[step - 1], SWAP_ROLES[(step - 1) % 3]
                view.set_to_state(state)
            elif step > 0:
                state, action = _advance(env, view, teleport)
            columns["images"].append(env.render())
            columns["states"].append(np.asarray(state, dtype=np.float32))
            columns["episodes"].append(episode)
            columns["context_index"].append(start)
            columns["heldout"].append(episode in heldout_episodes)
            columns["swap_role"].append(role)
            columns["swap_factors"].append(taken)
            columns["teleported"].append(teleport and not swap and step > 0)
            columns["acted"].append(action is not None)
            columns["actions"].append(np.zeros(action_size) if action is None else action)
            for name, value in _appearance(view).items():
                columns[name].append(value)
    env.close()
    arrays = {name: np.asarray(values)[: data_cfg.num_frames] for name, values in columns.items()}
    arrays = _typed(arrays)
    # Settings at their neutral values are left out, so that datasets collected before they existed match.
    data = {key: v for key, v in asdict(data_cfg).items() if not is_unset_neutral(f"data.{key}", v)}
    meta = {"env": _collection_env(env_cfg, palette), "data": data, "seed": seed}
    return FrameDataset(**arrays, meta=meta)


def _swap_factors(view: GoalEnvView, env_cfg: EnvConfig) -> dict[str, slice]:
    """The env's state factors, which a factor swap splits in two parts; a ``DatasetError`` when it cannot."""
    factors = view.state_factors()
    if not view.teleports or len(factors) < 2:
        raise DatasetError(
            "data.factor_swaps needs an env that teleports (sample_state, set_to_state) and declares at "
            f"least two state_factors; {env_cfg.id} has {'no' if not view.teleports else 'a'} teleport and "
            f"factors {', '.join(factors)}"
        )
    return factors


def _swap_frames(
    view: GoalEnvView,
    factors: dict[str, slice],
    reset: np.ndarray,
    per_episode: int,
    rng: np.random.Generator,
) -> list[tuple[np.ndarray, int]]:
    """The states of a swap episode after its reset frame, each with the bits of the factors it took from
    s' (``FrameDataset.swap_factors``): triples (s00 with part A from s', s00 with the other part from s',
    s') for a new s' and a random split of the factors each time, every state one the env accepts
    (``set_to_state`` raises for the others)."""
    names = list(factors)
    every = (1 << len(names)) - 1
    frames: list[tuple[np.ndarray, int]] = []
    for _ in range((per_episode - 1) // 3):
        size = int(rng.integers(1, len(names)))
        part = set(rng.choice(len(names), size=size, replace=False).tolist())
        bits = sum(1 << index for index in part)
        for _ in range(SWAP_TRIES):
            other = np.asarray(view.sample_state(), dtype=np.float64)
            triple = [reset.copy(), reset.copy(), other]
            for index, name in enumerate(names):
                triple[0 if index in part else 1][factors[name]] = other[factors[name]]
            if all(_accepted(view, state) for state in triple):
                frames += zip(triple, (bits, every & ~bits, every), strict=True)
                break
        else:
            raise DatasetError(f"collect: no factor swap the env accepts in {SWAP_TRIES} draws of a state")
    return frames


def _accepted(view: GoalEnvView, state: np.ndarray) -> bool:
    try:
        view.set_to_state(state)
    except ValueError:
        return False
    return True


def _advance(env: Any, view: GoalEnvView, teleport: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """One collection step, teleported or random: the state it leads to, and the action that led there
    (None for a teleport)."""
    if teleport:
        state = view.sample_state()
        view.set_to_state(state)
        return state, None
    action = env.action_space.sample()
    obs = env.step(action)[0]
    return np.asarray(obs["achieved_goal"]), np.asarray(action, dtype=np.float32).reshape(-1)


def _appearance(view: GoalEnvView) -> dict[str, Any]:
    """The object's colour, size and shape, for envs that have an ``appearance`` (rig's pushers)."""
    appearance = view.member("appearance")
    if appearance is None:
        return {"object_rgb": np.zeros(3, np.float32), "object_radius": 0.0, "object_shape": 0}
    return {
        "object_rgb": np.asarray(appearance.rgb, dtype=np.float32),
        "object_radius": appearance.radius,
        "object_shape": SHAPES.index(appearance.shape),
    }


def _typed(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: arrays[name].astype(DTYPES[name], copy=False) for name in ARRAYS}


def _collection_env(env: EnvConfig, palette: str | None = None) -> dict[str, Any]:
    """The env settings a dataset depends on (episode length and eval palette do not matter)."""
    settings: dict[str, Any] = {"id": env.id, "image_size": env.image_size, "palette": palette or env.palette}
    # Recorded only when set, so that datasets collected before these settings existed still match.
    if env.module:
        settings["module"] = env.module
    if env.kwargs:
        settings["kwargs"] = dict(env.kwargs)
    return settings
