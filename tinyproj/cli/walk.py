"""`tinyproj walk`: Walking Noise on a network — accuracy per noise site and σ, midpoints.

    tinyproj walk --model mlp_tfc --dataset mnist --out runs/wn-mlp      the authors' 100 epochs
    tinyproj walk --model mlp_tfc --out runs/wn-quick --epochs 5         a quick look
    tinyproj walk --setup legacy --model mlp_tfc --out runs/wn-old       tinyproj's earlier set-up
    tinyproj walk --model lenet5 --bn --noise multiplicative --sigmas 0.01,0.1,1,10 --out runs/wn
    tinyproj walk --model mlp_tfc --out runs/wn-mlp --sites all          global noise
    tinyproj walk --model mlp_tfc --out runs/wn-mlp --seeds 0,1,2        three models, spread
    tinyproj walk --run runs/mlp --out runs/wn-mlp                       an already trained run
    tinyproj walk --model mlp_tfc --out runs/wn-mlp --train-noise 0.5    noisy training per site
    tinyproj walk --model mlp_tfc --out runs/wn-at --protocol train-at-sigma --grid add-mnist \
        --seeds 0,1                    the authors' protocol: a network per (site, σ, seed)
    tinyproj walk --model mlp_tfc --bn --out runs/wn-g --sites all-no-bn   BN-noNoise global
    tinyproj walk ... --repeat-at site --site-repeats 4,2,3,3,2,2,2,1,1,1,1   N per site
    tinyproj walk --model mlp_tfc --out runs/wn-mlp --shard $SLURM_ARRAY_TASK_ID/8

Without --run the network is trained first, cleanly, with the set-up of --setup, into
RUN_DIR/model (seed 0; RUN_DIR/model-seed<S> for other seeds), and reused when present. The
default set-up is the Walking Noise authors' for the model and dataset (PyTorch's initial
weights and biases, Adam 1e-3, cosine annealing per epoch, cross-entropy, batch 128, their
epochs — MNIST mlp_tfc 100, lenet5 50 —, normalisation and crop + flip); --setup legacy is
tinyproj's earlier one (Glorot, cosine per step, no augmentation, 5 epochs), with which the
committed results/wn-mnist-train-at-sigma* were made. --epochs overrides the set-up's. Every
row of a set-up other than legacy records it (``setup``), so a point is never reused for
another set-up.

With --train-noise SIGMA one network per site (or one for --sites all) is trained with that
noise at that site instead (RUN_DIR/noisy-models/, dynamics in RUN_DIR/dynamics.jsonl), and
walked over every test σ: a curve of its own, not the paper's noisy-training curve (that is
--protocol train-at-sigma).

With --protocol train-at-sigma (Walking Noise's noisy training, as the authors ran it) every
(site, σ, seed) gets its own network, trained with noise σ at that site and tested at that
same σ (RUN_DIR/trained-at-sigma/); the curve over σ of those networks and its midpoint μ are
the paper's noisy-training numbers. Resumable and shardable like the walk (one row per
network; a network trained but not yet tested is read back, not retrained).

Then every (site, σ) is scored with noise at evaluation. RUN_DIR/walk.jsonl gets one JSON
object per (seed, site, σ), stamped with the fingerprint of the network walked, and
RUN_DIR/midpoints.csv the midpoint μ per site (over seeds: geometric mean and spread, and
every seed's μ) and RUN_DIR/walk-points.csv the accuracy per (site, σ) over seeds (mean,
standard deviation, each seed) of the points of this command — rows of other commands stay
in walk.jsonl but are not in the table.
Two figures of the same points go beside them: RUN_DIR/walk-accuracy.png (test accuracy
against σ, one line per site, a dot at each site's μ) and RUN_DIR/walk-midpoints.png (μ per
site, input to logits); the last line printed names every result file.
Run the same command again to resume; shards write walk.shard-<i>-of-<n>.jsonl, and every
later run reads them all. With --shard train the models first (--train-only, once), so that
shards do not race. A point on file that was measured on another network (--run B into the
--out of a walk of run A, a model retrained) is refused, never shown: use another --out, or
--restart, which moves the walk's files to RUN_DIR/replaced/<time>/ (nothing is deleted).
The same holds for the rows of dynamics.jsonl, each stamped with the fingerprint of its noisy
network. RUN_DIR is walk's own: the first run marks it (.tinyproj-walk), and a folder that
holds files of the names walk writes (walk.jsonl, dynamics.jsonl, midpoints.csv,
walk-points.csv, the figures) which walk did not write is refused before anything is done.

The command in files, one idea each: the flags (this file), their checks (walk_args.py), the
flags as the library's Training and Scoring (walk_models.py), the study called and its
results shown (walk_run.py), the table and figures it shows (walk_report.py). The study
itself — networks, folder, rows, tables — is the library's (tinyproj/walking_noise/study*.py),
callable from Python without these flags: ``walking_noise.clean_study(...)``.
"""
from __future__ import annotations

from .walk_report import FIGURES
from .walk_run import cmd_walk

__all__ = ["add_parsers", "FIGURES"]


def _setups() -> dict:
    from ..walking_noise.setups import SETUPS
    return SETUPS


def _grid_names() -> str:
    from ..walking_noise.grids import grid_help
    return grid_help()


def add_parsers(sub) -> None:
    p = sub.add_parser("walk", help="Walking Noise: accuracy per noise site and sigma, midpoints",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, metavar="RUN_DIR",
                   help="folder for model(s), walk.jsonl, midpoints.csv and the figures "
                        "walk-accuracy.png, walk-midpoints.png")
    p.add_argument("--run", default=None, metavar="TRAINED_RUN_DIR",
                   help="walk this trained run (`tinyproj train --out`) instead of training")
    # the training flags default to None so that --run can refuse them when they are given
    # (walk_args.check_args fills in the defaults named here)
    p.add_argument("--model", default=None, help="mlp_tfc (default) or lenet5")
    p.add_argument("--bn", action="store_true", help="the model with batch norm")
    p.add_argument("--dataset", default=None,
                   help="mnist (default), fashion-mnist, cifar10, synthetic")
    p.add_argument("--data-dir", default=None, help="where the dataset is (default "
                   "$TINYPROJ_DATA, else ../shared/datasets, else datasets/)")
    p.add_argument("--protocol", default="clean", choices=["clean", "train-at-sigma"],
                   help="clean (default): walk cleanly trained network(s); train-at-sigma: "
                        "the authors' noisy training, one network per (site, sigma, seed) "
                        "trained and tested at that sigma")
    p.add_argument("--noise", default="additive",
                   help="additive (default) | multiplicative | combined[:ratio=R] (combined "
                        "multiplies then adds; combined:ratio=R,order=add-mul adds first)")
    p.add_argument("--sigmas", default=None,
                   help="comma-separated noise levels >= 0 (default: a half-decade log grid, "
                        "additive 1e-2..1e10, multiplicative 1e-3..1e3, combined 1e-2..1e4); "
                        "with 0 in it the grid is linear: mu is interpolated in sigma, not "
                        "log sigma")
    p.add_argument("--grid", default=None, metavar="NAME",
                   help="a preset sigma grid of the authors instead of --sigmas: "
                        + _grid_names())
    p.add_argument("--sites", default="each",
                   help="each (one site at a time, default), all (every site at once), "
                        "all-no-bn (every site but those after batch norm: the authors' "
                        "BN-noNoise), or names/indices separated by commas (e.g. input,relu2)")
    p.add_argument("--bn-protocol", default="running", choices=["running", "reestimate"],
                   help="batch norm under noise: keep the trained statistics (running, "
                        "Walking Noise) or re-estimate them under the noise (Merolla)")
    p.add_argument("--bn-batches", type=int, default=20,
                   help="training batches to re-estimate batch norm (reestimate; default 20)")
    p.add_argument("--repeats", type=int, default=1,
                   help="average N noisy executions per evaluation (effective sigma / sqrt N)")
    p.add_argument("--repeat-at", default=None, choices=["network", "site"],
                   help="where --repeats averages: network (rerun the whole network, "
                        "average the scores; default) or site (average N draws at each noisy "
                        "site, as the authors)")
    p.add_argument("--site-repeats", default=None, metavar="N1,N2,...",
                   help="one N per noise site in site order (the authors' N per layer); "
                        "implies --repeat-at site")
    p.add_argument("--seeds", default="0",
                   help="seeds separated by commas: one trained model and one set of draws each")
    p.add_argument("--setup", default=None, choices=list(_setups()),
                   help="the training set-up: authors (default: the Walking Noise authors' for "
                        "the model and dataset, PyTorch init and biases, cosine per epoch, "
                        "their epochs, normalisation and crop+flip) or legacy (tinyproj's "
                        "earlier: Glorot, cosine per step, 5 epochs; the committed "
                        "results/wn-mnist-train-at-sigma*)")
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs (default: the set-up's; authors: MNIST mlp_tfc 100, "
                        "lenet5 50; Fashion-MNIST 250/200; SVHN 300/200; CIFAR-10 200/300; "
                        "legacy: 5)")
    p.add_argument("--train-subset", type=int, default=None,
                   help="train on the first N training images (quick runs)")
    p.add_argument("--test-subset", type=int, default=None,
                   help="score the first N test images (faster, noisier)")
    p.add_argument("--train-noise", type=float, default=None, metavar="SIGMA",
                   help="train with this noise (same kind) at the walked site, one network "
                        "per site (or one for --sites all)")
    p.add_argument("--clamp", type=float, default=None, metavar="C",
                   help="with --train-noise or --protocol train-at-sigma: clip weights to "
                        "[-C, C] after every step")
    p.add_argument("--train-only", action="store_true",
                   help="train the model(s) and stop (before sharding a walk)")
    p.add_argument("--shard", default=None,
                   help="i/n: do grid points i, i+n, ... only (0 <= i < n)")
    p.add_argument("--restart", action="store_true",
                   help="move the walk's files (walk.jsonl, dynamics.jsonl and their shards) "
                        "to RUN_DIR/replaced/<time>/ and walk afresh (for rows of another "
                        "network)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--quiet", action="store_true",
                   help="print nothing but errors (no progress bars either)")
    p.set_defaults(func=cmd_walk)
