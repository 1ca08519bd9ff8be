import torch

from vtp.train.data import SampleOrder
from vtp.train.views import random_resized_crops


def test_crops_shape_determinism_and_identity():
    x = torch.rand(4, 3, 16, 16)
    a = random_resized_crops(x, 8, (0.05, 0.3), torch.Generator().manual_seed(1))
    b = random_resized_crops(x, 8, (0.05, 0.3), torch.Generator().manual_seed(1))
    assert a.shape == (4, 3, 8, 8) and torch.equal(a, b)
    # scale exactly 1 at the output size is the image itself or its mirror
    full = random_resized_crops(x, 16, (1.0, 1.0), torch.Generator().manual_seed(2))
    for i in range(4):
        assert torch.allclose(full[i], x[i], atol=1e-5) or torch.allclose(full[i], x[i].flip(-1), atol=1e-5)


def test_sample_order_is_epochs_of_permutations():
    order = SampleOrder(10, seed=3)
    first_epoch = order.indices(0, 5) + order.indices(1, 5)
    assert sorted(first_epoch) == list(range(10))
    assert SampleOrder(10, seed=3).indices(3, 5) == order.indices(3, 5)  # pure function of (seed, step)
