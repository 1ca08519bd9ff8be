"""Loading the FID Inception from a weights file this test writes (random init, right architecture)."""

import shutil

import pytest
import torch

from vtp.eval.inception import FEATURE_DIM, InceptionLoadError, fid_inception_v3, load_fid_inception


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    net = fid_inception_v3()
    for m in net.modules():  # init_weights=False leaves torch defaults; fine, but make BN non-trivial
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.uniform_(0.5, 1.5)
    folder = tmp_path_factory.mktemp("inc")
    torch.save(net.state_dict(), folder / "pt_inception-test.pth")
    yield folder / "pt_inception-test.pth", net.eval()
    shutil.rmtree(folder)  # 92 MB; the retention policy only removes tmp_path folders


def test_loads_test_written_file_and_extracts_pool3(weights):
    path, ref = weights
    feats = load_fid_inception(path)
    assert not feats.is_standard and feats.name.startswith("inception-v3-fid-unverified-")
    for k, v in ref.state_dict().items():
        assert torch.equal(feats.net.state_dict()[k], v), k
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    f = feats(x)
    assert f.shape == (2, FEATURE_DIM) and torch.isfinite(f).all()
    # pool3 features are the input of the 1008-way fc layer: check against torchvision's own forward
    up = torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    with torch.no_grad():
        logits = ref(up)
    assert torch.allclose(ref.fc(f), logits, atol=1e-4)


def test_key_names_match_pytorch_fid_layout(weights):
    path, _ = weights
    keys = set(torch.load(path, weights_only=True))
    assert "Mixed_7c.branch3x3dbl_3a.conv.weight" in keys and "fc.weight" in keys
    assert not any(k.startswith("AuxLogits") for k in keys)
    assert torch.load(path, weights_only=True)["fc.weight"].shape == (1008, 2048)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(InceptionLoadError, match="no such file"):
        load_fid_inception(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(InceptionLoadError, match="keys do not match"):
        load_fid_inception(bad)
