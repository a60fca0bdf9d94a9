"""One progress bar for every long loop (training epochs, sweeps, walks, evaluation).

    bar = progress_bar(enabled, total)
    bar.reset("epoch 3", done=0)       # a fresh bar (the previous one closed)
    bar.update(loss="0.1234")          # one step, with values shown after the bar
    bar.close()

A tqdm bar on stderr when ``enabled`` and tqdm is installed; otherwise every call does
nothing, so callers never test for it.
"""
from __future__ import annotations

__all__ = ["progress_bar"]


class progress_bar:
    """A tqdm bar that can be reset per epoch; silent when disabled or without tqdm."""

    def __init__(self, enabled: bool, total: int, desc: str = ""):
        self.enabled, self.total, self.bar = enabled, total, None
        if enabled:
            try:
                from tqdm.auto import tqdm
                self._tqdm = tqdm
            except ImportError:
                self.enabled = False
        if desc:
            self.reset(desc)

    def reset(self, desc: str, done: int = 0):
        if not self.enabled:
            return
        self.close()
        self.bar = self._tqdm(total=self.total, initial=done, desc=desc, leave=False,
                              dynamic_ncols=True)

    def update(self, n: int = 1, **postfix):
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix(refresh=False, **postfix)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
