"""Held-out reconstruction metrics and oracle controls (vtp.eval.heldout) from real encode/decode
passes: an identity tokenizer, a noise decoder, and the real VisualTokenizer with and without CLIP."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from vtp.data.synthetic import class_names
from vtp.eval.feature_config import FeatureNetConfig
from vtp.eval.features import render_batch, train_feature_net
from vtp.eval.frechet import frechet_distance
from vtp.eval.heldout import heldout_metrics, paired_frechet
from vtp.models.tokenizer import TokenizerSpec, VisualTokenizer

EXPECTED = {"recon_psnr", "recon_ssim", "recon_fd", "oracle_accuracy_real", "oracle_accuracy_recon"}


class Identity(nn.Module):
    def encode(self, x):
        return x

    def decode(self, z):
        return z


class NoiseDecoder(Identity):
    """Ignores the latent: uniform noise in [-1, 1] from its own generator."""

    def decode(self, z):
        return torch.rand(z.shape, generator=torch.Generator().manual_seed(1)) * 2 - 1


@pytest.fixture(scope="module")
def oracle():
    cfg = FeatureNetConfig(image_size=16, train_samples=600, heldout_samples=100, epochs=3, batch_size=50, width=8)
    net = train_feature_net(cfg)
    assert net.heldout_accuracy > 0.1  # weak (16 px, seconds of training) but reads the shapes (chance 0.05)
    return net.model


@pytest.fixture(scope="module")
def probe():
    return render_batch(10**12, 120, image_size=16, seed=0)


def test_paired_frechet_is_the_formula_on_the_feature_moments():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, 3, 2, 2, generator=g), torch.randn(40, 3, 2, 2, generator=g) + 0.5
    feats = lambda x: x.flatten(1)[:, :5]  # noqa: E731  (n, 5)
    fa, fb = feats(a).double().numpy(), feats(b).double().numpy()
    want = frechet_distance(fa.mean(0), np.cov(fa, rowvar=False), fb.mean(0), np.cov(fb, rowvar=False))
    assert paired_frechet(feats, a, b, dim=5, batch_size=7) == pytest.approx(want, rel=1e-9)


def test_identity_tokenizer_reconstructs_perfectly(oracle, probe):
    x, y = probe
    m = heldout_metrics(Identity(), x, y, oracle=oracle, class_names=class_names())
    assert set(m) == EXPECTED  # no CLIP tower: no zero-shot accuracy
    assert m["recon_psnr"] > 100 and m["recon_ssim"] == pytest.approx(1.0, abs=1e-5)
    assert abs(m["recon_fd"]) < 1e-6
    assert m["oracle_accuracy_recon"] == m["oracle_accuracy_real"] > 0.1


def test_noise_decoder_scores_badly(oracle, probe):
    x, y = probe
    m = heldout_metrics(NoiseDecoder(), x, y, oracle=oracle, class_names=class_names())
    assert m["recon_psnr"] < 10 and m["recon_ssim"] < 0.1
    assert m["recon_fd"] > 0.1  # the identity gives ~1e-14
    # the control: the oracle reads the real images but not this decoder's output
    assert m["oracle_accuracy_real"] > 0.1 and m["oracle_accuracy_recon"] < 0.1


@pytest.mark.parametrize("clip", [True, False])
def test_real_tokenizer_logs_zero_shot_only_with_clip(oracle, probe, clip):
    torch.manual_seed(0)
    tok = VisualTokenizer(TokenizerSpec(image_size=16, patch_size=4, decoder_depth=1, clip=clip)).eval()
    x, y = probe
    m = heldout_metrics(tok, x[:40], y[:40], oracle=oracle, class_names=class_names())
    assert set(m) == EXPECTED | ({"zero_shot_accuracy"} if clip else set())
    assert all(math.isfinite(v) for v in m.values())
    assert m["recon_fd"] > 0 and 0 < m["recon_ssim"] < 1  # an untrained decoder is not the identity
    if clip:
        assert 0 <= m["zero_shot_accuracy"] <= 1


def test_too_few_images_is_an_error(oracle, probe):
    with pytest.raises(ValueError, match="at least 2 images"):
        heldout_metrics(Identity(), probe[0][:1], probe[1][:1], oracle=oracle, class_names=class_names())
