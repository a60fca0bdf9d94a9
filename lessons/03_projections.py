# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 3 — The weight projections of Table 1
#
# Algorithm 1 of Merolla et al. (2016) never computes with the full-precision weights W
# directly: every layer k first passes its weights through a *projection*
# P_k = Proj(W_k, θ), and the forward and backward passes use P. At test time the same
# functions act as *distortions* of a trained network. Table 1 of the paper lists them; each
# row is one small function in `tinyproj/projections/table1.py`:
#
# | row | definition (α = max_i \|w_i\| of the whole layer) | allowed states |
# | --- | --- | --- |
# | Sign | α·sign(w) | {−α, +α} |
# | Round | α·round(w/α) | {−α, 0, +α} |
# | None | w | ℝ |
# | Power(β) | α·\|w/α\|^β·sign(w) | [−α, α] |
# | Stoch | +α with p = (w/α + 1)/2, else −α | {−α, +α} |
# | StochM(γ) | \|w\|·U(γ, 1/γ), sign + with p, else − | [−α/γ, α/γ] |
# | StochM3(γ) | StochM, then the half of the weights nearest 0 zeroed with prob. ½ | [−α/γ, α/γ] and 0 |
# | AddNorm(σ) | w + N(0, α·σ) | ℝ |
# | MultUnif(γ) | w·U(γ, 1/γ) | [−α/γ, α/γ] |
#
# (StochM has three readings, compared in section 5b; the table shows the one the
# `tr-stochm-c` preset uses.)
#
# In this lesson you will
#
# 1. plot every projection's transfer function w ↦ Proj(w) on a grid w ∈ [−α, α]
#    (curves for the deterministic ones, clouds of draws plus the expectation for the
#    stochastic ones) and check the allowed states;
# 2. measure the expectations of Stoch (unbiased) and StochM (biased) over many draws and
#    compare them with the formulas;
# 3. see why StochM *as printed* cannot work: it flips the sign of negative weights;
# 4. use the spec parser (`parse("power:beta=U(0,2)")`, `.sample(rng)` per minibatch) and
#    read its error messages;
# 5. train a small network on MNIST with Algorithm 1 and look at what each projection does
#    to the weights of a trained layer and to the test accuracy — with and without clipping,
#    with and without batch-norm re-estimation.
#
# Run it with `python lessons/03_projections.py` (`TINYPROJ_QUICK=1` for quick mode). Set
# `TINYPROJ_DATA` to the folder that holds `mnist/` (for example `../shared/datasets`).

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
from matplotlib.ticker import NullLocator  # noqa: E402

import tinyproj as tp               # noqa: E402
import tinyproj.functional as F     # noqa: E402
import tinyproj.nn as nn            # noqa: E402
from tinyproj import algorithm1, backend, clipping, data, models, optim, projections  # noqa: E402

QUICK = os.environ.get("TINYPROJ_QUICK") == "1" or "--quick" in sys.argv
OUT = _quick.out_dir()              # figures go to lessons/out/ (not committed)
np.set_printoptions(precision=4, suppress=True, linewidth=110)
T0 = time.time()
rng = backend.make_rng(0)           # rule 5: one seeded generator, passed to every random draw
print(f"quick mode: {QUICK}   backend: {backend.name()}   figures go to {OUT}")

# %% [markdown]
# ## 1. Table 1 as code: the registry
#
# `projections.REGISTRY` maps each name to its function, its parameters, the allowed
# states and how the paper uses it. `stochm_literal` is an extra row: StochM exactly as
# printed, kept only for section 3 of this lesson.

# %%
print(f"{'name':15s} {'parameters':10s} {'random?':8s} {'allowed states':36s} use")
for name, entry in projections.REGISTRY.items():
    params = ",".join(p.name for p in entry.params) or "-"
    print(f"{name:15s} {params:10s} {str(entry.stochastic):8s} {entry.states:36s} {entry.use}")

# %% [markdown]
# ## 2. Transfer functions of the deterministic projections
#
# All projections work on a whole weight tensor, because α = max|w| is taken over the layer.
# To draw a transfer function we therefore project a *grid* of weights as one tensor:
# w = linspace(−α, α), whose largest magnitude is α itself. We take α = 0.8 so that the
# α-scaling is visible (the output of Sign is ±0.8, not ±1).

# %%
alpha = 0.8
n_grid = 201 if QUICK else 801
w = np.linspace(-alpha, alpha, n_grid).astype(np.float32)   # float32, the framework's default
print("grid:", w.shape, w.dtype, " alpha = max|w| =", float(np.abs(w).max()))

det = {
    "none": projections.none(w),
    "sign": projections.sign(w),
    "round": projections.round(w),
}
betas = [0.0, 0.5, 1.0, 2.0]
powers = {b: projections.power(w, b) for b in betas}
for name, p in det.items():
    # Every projection returns a *new* array of the same shape and dtype.
    print(f"{name:6s}: dtype {p.dtype}, shape {p.shape}, is a new array: {p is not w}")

# The two special cases named in the paper hold exactly (bit for bit).
assert np.array_equal(powers[0.0], det["sign"]), "Power(w, 0) must equal Sign(w)"
assert np.array_equal(powers[1.0], det["none"]), "Power(w, 1) must equal None(w)"
print("Power(w, 0) == Sign(w) and Power(w, 1) == None(w): exactly")

# Two conventions the paper leaves open, decided in `projections/table1.py`:
ties = np.array([-0.8, -0.4, 0.0, 0.4, 0.8], dtype=np.float32)   # alpha = 0.8, ±alpha/2 = ±0.4
print("w        :", ties)
print("Sign(w)  :", projections.sign(ties), "  <- sign(0) is +1, so Sign stays two-valued")
print("Round(w) :", projections.round(ties), "  <- w/alpha = ±0.5 rounds away from zero")
print("np.round :", alpha * np.round(ties / alpha), "  <- NumPy rounds half to even (0.5 -> 0)")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
ax = axes[0]
ax.plot(w, det["none"], color="tab:gray", label="None(w) = w")
ax.plot(w, det["sign"], color="tab:blue", lw=2, label="Sign(w) ∈ {−α, +α}")
ax.plot(w, det["round"], color="tab:orange", lw=2, ls="--", label="Round(w) ∈ {−α, 0, +α}")
ax.set_title(f"Sign, Round, None (α = {alpha})")
ax = axes[1]
for b in betas:
    ax.plot(w, powers[b], lw=2, label=f"Power(w, β={b})" + ("  = Sign" if b == 0 else "  = None" if b == 1 else ""))
ax.set_title("Power(w, β) = α·|w/α|^β·sign(w)")
for ax in axes:
    ax.set_xlabel("full-precision weight w")
    ax.set_ylabel("projected weight Proj(w)")
    ax.axhline(0, color="k", lw=0.5)
    ax.axvline(0, color="k", lw=0.5)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
fig.tight_layout()
_quick.show(fig, "03_transfer_deterministic.png")   # inline in a notebook; saved to lessons/out/

# %% [markdown]
# β < 1 pushes weights out towards ±α (at β = 0, all the way: Sign), β > 1 pulls the small
# ones in towards 0. Tr-Power-C trains with a fresh β ~ U[0, 2] for every minibatch, so the
# network sees a whole family of these curves.
#
# ## 3. Transfer functions of the stochastic projections
#
# A stochastic projection gives a different P on every call. We draw it several times on the
# grid and plot each draw as a cloud of points, with the expectation E[Proj(w)] as a curve.
# With u ~ U(γ, 1/γ), E[u] = (γ + 1/γ)/2 (= 1.25 for γ = 0.5):
#
# | row | E[Proj(w)] |
# | --- | --- |
# | Stoch | α·p − α·(1 − p) = w (unbiased) |
# | StochM | (2p − 1)·\|w\|·E[u] = w·\|w\|/α·E[u] |
# | StochM3 | as StochM, times ½ for the half of the weights nearest zero |
# | StochM literal | (2p − 1)·w·E[u] = w²/α·E[u]  ≥ 0 for every w! |
# | AddNorm(σ) | w |
# | MultUnif(γ) | w·E[u] |

# %%
gamma, sigma = 0.5, 0.3
Eu = (gamma + 1 / gamma) / 2
stochastic = {
    "stoch": lambda x, r: projections.stoch(x, r),
    f"stochm:gamma={gamma}": lambda x, r: projections.stochm(x, gamma, r),
    f"stochm3:gamma={gamma}": lambda x, r: projections.stochm3(x, gamma, r),
    f"stochm_literal:gamma={gamma}": lambda x, r: projections.stochm_literal(x, gamma, r),
    f"addnorm:sigma={sigma}": lambda x, r: projections.addnorm(x, sigma, r),
    f"multunif:gamma={gamma}": lambda x, r: projections.multunif(x, gamma, r),
}
# StochM3 zeroes, with probability 1/2, the floor(n/2) weights of smallest |w| (ties broken
# by argsort, exactly as in projections.stochm3); on our grid those are |w| < alpha/2 roughly.
small_half = np.zeros(w.size, dtype=bool)
small_half[np.argsort(np.abs(w))[: w.size // 2]] = True
expectation = {
    "stoch": w,
    f"stochm:gamma={gamma}": w * np.abs(w) / alpha * Eu,
    f"stochm3:gamma={gamma}": w * np.abs(w) / alpha * Eu * np.where(small_half, 0.5, 1.0),
    f"stochm_literal:gamma={gamma}": w ** 2 / alpha * Eu,
    f"addnorm:sigma={sigma}": w,
    f"multunif:gamma={gamma}": w * Eu,
}
n_show = 5                                            # draws shown in the figure
fig, axes = plt.subplots(2, 3, figsize=(14, 8))
for ax, (spec, fn) in zip(axes.ravel(), stochastic.items()):
    for d in range(n_show):
        ax.plot(w, fn(w, rng), ".", ms=2, alpha=0.5, color="tab:blue",
                label="draws of Proj(w)" if d == 0 else None)
    ax.plot(w, expectation[spec], "r-", lw=2, label="E[Proj(w)] (formula)")
    ax.plot(w, w, "k:", lw=1, label="w")
    ax.set_title(spec)
    ax.set_xlabel("full-precision weight w")
    ax.set_ylabel("projected weight")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
fig.suptitle(f"Stochastic projections, {n_show} draws each (α = {alpha})")
fig.tight_layout()
_quick.show(fig, "03_transfer_stochastic.png")

# %% [markdown]
# ### Checking the allowed states
#
# For every row we project the grid (many times for the random ones) and check each value
# against Table 1's states: the exact set for Sign, Round and Stoch, the interval for the
# others. `np.unique` prints the discrete sets.

# %%
n_state_draws = 20 if QUICK else 200
big = np.tile(w, (n_state_draws, 1))    # many copies of the grid in one tensor: same alpha
eps = 1e-6                              # float32 rounding of alpha / gamma

def check_states(name, values, allowed_set=None, interval=None, zero_allowed=False):
    """Print the states seen and check them against Table 1."""
    vals = np.asarray(values)
    if allowed_set is not None:
        seen = np.unique(vals)
        ok = np.all(np.isin(seen, np.asarray(allowed_set, dtype=vals.dtype)))
        print(f"{name:22s} states seen {seen}   allowed {[round(float(v), 4) for v in allowed_set]}   ok: {ok}")
    else:
        lo, hi = interval
        ok = bool(np.all((vals >= lo - eps) & (vals <= hi + eps)))
        zeros = int(np.sum(vals == 0))
        print(f"{name:22s} range [{vals.min():+.4f}, {vals.max():+.4f}]   allowed "
              f"[{lo:+.4f}, {hi:+.4f}]   exact zeros: {zeros:6d}   ok: {ok}")
        if zero_allowed:
            ok = ok and zeros > 0
    assert ok, f"{name} left its allowed states"

a32 = np.float32(alpha)
check_states("sign", projections.sign(w), allowed_set=[-a32, a32])
check_states("round", projections.round(w), allowed_set=[-a32, 0, a32])
check_states("stoch", projections.stoch(big, rng), allowed_set=[-a32, a32])
for b in [0.5, 2.0]:
    check_states(f"power beta={b}", projections.power(w, b), interval=(-alpha, alpha))
check_states("stochm gamma=0.5", projections.stochm(big, gamma, rng), interval=(-alpha / gamma, alpha / gamma))
check_states("stochm3 gamma=0.5", projections.stochm3(big, gamma, rng),
             interval=(-alpha / gamma, alpha / gamma), zero_allowed=True)
check_states("multunif gamma=0.5", projections.multunif(big, gamma, rng), interval=(-alpha / gamma, alpha / gamma))
noisy = projections.addnorm(big, sigma, rng)
print(f"{'addnorm sigma=0.3':22s} range [{noisy.min():+.4f}, {noisy.max():+.4f}]   allowed R; "
      f"noise std {np.std(noisy - big):.4f} vs alpha*sigma = {alpha * sigma:.4f}")
# StochM3: about a quarter of the weights end at 0 (half of the small half).
print(f"stochm3: fraction of exact zeros {np.mean(projections.stochm3(big, gamma, rng) == 0):.3f} (expected 0.25)")

# %% [markdown]
# ## 4. Expectations over many draws
#
# Stoch is *unbiased*: averaged over draws it gives back w. StochM is biased on purpose: its
# mean is w·|w|/α·E[u], which is smaller than w in magnitude for small weights (|w| < α/E[u])
# and larger for the big ones. We measure the means at a few weights from many draws and
# compare them with the formulas; the "z" column is (measured − formula) / standard error,
# which should be a few units at most.

# %%
n_draws = 20000 if QUICK else 400000
w_probe = np.array([-0.8, -0.6, -0.2, 0.0, 0.1, 0.4, 0.8], dtype=np.float64)   # alpha = 0.8
W = np.tile(w_probe, (n_draws, 1))        # one big tensor; its alpha is still 0.8
print(f"{n_draws} draws per weight")
print("    w   | E Stoch  formula      z  | E StochM  formula      z  | E literal  formula")
P_stoch = projections.stoch(W, rng)
P_stochm = projections.stochm(W, gamma, rng)
P_lit = projections.stochm_literal(W, gamma, rng)
for j, wj in enumerate(w_probe):
    f_stoch = wj
    f_stochm = wj * abs(wj) / alpha * Eu
    f_lit = wj ** 2 / alpha * Eu
    m1, s1 = P_stoch[:, j].mean(), P_stoch[:, j].std() / np.sqrt(n_draws)
    m2, s2 = P_stochm[:, j].mean(), P_stochm[:, j].std() / np.sqrt(n_draws)
    z1 = (m1 - f_stoch) / max(s1, 1e-12)
    z2 = (m2 - f_stochm) / max(s2, 1e-12)
    print(f" {wj:+.2f}  | {m1:+.4f}  {f_stoch:+.4f}  {z1:+5.1f}  | {m2:+.4f}  {f_stochm:+.4f}  {z2:+5.1f}"
          f"  | {P_lit[:, j].mean():+.4f}   {f_lit:+.4f}")
    # At w = ±alpha the draws are deterministic in sign (p = 0 or 1): Stoch has zero variance there.
    assert abs(z1) < 6 and abs(z2) < 6

# %% [markdown]
# ## 5. StochM as printed, and why it fails
#
# Table 1 prints StochM as "+w·U with probability p, −w·U with probability 1 − p". Take a
# strongly negative weight, w = −0.9α: p = 0.05, so 95 % of the time the branch −w·U is
# chosen — and −w·U is **positive**. The sign of w is used twice: once to choose the branch,
# once as the factor w. Its mean w²/α·E[u] is ≥ 0 for every w (the last column above): every
# inhibitory connection becomes, on average, excitatory. The magnitude reading used by
# `projections.stochm` takes |w| instead and keeps the sign of w in expectation.

# %%
w_neg = np.array([-0.9 * alpha, alpha], dtype=np.float64)      # the second weight sets alpha
draws = np.tile(w_neg, (n_draws, 1))
frac_pos_lit = np.mean(projections.stochm_literal(draws, gamma, rng)[:, 0] > 0)
frac_pos_mag = np.mean(projections.stochm(draws, gamma, rng)[:, 0] > 0)
print(f"w = {w_neg[0]:+.2f} (alpha = {alpha}), p = {(w_neg[0] / alpha + 1) / 2:.3f}")
print(f"  literal StochM  : {100 * frac_pos_lit:5.1f} % of the draws are positive  (sign flipped)")
print(f"  magnitude StochM: {100 * frac_pos_mag:5.1f} % of the draws are positive  (sign kept)")
# We will train a network with each reading at the end of section 7.

# %% [markdown]
# ## 5b. Three readings of StochM, side by side
#
# Table 1's StochM can be read three ways. All three draw the sign like Stoch (+ with
# p = (w/α + 1)/2) and a factor u ~ U(γ, 1/γ), E[u] = (γ + 1/γ)/2; they differ in *what*
# u multiplies:
#
# | spec | P = ± … · u | states | E[P] | E[P] at γ = 1 |
# | --- | --- | --- | --- | --- |
# | `stochm` (magnitude) | \|w\| | [−α/γ, α/γ] | w·\|w\|/α·E[u] | w·\|w\|/α ≠ w |
# | `stochm_literal` (as printed) | w | [−α/γ, α/γ] | w²/α·E[u] ≥ 0 | w²/α ≠ w |
# | `stochm_alpha` (α reading) | α | [−α/γ, −γα] ∪ [γα, α/γ] | w·E[u] | w (it *is* Stoch) |
#
# Which one did the authors mean? Two sentences of the paper pull different ways:
#
# * Section 4.1.4: StochM "projects each weight to the interval [γw, w/γ] with probability
#   p, and [−γw, −w/γ] with 1 − p" — a magnitude that scales with w: the **magnitude**
#   reading (the literal one too, but it cannot train: section 5).
# * Right after: "using γ = 0.5 during training, the expected value of the projected weight
#   is no longer" w. That singles out γ = 0.5, so at some other γ (γ = 1) the expectation
#   must be w. Only the **α reading** has that property: E[P] = w·(γ + 1/γ)/2, exactly w at
#   γ = 1 and 1.25·w at γ = 0.5. The other two are never w.
#
# The `tr-stochm-c` preset uses **`stochm`, the magnitude reading**: it follows the
# section's own definition of the sampled interval, and the project's committed runs were
# made with it. `--projection stochm_alpha:gamma=0.5` trains with the α reading instead.
# Below: draws and expectations of the three, then the measured means at γ = 0.5 and γ = 1.

# %%
readings = {"stochm": projections.stochm, "stochm_literal": projections.stochm_literal,
            "stochm_alpha": projections.stochm_alpha}
formulas = {"stochm": lambda x, g: x * np.abs(x) / alpha * (g + 1 / g) / 2,
            "stochm_literal": lambda x, g: x ** 2 / alpha * (g + 1 / g) / 2,
            "stochm_alpha": lambda x, g: x * (g + 1 / g) / 2}
fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), sharey=True)
for ax, (name, fn) in zip(axes, readings.items()):
    for d in range(n_show):
        ax.plot(w, fn(w, gamma, rng), ".", ms=2, alpha=0.5, color="tab:blue",
                label="draws" if d == 0 else None)
    ax.plot(w, formulas[name](w, gamma), "r-", lw=2, label=f"E[P], γ = {gamma}")
    ax.plot(w, formulas[name](w, 1.0), "g--", lw=1.5, label="E[P], γ = 1")
    ax.plot(w, w, "k:", lw=1, label="w")
    ax.set_title(f"{name}:gamma={gamma}")
    ax.set_xlabel("full-precision weight w")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
axes[0].set_ylabel("projected weight")
fig.suptitle("The three readings of StochM: only the α reading has E[P] = w at γ = 1")
fig.tight_layout()
_quick.show(fig, "03_stochm_readings.png")

check_states("stochm_alpha gamma=0.5", projections.stochm_alpha(big, gamma, rng),
             interval=(-alpha / gamma, alpha / gamma))
magnitudes = np.abs(projections.stochm_alpha(big, gamma, rng))
print(f"stochm_alpha |P|/alpha in [{magnitudes.min() / alpha:.3f}, {magnitudes.max() / alpha:.3f}]"
      f"  (states: [gamma, 1/gamma] = [{gamma}, {1 / gamma}])")
assert magnitudes.min() >= gamma * alpha * (1 - 1e-6)

print(f"\nmeasured E[P] over {n_draws} draws (formula in brackets), alpha = {alpha}")
print(f"{'w':>6} " + " ".join(f"{name.replace('stochm', 'sm') + f' g={g:g}':>17}"
                                  for name in readings for g in (gamma, 1.0)))
probe = np.array([-0.6, -0.2, 0.1, 0.4, alpha], dtype=np.float64)
draws_probe = np.tile(probe, (n_draws, 1))
means = {(name, g): fn(draws_probe, g, rng).mean(axis=0) for name, fn in readings.items()
         for g in (gamma, 1.0)}
for j, wj in enumerate(probe):
    cells = [f"{means[(name, g)][j]:+.3f} [{formulas[name](wj, g):+.3f}]"
             for name in readings for g in (gamma, 1.0)]
    print(f"{wj:+6.2f} " + " ".join(f"{c:>17}" for c in cells))
    for name in readings:
        for g in (gamma, 1.0):
            assert abs(means[(name, g)][j] - formulas[name](wj, g)) < 0.02 * alpha / g

# %% [markdown]
# ## 6. The spec parser
#
# Run configurations, Algorithm 1 and the robustness tests name a projection by a *spec*
# string: `name` or `name:param=value`, where a value may be `U(low,high)` to draw it afresh
# every minibatch. `projections.parse` turns a spec into a `Projection` object.

# %%
proj = projections.parse("power:beta=U(0,2)")
print("parse('power:beta=U(0,2)') ->", repr(proj))
print("  spec:", proj.spec, "  random parameters:", proj.random_params, "  stochastic:", proj.stochastic)
# Algorithm 1 draws beta ONCE per minibatch and uses it for every layer:
layer_weights = [rng.standard_normal((4, 3)).astype(np.float32) for _ in range(2)]
for step in range(4):
    step_proj = proj.sample(rng)                       # beta drawn for this minibatch
    P = [step_proj(W_k, rng) for W_k in layer_weights]  # ... used by every layer
    print(f"  minibatch {step}: beta = {step_proj.params['beta']:.3f}   P[0][0] = {P[0][0]}")

# A projection with a random parameter cannot be applied before it is sampled:
try:
    proj(layer_weights[0], rng)
except ValueError as err:
    print("\nproj(W) without sample() ->", err)

# The same spec always gives the same object; a fixed spec samples to itself.
assert projections.parse(proj.spec) == proj
fixed = projections.parse("StochM : gamma = 0.5")      # case and spaces do not matter
print("\nparse('StochM : gamma = 0.5') ->", repr(fixed), "  sample() is itself:", fixed.sample(rng) is fixed)

# %% [markdown]
# Bad specs stop with a message that says what was wrong and lists what is valid.

# %%
for bad in ["powr:beta=1", "power", "stochm:gamma=2", "power:beta=-1", "addnorm:sigma=abc"]:
    try:
        projections.parse(bad)
    except ValueError as err:
        first, *rest = str(err).split("\n")
        print(f"parse({bad!r}) -> ValueError: {first}")
print("\nThe full message (for the first bad spec):")
try:
    projections.parse("powr:beta=1")
except ValueError as err:
    print(err)

# %% [markdown]
# ## 7. What the projections do to a trained network
#
# We train `models.mlp_tfc(bn=True)` (784–64–64–64–10, batch norm after each hidden layer,
# no biases) on MNIST with Algorithm 1 (`algorithm1.train_step`), the square hinge loss and
# Adam, twice:
#
# * **Tr-None-NC**: projection None, no clipping — standard backprop;
# * **Tr-None-C**: projection None, clip bound c_k = 0.5·std(Glorot init) after each step.
#
# Then we take one layer's trained weights and project them with every row of Table 1,
# and we score the test set with each projection applied to all layers at test time.

# %%
data_dir = os.environ.get("TINYPROJ_DATA")
n_train = 3000 if QUICK else 20000
n_test = 1000 if QUICK else 10000
epochs = 1 if QUICK else 3
try:
    # Quick mode never touches the network; the full lesson may download MNIST (about 11 MB).
    ds = data.load_dataset("mnist", data_dir=data_dir, train_subset=n_train, download=not QUICK)
except Exception as err:  # no MNIST here (and no internet): a made-up dataset of the same shape
    print(f"MNIST is not available ({type(err).__name__}: {str(err).splitlines()[0]})")
    print("-> using data.load_dataset('synthetic') instead; set TINYPROJ_DATA to use MNIST.")
    ds = data.load_dataset("synthetic", n_train=n_train, n_test=n_test, shape=(1, 28, 28),
                           num_classes=10, seed=0, noise=3.0)
x_train, y_train = ds.x_train, ds.y_train
x_test, y_test = ds.x_test[:n_test], ds.y_test[:n_test]
print(ds, f"-> using {len(x_train)} training and {len(x_test)} test images")


def train(spec, f, seed=0, n=None, n_epochs=epochs):
    """Train mlp_tfc(bn=True) with Algorithm 1: projection `spec`, clip factor f ('NC' = none)."""
    run_rng = backend.make_rng(seed)
    model = models.mlp_tfc(bn=True, rng=run_rng)
    optimizer = optim.Adam(model.parameters(), lr=0.003)
    bounds = clipping.clip_bounds(model, f)                 # {} for 'NC'
    xs, ys = x_train[:n], y_train[:n]
    model.train()
    losses = []
    for _ in range(n_epochs):
        for xb, yb in data.iterate_minibatches(xs, ys, 100, rng=run_rng):
            losses.append(algorithm1.train_step(model, xb, yb, F.square_hinge_loss, optimizer,
                                                spec, bounds, run_rng))
    return model, bounds, float(np.mean(losses[-10:]))


t = time.time()
nets = {}
for label, f in [("Tr-None-NC", "NC"), ("Tr-None-C", 0.5)]:
    nets[label] = train("none", f)
    print(f"{label}: trained {epochs} epoch(s), final loss {nets[label][2]:.4f}  ({time.time() - t:.1f} s)")

# %% [markdown]
# ### One layer's weights, before and after each projection
#
# We look at `fc2` (64×64 weights, a hidden layer). For each projection we print α, the mean
# |W − Proj(W)| (the quantity of the paper's Figure 1C) and the relative error
# ‖W − P‖/‖W‖. In the clipped network many weights sit exactly at ±c_k, so α = c_k and the
# distribution is already close to two-valued; without clipping, α is set by a few outliers
# far out in the tails, and Round sends most weights to 0.

# %%
layer = "fc2.weight"
test_specs = ["none", "sign", "round", "power:beta=0.5", "power:beta=2", "stoch",
              "stochm:gamma=0.5", "stochm3:gamma=0.5", "stochm_literal:gamma=0.5",
              "addnorm:sigma=0.3", "multunif:gamma=0.5"]
layer_P = {}
for label, (model, bounds, _) in nets.items():
    W_layer = dict(model.named_parameters())[layer].data
    a = float(np.abs(W_layer).max())
    c_k = bounds.get(layer, np.inf)
    print(f"\n{label}, {layer} {W_layer.shape}: alpha = {a:.4f}, c_k = {c_k:.4f}, "
          f"std = {W_layer.std():.4f}, weights at +-c_k: {np.mean(np.abs(W_layer) >= c_k * (1 - 1e-6)):.1%}, "
          f"|w| < alpha/2 (Round -> 0): {np.mean(np.abs(W_layer) < a / 2):.1%}")
    print(f"  {'projection':26s} mean|W-P|   |W-P|/|W|")
    for spec in test_specs:
        P = projections.parse(spec).sample(rng)(W_layer, rng)
        layer_P[(label, spec)] = P
        rel = np.linalg.norm(W_layer - P) / np.linalg.norm(W_layer)
        print(f"  {spec:26s} {np.mean(np.abs(W_layer - P)):.5f}    {rel:6.3f}")

# %%
# Figure: histograms of the layer's weights before (gray) and after (colour) each projection.
# (Quick mode draws the clipped network only: drawing 11 log-scale panels takes a moment.)
for label in (["Tr-None-C"] if QUICK else list(nets)):
    # histograms are NumPy work: bring the weights to the host (a no-op on the CPU; on a GPU
    # they live in device memory)
    W_layer = backend.to_numpy(dict(nets[label][0].named_parameters())[layer].data)
    fig, axes = plt.subplots(3, 4, figsize=(15, 9))
    for ax, spec in zip(axes.ravel(), test_specs):
        P = backend.to_numpy(layer_P[(label, spec)])
        lo, hi = min(W_layer.min(), P.min()), max(W_layer.max(), P.max())
        bins = np.linspace(lo, hi, 61)
        # np.histogram + stairs draws the same picture as ax.hist, much faster.
        counts_W, _ = np.histogram(W_layer, bins=bins)
        counts_P, _ = np.histogram(P, bins=bins)
        ax.stairs(counts_W + 0.5, bins, fill=True, color="tab:gray", alpha=0.6, baseline=0.5,
                  label="W (trained)")
        ax.stairs(counts_P + 0.5, bins, lw=1.5, color="tab:red", baseline=0.5, label="Proj(W)")
        ax.set_yscale("log")                     # (+0.5 so that empty bins sit on the floor)
        ax.yaxis.set_minor_locator(NullLocator())   # fewer ticks: faster
        ax.set_title(spec, fontsize=9)
        ax.set_xlabel("weight value")
        ax.set_ylabel("count")
        ax.legend(fontsize=7)
    axes.ravel()[-1].axis("off")
    fig.suptitle(f"{label}: {layer} before and after each projection (log counts)")
    fig.tight_layout()
    _quick.show(fig, f"03_histograms_{label.replace('-', '_')}.png", dpi=100)

# %% [markdown]
# ### Test accuracy with each projection applied to all layers
#
# `algorithm1.project_weights(model, spec, rng)` swaps P_k = Proj(W_k) into every weight layer
# for the duration of a `with` block and puts W back afterwards (biases and batch-norm
# parameters are untouched). The paper's test protocol adds one step: the batch-norm running
# statistics were measured with W, but the activations change when the weights do, so they
# are **re-estimated on training batches with the projected weights** before the test set is
# scored:
#
#     nn.start_bn_reestimation(model)   # reset; then a plain average over the next batches
#     model.train(); forward a few training batches under no_grad()
#     nn.stop_bn_reestimation(model); model.eval(); score the test set
#
# We save and restore the running statistics around each test so the next one starts from
# the trained network. Stochastic projections are scored with a single draw.

# %%
bn_batches = 5 if QUICK else 20


def accuracy(model, spec, reestimate, rng):
    """Test accuracy with Proj(W_k) in every layer; BN re-estimated on training data if asked."""
    saved = [(buf, buf.copy()) for _, buf in model.named_buffers()]   # BN running statistics
    with algorithm1.project_weights(model, spec, rng):
        if reestimate:
            nn.start_bn_reestimation(model)
            model.train()
            order = backend.permutation(rng, len(x_train))
            with tp.no_grad():
                for b in range(bn_batches):
                    model(x_train[order[b * 100:(b + 1) * 100]])   # statistics only, no update
            nn.stop_bn_reestimation(model)
        model.eval()
        with tp.no_grad():
            pred = model(x_test).data.argmax(axis=1)
    for buf, value in saved:                                        # back to the trained stats
        buf[...] = value
    return float(np.mean(backend.to_numpy(pred) == y_test))


t = time.time()
print(f"test accuracy on {len(x_test)} images (BN re-estimated on {bn_batches} batches of 100)")
print(f"{'test projection':26s} | {'Tr-None-NC':>10s} {'+ BN re-est':>11s} | {'Tr-None-C':>10s} {'+ BN re-est':>11s}")
table = {}
for spec in test_specs:
    row = []
    for label in nets:
        model = nets[label][0]
        row += [accuracy(model, spec, False, rng), accuracy(model, spec, True, rng)]
    table[spec] = row
    print(f"{spec:26s} | {row[0]:10.3f} {row[1]:11.3f} | {row[2]:10.3f} {row[3]:11.3f}")
print(f"({time.time() - t:.1f} s)")

# %% [markdown]
# What to read in this table (compare Table 2 of the paper):
#
# * With **clipping** (Tr-None-C), Sign and Round cost little accuracy: many weights sit at
#   ±c_k = ±α already. Without clipping, α is set by outliers, Round zeroes most of the
#   layer and Sign blows the small weights up to ±α — both hurt much more.
# * **Batch-norm re-estimation** recovers a good part of what a distortion costs, because
#   the projected weights change the scale of every layer's activations.
# * The training-only projections (Stoch, StochM, StochM3) are very noisy at test time for a
#   network that never saw them during training.
# * The literal StochM destroys the network: it turns negative weights positive.
#
# Finally, the promised test of the two StochM readings *in training*: a short run of
# Algorithm 1 with each (clip f = 0.5). The literal one cannot learn.

# %%
t = time.time()
n_short = 1000 if QUICK else 5000
for spec in ["stochm:gamma=0.5", "stochm_literal:gamma=0.5"]:
    model, _, loss = train(spec, 0.5, n=n_short, n_epochs=1)
    acc_none = accuracy(model, "none", True, rng)
    acc_same = accuracy(model, spec, True, rng)
    print(f"trained with {spec:26s}: final loss {loss:8.4f}   test accuracy Te-None {acc_none:.3f}, "
          f"Te-(same projection) {acc_same:.3f}")
print(f"({time.time() - t:.1f} s; chance level is 0.100)")

# %% [markdown]
# ## What to remember
#
# * Every projection uses the layer's own α = max|w|, so it is defined on a whole tensor;
#   Power(·, 0) = Sign and Power(·, 1) = None exactly; sign(0) = +1 and Round's ties go away
#   from zero.
# * Stoch is unbiased (E = w); StochM is not (E = w|w|/α·E[u]); StochM as printed flips the
#   sign of negative weights on average and cannot train — the magnitude reading is used.
# * A spec like `power:beta=U(0,2)` is parsed once; `.sample(rng)` draws β per minibatch.
# * Clipping during training makes a network far more tolerant of Sign and Round at test
#   time, and batch-norm re-estimation is part of testing any distortion.

# %%
print(f"lesson 3 done in {time.time() - T0:.1f} s")

# %% [markdown]
# ## Exercises you can check
#
# Replace each `...` by your answer and run the cell: the checker prints **correct**, or what is
# off, or *not answered yet*. The checkers live in `lessons/exercises.py`; they compute the right
# answer with tinyproj itself (there is no solution file), so try first, then read them.
#
# 1. Write `my_round(w)`: Round(w) = α·round(w/α) with α = max|w| and ties (w/α = ±0.5) half
#    away from zero, in NumPy (section 2). The checker compares it with `projections.round`.
# 2. A tensor whose largest |w| is 1 (so α = 1) holds a weight w = 0.3. What is the expectation
#    E[Stoch(w)] of its stochastic projection (section 4)? The checker measures it with 200,000
#    draws.

# %%
from exercises import check_03_1, check_03_2  # noqa: E402  (lessons/exercises.py)


def my_round(w):
    return ...                  # α · (w/α rounded half away from zero)


check_03_1(my_round)

# %%
answer_2 = ...                  # a number
check_03_2(answer_2)
