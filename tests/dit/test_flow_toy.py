"""Rectified flow and the ODE samplers on a 2-D Gaussian target with a full covariance.

For a Gaussian target N(mu, S) and standard normal noise the exact velocity field is known:
x_t ~ N(t mu, C_t), C_t = t^2 S + (1-t)^2 I, and
v(x, t) = E[x1 - eps | x_t = x] = (mu + t S C^-1 (x - t mu)) - (1-t) C^-1 (x - t mu).
Integrating it must reproduce the target; a small MLP trained with `flow_loss` must learn it.
"""

import math

import torch

from vtp.eval.sampling import class_velocity, euler_sample, heun_sample, sample
from vtp.losses.flow import flow_loss, interpolate, logit_normal_timesteps, velocity_target

MU = torch.tensor([2.0, -1.0], dtype=torch.float64)
S = torch.tensor([[1.0, 0.6], [0.6, 0.5]], dtype=torch.float64)


def exact_velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(x)
    for tv in t.unique():
        m = t == tv
        tt = float(tv)
        c = tt**2 * S + (1 - tt) ** 2 * torch.eye(2, dtype=x.dtype)
        r = torch.linalg.solve(c, (x[m] - tt * MU).T).T  # (n, 2) = C^-1 (x - t mu)
        out[m] = MU + tt * r @ S.T - (1 - tt) * r
    return out


def moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x.mean(0), torch.cov(x.T)


def test_interpolation_endpoints_and_target():
    x1, eps = torch.randn(4, 3), torch.randn(4, 3)
    assert torch.equal(interpolate(x1, eps, torch.zeros(4)), eps)
    assert torch.equal(interpolate(x1, eps, torch.ones(4)), x1)
    half = interpolate(x1, eps, torch.full((4,), 0.5))
    assert torch.allclose(half, (x1 + eps) / 2)
    assert torch.equal(velocity_target(x1, eps), x1 - eps)


def test_flow_loss_values_by_hand():
    x1 = torch.tensor([[[1.0]], [[0.0]]])  # (2, 1, 1): channel dim 1
    eps = torch.zeros_like(x1)
    v = torch.tensor([[[3.0]], [[1.0]]])
    total, parts = flow_loss(v, x1, eps)
    assert math.isclose(total.item(), ((3 - 1) ** 2 + 1**2) / 2)
    # cosine term: sample 0 pred (3) vs target (1) cos=1; sample 1 target 0 -> cos=0 (eps-clamped)
    total, parts = flow_loss(v, x1, eps, cos_weight=2.0)
    assert math.isclose(parts["cos"].item(), 0.5, abs_tol=1e-6)
    assert math.isclose(total.item(), 2.5 + 2 * 0.5, abs_tol=1e-6)


def test_logit_normal_median_and_spread():
    g = torch.Generator().manual_seed(0)
    t = logit_normal_timesteps(20000, mean=0.0, std=1.0, generator=g)
    assert 0 < t.min() and t.max() < 1
    assert abs(t.median().item() - 0.5) < 0.01
    # P(t < sigmoid(1)) = Phi(1) = 0.8413
    assert abs((t < torch.sigmoid(torch.tensor(1.0))).float().mean().item() - 0.8413) < 0.01


def test_samplers_with_exact_velocity_reach_target():
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(20000, 2, generator=g, dtype=torch.float64)
    for method, steps, tol in [("heun", 20, 0.02), ("euler", 100, 0.05)]:
        x = sample(exact_velocity, noise, steps=steps, method=method)
        mean, cov = moments(x)
        # sampling error of a 20k-sample mean is ~0.01; tolerances are 2-5 standard errors
        assert torch.allclose(mean, MU, atol=tol), (method, mean)
        assert torch.allclose(cov, S, atol=2 * tol), (method, cov)
    # Heun is second order: with few steps it must beat Euler on the deterministic map
    ref = heun_sample(exact_velocity, noise[:500], steps=200)
    e_err = (euler_sample(exact_velocity, noise[:500], steps=8) - ref).abs().max()
    h_err = (heun_sample(exact_velocity, noise[:500], steps=8) - ref).abs().max()
    assert h_err < e_err / 4


def test_guidance_off_is_plain_and_on_extrapolates():
    def model(x, t, y):
        return x * 0 + y[:, None].to(x.dtype)  # velocity = label

    x, t, y = torch.zeros(3, 2), torch.zeros(3), torch.tensor([1, 2, 3])
    assert torch.equal(class_velocity(model, y)(x, t), y[:, None].float().expand(3, 2))
    guided = class_velocity(model, y, null_label=0, guidance=3.0)(x, t)
    assert torch.equal(guided, 3.0 * y[:, None].float().expand(3, 2))  # 0 + 3 * (y - 0)


def test_trained_mlp_with_flow_loss_matches_target():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(3, 128), torch.nn.SiLU(), torch.nn.Linear(128, 128), torch.nn.SiLU(), torch.nn.Linear(128, 2)
    )
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 2000)
    chol = torch.linalg.cholesky(S).float()
    for _ in range(2000):
        x1 = torch.randn(512, 2) @ chol.T + MU.float()  # (256, 2)
        eps = torch.randn(512, 2)
        t = logit_normal_timesteps(512)
        xt = interpolate(x1, eps, t)
        loss, _ = flow_loss(net(torch.cat([xt, t[:, None]], 1)), x1, eps, cos_weight=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()

    def v(x, t):
        return net(torch.cat([x, t[:, None]], 1))

    x = heun_sample(v, torch.randn(8000, 2), steps=25).double()
    mean, cov = moments(x)
    # a learned field: tolerance 0.1 on the mean and 0.15 on each covariance entry (target entries 0.5-1)
    assert torch.allclose(mean, MU, atol=0.1), mean
    assert torch.allclose(cov, S, atol=0.15), cov
