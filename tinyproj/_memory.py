"""Keep freed array memory in the process between training steps (glibc's malloc settings).

Why: a step allocates its activations and gradients afresh and frees them at the end. With
glibc's defaults, blocks above a threshold (128 KB, rising to at most 32 MB as blocks are
freed) are mapped from the operating system for each allocation and unmapped when freed, and
free memory at the top of the heap beyond 128 KB is handed back; the next step gets new
pages, which the kernel zeroes on first touch (a minor page fault per 4 KB page). Measured
on the 2-core machine, one Algorithm-1 step of bc_cifar10, batch 50 (``ru_minflt`` around
``train_step``, median of 5 steps; machine load ~10, so the CPU times are rough):

    width 0.25   5,018 page faults (20 MB first touched) per step → 2 with these settings;
                 CPU time of the step 453 → 372–405 ms
    width 1.0   12,196 page faults (48 MB) → 2;  CPU 2470 → 2183–2240 ms

The peak resident memory (VmHWM) stayed the same (262/264 MB and 776/776 MB); what changes is
that the process keeps its peak between steps instead of shrinking — as PyTorch's and CuPy's
caching allocators do. The mmap threshold is 128 MB rather than glibc's 32 MB ceiling: at
width 1.0 the first linear layer's weight gradient (8192 × 1024 floats, 33.5 MB) was still
mapped afresh at every step (6,302 page faults in a step → 29), and the peak was lower
(688 MB against 716 MB, after batch norm + ReLU were fused).

The settings, applied by ``import tinyproj`` through ``mallopt`` unless you set glibc's
own variables (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``GLIBC_TUNABLES``)
or ``TINYPROJ_MALLOC_DEFAULTS=0``:

    M_MMAP_THRESHOLD = 128 MB   smaller blocks come from the heap (and are reused there)
    M_TRIM_THRESHOLD = 1 GB     free memory at the top of the heap is kept up to this much

Elsewhere (macOS, musl, Windows) nothing is done.
"""
from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3          # glibc's malloc.h
SETTINGS = {M_MMAP_THRESHOLD: 128 * 2**20, M_TRIM_THRESHOLD: 2**30}
USER_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")

status = "not applied"


def apply() -> str:
    """Apply the settings above where they make sense; returns (and keeps) what was done."""
    global status
    if os.environ.get("TINYPROJ_MALLOC_DEFAULTS", "1").strip() == "0":
        status = "left alone (TINYPROJ_MALLOC_DEFAULTS=0)"
    elif any(v in os.environ for v in USER_VARIABLES):
        status = "left alone (your MALLOC_*/GLIBC_TUNABLES settings apply)"
    elif platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        status = "left alone (not glibc)"
    else:
        try:
            mallopt = ctypes.CDLL("libc.so.6").mallopt
            ok = all(mallopt(key, value) == 1 for key, value in SETTINGS.items())
        except (OSError, AttributeError):
            ok = False
        status = ("freed memory kept for reuse (mmap threshold 128 MB, trim threshold 1 GB)"
                  if ok else "left alone (mallopt refused)")
    return status
