import numpy as np
import pytest
import scipy.linalg

from vtp.eval.frechet import RunningStats, frechet_distance


def scipy_reference(mu1, s1, mu2, s2):
    """pytorch-fid's formula, with scipy.linalg.sqrtm."""
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def random_cov(rng, d):
    a = rng.normal(size=(d, 2 * d))
    return a @ a.T / (2 * d) + 0.1 * np.eye(d)


def test_closed_form_diagonal():
    # diagonal covariances commute: d^2 = |dmu|^2 + sum (sqrt(a) - sqrt(b))^2
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    expected = 1 + 0 + 4 + (1 - 2) ** 2 + (2 - 1) ** 2 + 0
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, abs=1e-10)


def test_closed_form_scaled_covariance_and_identity():
    rng = np.random.default_rng(0)
    s = random_cov(rng, 6)
    mu = rng.normal(size=6)
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-9)
    # S2 = c^2 S1: tr(S1) + c^2 tr(S1) - 2 c tr(S1) = (1 - c)^2 tr(S1)
    assert frechet_distance(mu, s, mu + 1, 9 * s) == pytest.approx(6 + 4 * np.trace(s), rel=1e-9)


@pytest.mark.parametrize("d", [2, 16, 64])
def test_matches_scipy_sqrtm_reference(d):
    rng = np.random.default_rng(d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = random_cov(rng, d), random_cov(rng, d)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(scipy_reference(mu1, s1, mu2, s2), rel=1e-7)


def test_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shape mismatch"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_running_stats_match_numpy_in_chunks():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1000, 5)) * [1, 2, 3, 4, 5] + 100.0  # large mean: checks cancellation
    st = RunningStats(5)
    for chunk in np.array_split(x, 7):
        st.update(chunk)
    assert st.n == 1000
    np.testing.assert_allclose(st.mean(), x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(st.cov(), np.cov(x.T), rtol=1e-8, atol=1e-8)
    with pytest.raises(ValueError, match="at least 2"):
        RunningStats(3).cov()
