"""Zero-shot classification from class-name prompts (CLIP), for tokenizers trained with CLIP.

Each class embedding is the normalised mean of its prompt embeddings (CLIP's prompt ensembling);
an image is assigned the class with the highest cosine similarity to its image embedding."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from vtp.models.text import tokenize

TEMPLATES = ("a {}", "a small {}", "a large {}", "a {} on a gray background")


@torch.no_grad()
def class_embeddings(model, names: Sequence[str], templates: Sequence[str] = TEMPLATES) -> torch.Tensor:
    """(C, E) normalised class embeddings from prompt ensembles."""
    if not getattr(model.spec, "clip", False):
        raise ValueError("zero-shot classification needs a tokenizer trained with CLIP (objective clip+ae or vtp)")
    device = next(model.parameters()).device
    out = []
    for name in names:
        ids = tokenize([t.format(name) for t in templates], model.text.context_length).to(device)
        out.append(F.normalize(model.embed_text(ids).float().mean(0), dim=-1))
    return torch.stack(out)


@torch.no_grad()
def zero_shot_accuracy(
    model, images: torch.Tensor, labels: torch.Tensor, names: Sequence[str], batch_size: int = 128
) -> float:
    """Top-1 accuracy of nearest-class-embedding prediction over (N, 3, H, W) images."""
    classes = class_embeddings(model, names)  # (C, E)
    device = classes.device
    correct = 0
    for i in range(0, images.shape[0], batch_size):
        cls, _, _ = model.features(images[i : i + batch_size].to(device))
        pred = (model.embed_image(cls).float() @ classes.T).argmax(dim=1).cpu()  # (b,)
        correct += int((pred == labels[i : i + batch_size]).sum())
    return correct / images.shape[0]
