"""Plain inference with a representation: encode a dataset, reconstruct frames, decode prior samples.

Everything runs without gradients, in eval mode, on the model's own device, in batches, and leaves the
model's training flag and the global RNG as it found them. The pipeline (pretraining, online learning,
goal priors), the diagnostics and the scripts all run the model through here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor, nn

from rig.data import FrameDataset
from rig.representation.base import Representation, images_to_tensor, module_device, tensor_to_images


def _device(rep: Representation) -> torch.device:
    return module_device(rep) if isinstance(rep, nn.Module) else torch.device("cpu")


@contextmanager
def inference(rep: Representation) -> Iterator[torch.device]:
    """No gradients and eval mode (the previous mode is restored afterwards); yields the model's device."""
    was_training = isinstance(rep, nn.Module) and rep.training
    if isinstance(rep, nn.Module):
        rep.eval()
    try:
        with torch.no_grad():
            yield _device(rep)
    finally:
        if isinstance(rep, nn.Module):
            rep.train(was_training)


@contextmanager
def seeded(device: torch.device, seed: int) -> Iterator[None]:
    """Seed torch's global RNG (the loss samples z with it) without disturbing the caller's stream."""
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def generator_for(rep: Representation, seed: int) -> torch.Generator:
    return torch.Generator(device=_device(rep)).manual_seed(seed)


def batches(count: int, batch_size: int) -> Iterator[slice]:
    for start in range(0, count, batch_size):
        yield slice(start, min(start + batch_size, count))


def _model_input(rep: Representation, array: np.ndarray, device: torch.device) -> Tensor:
    """uint8 frames for image representations, float state vectors for the state identity."""
    if rep.input_kind == "image":
        return images_to_tensor(array, device)
    return torch.as_tensor(array, dtype=torch.float32, device=device)


def optional_images(images: np.ndarray | None, device: torch.device) -> Tensor | None:
    return None if images is None else images_to_tensor(images, device)


def check_contexts(images: np.ndarray, contexts: np.ndarray | None) -> None:
    if contexts is not None and len(contexts) != len(images):
        raise ValueError(f"got {len(contexts)} context images for {len(images)} images")


def require_images(rep: Representation, what: str) -> None:
    if rep.input_kind != "image":
        raise ValueError(f"{what} needs an image representation, got input_kind={rep.input_kind!r}")


def require_image_decoder(rep: Representation, what: str) -> None:
    """``what`` draws images from latents: only the VAEs can (the supervised encoder decodes to states)."""
    require_images(rep, what)
    if rep.output_kind != "image":
        raise ValueError(
            f"{what} needs a representation that decodes images, got output_kind={rep.output_kind!r}"
        )


def encode_dataset(
    rep: Representation, images: np.ndarray, contexts: np.ndarray | None = None, batch_size: int = 512
) -> np.ndarray:
    """float32 (N, latent_dim) encoder means of ``images`` (states for the state identity), in batches.

    ``contexts`` are the context images of the frames, needed by the CC-VAE only.
    """
    check_contexts(images, contexts)
    chunks = [np.zeros((0, rep.latent_dim), dtype=np.float32)]
    with inference(rep) as device:
        for batch in batches(len(images), batch_size):
            context = None if contexts is None else images_to_tensor(contexts[batch], device)
            latent = rep.encode(_model_input(rep, images[batch], device), context)
            chunks.append(latent.float().cpu().numpy())
    return np.concatenate(chunks)


def reconstruct_tensor(rep: Representation, images: np.ndarray, contexts: np.ndarray | None) -> Tensor:
    """(B, 3, H, W) decode(encode(x)) in [0, 1]: the reconstruction from the posterior mean."""
    with inference(rep) as device:
        latent = rep.encode(images_to_tensor(images, device), optional_images(contexts, device))
        return rep.decode(latent)


def reconstruct(
    rep: Representation, images: np.ndarray, contexts: np.ndarray | None = None, batch_size: int = 512
) -> np.ndarray:
    """uint8 (N, H, W, 3) reconstructions of ``images`` from their encoder means."""
    require_image_decoder(rep, "reconstruct")
    check_contexts(images, contexts)
    chunks = [np.zeros((0, *images.shape[1:]), dtype=np.uint8)]
    for batch in batches(len(images), batch_size):
        context = None if contexts is None else contexts[batch]
        chunks.append(tensor_to_images(reconstruct_tensor(rep, images[batch], context)))
    return np.concatenate(chunks)


def prior_latents(
    rep: Representation, context_image: np.ndarray | None, n: int, generator: torch.Generator | None
) -> torch.Tensor:
    """(n, latent_dim) prior samples: imagined goals, under the context's c for the CC-VAE."""
    with inference(rep) as device:
        context_latent = None
        if rep.context_dim > 0:
            if context_image is None:
                raise ValueError(
                    "a context-conditioned representation needs a context frame (its episode's first frame) "
                    "to sample from its prior"
                )
            context_latent = rep.encode_context(images_to_tensor(context_image, device))
        return rep.sample_prior(n, context_latent, generator)


def prior_images(
    rep: Representation, context_image: np.ndarray | None, n: int, generator: torch.Generator | None
) -> np.ndarray:
    """uint8 (n, H, W, 3) decoded prior samples; under the context's c for the CC-VAE, plain otherwise."""
    require_image_decoder(rep, "prior_images")
    latents = prior_latents(rep, context_image, n, generator)
    with inference(rep):
        return tensor_to_images(rep.decode(latents))


def contexts_of(rep: Representation, dataset: FrameDataset, indices: np.ndarray) -> np.ndarray | None:
    """The context images of the frames at ``indices``, for models that take them."""
    return dataset.images[dataset.context_index[indices]] if rep.context_dim > 0 else None
