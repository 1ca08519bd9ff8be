import dataclasses

import pytest
import torch

from vtp.config import ConfigError, from_dict
from vtp.models.dit import PRESETS
from vtp.train.dit import ema_decay_at, load_dit_ema, lr_at, train_dit
from vtp.train.dit_config import DIT_PRESETS, DiTTrainConfig


def test_preset_names_in_sync():
    assert tuple(PRESETS) == DIT_PRESETS


def test_config_errors_name_file_and_key():
    with pytest.raises(ConfigError, match=r"sweep.yaml: dit.modle: unknown key; valid keys are: .*model"):
        from_dict(DiTTrainConfig, {"modle": "DiT-B"}, where="sweep.yaml", key="dit")
    with pytest.raises(ConfigError, match="unknown DiT preset 'DiT-Q'.*DiT-cpu"):
        from_dict(DiTTrainConfig, {"model": "DiT-Q"}, where="sweep.yaml", key="dit")
    with pytest.raises(ConfigError, match="label_dropout"):
        from_dict(DiTTrainConfig, {"label_dropout": 1.5}, where="x", key="dit")


def test_schedules():
    cfg = DiTTrainConfig(lr=1e-3, warmup_steps=10, ema_decay=0.99)
    assert lr_at(0, cfg) == pytest.approx(1e-4) and lr_at(9, cfg) == pytest.approx(1e-3)
    assert lr_at(5000, cfg) == 1e-3
    assert ema_decay_at(0, cfg) == pytest.approx(0.1) and ema_decay_at(10**6, cfg) == 0.99
    assert ema_decay_at(0, dataclasses.replace(cfg, ema_warmup=False)) == 0.99


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(32, 4, 4, 4, generator=g), torch.randint(5, (32,), generator=g)


def test_resume_gives_the_same_weights_as_one_run(tmp_path):
    lat, lab = _data()
    cfg = DiTTrainConfig(steps=6, batch_size=8, checkpoint_every=2, log_every=1, lr=1e-3)
    one = train_dit(cfg, latents=lat, labels=lab, num_classes=5, run_dir=tmp_path / "a")
    train_dit(dataclasses.replace(cfg, steps=3), latents=lat, labels=lab, num_classes=5, run_dir=tmp_path / "b")
    two = train_dit(cfg, latents=lat, labels=lab, num_classes=5, run_dir=tmp_path / "b")
    assert one["steps"] == two["steps"] == 6
    a, b = load_dit_ema(tmp_path / "a" / "dit_ema.pt"), load_dit_ema(tmp_path / "b" / "dit_ema.pt")
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(pa, pb, atol=1e-6), name
    assert one["dit_flops"] > 0 and one["dit_params"] == sum(p.numel() for p in a.parameters())


def test_loss_goes_down(tmp_path):
    lat, lab = _data()
    lat = lat * 0.1 + lab[:, None, None, None].float()  # class-dependent, learnable
    logged = []

    class Rec:
        def log_metrics(self, m, step):
            logged.append(m["dit_mse"])

        def log_params(self, p): ...
        def log_artifact(self, p): ...
        def set_tags(self, t): ...

    cfg = DiTTrainConfig(steps=150, batch_size=16, lr=2e-3, log_every=10, checkpoint_every=1000, label_dropout=0.0)
    train_dit(cfg, latents=lat, labels=lab, num_classes=5, run_dir=tmp_path, tracker=Rec())
    assert sum(logged[-3:]) / 3 < 0.6 * sum(logged[:2]) / 2
