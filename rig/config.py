"""The typed configuration schema, YAML loading and ``key=value`` overrides.

Every setting lives in one nested dataclass. YAML files in ``configs/`` override fields of the
schema; a key that the schema does not have is an error naming it and the closest valid key.
The schema defaults are the real settings; ``configs/debug.yaml`` shrinks them so that every
stage runs in seconds.

Settings that pick one of a few options are ``Literal`` types, defined here once: OmegaConf refuses any
other value, and the modules that implement the options import the type. ``validate`` checks every
numeric range and what combinations of settings need, so a bad config fails before any stage runs.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import gymnasium
import torch
import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    InterpolationResolutionError,
    OmegaConfBaseException,
)

import envs  # noqa: F401  registers the rig/ env ids that env.id is checked against
from rig.errors import UserError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
MAX_SEED = 2**31 - 1
"""Seeds are offset (collection, evaluation episodes) and must stay within numpy's 32-bit range."""
DEVICE_TYPES = ("cpu", "cuda", "mps")

Palette = Literal["train", "heldout"]
"""object colour palettes of the multi-object env (``envs.appearance.PALETTES``)"""
RepresentationKind = Literal["beta_vae", "cc_vae", "supervised", "state"]
Likelihood = Literal["gaussian", "bernoulli"]
DecoderKind = Literal["deconv", "broadcast", "slots"]
Algo = Literal["td3", "sac"]
RewardKind = Literal["latent_distance", "sparse"]
RewardScale = Literal["none", "goal_std"]
GoalPrior = Literal["fitted", "teleported", "standard"]
ZAugment = Literal["none", "hue"]
EncoderBody = Literal["rig", "reference"]


@dataclass
class EnvConfig:
    id: str = "rig/Push-v0"
    """gymnasium id of an image goal env (rig.goal_env): rig's own (rig/Push-v0, rig/PushMultiColor-v0 with
    the colour drawn per reset, rig/PushMultiObject-v0 with colour, size and shape drawn per reset, ...) or
    any id that env.module registers"""
    module: str = ""
    """a Python module to import before making the env, so that it registers env.id (e.g. my_envs)"""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """keyword arguments passed to gymnasium.make for env.id"""
    image_size: int = 48
    """side of the square RGB frames, in pixels"""
    max_episode_steps: int = 50
    """steps per episode"""
    palette: Palette = "train"
    """object colour palette used for data collection and training (multi-object env)"""
    eval_palette: Palette = "train"
    """object colour palette used for evaluation; 'heldout' tests unseen colours"""
    frame_stack: int = 1
    """frames the image agent observes: its observation holds the latents of the last frame_stack frames,
    newest first (goals stay one latent). One frame shows where things are but not how fast they move;
    2 gives the agent velocity, which an env with momentum (rig/PointMaze_UMaze-v3) needs. Image agents
    trained offline only (not the state oracle, which observes the env's state, nor online.enabled)"""


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
    factor_swaps: float = 0.0
    """share of episodes collected as factor swaps, for ``vae.additivity_weight`` and
    ``vae.orthogonality_weight``: after the reset frame (state s00, the context), triples of teleported
    frames s00 with one part of the env's state factors taken from a new random state s', s00 with the
    other part taken from s', and s' itself (``rig.data``).
    Needs an env that teleports and declares at least two ``state_factors``, and frames_per_episode - 1 a
    multiple of 3. Swap episodes take the place of teleported and random-action ones"""


@dataclass
class VAEConfig:
    kind: RepresentationKind = "beta_vae"
    """representation: beta_vae, cc_vae, supervised (the VAEs' encoder trained to regress the frame's true
    state, its latent the env's goal size; the VAE-only settings z_dim, context_dim, beta, likelihood,
    decoder, decoder_channels, context_film and kl_warmup_epochs do not apply to it), or state (identity on
    the true state, for the oracle)"""
    z_dim: int = 6
    """size of the stochastic latent z (hand and puck xy need 4; at z 4 the hand, learned after the puck,
    was folded into a non-linear code on one seed in three, at z 6 on none of four seeds measured); not
    for vae.kind supervised, whose latent is the size of the env's achieved_goal"""
    context_dim: int = 4
    """size of the CC-VAE context vector c (ignored by beta_vae)"""
    beta: float = 0.25
    """weight of the KL term; see rig.representation for the likelihood convention"""
    likelihood: Likelihood = "bernoulli"
    """gaussian (summed squared error) or bernoulli (summed binary cross-entropy)"""
    decoder: DecoderKind = "broadcast"
    """deconv (mirror of the reference encoder), broadcast (spatial broadcast decoder), or slots (hand and
    object drawn from separate halves of z by two broadcast decoders, composited by masks; z_dim even)"""
    decoder_channels: int = 32
    """hidden channels of the broadcast decoder. 16 trains at 2.2x the images/s of 32 on a 2-core CPU, but
    learns the hand about twice as late in epochs and missed it on one seed of five within 50 epochs
    (README, Speed), so it saves no pretraining time"""
    coord_channels: bool = True
    """append pixel-coordinate channels to the encoder input (CoordConv); the supervised encoder's too"""
    context_film: bool = True
    """CC-VAE only: the context c also scales and shifts the channels of each hidden layer of the broadcast
    decoder (FiLM); with c only concatenated, the decoder drew hand and object as one pair"""
    encoder: EncoderBody = "rig"
    """the VAEs' encoders after their convs (refused for the other kinds): rig, one ReLU layer of 256; or
    reference, the CC-RIG authors' fully connected layers of 500, 300 and 150, each with batch norm and
    dropout 0.5 (``rig.representation.nets``), in the z and the context encoder alike"""
    z_augment: ZAugment = "none"
    """CC-VAE only (refused for the other kinds): what the z encoder sees in training. none: the frames;
    hue: x_t and its context x0 with one random hue rotation per sample (rig.representation.augment), while
    c is encoded from the unrotated x0 and the decoder reconstructs the unrotated x_t, so that the object's
    colour reaches the decoder only through c and z has to carry the positions. Encoding for the agent,
    the held-out loss and the diagnostics see the frames as they are"""
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
    additivity_weight: float = 0.0
    """weight of the additivity loss on the factor swaps of the frames (``data.factor_swaps``): with mu the
    posterior mean of z, ||mu(s') - mu(s00 with one part from s') - mu(s00 with the other) + mu(s00)||^2
    over ||mu(s') - mu(s00)||^2, 0 when moving both parts moves z by the sum of the parts' moves. It asks
    for the additive code that the multi-colour VAEs lack (docs: CC-RIG); 0 leaves the loss as it was"""
    orthogonality_weight: float = 0.0
    """weight of the orthogonality loss on the same factor swaps: the squared cosine of the moves of the z
    posterior mean when one part, then the other, is taken from s' (``rig.pretrain.swap_losses``), 0 when
    the parts move z in orthogonal directions. With the additivity loss, it asks for a code whose latent
    distance splits between the parts as the sum of their squared moves (interaction 1); 0 leaves the loss
    as it was"""
    balance_weight: float = 0.0
    """weight of the balance loss on the same factor swaps, for an env with two state factors: the squared
    log ratio of the mean squared z moves of the two factors (``rig.pretrain.swap_losses``), 0 when each
    moves the latent by as much on average, so that the latent distance weighs the env's factors alike. It
    reads which factor each swap frame took (recorded at collection), never a position; 0 leaves the loss
    as it was"""
    inverse_weight: float = 0.0
    """weight of the inverse-model loss (``rig.representation.inverse``): an MLP reads the z posterior means
    of two consecutive random-action frames and predicts the action between them, and its error, over the
    actions' variance, trains the encoder too. It ties z to what the actions change; it needs frames with
    recorded actions (collected by this version, with data.teleport_fraction below 1); 0 leaves the loss
    as it was"""

    @property
    def is_oracle(self) -> bool:
        """The state oracle: the identity representation of the true state, with no frames and nothing to
        learn. Every "is this the oracle" question asks this."""
        return self.kind == "state"

    @property
    def decodes_images(self) -> bool:
        """The VAEs: a decoder draws images from latents, so pretraining writes reconstruction, prior-sample
        and traversal grids. The supervised encoder and the state oracle have no image decoder."""
        return self.kind in ("beta_vae", "cc_vae")


@dataclass
class AgentConfig:
    algo: Algo = "td3"
    """off-policy stable-baselines3 algorithm: td3 or sac"""
    net_arch: list[int] = field(default_factory=lambda: [256, 256])
    """hidden layer sizes of actor and critics. The reference's [400, 300] costs 1.8x the multiply-adds;
    over 5 seeds at 50K env steps [256, 256] ended no farther from the goals (0.042 against 0.046 m), with
    the loop 1.5-1.6x as fast on a 2-core CPU (README, Method comparison and Speed). The configs whose
    records are in docs/results keep [400, 300], which those were made with."""
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
    """environment steps to train for (the default run fits in 15 minutes on a 2-core CPU)"""
    rollout_goal_fraction: float = 0.1
    """share of replayed goals kept as the rollout's own goal"""
    prior_goal_fraction: float = 0.5
    """share of replayed goals resampled from the representation prior"""
    future_goal_fraction: float = 0.4
    """share of replayed goals replaced by a future achieved latent of the episode"""
    reward: RewardKind = "latent_distance"
    """latent_distance (dense) or sparse (thresholded latent distance)"""
    sparse_threshold: float = 1.0
    """latent distance under which the sparse reward counts as reached"""
    reward_scale: RewardScale = "none"
    """how the reward's latent distance weighs the dimensions of z: none, as the VAE's latent does; goal_std,
    each dimension's difference divided by the std of the imagined goals' z on it (the fitted goal prior:
    the spread of the encoder means over the training frames), and dimensions whose std is below 0.1
    (inactive units) left out, so each dimension the encoder uses counts by how far it moves across the
    frames rather than by its scale in the latent. The context part of a CC-VAE latent keeps weight 1. The
    sparse threshold is then in these units. Needs an image representation, agent.goal_prior fitted or
    teleported, and online.enabled false (an online run refits its goals, which would move the reward)"""
    goal_prior: GoalPrior = "fitted"
    """where imagined goals' z is drawn from (exploration and prior relabelling): fitted, a diagonal Gaussian
    fitted to the encoder means of the training frames, as the RIG reference implementation samples;
    teleported, the same fitted to the training frames at teleported states only (the states the env draws,
    on the pushers the object anywhere in its goal range; random-action frames leave it near its start),
    so that imagined goals spread as the real goals do (needs data.teleport_fraction > 0 and an env that
    teleports); or standard, the VAE prior N(0, I) (for vae.kind supervised, N(0, I) over its standardised
    states). Ignored by the state oracle and by online runs, which fit their goals to their replay"""


@dataclass
class OnlineConfig:
    enabled: bool = False
    """train the VAE during RL on the agent's own frames (rig.online): online RIG at skew_alpha 0, Skew-Fit
    below. The pretrain stage then only starts the VAE (vae.epochs may be 0: no pretraining). Needs
    vae.kind beta_vae"""
    skew_alpha: float = 0.0
    """Skew-Fit's power alpha in [-1, 0]: frames are replayed with weight p(x)^alpha; 0 is uniform"""
    skew_start_steps: int = 10_000
    """env steps before the weights are skewed (until then they are uniform: the VAE first needs to fit)"""
    skew_samples: int = 10
    """latent draws per frame in the importance-sampled estimate of log p(x)"""
    skew_pool: int = 1_024
    """stored frames drawn uniformly and scored at each VAE update; training batches and goals are then
    drawn from them with the skew weights (scoring 1,024 frames with 10 draws costs about as much as 150
    VAE gradient steps of 64 frames on a 2-core CPU)"""
    skew_cap: float = 5.0
    """no frame's weight exceeds this many times the uniform weight (p(x)^-1 over per-image likelihoods that
    differ by tens of nats would put all the weight on one frame). The share of effective samples is at
    least 1 / skew_cap; at 20 it sat at that floor, 0.05 of the pool (README, Skew-Fit)"""
    update_every: int = 2_000
    """env steps between VAE updates; the first comes at agent.learning_starts"""
    first_batches: int = 3_000
    """VAE gradient steps at the first update (the VAE starts untrained; pretraining draws the hand after
    2,000 to 5,000 steps; with 1,000 here, one probe run's hand probe stayed near 0 through 30,000 env
    steps, README, Skew-Fit)"""
    batches: int = 200
    """VAE gradient steps at every later update"""
    goal_pool: int = 1_000
    """exploration goals drawn from the scored frames with the skew weights at each update"""


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
    """CPU threads for torch, at most the CPUs there are; 0 lets rig choose (rig.threads): 1 for the agent
    loop (and an online run's VAE updates), which loses little alone and does not collapse beside another
    busy process, and the CPUs other processes leave free for VAE pretraining"""
    run_dir: str = "runs/default"
    """where the run's products are written"""
    env: EnvConfig = field(default_factory=EnvConfig)
    data: DataConfig = field(default_factory=DataConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    online: OnlineConfig = field(default_factory=OnlineConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


class ConfigError(UserError, ValueError):
    """A config file or override that does not fit the schema, or a value out of its range."""


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Schema defaults, then the YAML file at ``path`` (a name in ``configs/`` also works), then overrides."""
    merged = _schema()
    sources: list[tuple[str, Any]] = []
    if path is not None:
        resolved = resolve_config_path(path)
        sources.append((str(resolved), _load_yaml(resolved)))
    if overrides:
        sources.append(("overrides", _parse_overrides(overrides)))
    for origin, source in sources:
        merged = _merge_checked(merged, source, origin)
    config = _resolved(merged)
    validate(config)
    return config


def _schema() -> DictConfig:
    """The schema's defaults; every key is fixed except those under ``env.kwargs``, which are the env's."""
    schema = OmegaConf.structured(Config)
    OmegaConf.set_struct(schema, True)
    OmegaConf.set_struct(schema.env.kwargs, False)
    return schema


def _resolved(merged: DictConfig) -> Config:
    """The config object, with ``${...}`` interpolations resolved; one that cannot be names its key."""
    try:
        config = OmegaConf.to_object(merged)
    except InterpolationResolutionError as error:
        key = str(getattr(error, "full_key", ""))
        container = OmegaConf.to_container(merged)
        raw = (
            flatten({str(k): v for k, v in container.items()}).get(key)
            if isinstance(container, dict)
            else None
        )
        problem = _first_line(str(error.msg))
        raise ConfigError(f"{key}={raw!r}: cannot resolve the interpolation: {problem}") from None
    assert isinstance(config, Config)
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
    merged = _merge_checked(_schema(), OmegaConf.create(data), origin)
    config = OmegaConf.to_object(merged)
    assert isinstance(config, Config)
    return config


def section_hash(*sections: Any) -> str:
    """A short stable hash of config sections (dataclasses or plain values), for caching."""
    payload = json.dumps([_plain(s) for s in sections], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def validate(config: Config) -> None:
    """Every range and every combination that the schema's types cannot express; names each key."""
    problems = [
        *_failed(_run_checks(config)),
        *_failed(_env_checks(config.env)),
        *_failed(_data_checks(config.data)),
        *_failed(_vae_checks(config.vae)),
        *_failed(_agent_checks(config.agent)),
        *_failed(_training_checks(config)),
        *_failed(_swap_checks(config)),
        *_failed(_goal_prior_checks(config)),
        *_failed(_inverse_checks(config)),
        *_failed(_online_checks(config)),
        *_failed(_eval_checks(config.eval)),
    ]
    if problems:
        raise ConfigError("invalid config: " + "; ".join(problems))


Checks = list[tuple[bool, str]]
"""(holds, what the setting must be) pairs"""


def _failed(checks: Checks) -> list[str]:
    return [message for ok, message in checks if not ok]


def _run_checks(config: Config) -> Checks:
    device = device_problem(config.device)
    return [
        (0 <= config.seed <= MAX_SEED, f"seed must be in [0, {MAX_SEED}]"),
        (config.torch_threads >= 0, "torch_threads must be >= 0 (0: rig's choice)"),
        (bool(config.run_dir.strip()), "run_dir must not be empty"),
        (
            not Path(config.run_dir).exists() or Path(config.run_dir).is_dir(),
            f"run_dir {config.run_dir!r} is an existing file, not a directory: choose another run_dir",
        ),
        (device is None, f"device: {device}"),
    ]


def device_problem(name: str) -> str | None:
    """Why ``name`` is not a torch device rig can use, or None; whether CUDA is present is checked later."""
    if name == "auto":
        return None
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        return f"{name!r} is not a torch device; use auto, cpu, cuda, cuda:N or mps"
    if device.type not in DEVICE_TYPES:
        return f"{name!r} is not a device type rig runs on; use auto, cpu, cuda, cuda:N or mps"
    return None


def _env_checks(env: EnvConfig) -> Checks:
    problem = env_id_problem(env)
    return [
        (problem is None, f"env.id: {problem}"),
        (env.image_size >= 16, "env.image_size must be at least 16"),
        (env.max_episode_steps >= 1, "env.max_episode_steps must be at least 1"),
        (env.frame_stack >= 1, "env.frame_stack must be at least 1"),
    ]


def rig_env_ids() -> list[str]:
    """The gymnasium ids that ``envs`` registers."""
    return sorted(env_id for env_id in gymnasium.registry if env_id.startswith("rig/"))


def env_id_problem(env: EnvConfig) -> str | None:
    """Why ``env.id`` cannot be made (after importing ``env.module``), or None."""
    if env.module:
        try:
            importlib.import_module(env.module)
        except Exception as error:  # the user's module: any failure to import it is the same problem
            return f"env.module {env.module!r} does not import: {type(error).__name__}: {error}"
    if env.id in gymnasium.registry:
        return None
    close = difflib.get_close_matches(env.id, list(gymnasium.registry), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    where = (
        f" after importing {env.module!r}"
        if env.module
        else "; set env.module to the module that registers it"
    )
    return f"{env.id!r} is not a registered gymnasium id{where} (rig's own: {', '.join(rig_env_ids())}){hint}"


def _data_checks(data: DataConfig) -> Checks:
    episodes = -(-data.num_frames // max(data.frames_per_episode, 1))
    heldout_episodes = max(1, round(episodes * data.heldout_fraction))
    return [
        (data.num_frames >= 1, "data.num_frames must be at least 1"),
        (0.0 <= data.teleport_fraction <= 1.0, "data.teleport_fraction must be in [0, 1]"),
        (data.frames_per_episode >= 2, "data.frames_per_episode must be at least 2"),
        (0.0 <= data.factor_swaps <= 1.0, "data.factor_swaps must be in [0, 1]"),
        (
            data.factor_swaps == 0.0 or (data.frames_per_episode - 1) % 3 == 0,
            "data.factor_swaps records the reset frame and then triples: data.frames_per_episode - 1 must be "
            f"a multiple of 3 (got {data.frames_per_episode})",
        ),
        (0.0 < data.heldout_fraction < 1.0, "data.heldout_fraction must be in (0, 1)"),
        (
            heldout_episodes < episodes,
            f"data.num_frames / data.frames_per_episode gives {episodes} collection episode(s), and with "
            f"data.heldout_fraction={data.heldout_fraction} {heldout_episodes} are held out, leaving none to "
            "train on: collect more frames or shorter episodes",
        ),
    ]


def _vae_checks(vae: VAEConfig) -> Checks:
    return [
        (vae.z_dim >= 1, "vae.z_dim must be at least 1"),
        (vae.context_dim >= 1, "vae.context_dim must be at least 1"),
        (math.isfinite(vae.beta) and vae.beta >= 0.0, "vae.beta must be finite and >= 0"),
        (vae.epochs >= 0, "vae.epochs must be >= 0"),
        (vae.kl_warmup_epochs >= 0, "vae.kl_warmup_epochs must be >= 0"),
        (vae.batch_size >= 1, "vae.batch_size must be at least 1"),
        (vae.decoder_channels >= 1, "vae.decoder_channels must be at least 1"),
        (_positive(vae.lr), "vae.lr must be finite and > 0"),
        (
            not (vae.kind == "cc_vae" and vae.context_film and vae.decoder == "deconv"),
            "vae.context_film needs vae.decoder=broadcast or slots (or set vae.context_film=false)",
        ),
        (
            not vae.decodes_images or vae.decoder != "slots" or vae.z_dim % 2 == 0,
            "vae.decoder=slots splits z in two halves (hand, object): vae.z_dim must be even",
        ),
        (
            math.isfinite(vae.additivity_weight) and vae.additivity_weight >= 0.0,
            "vae.additivity_weight must be finite and >= 0",
        ),
        (
            vae.additivity_weight == 0.0 or vae.kind in ("beta_vae", "cc_vae"),
            "vae.additivity_weight needs vae.kind=beta_vae or cc_vae",
        ),
        (
            math.isfinite(vae.orthogonality_weight) and vae.orthogonality_weight >= 0.0,
            "vae.orthogonality_weight must be finite and >= 0",
        ),
        (
            vae.orthogonality_weight == 0.0 or vae.kind in ("beta_vae", "cc_vae"),
            "vae.orthogonality_weight needs vae.kind=beta_vae or cc_vae",
        ),
        (
            math.isfinite(vae.balance_weight) and vae.balance_weight >= 0.0,
            "vae.balance_weight must be finite and >= 0",
        ),
        (
            vae.balance_weight == 0.0 or vae.kind in ("beta_vae", "cc_vae"),
            "vae.balance_weight needs vae.kind=beta_vae or cc_vae",
        ),
        (
            math.isfinite(vae.inverse_weight) and vae.inverse_weight >= 0.0,
            "vae.inverse_weight must be finite and >= 0",
        ),
        (
            vae.inverse_weight == 0.0 or vae.kind in ("beta_vae", "cc_vae"),
            "vae.inverse_weight needs vae.kind=beta_vae or cc_vae",
        ),
        (
            vae.encoder == "rig" or vae.kind in ("beta_vae", "cc_vae"),
            "vae.encoder=reference needs vae.kind=beta_vae or cc_vae",
        ),
        (
            vae.z_augment == "none" or vae.kind == "cc_vae",
            f"vae.z_augment={vae.z_augment} needs vae.kind=cc_vae: only the CC-VAE has a context c to carry "
            "the appearance hidden from z",
        ),
    ]


def _agent_checks(agent: AgentConfig) -> Checks:
    return [
        (all(size >= 1 for size in agent.net_arch), "agent.net_arch sizes must be at least 1"),
        (_positive(agent.learning_rate), "agent.learning_rate must be finite and > 0"),
        (agent.batch_size >= 1, "agent.batch_size must be at least 1"),
        (0.0 < agent.gamma <= 1.0, "agent.gamma must be in (0, 1]"),
        (0.0 < agent.tau <= 1.0, "agent.tau must be in (0, 1]"),
        (agent.buffer_size >= 1, "agent.buffer_size must be at least 1"),
        (agent.learning_starts >= 0, "agent.learning_starts must be >= 0"),
        (agent.gradient_steps >= 1, "agent.gradient_steps must be at least 1"),
        (_non_negative(agent.action_noise), "agent.action_noise must be finite and >= 0"),
        (agent.policy_delay >= 1, "agent.policy_delay must be at least 1"),
        (_non_negative(agent.target_policy_noise), "agent.target_policy_noise must be finite and >= 0"),
        (_non_negative(agent.target_noise_clip), "agent.target_noise_clip must be finite and >= 0"),
        (agent.total_steps >= 1, "agent.total_steps must be at least 1"),
        (_fractions_ok(agent), "agent goal fractions (rollout, prior, future) must be >= 0 and sum to 1"),
        (_positive(agent.sparse_threshold), "agent.sparse_threshold must be finite and > 0"),
    ]


def _swap_checks(config: Config) -> Checks:
    return [
        (
            getattr(config.vae, name) == 0.0 or config.data.factor_swaps > 0.0,
            f"vae.{name} trains on factor swaps: set data.factor_swaps > 0 too",
        )
        for name in ("additivity_weight", "orthogonality_weight", "balance_weight")
    ]


def _inverse_checks(config: Config) -> Checks:
    random_episodes = config.data.teleport_fraction < 1.0 and config.data.factor_swaps < 1.0
    return [
        (
            config.vae.inverse_weight == 0.0 or random_episodes,
            "vae.inverse_weight trains on random-action frames: set data.teleport_fraction and "
            "data.factor_swaps below 1",
        ),
        (
            config.vae.inverse_weight == 0.0 or not config.online.enabled,
            "vae.inverse_weight trains in pretraining only, and online.enabled retrains the VAE without it: "
            "use one or the other",
        ),
    ]


def _goal_prior_checks(config: Config) -> Checks:
    fitted_to_frames = not config.vae.is_oracle and not config.online.enabled
    teleported = config.agent.goal_prior == "teleported" and fitted_to_frames
    scaled = config.agent.reward_scale == "goal_std"
    return [
        (
            not teleported or config.data.teleport_fraction > 0.0,
            "agent.goal_prior=teleported fits imagined goals to the teleported frames: set "
            "data.teleport_fraction > 0 too",
        ),
        (
            not scaled or (fitted_to_frames and config.agent.goal_prior != "standard"),
            "agent.reward_scale=goal_std scales the reward by the goal prior fitted to the frames: it needs "
            "an image representation (not vae.kind=state), agent.goal_prior fitted or teleported, and "
            "online.enabled false",
        ),
    ]


def _training_checks(config: Config) -> Checks:
    """What the agent's replay and relabelling need of buffer, warm-up and episode length."""
    agent, episode = config.agent, config.env.max_episode_steps
    return [
        (
            agent.learning_starts > episode,
            f"agent.learning_starts ({agent.learning_starts}) must exceed env.max_episode_steps ({episode}): "
            "relabelling samples only finished episodes",
        ),
        (
            agent.total_steps > agent.learning_starts,
            f"agent.total_steps ({agent.total_steps}) must exceed agent.learning_starts "
            f"({agent.learning_starts}), or the agent never learns",
        ),
        (
            agent.buffer_size >= agent.learning_starts,
            f"agent.buffer_size ({agent.buffer_size}) must hold the agent.learning_starts "
            f"({agent.learning_starts}) warm-up transitions",
        ),
        (
            agent.buffer_size >= 2 * episode,
            f"agent.buffer_size ({agent.buffer_size}) must hold at least two episodes (2 x "
            f"env.max_episode_steps = {2 * episode}), so that a whole episode is always there to relabel",
        ),
    ]


def _online_checks(config: Config) -> Checks:
    online = config.online
    checks: Checks = [
        (
            online.enabled or config.vae.epochs >= 1 or config.vae.is_oracle,
            "vae.epochs must be at least 1 unless online.enabled trains the VAE during RL",
        ),
        (-1.0 <= online.skew_alpha <= 0.0, "online.skew_alpha must lie in [-1, 0]"),
        (online.skew_start_steps >= 0, "online.skew_start_steps must be >= 0"),
        (online.skew_samples >= 1, "online.skew_samples must be at least 1"),
        (online.skew_pool >= 1, "online.skew_pool must be at least 1"),
        (
            math.isfinite(online.skew_cap) and online.skew_cap >= 1.0,
            "online.skew_cap must be finite and >= 1",
        ),
        (online.update_every >= 1, "online.update_every must be at least 1"),
        (online.first_batches >= 1, "online.first_batches must be at least 1"),
        (online.batches >= 0, "online.batches must be >= 0"),
        (online.goal_pool >= 1, "online.goal_pool must be at least 1"),
    ]
    if online.enabled:
        checks.append((config.vae.kind == "beta_vae", "online.enabled needs vae.kind=beta_vae"))
        checks.append(
            (
                config.env.frame_stack == 1,
                "online.enabled re-encodes single frames in its replay buffer: it needs env.frame_stack=1",
            )
        )
    if config.vae.is_oracle:
        checks.append(
            (
                config.env.frame_stack == 1,
                "the state oracle observes the env's own state, not frames: it needs env.frame_stack=1",
            )
        )
    return checks


def _eval_checks(eval_cfg: EvalConfig) -> Checks:
    return [
        (eval_cfg.episodes >= 1, "eval.episodes must be at least 1"),
        (eval_cfg.every >= 1, "eval.every must be at least 1"),
        (0 <= eval_cfg.seed <= MAX_SEED, f"eval.seed must be in [0, {MAX_SEED}]"),
        (eval_cfg.gifs >= 0, "eval.gifs must be >= 0"),
    ]


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0.0


def _non_negative(value: float) -> bool:
    return math.isfinite(value) and value >= 0.0


def _fractions_ok(agent: AgentConfig) -> bool:
    fractions = (agent.rollout_goal_fraction, agent.prior_goal_fraction, agent.future_goal_fraction)
    return min(fractions) >= 0.0 and abs(sum(fractions) - 1.0) < 1e-6


def flat_settings(config: Config) -> dict[str, Any]:
    """Every setting that shapes the run under its dotted key, e.g. ``{"agent.algo": "td3", ...}``.

    The ``online.*`` settings count only when ``online.enabled`` is set: otherwise nothing reads them, and
    a change of their defaults must not make finished runs look as if their settings changed.
    """
    flat = flatten(to_dict(config))
    # Settings added after runs were recorded count only when set, so that those runs' keys still match.
    flat = {key: value for key, value in flat.items() if not is_unset_neutral(key, value)}
    if not config.online.enabled:
        flat = {
            key: value
            for key, value in flat.items()
            if not key.startswith("online.") or key == "online.enabled"
        }
    return flat


UNSET_NEUTRAL: dict[str, Any] = {
    "env.module": "",
    "vae.z_augment": "none",
    "env.frame_stack": 1,
    "data.factor_swaps": 0.0,
    "vae.additivity_weight": 0.0,
    "vae.orthogonality_weight": 0.0,
    "vae.balance_weight": 0.0,
    "vae.inverse_weight": 0.0,
    "vae.encoder": "rig",
}
"""settings that change nothing at these values, and are left out of the settings a run records (an empty
env.kwargs flattens to no key at all)"""


def is_unset_neutral(key: str, value: Any) -> bool:
    """Whether the dotted setting ``key`` is at its ``UNSET_NEUTRAL`` value, so records leave it out."""
    return key in UNSET_NEUTRAL and value == UNSET_NEUTRAL[key]


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _load_yaml(path: Path) -> DictConfig:
    text = _read_text(path)
    try:
        content = yaml.safe_load(text)
        # OmegaConf's own loader reads numbers such as 1e-3 as floats, as the schema expects.
        loaded = OmegaConf.create(text) if isinstance(content, dict) else None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {_yaml_problem(error)}") from None
    if content is None:
        raise ConfigError(
            f"{path} holds no settings (it is empty or only comments); give a config that sets "
            "something, or no config at all to run the schema defaults"
        )
    if not isinstance(loaded, DictConfig):
        held = f"{type(content).__name__} {_first_line(repr(content))[:60]}"
        raise ConfigError(f"{path} holds a {held}, not a mapping of settings such as agent: {{algo: sac}}")
    return loaded


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        byte = error.object[error.start : error.start + 1]
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {error.start} is {byte!r}); save it as UTF-8"
        ) from None


def _yaml_problem(error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"{error.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return str(error).splitlines()[0]


def _merge_checked(base: Any, source: Any, origin: str) -> DictConfig:
    try:
        merged = OmegaConf.merge(base, source)
    except (ConfigKeyError, ConfigAttributeError) as error:
        key = str(getattr(error, "full_key", "") or getattr(error, "key", ""))
        raise ConfigError(f"{origin}: unknown config key {key!r}{_suggestion(key)}") from None
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", "")
        raise ConfigError(f"{origin}: bad value for {key!r}: {_first_line(str(error.msg))}") from None
    assert isinstance(merged, DictConfig)
    return merged


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _parse_overrides(overrides: Iterable[str]) -> DictConfig:
    items = list(overrides)
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value, e.g. agent.algo=sac")
    try:
        return OmegaConf.from_dotlist(items)
    except (yaml.YAMLError, OmegaConfBaseException) as error:
        problem = _yaml_problem(error) if isinstance(error, yaml.YAMLError) else _first_line(str(error))
        raise ConfigError(f"overrides {items}: cannot parse a value: {problem}") from None


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
