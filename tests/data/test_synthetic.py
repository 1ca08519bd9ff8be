import torch

from vtp.data.synthetic import NUM_CLASSES, SyntheticShapes, class_name, render


def test_render_is_deterministic_by_index():
    a, b = render(7, image_size=32, seed=3), render(7, image_size=32, seed=3)
    assert torch.equal(a.image, b.image) and a.caption == b.caption and a.label == b.label
    assert not torch.equal(a.image, render(8, image_size=32, seed=3).image)


def test_samples_are_in_range_and_captions_name_the_class():
    ds = SyntheticShapes(64, image_size=32)
    labels = set()
    for i in range(len(ds)):
        img, caption, label = ds[i]
        assert img.shape == (3, 32, 32) and img.dtype == torch.float32
        assert img.min() >= -1 and img.max() <= 1
        assert class_name(label) in caption  # "red circle" appears in "a small red circle ..."
        labels.add(label)
    assert len(labels) > NUM_CLASSES // 2
