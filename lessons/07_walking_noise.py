# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 7 — Walking Noise: noise on the activations, one site at a time
#
# Lesson 6 disturbed the *weights* of a trained network (Merolla et al.). Walking Noise
# (Borras, Klein, Fröning) disturbs its *activations* instead — what happens on analog or
# optical hardware, where every multiply-accumulate is a little noisy — and asks **where**
# a network is fragile:
#
# | noise | what happens to every value x, every sample, every pass |
# | --- | --- |
# | additive | y = x + N(0, σ²) |
# | multiplicative | y = x · N(1, σ²) |
# | combined | both: σ_mul = A·(1 − r) first, then σ_add = A·r |
#
# A **noise site** sits after every operation: the input, each linear/conv layer, each
# batch norm, each ReLU, each pooling, the logits. **Walking** the noise means putting it
# on one site at a time and sweeping σ over a log grid; the **midpoint noise level μ** of a
# site sums its curve up in one number: the σ at which accuracy has fallen halfway from its
# best value to chance. Larger μ = more robust site.
#
# In this lesson you will
#
# 1. train a clean MLP "TFC" (3 hidden layers of 64) on MNIST;
# 2. list its noise sites and see what noise at one site does to the activations;
# 3. walk additive noise site by site, compute μ per site and see why the sites differ;
# 4. put noise on all sites at once (global noise);
# 5. compare the two batch-norm protocols (keep the trained statistics / re-estimate them);
# 6. average N noisy passes and watch μ grow by about √N;
# 7. train *with* noise and see μ and the activations grow; try the weight clamp;
#    then the authors' protocol: one network per σ, trained and tested at that σ;
# 8. look at multiplicative noise and the self-binarization measures;
# 9. put Merolla's and Walking Noise's training regimes in one cross-robustness table;
# 10. run the whole walk as a study in a folder (`wn.clean_study`, what `tinyproj walk` runs),
#     then run it again: it resumes and measures nothing.
#
# Run it with `python lessons/07_walking_noise.py` (`TINYPROJ_QUICK=1` for the quick mode,
# about half a minute). It uses real MNIST when it finds it (`$TINYPROJ_DATA/mnist`, or
# `./datasets/mnist`); otherwise made-up images (`TINYPROJ_LESSON_DATA=synthetic` forces
# that). The full mode trains on all 60,000 images (a few minutes on a laptop CPU).
# Keep `tinyproj/walking_noise/` open beside it.

# %%
import os
import shutil
import sys
import time

import numpy as np

try:
    import _quick  # noqa: F401  (makes `import tinyproj` find this checkout; see lessons/_quick.py)
except ModuleNotFoundError:  # a notebook whose working folder is not lessons/
    sys.path.insert(0, os.path.join(os.environ.get("TINYPROJ_ROOT", os.getcwd()), "lessons"))
    import _quick  # noqa: F401
from tinyproj import backend, data
from tinyproj import walking_noise as wn
from tinyproj.runs.evaluation import error_rate
from tinyproj.tensor import no_grad
from tinyproj import experiments as cross
from tinyproj import reporting as wn_plots

QUICK = _quick.quick()
OUT = _quick.out_dir()
RUNS = os.path.join(OUT, "07_runs")
np.set_printoptions(precision=4, suppress=True, linewidth=100)
START = time.perf_counter()
print(f"quick mode: {QUICK}   backend: {backend.name()}   outputs go to {OUT}")

# %% [markdown]
# ## 0. Data
#
# `cross.load_data` gives the training and test images as *sources* (`len()` and
# `.batch(indices) -> (x, y)`), the same objects every part of tinyproj scores with. MNIST
# pixels are scaled to [0, 1]. Quick mode uses the first 3000 training and 1000 test
# images.

# %%
DATA_DIR = os.environ.get("TINYPROJ_DATA")
forced = os.environ.get("TINYPROJ_LESSON_DATA")
DATASET = "synthetic"
if forced != "synthetic":
    try:
        data.load_dataset("mnist", data_dir=DATA_DIR, download=False)
        DATASET = "mnist"
    except data.DatasetNotFoundError as err:
        if forced == "mnist":
            raise
        print(f"MNIST not found ({str(err).splitlines()[0][:100]}...)")
SUBSETS = dict(train_subset=3000, test_subset=1000) if QUICK else {}
if DATASET == "synthetic":
    SUBSETS = {}                 # the made-up set is small already: 1000 + 200 images
D = cross.load_data(DATASET, data_dir=DATA_DIR, **SUBSETS)
print(f"data: {DATASET}, {len(D.train)} training and {len(D.test)} test images of shape "
      f"{D.train.input_shape}, chance accuracy {D.chance_accuracy:.0%}")
if DATASET == "synthetic":
    print("note: the text discusses MNIST's numbers; made-up images (easy, 3×32×32) give "
          "other ones")

EPOCHS = 3 if QUICK else 6               # the clean networks
NOISY_EPOCHS = 3 if QUICK else 5         # each noisy training and the cross table
SIGMAS = [float(f"{10 ** (k / 2):.4g}") for k in range(-4, 7)]   # 1e-2 … 1e3, half decades
print("sigma grid:", SIGMAS)


def accuracy(model, source=D.test):
    return 1.0 - error_rate(model, source)


# %% [markdown]
# ## 1. A clean network
#
# The MLP "TFC" of Walking Noise (`models.mlp_tfc`): flatten, three times
# (Linear 64, ReLU), Linear 10. Walking Noise's recipe: Adam, learning rate 1e-3 with cosine
# annealing, cross-entropy, batch 128. `cross.train_regime` runs it through
# `tinyproj.runs.training.train` (Algorithm 1 with projection None and no clipping is plain
# backprop), which leaves an ordinary run folder under `lessons/out/07_runs/clean/`.

# %%
t = time.perf_counter()
clean = cross.train_regime(cross.Regime("clean", "algorithm1", "none", "NC"), D,
                           epochs=EPOCHS, bn=False, out_dir=RUNS)
CLEAN_ACC = accuracy(clean)
print(f"clean network: {EPOCHS} epochs in {time.perf_counter() - t:.1f} s, test accuracy "
      f"{100 * CLEAN_ACC:.2f} %")

# %% [markdown]
# ## 2. The noise sites
#
# `wn.NoisyModel(model, rng)` wraps the trained network *without changing it* and gives it
# a site after every operation (none after `flatten`, which only reshapes). Index 0 is the
# input; the last site is the logits. `set_noise(spec, sites)` switches noise on;
# `clear_noise()` switches it off. A `NoiseSpec` says what noise (`kind`, `sigma`) and when:
# in training passes (`train`), evaluation passes (`eval`), averaged over `repeats` passes.

# %%
rng = backend.make_rng(0)
noisy = wn.NoisyModel(clean, rng)
print(f"{len(noisy.sites)} sites:")
for s in noisy.sites:
    print(f"  {s.index}  {s.name:7s} {s.kind}{'   (the logits)' if s.logits else ''}")

# %% [markdown]
# What does noise at one site do? `site_outputs(x)` returns the value flowing out of every
# site for a batch. We put additive noise σ = 0.5 at `relu2` and compare: the values there
# move by N(0, 0.25) — the ReLU's exact zeros become small positive *and negative* numbers —
# and everything downstream changes with them, while the sites upstream are untouched.

# %%
x, y = D.test.batch(range(min(256, len(D.test))))
with no_grad():
    clean_out = [o.data for o in noisy.site_outputs(x)]
    noisy.set_noise(wn.NoiseSpec("additive", 0.5), sites=["relu2"])
    noisy.eval()
    noisy_out = [o.data for o in noisy.site_outputs(x)]
    print("with noise at relu2:")
    for s, a, b in zip(noisy.sites, clean_out, noisy_out):
        d = b - a
        print(f"  {s.name:7s} rms of the signal {np.sqrt(np.mean(a ** 2)):6.3f}   "
              f"rms of the change {np.sqrt(np.mean(d ** 2)):6.3f}")
    k = noisy.site("relu2").index
    print(f"  std of the change at relu2 itself: {np.std(noisy_out[k] - clean_out[k]):.3f} "
          "(σ = 0.5)")
    wrong_clean = float(np.mean(clean_out[-1].argmax(1) != y))
    wrong_noisy = float(np.mean(noisy_out[-1].argmax(1) != y))
    print(f"  errors on these {len(y)} images: {100 * wrong_clean:.1f} % clean, "
          f"{100 * wrong_noisy:.1f} % with the noise")
fig = wn_plots.activation_histogram(clean_out[k], noisy_out[k],
                                    site="relu2", noise="additive noise σ = 0.5")
_quick.show(fig, "07_noise_at_relu2.png")
noisy.set_noise(wn.NoiseSpec("multiplicative", 0.5), sites=["relu2"])
with no_grad():
    mult_out = noisy.site_outputs(x)[k].data
noisy.clear_noise()
zeros = clean_out[k] == 0
print(f"multiplicative σ = 0.5 at relu2: zeros stay zero ({int(np.sum(mult_out[zeros] != 0))} "
      f"of {int(np.sum(zeros))} changed); large values move most")

# %% [markdown]
# ## 3. Walking the noise, site by site
#
# `wn.walk(model, train, test, "additive", sigmas, sites="each")` puts noise on one site at
# a time, for every σ of the grid, and scores the test set with noise drawn fresh for every
# value of every image. One row per (site, σ). Every grid point draws from its own
# generator, seeded from (seed, noise, site, σ), so a walk gives the same numbers whether it
# runs whole, resumed (`out_file=`) or split into shards (`shard="i/n"`).

# %%
t = time.perf_counter()
rows = wn.walk(clean, D.train, D.test, "additive", SIGMAS, sites="each", progress=False)
print(f"walked {len(rows)} points in {time.perf_counter() - t:.1f} s")
print("accuracy (%) per site (rows) and σ (columns):")
print("         " + "".join(f"{s:>8g}" for s in SIGMAS))
for site in noisy.sites:
    acc = [r["accuracy"] for r in rows if r["site"] == site.index]
    print(f"  {site.name:7s}" + "".join(f"{100 * a:8.1f}" for a in acc))
_quick.show(wn_plots.accuracy_vs_sigma(rows), "07_walk_additive.png")

# %% [markdown]
# ## 4. The midpoint noise level μ
#
# For one site with maximum accuracy a_max over the grid and chance accuracy a_c
# (10 % for ten classes):
#
#     threshold = a_c + (a_max − a_c) / 2            halfway from the best down to chance
#
# μ is the first σ (walking up from the best point) where the accuracy reaches the
# threshold, interpolated linearly in **log σ** between the two grid points around it.
# Why this number? It does not depend on how good the network was to begin with (the
# threshold moves with a_max), it lives on the scale the noise lives on (log σ), and one
# number per site makes sites, networks and training methods comparable. If a site never
# falls to the threshold on the grid, μ lies *beyond the grid* (widen the grid).
#
# `wn.midpoints_table(rows)` gives μ per site (`midpoint_sigma`), `wn.write_midpoints_csv`
# saves it. Next to μ we print the rms of the clean signal at each site: additive noise of
# a given σ hurts less where the signal is larger, so μ follows the signal's scale.

# %%
mids = wn.midpoints_table(rows, chance=D.chance_accuracy)
wn.write_midpoints_csv(os.path.join(OUT, "07_midpoints_additive.csv"), mids)
signal = {s.name: float(np.sqrt(np.mean(a ** 2))) for s, a in zip(noisy.sites, clean_out)}
print("site     mu        signal rms   mu / rms")
for m in mids:
    mu = m["midpoint_sigma"]
    text = f"{mu:8.3g}" if mu is not None else ("  beyond" if m["beyond_grid"] else "     n/a")
    ratio = f"{mu / signal[m['site_name']]:8.2f}" if mu is not None else ""
    print(f"  {m['site_name']:7s}{text}   {signal[m['site_name']]:8.3f}   {ratio}")
fig = wn_plots.midpoints_plot({"additive, clean network": mids}, grid_max=max(SIGMAS))
_quick.show(fig, "07_mu_per_site.png")

# %% [markdown]
# Reading the walk: the input is the most fragile site (pixels in [0, 1]: σ ≈ 0.5 already
# hides the digit), and μ grows towards the logits, roughly in step with the signal's rms:
# after the input, μ / rms stays between about 1 and 2 while μ itself grows (four-fold from
# fc1 to the logits in the full mode, 1.9 to 7.0; less in the quick mode's smaller run). A
# linear layer's site and the ReLU site right after it have similar μ: noise put on the
# linear layer's output still passes the ReLU, which drops its negative half, while noise
# put after the ReLU meets a signal that the ReLU has already made smaller.

# %% [markdown]
# ## 5. Global noise: every site at once
#
# `sites="all"` puts the noise on all sites at the same time (one row per σ, site −1). The
# noise of all sites adds up, so the global μ is below the smallest per-site μ.

# %%
glob = wn.walk(clean, D.train, D.test, "additive", SIGMAS, sites="all", progress=False)
mu_all = wn.midpoints_table(glob, chance=D.chance_accuracy)[0]["midpoint_sigma"]
mu_min = min(m["midpoint_sigma"] for m in mids if m["midpoint_sigma"] is not None)
print(f"global additive noise: mu = {mu_all:.3g}   (smallest per-site mu: {mu_min:.3g})")
ends = (0, noisy.sites[-1].index)              # the input and the logits
fig = wn_plots.accuracy_vs_sigma(
    {"additive noise: one site vs all sites": [r for r in rows if r["site"] in ends] + glob})
_quick.show(fig, "07_global_vs_site.png")

# %% [markdown]
# ## 6. Batch norm: two protocols
#
# With batch norm (`mlp_tfc(bn=True)`: 11 sites) the noise changes the statistics of the
# activations that batch norm normalizes with. Two protocols:
#
# * `bn_protocol="running"` (Walking Noise): keep the running mean and variance learned in
#   training. The noise then shifts what batch norm sees, and it normalizes with stale
#   numbers.
# * `bn_protocol="reestimate"` (Merolla et al.'s protocol for weight distortions, lesson 6):
#   recompute the statistics on training batches *with the noise on*, then score. Batch norm
#   divides by the noisy standard deviation: additive noise before a batch norm is
#   partly "normalized away", at the price of a smaller signal.

# %%
t = time.perf_counter()
clean_bn = cross.train_regime(cross.Regime("clean-bn", "algorithm1", "none", "NC"), D,
                              epochs=EPOCHS, bn=True, out_dir=RUNS)
print(f"clean network with batch norm: test accuracy {100 * accuracy(clean_bn):.2f} % "
      f"({time.perf_counter() - t:.1f} s)")
bn_tables = {}
for protocol in wn.BN_PROTOCOLS:
    t = time.perf_counter()
    r = wn.walk(clean_bn, D.train, D.test, "additive", SIGMAS, sites="each",
                bn_protocol=protocol, bn_batches=5 if QUICK else 20, progress=False)
    bn_tables[protocol] = wn.midpoints_table(r, chance=D.chance_accuracy)
    print(f"bn_protocol={protocol!r}: {len(r)} points in {time.perf_counter() - t:.1f} s")
print("site      mu (running)   mu (reestimate)")
for a, b in zip(*bn_tables.values()):
    f = [f"{m['midpoint_sigma']:.3g}" if m["midpoint_sigma"] is not None
         else ("beyond" if m["beyond_grid"] else "n/a") for m in (a, b)]
    print(f"  {a['site_name']:7s} {f[0]:>12s}   {f[1]:>12s}")
fig = wn_plots.midpoints_plot(bn_tables, grid_max=max(SIGMAS),
                              title="Batch norm under noise: keep the trained "
                                    "statistics (running) or re-estimate them")
_quick.show(fig, "07_bn_protocols.png")

# %% [markdown]
# Look at the sites just before a batch norm (`fc1`, `fc2`): with re-estimated statistics
# the batch norm divides the noisy signal by its noisy standard deviation, so later layers
# see the scale they were trained for, and μ there is somewhat higher. With the running
# statistics the variance after the batch norm grows with σ². Further on the two protocols
# agree within the noise of the measurement: after the last batch norm neither can help.
# Note also that the batch norm layers themselves (`bn1`, `bn2`, `bn3`) are robust sites:
# they multiply their input by γ/std, which is large when the pre-activations are small.

# %% [markdown]
# ## 7. Averaging N noisy passes: σ / √N
#
# If the same input is run N times, each time with fresh noise, and the N score vectors are
# averaged, independent noise partly cancels: its standard deviation at the output shrinks by
# √N. `walk(..., repeats=N)` does exactly this (`NoiseSpec.repeats`). For noise at the logits
# the averaging is exact (the logits are the last operation, so the mean of the N noisy
# logit vectors is the clean logits plus noise of std σ/√N): μ grows by √N, up to the
# error of interpolating on a grid of half decades (±15 % or so). At an inner site the
# ReLUs between the noise and the averaging make the gain smaller than √N: averaging
# after a nonlinearity is not the same as averaging the noise.

# %%
REPEATS = [1, 4, 16]
rep_rows = []
for n in REPEATS:
    rep_rows += wn.walk(clean, D.train, D.test, "additive", SIGMAS,
                        sites=[noisy.sites[-1].name, "relu2"], repeats=n, progress=False)
rep_mids = wn.midpoints_table(rep_rows, chance=D.chance_accuracy)
for site in (noisy.sites[-1].name, "relu2"):
    mus = {m["repeats"]: m["midpoint_sigma"] for m in rep_mids if m["site_name"] == site}
    print(f"{site:6s} " + "   ".join(
        f"N={n:<2d} mu={mus[n]:.3g} (x{mus[n] / mus[1]:.2f}, sqrt(N)={np.sqrt(n):.0f})"
        for n in REPEATS if mus.get(n) and mus.get(1)))
fig = wn_plots.accuracy_vs_sigma(
    {f"additive noise at {noisy.sites[-1].name} (the logits)":
        [r for r in rep_rows if r["site_name"] == noisy.sites[-1].name],
     "additive noise at relu2": [r for r in rep_rows if r["site_name"] == "relu2"]},
    lines_by="repeats",
    label_format=lambda key, row: f"average of N = {key} noisy passes")
_quick.show(fig, "07_repeats.png")

# %% [markdown]
# The authors' code averages *at the site* instead (`repeat_at="site"`): the layer's output
# is computed once and N noise draws of it are averaged, so the site's noise has standard
# deviation σ/√N exactly, whatever follows. Its μ is then √N times the μ of one draw at any
# site, up to the grid's interpolation and the draws. They choose N per layer
# (`site_repeats=[...]`, one N per site; `tinyproj walk --site-repeats 4,2,3,...`).

# %%
site_rows = []
for n in REPEATS:
    site_rows += wn.walk(clean, D.train, D.test, "additive", SIGMAS, sites=["relu2"],
                         repeats=n, repeat_at="site", progress=False)
site_mids = {m["repeats"]: m["midpoint_sigma"]
             for m in wn.midpoints_table(site_rows, chance=D.chance_accuracy)}
net_mids = {m["repeats"]: m["midpoint_sigma"] for m in rep_mids if m["site_name"] == "relu2"}
for n in REPEATS[1:]:
    if site_mids.get(n) and site_mids.get(1) and net_mids.get(n) and net_mids.get(1):
        print(f"relu2, N={n:<2d}: mu x{site_mids[n] / site_mids[1]:.2f} averaged at the site, "
              f"x{net_mids[n] / net_mids[1]:.2f} averaged over whole passes "
              f"(sqrt(N) = {np.sqrt(n):.0f})")

# %% [markdown]
# ## 8. Training with noise raises μ — and the signal
#
# `wn.train_noisy("mlp_tfc", train, "additive:sigma=0.5", sites="all", epochs=...)` trains
# with the noise on in every *training* pass (backpropagation goes through the drawn noise)
# and returns `(model, rows)`: one dynamics row per epoch with the loss, the clean and noisy
# test accuracy and, with `record_dynamics=True`, the weight statistics per layer
# (`wn.weight_stats`: mean |w|, std, max |w|) and the binarization measures
# (`wn.binarization`).
#
# **Set-ups.** A training's set-up (`wn.setups`: initial weights, learning-rate schedule,
# epochs, normalisation, augmentation) is a named choice. The walk's default is the authors'
# (`setup="authors"`: PyTorch's initial weights U(±1/√fan_in) with a bias in every layer,
# cosine annealing stepped per *epoch*, their epochs per dataset and model — MNIST
# `mlp_tfc` 100). The clean network of section 1 was trained with tinyproj's earlier recipe
# (Glorot weights, cosine stepped per minibatch), so the noisy networks here use that one
# too, `setup="legacy"`: a comparison of weights and signals means something only between
# networks that start alike. Lesson 10 trains with the authors' set-up.
#
# Walking Noise's explanation of why noisy training helps against *additive* noise: the
# network raises its signal-to-noise ratio by making its signals larger — growing its
# weights. The paper tests this with a weight clamp to [−1, 1] (`clamp=1.0`): if the growth
# is what helps, blocking it should take the gain away. We train once without and once with
# the clamp, and compare μ of the global walk, the weights and the signal rms per site.

# %%
TRAIN_SIGMA = 0.5
SETUP = "legacy"                 # as the clean network of section 1 (Glorot, cosine per step)


def signal_rms(model):
    with no_grad():
        outs = wn.NoisyModel(model, None).site_outputs(x)
    return [float(np.sqrt(np.mean(o.data ** 2))) for o in outs]


def global_mu(model, kind="additive"):
    r = wn.walk(model, D.train, D.test, kind, SIGMAS, sites="all", progress=False)
    m = wn.midpoints_table(r, chance=D.chance_accuracy)[0]
    return m["midpoint_sigma"], r


trained = {}
for label, clamp in (("clean", None), ("noisy", None), ("noisy, clamp 1.0", 1.0),
                     ("noisy, clamp 0.1", 0.1)):
    t = time.perf_counter()
    if label == "clean":
        model, dyn = clean, None
    else:
        model, dyn = wn.train_noisy("mlp_tfc", D.train, f"additive:sigma={TRAIN_SIGMA}",
                                    sites="all", epochs=NOISY_EPOCHS, seed=0, clamp=clamp,
                                    test_source=D.test, setup=SETUP)
    mu, walk_rows = global_mu(model)
    trained[label] = dict(model=model, dyn=dyn, mu=mu, rows=walk_rows)
    stats = wn.weight_stats(model)
    print(f"{label:17s} accuracy {100 * accuracy(model):6.2f} %   global additive mu "
          f"{mu:.3g}   ({time.perf_counter() - t:.1f} s)\n{'':19s}mean|w| per layer "
          f"{[round(s['mean_abs'], 3) for s in stats.values()]}   max|w| "
          f"{[round(s['max_abs'], 3) for s in stats.values()]}")
print("signal rms per site (input → logits):")
for label, d in trained.items():
    print(f"  {label:17s}", np.round(signal_rms(d["model"]), 2))
fig = wn_plots.weight_stats_plot(
    {"free": trained["noisy"]["dyn"], "clamp 0.1": trained["noisy, clamp 0.1"]["dyn"]},
    stats=["mean_abs", "max_abs"],
    title=f"Weights during training with additive noise σ = {TRAIN_SIGMA} at every site "
          "(solid: free, dashed: clamped to [−0.1, 0.1])")
_quick.show(fig, "07_weights_additive.png")
fig = wn_plots.accuracy_vs_sigma(
    {"global additive noise": [dict(r, trained_as=label) for label, d in trained.items()
                               for r in d["rows"]]},
    lines_by="trained_as",
    label_format=lambda key, row: f"trained {key}")
_quick.show(fig, "07_noisy_training.png")

# %% [markdown]
# What to see (in the full mode: 60,000 images; quick mode's 3000 images and few epochs are too
# little for the noisy network to adapt, and its numbers can even come out the other way):
#
# * Training with the noise raises the global μ well above the clean network's (about
#   2.4×: 1.39 against 0.58).
# * The **signal grows**: the rms at the hidden sites is about twice that of the clean
#   network (2–2.3× from fc1 to fc3, 1.3× at relu3; the logits are smaller). That is the
#   signal-to-noise explanation: the same σ hurts a larger signal less.
# * The weights do *not* simply grow: mean |w| and max |w| stay where they were in the first
#   layers and even fall in the later ones. The clamp to [−1, 1] of the paper never binds in
#   this small network (no weight comes near 1), so that run *is* the free run — a test
#   only tests something if it bites.
# * A clamp that bites (0.1: every layer's max |w| is then exactly 0.1) hardly reduces the
#   gain. The network still makes its signal large — with many weights at the bound adding
#   up over 784 or 64 inputs, and with the biases, which the clamp leaves free.
#
# So "the signal grows" holds here, "the weights grow" is one way of getting there, not the
# only one. Exercise 2 blocks the other ways.

# %% [markdown]
# ## 8b. The authors' protocol: one network per σ, trained *and tested* at σ
#
# Section 8 trained one network at one σ and walked it over every test σ. That is not the
# curve the paper reports for noisy training. In the authors' code every point of the curve
# is its own network: for each site, each σ of the grid and each seed, a fresh network is
# trained with noise σ at that site and tested with the same σ there. The accuracy against
# σ of those networks, and its midpoint μ, are the paper's noisy-training numbers.
# `wn.train_at_sigma(...)` does exactly this (`tinyproj walk --protocol train-at-sigma` from
# the shell, resumable and shardable: one row per network). Its rows carry
# `train_sigma = sigma`, and `midpoints_table` reads them as one curve per site
# (`train_sigma` "sigma"), with a μ per seed. The paper sweeps σ on quarter decades
# (`wn.grid_sigmas("add-mnist")`: 1e-2 … 1e8, 41 points) and trains for 100 epochs; here a
# coarse subset, and as many epochs as the clean network had (a fair comparison).

# %%
PROTO_SIGMAS = [0.1, 1.0, 10.0] if QUICK else [0.1, 0.316228, 1.0, 3.16228, 10.0, 31.6228]
PROTO_SEEDS = [0] if QUICK else [0, 1]
t = time.perf_counter()
at_rows = wn.train_at_sigma("mlp_tfc", D.train, D.test, "additive", PROTO_SIGMAS,
                            sites=["relu2"], seeds=PROTO_SEEDS, epochs=EPOCHS,
                            num_classes=round(1 / D.chance_accuracy), setup=SETUP)
clean_rows = wn.walk(clean, D.train, D.test, "additive", PROTO_SIGMAS, sites=["relu2"],
                     progress=False)
mu_at = wn.midpoints_table(at_rows, chance=D.chance_accuracy)[0]
mu_clean = wn.midpoints_table(clean_rows, chance=D.chance_accuracy)[0]


def _mu_text(entry):
    if entry["midpoint_sigma"] is None:
        return "beyond the grid" if entry["beyond_grid"] else "none"
    return f"{entry['midpoint_sigma']:.3g}" + (" (+ seeds beyond)" if entry["beyond_grid"]
                                               else "")


print(f"{len(at_rows)} networks in {time.perf_counter() - t:.1f} s")
print(f"relu2, additive: mu clean network {_mu_text(mu_clean)}, trained at each sigma "
      f"{_mu_text(mu_at)} (per seed: {mu_at['midpoints_per_seed']})")
for e in wn.point_spread(at_rows):
    print(f"  sigma {e['sigma']:<8g} accuracy {100 * e['accuracy_mean']:6.2f} % "
          f"± {100 * e['accuracy_std']:.2f} over {e['n_seeds']} seed(s)")
fig = wn_plots.accuracy_vs_sigma(
    {"additive noise at relu2": [dict(r, how="clean network, walked") for r in clean_rows]
     + [dict(r, how="a network per σ, trained at σ") for r in at_rows]},
    lines_by="how", label_format=lambda key, row: key)
_quick.show(fig, "07_train_at_sigma.png")

# %% [markdown]
# Compare the two μ printed above. On MNIST with 20,000 training images, 2 epochs and two
# seeds per point (`tinyproj walk --setup legacy --protocol train-at-sigma`, the README's
# numbers), the networks trained at σ had μ 1.4× the clean network's at the input, 2× at
# relu1, 14× at relu3 and 21× at the logits (μ 103 against 4.8;
# `results/wn-mnist-train-at-sigma/`): every point had the chance to adapt to its own noise
# level, and here the gain grew with the depth of the site. The two seeds' μ were at most
# 0.09 decades apart (relu3: 49.9 and 40.2; a log10 std of 0.066).
#
# Quick mode trains on 3000 images for 3 epochs only; a network trained at a large σ
# then has had too few steps to adapt, and the comparison can even come out the other way.
# Section 8's number (one network trained at σ = 0.5, walked over every σ) is a third,
# different quantity; only this one is the paper's noisy-training μ.

# %% [markdown]
# ## 9. Multiplicative noise and self-binarization
#
# Multiplicative noise y = x · N(1, σ²) scales with the signal, so making the signal larger
# does not help. Walking Noise reports that networks trained with it can instead drive their
# weights to two values ±a ("self-binarization") and become extremely robust. Two measures
# per layer (`wn.binarization`, both in [0, 1]):
#
# * `share_near_max`: the fraction of weights with |w| > 0.9 · max |w| (1 for ±a weights,
#   0.1 for the uniform initial weights, near 0 for bell-shaped ones);
# * `bimodality`: Sarle's coefficient (skew² + 1) / kurtosis (1 for two values ±a, 0.56 for
#   uniform, 0.33 for Gaussian weights).

# %%
t = time.perf_counter()
mult_model, mult_dyn = wn.train_noisy("mlp_tfc", D.train, "multiplicative:sigma=0.5",
                                      sites="all", epochs=NOISY_EPOCHS, seed=0,
                                      test_source=D.test, setup=SETUP)
mu_mult_clean, _ = global_mu(clean, "multiplicative")
mu_mult_noisy, _ = global_mu(mult_model, "multiplicative")
print(f"trained with multiplicative noise sigma=0.5: accuracy {100 * accuracy(mult_model):.2f} % "
      f"({time.perf_counter() - t:.1f} s)")
print(f"global multiplicative mu: clean {mu_mult_clean:.3g}, noisy-trained {mu_mult_noisy:.3g}")
for label, model in (("clean", clean), ("multiplicative-trained", mult_model)):
    b = wn.binarization(model)
    print(f"  {label:23s}" + "  ".join(f"{k}: near max {v['share_near_max']:.3f}, "
                                       f"bimodality {v['bimodality']:.2f}"
                                       for k, v in b.items()))
fig = wn_plots.weight_stats_plot(mult_dyn,
                                 title="Weights during training with multiplicative "
                                       "noise σ = 0.5 at every site")
_quick.show(fig, "07_binarization.png")

# %% [markdown]
# In a run this short the weights do not binarize: both measures fall from their values for
# the uniform initial weights (0.1 and 0.56) towards those of a bell shape, as in clean
# training, and the noisy-trained network ends where the clean one does. The robustness it
# gained against multiplicative noise (larger μ) comes from elsewhere here. The paper reports
# self-binarization under strong multiplicative noise and long training. We tried its regime
# on MNIST `mlp_tfc` (σ up to 1e10, with and without batch norm, 60 epochs, PyTorch's
# initialisation; lesson 10 and `results/wn-dynamics-mnist/`) and found **no** layer that
# binarized — so treat the claim as open, try it yourself (exercise 3) and watch the two right
# panels of `07_binarization.png`.

# %% [markdown]
# ## 10. Cross-robustness: does one kind of robustness carry over to another?
#
# Rows: five training regimes on the same network (`mlp_tfc` with batch norm), data and
# optimizer — Merolla's Algorithm 1 with the plain baseline (Tr-None-NC), Sign + clip and
# Stoch + clip, and Walking Noise's noisy training with additive and multiplicative noise at
# every site (`cross.DEFAULT_REGIMES`). Columns: two weight distortions (AddNorm σ,
# MultUnif γ; lesson 6's protocol, batch norm re-estimated) and global activation noise
# (additive, multiplicative). Every cell is a midpoint. `cross.write_cross_table` writes
# `cross_robustness.csv` and `.md` (under `lessons/out/07_cross/`);
# `wn_plots.cross_heatmap` draws it.
#
# One detail matters for a fair table: before measuring, every network's batch-norm
# statistics are re-estimated once on clean training data with its own full-precision
# weights (`recalibrate_bn=True`). Algorithm 1 collected them during training with the
# *projected* weights Sign(W), and noisy training with the noise on; scored with those, the
# Tr-Sign-C network loses 15 points of clean accuracy that it does not deserve.

# %%
t = time.perf_counter()
models = cross.train_regimes(cross.DEFAULT_REGIMES, D, epochs=NOISY_EPOCHS, bn=True,
                             out_dir=RUNS)
print(f"trained {len(models)} regimes in {time.perf_counter() - t:.1f} s")
t = time.perf_counter()
table = cross.cross_robustness(models, cross.default_perturbations(quick=QUICK), D,
                               draws=1 if QUICK else 3,
                               # weight columns: batch norm re-estimated exactly over the
                               # training images (all of them; 250 in quick mode), as
                               # `tinyproj sweep`; activation walks: Walking Noise's own batches
                               bn_images=250 if QUICK else None,
                               walk_bn_batches=5 if QUICK else 20,
                               labels={r.name: r.label for r in cross.DEFAULT_REGIMES},
                               progress=False)
print(f"measured {len(table.cells)} cells in {time.perf_counter() - t:.1f} s\n")
paths = cross.write_cross_table(table, os.path.join(OUT, "07_cross"))
print(paths["md"].read_text())
print("saved", paths["csv"])
_quick.show(wn_plots.cross_heatmap(table), "07_cross_robustness.png")
fig = wn_plots.cross_heatmap(table, relative_to="tr-none-nc")
_quick.show(fig, "07_cross_relative.png")

# %% [markdown]
# How to read it: compare numbers **down** a column (the columns have different units).
# `07_cross_relative.png` colours every cell by log10(μ / μ of the baseline Tr-None-NC in
# the same column): how many decades of robustness a training regime bought, comparable
# across columns.
#
# * Merolla's clipped regimes lead the AddNorm column (clipping parks many weights at ±c_k,
#   so α = max |w| is not set by a few outliers and noise of std σ·α is small next to the
#   typical weight).
# * Noisy training leads the activation column of its own noise kind (in the full mode
#   additive training triples the additive μ; multiplicative training helps against both).
# * Robustness carries over only partly across families: Tr-Stoch-C gains against
#   multiplicative activation noise, noisy training gains a little against AddNorm.
# * MultUnif γ is "< x" everywhere, x the edge of the γ grid (0.02 in the full mode): as γ → 0, U(γ, 1/γ) tends to (1/γ)·U(0, 1), whose
#   spread relative to its mean stays 1/√3 ≈ 0.58 however small γ gets, and batch norm
#   re-estimation absorbs the overall scale 1/(2γ). A network that survives weights each
#   multiplied by a random factor in [0, 1] never reaches the midpoint.
#
# With quick-mode sizes the differences are small and noisy: run the full mode before
# believing any of them.

# %% [markdown]
# ## 11. The whole study in one call: `wn.clean_study`
#
# Sections 3 and 4 walked the network with `wn.walk` and made the table with
# `wn.midpoints_table`: one measurement, its rows returned as a list (or appended to a file
# you name, `out_file=`), the networks, folders, tables and figures left to you.
# `wn.clean_study(out, noise, sigmas, ...)` runs the same walk as a **study in a folder of
# its own** — what `tinyproj walk` runs from the shell:
#
# * **Checked and marked.** Before anything is loaded it checks the sites (a typo stops it
#   at once) and the folder `out`: a folder that is not walk's but holds files of the names
#   walk writes (your own `midpoints.csv`, say) is refused, so a study never overwrites
#   results that are not its own. It then marks the folder as walk's (`.tinyproj-walk`).
# * **Resumable.** Every point goes to `out/walk.jsonl` as soon as it is measured, stamped
#   with its network's fingerprint. Called again, the study measures only what is missing —
#   after a crash that is the rest, after a finished run *nothing* — and rows of another
#   network are refused instead of mixed in.
# * **Shardable.** `shard="0/4"` … `shard="3/4"` (numbered from 0, like a SLURM array)
#   split the points over four processes or machines (each writes its own file,
#   `walk.shard-<i>-of-4.jsonl`; every point draws from its own generator, so the
#   numbers do not depend on the split), and any of them returns the rows of all shards
#   on file with `total`, the number of points the study has.
# * **The same files as `tinyproj walk`**: `walk.jsonl`, `midpoints.csv` (μ per site, over
#   seeds), `walk-points.csv` (accuracy per point) — and, with
#   `reporting.write_study_figures` (imported here as `wn_plots`), its two figures
#   `walk-accuracy.png` and `walk-midpoints.png`.
#
# It returns a `StudyResult(rows, total, table)`. How the networks are trained and how the
# points are scored are explicit settings, `wn.Training(...)` and `wn.Scoring(...)`
# (`tinyproj walk`'s flags); without `run=` the study trains its own clean network per seed
# into `out/model`. Here we give it the run folder section 1 trained (`run=`), so nothing is
# trained again, and the grid and sites of section 3. From the shell the same study (the
# same files, the same numbers) is
#
#     tinyproj walk --run lessons/out/07_runs/clean --out lessons/out/07_study \
#         --sigmas 0.01,0.03162,0.1,0.3162,1,3.162,10,31.62,100,316.2,1000

# %%
STUDY = os.path.join(OUT, "07_study")
# Section 1 trained the clean network afresh; a study refuses the rows of another network,
# so the lesson starts its study afresh too (a student's own study is simply resumed).
shutil.rmtree(STUDY, ignore_errors=True)
t = time.perf_counter()
done = wn.clean_study(STUDY, "additive", SIGMAS, run=os.path.join(RUNS, "clean"),
                      training=wn.Training(data_dir=DATA_DIR),    # where run's images are
                      sites="each", seeds=[0], progress=False)
print(f"study: {len(done.rows)} of {done.total} points on file "
      f"({time.perf_counter() - t:.1f} s)")
walked = {m["site_name"]: m for m in mids}                        # section 4's table
print("site      mu (study)   mu (section 4)")
for m in done.table:
    print(f"  {m['site_name']:7s} {_mu_text(m):>10s}   {_mu_text(walked[m['site_name']]):>14s}")
for path in wn_plots.write_study_figures(done.rows, done.table, STUDY):
    _quick.show(path)
print("the study folder holds", sorted(os.listdir(STUDY)))

# %% [markdown]
# The μ agree with section 4's: the study walked the same network over the same grid, and
# every point drew from the same generator (seeded from seed, noise, site and σ).
#
# Now call it again — as after a crash, or on another day. Everything is on file, so it
# measures nothing and returns at once, with the same rows.

# %%
t = time.perf_counter()
again = wn.clean_study(STUDY, "additive", SIGMAS, run=os.path.join(RUNS, "clean"),
                       training=wn.Training(data_dir=DATA_DIR), sites="each", seeds=[0],
                       progress=False)
print(f"second call: {time.perf_counter() - t:.2f} s, same rows: {again.rows == done.rows}, "
      f"same table: {again.table == done.table}")

# %%
print(f"\nlesson finished in {time.perf_counter() - START:.0f} s")

# %% [markdown]
# ## Exercises
#
# 1. Walk multiplicative noise site by site on the clean network. Is the input still the
#    weakest site? Why should μ *not* follow the signal's scale this time?
# 2. Clamp the weights to the largest |w| of the clean network (or lower) in section 8, and
#    clamp the biases too (write a variant of `train_noisy`'s `clamp_weights`). Does the
#    gain in μ survive when the signal cannot grow?
# 3. Train with multiplicative noise σ = 1 at the hidden sites only (`sites=[1, ..., 6]`)
#    for 30 epochs and watch `share_near_max` and `bimodality`. Do the weights binarize?
# 4. Compute μ for N = 64 repeats in section 7. Does the √N law still hold at the logits?
#    At relu2? Why does the ReLU make the gain smaller than √N there?
# 5. Add a row to the cross table: `cross.Regime("tr-stochm-c", "algorithm1",
#    "stochm:gamma=0.5", 0.5)`, and a column: combined noise
#    (`cross.Perturbation("act-combined", "activation", "combined", SIGMAS)`).

# %% [markdown]
# ## Exercises you can check
#
# Replace each `...` by your answer and run the cell: the checker prints **correct**, or what is
# off, or *not answered yet*. The checkers live in `lessons/exercises.py`; they compute the right
# answer with tinyproj itself (there is no solution file), so try first, then read them.
#
# 1. Section 7 averages N noisy passes. With additive noise σ = 0.8 and N = 16 independent
#    passes, what is the standard deviation of the averaged noise?
# 2. A walk gave the accuracies [0.98, 0.97, 0.90, 0.40, 0.12] at σ = [0.1, 0.3, 1, 3, 10]
#    (10 classes: chance 0.1). What is μ, the σ where the accuracy is halfway from its maximum to
#    chance? Interpolate between the two bracketing points on a **log σ** scale (section 4).

# %%
from exercises import check_07_1, check_07_2  # noqa: E402  (lessons/exercises.py)

answer_1 = ...                  # a number
check_07_1(answer_1)

# %%
answer_2 = ...                  # μ, a number between two grid points
check_07_2(answer_2)
