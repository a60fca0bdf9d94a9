"""The exercise checkers of the lessons (``lessons/exercises.py``) say right from wrong.

Each checker must accept a right answer (True), reject a wrong one (False, with a message) and
say "not answered yet" for ``...`` or None (None) — the lessons run with every exercise
unanswered. Every checker is used by its lesson, and a lesson only calls checkers that exist.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

import tinyproj as tp

from _helpers import load_module

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py"))
ex = load_module("tinyproj_lesson_exercises", ROOT / "lessons" / "exercises.py")


class Cube(tp.Function):
    def forward(self, x):
        self.x = x
        return x ** 3

    def backward(self, gy):
        return gy * 3.0 * self.x ** 2


class CubeWrong(Cube):
    def backward(self, gy):
        return gy * self.x ** 2                      # forgot the 3


class CubeUnanswered(Cube):
    def backward(self, gy):
        return ...


def round_right(w):
    alpha = np.abs(w).max()
    x = w / alpha
    return alpha * np.where(x >= 0, np.floor(x + 0.5), -np.floor(-x + 0.5))


def round_half_even(w):
    alpha = np.abs(w).max()
    return alpha * np.round(w / alpha)              # ties to even: 0.5 -> 0


_t07 = (0.90 - (0.98 + 0.1) / 2) / (0.90 - 0.40)


def sign_right(w):
    return np.abs(w).max() * np.where(w >= 0, 1.0, -1.0)


def sign_np_sign(w):
    return np.abs(w).max() * np.sign(w)             # sign(0) = 0: a zero weight stays 0


def next_draw_right(state, n):
    from tinyproj.kernels import reference
    key = np.array([state["seed"], state["stream"] + 1], np.int64)   # a draw moves on first
    return reference.uniform_fill(key, n, np.float64, 0.0, 1.0)


def next_draw_same_stream(state, n):
    from tinyproj.kernels import reference
    key = np.array([state["seed"], state["stream"]], np.int64)
    return reference.uniform_fill(key, n, np.float64, 0.0, 1.0)


# checker: (right answer, wrong answer)
CASES = {
    "check_01_1": (np.array([6.0, -12.0, 3.0]), np.array([2.0, -4.0, 1.0])),
    "check_01_2": (Cube, CubeWrong),
    "check_01_3": (np.array([4.0, 4.0, 4.0]), np.ones((4, 3))),
    "check_02_1": (lambda size, k, stride, pad: (size + 2 * pad - k) // stride + 1,
                   lambda size, k, stride, pad: (size + 2 * pad - k) / stride + 1),
    "check_02_2": ((2, 27, 16), (2, 27, 64)),
    "check_03_1": (round_right, round_half_even),
    "check_03_2": (0.3, 0.65),
    "check_04_1": (np.array([0.4, -0.4, -0.1]), np.array([0.45, -0.43, -0.1])),
    "check_04_2": (["project", "forward", "backward", "update", "clip"],
                   ["forward", "project", "backward", "update", "clip"]),
    "check_05_1": (lambda v, c: np.clip(v, -c, c), lambda v, c: np.sign(v) * c),
    "check_05_2": (1.0, 3.0),
    "check_06_1": (0.5 * math.log2(1 + 0.04 / 0.0025), 2.0),
    "check_06_2": (0.55, 0.5),
    "check_07_1": (0.2, 0.05),
    "check_07_2": (3.0 ** _t07, 1.0 + 2.0 * _t07),
    "check_08_1": (2 * 50 * 128 * (128 * 9) * 32 * 32, 50 * 128 * (128 * 9) * 32 * 32),
    "check_08_2": (8 * 64 * 9 * 16 * 16 * 4, 8 * 64 * 9 * 16 * 16),
    "check_09_1": (sign_right, sign_np_sign),
    # asarray: a copy; mean, subtract, std, divide, max: launches; reshape and [0]: views;
    # .item(): a sync
    "check_09_2": ((5, 1, 1), (7, 1, 1)),
    "check_09_3": (next_draw_right, next_draw_same_stream),
    "check_10_1": (0.8, 1.0),                        # m2 = 0.072, m4 = 0.00648: b = 1 / 1.25
    "check_10_2": (0.70434 / 0.14583, 0.70434 / 0.06249),
    "check_11_1": (12, 10),                          # ceil(512 / 0.12 · 1.2 / 450) = ceil(11.4)
    "check_11_2": ((57, 14), (136, 74)),             # resized to 341 × 256
}
UNANSWERED = {"check_01_2": CubeUnanswered, "check_02_1": lambda *args: ...,
              "check_03_1": lambda w: ..., "check_05_1": lambda v, c: ...,
              "check_09_1": lambda w: ..., "check_09_3": lambda state, n: ...}

# checker: (a typical wrong answer, what its hint must say)
HINTS = {
    "check_08_1": (50 * 128 * (128 * 9) * 32 * 32, "multiply-add as one operation"),
    "check_08_2": (8 * 64 * 9 * 16 * 16, "a float32 takes 4 bytes"),
    "check_09_1": (sign_np_sign, "sign(0) = +1"),
    "check_09_2": ((7, 1, 1), "views"),
    "check_09_3": (next_draw_same_stream, "moves the stream on by one"),
    "check_10_1": (1 / (1.25 - 3), "excess kurtosis"),
    "check_10_2": (0.70434 / 0.06249, "growth from the start"),
    "check_11_1": (10, "no margin"),
    "check_11_2": ((136, 74), "first resizes"),
}


def test_every_checker_has_cases():
    assert sorted(CASES) == sorted(ex.__all__)


@pytest.mark.parametrize("name", sorted(CASES))
def test_checker_accepts_right_rejects_wrong(name, capsys):
    check = getattr(ex, name)
    right, wrong = CASES[name]
    assert check(right) is True, capsys.readouterr().out
    assert "correct" in capsys.readouterr().out
    assert check(wrong) is False
    out = capsys.readouterr().out
    assert "not yet" in out and "correct" not in out
    for unanswered in (..., None, UNANSWERED.get(name, ...)):
        assert check(unanswered) is None
        assert "not answered yet" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(HINTS))
def test_checker_names_the_typical_mistake(name, capsys):
    wrong, hint = HINTS[name]
    assert getattr(ex, name)(wrong) is False
    assert hint in capsys.readouterr().out


def test_exercise_11_hints(capsys):
    """Rounding down, an answer off by a half pixel, swapped coordinates: each has its hint."""
    assert ex.check_11_1(11) is False and "round up" in capsys.readouterr().out
    assert ex.check_11_1(11.38) is False and "round up" in capsys.readouterr().out
    assert ex.check_11_2((57, 14.5)) is False and "// 2" in capsys.readouterr().out
    assert ex.check_11_2((14, 57)) is False and "swap" in capsys.readouterr().out


def test_checker_survives_nonsense(capsys):
    assert ex.check_01_1("six") is False
    assert ex.check_02_2(3) is False
    assert ex.check_01_2(42) is False
    assert ex.check_09_2(5) is False
    assert ex.check_11_2((1, 2, 3)) is False
    assert "not yet" in capsys.readouterr().out


def test_lessons_use_their_checkers():
    used = {}
    for lesson in LESSONS:
        for name in re.findall(r"\bcheck_(\d\d)_\d\b", lesson.read_text(encoding="utf-8")):
            assert name == lesson.name[:2], f"{lesson.name} calls a checker of lesson {name}"
        used[lesson.name[:2]] = set(re.findall(r"\b(check_\d\d_\d)\b", lesson.read_text(encoding="utf-8")))
    for name in ex.__all__:
        number = name.split("_")[1]
        assert name in used.get(number, set()), f"{name} is not used in lesson {number}"
    for number, names in used.items():
        assert names <= set(ex.__all__), f"lesson {number} calls unknown checkers {names - set(ex.__all__)}"


def test_checker_takes_a_tensor_or_a_device_array(capsys):
    """An answer pasted from a lesson may be a Tensor, or a gradient that lives on the device
    (``b.grad`` on a GPU): the checker brings it to the host itself instead of failing."""
    from tinyproj import standin                   # a device array on any backend, no GPU needed

    right_3 = np.array([4.0, 4.0, 4.0])
    assert ex.check_01_3(standin.asarray(right_3)) is True, capsys.readouterr().out
    assert ex.check_01_3(tp.tensor(right_3)) is True
    assert ex.check_01_3(standin.asarray(np.ones(3))) is False
    assert ex.check_01_1(standin.asarray(np.array([6.0, -12.0, 3.0]))) is True
