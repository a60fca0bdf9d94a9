"""ImageNet's transforms (tinyproj/data/imagenet_decode.py) and their decoding pool
(tinyproj/data/decode_pool.py: shared-memory batches, prefetching) on JPEGs the tests write."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyproj import backend
from tinyproj.data.imagenet import load_image
from tinyproj.data.decode_pool import DecodePool
from tinyproj.data.imagenet_decode import (RATIO, SCALE, decode_center,
                                           decode_random, random_box)

Image = pytest.importorskip("PIL.Image")
ROOT = Path(__file__).resolve().parents[1]


def _jpeg(path, w, h, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (h // 20 + 1, w // 20 + 1, 3), dtype=np.uint8)
    Image.fromarray(base).resize((w, h), Image.BILINEAR).save(path, quality=92)
    return path


def test_center_matches_the_plain_decoder_when_no_draft_applies(tmp_path):
    p = _jpeg(tmp_path / "a.JPEG", 500, 375)
    np.testing.assert_array_equal(decode_center(p, 256, 227), load_image(p, 256, 227))


def test_draft_decoding_of_a_large_image_stays_close_to_full_decoding(tmp_path):
    p = _jpeg(tmp_path / "big.JPEG", 2000, 1500)
    fast = decode_center(p, 256, 227).astype(float)
    full = load_image(p, 256, 227).astype(float)
    assert fast.shape == full.shape == (3, 227, 227)
    assert np.abs(fast - full).mean() < 4.0          # of 255: a smooth image, decoded at 1/4


def test_random_box_respects_bounds_scale_and_ratio():
    rng = np.random.default_rng(0)
    scales, ratios = [], []
    for _ in range(3000):
        left, top, bw, bh = random_box(500, 375, rng)
        assert 0 <= left and left + bw <= 500 and 0 <= top and top + bh <= 375
        scales.append(bw * bh / (500 * 375))
        ratios.append(bw / bh)
    assert SCALE[0] * 0.95 <= min(scales) and max(scales) <= 1.0
    assert RATIO[0] * 0.97 <= min(ratios) and max(ratios) <= RATIO[1] * 1.03
    # log-uniform ratio: symmetric about 0 on a square image (on 500×375 the tall boxes of
    # large area do not fit and are redrawn, so wide ones are a little more frequent)
    logs = [math.log(bw / bh) for _, _, bw, bh in (random_box(400, 400, rng) for _ in range(3000))]
    assert abs(np.median(logs)) < 0.03


def test_random_box_falls_back_to_a_centred_box_of_a_permitted_ratio():
    class Never:                                      # draws that never fit the image
        def uniform(self, lo, hi):
            return hi
        def integers(self, lo, hi):
            return lo
    left, top, bw, bh = random_box(1000, 100, Never())
    assert (bw, bh) == (round(100 * RATIO[1]), 100) and left == (1000 - bw) // 2


def test_random_decode_is_a_function_of_seed_epoch_index_and_flips_half_the_time(tmp_path):
    p = _jpeg(tmp_path / "a.JPEG", 500, 375)
    a = decode_random(p, seed=1, epoch=0, index=7)
    assert a.shape == (3, 227, 227) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, decode_random(p, 1, 0, 7))
    assert not np.array_equal(a, decode_random(p, 1, 1, 7))
    flips = [np.random.default_rng((0, 0, i)).random() for i in range(2000)]
    assert 0.46 < np.mean(np.array(flips) < 0.5) < 0.54


def test_random_decode_resizes_its_box_and_mirrors_when_drawn(tmp_path, monkeypatch):
    from tinyproj.data import imagenet_decode
    p = _jpeg(tmp_path / "a.JPEG", 300, 200)
    box = (40, 10, 150, 120)
    monkeypatch.setattr(imagenet_decode, "random_box", lambda w, h, rng: box)
    img = Image.open(p).convert("RGB").resize((227, 227), Image.BILINEAR,
                                             box=(40, 10, 190, 130))
    expect = np.asarray(img).transpose(2, 0, 1)
    seen = set()
    for index in range(8):
        flip = np.random.default_rng((0, 0, index)).random() < 0.5   # the draw after the box
        got = decode_random(p, 0, 0, index)
        np.testing.assert_array_equal(got, expect[:, :, ::-1] if flip else expect)
        seen.add(flip)
    assert seen == {True, False}


def test_pool_equals_serial_and_names_a_corrupt_file(tmp_path):
    paths = [_jpeg(tmp_path / f"{i}.JPEG", 320 + 8 * i, 240, seed=i) for i in range(6)]
    with DecodePool(0) as serial, DecodePool(2) as pool:
        np.testing.assert_array_equal(serial.center(paths), pool.center(paths))
        np.testing.assert_array_equal(serial.random(paths, 3, 2, range(6)),
                                      pool.random(paths, 3, 2, range(6)))
    bad = tmp_path / "bad.JPEG"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="bad.JPEG"):
        decode_center(bad)
    with pytest.raises(ValueError, match="workers"):
        DecodePool(-1)


RECORDING = """
from multiprocessing import shared_memory as _shared_memory
from types import SimpleNamespace as _Namespace
from tinyproj.data import decode_pool as _decode_pool

CREATED = []                 # the names of the blocks the pools create


def _recording(*args, **kwargs):
    block = _shared_memory.SharedMemory(*args, **kwargs)
    if kwargs.get("create"):
        CREATED.append(block.name)
    return block


_decode_pool.shared_memory = _Namespace(SharedMemory=_recording)
"""


@pytest.fixture
def created_blocks(monkeypatch):
    """The names of the shared-memory blocks DecodePool creates during the test.

    Only these are checked afterwards: a diff of all of /dev/shm would also see the blocks and
    semaphores that other pytest-xdist workers' process pools create meanwhile."""
    from types import SimpleNamespace

    from tinyproj.data import decode_pool
    namespace = {}
    exec(RECORDING, namespace)                     # the subprocess test runs the same lines
    monkeypatch.setattr(decode_pool, "shared_memory",
                        SimpleNamespace(SharedMemory=namespace["_recording"]))
    return namespace["CREATED"]


def assert_unlinked(names):
    """Every block named is gone from /dev/shm (Linux; elsewhere nothing to look at)."""
    assert names, "no shared-memory block was created: nothing was checked"
    if os.path.isdir("/dev/shm"):
        assert [n for n in names if os.path.exists(os.path.join("/dev/shm", n))] == []


def test_pool_batches_of_any_size_and_crop_equal_serial_and_leave_no_shared_memory(
        tmp_path, created_blocks):
    """3, 7, then 2 images, at two crops: the shared block grows, then is reused; each result
    is the caller's own copy (a later batch does not change it)."""
    paths = [_jpeg(tmp_path / f"{i}.JPEG", 300 + 6 * i, 230, seed=i) for i in range(7)]
    with DecodePool(0) as serial, DecodePool(2) as pool:
        got, want = [], []
        for n, resize, crop in ((3, 256, 227), (7, 256, 227), (2, 256, 227), (7, 110, 96),
                                (3, 110, 96)):
            for p in (pool, serial):
                (got if p is pool else want).extend([
                    p.center(paths[:n], resize, crop), p.random(paths[:n], 5, 1, range(n), crop)])
        for a, b in zip(got, want):
            assert a.dtype == np.uint8 and a.flags.owndata
            np.testing.assert_array_equal(a, b)
    assert_unlinked(created_blocks)


def test_pool_names_a_corrupt_file_stays_usable_and_unlinks_its_block(tmp_path, created_blocks):
    paths = [_jpeg(tmp_path / f"{i}.JPEG", 320, 240, seed=i) for i in range(4)]
    bad = tmp_path / "bad.JPEG"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="bad.JPEG"):
        with DecodePool(2) as pool:
            with pytest.raises(ValueError, match="bad.JPEG"):
                pool.random(paths[:2] + [bad] + paths[2:], 0, 0, range(5))
            np.testing.assert_array_equal(pool.center(paths), DecodePool(0).center(paths))
            pool.center([bad, *paths])              # an error that leaves the `with`
    assert_unlinked(created_blocks)


def test_an_unclosed_pool_unlinks_its_block_and_no_tracker_warning_is_printed(tmp_path):
    """At garbage collection and at the end of the program (weakref.finalize); and closing
    prints no resource_tracker warning (the workers attach without a second owner)."""
    paths = [str(_jpeg(tmp_path / f"{i}.JPEG", 320, 240, seed=i)) for i in range(3)]
    script = RECORDING + f"""
import gc
import json
from tinyproj.data.decode_pool import DecodePool
if __name__ == "__main__":
    paths = {paths!r}
    with DecodePool(2) as pool:
        pool.center(paths); pool.center(paths[:1], crop=64)
    dropped = DecodePool(1); dropped.center(paths); del dropped; gc.collect()
    kept = DecodePool(1); kept.random(paths, 0, 0, range(3))
    print(json.dumps(CREATED))       # kept's block is unlinked after this, at the exit
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert_unlinked(json.loads(done.stdout.splitlines()[-1]))


def _image_folder(root, per_class=3):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("n01", "n02"):
            d = root / "imagenet" / split / cls
            d.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
                Image.fromarray(pixels).resize((320, 240)).save(d / f"{i}.JPEG")
    return root


def test_folder_source_draws_per_epoch_for_training_and_centre_crops_otherwise(tmp_path):
    from tinyproj.data import ImageFolder
    from tinyproj.data.imagenet import normalize_imagenet
    from tinyproj.data.sources import FolderSource
    root = _image_folder(tmp_path) / "imagenet" / "train"
    train = FolderSource(ImageFolder(root, crop=227), train=True, seed=3, workers=0)
    plain = FolderSource(ImageFolder(root, crop=227))
    assert train.per_epoch and not plain.per_epoch
    a, y = train.batch([0, 4], epoch=1)
    expect = np.stack([decode_random(train.folder.samples[i][0], 3, 1, i) for i in (0, 4)])
    np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(normalize_imagenet(expect)))
    assert backend.to_numpy(y).tolist() == [0, 1]
    assert not np.array_equal(backend.to_numpy(a), backend.to_numpy(train.batch([0, 4], epoch=2)[0]))
    np.testing.assert_array_equal(backend.to_numpy(train.batch([0, 4])[0]),
                                  backend.to_numpy(plain.batch([0, 4])[0]))


def test_imagenet_training_steps_see_the_random_crops_of_their_epoch_and_index(tmp_path,
                                                                              monkeypatch):
    """The loop's training pixels are decode_random(path, seed, epoch, index) of the images at
    order[b·B:(b+1)·B], normalized — what FolderSource(train=True) decoded before the per-epoch
    mechanism moved into the sources (data/sources.py) — and the centre crops at evaluation."""
    from tinyproj.data import ImageFolder
    from tinyproj.data.imagenet import normalize_imagenet
    from tinyproj.runs import training
    from tinyproj.runs.config import make_config
    from training_spy import record_training
    data = _image_folder(tmp_path)
    orders, steps = record_training(monkeypatch)
    cfg = make_config(model="alexnet_bn", dataset="imagenet", data_dir=str(data), width=0.0625,
                      batch_size=4, optimizer="sgd", lr=0.01, loss="cross_entropy", val_size=0,
                      test_projections=["none"], epochs=2, seed=2, bn_reestimate=False)
    training.train(cfg, progress=False, log=lambda *a: None)
    folder = ImageFolder(data / "imagenet" / "train", crop=227)
    expected = [normalize_imagenet(np.stack([decode_random(folder.samples[int(i)][0], 2, epoch,
                                                           int(i)) for i in order[b:b + 4]]))
                for epoch, order in enumerate(orders) for b in (0, 4)]
    assert len(steps) == len(expected) == 4 and len(steps[1][0]) == 2     # 6 images: 4 + 2
    for (got, _), want in zip(steps, expected):
        np.testing.assert_array_equal(got, backend.to_numpy(want))


def test_imagenet_training_with_random_crops_resumes_to_the_same_weights(tmp_path):
    from tinyproj.cli import main
    from tinyproj.runs.folder import load_run
    data = _image_folder(tmp_path)
    flags = ["--model", "alexnet_bn", "--dataset", "imagenet", "--data-dir", str(data),
             "--width", "0.0625", "--batch-size", "3", "--optimizer", "sgd", "--lr", "0.01",
             "--loss", "cross_entropy", "--val-size", "0", "--test-projections", "none",
             "--no-progress"]
    assert main(["train", *flags, "--epochs", "2", "--out", str(tmp_path / "straight")]) == 0
    assert main(["train", *flags, "--epochs", "1", "--out", str(tmp_path / "halves")]) == 0
    assert main(["train", "--out", str(tmp_path / "halves"), "--resume", "--epochs", "2",
                 "--no-progress"]) == 0
    a, b = load_run(tmp_path / "straight").model, load_run(tmp_path / "halves").model
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


def test_a_script_without_a_main_guard_can_use_the_pool_and_is_not_run_again(tmp_path):
    """A lesson is a script with no ``if __name__ == "__main__"``: the pool's forkserver
    workers must not import it again (data/process_pool.py); its top level runs once."""
    _jpeg(tmp_path / "a.JPEG", 300, 260)
    script = tmp_path / "lesson_like.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from tinyproj.data.decode_pool import DecodePool\n"
        "print('top level ran')\n"
        f"with DecodePool(2) as pool:\n"
        f"    batch = pool.center([{str(tmp_path / 'a.JPEG')!r}] * 4)\n"
        "print('batch', batch.shape)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("top level ran") == 1
    assert "batch (4, 3, 227, 227)" in done.stdout


def test_a_started_batch_is_the_same_batch_and_a_dropped_one_says_so(tmp_path):
    paths = [_jpeg(tmp_path / f"{i}.JPEG", 320, 240, seed=i) for i in range(5)]
    bad = tmp_path / "bad.JPEG"
    bad.write_bytes(b"not a jpeg")
    serial = DecodePool(0).random(paths, 3, 1, range(5))
    with DecodePool(2) as pool:
        pending = pool.start_random(paths, 3, 1, range(5))
        np.testing.assert_array_equal(pending.result(), serial)
        with pytest.raises(RuntimeError, match="already taken"):
            pending.result()
        dropped = pool.start_center([bad, *paths])          # its error is never raised...
        kept = pool.start_random(paths, 3, 1, range(5))     # ...starting this one drops it
        np.testing.assert_array_equal(kept.result(), serial)
        with pytest.raises(RuntimeError, match="dropped"):
            dropped.result()


def test_folder_source_prefetch_serves_the_same_pixels_and_recovers_from_a_wrong_guess(
        tmp_path):
    from tinyproj.data import ImageFolder
    from tinyproj.data.sources import FolderSource
    folder = ImageFolder(_image_folder(tmp_path, per_class=4) / "imagenet" / "train", crop=96)
    plain, ahead = FolderSource(folder, train=True, seed=1, workers=0), \
        FolderSource(folder, train=True, seed=1, workers=2)
    try:
        for batch, (idx, epoch) in enumerate((([0, 5, 2], 0), ([7, 1], 0), ([3, 4, 6], 1))):
            ahead.prefetch(idx, epoch=epoch, minibatch=batch)
            for a, b in zip(ahead.batch(idx, epoch=epoch, minibatch=batch),
                            plain.batch(idx, epoch=epoch, minibatch=batch)):
                np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))
        assert ahead.prefetched == 3
        ahead.prefetch([1, 2], epoch=2)                     # a guess the loop does not take
        for a, b in zip(ahead.batch([6, 0], epoch=2), plain.batch([6, 0], epoch=2)):
            np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))
        ahead.prefetch([1, 2], epoch=3)                     # another epoch: other crops
        for a, b in zip(ahead.batch([1, 2], epoch=2), plain.batch([1, 2], epoch=2)):
            np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))
        assert ahead.prefetched == 3
    finally:
        ahead.close()


def test_the_training_loop_prefetches_every_minibatch_but_an_epochs_first(tmp_path,
                                                                        monkeypatch):
    from tinyproj.data import sources
    from tinyproj.runs import training
    from tinyproj.runs.config import make_config
    made = []
    original = sources.FolderSource.__init__

    def remember(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self)
    monkeypatch.setattr(sources.FolderSource, "__init__", remember)
    data = _image_folder(tmp_path, per_class=4)                 # 8 images: batches 3 + 3 + 2
    cfg = make_config(model="alexnet_bn", dataset="imagenet", data_dir=str(data), width=0.0625,
                      batch_size=3, optimizer="sgd", lr=0.01, loss="cross_entropy", val_size=0,
                      test_projections=["none"], epochs=2, seed=0, bn_reestimate=False)
    training.train(cfg, progress=False, log=lambda *a: None)
    train_source = next(s for s in made if s.train)
    assert train_source.prefetched == 2 * 2                     # batches 2 and 3 of 2 epochs


def test_evaluation_and_bn_reestimation_prefetch_their_next_batch_with_the_same_results(
        tmp_path):
    from tinyproj import models
    from tinyproj.data import ImageFolder
    from tinyproj.data.sources import FolderSource
    from tinyproj.runs.evaluation import error_rates, reestimate_batchnorm
    folder = ImageFolder(_image_folder(tmp_path, per_class=4) / "imagenet" / "val", crop=227)
    model = models.build("alexnet_bn", input_shape=(3, 227, 227), num_classes=2, width=0.0625,
                         rng=np.random.default_rng(0))
    here, ahead = FolderSource(folder, workers=0), FolderSource(folder, workers=2)
    try:
        want = error_rates(model, here, batch_size=3, top=(1, 2))
        assert error_rates(model, ahead, batch_size=3, top=(1, 2)) == want
        assert ahead.prefetched == 2                           # 8 images: 3 + 3 + 2
        stats = []
        for source in (here, ahead):
            reestimate_batchnorm(model, source, num_batches=3, batch_size=3,
                                 rng=np.random.default_rng(4))
            stats.append([backend.to_numpy(m.running_mean).copy() for m in model.modules()
                          if hasattr(m, "running_mean")])
        for a, b in zip(*stats):
            np.testing.assert_array_equal(a, b)
        assert ahead.prefetched == 2 + 2
    finally:
        ahead.close()
