"""The FLOP formula against torch's FlopCounterMode on one real training step, for every preset
and every objective. S/B/L run on the meta device (shapes only: full widths and depths, no memory)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from vtp.config import from_dict
from vtp.flops.tokenizer import block_forward, step_flops, train_flops
from vtp.models.presets import PRESETS
from vtp.models.vit import set_fused_attention
from vtp.train.budget import resolve
from vtp.train.config import TokenizerTrainConfig
from vtp.train.loop import build_model
from vtp.train.step import Centers, compute_losses, make_teacher


def _config(preset: str, objective: str) -> TokenizerTrainConfig:
    if preset.startswith("cpu"):
        sizes = dict(image_size=32, patch_size=4, latent_dim=16, batch_size=16, decoder_depth=2)
    else:  # paper geometry (patch 16, f16d64), 64 px keeps the meta-device graph small
        sizes = dict(image_size=64, patch_size=16, latent_dim=64, batch_size=8, decoder_depth=4, local_crop_size=32)
    return from_dict(TokenizerTrainConfig, dict(encoder=preset, objective=objective, budget_steps=1, **sizes))


def _counted_step_flops(cfg: TokenizerTrainConfig, device: str) -> float:
    sizes = resolve(cfg)
    torch.manual_seed(0)
    with torch.device(device):
        model = build_model(cfg, sizes)
        teacher = make_teacher(model) if sizes.use_ssl else None
        k = model.ssl_head.prototypes.shape[0] if sizes.use_ssl else 1
        centers = Centers(torch.zeros(1, k), torch.zeros(1, k))
    set_fused_attention(model, False)
    if teacher is not None:
        set_fused_attention(teacher, False)
    images = (torch.rand(cfg.batch_size, 3, cfg.image_size, cfg.image_size) * 2 - 1).to(device)
    captions = [f"a small red circle number {i}" for i in range(cfg.batch_size)]
    with FlopCounterMode(display=False) as counter:
        out = compute_losses(model, teacher, images, captions, cfg, sizes, centers, 0.04, torch.Generator().manual_seed(0))
        out.total.backward()
    return float(counter.get_total_flops())


@pytest.mark.parametrize("objective", ["ae", "clip+ae", "ssl+ae", "vtp"])
@pytest.mark.parametrize("preset", [p for p in PRESETS if p.startswith("cpu")])
def test_formula_matches_flop_counter_cpu_presets(preset, objective):
    cfg = _config(preset, objective)
    counted = _counted_step_flops(cfg, "cpu")
    assert step_flops(cfg) == pytest.approx(counted, rel=1e-3)  # exact by construction (brief: 10 %)


@pytest.mark.parametrize("preset", ["S", "B", "L"])
def test_formula_matches_flop_counter_paper_presets(preset):
    cfg = _config(preset, "vtp")
    counted = _counted_step_flops(cfg, "meta")
    assert step_flops(cfg) == pytest.approx(counted, rel=1e-3)  # exact by construction (brief: 10 %)


def test_block_forward_by_hand():
    # T=2, D=4, MLP 8: qkv 2*2*4*12=192, proj 2*2*4*4=64, attention 2*2*2*4*2=64, mlp 2*2*4*8*2=256
    assert block_forward(2, 4, 8) == 192 + 64 + 64 + 256


def test_budgets_in_steps_samples_and_flops_agree():
    base = dict(encoder="cpu-xs", batch_size=16)
    per_step = step_flops(from_dict(TokenizerTrainConfig, dict(base, budget_steps=1)))
    assert train_flops(dict(base, budget_steps=10)) == pytest.approx(10 * per_step)
    assert train_flops(dict(base, budget_samples=160)) == pytest.approx(10 * per_step)
    assert train_flops(dict(base, budget_samples=161)) == pytest.approx(11 * per_step)  # ceil
    assert train_flops(dict(base, budget_flops=10.5 * per_step)) == pytest.approx(10 * per_step)  # floor


def test_train_flops_does_not_import_torch():
    code = (
        "import sys; from vtp.flops.tokenizer import train_flops; "
        "print(train_flops({'encoder': 'L', 'image_size': 256, 'patch_size': 16, 'budget_samples': 10**6})); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
