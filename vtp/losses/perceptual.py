"""LPIPS-style perceptual distance (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep
Features as a Perceptual Metric", https://arxiv.org/abs/1801.03924; the `lpips` package, net='vgg'):
VGG16 features at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3, each unit-normalised over channels,
squared difference, a learned non-negative weight per channel (a 1x1 convolution to one channel),
averaged over space and summed over layers:

    d(x, y) = sum_l mean_hw( sum_c w_lc * (f_l(x)/|f_l(x)| - f_l(y)/|f_l(y)|)_chw^2 )

Weights only by local path (nothing is downloaded): a state dict with keys `features.<i>.*` (the
torchvision vgg16 `features` layers 0..29) and `lin.<l>.weight` ((1, C_l, 1, 1)). The `lpips`
package's own layout is accepted too, e.g. `torch.save(lpips.LPIPS(net="vgg").state_dict(), path)`
(keys `net.slice<k>.<i>.*`, `lin<l>.model.1.weight`, `scaling_layer.*`).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

LAYERS = (3, 8, 15, 22, 29)  # torchvision vgg16.features indices of relu1_2 .. relu5_3
CHANNELS = (64, 128, 256, 512, 512)
# the lpips package's ScalingLayer: maps inputs in [-1, 1] to ImageNet-normalised ones
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


class PerceptualWeightsError(ValueError):
    """The weights file is missing or is not an LPIPS-VGG16 state dict; names the config key and path."""


def unit_normalize(f: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """f / ||f|| over channels, as lpips.normalize_tensor: (B, C, H, W) -> (B, C, H, W)."""
    return f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


def lpips_distance(feats_a: list[torch.Tensor], feats_b: list[torch.Tensor], lin: list[torch.Tensor]) -> torch.Tensor:
    """Per-image distance (B,) from per-layer features (B, C_l, H_l, W_l) and weights (1, C_l, 1, 1)."""
    total = 0.0
    for a, b, w in zip(feats_a, feats_b, lin):
        diff = (unit_normalize(a) - unit_normalize(b)).pow(2)  # (B, C, H, W)
        total = total + nn.functional.conv2d(diff, w).mean(dim=(1, 2, 3))  # (B,)
    return total


def _from_lpips_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the `lpips` package's keys to ours; other keys pass through unchanged."""
    out = {}
    for k, v in state.items():
        if k.startswith("scaling_layer."):
            continue  # constants, the same as SHIFT/SCALE
        m = re.fullmatch(r"net\.slice\d\.(\d+)\.(weight|bias)", k)
        n = re.fullmatch(r"lin(\d)\.model\.1\.weight", k)
        out[f"features.{m[1]}.{m[2]}" if m else f"lin.{n[1]}.weight" if n else k] = v
    return out


class LPIPSLoss(nn.Module):
    """Frozen LPIPS-VGG16 (the tokenizer's term; the decoder GAN stage's equal-weight VGG distance is
    vtp.losses.reconstruction.PerceptualLoss): `forward(x_hat, x)` is the batch mean of d over images in [-1, 1]; the
    gradient flows into x_hat only. Build with `load_perceptual(path, key=...)`."""

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers  # the architecture only: nothing is downloaded

        self.features = make_layers(cfgs["D"])[: LAYERS[-1] + 1]  # = vgg16().features[:30], without the classifier
        self.lin = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in CHANNELS)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> LPIPSLoss:
        return super().train(False)  # frozen: dropout-free anyway, but never in training mode

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        h, out = (x - self.shift) / self.scale, []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in LAYERS:
                out.append(h)
        return out

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # the target needs no graph: its pass is forward only
            target = self._features(x)
        return lpips_distance(self._features(x_hat), target, [m.weight for m in self.lin]).mean()


def load_perceptual(path: str | Path, *, key: str = "perceptual_weights") -> LPIPSLoss:
    """The frozen network with the weights at `path`; `key` is the config key that named it (for errors)."""
    path = Path(path)
    if not path.is_file():
        raise PerceptualWeightsError(f"{key}: {path}: perceptual-loss weights file not found (an LPIPS-VGG16 state dict)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a corrupt or non-torch file: name the key and path, keep the cause
        raise PerceptualWeightsError(f"{key}: {path}: cannot be read as a torch state dict ({e})") from e
    if not isinstance(state, dict):
        raise PerceptualWeightsError(f"{key}: {path}: expected a state dict, got {type(state).__name__}")
    with torch.random.fork_rng(devices=[]):  # its throw-away random init must not move the caller's seed
        net = LPIPSLoss()
    expected = net.state_dict()
    state = {**{k: expected[k] for k in ("shift", "scale")}, **_from_lpips_layout(state)}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{what}: {', '.join(keys[:6])}{' ...' if len(keys) > 6 else ''}"
            for what, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if keys
        )
        raise PerceptualWeightsError(f"{key}: {path}: not an LPIPS-VGG16 state dict ({detail})")
    net.load_state_dict(state)
    return net
