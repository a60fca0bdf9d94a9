"""The stand-in's CUDA graph (tinyproj/standin/graph.py): what a replay repeats and what it
does not — the semantics that make eager-vs-replayed comparisons on the CPU meaningful."""
import numpy as np
import pytest

from tinyproj import standin


def _dev(a):
    return standin.asarray(np.asarray(a))


def test_a_replay_reruns_the_kernels_on_the_same_memory():
    x = _dev(np.arange(4, dtype=np.float32))
    counter = _dev(np.zeros((), np.int64))

    def step():
        counter[...] += 1                      # state on the device, moved by the step
        return (x * counter,)                  # reads the counter when it runs

    (y,), graph = standin.capture(step)
    assert y.get().tolist() == [0, 1, 2, 3]
    graph.launch()
    graph.launch()
    assert counter.item() == 3 and y.get().tolist() == [0, 3, 6, 9]   # the captured output


def test_a_python_number_is_frozen_at_capture_a_device_value_is_not():
    w_arg, w_mem = _dev(np.zeros(1, np.float32)), _dev(np.zeros(1, np.float32))
    lr = {"host": 0.5}
    lr_dev = _dev(np.array([0.5], np.float32))

    def step():
        w_arg[...] -= lr["host"]               # a launch argument
        w_mem[...] -= lr_dev                   # read from memory when the kernel runs
        return ()

    _, graph = standin.capture(step)
    lr["host"] = 0.25
    lr_dev[...] = 0.25                         # what a schedule does before a replay
    graph.launch()
    assert w_arg.get()[0] == -1.0 and w_mem.get()[0] == -0.75


def test_a_random_draw_is_drawn_anew_at_each_replay():
    rng = standin.random.default_rng(0)
    (u,), graph = standin.capture(lambda: (rng.random(3),))
    first = u.get()
    graph.launch()
    assert not np.array_equal(first, u.get())


def test_one_element_read_is_read_again_at_replay():
    a = _dev(np.array([1.0, 2.0], np.float32))
    (b,), graph = standin.capture(lambda: (a[1] * 2,))
    a[1] = 5.0
    graph.launch()
    assert b.get() == 10.0


def test_a_capture_refuses_syncs_and_copies_and_leaves_no_recording_open():
    a = _dev(np.ones(2, np.float32))
    with pytest.raises(standin.CaptureError, match=r"\.get\(\)"):
        standin.capture(lambda: a.get())
    with pytest.raises(standin.CaptureError, match="xp.asarray"):
        standin.capture(lambda: standin.asarray(np.ones(2)))
    assert not standin.capturing()
    (b,), graph = standin.capture(lambda: (a + 1,))       # a new capture works
    assert len(graph) == 1


def test_a_replay_counts_one_launch():
    a = _dev(np.ones(8, np.float32))
    _, graph = standin.capture(lambda: (((a * 2) + 1).sum(),))
    assert len(graph) == 3
    with standin.counting() as c:
        graph.launch()
    assert (c.launches, c.syncs, c.copies) == (1, 0, 0)
