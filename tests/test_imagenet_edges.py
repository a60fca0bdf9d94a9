"""The ImageNet path (tinyproj/data/imagenet*.py, decode_pool.py, process_pool.py, reproduce):
behaviour that mutation testing found unguarded (part A) and the defects a hostile user's
audit found (part B: labels, the shrunk copy's classes, undecodable small images, a flat
val/, a broken mark). Fast: tmp_path only, tiny JPEGs, no dataset."""
import math

import numpy as np
import pytest

from tinyproj.cli import main
from tinyproj.data import imagenet_decode as dec
from tinyproj.data.decode_pool import DecodePool
from tinyproj.data.imagenet import ImageFolder
from tinyproj.data.imagenet_shrink import shrink_image, shrink_imagenet
from tinyproj.data.process_pool import default_workers
from tinyproj.data.sources import ArraySource
from tinyproj.errors import UserError
from tinyproj.runs.evaluation import error_rates

from _helpers import FixedScores  # noqa: E402

Image = pytest.importorskip("PIL.Image")


def _quiet(*a, **k):
    pass


def _jpeg(path, w, h, seed=0, quality=92, smooth=20):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (h // smooth + 1, w // smooth + 1, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(base).resize((w, h), Image.BILINEAR).save(path, quality=quality)
    return path


def _imagenet(root, classes=("n01", "n02"), val_classes=None, size=(300, 280)):
    for split, names in (("train", classes), ("val", val_classes or classes)):
        for k, c in enumerate(names):
            for i in range(2):
                _jpeg(root / "imagenet" / split / c / f"{c}_{i}.JPEG", *size, seed=10 * k + i)
    return root


# ---- Part A: mutation killers ---------------------------------------------------------------
def test_draft_decoding_keeps_at_least_the_needed_side_and_no_more_than_twice(tmp_path,
                                                                             monkeypatch):
    """open_rgb's draft: the strongest 1/2^k scale that still keeps >= need pixels (kills a
    draft one step too far, which the 'stays close' test on a smooth image lets through)."""
    seen = []
    real = dec.shorter_side_to
    monkeypatch.setattr(dec, "shorter_side_to", lambda img, side: seen.append(img.size)
                        or real(img, side))
    p = _jpeg(tmp_path / "big.JPEG", 2000, 1500)
    assert dec.decode_center(p, 256, 227).shape == (3, 227, 227)
    assert 256 <= min(seen[-1]) < 2 * 256, seen           # 2000x1500 at 1/4: 500x375
    assert seen[-1] == (500, 375)


def test_training_decode_keeps_the_smallest_box_at_least_crop_pixels_wide(tmp_path,
                                                                          monkeypatch):
    """decode_random decodes at a scale where a box of 8 % area and ratio 3/4 still spans the
    crop: the image random_box sees has shorter side >= crop / sqrt(0.08 * 3/4) (927)."""
    sizes = []
    real = dec.random_box
    monkeypatch.setattr(dec, "random_box", lambda w, h, rng: sizes.append((w, h))
                        or real(w, h, rng))
    p = _jpeg(tmp_path / "huge.JPEG", 2000, 1900, smooth=40)
    dec.decode_random(p, 0, 0, 0)
    need = math.ceil(227 / math.sqrt(dec.SCALE[0] * dec.RATIO[0]))
    assert min(sizes[-1]) >= need and sizes[-1] == (1000, 950)


def test_random_box_reaches_every_position_including_the_right_and_bottom_edge():
    rng = np.random.default_rng(0)
    corners = {dec.random_box(10, 10, rng, scale=(0.81, 0.81), ratio=(1, 1))[:2]
               for _ in range(200)}                     # a 9x9 box in a 10x10 image
    assert corners == {(0, 0), (0, 1), (1, 0), (1, 1)}


def test_a_drawn_ratio_is_width_over_height():
    class Draws:                                        # area 1/2, log-ratio at its top
        def __init__(self):
            self.n = 0

        def uniform(self, lo, hi):
            self.n += 1
            return 0.5 if self.n == 1 else hi

        def integers(self, lo, hi):
            return lo
    _, _, bw, bh = dec.random_box(400, 400, Draws())
    assert bw / bh == pytest.approx(4 / 3, rel=0.02) and bw > bh


def test_fallback_box_of_a_tall_image_is_the_full_width_at_ratio_three_quarters():
    class Never:
        def uniform(self, lo, hi):
            return hi

        def integers(self, lo, hi):
            return lo
    left, top, bw, bh = dec.random_box(100, 1000, Never())
    assert (bw, bh) == (100, round(100 / dec.RATIO[0])) and top == (1000 - bh) // 2


def test_scale_and_ratio_are_the_documented_ranges_and_small_boxes_occur():
    assert dec.SCALE == (0.08, 1.0) and dec.RATIO == pytest.approx((3 / 4, 4 / 3))
    rng = np.random.default_rng(1)
    areas = [bw * bh / 250000 for _, _, bw, bh in (dec.random_box(500, 500, rng)
                                                    for _ in range(500))]
    assert min(areas) < 0.1 and max(areas) > 0.9


@pytest.mark.parametrize("w, h", [(350, 300), (300, 350), (513, 257), (1000, 999)])
def test_shorter_side_to_rounds_like_the_plain_test_transform(w, h):
    img = Image.new("RGB", (w, h))
    out = dec.shorter_side_to(img, 256)
    assert min(out.size) == 256
    assert out.size == (max(256, round(w * 256 / min(w, h))), max(256, round(h * 256 / min(w, h))))


def test_an_image_of_exactly_side_is_copied_byte_for_byte(tmp_path):
    src = _jpeg(tmp_path / "a.JPEG", 300, 256)
    assert shrink_image(src, tmp_path / "b.JPEG", 256, 90) == "copied"
    assert (tmp_path / "b.JPEG").read_bytes() == src.read_bytes()


def test_a_shrunk_folder_is_refused_for_another_quality_or_source(tmp_path):
    src, out = _imagenet(tmp_path / "src", size=(600, 520)), tmp_path / "out"
    shrink_imagenet(src, out, workers=0, log=_quiet)
    with pytest.raises(UserError, match="quality") as err:
        shrink_imagenet(src, out, quality=80, workers=0, log=_quiet)
    assert err.value.flag == "--out"
    other = _imagenet(tmp_path / "other", size=(600, 520))
    with pytest.raises(UserError, match="source"):
        shrink_imagenet(other, out, workers=0, log=_quiet)


def test_pool_chunks_of_several_images_keep_their_order(tmp_path):
    """16 distinct images with one worker: chunks of 4, each written in order."""
    paths = [_jpeg(tmp_path / f"{i:02d}.JPEG", 48, 40, seed=i, smooth=4) for i in range(16)]
    serial = np.stack([dec.decode_center(p, 40, 32) for p in paths])
    with DecodePool(1) as pool:
        np.testing.assert_array_equal(pool.center(paths, 40, 32), serial)
        rand = np.stack([dec.decode_random(p, 3, 1, i, 32) for i, p in enumerate(paths)])
        np.testing.assert_array_equal(pool.random(paths, 3, 1, range(16), 32), rand)


def test_default_workers_is_capped_at_16(monkeypatch):
    import os
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert default_workers() == 16
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert default_workers() == 3


def test_top5_ties_count_in_the_labels_favour():
    scores = np.zeros((4, 10), np.float32)              # every class ties with the label
    scores[3, 1:6] = 1.0                                # 5 classes beat the label outright
    src = ArraySource(np.arange(4, dtype=np.float32)[:, None], np.zeros(4, np.int64))
    assert error_rates(FixedScores(scores), src, batch_size=4, top=(1, 5))[5] == 1 / 4


def test_reproduce_alexnet_checks_imagenet_before_writing_anything(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    out = tmp_path / "repro"
    assert main(["reproduce", "alexnet", "--out", str(out), "--data-dir", str(data)]) == 2
    assert not out.exists()
    script = tmp_path / "a.sh"
    assert main(["reproduce", "alexnet", "--out", str(out), "--data-dir", str(data),
                 "--slurm", str(script)]) == 2
    assert not script.exists() and not out.exists()
    assert "imagenet" in capsys.readouterr().err.lower()


# ---- Part B: what a hostile user's audit found ---------------------------------------------
def test_val_labels_follow_the_training_classes_when_val_lacks_one(tmp_path):
    from tinyproj.runs.build import build_data
    from tinyproj.runs.config import make_config
    root = _imagenet(tmp_path / "d", classes=("n01", "n02", "n03"),
                     val_classes=("n01", "n03"))
    cfg = make_config(model="alexnet_bn", dataset="imagenet", data_dir=str(root), out=None)
    train_src, _, test_src, _, _ = build_data(cfg)
    for path, label in test_src.folder.samples:
        assert label == train_src.folder.class_to_idx[path.parent.name]


def test_shrunk_copy_keeps_the_sources_class_numbering(tmp_path):
    src = _imagenet(tmp_path / "src", classes=("n01", "n03"))
    (src / "imagenet/train/n02").mkdir()                 # a class with no images (yet)
    shrink_imagenet(src, tmp_path / "out", workers=0, log=_quiet)
    with pytest.warns(UserWarning):
        before = ImageFolder(src / "imagenet/train")
    after = ImageFolder(tmp_path / "out/imagenet/train")
    assert after.class_to_idx == before.class_to_idx


def test_a_truncated_small_jpeg_is_named_by_prepare_imagenet(tmp_path):
    src = _imagenet(tmp_path / "src", size=(200, 150))
    bad = src / "imagenet/train/n01/n01_0.JPEG"          # 200x150: copied, never decoded
    bad.write_bytes(bad.read_bytes()[:len(bad.read_bytes()) // 2])
    with pytest.raises(UserError, match="n01_0.JPEG"):
        shrink_imagenet(src, tmp_path / "out", workers=0, log=_quiet)


def test_a_mark_that_is_not_a_json_object_is_a_user_error(tmp_path):
    src, out = _imagenet(tmp_path / "src"), tmp_path / "out"
    (out / "imagenet").mkdir(parents=True)
    (out / "imagenet/.tinyproj-shrink.json").write_text("[]")
    with pytest.raises(UserError) as err:
        shrink_imagenet(src, out, workers=0, log=_quiet)
    assert err.value.flag == "--out"


def test_a_source_whose_val_has_no_class_folders_is_refused(tmp_path):
    src = _imagenet(tmp_path / "src")
    val = src / "imagenet/val"
    for f in list(val.glob("*/*.JPEG")):
        f.rename(val / f.name)
    for d in [d for d in val.iterdir() if d.is_dir()]:
        d.rmdir()
    with pytest.raises(UserError):
        shrink_imagenet(src, tmp_path / "out", workers=0, log=_quiet)


def test_a_val_class_the_training_set_lacks_is_refused_and_hidden_folders_are_no_class(
        tmp_path):
    from tinyproj.data.files import DatasetError
    from tinyproj.runs.build import build_data
    from tinyproj.runs.config import make_config
    root = _imagenet(tmp_path / "d", classes=("n01", "n02"))
    (root / "imagenet/train/.ipynb_checkpoints").mkdir()      # not a class: labels unshifted
    cfg = make_config(model="alexnet_bn", dataset="imagenet", data_dir=str(root), out=None)
    train_src, _, test_src, _, classes = build_data(cfg)
    assert train_src.folder.classes == ["n01", "n02"] and classes == 2
    _jpeg(root / "imagenet/val/n09/x.JPEG", 300, 280)
    with pytest.raises(DatasetError, match="n09"):
        build_data(cfg)


@pytest.mark.parametrize("flag", ["train_subset", "test_subset"])
def test_subsets_are_refused_for_imagenet_not_ignored(flag):
    """The first N images of a folder set are its first class: the flags would do nothing
    useful, and build_data used to ignore them without a word."""
    from tinyproj.runs.config import make_config, validate
    with pytest.raises(UserError, match="does not apply to imagenet") as err:
        validate(make_config(model="alexnet_bn", dataset="imagenet", out=None, **{flag: 8}))
    assert err.value.flag == "--" + flag.replace("_", "-")


def test_an_image_gone_since_the_listing_is_named_as_gone_not_as_undecodable(tmp_path):
    folder = ImageFolder(_imagenet(tmp_path / "d") / "imagenet/train", crop=224)
    path = folder.samples[0][0]
    path.unlink()
    with pytest.raises(ValueError, match="is gone"):
        folder[0]
    with pytest.raises(ValueError, match="is gone"):
        dec.decode_center(path, 256, 224)
    path.write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="could not decode .* delete or replace"):
        folder[0]


def test_prepare_imagenet_refuses_an_absurd_worker_count_before_writing(tmp_path):
    src, out = _imagenet(tmp_path / "src"), tmp_path / "out"
    with pytest.raises(UserError, match="--workers must be between 0 and") as err:
        shrink_imagenet(src, out, workers=100000, log=_quiet)
    assert err.value.flag == "--workers" and not out.exists()


@pytest.mark.parametrize("flag", ["--train-subset", "--test-subset"])
def test_reproduce_alexnet_refuses_subsets_before_writing(tmp_path, capsys, flag):
    out = tmp_path / "r"
    assert main(["reproduce", "alexnet", "--out", str(out), "--data-dir", str(tmp_path),
                 flag, "100", "--dry-run"]) == 2
    assert flag in capsys.readouterr().err and not out.exists()
