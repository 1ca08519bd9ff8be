"""The decoder GAN fine-tune (second tokenizer stage): hinge losses by hand, a real fine-tune that
changes only the decoder, exact resume, and the stage writing the checkpoint downstream stages read."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from vtp.config import from_dict
from vtp.data.synthetic import SyntheticShapes
from vtp.jobs.context import RunContext
from vtp.losses.gan import hinge_d_loss, hinge_g_loss
from vtp.models.discriminator import PatchDiscriminator
from vtp.stages.decoder import run as run_decoder
from vtp.stages.extract import checkpoint_paths
from vtp.train.checkpoint import load_tokenizer
from vtp.train.config import TokenizerTrainConfig
from vtp.train.gan import finetune_decoder
from vtp.train.gan_config import DecoderGANConfig
from vtp.train.loop import train

GAN = DecoderGANConfig(steps=4, batch_size=4, unique_samples=16, disc_width=8, disc_layers=2, disc_start=1,
                       log_every=2, checkpoint_every=2, lr=1e-3, disc_lr=1e-3)


def _quiet(_msg: str) -> None:
    pass


def test_hinge_losses_by_hand():
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-2.0, 0.0, 1.5])
    # D: relu(1 - real) = [0, .5, 2] -> mean 5/6; relu(1 + fake) = [0, 1, 2.5] -> mean 7/6; halved sum = 1
    assert hinge_d_loss(real, fake).item() == pytest.approx(1.0)
    assert hinge_g_loss(fake).item() == pytest.approx(-(-2.0 + 0.0 + 1.5) / 3)


def test_patch_discriminator_gives_a_logit_map_and_gradients():
    d = PatchDiscriminator(width=8, n_layers=2)
    x = torch.rand(2, 3, 32, 32, requires_grad=True) * 2 - 1
    out = d(x)
    assert out.shape[:2] == (2, 1) and out.shape[-1] > 1  # one logit per patch
    out.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in d.parameters())


@pytest.fixture(scope="module")
def tokenizer_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("tok")
    cfg = from_dict(TokenizerTrainConfig, dict(encoder="cpu-xs", objective="ae", batch_size=8, budget_steps=2,
                                               unique_samples=16, latent_dim=8, decoder_depth=1, checkpoints=[40]))
    train(cfg, run_dir=run_dir, log=_quiet)
    return run_dir


def test_finetune_changes_only_the_decoder_and_resumes_exactly(tokenizer_run, tmp_path):
    torch.set_num_threads(1)
    ds = SyntheticShapes(GAN.unique_samples, image_size=32, seed=0)
    before = load_tokenizer(tokenizer_run / "checkpoints" / "40.pt")
    full = load_tokenizer(tokenizer_run / "checkpoints" / "40.pt")
    out = finetune_decoder(full, GAN, ds, run_dir=tmp_path / "full", log=_quiet)
    assert out["steps"] == 4 and {"rec", "g", "d"} <= set(out["last"])
    for name, p in full.named_parameters():
        same = torch.equal(p, dict(before.named_parameters())[name])
        assert same != name.startswith("decoder."), name  # the decoder moved, nothing else did

    cut = load_tokenizer(tokenizer_run / "checkpoints" / "40.pt")
    finetune_decoder(cut, dataclasses.replace(GAN, steps=2), ds, run_dir=tmp_path / "cut", log=_quiet)
    resumed = load_tokenizer(tokenizer_run / "checkpoints" / "40.pt")  # a fresh process would reload
    finetune_decoder(resumed, GAN, ds, run_dir=tmp_path / "cut", log=_quiet)
    for (name, a), b in zip(full.decoder.state_dict().items(), resumed.decoder.state_dict().values()):
        assert torch.equal(a, b), name


def test_stage_writes_the_checkpoint_extract_reads(tokenizer_run, tmp_path):
    config = {k: v for k, v in dataclasses.asdict(GAN).items()}
    ctx = RunContext(key="dec", stage="decoder", config=config, run_dir=tmp_path / "dec",
                     parents={"tokenizer": tokenizer_run}, checkpoint=40)
    result = run_decoder(ctx)
    assert result["steps"] == 4
    assert not (tmp_path / "dec" / "gan_state.pt").exists()  # the resume state goes once the checkpoint exists
    meta = json.loads((tmp_path / "dec" / "checkpoints" / "40.json").read_text())
    assert meta["k"] == 40 and meta["decoder_gan"]["lambda_gan"] == GAN.lambda_gan and meta["flops"] > 0
    child = RunContext(key="ext", stage="extract", config={}, run_dir=tmp_path / "ext",
                       parents={"tokenizer": tokenizer_run, "decoder": tmp_path / "dec"}, checkpoint=40)
    assert checkpoint_paths(child)[0] == tmp_path / "dec" / "checkpoints" / "40.pt"
    tok = load_tokenizer(checkpoint_paths(child)[0])
    assert tok.decode(tok.encode(torch.zeros(1, 3, 32, 32))).shape == (1, 3, 32, 32)


def test_without_the_gan_term_no_discriminator_is_built(tokenizer_run, tmp_path):
    ds = SyntheticShapes(GAN.unique_samples, image_size=32, seed=0)
    tok = load_tokenizer(tokenizer_run / "checkpoints" / "40.pt")
    out = finetune_decoder(tok, dataclasses.replace(GAN, lambda_gan=0.0), ds, run_dir=tmp_path, log=_quiet)
    assert out["disc_params"] == 0 and set(out["last"]) == {"rec"}
    assert torch.load(tmp_path / "gan_state.pt", weights_only=False)["disc"] is None
