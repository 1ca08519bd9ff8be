"""Metrics of one tokenizer checkpoint on held-out real probe images: how well it reconstructs them,
and the controls that tell the generation metrics apart from the decoder's limits.

- `recon_psnr`, `recon_ssim`: decode(encode(x)) against x (vtp.eval.recon).
- `recon_fd`: Frechet distance between the features of x and of decode(encode(x)) over the same
  fallback network as `gen_fd` (named by the `gen_fd_network` tag); with Inception weights also
  `rfid` (standard weights, checked by sha256) or `inception_recon_fd` (any other weights), the
  reconstruction twin of gfid / inception_fd. rFID as in the VTP paper and LDM: real images vs their
  reconstructions, not vs a separate reference set.
- `oracle_accuracy_real`, `oracle_accuracy_recon`: the oracle classifier's accuracy on x and on
  decode(encode(x)). If the samples' `oracle_accuracy` is near chance while `oracle_accuracy_recon` is
  high, the DiT did not learn the classes; if `oracle_accuracy_recon` is low too, the classifier cannot
  read this decoder's output and the samples' figure says nothing about the DiT.
- `zero_shot_accuracy`: class-name prompts through the text tower, only for tokenizers trained with
  CLIP (vtp.eval.zeroshot).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from vtp.eval.frechet import frechet_distance
from vtp.eval.recon import pixel_metrics, reconstruct
from vtp.eval.refstats import feature_stats


def paired_frechet(features: Callable[[torch.Tensor], torch.Tensor], a: torch.Tensor, b: torch.Tensor, *,
                   dim: int, batch_size: int = 250) -> float:
    """Frechet distance between the feature Gaussians of image sets `a` and `b` (N, 3, H, W)."""
    sa, sb = (feature_stats(features, lambda s, n, x=x: x[s:s + n], num_images=len(x), dim=dim,
                            batch_size=batch_size) for x in (a, b))
    return frechet_distance(sa.mean(), sa.cov(), sb.mean(), sb.cov())


@torch.no_grad()
def classifier_accuracy(classifier: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                        labels: torch.Tensor, batch_size: int = 250) -> float:
    pred = torch.cat([classifier(images[i:i + batch_size]).argmax(1).cpu() for i in range(0, len(images), batch_size)])
    return (pred == labels).float().mean().item()


def uses_clip(tokenizer) -> bool:
    return bool(getattr(getattr(tokenizer, "spec", None), "clip", False))


def heldout_metrics(tokenizer, images: torch.Tensor, labels: torch.Tensor, *, oracle, class_names: Sequence[str],
                    inception=None, batch_size: int = 64) -> dict[str, float]:
    """All metrics above for real `images` (N, 3, H, W) in [-1, 1] with class `labels` (N,).
    `oracle` is the fallback feature network (`.features`, `.feature_dim`, logits from its call);
    `inception` a vtp.eval.inception.FIDInceptionFeatures or None."""
    if len(images) < 2:
        raise ValueError(f"held-out metrics need at least 2 images for a covariance, got {len(images)}")
    x_hat = reconstruct(tokenizer, images, batch_size)  # (N, 3, H, W), CPU
    out = pixel_metrics(x_hat, images)
    out["recon_fd"] = paired_frechet(oracle.features, images, x_hat, dim=oracle.feature_dim)
    out["oracle_accuracy_real"] = classifier_accuracy(oracle, images, labels)
    out["oracle_accuracy_recon"] = classifier_accuracy(oracle, x_hat, labels)
    if inception is not None:
        from vtp.eval.inception import FEATURE_DIM

        fd = paired_frechet(inception, images, x_hat, dim=FEATURE_DIM, batch_size=50)
        out["rfid" if inception.is_standard else "inception_recon_fd"] = fd
    if uses_clip(tokenizer):
        from vtp.eval.zeroshot import zero_shot_accuracy

        out["zero_shot_accuracy"] = zero_shot_accuracy(tokenizer, images, labels, class_names)
    return out
