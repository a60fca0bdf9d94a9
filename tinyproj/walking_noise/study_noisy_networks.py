"""The noisy networks of a walk study: one per (seed, site), trained with noise at that site.

    OUT/noisy-models/<noise>-<site>-seed<S>.npz   the network trained with noise σ at a site
                                                  (``train_noisy``), its settings in the
                                                  checkpoint's meta
    OUT/dynamics.jsonl                            its weight dynamics, one row per epoch

A network on disk is read back unless it was trained with other settings (UserError): the
settings of :class:`~tinyproj.walking_noise.study_networks.Training` (the set-up's epochs
resolved), the set-up itself, the architecture.

Every row of dynamics.jsonl carries ``network``, the fingerprint of the noisy network it
describes (``runs/fingerprint.py``), as walk.jsonl's rows do: a row on file of the same
point (site, seed, noise, σ, clamp, epoch) but of another network (a network deleted and
trained again) is refused, never kept in place of the new one (--restart moves it aside).
Rows written before rows had a fingerprint are kept when they equal the network's own.
"""
from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

from ..errors import UserError
from .study_networks import Training, train_config

__all__ = ["noisy_model", "noisy_model_path", "DYNAMICS_KEY"]

DYNAMICS_KEY = ("site_name", "seed", "sigma", "clamp", "noise", "ratio", "epoch")
"""The fields that say which point of a noisy training a row of dynamics.jsonl is."""


def _slug(spec, clamp) -> str:
    text = f"{spec.kind}{f'-r{spec.ratio:g}' if spec.kind == 'combined' else ''}" \
           f"-sigma{spec.sigma:g}{'' if clamp is None else f'-clamp{clamp:g}'}"
    return re.sub(r"[^A-Za-z0-9.+-]", "_", text)


def noisy_model_path(out, spec, site_name: str, seed: int, clamp=None) -> Path:
    """Where the network trained with noise ``spec`` (its σ included) at ``site_name`` lives."""
    return Path(out) / "noisy-models" / f"{_slug(spec, clamp)}-{site_name}-seed{seed}.npz"


def noisy_model(training: Training, spec, seed: int, site: int, site_name: str, out, data,
                dyn_file, log=print, *, clamp=None, test_subset=None, progress: bool = True,
                train: bool = True):
    """The network trained with noise ``spec`` at ``site`` (-1: all, -2: all-no-bn) in the
    study folder ``out``: trained now or read back (refused when it was trained with other
    settings); None when ``train`` is False and it does not exist yet.

    data: (train_source, test_source, input_shape, num_classes). clamp: clip the weights to
    [-clamp, clamp] after every step; test_subset: the epochs' test scores on the first N
    test images. With ``train`` its dynamics rows go to ``dyn_file`` (module docstring)."""
    from .. import backend
    from ..runs.files import load_checkpoint, save_checkpoint
    from ..runs.fingerprint import network_fingerprint
    from . import build_walk_model, train_noisy          # the package's, read at call time
    from .setups import recorded_setup, setup_hint, setup_tag
    train_src, test_src, input_shape, num_classes = data
    out = Path(out)
    path = noisy_model_path(out, spec, site_name, seed, clamp)
    epochs = train_config(training, seed, out).epochs     # given, or the set-up's: resolved
    made = {"model": training.model, "bn": bool(training.bn), "dataset": training.dataset,
            "train_subset": training.train_subset, "epochs": epochs,
            **setup_tag(training.setup)}
    model = build_walk_model(training.model, input_shape, num_classes, backend.make_rng(seed),
                             bn=bool(training.bn), setup=training.setup)
    if path.exists():
        state, _, meta = load_checkpoint(path)
        saved = dict(meta)
        if "epochs" in saved and saved["epochs"] is None:   # saved unresolved: the set-up's
            saved["epochs"] = train_config(replace(training, epochs=None), seed, out).epochs
        diff = {k: (saved[k], v) for k, v in made.items() if k in saved and saved[k] != v}
        if recorded_setup(meta) != training.setup:  # saved before set-ups had names: legacy
            diff["setup"] = (recorded_setup(meta), training.setup)
        if diff or set(state) != set(model.state_dict()):
            said = ", ".join(f"{k}: trained with {a!r}, now {b!r}" for k, (a, b) in diff.items())
            raise UserError(f"{path} holds a network trained with other settings "
                            f"({said or 'another architecture'}); use the same flags, or "
                            "another --out." + setup_hint(diff))
        model.load_state_dict(state)
        rows = meta.get("dynamics", [])
    elif not train:
        return None
    else:
        log(f"noisy training: {spec} at {site_name} (seed {seed}, {epochs} epoch(s))")
        model, rows = train_noisy(model, (train_src, test_src), spec,
                                  sites={-1: "all", -2: "all-no-bn"}.get(site, [site]),
                                  epochs=epochs, seed=seed, clamp=clamp, record_dynamics=True,
                                  test_subset=test_subset, progress=progress, log=log,
                                  dataset=training.dataset, setup=training.setup)
        save_checkpoint(path, model.state_dict(), {"state": [], "hyper": {}, "t": 0},
                        dict(made, dynamics=rows, site=site, site_name=site_name, seed=seed,
                             noise=str(spec), clamp=clamp))
    if train:
        _record_dynamics(out / "dynamics.jsonl", dyn_file,
                         [dict(r, site=site, site_name=site_name) for r in rows],
                         network_fingerprint(model.state_dict()), path)
    model.eval()
    return model


def _same(a: dict, b: dict) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _record_dynamics(base: Path, dyn_file: Path, rows: list, network: str, source: Path):
    """Append the dynamics ``rows`` of the network ``source`` (fingerprint ``network``) to
    ``dyn_file``, each stamped with ``network``, unless on file already (in ``base`` or any of
    its shard files); a row on file of one of these points but of another network is refused
    (module docstring)."""
    from ..runs.grid import NETWORK_FIELD, append_row, grid_files, read_rows
    key = (lambda r: tuple(r.get(k) for k in DYNAMICS_KEY))
    mine = {key(r): json.loads(json.dumps(r)) for r in rows}
    have, stale = set(), {}
    for f in grid_files(base):
        for r in read_rows(f):
            k = key(r)
            if k not in mine:
                continue
            if r.get(NETWORK_FIELD) == network or (
                    not r.get(NETWORK_FIELD) and _same(r, mine[k])):   # an older row: its own
                have.add(k)
            else:
                stale.setdefault(f, []).append(r.get(NETWORK_FIELD) or "none: an older row "
                                               "that differs from this network's")
    if stale:
        f, nets = next(iter(stale.items()))
        raise UserError(
            f"{f} holds {len(nets)} dynamics row(s) of the network in {source} measured on "
            f"another network (fingerprint {', '.join(sorted(set(nets)))}) than the one there "
            f"now ({network}): the network was trained again. They are not used. Run again "
            f"with --restart, which moves the walk's files (walk.jsonl, dynamics.jsonl and "
            f"their shard files) to {base.parent / 'replaced'}/<time>/ (nothing is deleted), "
            "or write elsewhere (another --out).", flag="--restart")
    for k, r in mine.items():
        if k not in have:
            append_row(dyn_file, dict(r, **{NETWORK_FIELD: network}))   # one locked line
