"""The CC-RIG authors' encoder body (``vae.encoder=reference``): its layers, train and eval behaviour,
checkpoints, pretraining and resuming with it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from rig.config import ConfigError, load_config
from rig.data import FrameDataset, collect
from rig.pretrain import make_representation
from rig.representation import load_representation, save_representation
from rig.representation.nets import REFERENCE_FC, encoder_body
from tests.test_pretrain import assert_interrupted_pretraining_resumes_exactly


def reference(kind: str):
    cfg = load_config("debug", ["device=cpu", f"vae.kind={kind}", "vae.encoder=reference"])
    return make_representation(cfg.vae, cfg.env.image_size)


def test_the_reference_body_is_three_layers_with_batch_norm_relu_and_dropout() -> None:
    body, width = encoder_body(576, 256, "reference")
    assert width == REFERENCE_FC[-1] == 150
    linears = [layer for layer in body.modules() if isinstance(layer, nn.Linear)]
    shapes = [(layer.in_features, layer.out_features) for layer in linears]
    assert shapes == [(576, 500), (500, 300), (300, 150)]
    kinds = [type(layer) for layer in body]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Dropout] * 3
    assert all(layer.p == 0.5 for layer in body if isinstance(layer, nn.Dropout))
    plain, plain_width = encoder_body(576, 256, "rig")
    assert plain_width == 256 and not any(isinstance(layer, nn.BatchNorm1d) for layer in plain.modules())
    with pytest.raises(ValueError, match="encoder body must be one of rig, reference"):
        encoder_body(576, 256, "resnet")


@pytest.mark.parametrize("kind", ["beta_vae", "cc_vae"])
def test_a_reference_encoder_is_noisy_in_training_exact_in_eval_and_survives_a_checkpoint(
    kind: str, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    rep = reference(kind)
    norms = [module for module in rep.modules() if isinstance(module, nn.BatchNorm1d)]
    assert len(norms) == (6 if kind == "cc_vae" else 3), "the context encoder has the body too"
    x = torch.rand(8, 3, 48, 48)
    context = torch.rand(8, 3, 48, 48) if kind == "cc_vae" else None
    rep.train()
    assert not torch.equal(rep.encode(x, context=context), rep.encode(x, context=context)), "dropout"
    rep.loss(x, context)  # one training pass moves the running statistics
    rep.eval()
    first = rep.encode(x, context=context)
    assert torch.equal(first, rep.encode(x, context=context))
    # One frame at a time, as the agent encodes, gives what a batch gives: no batch statistics in eval.
    single = rep.encode(x[:1], context=None if context is None else context[:1])
    torch.testing.assert_close(single, first[:1], rtol=1e-5, atol=1e-5)
    save_representation(tmp_path / "rep.pt", rep, {})
    loaded = load_representation(tmp_path / "rep.pt").eval()
    assert loaded.config_dict()["encoder"] == "reference"
    assert torch.equal(loaded.encode(x, context=context), first)
    assert "encoder" not in make_representation(load_config("debug").vae, 48).config_dict()


def test_the_reference_encoder_is_for_the_vaes_only() -> None:
    with pytest.raises(ConfigError, match="vae.encoder=reference needs vae.kind=beta_vae or cc_vae"):
        load_config("debug", ["vae.kind=supervised", "vae.encoder=reference"])


def test_interrupted_pretraining_with_the_reference_encoder_resumes_to_the_same_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dropout masks come from the random state that ``last.pt`` keeps, the running statistics from
    its weights."""
    cfg = load_config(
        "debug",
        [f"run_dir={tmp_path / 'run'}", "device=cpu", "vae.epochs=3", "vae.kind=cc_vae"]
        + ["vae.encoder=reference"],
    )
    frames: FrameDataset = collect(cfg.env, cfg.data, seed=0, progress=False)
    assert_interrupted_pretraining_resumes_exactly(cfg, frames, tmp_path, monkeypatch)
