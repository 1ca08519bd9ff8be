import dataclasses
import hashlib

import numpy as np
import pytest
import torch

from vtp.eval.features import FeatureNetConfig, load_or_train_feature_net, train_feature_net
from vtp.eval.precision_recall import precision_recall
from vtp.eval.refstats import synthetic_reference_stats

TINY = FeatureNetConfig(image_size=16, train_samples=200, heldout_samples=50, epochs=1, batch_size=50, width=8)


def test_precision_recall_by_hand():
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    # k=1: each real point's radius is 1, so the real manifold is [-1, 4]
    fake = torch.tensor([[0.5], [3.5], [10.0], [11.0]])
    p, r = precision_recall(real, fake, k=1)
    assert p == 0.5  # 0.5 and 3.5 inside, 10 and 11 outside
    # fake radii (k=1): 3, 3, 1, 1 -> balls [-2.5, 3.5] and [0.5, 6.5] cover all four real points
    assert r == 1.0


def test_precision_recall_same_distribution_is_high_and_shifted_is_low():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(500, 4, generator=g), torch.randn(500, 4, generator=g)
    p, r = precision_recall(a, b)
    assert p > 0.8 and r > 0.8
    p, r = precision_recall(a, b + 10)
    assert p == 0 and r == 0


def test_feature_net_is_deterministic_and_cached(tmp_path):
    a = train_feature_net(TINY)
    first = load_or_train_feature_net(TINY, tmp_path)  # a cache miss: trains again
    for (k, va), vb in zip(a.model.state_dict().items(), first.model.state_dict().values()):
        assert torch.equal(va, vb), k
    assert a.heldout_accuracy == first.heldout_accuracy and 0 <= a.heldout_accuracy <= 1
    assert TINY.content_hash() != dataclasses.replace(TINY, seed=1).content_hash()
    saved = tmp_path / f"featnet-{TINY.content_hash()}.pt"
    assert saved.is_file()
    # the name carries the sha256 of the saved weights file, not of the recipe
    assert first.name == f"shapes-cnn-{hashlib.sha256(saved.read_bytes()).hexdigest()[:8]}"
    again = load_or_train_feature_net(TINY, tmp_path)  # from the cache
    assert again.heldout_accuracy == first.heldout_accuracy and again.name == first.name
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    assert torch.equal(again.model.features(x), first.model.features(x))


def test_reference_stats_cached_by_content(tmp_path):
    calls = []

    def feats(x):
        calls.append(len(x))
        return x.mean((2, 3))  # (B, 3)

    kw = dict(network_id="mean-rgb", dim=3, image_size=16, dataset_seed=0, num_images=30, cache_dir=tmp_path)
    mu, cov = synthetic_reference_stats(feats, **kw)
    assert sum(calls) == 30 and mu.shape == (3,) and cov.shape == (3, 3)
    mu2, cov2 = synthetic_reference_stats(feats, **kw)
    assert sum(calls) == 30  # served from the cache
    np.testing.assert_array_equal(mu, mu2)
    synthetic_reference_stats(feats, **{**kw, "network_id": "other"})
    assert sum(calls) == 60  # a different network is a different key
    with pytest.raises(ValueError):
        precision_recall(torch.zeros(2, 1), torch.zeros(5, 1))
