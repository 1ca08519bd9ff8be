"""KoLeo regulariser (Sablayrolles et al. 2019, used by DINOv2): spreads features uniformly by
penalising small nearest-neighbour distances."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def koleo_loss(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """x (n, D), n >= 2: -mean_i log(min_{j != i} ||x_i - x_j|| + eps) over L2-normalised rows."""
    x = F.normalize(x, dim=-1, eps=eps)
    with torch.no_grad():  # only the choice of neighbour comes from here; argmax has no gradient
        sim = x @ x.T  # (n, n)
        sim -= 2 * torch.eye(x.shape[0], device=x.device, dtype=x.dtype)  # never pick i itself
        nn_idx = sim.argmax(dim=1)  # nearest neighbour = highest cosine
    dist = (x - x[nn_idx]).norm(dim=-1)  # (n,)
    return -torch.log(dist + eps).mean()
