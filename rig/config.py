"""The typed configuration schema, YAML loading and ``key=value`` overrides.

Every setting lives in one nested dataclass. YAML files in ``configs/`` override fields of the
schema; a key that the schema does not have is an error naming it and the closest valid key.
The schema defaults are the real settings; ``configs/debug.yaml`` shrinks them so that every
stage runs in seconds.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


@dataclass
class EnvConfig:
    id: str = "rig/Push-v0"
    """gymnasium id: rig/Push-v0, rig/PushMultiColor-v0 (colour drawn per reset) or rig/PushMultiObject-v0
    (colour, size and shape drawn per reset)"""
    image_size: int = 48
    """side of the square RGB frames, in pixels"""
    max_episode_steps: int = 50
    """steps per episode"""
    palette: str = "train"
    """object colour palette used for data collection and training (multi-object env)"""
    eval_palette: str = "train"
    """object colour palette used for evaluation; 'heldout' tests unseen colours"""


@dataclass
class DataConfig:
    num_frames: int = 10_000
    """frames to collect for representation learning"""
    teleport_fraction: float = 0.5
    """share of episodes whose frames come from states teleported to random goal-like states"""
    frames_per_episode: int = 25
    """frames recorded per collection episode; the first one is the episode's context"""
    heldout_fraction: float = 0.1
    """share of episodes kept out of training for diagnostics"""


@dataclass
class VAEConfig:
    kind: str = "beta_vae"
    """representation: beta_vae, cc_vae, or state (identity on the true state, for the oracle)"""
    z_dim: int = 6
    """size of the stochastic latent z (hand and puck xy need 4; at z 4 the hand, learned after the puck,
    was folded into a non-linear code on one seed in three, at z 6 on none of four seeds measured)"""
    context_dim: int = 4
    """size of the CC-VAE context vector c (ignored by beta_vae)"""
    beta: float = 0.25
    """weight of the KL term; see rig.representation for the likelihood convention"""
    likelihood: str = "bernoulli"
    """gaussian (summed squared error) or bernoulli (summed binary cross-entropy)"""
    decoder: str = "broadcast"
    """deconv (mirror of the reference encoder) or broadcast (spatial broadcast decoder)"""
    coord_channels: bool = True
    """append pixel-coordinate channels to the encoder input (CoordConv)"""
    context_film: bool = True
    """CC-VAE only: the context c also scales and shifts the channels of each hidden layer of the broadcast
    decoder (FiLM); with c only concatenated, the decoder drew hand and object as one pair"""
    epochs: int = 50
    """passes over the training frames"""
    kl_warmup_epochs: int = 0
    """epochs over which the KL weight rises linearly to beta (epoch e trains with beta * (e + 1) / n);
    0 trains with beta throughout. Tried at 20 against the folded hand at z 4: it unfolded one seed and
    folded another"""
    batch_size: int = 64
    """frames per gradient step (64 gives twice the updates of 128 in about the same time; at 128 one seed
    in three barely encoded the small hand within 50 epochs, at 64 all three seeds measured encode it)"""
    lr: float = 1e-3
    """Adam learning rate"""


@dataclass
class AgentConfig:
    algo: str = "td3"
    """off-policy stable-baselines3 algorithm: td3 or sac"""
    net_arch: list[int] = field(default_factory=lambda: [400, 300])
    """hidden layer sizes of actor and critic"""
    learning_rate: float = 1e-3
    """Adam learning rate of actor and critic"""
    batch_size: int = 128
    """transitions per gradient step"""
    gamma: float = 0.99
    """discount"""
    tau: float = 0.005
    """target network soft-update rate"""
    buffer_size: int = 100_000
    """replay capacity in transitions"""
    learning_starts: int = 4_000
    """random-action steps before learning"""
    gradient_steps: int = 1
    """gradient steps per env step"""
    action_noise: float = 0.2
    """std of Gaussian exploration noise (td3)"""
    policy_delay: int = 2
    """actor updates once per this many critic updates (td3)"""
    target_policy_noise: float = 0.2
    """target smoothing noise std (td3)"""
    target_noise_clip: float = 0.5
    """target smoothing noise clip (td3)"""
    total_steps: int = 50_000
    """environment steps to train for (the default fits a 30-minute run on a 2-core CPU)"""
    rollout_goal_fraction: float = 0.1
    """share of replayed goals kept as the rollout's own goal"""
    prior_goal_fraction: float = 0.5
    """share of replayed goals resampled from the representation prior"""
    future_goal_fraction: float = 0.4
    """share of replayed goals replaced by a future achieved latent of the episode"""
    reward: str = "latent_distance"
    """latent_distance (dense) or sparse (thresholded latent distance)"""
    sparse_threshold: float = 1.0
    """latent distance under which the sparse reward counts as reached"""
    goal_prior: str = "fitted"
    """where imagined goals' z is drawn from (exploration and prior relabelling): fitted, a diagonal Gaussian
    fitted to the encoder means of the training frames, as the RIG reference implementation samples; or
    standard, the VAE prior N(0, I). Ignored by the state oracle"""


@dataclass
class EvalConfig:
    episodes: int = 20
    """episodes per evaluation"""
    every: int = 5_000
    """env steps between evaluations during training"""
    seed: int = 10_000
    """seed of the evaluation goals"""
    gifs: int = 3
    """rollout GIFs written by rig evaluate"""


@dataclass
class Config:
    seed: int = 0
    """seed of everything random in the run"""
    device: str = "auto"
    """torch device: auto (cuda when available), cpu, cuda, cuda:1, ..."""
    torch_threads: int = 0
    """CPU threads for torch; 0 keeps torch's default of one per core"""
    run_dir: str = "runs/default"
    """where the run's products are written"""
    env: EnvConfig = field(default_factory=EnvConfig)
    data: DataConfig = field(default_factory=DataConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Schema defaults, then the YAML file at ``path`` (a name in ``configs/`` also works), then overrides."""
    merged = OmegaConf.structured(Config)
    OmegaConf.set_struct(merged, True)
    sources: list[tuple[str, Any]] = []
    if path is not None:
        resolved = resolve_config_path(path)
        sources.append((str(resolved), OmegaConf.load(resolved)))
    if overrides:
        sources.append(("overrides", _parse_overrides(overrides)))
    for origin, source in sources:
        merged = _merge_checked(merged, source, origin)
    config = OmegaConf.to_object(merged)
    assert isinstance(config, Config)
    validate(config)
    return config


def resolve_config_path(path: str | Path) -> Path:
    candidate = Path(path)
    for option in (candidate, CONFIG_DIR / candidate, CONFIG_DIR / f"{candidate}.yaml"):
        if option.is_file():
            return option
    available = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    raise ConfigError(f"config file {str(path)!r} not found; configs/ has {available}")


def to_dict(config: Config) -> dict[str, Any]:
    container = OmegaConf.to_container(OmegaConf.structured(config))
    assert isinstance(container, dict)
    return container  # type: ignore[return-value]


def to_yaml(config: Config) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(config))


def from_dict(data: dict[str, Any]) -> Config:
    return load_config_from(data, origin="stored config")


def load_config_from(data: dict[str, Any], origin: str) -> Config:
    merged = _merge_checked(OmegaConf.structured(Config), OmegaConf.create(data), origin)
    config = OmegaConf.to_object(merged)
    assert isinstance(config, Config)
    return config


def section_hash(*sections: Any) -> str:
    """A short stable hash of config sections (dataclasses or plain values), for caching."""
    payload = json.dumps([_plain(s) for s in sections], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def validate(config: Config) -> None:
    """Checks that the schema's types cannot express."""
    checks: list[tuple[bool, str]] = [
        (config.env.image_size >= 16, "env.image_size must be at least 16"),
        (config.env.max_episode_steps > 0, "env.max_episode_steps must be positive"),
        (config.data.num_frames > 0, "data.num_frames must be positive"),
        (0.0 <= config.data.teleport_fraction <= 1.0, "data.teleport_fraction must be in [0, 1]"),
        (0.0 < config.data.heldout_fraction < 1.0, "data.heldout_fraction must be in (0, 1)"),
        (config.data.frames_per_episode >= 2, "data.frames_per_episode must be at least 2"),
        (config.vae.kind in ("beta_vae", "cc_vae", "state"), "vae.kind must be beta_vae, cc_vae or state"),
        (config.vae.likelihood in ("gaussian", "bernoulli"), "vae.likelihood must be gaussian or bernoulli"),
        (config.vae.decoder in ("deconv", "broadcast"), "vae.decoder must be deconv or broadcast"),
        (
            not (config.vae.kind == "cc_vae" and config.vae.context_film and config.vae.decoder == "deconv"),
            "vae.context_film needs vae.decoder=broadcast (or set vae.context_film=false)",
        ),
        (config.vae.z_dim > 0 and config.vae.epochs > 0, "vae.z_dim and vae.epochs must be positive"),
        (config.vae.beta >= 0.0, "vae.beta must be non-negative"),
        (config.vae.kl_warmup_epochs >= 0, "vae.kl_warmup_epochs must be non-negative"),
        (config.agent.algo in ("td3", "sac"), "agent.algo must be td3 or sac"),
        (
            config.agent.reward in ("latent_distance", "sparse"),
            "agent.reward must be latent_distance or sparse",
        ),
        (config.agent.goal_prior in ("fitted", "standard"), "agent.goal_prior must be fitted or standard"),
        (_fractions_ok(config.agent), "agent goal fractions must be non-negative and sum to 1"),
        (config.eval.every > 0 and config.eval.episodes > 0, "eval.every and eval.episodes must be positive"),
        (config.torch_threads >= 0, "torch_threads must be >= 0 (0: torch's default)"),
    ]
    errors = [message for ok, message in checks if not ok]
    if errors:
        raise ConfigError("invalid config: " + "; ".join(errors))


def _fractions_ok(agent: AgentConfig) -> bool:
    fractions = (agent.rollout_goal_fraction, agent.prior_goal_fraction, agent.future_goal_fraction)
    return min(fractions) >= 0.0 and abs(sum(fractions) - 1.0) < 1e-6


def _merge_checked(base: Any, source: Any, origin: str) -> DictConfig:
    try:
        merged = OmegaConf.merge(base, source)
    except (ConfigKeyError, ConfigAttributeError) as error:
        key = str(getattr(error, "full_key", "") or getattr(error, "key", ""))
        raise ConfigError(f"{origin}: unknown config key {key!r}{_suggestion(key)}") from None
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", "")
        raise ConfigError(f"{origin}: bad value for {key!r}: {error.msg}") from None
    assert isinstance(merged, DictConfig)
    return merged


def _parse_overrides(overrides: Iterable[str]) -> DictConfig:
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value, e.g. agent.algo=sac")
    return OmegaConf.from_dotlist(list(overrides))


def _suggestion(key: str) -> str:
    close = difflib.get_close_matches(key, _all_keys(), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def _all_keys() -> list[str]:
    keys: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        for name, value in node.items():
            full = f"{prefix}{name}"
            keys.append(full)
            if isinstance(value, dict):
                walk(value, full + ".")

    walk(to_dict(Config()), "")
    return keys


def _plain(section: Any) -> Any:
    if hasattr(section, "__dataclass_fields__"):
        return OmegaConf.to_container(OmegaConf.structured(section))
    return section
