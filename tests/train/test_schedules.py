import pytest

from vtp.train.schedules import lr_at, teacher_momentum_at, teacher_temp_at


def test_lr_warmup_peak_floor():
    kw = dict(warmup_fraction=0.1, min_fraction=0.1)
    assert lr_at(0, 100, 1.0, **kw) == pytest.approx(0.1)  # 1/10 of the way up
    assert lr_at(9, 100, 1.0, **kw) == pytest.approx(1.0)  # peak at the end of warm-up
    assert lr_at(10, 100, 1.0, **kw) == pytest.approx(1.0)
    assert lr_at(99, 100, 1.0, **kw) == pytest.approx(0.1)  # floor at the last step
    mid = 10 + (99 - 10) / 2
    assert lr_at(int(mid), 100, 1.0, **kw) == pytest.approx(0.55, abs=0.02)  # cosine half-way


def test_teacher_momentum_cosine():
    assert teacher_momentum_at(0, 11, 0.99, 1.0) == pytest.approx(0.99)
    assert teacher_momentum_at(5, 11, 0.99, 1.0) == pytest.approx(0.995)
    assert teacher_momentum_at(10, 11, 0.99, 1.0) == pytest.approx(1.0)


def test_teacher_temperature_warmup():
    kw = dict(warmup_fraction=0.5)
    assert teacher_temp_at(0, 10, 0.04, 0.07, **kw) == pytest.approx(0.04)
    assert teacher_temp_at(2, 10, 0.04, 0.07, **kw) == pytest.approx(0.052)
    assert teacher_temp_at(5, 10, 0.04, 0.07, **kw) == pytest.approx(0.07)
    assert teacher_temp_at(9, 10, 0.04, 0.07, **kw) == pytest.approx(0.07)
