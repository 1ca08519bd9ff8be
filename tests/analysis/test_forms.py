"""Forms: analytic Jacobians match finite differences; natural units match the published formula."""

import numpy as np
import pytest

from analysis.fit import prepare_x
from analysis.forms import FORMS, JOINT, SATURATING, get_form, predict

from .synth import CHINCHILLA


def _points(form):
    rng = np.random.default_rng(1)
    x = 10 ** rng.uniform(3, 8, (12, form.n_x))
    return x, np.exp(rng.normal(0, 0.3, 12)) * 5 + 1


@pytest.mark.parametrize("name", sorted(FORMS))
def test_jacobian_matches_finite_differences(name):
    form = get_form(name)
    x, y = _points(form)
    lx, _ = prepare_x(x)
    lo_hi = form.bounds(lx, y)
    for theta in form.starts(lx, y)[:4]:
        theta = theta + 0.01  # off the grid values (e.g. E = 0 sits on its bound)
        _, jac = form.log_pred(theta, lx)
        for j in range(len(theta)):
            h = 1e-6 * max(1.0, abs(theta[j]))
            up, dn = theta.copy(), theta.copy()
            up[j] += h
            dn[j] -= h
            num = (form.log_pred(up, lx)[0] - form.log_pred(dn, lx)[0]) / (2 * h)
            np.testing.assert_allclose(jac[:, j], num, rtol=1e-5, atol=1e-7, err_msg=f"{name}.{form.params[j]}")
        assert len(lo_hi) == len(theta)


def test_natural_units_reproduce_chinchilla_formula():
    # L(N=70e9, D=1.4e12) with the published parameters, computed by hand from eq. (2):
    # 70e9^0.33917 = e^(0.33917 * 24.972) = 4771.6 -> 406.40 / 4771.6 = 0.08517
    # 1.4e12^0.28491 = e^(0.28491 * 27.967) = 2883.6 -> 410.72 / 2883.6 = 0.14243
    # 1.69337 + 0.08517 + 0.14243 = 1.92097
    expected = 1.69337368 + 406.401018 / 70e9 ** 0.33917084 + 410.722827 / 1.4e12 ** 0.2849083
    assert expected == pytest.approx(1.92097, abs=2e-4)
    lref = np.log(np.array([1e8, 1e10]))
    c = CHINCHILLA
    theta = np.array([c["E"], np.log(c["A"]) - c["alpha"] * lref[0], np.log(c["B"]) - c["beta"] * lref[1],
                      c["alpha"], c["beta"]])
    got = predict(JOINT, theta, np.array([[70e9, 1.4e12]]), lref)[0]
    assert got == pytest.approx(expected, rel=1e-12)
    nat = JOINT.natural(theta, lref)
    for k, v in c.items():
        assert nat[k] == pytest.approx(v, rel=1e-12)


def test_saturating_natural_A_is_in_table_units():
    lref = np.log(np.array([1e5]))
    theta = np.array([2.0, np.log(60.0) - 0.35 * lref[0], 0.35])
    assert SATURATING.natural(theta, lref)["A"] == pytest.approx(60.0)
    assert predict(SATURATING, theta, np.array([1e4]), lref)[0] == pytest.approx(2.0 + 60.0 * 1e4 ** -0.35)


def test_unknown_form_lists_alternatives():
    with pytest.raises(KeyError, match="saturating"):
        get_form("chinchilla")
