"""The FID Inception-v3 (the TF 2015-12-05 graph ported to PyTorch), loaded from a local file only.

Architecture as in pytorch-fid (github.com/mseitzer/pytorch-fid, src/pytorch_fid/inception.py):
torchvision's inception_v3 with 1008 classes, no aux head, and four block types changed to match the
TensorFlow graph (average pools exclude padding; the last block max-pools). Features are the 2048-d
pool3 activations of images resized bilinearly to 299 x 299. Weights: the file common FID tools use,
`pt_inception-2015-12-05-6726825d.pth`; this module never downloads anything. Only a file whose
sha256 starts with that suffix counts as the standard network (`is_standard`), so a figure is called
"gFID" only when it was computed with the real weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import inception as tvi

from vtp.eval.filehash import file_sha256  # noqa: F401 (re-exported: the one sha256 of a weights file)

STANDARD_SHA256_PREFIX = "6726825d"  # the hash suffix in pytorch-fid's weights file name
FEATURE_DIM = 2048


class FIDInceptionA(tvi.InceptionA):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        # TF's average pool does not count the zero padding
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([b1, b5, b3, bp], 1)


class FIDInceptionC(tvi.InceptionC):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([b1, b7, bd, bp], 1)


class FIDInceptionE(tvi.InceptionE):
    """E_1 (avg pool without padding) or, with `max_pool`, E_2 (TF's last block max-pools)."""

    def __init__(self, in_channels: int, *, max_pool: bool):
        super().__init__(in_channels)
        self.max_pool = max_pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        if self.max_pool:
            pooled = F.max_pool2d(x, 3, stride=1, padding=1)
        else:
            pooled = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        return torch.cat([b1, b3, bd, self.branch_pool(pooled)], 1)


def fid_inception_v3() -> nn.Module:
    """The architecture, randomly initialised (weights come from `load_fid_inception`)."""
    net = tvi.inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE(1280, max_pool=False)
    net.Mixed_7c = FIDInceptionE(2048, max_pool=True)
    return net


class FIDInceptionFeatures(nn.Module):
    """images (B, 3, H, W) in [-1, 1] -> pool3 features (B, 2048)."""

    def __init__(self, net: nn.Module, *, sha256: str):
        super().__init__()
        self.net = net
        self.sha256 = sha256

    @property
    def is_standard(self) -> bool:
        return self.sha256.startswith(STANDARD_SHA256_PREFIX)

    @property
    def name(self) -> str:
        tag = "" if self.is_standard else f"-unverified-{self.sha256[:8]}"
        return f"inception-v3-fid{tag}"

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)  # (B, 3, 299, 299)
        x = n.maxpool1(n.Conv2d_2b_3x3(n.Conv2d_2a_3x3(n.Conv2d_1a_3x3(x))))
        x = n.maxpool2(n.Conv2d_4a_3x3(n.Conv2d_3b_1x1(x)))
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                     "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
            x = getattr(n, name)(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)  # (B, 2048)


@dataclass(frozen=True)
class InceptionLoadError(Exception):
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: cannot load FID Inception weights: {self.reason}"


def load_fid_inception(path: str | Path, *, map_location: str = "cpu") -> FIDInceptionFeatures:
    """Build the FID Inception and load `path` (a state dict as in pytorch-fid's .pth). Never downloads."""
    path = Path(path)
    if not path.is_file():
        raise InceptionLoadError(str(path), "no such file (download pytorch-fid's pt_inception-2015-12-05-6726825d.pth yourself and give its path)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise InceptionLoadError(str(path), f"not a torch state dict ({e})") from None
    net = fid_inception_v3()
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise InceptionLoadError(str(path), f"keys do not match: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return FIDInceptionFeatures(net.eval(), sha256=file_sha256(path)).eval()
