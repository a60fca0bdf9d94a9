"""ImageNet shrunk once, so that decoding keeps up with a GPU: ``tinyproj prepare-imagenet``.

Why. The training transform decodes a whole JPEG for every image it shows. A typical
ILSVRC-2012 photo (500×375) takes about 2.3 ms to decode on one core and is then cut down to
227 × 227, so most of that work is thrown away; an AlexNet-BN step at batch 512 on an
H100/H200 wants some 6,600 images a second, more than 16 cores decode at full size. Rescaled
once so that its *shorter* side is 256 pixels (re-encoded as JPEG, quality 90), the same
image decodes in about 0.5 ms. This is also what AlexNet itself trained on: Krizhevsky et al.
(2012) rescaled every image to 256 before taking its 224-pixel crops.

What it writes::

    SRC/{train,val}/<class>/<image>   →   OUT/imagenet/{train,val}/<class>/<image>

with the same class folders and file names, so the classes, the labels and the order of the
images are the ones of SRC; train with ``--data-dir OUT``. Each image is decoded as
:func:`~tinyproj.data.imagenet_decode.decode_center` decodes it (RGB, JPEG draft decoding when
the picture is large) and resized with the same bilinear filter and rounding, so the test
transform on a shrunk image sees the same pixels as on the original up to the JPEG
re-encoding. An image whose shorter side is already ≤ ``side`` is copied byte for byte (never
enlarged).

Safety. ``OUT/imagenet/.tinyproj-shrink.json`` records the source, ``side`` and ``quality``;
the command writes only into a folder that is new, empty or carries that mark with the same
settings. Each image is written to a temporary file and moved into place, so an interrupted
run leaves only complete images, and running the same command again skips them. An image
that cannot be decoded is reported by name at the end (the others are all written); the
command then fails, and after the file is replaced or deleted a rerun finishes the rest.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..errors import UserError
from .files import atomic_write_bytes
from .imagenet import IMAGE_EXTENSIONS, IMAGENET_FOLDER, locate_imagenet
from .imagenet_decode import open_rgb, shorter_side_to    # decode_center's own steps
from .process_pool import ScriptSafePool, check_workers, default_workers

__all__ = ["SHRINK_MARK", "shrink_image", "shrink_imagenet"]

SHRINK_MARK = ".tinyproj-shrink.json"
SPLITS = ("train", "val")


def shrink_image(src: Path, dst: Path, side: int = 256, quality: int = 90) -> str:
    """Write ``src`` to ``dst`` with its shorter side at ``side`` (JPEG, ``quality``).

    Returns ``"resized"``, or ``"copied"`` when the image is already small enough (its bytes
    copied unchanged, after a full decode: a truncated file is named here, not in training).
    ``dst`` appears complete or not at all (temporary file, then rename). A file that cannot
    be decoded raises an error naming it.
    """
    from PIL import Image
    with Image.open(src) as probe:               # reads the header only
        small = min(probe.size) <= side
        if small:
            probe.load()                         # the whole file decodes, or this raises
    # a temporary name and a rename, as files.atomic_write_bytes does, but without its
    # fsync: for a million files of 30 KB that would cost more than the decoding
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    try:
        if small:
            shutil.copyfile(src, tmp)
            result = "copied"
        else:
            shorter_side_to(open_rgb(src, side), side).save(tmp, format="JPEG",
                                                            quality=quality)
            result = "resized"
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return result


def _shrink_job(job) -> tuple:
    """One image in a worker: ``(src, status, error)``, status "resized", "copied" or
    "failed" (then ``error`` says why)."""
    src, dst, side, quality = job
    try:
        return src, shrink_image(Path(src), Path(dst), side, quality), None
    except Exception as err:                     # reported by name at the end, not fatal here
        return src, "failed", f"{type(err).__name__}: {err}"


def _classes(root: Path) -> list:
    """The class folders of ``root`` as ImageFolder numbers them (sorted, hidden ones left out)."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images(root: Path) -> list:
    """Every image of ``root/<class>/``, sorted."""
    found = []
    for cls in _classes(root):
        found += sorted(p for p in cls.iterdir()
                        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    return found


def _check_source(source: Path) -> None:
    """A UserError (before anything is written) for a source no run could train from: a split
    without class folders (ILSVRC's validation images come in one flat folder and must first
    be sorted into class folders) or no images at all."""
    for split in SPLITS:
        if not (source / split).is_dir() or not _classes(source / split):
            raise UserError(f"SRC: {source / split} has no class folders; tinyproj reads "
                            f"{source}/{{train,val}}/<class>/<image> (ILSVRC-2012's validation "
                            "images must first be sorted into class folders, e.g. with "
                            "its devkit's labels)", flag="SRC")
    if not any(p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS      # stops at the first
               for split in SPLITS for cls in _classes(source / split) for p in cls.iterdir()):
        raise UserError(f"SRC: no images under {source}/{{train,val}}/<class>/", flag="SRC")


def _check_out(out: Path, source: Path, side: int, quality: int) -> dict:
    """The mark for ``out`` (OUT/imagenet); a UserError if the folder is not ours to fill."""
    mark = {"source": str(source), "side": side, "quality": quality, "format": 1}
    if out.exists() and not out.is_dir():
        raise UserError(f"--out: {out} is a file; give a folder for the shrunk ImageNet",
                        flag="--out")
    if out.is_dir() and any(out.iterdir()):
        path = out / SHRINK_MARK
        if not path.is_file():
            raise UserError(f"--out: {out} already holds files that prepare-imagenet did not "
                            "write; give a new or empty folder", flag="--out")
        try:
            old = json.loads(path.read_text("utf-8"))
            if not isinstance(old, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as err:
            raise UserError(f"--out: {path} is unreadable ({err}); give a new folder",
                            flag="--out") from err
        if old != mark:
            diff = ", ".join(f"{k} {old.get(k)!r} (now {v!r})" for k, v in mark.items()
                             if old.get(k) != v)
            raise UserError(f"--out: {out} was made with other settings: {diff}; use the "
                            "same settings to continue it, or another --out", flag="--out")
    return mark


def shrink_imagenet(src, out, side: int = 256, quality: int = 90, workers: int | None = None,
                    progress: bool = False, log=print) -> dict:
    """Shrink the ImageNet folder of ``src`` into ``out/imagenet`` (see the module docstring).

    ``src``: a data folder holding ``imagenet/{train,val}``, or the ImageNet folder itself.
    ``workers``: processes (default: the CPUs this process may use, at most 16; 0 = here).
    Returns counts ``{"resized", "copied", "done before", "failed"}``; raises UserError for bad
    arguments (before anything is written) and, at the end, when images failed.
    """
    if not 64 <= int(side) <= 4096:
        raise UserError(f"--side must be between 64 and 4096 pixels, got {side}", flag="--side")
    if not 1 <= int(quality) <= 100:
        raise UserError(f"--quality must be between 1 and 100, got {quality}", flag="--quality")
    if workers is not None:
        try:
            check_workers(workers, "--workers")  # 0 to 4 per CPU (at least 16), before any file
        except ValueError as err:
            raise UserError(str(err), flag="--workers") from None
    if Path(out).exists() and not Path(out).is_dir():
        raise UserError(f"--out: {out} is a file; give a folder for the shrunk ImageNet",
                        flag="--out")
    if Path(src).is_file():
        raise UserError(f"SRC {src} is a file; give the folder that holds imagenet/{{train,val}}/",
                        flag="SRC")
    try:
        source = locate_imagenet(src).resolve()
    except FileNotFoundError as err:
        raise UserError(f"SRC {src}: no ImageNet there; expected {src}/imagenet/{{train,val}}/"
                        f"<class>/ or {src}/{{train,val}}/<class>/", flag="SRC") from err
    target = (Path(out) / IMAGENET_FOLDER).resolve()
    for a, b in ((source, target), (target, source)):
        if a == b or b in a.parents:
            raise UserError(f"--out: {target} and the source {source} overlap; write the "
                            "shrunk copy somewhere outside the source", flag="--out")
    _check_source(source)
    mark = _check_out(target, source, int(side), int(quality))
    if target.is_dir():                          # temporary files of a killed earlier run
        for split in SPLITS:
            for stale in (target / split).glob("*/.*.tmp-*"):
                stale.unlink(missing_ok=True)

    jobs, counts = [], {"resized": 0, "copied": 0, "done before": 0, "failed": 0}
    for split in SPLITS:
        for path in _images(source / split):
            dst = target / split / path.parent.name / path.name
            if dst.exists():
                counts["done before"] += 1
            else:
                jobs.append((str(path), str(dst), int(side), int(quality)))
    target.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target / SHRINK_MARK, (json.dumps(mark, indent=2) + "\n").encode())
    for split in SPLITS:                         # every class folder, with images or not:
        for cls in _classes(source / split):     # the copy numbers its classes as the source
            (target / split / cls.name).mkdir(parents=True, exist_ok=True)
    log(f"prepare-imagenet: {len(jobs)} image(s) to write, {counts['done before']} done before, "
        f"into {target}")

    failed = []
    for src_path, status, error in _run_jobs(jobs, workers, progress):
        if status == "failed":
            failed.append(f"{src_path} ({error})")
        else:
            counts[status] += 1
    counts["failed"] = len(failed)
    if failed:
        raise UserError(f"prepare-imagenet: {len(failed)} image(s) could not be decoded, e.g. "
                        f"{'; '.join(failed[:3])}. Every other image is written; replace or "
                        "delete these files and run the same command again to finish.")
    return counts


def _run_jobs(jobs, workers, progress):
    """Yield ``(src, status, error)`` for every job, in a process pool (here if workers=0)."""
    if workers is None:
        workers = default_workers()
    bar = pool = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(jobs), unit="img", desc="shrinking")
    try:
        if workers == 0 or len(jobs) < 2:
            results = map(_shrink_job, jobs)
        else:                                    # as DecodePool's: see data/process_pool.py
            pool = ScriptSafePool(workers)
            chunk = max(1, min(64, len(jobs) // (8 * workers)))
            results = pool.map(_shrink_job, jobs, chunksize=chunk)
        for item in results:
            if bar is not None:
                bar.update()
            yield item
    finally:
        if bar is not None:
            bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
