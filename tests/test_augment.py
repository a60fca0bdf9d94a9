"""Random crop (padding 4) + horizontal flip of training batches (issue 13): correctness on a
known image, the vectorized gather against the readable loop, the draws' probabilities,
determinism by (seed, epoch, batch), resume, no augmentation at evaluation, and the training
loop's batches through the one per-epoch mechanism (AugmentedSource) equal to the crop/flip of
the plain batch, on NumPy and on the device's path."""
import numpy as np
import pytest

from tinyproj import backend
from tinyproj.data.augment import CropFlip, crop_flip_reference, draws
from tinyproj.data.sources import ArraySource, AugmentedSource
from tinyproj.errors import UserError
from tinyproj.runs import training
from tinyproj.runs.build import build_augment
from tinyproj.runs.config import make_config
from training_spy import record_training


def _image():
    """One 2-channel 5×6 image whose pixel values name their place: 100·c + 10·row + col."""
    c, r, k = np.meshgrid(np.arange(2), np.arange(5), np.arange(6), indexing="ij")
    return (100 * c + 10 * r + k).astype(np.float32)[None]


def test_crop_and_flip_of_a_known_image():
    x = _image()
    aug = CropFlip(0, padding=2, fill=(-1.0, -7.0))
    same = aug.apply(x, np.array([2]), np.array([2]), np.array([False]))
    np.testing.assert_array_equal(same, x)                       # centred crop: unchanged
    corner = aug.apply(x, np.array([0]), np.array([0]), np.array([False]))
    assert corner.shape == x.shape
    np.testing.assert_array_equal(corner[0, :, 2:, 2:], x[0, :, :3, :4])   # shifted down-right
    assert (corner[0, 0, :2] == -1).all() and (corner[0, 1, :, :2] == -7).all()  # per channel
    far = aug.apply(x, np.array([4]), np.array([3]), np.array([False]))
    np.testing.assert_array_equal(far[0, :, :3, :5], x[0, :, 2:, 1:])       # shifted up-left
    assert (far[0, :, 3:] == np.array([-1, -7])[:, None, None]).all()
    flipped = aug.apply(x, np.array([2]), np.array([2]), np.array([True]))
    np.testing.assert_array_equal(flipped, x[:, :, :, ::-1])
    assert flipped[0, 1, 3, 0] == 135                            # 100·1 + 10·3 + col 5


def test_vectorized_equals_the_readable_loop():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 3, 8, 7)).astype(np.float32)
    aug = CropFlip(0, padding=4, fill=(0.5, -1.0, 2.0))
    dy, dx, fl = draws(3, 1, 2, 16, 4, True)
    np.testing.assert_array_equal(aug.apply(x, dy, dx, fl),
                                  crop_flip_reference(x, dy, dx, fl, 4, aug.fill))


def test_draws_are_uniform_offsets_and_fair_flips():
    dy, dx, fl = zip(*(draws(0, e, b, 64, 4, True) for e in range(5) for b in range(40)))
    dy, dx, fl = np.concatenate(dy), np.concatenate(dx), np.concatenate(fl)
    n = len(dy)                                                  # 12,800 draws
    for offsets in (dy, dx):
        counts = np.bincount(offsets, minlength=9)
        assert offsets.min() == 0 and offsets.max() == 8 and len(counts) == 9
        expected = n / 9
        assert ((counts - expected) ** 2 / expected).sum() < 26.1   # χ²(8), p = 0.001
    assert abs(fl.mean() - 0.5) < 4 * 0.5 / np.sqrt(n)
    assert abs(np.corrcoef(dy, dx)[0, 1]) < 4 / np.sqrt(n)
    dy, dx, fl = draws(0, 0, 0, 1000, 4, False)
    assert not fl.any()


def test_crop_only_and_flip_only():
    x = np.random.default_rng(1).standard_normal((50, 1, 6, 6)).astype(np.float32)
    flip_only = CropFlip(0, crop=False, flip=True)(x, 0, 0)
    assert all(np.array_equal(a, b) or np.array_equal(a, b[:, :, ::-1])
               for a, b in zip(flip_only, x))
    crop_only = CropFlip(0, crop=True, flip=False)(x, 0, 0)
    assert not np.array_equal(crop_only, x)
    assert np.array_equal(CropFlip(0, crop=False, flip=False)(x, 0, 0), x)


def test_same_seed_epoch_batch_same_augmentation():
    x = np.random.default_rng(2).standard_normal((32, 3, 8, 8)).astype(np.float32)
    a = CropFlip(7)
    np.testing.assert_array_equal(a(x, 3, 5), CropFlip(7)(x, 3, 5))
    assert not np.array_equal(a(x, 3, 5), a(x, 3, 6))
    assert not np.array_equal(a(x, 3, 5), a(x, 4, 5))
    assert not np.array_equal(a(x, 3, 5), CropFlip(8)(x, 3, 5))


def test_setting_is_validated_and_builds_the_fill_of_the_preprocessing():
    cfg = make_config(model="lenet5", dataset="svhn", augment="crop+flip")
    assert cfg.augment == "crop_flip"
    aug = build_augment(cfg, (3, 32, 32))
    assert aug.crop and aug.flip and aug.padding == 4
    np.testing.assert_allclose(aug.fill, [-0.4914 / 0.2023, -0.4822 / 0.1994, -0.4465 / 0.2010])
    cfg = make_config(model="lenet5", dataset="fashion-mnist", preprocess="signed", augment="flip")
    assert build_augment(cfg, (1, 28, 28)).fill.tolist() == [-1.0]
    assert build_augment(make_config(model="lenet5", dataset="mnist"), (1, 28, 28)) is None
    for bad, flag in [(dict(augment="rotate"), "--augment"),
                      (dict(model="alexnet_bn", dataset="imagenet", augment="flip"), "--augment")]:
        with pytest.raises(UserError) as err:
            make_config(**{"model": "lenet5", "dataset": "mnist", **bad})
        assert err.value.flag == flag


def _tiny_cfg(tmp_path, name, **kw):
    values = dict(dataset="synthetic", model="lenet5", train_subset=48, val_size=0,
                  batch_size=16, epochs=2, lr=0.01, loss="cross_entropy", test_subset=20,
                  test_projections=["none"], augment="crop_flip", bn_reestimate=False,
                  out=str(tmp_path / name))
    values.update(kw)
    return make_config(**values)


@pytest.mark.numpy_only
def test_resume_continues_with_the_same_augmentation(tmp_path):
    full, _ = training.train(_tiny_cfg(tmp_path, "full"), progress=False, log=lambda *a: None)
    cfg = _tiny_cfg(tmp_path, "cut")
    with pytest.raises(training.TrainingInterrupted):
        training.train(cfg, progress=False, stop_at_step=4, log=lambda *a: None)  # mid-epoch 2
    resumed, _ = training.train(_tiny_cfg(tmp_path, "cut"), resume=True, progress=False,
                                log=lambda *a: None)
    for (name, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b), err_msg=name)
    plain, _ = training.train(_tiny_cfg(tmp_path, "plain", augment="none"), progress=False,
                              log=lambda *a: None)
    assert not np.array_equal(backend.to_numpy(plain.state_dict()["conv1.weight"]),
                              backend.to_numpy(full.state_dict()["conv1.weight"]))


@pytest.fixture(params=["numpy", "standin"])
def on_backend(request):
    previous = backend.name()
    backend.use(request.param)
    yield request.param
    backend.use(previous)


def test_augmentation_only_in_training_steps(tmp_path, monkeypatch, on_backend):
    """Every training step augments its batch once, at its (epoch, batch); evaluation and
    batch-norm re-estimation never do. On the stand-in the batches come from the training
    set resident on the device (the GPU's path)."""
    calls = []
    original = CropFlip.__call__

    def spy(self, x, epoch, batch):
        calls.append((epoch, batch, len(x)))
        return original(self, x, epoch, batch)

    monkeypatch.setattr(CropFlip, "__call__", spy)
    seen = []
    orig_batch = ArraySource.batch
    monkeypatch.setattr(ArraySource, "batch", lambda self, idx, **kw: seen.append(len(idx)) or
                        orig_batch(self, idx, **kw))
    cfg = _tiny_cfg(tmp_path, "spy", bn=True, bn_reestimate=True, bn_batches=2)
    training.train(cfg, progress=False, log=lambda *a: None)
    assert calls == [(e, b, 16) for e in range(2) for b in range(3)]
    training_reads = len(calls) if on_backend == "numpy" else 0   # resident on the device
    assert len(seen) > training_reads          # evaluation read batches too, none augmented


def test_the_device_path_augments_as_the_host_path():
    """On the counting stand-in for a GPU the crop is gathered on the device (the draws are
    the host's, so both paths make the same images); no sync is needed."""
    from tinyproj import standin
    x = np.random.default_rng(3).standard_normal((8, 3, 8, 8)).astype(np.float32)
    aug = CropFlip(5, fill=(1.0, 2.0, 3.0))
    expected = aug(x, 2, 1)
    previous = backend.name()
    backend.use("standin")
    try:
        standin.reset()
        out = aug(backend.asarray(x), 2, 1)
        assert backend.is_gpu_array(out)
        assert standin.counts()["syncs"] == 0
        got = backend.to_numpy(out)
    finally:
        backend.use(previous)
    np.testing.assert_array_equal(got, expected)


def test_augmented_source_transforms_only_when_asked_for_an_epoch():
    x = np.random.default_rng(4).standard_normal((6, 3, 8, 8)).astype(np.float32)
    plain = ArraySource(x, np.arange(6))
    aug = CropFlip(9, fill=(0.0, 1.0, 2.0))
    source = AugmentedSource(plain, aug)
    assert source.per_epoch and not plain.per_epoch
    assert len(source) == 6 and source.input_shape == (3, 8, 8)
    idx = [4, 1, 3]
    xb, yb = source.batch(idx, epoch=2, minibatch=5)
    np.testing.assert_array_equal(xb, aug(plain.batch(idx)[0], 2, 5))
    assert yb.tolist() == [4, 1, 3]
    assert not np.array_equal(xb, source.batch(idx, epoch=2, minibatch=6)[0])
    np.testing.assert_array_equal(source.batch(idx)[0], plain.batch(idx)[0])   # evaluation
    with pytest.raises(ValueError, match="minibatch"):
        source.batch(idx, epoch=2)


@pytest.mark.parametrize("kind", ["crop_flip", "crop", "flip"])
def test_training_batches_are_the_crop_flip_of_the_plain_batches(tmp_path, monkeypatch,
                                                                 on_backend, kind):
    """The pixels every step trains on are what the batch-level hook made before sources
    carried the per-epoch draws: CropFlip(seed)(plain batch at order[b·B:(b+1)·B], epoch, b),
    with the epoch's order from the run's generator — including the last, partial batch, and
    on the device's path (the training set resident there, steps run eagerly)."""
    orders, steps = record_training(monkeypatch)
    cfg = _tiny_cfg(tmp_path, kind, augment=kind, train_subset=40, seed=5)
    training.train(cfg, progress=False, log=lambda *a: None)
    train_src, _, _, shape, _ = training.build_data(_tiny_cfg(tmp_path, "again", augment=kind,
                                                              train_subset=40, seed=5))
    aug = build_augment(cfg, shape)
    expected = []
    for epoch, order in enumerate(orders):
        for b in range(3):                                    # 16, 16, 8 images
            x, y = train_src.batch(order[16 * b:16 * (b + 1)])
            expected.append((backend.to_numpy(aug(x, epoch, b)), backend.to_numpy(y)))
    assert len(steps) == len(expected) == 6 and len(steps[-1][1]) == 8
    for (x, y), (ex, ey) in zip(steps, expected):
        np.testing.assert_array_equal(x, ex)
        np.testing.assert_array_equal(y, ey)
