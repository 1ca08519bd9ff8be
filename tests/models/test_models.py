"""Registry-driven smoke tests: every preset builds, runs forward and backward, every parameter
receives a gradient, shapes match the interface, nothing is NaN."""

from __future__ import annotations

import pytest
import torch

from vtp.models.presets import PRESETS, encoder_params, get_preset
from vtp.models.text import EOT, PAD, tokenize
from vtp.models.tokenizer import TokenizerSpec, VisualTokenizer
from vtp.models.vit import apply_rope, rope_2d, set_fused_attention

CPU_PRESETS = [n for n in PRESETS if n.startswith("cpu")]


def _spec(name: str) -> TokenizerSpec:
    if name.startswith("cpu"):
        return TokenizerSpec(preset=name, image_size=32, patch_size=4, latent_dim=16, decoder_depth=1)
    # S/B/L at their real widths and depths, on a 32 px image with patch 16 (4 tokens) to stay cheap
    return TokenizerSpec(preset=name, image_size=32, patch_size=16, latent_dim=64, decoder_depth=1)


def _everything_loss(model: VisualTokenizer, x: torch.Tensor) -> torch.Tensor:
    cls, patches, z = model.features(x)
    x_hat = model.decode(model.tokens_to_grid(z, x.shape[-1] // model.patch_size))
    assert x_hat.shape == x.shape
    ids = tokenize(["a red circle"] * x.shape[0], model.text.context_length)
    clip = (model.embed_image(cls) @ model.embed_text(ids).T * model.logit_scale.exp()).sum()
    mask = torch.zeros(patches.shape[:2], dtype=torch.bool)
    mask[:, 0] = True
    masked = model.encoder(x, mask=mask)
    ssl = model.ssl_head(cls).sum() + model.ssl_head(masked[:, 1:][mask]).sum()
    return (x_hat - x).abs().mean() + clip + ssl


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_forward_backward(name):
    # L included: 300M encoder + 65k-prototype head, 4.4 GB peak and ~15 s on the 2-core CI box
    torch.manual_seed(0)
    spec = _spec(name)
    model = VisualTokenizer(spec)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    z = model.encode(x)
    g = 32 // spec.patch_size
    assert z.shape == (2, spec.latent_dim, g, g)
    cls, patches, bott = model.features(x)
    assert cls.shape == (2, model.width) and patches.shape == (2, g * g, model.width)
    assert bott.shape == (2, g * g, spec.latent_dim)
    loss = _everything_loss(model, x)
    assert torch.isfinite(loss)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"parameters without a finite gradient: {missing}"
    assert model.encoder_params() == encoder_params(
        get_preset(name).encoder, patch_size=spec.patch_size, latent_dim=spec.latent_dim
    )


def test_fused_and_math_attention_agree():
    torch.manual_seed(0)
    model = VisualTokenizer(_spec("cpu-xs")).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    ids = tokenize(["a blue ring", "x"], model.text.context_length)
    a, ta = model.encode(x), model.text(ids)
    set_fused_attention(model, False)
    b, tb = model.encode(x), model.text(ids)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ta, tb, atol=1e-5, rtol=1e-4)


def test_rope_is_a_rotation_and_relative():
    cos, sin = rope_2d(3, 3, 8)
    q = torch.randn(1, 1, 9, 8)
    r = apply_rope(q, cos, sin)
    torch.testing.assert_close(r.norm(dim=-1), q.norm(dim=-1))  # rotations keep norms
    # the score of a pair depends only on the offset: shift both by one row
    k = torch.randn(1, 1, 1, 8).expand(1, 1, 9, 8)
    qq = q[:, :, :1].expand(1, 1, 9, 8)
    s = (apply_rope(qq, cos, sin) * apply_rope(k, cos, sin)).sum(-1)[0, 0]
    torch.testing.assert_close(s[0], s[4])  # (0,0)-(0,0) vs (1,1)-(1,1)


def test_byte_tokenizer():
    ids = tokenize(["Ab", "x" * 40], 8)
    assert ids[0].tolist() == [97, 98, EOT, PAD, PAD, PAD, PAD, PAD]
    assert ids[1, -1].item() == EOT and (ids[1, :7] == ord("x")).all()


def test_unknown_preset_lists_valid_names():
    with pytest.raises(KeyError, match="cpu-xs"):
        get_preset("XXL")


def test_swiglu_encoder_params_match_formula():
    from dataclasses import replace

    model = VisualTokenizer(TokenizerSpec(swiglu=True, decoder_depth=1))
    enc = replace(get_preset("cpu-xs").encoder, swiglu=True)
    assert model.encoder_params() == encoder_params(enc, patch_size=4, latent_dim=16)


def test_activation_checkpointing_gives_the_same_gradients():
    from vtp.models.presets import get_preset
    from vtp.models.vit import ViTEncoder

    torch.manual_seed(0)
    enc = ViTEncoder(get_preset("cpu-xs").encoder, patch_size=4)
    x = torch.randn(2, 3, 16, 16)
    enc(x).square().mean().backward()
    plain = {n: p.grad.clone() for n, p in enc.named_parameters()}
    enc.zero_grad()
    enc.activation_checkpointing = True
    enc(x).square().mean().backward()
    for n, p in enc.named_parameters():
        torch.testing.assert_close(p.grad, plain[n], msg=n)
