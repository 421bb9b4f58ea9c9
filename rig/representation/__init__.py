"""Representations for goal-conditioned RL: beta-VAE, context-conditioned VAE, the supervised state encoder
and the state identity."""

from rig.representation.base import Representation, images_to_tensor, tensor_to_images
from rig.representation.beta_vae import BetaVAE
from rig.representation.cc_vae import CCVAE
from rig.representation.checkpoint import (
    REPRESENTATION_KINDS,
    RepresentationModule,
    build_representation,
    load_representation,
    load_state_checked,
    read_checkpoint,
    save_representation,
)
from rig.representation.identity import StateRepresentation
from rig.representation.supervised import SupervisedEncoder

__all__ = [
    "CCVAE",
    "REPRESENTATION_KINDS",
    "BetaVAE",
    "Representation",
    "RepresentationModule",
    "StateRepresentation",
    "SupervisedEncoder",
    "build_representation",
    "images_to_tensor",
    "load_representation",
    "load_state_checked",
    "read_checkpoint",
    "save_representation",
    "tensor_to_images",
]
