"""Each loss against a value computed by hand on tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vtp.losses.clip import clamp_logit_scale, clip_loss
from vtp.losses.dino import dino_loss, entropy, ibot_loss, teacher_probs, update_center
from vtp.losses.ema import ema_update
from vtp.losses.koleo import koleo_loss
from vtp.losses.masking import random_patch_mask
from vtp.losses.reconstruction import PerceptualLoss, l1_loss


def test_clip_loss_two_orthogonal_pairs():
    # image i == text i, orthogonal across i: logits = s * I; CE = -log(e^s / (e^s + 1)) both ways
    e = torch.eye(2)
    s = 2.0
    got = clip_loss(e, e, torch.tensor(math.log(s)))
    assert got.item() == pytest.approx(math.log(1 + math.exp(-s)), rel=1e-5)
    # swapped texts: the correct pair has logit 0, the wrong one s -> CE = log(1 + e^s)
    got = clip_loss(e, e.flip(0), torch.tensor(0.0))
    assert got.item() == pytest.approx(math.log(1 + math.e) - 0.0, rel=1e-5)


def test_clip_temperature_keeps_its_gradient_when_saturated():
    # A scale above ln 100 (as one optimizer step past the bound can leave it) still gets a gradient:
    # the loss uses exp(logit_scale) as is; the bound is a clamp of the parameter after the step.
    scale = torch.tensor(math.log(1000.0), requires_grad=True)
    e = torch.eye(2)
    clip_loss(e, e.flip(0), scale).backward()
    assert scale.grad is not None and scale.grad.item() > 0  # wrong pairs: a higher scale costs more
    got = clip_loss(e, e, torch.tensor(math.log(3.0)))
    assert got.item() == pytest.approx(math.log(1 + math.exp(-3.0)), rel=1e-5)


def test_clamp_logit_scale_in_place_like_open_clip():
    p = nn.Parameter(torch.tensor(math.log(1000.0)))
    clamp_logit_scale(p)
    assert p.item() == pytest.approx(math.log(100.0)) and p.grad is None
    q = nn.Parameter(torch.tensor(-1.0))
    clamp_logit_scale(q)
    assert q.item() == 0.0


def test_teacher_probs_centering_and_temperature():
    logits = torch.tensor([[1.0, 0.0]])
    p = teacher_probs(logits, torch.tensor([[1.0, 0.0]]), 0.5)
    torch.testing.assert_close(p, torch.tensor([[0.5, 0.5]]))  # centring removes the preference
    p = teacher_probs(logits, torch.zeros(1, 2), 0.5)
    e2 = math.exp(2)
    torch.testing.assert_close(p, torch.tensor([[e2 / (e2 + 1), 1 / (e2 + 1)]]))


def test_dino_loss_pairs_skip_same_crop():
    k = 2
    uniform = torch.full((1, k), 0.5)
    onehot = torch.tensor([[1.0, 0.0]])
    s0 = torch.tensor([[0.0, 0.0]])  # uniform student: CE vs anything = log 2
    s1 = torch.tensor([[1.0, 0.0]])  # with T_s = 1: log-softmax = [-log(1+e^-1), -1-log(1+e^-1)]
    # teacher crop 0 only -> pairs (0,1): CE(onehot, s1) = log(1 + e^-1)
    got = dino_loss([s0, s1], [onehot], 1.0)
    assert got.item() == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)
    # two teacher crops -> pairs (0,1), (1,0); teacher 1 uniform vs s0: log 2
    got = dino_loss([s0, s1], [onehot, uniform], 1.0)
    assert got.item() == pytest.approx((math.log(1 + math.exp(-1)) + math.log(2)) / 2, rel=1e-6)


def test_entropy_is_the_floor_of_the_cross_entropy():
    p = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    torch.testing.assert_close(entropy(p), torch.tensor([math.log(2), 0.0]))
    # a student equal to its target reaches the floor: CE - H = KL = 0; any other student is above it
    s = p.clamp_min(1e-12).log()  # T_s = 1
    torch.testing.assert_close(ibot_loss(s, p, 1.0) - entropy(p).mean(), torch.tensor(0.0), atol=1e-6, rtol=0)
    assert (ibot_loss(torch.zeros(2, 2), p, 1.0) - entropy(p).mean()).item() > 0


def test_ibot_loss_mean_over_masked_tokens():
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    s = torch.tensor([[2.0, 0.0], [2.0, 0.0]])  # T_s = 2 -> logits [1, 0]
    lse = math.log(1 + math.e)
    assert ibot_loss(s, t, 2.0).item() == pytest.approx(((lse - 1) + lse) / 2, rel=1e-6)


def test_center_update():
    c = update_center(torch.zeros(1, 2), torch.tensor([[2.0, 0.0], [0.0, 4.0]]), 0.9)
    torch.testing.assert_close(c, torch.tensor([[0.1, 0.2]]))


def test_koleo_on_square_corners():
    # 4 unit vectors at 0, 90, 180, 270 degrees: nearest neighbour distance sqrt(2) for each
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    assert koleo_loss(x).item() == pytest.approx(-math.log(math.sqrt(2)), rel=1e-5)
    # two near-duplicates are penalised more
    y = torch.tensor([[1.0, 0.0], [1.0, 0.01], [-1.0, 0.0]])
    assert koleo_loss(y) > koleo_loss(x)


def test_mask_has_exact_count_and_is_seeded():
    g = torch.Generator().manual_seed(0)
    m = random_patch_mask(5, 16, 4, g)
    assert m.shape == (5, 16) and (m.sum(1) == 4).all()
    m2 = random_patch_mask(5, 16, 4, torch.Generator().manual_seed(0))
    assert torch.equal(m, m2)
    with pytest.raises(ValueError):
        random_patch_mask(1, 4, 4, g)


def test_ema_update():
    s, t = nn.Linear(1, 1, bias=False), nn.Linear(1, 1, bias=False)
    s.weight.data.fill_(1.0)
    t.weight.data.fill_(0.0)
    ema_update(t, s, 0.9)
    assert t.weight.item() == pytest.approx(0.1)
    ema_update(t, s, 0.9)
    assert t.weight.item() == pytest.approx(0.19)


def test_l1():
    assert l1_loss(torch.tensor([1.0, -1.0]), torch.tensor([0.0, 1.0])).item() == pytest.approx(1.5)


def test_perceptual_loss_loads_local_weights(tmp_path):
    from torchvision.models import vgg16

    torch.manual_seed(0)
    feats = vgg16(weights=None).features[:16]  # up to relu3_3 keeps the file small
    torch.save(feats.state_dict(), tmp_path / "vgg.pt")
    with pytest.raises(RuntimeError, match="Missing key"):  # relu4_3 layers missing from this file -> clear failure
        PerceptualLoss(tmp_path / "vgg.pt")
    torch.save(vgg16(weights=None).features.state_dict(), tmp_path / "vgg_full.pt")
    loss = PerceptualLoss(tmp_path / "vgg_full.pt")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert loss(x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert loss(x, -x).item() > 0
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        PerceptualLoss(tmp_path / "missing.pt")
