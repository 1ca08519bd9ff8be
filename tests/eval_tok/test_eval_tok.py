from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vtp.eval.probe import probe_accuracy, ridge_classifier, synthetic_linear_probe
from vtp.eval.recon import psnr, reconstruction_metrics, ssim
from vtp.eval.zeroshot import zero_shot_accuracy
from vtp.models.tokenizer import TokenizerSpec, VisualTokenizer


def test_psnr_by_hand():
    x = torch.zeros(1, 3, 4, 4)
    y = torch.full((1, 3, 4, 4), 0.1)  # mse 0.01, range 2 -> 10 log10(400)
    assert psnr(x, y).item() == pytest.approx(10 * math.log10(400.0), rel=1e-5)


def test_ssim_identity_and_constants():
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    torch.testing.assert_close(ssim(x, x), torch.ones(2))
    # constant images a, b: variances 0 -> SSIM = (2ab + C1) / (a^2 + b^2 + C1), C1 = (0.01*2)^2
    a, b, c1 = 0.5, -0.2, 0.0004
    got = ssim(torch.full((1, 1, 11, 11), a), torch.full((1, 1, 11, 11), b))
    assert got.item() == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-4)


def test_ridge_probe_separates_and_counts():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(300) % 3
    x = torch.nn.functional.one_hot(y, 3).float() * 5 + torch.randn(300, 3, generator=g) * 0.1
    assert probe_accuracy(x[:200], y[:200], x[200:], y[200:], 3) == 1.0
    # uninformative features: no better than the majority class on a balanced split
    noise = torch.randn(300, 3, generator=g)
    assert probe_accuracy(noise[:200], y[:200], noise[200:], y[200:], 3) < 0.6
    predict = ridge_classifier(torch.tensor([[0.0], [1.0]]), torch.tensor([0, 1]), 2, l2=0.0)
    assert predict(torch.tensor([[0.1], [0.9]])).tolist() == [0, 1]


def test_eval_entry_points_run_on_a_tiny_tokenizer():
    torch.manual_seed(0)
    model = VisualTokenizer(TokenizerSpec(decoder_depth=1)).eval()
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    m = reconstruction_metrics(model, x, batch_size=3)
    assert set(m) == {"recon_psnr", "recon_ssim"} and math.isfinite(m["recon_psnr"])
    acc = synthetic_linear_probe(model, image_size=32, n_train=60, n_test=40)
    assert 0.0 <= acc <= 1.0
    z = zero_shot_accuracy(model, x, torch.tensor([0, 1, 2, 3]), ["red circle", "green circle", "blue circle", "x"])
    assert 0.0 <= z <= 1.0
    with pytest.raises(ValueError, match="CLIP"):
        zero_shot_accuracy(VisualTokenizer(TokenizerSpec(clip=False)), x, torch.zeros(4).long(), ["a"])


def test_ssim_single_window_matches_the_formula_by_hand():
    # an 11x11 image has exactly one valid window: SSIM is Wang et al.'s formula (eq. 13) over the
    # Gaussian-weighted (sigma 1.5) means, variances and covariance of the whole image
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.2, 0.9, (11, 11))  # means away from 0: the luminance term stays near 1
    y = np.clip(x + rng.normal(0, 0.3, (11, 11)), -1, 1)
    t = np.arange(11) - 5.0
    g = np.exp(-(t**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    mx, my = (w * x).sum(), (w * y).sum()
    vx, vy, cxy = (w * x * x).sum() - mx**2, (w * y * y).sum() - my**2, (w * x * y).sum() - mx * my
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2
    want = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    got = ssim(torch.tensor(x)[None, None].float(), torch.tensor(y)[None, None].float())
    assert got.item() == pytest.approx(want, rel=1e-4)
    assert 0.2 < want < 0.95  # a case where the structure terms matter
