"""End to end: a small convnet memorizes 64 real CIFAR-10 images, reproducibly."""
import numpy as np
import pytest

import tinyproj as tp
import tinyproj.functional as F
from tinyproj import backend, nn, optim
from tinyproj.data import read_cifar_batch


def small_convnet(rng):
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, rng=rng), nn.BatchNorm2d(16), nn.ReLU(),
        nn.MaxPool2d(2),                                                  # 16 x 16
        nn.Conv2d(16, 32, 3, padding=1, rng=rng), nn.BatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(3, stride=2),                                        # 7 x 7, overlapping
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10, rng=rng), nn.BatchNorm1d(10))


def fit(x, y, seed, steps=60):
    rng = backend.make_rng(seed)
    model = small_convnet(rng)
    opt = optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.square_hinge_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    with tp.no_grad():
        accuracy = float((backend.to_numpy(model(x).data).argmax(axis=1)
                          == backend.to_numpy(y)).mean())
    return model, losses, accuracy


@pytest.fixture(scope="module")
def cifar64(shared_data_dir):
    x, y = read_cifar_batch(shared_data_dir / "cifar-10-batches-py" / "data_batch_1")
    x = x[:64].reshape(64, 3, 32, 32).astype(np.float32) / 255.0
    x = (x - x.mean(axis=(0, 2, 3), keepdims=True)) / x.std(axis=(0, 2, 3), keepdims=True)
    return x, y[:64].astype(np.int64)


def test_small_convnet_fits_64_cifar_images(cifar64):
    x, y = cifar64
    _, losses, accuracy = fit(x, y, seed=0)
    assert losses[-1] < 0.1 * losses[0]
    assert accuracy == 1.0


def test_same_seed_same_result(cifar64):
    x, y = cifar64
    m1, l1, _ = fit(x[:16], y[:16], seed=3, steps=5)
    m2, l2, _ = fit(x[:16], y[:16], seed=3, steps=5)
    m3, l3, _ = fit(x[:16], y[:16], seed=4, steps=5)
    assert l1 == l2
    for (k, a), (_, b) in zip(m1.state_dict().items(), m2.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=k)
    assert l1 != l3
