# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 5 — Clipping is a proximal step; stochastic projections smooth the loss
#
# Algorithm 1 ends every training step with a clip (lines 10–12):
#
#     W_k <- max(min(W_k, c_k), -c_k)
#
# Section 5 of Merolla et al. (2016) gives two readings of what the training recipe does:
#
# * **Clipping is a proximal step.** Minimising L(w) + G(w), with G the indicator of the
#   ℓ∞ ball (0 inside ‖w‖∞ ≤ c, +∞ outside), by the *proximal gradient method*
#
#       w_{t+1} = prox_G(w_t − λ ∂L/∂w),    prox_G(v) = argmin_x  G(x) + ‖x − v‖² / (2λ)
#
#   is exactly "one SGD step, then clip", because prox_G(v) = max(min(v, c), −c).
# * **Stochastic projections smooth the loss.** Training with P = φ(W) for a random
#   projection φ descends (roughly) the surface E_φ[L(φ(w))], a smoothed-over version of
#   L — smooth even where L(Sign(w)) is a staircase with zero gradient.
#
# In this lesson you will
#
# 1. solve the proximal problem numerically on a dense grid, for several λ, and see it equals
#    `clipping.prox_linf` (a clip) whatever λ is — and see why λ *does* matter for other G;
# 2. run projected gradient descent (SGD step + clip) on a 2-D quadratic whose minimum lies
#    outside the box, and watch it converge to the constrained minimiser on the boundary;
# 3. read the clip bounds c_k and the AlexNet clip schedule;
# 4. compute the smoothed surface E_φ[L(φ(w))] by Monte Carlo for Stoch and StochM, check it
#    against closed forms, and run gradient descent on it where the Sign surface is flat.
#
# Run it with `python lessons/05_clipping_as_prox.py` (`TINYPROJ_QUICK=1` for quick mode).
# Keep `tinyproj/clipping.py` and `tinyproj/projections/table1.py` open beside it.

# %%
import os
import sys
import time

import numpy as np

try:
    import _quick  # noqa: F401  (makes `import tinyproj` find this checkout; see lessons/_quick.py)
except ModuleNotFoundError:  # a notebook whose working folder is not lessons/
    sys.path.insert(0, os.path.join(os.environ.get("TINYPROJ_ROOT", os.getcwd()), "lessons"))
    import _quick  # noqa: F401
import matplotlib.pyplot as plt     # noqa: E402  (figures: inline in a notebook, files in lessons/out/)

import tinyproj as tp               # noqa: E402
import tinyproj.nn as nn            # noqa: E402
from tinyproj import backend, clipping, optim, projections  # noqa: E402

QUICK = os.environ.get("TINYPROJ_QUICK") == "1" or "--quick" in sys.argv
OUT = _quick.out_dir()              # figures go to lessons/out/ (not committed)
np.set_printoptions(precision=4, suppress=True, linewidth=120)
T0 = time.time()
print(f"quick mode: {QUICK}   figures go to {OUT}")

# %% [markdown]
# ## 1. The proximal operator of the ℓ∞-ball indicator, solved by brute force
#
# `clipping.indicator_linf(x, c)` is G applied element-wise: 0 where |x| ≤ c, +∞ elsewhere.
# Both G and ‖x − v‖² are sums over coordinates, so the argmin splits into one 1-D problem per
# element. We solve each 1-D problem the dumbest possible way: evaluate the objective
#
#     h(x) = G(x) + (x − v)² / (2λ)
#
# on a dense grid of x and take the grid point with the smallest value.

# %%
c = 1.0                                          # the clip bound (the paper's example uses 1)
step = 1e-3 if QUICK else 1e-4                   # grid spacing: the answer is exact up to this
# candidate solutions x; rounding makes +-1 exact grid points (arange would give -0.99999...)
x_grid = np.round(np.linspace(-4.0, 4.0, int(round(8.0 / step)) + 1), 12)
v_values = np.linspace(-3.0, 3.0, 13)            # the points we take the prox of
lambdas = [0.01, 0.1, 1.0, 10.0]                 # step sizes λ of the proximal gradient method

G = clipping.indicator_linf(x_grid, c)           # 0 inside [-c, c], inf outside
print(f"grid: {x_grid.size} points, spacing {step};  G is 0 on "
      f"{np.isfinite(G).sum()} of them and inf elsewhere")

prox_expected = clipping.prox_linf(v_values, c)  # the library's answer: a clip
print("v           :", v_values)
print("prox_linf(v):", prox_expected)
for lam in lambdas:
    # h has shape (len(v), len(x)): one row of objective values per v.
    h = G[None, :] + (x_grid[None, :] - v_values[:, None]) ** 2 / (2 * lam)
    prox_numeric = x_grid[np.argmin(h, axis=1)]   # argmin over the grid, per v
    err = np.max(np.abs(prox_numeric - prox_expected))
    print(f"lambda = {lam:5}:  argmin on the grid = {prox_numeric}   max |diff| = {err:.1e}")
    assert err <= step, "the grid argmin must equal the clip up to the grid spacing"
print("-> for every lambda the brute-force argmin is the clip max(min(v, c), -c).")

# %% [markdown]
# **Why λ does not matter here.** argmin_x G(x) + ‖x − v‖²/(2λ) = argmin_x λG(x) + ½‖x − v‖²,
# and λ·G = G when G only takes the values 0 and +∞. So the prox is "the point of the box
# nearest to v", whatever λ. For a regulariser with finite values λ does matter. Take
# G(x) = μ|x| (the ℓ1 penalty of the lasso): its prox is the *soft threshold*
# sign(v)·max(|v| − λμ, 0), which shrinks further as λ grows. The same grid search shows it.

# %%
mu = 1.0
G_l1 = mu * np.abs(x_grid)                       # an ℓ1 penalty: finite everywhere
for lam in lambdas:
    h = G_l1[None, :] + (x_grid[None, :] - v_values[:, None]) ** 2 / (2 * lam)
    prox_numeric = x_grid[np.argmin(h, axis=1)]
    soft = np.sign(v_values) * np.maximum(np.abs(v_values) - lam * mu, 0.0)
    print(f"l1 penalty, lambda = {lam:5}:  prox(v=2.5) = {prox_numeric[-2]:+.3f}  "
          f"(soft threshold {soft[-2]:+.3f}),  max |diff| = {np.max(np.abs(prox_numeric - soft)):.1e}")
print("-> for the l1 penalty the prox changes with lambda; for the box indicator it does not.")

# %% [markdown]
# The vector case. With two coordinates, the argmin over the whole 2-D grid is the clip of
# each coordinate separately — the box is a product of intervals, so the problem splits.

# %%
x2 = np.round(np.linspace(-3.0, 3.0, 601), 12)   # a coarser 2-D grid: 601 x 601 points
X1, X2 = np.meshgrid(x2, x2, indexing="ij")
G2 = clipping.indicator_linf(X1, c) + clipping.indicator_linf(X2, c)   # 0 iff ||x||_inf <= c
for v in [np.array([2.0, 0.3]), np.array([-1.7, 2.4]), np.array([0.4, -0.2])]:
    h = G2 + ((X1 - v[0]) ** 2 + (X2 - v[1]) ** 2) / (2 * 0.5)
    i, j = np.unravel_index(np.argmin(h), h.shape)
    print(f"v = {v}:  2-D grid argmin = ({x2[i]:+.2f}, {x2[j]:+.2f})   prox_linf(v) = "
          f"{clipping.prox_linf(v, c)}")

# %%
# Figure: prox(v) against v, the box indicator for several lambda (all on top of each other)
# next to the l1 penalty (which moves with lambda).
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
v_fine = np.linspace(-3, 3, 241)
for lam, style in zip(lambdas, ["-", "--", ":", "-."]):
    h = G[None, :] + (x_grid[None, :] - v_fine[:, None]) ** 2 / (2 * lam)
    axes[0].plot(v_fine, x_grid[np.argmin(h, axis=1)], style, lw=2, label=f"grid argmin, λ={lam}")
    h = G_l1[None, :] + (x_grid[None, :] - v_fine[:, None]) ** 2 / (2 * lam)
    axes[1].plot(v_fine, x_grid[np.argmin(h, axis=1)], style, lw=2, label=f"grid argmin, λ={lam}")
axes[0].plot(v_fine, clipping.prox_linf(v_fine, c), "k", lw=0.8, label="prox_linf (clip)")
axes[0].set_title("G = indicator of |x| ≤ 1: prox is a clip, for every λ")
axes[1].set_title("G = |x| (ℓ1): prox is a soft threshold that depends on λ")
for ax in axes:
    ax.set_xlabel("v")
    ax.set_ylabel("prox_G(v)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
fig.tight_layout()
_quick.show(fig, "05_prox_grid.png")   # inline in a notebook; saved to lessons/out/

# %% [markdown]
# ## 2. One SGD step + clip = one proximal-gradient step
#
# A toy loss of two weights, a quadratic bowl whose minimum m lies **outside** the box
# ‖w‖∞ ≤ 1:
#
#     L(w) = ½ (w − m)ᵀ A (w − m),     ∇L(w) = A (w − m)
#
# A is not diagonal, so the coordinates are coupled. That makes the example honest: the
# constrained minimiser is *not* simply clip(m). We iterate Algorithm 1 with the None
# projection and SGD (no minibatch noise here, just the gradient):
#
#     Ŵ = W − lr · ∇L(W)       (line 9, update)
#     W = max(min(Ŵ, c), −c)   (line 12, clip)
#
# and check each step equals prox_linf(W − lr·∇L(W), c), the proximal gradient step.

# %%
A = np.array([[2.0, 0.6], [0.6, 1.0]])      # positive definite (eigenvalues about 0.72 and 2.28)
m = np.array([2.0, -0.5])                   # the unconstrained minimum, outside the box


def loss2(w):
    """L(w) = 0.5 (w - m)^T A (w - m) for w of shape (..., 2)."""
    d = w - m
    return 0.5 * np.einsum("...i,ij,...j->...", d, A, d)


def grad2(w):
    """dL/dw = A (w - m)."""
    return A @ (w - m)


def projected_gd(w0, lr, steps, clip=True):
    """Gradient steps, each followed by the clip of Algorithm 1 line 12 (if clip)."""
    w = np.array(w0, dtype=np.float64)
    path = [w.copy()]
    for _ in range(steps):
        w_hat = w - lr * grad2(w)                      # line 9: the update
        prox = clipping.prox_linf(w_hat, c)           # the proximal-gradient step ...
        if clip:
            clipping.clip_([(w_hat, c)])              # ... and line 12, the clip, in place
            assert np.array_equal(w_hat, prox)        # they are the same numbers
        w = w_hat
        path.append(w.copy())
    return np.array(path)


w0 = [-0.8, 0.8]
lr = 0.2                                    # below 2 / (largest eigenvalue of A) = 0.88
steps = 120 if QUICK else 200                # the error shrinks by 0.8 per step here
pgd = projected_gd(w0, lr, steps)
gd = projected_gd(w0, lr, steps, clip=False)
print(" step |  w (SGD + clip)        L(w)   |  w (SGD, no clip)")
for t in list(range(0, 10)) + [steps]:
    print(f" {t:4d} | ({pgd[t, 0]:+.4f}, {pgd[t, 1]:+.4f})  {loss2(pgd[t]):.4f} |"
          f"  ({gd[t, 0]:+.4f}, {gd[t, 1]:+.4f})")

# %% [markdown]
# The same step with the framework's own pieces: autograd computes ∇L, `optim.SGD` does
# line 9, `clipping.clip_` does line 12 — and the result is the proximal-gradient step.

# %%
w_param = nn.Parameter(np.array([[0.9, 0.8]]))              # W^t as a (1, 2) float64 row
sgd = optim.SGD([w_param], lr=0.5)
d = w_param - tp.tensor(m[None, :])                        # w - m, shape (1, 2)
loss_t = 0.5 * ((d @ tp.tensor(A)) * d).sum()              # 0.5 (w-m)^T A (w-m)  (A symmetric)
loss_t.backward()                                          # w_param.grad = A (w - m)
W_t = w_param.numpy()       # W^t on the host: grad2 is NumPy code, and on a GPU the parameter
                            # lives in device memory (NumPy and CuPy arrays do not mix)
print(f"autograd gradient: {w_param.grad[0]}   by hand A (w - m): {grad2(W_t[0])}")
expected = clipping.prox_linf(W_t - 0.5 * grad2(W_t[0]), c)
sgd.step()                                                 # line 9:  W_hat = W - lr * grad
print(f"after SGD step (line 9) : {w_param.data}   <- outside the box")
clipping.clip_([(w_param.data, c)])                        # line 12: clip in place
print(f"after clip (line 12)    : {w_param.data}")
print(f"prox_linf(W - lr grad)  : {expected}   equal: {np.allclose(w_param.numpy(), expected)}")

# %% [markdown]
# Where should it end? On the face w1 = 1 of the box the loss is a parabola in w2, minimised
# at w2 = m2 − A21 (1 − m1) / A22 = −0.5 + 0.6 = 0.1. At (1, 0.1) the negative gradient, the
# direction descent wants to go, points out of the box through that face (∂L/∂w1 < 0,
# ∂L/∂w2 = 0): the KKT conditions for the constrained problem hold. A brute-force search over a grid of the box agrees. Note how
# different this is from clip(m) = (1, −0.5), "train without constraint, then clip".

# %%
w_star = np.array([1.0, m[1] - A[1, 0] * (1.0 - m[0]) / A[1, 1]])
box = np.linspace(-c, c, 2001)
B1, B2 = np.meshgrid(box, box, indexing="ij")
Lbox = loss2(np.stack([B1, B2], axis=-1))
i, j = np.unravel_index(np.argmin(Lbox), Lbox.shape)
print(f"constrained minimiser (KKT)       : {w_star},  L = {loss2(w_star):.4f}")
print(f"constrained minimiser (grid search): ({box[i]:+.4f}, {box[j]:+.4f})")
print(f"gradient there                    : {grad2(w_star)}  (-grad points out through w1 = +1)")
print(f"projected GD ends at              : {pgd[-1]},  |w - w*| = {np.abs(pgd[-1] - w_star).max():.1e}")
print(f"plain GD ends at                  : {gd[-1]}  (the unconstrained m = {m})")
print(f"clip(m), 'train then clip'        : {clipping.prox_linf(m, c)},  L = "
      f"{loss2(clipping.prox_linf(m, c)):.4f}  (worse than w*)")
assert np.abs(pgd[-1] - w_star).max() < 1e-6

# The step size changes the path, not the fixed point: w* = prox(w* - lr grad(w*)) for any lr.
for lr_try in [0.05, 0.2, 0.6]:
    end = projected_gd(w0, lr_try, 400 if QUICK else 2000)[-1]
    print(f"lr = {lr_try}: projected GD ends at {end}")

# %%
# Figure: contours of L, the box, the projected and the plain gradient descent paths.
g = np.linspace(-2.0, 3.0, 301)
G1, Gy = np.meshgrid(g, g, indexing="xy")
Lg = loss2(np.stack([G1, Gy], axis=-1))
fig, ax = plt.subplots(figsize=(6.5, 5.5))
cs = ax.contour(G1, Gy, Lg, levels=20, cmap="viridis", linewidths=0.8)
ax.clabel(cs, fontsize=6)
ax.plot([-c, c, c, -c, -c], [-c, -c, c, c, -c], "k-", lw=2, label="box ‖w‖∞ ≤ c = 1")
ax.plot(gd[:, 0], gd[:, 1], "o-", ms=3, color="tab:gray", label="SGD, no clip")
ax.plot(pgd[:, 0], pgd[:, 1], "o-", ms=3, color="tab:red", label="SGD + clip (proximal gradient)")
ax.plot(*m, "k*", ms=12, label="unconstrained minimum m")
ax.plot(*w_star, "r*", ms=14, label="constrained minimiser w*")
ax.plot(*clipping.prox_linf(m, c), "bx", ms=10, mew=2, label="clip(m) (not optimal)")
ax.set_xlabel("w1")
ax.set_ylabel("w2")
ax.set_title("Projected gradient descent on a quadratic")
ax.set_aspect("equal")
ax.legend(fontsize=7, loc="lower left")
fig.tight_layout()
_quick.show(fig, "05_projected_gd.png")

# %% [markdown]
# ## 3. Clip bounds and clip schedules
#
# In a real network c_k = f · std(Glorot initial weights of layer k) = f · sqrt(2/(fan_in + fan_out)),
# with f = 0.5 for the CIFAR-10 networks. Biases and batch-norm parameters are never clipped,
# so `clip_bounds` leaves them out. A small MLP shows the numbers.

# %%
model = nn.Sequential(nn.Linear(784, 256), nn.BatchNorm1d(256), nn.ReLU(),
                      nn.Linear(256, 256), nn.BatchNorm1d(256), nn.ReLU(), nn.Linear(256, 10))
bounds = clipping.clip_bounds(model, f=0.5)
for name, p in model.named_parameters():
    if name in bounds:
        print(f"{name:10s} shape {str(tuple(p.data.shape)):12s} glorot std "
              f"{clipping.glorot_std(p.data.shape):.4f}   c_k = {bounds[name]:.4f}   "
              f"max|W| at init = {np.abs(p.data).max():.4f}")
    else:
        print(f"{name:10s} shape {str(tuple(p.data.shape)):12s} not clipped (1-D parameter)")
print("f = 'NC' gives", clipping.clip_bounds(model, "NC"), "(nothing is clipped)")
# Glorot-uniform weights reach sqrt(3) * std, so with f = 0.5 the very first clip already
# cuts most initial weights to +-c_k: about 1 - 0.5/sqrt(3) = 71 % of them.
W0 = model.named_parameters()[0][1].data.copy()
c0 = bounds["0.weight"]
print(f"fraction of layer 0's initial weights beyond c_0: {np.mean(np.abs(W0) > c0):.3f}")

# %% [markdown]
# The AlexNet run of section 4.2.1 changes f during training: it starts at 4.5 and is
# multiplied by 1.4 at iterations 5K, 10K and 15K (the paper notes each step up costs a
# temporary dip in accuracy). `ClipSchedule` holds that rule; `bounds_at(model, t)` turns it
# into per-layer bounds.

# %%
schedule = clipping.ClipSchedule.alexnet()
print(schedule, "->", schedule.as_dict())
for t in [0, 4999, 5000, 9999, 10000, 14999, 15000, 150000]:
    print(f"iteration {t:6d}: f = {schedule.f_at(t):.4f}   c for layer 0 = "
          f"{schedule.bounds_at(model, t)['0.weight']:.4f}")
print("constant(0.5) at t=10**6 :", clipping.ClipSchedule.constant(0.5).f_at(10**6))
print("constant('NC') at t=0    :", clipping.ClipSchedule.constant("NC").f_at(0))
assert clipping.ClipSchedule.from_dict(schedule.as_dict()).f_at(12345) == schedule.f_at(12345)

fig, ax = plt.subplots(figsize=(6, 3))
ts = np.arange(0, 20001, 50)
ax.step(ts, [schedule.f_at(int(t)) for t in ts], where="post", label="ClipSchedule.alexnet()")
ax.axhline(0.5, color="tab:orange", ls="--", label="constant f = 0.5 (CIFAR-10)")
ax.set_xlabel("iteration")
ax.set_ylabel("clip factor f")
ax.legend()
ax.grid(alpha=0.3)
fig.tight_layout()
_quick.show(fig, "05_clip_schedule.png")

# %% [markdown]
# ## 4. Stochastic projections smooth the loss surface
#
# A toy that keeps every number visible. A "layer" holds the weight w we study plus one
# other weight fixed at 1, so α = max|w_i| = 1 for every w in [−1, 1] (the clip keeps w
# there). The loss of the projected weight p is a parabola with its minimum at t = −0.6:
#
#     L(p) = (p − t)²
#
# * **None:** L(w), smooth.
# * **Sign:** L(Sign(w)) takes only two values, L(+α) for w ≥ 0 and L(−α) for w < 0: a
#   staircase with zero gradient everywhere except the jump.
# * **Stoch:** P = +α with probability p(w) = (w/α + 1)/2, so
#   E[L(Stoch(w))] = p(w)·L(+α) + (1 − p(w))·L(−α), a straight line between the two steps.
# * **StochM(γ):** P = s·|w|·u with s = ±1 (P(s=+1) = p(w)) and u ~ U(γ, 1/γ), so
#   E[L] = w²·E[u²] − 2t·|w|·(w/α)·E[u] + t², a smooth curve.
#
# We estimate the expectations by Monte Carlo with the library's own `projections.stoch`
# and `projections.stochm`. Trick: one big array holds all draws for all grid points plus the
# weight fixed at 1; α is the max over the whole array, which is 1, exactly as in each small
# layer, and every element is projected independently.

# %%
rng = backend.make_rng(0)
t_target = -0.6
alpha = 1.0
gamma = 0.5


def toy_loss(p):
    return (p - t_target) ** 2


def draws_of(projection, w_values, n_draws, rng):
    """n_draws projections of every w in w_values (shape (n_draws, len(w_values))), alpha = 1."""
    W = np.empty((n_draws, w_values.size + 1))
    W[:, :-1] = w_values            # every row is a copy of the grid ...
    W[:, -1] = alpha                # ... plus the weight that sets alpha = 1
    return projection(W, rng)[:, :-1]


w_line = np.linspace(-1.0, 1.0, 81 if QUICK else 201)
n_draws = 2000 if QUICK else 20000
L_none = toy_loss(w_line)
L_sign = toy_loss(projections.sign(np.append(w_line, alpha))[:-1])
mc_stoch = toy_loss(draws_of(projections.stoch, w_line, n_draws, rng)).mean(axis=0)
mc_stochm = toy_loss(draws_of(lambda W, r: projections.stochm(W, gamma, r),
                               w_line, n_draws, rng)).mean(axis=0)

p_w = (w_line / alpha + 1) / 2
closed_stoch = p_w * toy_loss(alpha) + (1 - p_w) * toy_loss(-alpha)
Eu = (gamma + 1 / gamma) / 2                                   # E[u], u ~ U(gamma, 1/gamma)
Eu2 = ((1 / gamma) ** 3 - gamma ** 3) / (3 * (1 / gamma - gamma))   # E[u^2]
closed_stochm = w_line ** 2 * Eu2 - 2 * t_target * np.abs(w_line) * (w_line / alpha) * Eu + t_target ** 2
print(f"Monte Carlo with {n_draws} draws per w:")
print(f"  Stoch : max |MC - closed form| = {np.abs(mc_stoch - closed_stoch).max():.4f}")
print(f"  StochM: max |MC - closed form| = {np.abs(mc_stochm - closed_stochm).max():.4f}")
print("   w     L(w)   L(Sign w)  E L(Stoch w) [closed]   E L(StochM w) [closed]")
for k in np.linspace(0, w_line.size - 1, 9).astype(int):
    print(f"{w_line[k]:+.2f}  {L_none[k]:6.3f}  {L_sign[k]:6.3f}     {mc_stoch[k]:6.3f} [{closed_stoch[k]:6.3f}]"
          f"      {mc_stochm[k]:6.3f} [{closed_stochm[k]:6.3f}]")
# The Monte Carlo error shrinks like 1/sqrt(n_draws); L is at most about 7 here.
assert np.abs(mc_stoch - closed_stoch).max() < 0.2
assert np.abs(mc_stochm - closed_stochm).max() < 0.3

# %% [markdown]
# Gradient descent on each surface, from w = 0.5, with the clip keeping w in [−1, 1].
# On the Sign staircase the gradient is 0 at w = 0.5, so nothing moves. On the Stoch surface
# the slope is (L(+α) − L(−α)) / (2α) = 1.2 everywhere, so w walks down to −α, the better
# of the two states. On StochM it follows the curve to *its* minimum, which is not where
# L(w) is smallest: for w < 0 the closed form is (E[u²] + 2t·E[u]/α)·w² + t² = 0.25·w² + 0.36,
# so with γ = 0.5 the random magnitudes cost more than the mean gains and the best w is 0.
# Each smoothed surface has its own minimiser — the one most robust to *that* projection,
# as section 5 says. (We use exact slopes here; a training step only sees one noisy draw.)

# %%
def gd_1d(slope_fn, w_start=0.5, lr=0.1, steps=30):
    w = w_start
    for _ in range(steps):
        w = float(clipping.prox_linf(np.array(w - lr * slope_fn(w)), 1.0))   # step + clip
    return w


def slope_sign(w):
    return 0.0                      # L(Sign(w)) is flat on either side of 0


def slope_stoch(w):
    return (toy_loss(alpha) - toy_loss(-alpha)) / (2 * alpha)


def slope_stochm(w):
    return 2 * w * Eu2 - 4 * t_target * abs(w) / alpha * Eu     # d/dw of the closed form


surfaces = {"Sign": (slope_sign, L_sign), "Stoch (smoothed)": (slope_stoch, closed_stoch),
            "StochM (smoothed)": (slope_stochm, closed_stochm)}
for label, (fn, surface) in surfaces.items():
    w_end = gd_1d(fn, steps=30 if QUICK else 100)
    print(f"{label:18s}: w 0.5 -> {w_end:+.4f}   surface value {np.interp(0.5, w_line, surface):.3f}"
          f" -> {np.interp(w_end, w_line, surface):.3f}   (grid argmin of the surface: "
          f"w = {w_line[np.argmin(surface)]:+.3f})")
print(f"StochM, w < 0 branch: E[u^2] + 2 t E[u] / alpha = {Eu2:.3f} + 2*({t_target})*{Eu:.3f} "
      f"= {Eu2 + 2 * t_target * Eu / alpha:.3f} > 0, so the minimum is at w = 0")

# %% [markdown]
# **What Algorithm 1 actually computes.** Backprop gives ∂L/∂P at the *drawn* P and applies
# it to W. Averaged over draws that is E[L'(φ(w))]. For additive noise φ(w) = w + n this is
# exactly the slope of the smoothed surface E[L(w + n)] (differentiate under the expectation).
# For Stoch it is not: P does not depend smoothly on w, only its probabilities do. With our
# parabola E[L'(Stoch(w))] = 2(E[P] − t) = 2(w − t), the slope of L at w itself, while the
# smoothed surface has slope 1.2. Both point the same way here, and both move w where the
# Sign staircase gives nothing — but the paper's "backprop estimates the gradient of
# E E[L(φ(w))]" is a heuristic for Stoch, exact only for noise that enters additively.

# %%
n_check = 4000 if QUICK else 40000
for w_val in [-0.5, 0.0, 0.5]:
    P = draws_of(projections.stoch, np.array([w_val]), n_check, rng)[:, 0]
    ste = np.mean(2 * (P - t_target))                         # what backprop averages to
    sigma = 0.3
    noisy = draws_of(lambda W, r: projections.addnorm(W, sigma, r), np.array([w_val]), n_check, rng)[:, 0]
    ste_add = np.mean(2 * (noisy - t_target))
    # exact slope of E[L(w + n)], n ~ N(0, (alpha sigma)^2): E = (w - t)^2 + (alpha sigma)^2
    slope_add = 2 * (w_val - t_target)
    print(f"w = {w_val:+.1f}:  Stoch: E[dL/dP] = {ste:+.3f} vs smoothed slope {slope_stoch(w_val):+.3f}   |"
          f"  AddNorm: E[dL/dP] = {ste_add:+.3f} vs smoothed slope {slope_add:+.3f}")

# %%
# Figure: the 1-D surfaces.
fig, ax = plt.subplots(figsize=(7, 4.5))
ax.plot(w_line, L_none, color="tab:gray", label="L(w)  (None)")
ax.plot(w_line, L_sign, color="k", lw=2, label="L(Sign(w))  (flat steps)")
ax.plot(w_line, mc_stoch, ".", ms=4, color="tab:blue", label=f"E L(Stoch(w)), Monte Carlo ({n_draws} draws)")
ax.plot(w_line, closed_stoch, "-", color="tab:blue", lw=1, label="E L(Stoch(w)), closed form (a line)")
ax.plot(w_line, mc_stochm, ".", ms=4, color="tab:red", label=f"E L(StochM(w, γ={gamma})), Monte Carlo")
ax.plot(w_line, closed_stochm, "-", color="tab:red", lw=1, label="E L(StochM(w)), closed form")
ax.set_xlabel("weight w   (α = 1)")
ax.set_ylabel("loss")
ax.set_title(f"Smoothed surfaces of L(p) = (p − t)², t = {t_target}")
ax.legend(fontsize=7)
ax.grid(alpha=0.3)
fig.tight_layout()
_quick.show(fig, "05_smoothed_1d.png")

# %% [markdown]
# ### The same in two dimensions
#
# Two weights (w1, w2) and the fixed weight 1 (so α = 1), and the loss of a tiny linear
# model on a few data points, L(p) = mean_n (p·x_n − y_n)². Under Sign only the four corners
# (±α, ±α) are ever used, so L(Sign(w)) is constant on each quadrant. Under Stoch the two
# signs are independent, so
#
#     E[L(Stoch(w))] = Σ over corners s ∈ {±1}²  q1(s1) q2(s2) L(α s),
#     q_i(+1) = p(w_i),  q_i(−1) = 1 − p(w_i),
#
# a bilinear function of w: smooth, with a gradient everywhere. Gradient descent with the
# clip (the proximal step of section 2) slides to the best corner.

# %%
data_rng = np.random.default_rng(1)
Xd = data_rng.normal(size=(20, 2))
yd = Xd @ np.array([-0.7, 0.9]) + 0.1 * data_rng.normal(size=20)   # best corner: (-1, +1)
corners = [np.array([s1, s2]) * alpha for s1 in (1, -1) for s2 in (1, -1)]


def lin_loss(P):
    """mean_n (P . x_n - y_n)^2 for P of shape (..., 2)."""
    return np.mean((P @ Xd.T - yd) ** 2, axis=-1)


def smoothed2(w):
    """E[L(Stoch(w))] in closed form, and its gradient, for w of shape (2,)."""
    p = (w / alpha + 1) / 2
    value, grad = 0.0, np.zeros(2)
    for s in corners:
        q = np.where(s > 0, p, 1 - p)            # probability of each coordinate's sign
        dq = np.where(s > 0, 1.0, -1.0) / (2 * alpha)
        Ls = lin_loss(s)
        value += q[0] * q[1] * Ls
        grad += np.array([dq[0] * q[1], q[0] * dq[1]]) * Ls
    return value, grad


for s in corners:
    print(f"corner {s}: L = {lin_loss(s):.3f}")

# Check the closed form against Monte Carlo at one point with the library's stoch().
w_test = np.array([0.4, -0.3])
W = np.tile(np.append(w_test, alpha), (n_draws, 1))   # n_draws copies of the 3-weight layer
P = projections.stoch(W, rng)[:, :2]
print(f"at w = {w_test}: E L(Stoch(w)) Monte Carlo {lin_loss(P).mean():.3f}, "
      f"closed form {smoothed2(w_test)[0]:.3f};  L(Sign(w)) = {lin_loss(projections.sign(np.append(w_test, alpha))[:2]):.3f}")

w_path = [np.array([0.6, -0.4])]
for _ in range(40):
    _, g_s = smoothed2(w_path[-1])
    w_path.append(clipping.prox_linf(w_path[-1] - 0.3 * g_s, alpha))   # SGD step + clip
w_path = np.array(w_path)
print("gradient descent on E L(Stoch(w)), with clip:")
for t in [0, 1, 2, 5, 10, 20, 40]:
    v, g_s = smoothed2(w_path[t])
    print(f"  step {t:2d}: w = {w_path[t]}  E L = {v:.3f}  |grad| = {np.linalg.norm(g_s):.3f}   "
          f"L(Sign w) = {lin_loss(projections.sign(np.append(w_path[t], alpha))[:2]):.3f}")
print("at the corner the gradient is not 0: its negative points out of the box, and the clip (the prox of")
print("section 2) holds w on the boundary, a constrained minimum.")
print("on the Sign surface the gradient at the start is exactly 0: w would stay at", w_path[0])

# %%
# Figure: L(Sign(w)) and the smoothed E L(Stoch(w)) as contour maps, with the GD path.
gg = np.linspace(-1, 1, 101)
Wa, Wb = np.meshgrid(gg, gg, indexing="xy")
grid_w = np.stack([Wa, Wb], axis=-1)
sign_surface = lin_loss(np.where(grid_w >= 0, alpha, -alpha))
smooth_surface = np.vectorize(lambda a, b: smoothed2(np.array([a, b]))[0])(Wa, Wb)
fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
for ax, Z, title in [(axes[0], sign_surface, "L(Sign(w)): constant on each quadrant"),
                     (axes[1], smooth_surface, "E L(Stoch(w)): smooth (bilinear)")]:
    im = ax.contourf(Wa, Wb, Z, levels=30, cmap="viridis")
    fig.colorbar(im, ax=ax, label="loss")
    ax.plot(w_path[:, 0], w_path[:, 1], "o-", ms=3, color="tab:red", label="GD on E L(Stoch(w)) + clip")
    ax.plot(*w_path[0], "ws", ms=8, label="start")
    ax.set_xlabel("w1   (α = 1)")
    ax.set_ylabel("w2")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper right")
fig.tight_layout()
_quick.show(fig, "05_smoothed_2d.png")

# %% [markdown]
# ## What to remember
#
# * Clipping after the update is the proximal operator of the ℓ∞-ball indicator, so
#   Algorithm 1 with None and SGD is projected (proximal) gradient descent; λ does not change
#   the prox, and the fixed point is the constrained minimiser, not clip(unconstrained min).
# * c_k = f·sqrt(2/(fan_in + fan_out)); AlexNet grows f from 4.5 by ×1.4 at 5K, 10K, 15K.
# * Averaging the loss over a stochastic projection turns the Sign staircase into a smooth
#   surface (a line for Stoch in 1-D, a bilinear map in 2-D, a curve for StochM) on which
#   gradient descent moves. Backprop's ∂L/∂P averages to that slope exactly only for additive
#   noise; for Stoch it is a useful heuristic.

# %%
print(f"lesson 5 done in {time.time() - T0:.1f} s")

# %% [markdown]
# ## Exercises you can check
#
# Replace each `...` by your answer and run the cell: the checker prints **correct**, or what is
# off, or *not answered yet*. The checkers live in `lessons/exercises.py`; they compute the right
# answer with tinyproj itself (there is no solution file), so try first, then read them.
#
# 1. Write `my_prox(v, c)`: the proximal operator of the ℓ∞ ball of radius c at v, element-wise
#    (section 1 finds it by brute force). The checker compares it with `clipping.prox_linf`.
# 2. Projected gradient descent (step, then clip to [−1, 1]) on L(w) = ½(w − 3)², started at 0:
#    where does it end? (Section 2: what is the fixed point w* = prox(w* − lr·∇L(w*))?)

# %%
from exercises import check_05_1, check_05_2  # noqa: E402  (lessons/exercises.py)


def my_prox(v, c):
    return ...                  # one line of NumPy


check_05_1(my_prox)

# %%
answer_2 = ...                  # a number
check_05_2(answer_2)
