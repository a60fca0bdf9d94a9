"""Table 2's test errors with error bars: Te-None, Te-Sign, Te-Round over K draws.

The errors a training run logs (``metrics.jsonl``) are one evaluation each, with the
re-estimation protocol of its config (20 batches of 50). Here each test projection is scored
K times (``scoring.score_distortion``; the draws differ in the training images, or their
order, used to re-estimate batch norm: ``bn_estimate.BNProtocol``), giving mean ± std (n)::

    RUN/sweeps/table2.jsonl    one row per test projection (resumable; rows of another
                               network or other settings refused, as for sweeps)

Fields of a row: ``test`` ("none" | "sign" | "round"), ``spec``, ``error_mean``,
``error_std`` (ddof = 1), ``errors``, ``draws``, ``n_test``, the re-estimation settings
(``bn_batches``, ``bn_batch_size``, ``bn_images``, ``bn_pass_size``, ``bn_protocol``),
``seed``, ``test_subset``, ``checkpoint_step``, ``seconds``, ``network``.

From the shell: ``tinyproj sweep RUN_DIR --distortion table2 --draws 5`` (``--bn-images``
as for the sweeps). The report (``tinyproj report``) shows these rows beside Table 2.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..errors import UserError
from ..runs.fingerprint import network_fingerprint
from ..runs.grid import Grid
from . import scoring
from .bn_estimate import BNProtocol
from .sweeps import rows_network

__all__ = ["TESTS", "TABLE2_SWEEP", "run_test_scores", "read_test_scores"]

TESTS = ("none", "sign", "round")
"""Table 2's test projections, in its column order."""

TABLE2_SWEEP = "table2"
"""The file stem: ``RUN/sweeps/table2.jsonl``."""

_SETTINGS = ("seed", "bn_batches", "bn_batch_size", "bn_images", "bn_pass_size", "test_subset",
             "checkpoint_step", "draws")


def _grid(run_dir, settings=None) -> Grid:
    run_dir = Path(run_dir)
    return Grid(run_dir / "sweeps" / f"{TABLE2_SWEEP}.jsonl", lambda r: r["test"],
                settings=settings, settings_keys=_SETTINGS,
                fix=(f"Run it again with --restart: the old file is moved to "
                     f"{run_dir / 'sweeps' / 'replaced'}/<time>/ (nothing is deleted)."),
                network_source=f"the network in {run_dir / 'checkpoint.npz'}")


def run_test_scores(run, tests=TESTS, *, draws: int = 3, bn: BNProtocol | None = None,
                    seed: int = 0, test_subset: int | None = None, eval_batch_size: int = 500,
                    data_dir=None, restart: bool = False, progress: bool = False,
                    log=None) -> list:
    """Score ``tests`` (Te-X projections) K = ``draws`` times each; returns the file's rows.

    run: a run folder or ``LoadedRun``. bn: the re-estimation (default ``BNProtocol()``:
    exact, all training images). Other arguments as in ``sweeps.run_sweep``.
    """
    from ..runs.training import LoadedRun, load_run

    unknown = [t for t in tests if t not in TESTS]
    if unknown or not tests:
        raise UserError(f"Table 2's tests are {', '.join(TESTS)}; got {list(tests)}")
    if not isinstance(draws, int) or isinstance(draws, bool) or draws < 1:
        raise UserError(f"draws (--draws) must be an integer >= 1; got {draws!r}",
                        flag="--draws")
    bn = BNProtocol() if bn is None else bn
    if not isinstance(run, LoadedRun):
        run = load_run(run, data_dir=data_dir)
    settings = {"seed": seed, **bn.settings(len(run.train)), "test_subset": test_subset,
                "checkpoint_step": (run.meta or {}).get("pos", {}).get("step"),
                "draws": draws}
    grid = _grid(run.folder, settings)
    if restart:
        grid.move_aside()
    network = network_fingerprint(run.model.state_dict())
    done = grid.finished(network)
    for test in tests:
        if test in done:
            continue
        start = time.perf_counter()
        score = scoring.score_distortion(run.model, run.train, run.test, test, draws=draws,
                                         seed=seed, bn=bn, test_subset=test_subset,
                                         eval_batch_size=eval_batch_size)
        row = {"test": test, "spec": score.spec, "error_mean": score.mean,
               "error_std": score.std, "errors": score.errors, "draws": score.draws,
               "n_test": score.n_test, **settings, "bn_protocol": bn.kind,
               "seconds": round(time.perf_counter() - start, 3)}
        grid.append(row, network)
        if log:
            log(f"  Te-{test.capitalize()}: {100 * score.mean:.2f} % ± {100 * score.std:.2f} "
                f"(n = {score.draws})")
    return read_test_scores(run.folder, network=network)


def read_test_scores(run_dir, network="checkpoint") -> dict:
    """``{test: row}`` of ``RUN/sweeps/table2.jsonl`` ({} when absent); rows of another network
    than the run's checkpoint (or ``network``) are refused with a UserError."""
    grid = _grid(run_dir)
    if not grid.files():
        return {}
    network = rows_network(run_dir, network,
                           f"{run_dir} has sweeps/{TABLE2_SWEEP}.jsonl but no checkpoint.npz, "
                           "so nothing tells which network it measured; put the checkpoint "
                           "back")
    rows = grid.finished(network)
    return {t: rows[t] for t in TESTS if t in rows}
