"""The robust fitter: recovery, honest convergence reports, and the Chinchilla-failure regression."""

import numpy as np
import pytest
from scipy.optimize import minimize

from analysis.fit import FitSettings, fit_form, huber, objective, prepare_x
from analysis.forms import JOINT, SATURATING

from .synth import CHINCHILLA, chinchilla_data, saturating_data
from .synth import SATURATING as SAT_TRUE


def test_huber_matches_hand_values():
    # delta = 0.5: |r| = 0.2 -> 0.2^2 / 2 = 0.02 ; |r| = 2 -> 0.5 * (2 - 0.25) = 0.875
    np.testing.assert_allclose(huber(np.array([0.2, -2.0]), 0.5), [0.02, 0.875])


def test_saturating_fit_recovers_parameters():
    x, y = saturating_data(seed=3, sigma=0.005)
    fit = fit_form(SATURATING, x, y)
    assert fit.converged, fit.reason
    assert fit.n_agree >= 2 and fit.moved
    for k, v in SAT_TRUE.items():
        assert fit.natural[k] == pytest.approx(v, rel=0.1), k


def test_joint_fit_recovers_chinchilla():
    x, y = chinchilla_data(seed=0, sigma=0.002)
    fit = fit_form(JOINT, x, y)
    assert fit.converged, fit.reason
    for k, v in CHINCHILLA.items():
        assert fit.natural[k] == pytest.approx(v, rel=0.15), k


def test_E_never_exceeds_min_observed():
    x, y = saturating_data(seed=4)
    fit = fit_form(SATURATING, x, y)
    assert fit.natural["E"] <= y.min()


def test_iteration_cap_is_reported_not_printed():
    x, y = chinchilla_data(seed=1)
    fit = fit_form(JOINT, x, y, settings=FitSettings(maxiter=2))
    assert not fit.converged
    assert fit.reason


def test_bad_reduce_is_rejected():
    x, y = saturating_data(seed=0)
    with pytest.raises(ValueError, match="reduce"):
        fit_form(SATURATING, x, y, settings=FitSettings(reduce="median"))


# --- Regression: Chinchilla's fit averaged its Huber loss and stopped early, unnoticed. --------------
# (Besiroglu et al. 2024, "Chinchilla Scaling: A replication attempt", section 2)
POOR_START = np.array([[0.5, 0.0, 0.0, 0.05, 0.05]])  # E, logA, logB, alpha, beta far from the truth
SCIPY_DEFAULTS = {"gtol": 1e-5, "ftol": 2.220446049250313e-09}


def _averaged_scipy_defaults(x, y):
    """What the original fit did: mean Huber (delta=1e-3), L-BFGS-B with default tolerances."""
    lx, _ = prepare_x(x)
    w = np.ones(len(y)) / len(y)
    return minimize(objective, POOR_START[0], args=(JOINT, lx, np.log(y), w, 1e-3, 1.0), jac=True,
                    method="L-BFGS-B", bounds=JOINT.bounds(lx, y))


def test_naive_averaged_fit_stops_early_and_claims_success():
    # The failure is real: scipy says "success" while alpha is far from the truth.
    x, y = chinchilla_data(seed=0)
    res = _averaged_scipy_defaults(x, y)
    assert res.success
    assert abs(res.x[3] - CHINCHILLA["alpha"]) / CHINCHILLA["alpha"] > 0.2


def test_averaged_loss_with_default_tolerances_is_flagged():
    x, y = chinchilla_data(seed=0)
    fit = fit_form(JOINT, x, y, settings=FitSettings(delta=1e-3, reduce="mean", **SCIPY_DEFAULTS), starts=POOR_START)
    assert abs(fit.natural["alpha"] - CHINCHILLA["alpha"]) / CHINCHILLA["alpha"] > 0.2  # stopped early too
    assert not fit.converged
    assert "gradient" in fit.reason


def test_averaged_loss_from_poor_start_is_not_silently_accepted():
    x, y = chinchilla_data(seed=0)
    fit = fit_form(JOINT, x, y, settings=FitSettings(delta=1e-3, reduce="mean"), starts=POOR_START)
    if fit.converged:
        # It may only claim convergence if it really left the start and found the law.
        assert fit.moved
        for k in ("alpha", "beta"):
            assert fit.natural[k] == pytest.approx(CHINCHILLA[k], rel=0.2)
    else:
        assert fit.reason


def test_start_on_a_flat_plateau_is_flagged_and_the_grid_recovers():
    x, y = chinchilla_data(seed=0)
    # E at its bound min(y), both power terms ~e^-50: the projected gradient is ~0, so L-BFGS-B
    # exits at iteration 0, even with tight tolerances. The report must say so.
    flat = np.array([[y.min(), -50.0, -50.0, 0.3, 0.3]])
    fit = fit_form(JOINT, x, y, starts=flat)
    assert np.allclose(fit.theta, flat[0])
    assert not fit.converged
    assert "start point" in fit.reason
    lx, _ = prepare_x(x)
    grid = np.vstack([flat, JOINT.starts(lx, y)])
    fit = fit_form(JOINT, x, y, starts=grid)
    assert fit.converged, fit.reason
    assert fit.natural["alpha"] == pytest.approx(CHINCHILLA["alpha"], rel=0.2)
