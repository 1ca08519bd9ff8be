"""DINOv2's options for real images: block-wise masking and photometric augmentations (off by
default), and KoLeo on both global crops."""

from __future__ import annotations

import math

import pytest
import torch

from vtp.config import from_dict
from vtp.losses.koleo import koleo_loss
from vtp.losses.masking import block_patch_mask
from vtp.train import photometric
from vtp.train.budget import resolve
from vtp.train.config import TokenizerTrainConfig
from vtp.train.loop import train


def test_block_mask_has_the_fixed_count_in_rectangles():
    m = block_patch_mask(6, 8, 8, 19, torch.Generator().manual_seed(0))
    assert m.shape == (6, 64) and (m.sum(dim=1) == 19).all()
    # blocks: most masked patches have a masked 4-neighbour (uniform random masks at 30% do far less often)
    grid = m.view(6, 8, 8)
    nb = torch.zeros_like(grid)
    nb[:, 1:] |= grid[:, :-1]
    nb[:, :-1] |= grid[:, 1:]
    nb[:, :, 1:] |= grid[:, :, :-1]
    nb[:, :, :-1] |= grid[:, :, 1:]
    assert (grid & nb).sum() / grid.sum() > 0.8
    assert torch.equal(m, block_patch_mask(6, 8, 8, 19, torch.Generator().manual_seed(0)))


def test_photometric_keeps_range_and_is_a_function_of_its_draws():
    x = torch.rand(5, 3, 16, 16) * 2 - 1
    p = photometric.draw(5, "global1", torch.Generator().manual_seed(1))
    a, b = photometric.apply(x, p), photometric.apply(x, p)
    assert a.shape == x.shape and torch.equal(a, b) and a.min() >= -1 and a.max() <= 1
    off = torch.tensor([[0.0, 1, 1, 1, 0, 0, 0]]).expand(5, 7)  # nothing on: identity
    torch.testing.assert_close(photometric.apply(x, off), x)
    gray = torch.tensor([[0.0, 1, 1, 1, 1, 0, 0]]).expand(5, 7)
    g = photometric.apply(x, gray)
    torch.testing.assert_close(g[:, 0], g[:, 1])


def test_training_with_block_masks_and_photometric(tmp_path):
    cfg = from_dict(TokenizerTrainConfig, dict(encoder="cpu-xs", objective="vtp", batch_size=8, budget_steps=2,
                                               unique_samples=8, latent_dim=8, decoder_depth=1, checkpoints=[40],
                                               mask_mode="block", photometric=True, n_local_crops=3))
    out = train(cfg, run_dir=tmp_path, log=lambda _m: None)
    assert all(math.isfinite(v) for v in out["final_losses"].values())
    assert resolve(cfg).n_mask == 19


def test_koleo_is_summed_over_both_global_crops():
    # the step computes sum(koleo(c) for c in cls.chunk(2)) as DINOv2; two copies of the corners -> twice
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    both = sum(koleo_loss(c) for c in torch.cat([x, x]).chunk(2))
    assert both.item() == pytest.approx(2 * -math.log(math.sqrt(2)), rel=1e-5)
