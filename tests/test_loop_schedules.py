"""What the training loop really hands Algorithm 1 at each step: the learning rate of its
schedule (exponential per epoch, cosine per step, the step drops), the clip bounds of its
clip schedule (f multiplied at the milestones); and the settings behind Table 2's presets
and the optimizer they build.

The schedule classes have their own tests (test_optim.py, test_clipping.py); these check
the wiring — an epoch or a step off by one, or a schedule's factor dropped, trains every run
of the paper's presets differently and no class test would see it.
"""
import math

import pytest

from tinyproj import algorithm1, backend, clipping, optim
from tinyproj.runs.build import build_model, build_optimizer
from tinyproj.runs.config import PRESETS, make_config
from tinyproj.runs.training import train

QUIET = dict(progress=False, log=lambda *a: None)
STEPS_PER_EPOCH = 3          # 60 training images in batches of 20


def _tiny(**overrides):
    values = dict(dataset="synthetic", model="mlp_tfc", train_subset=60, val_size=0,
                  batch_size=20, epochs=3, lr=0.01, loss="cross_entropy", test_subset=20,
                  test_projections=["none"], bn_reestimate=False, out=None)
    values.update(overrides)
    return make_config(None, **values)


def _steps_seen(monkeypatch, cfg):
    """(lr, clip bounds) of every Algorithm-1 step of an uninterrupted run of ``cfg``."""
    seen = []
    real = algorithm1.train_step

    def spy(model, x, y, loss_fn, optimizer, projection, bounds, rng, **kw):
        seen.append((optimizer.lr, dict(bounds)))
        return real(model, x, y, loss_fn, optimizer, projection, bounds, rng, **kw)
    monkeypatch.setattr(algorithm1, "train_step", spy)
    train(cfg, **QUIET)
    return seen


def test_the_exponential_schedule_starts_at_lr_and_decays_once_per_epoch(monkeypatch):
    lr, final, epochs = 0.01, 1e-4, 3
    seen = _steps_seen(monkeypatch, _tiny(lr=lr, lr_final=final, epochs=epochs,
                                          lr_schedule="exponential"))
    rates = [r for r, _ in seen]
    assert len(rates) == epochs * STEPS_PER_EPOCH
    factor = (final / lr) ** (1 / epochs)       # BinaryConnect: lr·factor^epoch
    for epoch in range(epochs):
        within = rates[epoch * STEPS_PER_EPOCH:(epoch + 1) * STEPS_PER_EPOCH]
        assert within == [within[0]] * STEPS_PER_EPOCH            # constant in an epoch
        assert within[0] == pytest.approx(lr * factor ** epoch, rel=1e-12)
    assert rates[0] == lr                                          # the first epoch: lr itself


def test_the_cosine_schedule_gives_each_step_its_own_rate_from_lr(monkeypatch):
    lr, final, epochs = 0.01, 0.0, 2
    seen = _steps_seen(monkeypatch, _tiny(lr=lr, lr_final=final, epochs=epochs,
                                          lr_schedule="cosine"))
    total = epochs * STEPS_PER_EPOCH
    expected = [final + (lr - final) * (1 + math.cos(math.pi * t / total)) / 2
                for t in range(total)]
    assert [r for r, _ in seen] == pytest.approx(expected, rel=1e-12)
    assert seen[0][0] == lr


def test_the_step_schedule_drops_at_its_milestone_steps(monkeypatch):
    seen = _steps_seen(monkeypatch, _tiny(lr=0.1, lr_schedule="step", lr_milestones=[2, 5],
                                          lr_factor=0.1, epochs=3))
    assert [r for r, _ in seen] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.01, 1e-3, 1e-3,
                                                  1e-3, 1e-3], rel=1e-12)


def test_the_clip_bounds_follow_the_clip_schedule_of_the_config(monkeypatch):
    # c_k = f·std_k with f = 0.5, multiplied by 2 from step 4 and again from step 7
    # (as the AlexNet preset's 4.5, x1.4 at 5K, 10K, 15K)
    cfg = _tiny(clip=0.5, clip_factor=2.0, clip_milestones=[4, 7], epochs=3)
    seen = _steps_seen(monkeypatch, cfg)
    base = clipping.clip_bounds(build_model(cfg, (3, 32, 32), 10, backend.make_rng(cfg.seed)),
                                0.5)                      # the same initial weights as the run
    assert set(seen[0][1]) == set(base) and base
    for step, (_, bounds) in enumerate(seen):
        f = 1.0 if step < 4 else 2.0 if step < 7 else 4.0
        assert bounds == pytest.approx({k: f * v for k, v in base.items()}, rel=1e-12), step


def test_no_clipping_hands_algorithm1_empty_bounds(monkeypatch):
    seen = _steps_seen(monkeypatch, _tiny(clip="NC", epochs=1))
    assert [b for _, b in seen] == [{}] * STEPS_PER_EPOCH


# ---- Table 2's presets and the optimizer they build ---------------------------------------
@pytest.mark.parametrize("preset, projection, clip", [
    ("tr-none-nc", "none", "NC"), ("tr-none-c", "none", 0.5), ("tr-sign-c", "sign", 0.5),
    ("tr-stoch-c", "stoch", 0.5), ("tr-power-c", "power:beta=U(0,2)", 0.5),
    ("tr-stochm-c", "stochm:gamma=0.5", 0.5)])
def test_table2_presets_train_with_their_rows_projection_and_the_shared_settings(
        preset, projection, clip):
    # Table 2 / section 3 of the paper (PAPERS.md): Adam 0.003 decaying exponentially to
    # 2e-6 over 500 epochs, batch 50, square hinge loss, clip f = 0.5 where clipped
    cfg = make_config(preset)
    assert (cfg.projection, cfg.clip) == (projection, clip)
    assert (cfg.model, cfg.dataset, cfg.optimizer, cfg.lr, cfg.lr_schedule, cfg.lr_final,
            cfg.epochs, cfg.batch_size, cfg.loss) == (
        "bc_cifar10", "cifar10", "adam", 0.003, "exponential", 2e-6, 500, 50, "square_hinge")
    assert set(PRESETS) >= {preset}


def test_the_cli_adam_is_the_papers_adam_with_the_usual_defaults():
    cfg = _tiny(optimizer="adam", lr=0.003)
    model = build_model(cfg, (3, 32, 32), 10, backend.make_rng(0))
    opt = build_optimizer(cfg, model)
    assert isinstance(opt, optim.Adam)
    assert (opt.lr, tuple(opt.betas), opt.eps) == (0.003, (0.9, 0.999), 1e-8)
