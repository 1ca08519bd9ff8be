"""Linear probe on the tokenizer's d-channel bottleneck (the VTP paper's understanding metric in its
scaling study): mean-pooled bottleneck features, a closed-form ridge-regression classifier on
one-hot targets (standardised features), top-1 accuracy on a held-out split."""

from __future__ import annotations

import torch


@torch.no_grad()
def pooled_bottleneck(model, images: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
    """(N, 3, H, W) -> (N, d): bottleneck tokens averaged over patches."""
    first = next(iter(model.parameters()), None)  # a parameter-free stand-in model lives on the CPU
    device = first.device if first is not None else torch.device("cpu")
    out = []
    for i in range(0, images.shape[0], batch_size):
        _, _, z = model.features(images[i : i + batch_size].to(device))  # (b, N, d)
        out.append(z.float().mean(dim=1).cpu())
    return torch.cat(out)


def ridge_classifier(x: torch.Tensor, y: torch.Tensor, num_classes: int, l2: float = 1e-3):
    """Fit W, b minimising ||[x 1] [W; b] - onehot(y)||^2 + l2 ||W||^2 on standardised x.
    Returns a function features -> predicted labels."""
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    xs = (x.double() - mean) / std
    xa = torch.cat([xs, torch.ones(len(xs), 1, dtype=xs.dtype)], dim=1)  # (n, d+1)
    target = torch.nn.functional.one_hot(y, num_classes).double()  # (n, C)
    reg = l2 * len(xs) * torch.eye(xa.shape[1], dtype=xs.dtype)
    reg[-1, -1] = 0  # the bias is not penalised
    w = torch.linalg.solve(xa.T @ xa + reg, xa.T @ target)  # (d+1, C)

    def predict(f: torch.Tensor) -> torch.Tensor:
        fa = torch.cat([(f.double() - mean) / std, torch.ones(len(f), 1, dtype=torch.float64)], dim=1)
        return (fa @ w).argmax(dim=1)

    return predict


def probe_accuracy(
    train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
    num_classes: int, l2: float = 1e-3,
) -> float:
    predict = ridge_classifier(train_x, train_y, num_classes, l2)
    return float((predict(test_x) == test_y).double().mean())


def synthetic_linear_probe(
    model, *, image_size: int, n_train: int = 2000, n_test: int = 1000, seed: int = 0,
    offset: int = 10_000_000,
) -> float:
    """Bottleneck linear-probe top-1 on SyntheticShapes, both splits taken from stream positions
    >= `offset` (disjoint from any tokenizer training prefix shorter than that)."""
    from vtp.data.synthetic import NUM_CLASSES, SyntheticShapes

    def load(n: int, off: int) -> tuple[torch.Tensor, torch.Tensor]:
        ds = SyntheticShapes(n, image_size=image_size, seed=seed, offset=off)
        items = [ds[i] for i in range(n)]
        return torch.stack([it[0] for it in items]), torch.tensor([it[2] for it in items])

    xtr, ytr = load(n_train, offset)
    xte, yte = load(n_test, offset + n_train)
    return probe_accuracy(pooled_bottleneck(model, xtr), ytr, pooled_bottleneck(model, xte), yte, NUM_CLASSES)


@torch.no_grad()
def probe_set_linear_probe(model, probe, *, n_train: int = 2000, n_test: int = 1000, batch_size: int = 128) -> float:
    """Bottleneck linear-probe top-1 on a real probe set (vtp.data.sets.LabelledImages) and its
    classes: fitted on its first `n_train` images, tested on its last `n_test` (disjoint when
    n_train + n_test <= its size). Read batch by batch: only the pooled features are kept."""
    if n_train + n_test > len(probe):
        raise ValueError(f"{probe.cfg.path}: the linear probe needs {n_train} + {n_test} images, it holds {len(probe)}")

    def pooled(start: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        feats, labels = [], []
        for b in range(start, start + n, batch_size):
            x, y = probe.batch(b, min(batch_size, start + n - b))  # (m, 3, S, S), (m,)
            if len(x):
                feats.append(pooled_bottleneck(model, x, batch_size))
                labels.append(y)
        return torch.cat(feats), torch.cat(labels)

    xtr, ytr = pooled(0, n_train)
    xte, yte = pooled(len(probe) - n_test, n_test)
    return probe_accuracy(xtr, ytr, xte, yte, probe.num_classes)
