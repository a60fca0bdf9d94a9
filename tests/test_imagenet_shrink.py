"""`tinyproj prepare-imagenet` (tinyproj/data/imagenet_shrink.py) on a small ImageNet-like folder
of JPEGs the tests write: layout and labels kept, sizes, the test transform's pixels, resuming,
and every refusal before anything is written."""
import io
import json

import numpy as np
import pytest

from tinyproj.cli import main
from tinyproj.data.imagenet import ImageFolder, locate_imagenet
from tinyproj.data.imagenet_decode import decode_center, open_rgb
from tinyproj.data.imagenet_shrink import SHRINK_MARK, shrink_imagenet
from tinyproj.errors import UserError

Image = pytest.importorskip("PIL.Image")

SIZES = ((500, 375), (375, 500), (1024, 768), (200, 150))     # the last one is already small


def _imagenet(root, seed=0):
    """root/imagenet/{train,val}/{n01,n02}/img{0..3}.JPEG, smooth random photos."""
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        for cls in ("n01", "n02"):
            folder = root / "imagenet" / split / cls
            folder.mkdir(parents=True)
            for i, (w, h) in enumerate(SIZES):
                base = rng.integers(0, 255, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
                Image.fromarray(base).resize((w, h), Image.BICUBIC).save(
                    folder / f"img{i}.JPEG", quality=90)
    return root


def _files(root):
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def _quiet(*a):
    pass


def test_same_classes_names_and_labels_shorter_side_256_small_images_copied(tmp_path):
    src, out = _imagenet(tmp_path / "src"), tmp_path / "out"
    counts = shrink_imagenet(src, out, workers=0, log=_quiet)
    assert counts == {"resized": 12, "copied": 4, "done before": 0, "failed": 0}
    assert locate_imagenet(out) == (out / "imagenet").resolve()
    for split in ("train", "val"):
        a, b = ImageFolder(src / "imagenet" / split), ImageFolder(out / "imagenet" / split)
        assert [(p.name, y) for p, y in a.samples] == [(p.name, y) for p, y in b.samples]
        for (p, _), (q, _) in zip(a.samples, b.samples):
            with Image.open(p) as big, Image.open(q) as small:
                if min(big.size) <= 256:
                    assert q.read_bytes() == p.read_bytes()      # never enlarged, untouched
                else:
                    assert small.format == "JPEG" and min(small.size) == 256
                    w, h = big.size                               # aspect ratio kept
                    assert abs(small.size[0] / small.size[1] - w / h) < 0.01


def test_the_test_transform_sees_the_originals_pixels_up_to_jpeg_reencoding(tmp_path):
    src, out = _imagenet(tmp_path / "src"), tmp_path / "out"
    shrink_imagenet(src, out, workers=0, log=_quiet)
    for name in ("img0.JPEG", "img1.JPEG", "img2.JPEG"):        # 1024x768: draft decoding
        original, shrunk = src / "imagenet/val/n01" / name, out / "imagenet/val/n01" / name
        a, b = decode_center(original), decode_center(shrunk)
        assert a.shape == b.shape == (3, 227, 227)
        # exactly decode_center's resize, then one JPEG round trip: the same pixels, so the
        # shrink's filter, rounding and draft decoding are decode_center's own
        img = open_rgb(original, 256)
        scale = 256 / min(img.size)
        img = img.resize((max(256, round(img.size[0] * scale)), max(256, round(img.size[1] *
                          scale))), Image.BILINEAR)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90)
        w, h = img.size
        left, top = (w - 227) // 2, (h - 227) // 2
        again = np.asarray(Image.open(buf).convert("RGB").crop((left, top, left + 227,
                                                                 top + 227)))
        np.testing.assert_array_equal(b, again.transpose(2, 0, 1))
        # what the round trip costs (quality 90, chroma at half resolution): a few levels of
        # 255 on these pictures of random colour blocks, a harder case than photographs
        assert np.abs(a.astype(float) - b).mean() < 8.0


def test_worker_processes_write_the_same_bytes_as_one_process(tmp_path):
    src = _imagenet(tmp_path / "src")
    shrink_imagenet(src, tmp_path / "one", workers=0, log=_quiet)
    shrink_imagenet(src, tmp_path / "two", workers=2, log=_quiet)
    one, two = tmp_path / "one" / "imagenet", tmp_path / "two" / "imagenet"
    assert _files(one) == _files(two)
    assert all((one / f).read_bytes() == (two / f).read_bytes() for f in _files(one))


def test_a_second_run_skips_what_is_done_and_clears_a_killed_runs_temporary_files(tmp_path):
    src, out = _imagenet(tmp_path / "src"), tmp_path / "out"
    shrink_imagenet(src, out, workers=0, log=_quiet)
    done = out / "imagenet/train/n01/img0.JPEG"
    stamp = done.stat().st_mtime_ns
    (out / "imagenet/train/n02/img1.JPEG").unlink()              # as if killed before it
    stale = out / "imagenet/train/n02/.img1.JPEG.tmp-4242"
    stale.write_bytes(b"half an image")
    counts = shrink_imagenet(src, out, workers=0, log=_quiet)
    assert counts == {"resized": 1, "copied": 0, "done before": 15, "failed": 0}
    assert done.stat().st_mtime_ns == stamp and not stale.exists()


def test_an_undecodable_image_is_named_the_rest_written_and_a_rerun_finishes(tmp_path):
    src, out = _imagenet(tmp_path / "src"), tmp_path / "out"
    bad = src / "imagenet/train/n02/img9.JPEG"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(UserError, match="img9.JPEG") as err:
        shrink_imagenet(src, out, workers=0, log=_quiet)
    assert "run the same command again" in str(err.value)
    assert len(_files(out / "imagenet")) == 16 + 1               # every good image, the mark
    bad.unlink()
    assert shrink_imagenet(src, out, workers=0, log=_quiet)["done before"] == 16


@pytest.mark.parametrize("kwargs, flag", [
    ({"side": 10}, "--side"), ({"quality": 0}, "--quality"), ({"workers": -1}, "--workers")])
def test_bad_settings_are_refused_before_anything_is_written(tmp_path, kwargs, flag):
    src, out = _imagenet(tmp_path / "src"), tmp_path / "out"
    with pytest.raises(UserError, match=flag):
        shrink_imagenet(src, out, log=_quiet, **kwargs)
    assert not out.exists()


def test_a_folder_of_other_files_other_settings_or_the_source_itself_is_refused(tmp_path):
    src = _imagenet(tmp_path / "src")
    foreign = tmp_path / "foreign" / "imagenet"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="did not write"):
        shrink_imagenet(src, tmp_path / "foreign", workers=0, log=_quiet)
    assert _files(foreign) == [foreign.relative_to(foreign) / "notes.txt"]
    with pytest.raises(UserError, match="overlap"):
        shrink_imagenet(src, src / "imagenet" / "train", workers=0, log=_quiet)
    out = tmp_path / "out"
    shrink_imagenet(src, out, workers=0, log=_quiet)
    mark = json.loads((out / "imagenet" / SHRINK_MARK).read_text())
    assert mark["side"] == 256 and mark["quality"] == 90
    before = {f: (out / "imagenet" / f).stat().st_mtime_ns for f in _files(out / "imagenet")}
    with pytest.raises(UserError, match="side 256 \\(now 288\\)"):
        shrink_imagenet(src, out, side=288, workers=0, log=_quiet)
    assert before == {f: (out / "imagenet" / f).stat().st_mtime_ns
                      for f in _files(out / "imagenet")}


def test_command_line(tmp_path, capsys):
    src, out = _imagenet(tmp_path / "src"), tmp_path / "out"
    assert main(["prepare-imagenet", str(src), "--out", str(out), "--workers", "0",
                 "--no-progress"]) == 0
    assert "12 resized, 4 copied" in capsys.readouterr().out
    assert main(["prepare-imagenet", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "SRC" in capsys.readouterr().err


def test_on_a_device_full_size_imagenet_gets_a_note_that_points_at_prepare_imagenet(
        tmp_path, on_standin):
    import warnings

    from tinyproj.runs.build import build_data
    from tinyproj.runs.config import make_config
    src = _imagenet(tmp_path / "src")
    shrink_imagenet(src, tmp_path / "small", workers=0, log=_quiet)

    def notes(data_dir):
        cfg = make_config(model="alexnet_bn", dataset="imagenet", data_dir=str(data_dir),
                          val_size=0)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            build_data(cfg)
        return [str(w.message) for w in seen if "prepare-imagenet" in str(w.message)]

    assert len(notes(src)) == 1 and "full-size" in notes(src)[0]
    assert notes(tmp_path / "small") == []                       # a prepare-imagenet copy
    from tinyproj import backend
    backend.use("numpy")                                         # on_standin restores it
    assert notes(src) == []                                      # the CPU: decoding keeps up
