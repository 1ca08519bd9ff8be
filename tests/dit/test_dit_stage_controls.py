"""The probe's negative control: a DiT trained on shuffled labels (vtp.stages.dit.shuffled)."""

import torch

from vtp.stages.dit import shuffled
from vtp.train.dit_config import DiTTrainConfig


def test_shuffled_keeps_class_counts_and_breaks_the_link():
    labels = torch.arange(1000) % 20
    out = shuffled(labels, seed=0)
    assert torch.equal(torch.bincount(out, minlength=20), torch.bincount(labels, minlength=20))
    assert (out == labels).float().mean() < 0.15  # about 1/20 agree by chance
    assert torch.equal(out, shuffled(labels, seed=0)) and not torch.equal(out, shuffled(labels, seed=1))


def test_config_default_is_the_true_labels():
    assert DiTTrainConfig().shuffle_labels is False
