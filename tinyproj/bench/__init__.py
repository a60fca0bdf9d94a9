"""Benchmarks: tinyproj against PyTorch on the same machine, in the same run.

``tinyproj bench`` (``suite.run``) times the CPU: ``worker.py`` is the process that times one
case; ``torch_ref.py`` is the PyTorch side (the same network and Algorithm-1 step, and
``to_torch``, the twin of any tinyproj model), imported only inside a PyTorch worker.
``tinyproj bench --device gpu`` (``gpu_suite.run_both``) times tinyproj on CuPy beside
PyTorch on the same GPU, strict float32 and then TF32; ``targets.py`` reads issue 12's
targets off its rows. PyTorch is optional (``pip install -e ".[bench]"``): without it the CPU
tables show tinyproj alone, and the GPU benchmark refuses to start.
"""
