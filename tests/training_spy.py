"""What the training loop trains on, recorded for the tests of its data path (test_augment.py,
test_imagenet_decode.py): each epoch's order and each step's (x, y), as host arrays."""
from tinyproj import algorithm1, backend


def record_training(monkeypatch):
    """``(orders, steps)``, two lists that fill as the loop runs: the permutations drawn with
    ``backend.permutation`` (the epochs' orders, as long as nothing else shuffles — leave batch
    norm re-estimation off) and ``(x, y)`` of every ``algorithm1.train_step``."""
    orders, steps = [], []
    permutation, train_step = backend.permutation, algorithm1.train_step

    def spy_permutation(rng, n):
        order = permutation(rng, n)
        orders.append(backend.to_numpy(order))
        return order

    def spy_step(model, x, y, *args, **kwargs):
        steps.append((backend.to_numpy(x), backend.to_numpy(y)))
        return train_step(model, x, y, *args, **kwargs)

    monkeypatch.setattr(backend, "permutation", spy_permutation)
    monkeypatch.setattr(algorithm1, "train_step", spy_step)
    return orders, steps
