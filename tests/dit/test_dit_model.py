"""Smoke tests generated from the preset registry, and the FLOPs formula against torch's counter."""

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from vtp.flops.dit import dit_forward_flops, dit_train_flops
from vtp.models.dit import PRESETS, apply_rope, build_dit, rope_2d

CPU = [n for n in PRESETS if "cpu" in n]
LARGE = [n for n in PRESETS if "cpu" not in n]


def perturb_zero_init(model):
    """adaLN-Zero leaves inner blocks without gradient at step 0; give every weight a value."""
    with torch.no_grad():
        for p in model.parameters():
            if not p.abs().sum():
                p.normal_(std=0.02)


@pytest.mark.parametrize("name", CPU)
def test_cpu_presets_forward_backward_every_parameter_gets_gradient(name):
    torch.manual_seed(0)
    model = build_dit(name, in_channels=8, num_classes=20)
    z, t, y = torch.randn(3, 8, 4, 4), torch.rand(3), torch.tensor([0, 5, 20])  # 20 = null label
    out = model(z, t, y)
    assert out.shape == z.shape
    assert out.abs().max() == 0  # adaLN-Zero: the output layer starts at zero
    perturb_zero_init(model)
    out = model(z, t, y)
    out.pow(2).mean().backward()
    assert torch.isfinite(out).all()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", LARGE)
def test_large_presets_shapes_and_grads_on_meta_device(name):
    with torch.device("meta"):
        model = build_dit(name, in_channels=64, num_classes=1000)
        z = torch.randn(2, 64, 16, 16)
        out = model(z, torch.rand(2), torch.zeros(2, dtype=torch.long))
    assert out.shape == z.shape
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_dit_b_size_matches_paper():
    with torch.device("meta"):
        model = build_dit("DiT-B", in_channels=4, num_classes=1000)
    n = sum(p.numel() for p in model.parameters())
    assert 125e6 < n < 135e6  # DiT-B is 130M (Peebles & Xie, table 1); SwiGLU keeps the MLP size


def test_rope_is_relative():
    rot = rope_2d(3, 3, 8)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)
    def score(i, j):
        return (apply_rope(q, rot[i:i + 1]) * apply_rope(k, rot[j:j + 1])).sum()
    # positions (0,0)->(1,1) and (1,1)->(2,2) have the same offset: same score
    assert torch.allclose(score(0, 4), score(4, 8), atol=1e-5)


def test_rope_rotates_consecutive_pairs_by_the_axial_angles():
    """The complex product against the rotation written out: pair i of a token at (row, col) turns by
    row * f_i for the first half of the frequencies and col * f_(i - hd/4) for the rest."""
    h, w, hd = 2, 3, 8
    x = torch.randn(2, 3, h * w, hd, dtype=torch.float64).float()
    out = apply_rope(x, rope_2d(h, w, hd))
    f = 10000.0 ** (-torch.arange(hd // 4, dtype=torch.float64) / (hd // 4))
    for n in range(h * w):
        ang = torch.cat([(n // w) * f, (n % w) * f])  # (hd/2,)
        x1, x2 = x[:, :, n, 0::2].double(), x[:, :, n, 1::2].double()
        want = torch.stack([x1 * ang.cos() - x2 * ang.sin(), x1 * ang.sin() + x2 * ang.cos()], -1).flatten(-2)
        torch.testing.assert_close(out[:, :, n].double(), want, atol=1e-6, rtol=1e-5)


def test_rope_takes_strided_input_and_passes_gradients():
    x = torch.randn(2, 5, 3, 8).transpose(1, 2).requires_grad_()  # (B, H, N, hd) as a strided view
    rot = rope_2d(1, 5, 8)
    apply_rope(x, rot).square().sum().backward()
    # a rotation keeps the norm of every pair, so d/dx sum(out^2) = 2x
    torch.testing.assert_close(x.grad, 2 * x.detach(), atol=1e-5, rtol=1e-5)


def test_swiglu_is_silu_of_the_first_half_times_the_second():
    from vtp.models.dit import SwiGLU
    torch.manual_seed(0)
    mlp = SwiGLU(16, 12)
    x = torch.randn(2, 5, 16)
    a, g = mlp.w12(x).chunk(2, -1)
    torch.testing.assert_close(mlp(x), mlp.w3(torch.nn.functional.silu(a) * g), atol=1e-6, rtol=1e-5)


def test_unknown_preset_lists_choices():
    with pytest.raises(KeyError, match="DiT-cpu"):
        build_dit("DiT-XXL", in_channels=4, num_classes=2)


@pytest.mark.parametrize("name", ["DiT-cpu", "DiT-cpu-s"])
def test_flops_formula_matches_torch_counter(name):
    model = build_dit(name, in_channels=8, num_classes=20)
    z = torch.randn(2, 8, 4, 4)
    # the math backend decomposes attention into counted matmuls (the CPU flash kernel is not counted)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(z, torch.rand(2), torch.zeros(2, dtype=torch.long))
    formula = dit_forward_flops(model.spec, tokens=16, in_channels=8)
    assert counter.get_total_flops() == pytest.approx(2 * formula, rel=0.02)  # batch of 2
    assert dit_train_flops(model.spec, tokens=16, in_channels=8, samples=10) == 30 * formula


def test_patch_size_two_tokens_round_trip_and_flops():
    """DiT's "/2" models: p x p latent positions per token; patchify is undone exactly, the output
    keeps the latent's shape, and the FLOP formula counts (h/p)(w/p) tokens of C p^2 channels."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    model = build_dit("DiT-cpu", in_channels=8, num_classes=20, patch_size=2)
    z = torch.randn(2, 8, 8, 8)
    tokens = model.patchify(z)
    assert tokens.shape == (2, 16, 32)
    assert torch.equal(tokens[0, 1], z[0, :, 0:2, 2:4].reshape(-1))  # token 1: rows 0-1, columns 2-3
    assert torch.equal(model.unpatchify(tokens, 8, 8), z)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        out = model(z, torch.rand(2), torch.tensor([0, 3]))
    assert out.shape == z.shape
    assert counter.get_total_flops() == pytest.approx(2 * dit_forward_flops(model.spec, tokens=16, in_channels=32), rel=0.02)
    with pytest.raises(ValueError, match="not divisible"):
        model(torch.randn(1, 8, 5, 5), torch.rand(1), torch.tensor([0]))
