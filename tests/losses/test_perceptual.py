"""The LPIPS-style reconstruction term: the distance against its formula by hand, the frozen network
loaded from weights this test creates (nothing downloaded), its errors, its wiring into the tokenizer's
step and the FLOP formula."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from vtp.config import ConfigError, from_dict
from vtp.flops.tokenizer import lpips_forward, step_flops
from vtp.losses.perceptual import (
    CHANNELS,
    LPIPSLoss,
    PerceptualWeightsError,
    load_perceptual,
    lpips_distance,
    unit_normalize,
)
from vtp.models.vit import set_fused_attention
from vtp.train.budget import resolve
from vtp.train.config import TokenizerTrainConfig
from vtp.train.loop import build_model
from vtp.train.step import compute_losses, make_perceptual


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A randomly initialised LPIPS-VGG16 saved as a state dict; lin weights made non-negative as LPIPS's are."""
    torch.manual_seed(0)
    net = LPIPSLoss()
    for m in net.lin:
        m.weight.data.abs_()
    path = tmp_path_factory.mktemp("w") / "lpips_vgg.pt"
    torch.save({k: v for k, v in net.state_dict().items() if k not in ("shift", "scale")}, path)
    return path


def test_distance_by_hand():
    # one layer, 2 channels, 1x1: a=(3,4) -> (0.6,0.8); b=(1,0); squared diff (0.16, 0.64); w=(1, 2) -> 1.44
    a, b = torch.tensor([3.0, 4.0]).view(1, 2, 1, 1), torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)
    w = torch.tensor([1.0, 2.0]).view(1, 2, 1, 1)
    assert lpips_distance([a], [b], [w]).item() == pytest.approx(0.16 + 2 * 0.64)
    # two layers add; a spatial map is averaged: the same pair at 2 of 4 positions halves it
    a2, b2 = a.expand(1, 2, 2, 2).clone(), a.expand(1, 2, 2, 2).clone()
    b2[..., 0, :] = b[..., 0, 0].view(1, 2, 1)
    assert lpips_distance([a, a2], [b, b2], [w, w]).item() == pytest.approx(1.44 + 0.72)
    assert unit_normalize(a).flatten().tolist() == pytest.approx([0.6, 0.8])


def test_loss_zero_for_equal_images_positive_otherwise_and_only_the_input_gets_gradient(weights):
    loss = load_perceptual(weights)
    torch.manual_seed(1)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert loss(x, x).item() == pytest.approx(0.0, abs=1e-6)
    x_hat = (x + 0.3 * torch.randn_like(x)).requires_grad_(True)
    value = loss(x_hat, x)
    assert value.item() > 0
    value.backward()
    assert x_hat.grad is not None and x_hat.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in loss.parameters())
    loss.train()  # a parent's .train() cannot switch it to training mode
    assert not loss.training and not any(m.training for m in loss.modules())


def test_weights_file_errors_name_the_key_and_path(weights, tmp_path):
    with pytest.raises(PerceptualWeightsError, match=r"perceptual_weights: .*missing\.pt: .*not found"):
        load_perceptual(tmp_path / "missing.pt")
    state = torch.load(weights, weights_only=True)
    torch.save({k: v for k, v in state.items() if not k.startswith("lin.")}, tmp_path / "no_lin.pt")
    with pytest.raises(PerceptualWeightsError, match=r"perceptual_weights: .*no_lin\.pt: not an LPIPS-VGG16 .*missing: lin\.0"):
        load_perceptual(tmp_path / "no_lin.pt")
    torch.save({**state, "lin.0.weight": torch.zeros(1, 32, 1, 1)}, tmp_path / "shape.pt")
    with pytest.raises(PerceptualWeightsError, match=r"wrong shape: lin\.0\.weight"):
        load_perceptual(tmp_path / "shape.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(PerceptualWeightsError, match=r"junk\.pt: cannot be read"):
        load_perceptual(tmp_path / "junk.pt")


def test_the_lpips_package_layout_loads_to_the_same_network(weights, tmp_path):
    ours = torch.load(weights, weights_only=True)
    slices = {0: 1, 4: 2, 9: 3, 16: 4, 23: 5}  # first layer index of each of lpips's vgg16 slices
    renamed = {"scaling_layer.shift": torch.zeros(1, 3, 1, 1), "scaling_layer.scale": torch.ones(1, 3, 1, 1)}
    for k, v in ours.items():
        if k.startswith("features."):
            i = int(k.split(".")[1])
            renamed[f"net.slice{max(s for f, s in slices.items() if f <= i)}.{k.split('.', 1)[1]}"] = v
        else:
            renamed[f"lin{k.split('.')[1]}.model.1.weight"] = v
    torch.save(renamed, tmp_path / "lpips_layout.pt")
    x, y = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    assert load_perceptual(tmp_path / "lpips_layout.pt")(x, y).item() == pytest.approx(load_perceptual(weights)(x, y).item())


def _cfg(**kw) -> TokenizerTrainConfig:
    base = dict(encoder="cpu-xs", objective="ae", image_size=16, patch_size=4, batch_size=8, rec_fraction=1.0,
                budget_steps=1, decoder_depth=1)
    return from_dict(TokenizerTrainConfig, {**base, **kw}, where="spec.yaml", key="stages[0].config")


def test_config_is_off_by_default_and_a_missing_file_stops_at_load(tmp_path):
    assert TokenizerTrainConfig().lambda_perceptual == 0 and make_perceptual(_cfg()) is None
    with pytest.raises(ConfigError, match=r"spec\.yaml.*perceptual_weights.*nope\.pt.*not found"):
        _cfg(lambda_perceptual=1.0, perceptual_weights=str(tmp_path / "nope.pt"))
    with pytest.raises(ConfigError, match="perceptual_weights"):
        _cfg(lambda_perceptual=1.0)
    (tmp_path / "bad.pt").write_bytes(b"x")  # exists, so the plan-time check passes; the job's load names it
    with pytest.raises(PerceptualWeightsError, match=r"perceptual_weights: .*bad\.pt"):
        make_perceptual(_cfg(lambda_perceptual=1.0, perceptual_weights=str(tmp_path / "bad.pt")))


def test_step_adds_the_term_into_the_decoder_and_the_flops_count_it(weights):
    cfg = _cfg(lambda_perceptual=1.0, perceptual_weights=str(weights))
    plain = _cfg()
    sizes = resolve(cfg)
    torch.manual_seed(0)
    model = build_model(cfg, sizes)
    set_fused_attention(model, False)  # FlopCounterMode does not count the fused kernel (as in tests/flops)
    perceptual = make_perceptual(cfg)
    images = torch.rand(cfg.batch_size, 3, 16, 16) * 2 - 1
    captions = ["x"] * cfg.batch_size
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    base = compute_losses(model, None, images, captions, plain, resolve(plain), None, 0.04, gen())
    with FlopCounterMode(display=False) as counter:
        out = compute_losses(model, None, images, captions, cfg, sizes, None, 0.04, gen(), perceptual)
        out.total.backward()
    p = out.parts
    assert p["rec_l1"] == base.parts["rec"] and p["rec_perceptual"] > 0  # same L1, plus the term
    assert p["rec"].item() == pytest.approx((p["rec_l1"] + cfg.lambda_perceptual * p["rec_perceptual"]).item())
    assert out.total.item() == pytest.approx(cfg.lambda_rec * p["rec"].item())
    assert all(q.grad is not None and q.grad.abs().sum() > 0 for q in model.decoder.parameters() if q.ndim > 1)
    assert all(q.grad is None for q in perceptual.parameters())
    assert step_flops(cfg) == pytest.approx(float(counter.get_total_flops()), rel=1e-3)
    convs, lin = lpips_forward(16)
    assert step_flops(cfg) - step_flops(plain) == pytest.approx(sizes.n_rec * (3 * convs + 2 * lin))
    assert lin == 2.0 * (16 * 16 * CHANNELS[0] + 8 * 8 * CHANNELS[1] + 4 * 4 * CHANNELS[2] + 2 * 2 * CHANNELS[3] + 1 * CHANNELS[4])


def test_training_loop_logs_the_term_and_a_bad_file_stops_before_any_step(weights, tmp_path):
    from vtp.train.checkpoint import checkpoint_dir
    from vtp.train.loop import train

    kw = dict(image_size=16, batch_size=4, budget_steps=2, unique_samples=4, latent_dim=8, checkpoints=[40])
    out = train(_cfg(lambda_perceptual=1.0, perceptual_weights=str(weights), **kw), run_dir=tmp_path / "ok",
                log=lambda _m: None)  # fmt: skip
    losses = out["final_losses"]
    assert losses["rec_perceptual"] > 0 and losses["rec"] == pytest.approx(losses["rec_l1"] + losses["rec_perceptual"])
    bad = tmp_path / "bad.pt"
    torch.save({"features.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(PerceptualWeightsError, match=r"perceptual_weights: .*bad\.pt"):
        train(_cfg(lambda_perceptual=1.0, perceptual_weights=str(bad), **kw), run_dir=tmp_path / "bad", log=lambda _m: None)
    assert any(checkpoint_dir(tmp_path / "ok").iterdir()) and not checkpoint_dir(tmp_path / "bad").exists()
    with pytest.raises(ValueError, match="needs the perceptual network"):  # the term is never silently dropped
        compute_losses(build_model(_cfg(), resolve(_cfg())), None, torch.zeros(8, 3, 16, 16), ["x"] * 8,
                       _cfg(lambda_perceptual=1.0, perceptual_weights=str(weights)), resolve(_cfg()), None, 0.04,
                       torch.Generator())  # fmt: skip
