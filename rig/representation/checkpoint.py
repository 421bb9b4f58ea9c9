"""Representation checkpoints: the kind, the constructor config and the state dict, never a pickled object.

Loading rebuilds the model from its config, checks the config against what the caller expects and the
state dict's keys and shapes against the model, and says exactly what does not match.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rig.errors import UNREADABLE_ERRORS, CorruptFileError, MissingFileError, first_line
from rig.io import torch_save
from rig.representation.beta_vae import BetaVAE
from rig.representation.cc_vae import CCVAE
from rig.representation.identity import StateRepresentation
from rig.representation.supervised import SupervisedEncoder

RepresentationModule = BetaVAE | CCVAE | StateRepresentation | SupervisedEncoder
"""The concrete representations: each is an nn.Module implementing ``Representation``."""

REPRESENTATION_KINDS: dict[str, type[RepresentationModule]] = {
    "beta_vae": BetaVAE,
    "cc_vae": CCVAE,
    "state": StateRepresentation,
    "supervised": SupervisedEncoder,
}
_RESERVED_KEYS = ("kind", "config", "state_dict")
# torch.load reports a damaged file through any of these, depending on where the damage is.
_UNREADABLE_ERRORS = UNREADABLE_ERRORS
_WEIGHTS_ONLY_PREAMBLE = "Weights only load failed"


class CheckpointError(CorruptFileError):
    """A representation checkpoint that cannot be read, or that does not fit the model or the caller."""


def representation_kind(model: nn.Module) -> str:
    for kind, cls in REPRESENTATION_KINDS.items():
        if type(model) is cls:
            return kind
    raise ValueError(f"{type(model).__name__} is not a known representation {sorted(REPRESENTATION_KINDS)}")


def save_representation(
    path: str | os.PathLike[str], model: RepresentationModule, extra: Mapping[str, Any] | None = None
) -> None:
    """Write {"kind", "config", "state_dict", **extra} atomically; extra must hold plain values only."""
    extra = dict(extra or {})
    clashes = sorted(set(extra) & set(_RESERVED_KEYS))
    if clashes:
        raise ValueError(f"extra must not use the reserved keys {clashes}")
    state_dict = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    checkpoint = {
        "kind": representation_kind(model),
        "config": model.config_dict(),
        "state_dict": state_dict,
        **extra,
    }
    torch_save(checkpoint, path)


def build_representation(kind: str, config: Mapping[str, Any]) -> RepresentationModule:
    if kind not in REPRESENTATION_KINDS:
        raise ValueError(f"unknown representation kind {kind!r}; valid kinds: {sorted(REPRESENTATION_KINDS)}")
    cls = REPRESENTATION_KINDS[kind]
    try:
        return cls(**config)
    except TypeError as err:
        raise ValueError(f"config {dict(config)} does not fit {cls.__name__}: {err}") from err


def read_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The raw checkpoint dict, checked to have a kind, a config and a state dict of tensors."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"no representation checkpoint at {path}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except _UNREADABLE_ERRORS as err:
        problem = _load_problem(err)
        raise CheckpointError(
            f"{path} is damaged or not a representation checkpoint: torch cannot load it ({problem})"
        ) from err
    _check_layout(checkpoint, path)
    return dict(checkpoint)


def load_representation(
    path: str | os.PathLike[str],
    map_location: str | torch.device = "cpu",
    expected: Mapping[str, Any] | None = None,
) -> RepresentationModule:
    """Rebuild the stored representation on ``map_location``; ``expected`` config entries must match."""
    checkpoint = read_checkpoint(path, map_location)
    check_config(checkpoint["config"], expected or {}, path)
    try:
        model = build_representation(checkpoint["kind"], checkpoint["config"])
        load_state_checked(model, checkpoint["state_dict"])
    except ValueError as err:
        raise CheckpointError(f"{path}: {err}") from err
    return model.to(map_location)


def check_config(
    config: Mapping[str, Any], expected: Mapping[str, Any], path: str | os.PathLike[str] = "checkpoint"
) -> None:
    for key, value in expected.items():
        if key not in config:
            raise CheckpointError(f"{path}: config has no {key!r} (expected {value!r})")
        if config[key] != value:
            raise CheckpointError(f"{path}: config {key!r} is {config[key]!r} but {value!r} was expected")


def load_state_checked(model: nn.Module, state_dict: Mapping[str, Tensor]) -> None:
    """Load ``state_dict`` after checking its keys and shapes; a mismatch raises listing every difference."""
    problems = state_dict_mismatches(model.state_dict(), state_dict)
    if problems:
        raise CheckpointError(f"checkpoint does not fit {type(model).__name__}: " + "; ".join(problems))
    model.load_state_dict(state_dict)


def state_dict_mismatches(
    model_state: Mapping[str, Tensor], checkpoint_state: Mapping[str, Tensor]
) -> list[str]:
    missing = sorted(set(model_state) - set(checkpoint_state))
    unexpected = sorted(set(checkpoint_state) - set(model_state))
    problems = [f"missing from checkpoint: {key}" for key in missing]
    problems += [f"unexpected in checkpoint: {key}" for key in unexpected]
    for key in sorted(set(model_state) & set(checkpoint_state)):
        stored, wanted = tuple(checkpoint_state[key].shape), tuple(model_state[key].shape)
        if stored != wanted:
            problems.append(f"{key}: checkpoint {stored} vs model {wanted}")
    return problems


def _check_layout(checkpoint: object, path: Path) -> None:
    if not isinstance(checkpoint, dict) or any(key not in checkpoint for key in _RESERVED_KEYS):
        raise CheckpointError(
            f"{path} is not a representation checkpoint: it needs keys {list(_RESERVED_KEYS)}"
        )
    if not isinstance(checkpoint["config"], dict) or not isinstance(checkpoint["state_dict"], dict):
        raise CheckpointError(
            f"{path} is not a representation checkpoint: config and state_dict must be dicts"
        )
    if not all(isinstance(value, Tensor) for value in checkpoint["state_dict"].values()):
        raise CheckpointError(f"{path} is not a representation checkpoint: state_dict must hold only tensors")


def _load_problem(error: BaseException) -> str:
    """torch's message in one line; its weights-only refusal, which advises an unsafe load, by type only."""
    if str(error).startswith(_WEIGHTS_ONLY_PREAMBLE):
        return f"{type(error).__name__}: not plain tensors and values"
    return first_line(error)
