"""Benchmarks: tinyproj against PyTorch on the same machine, in the same run.

``tinyproj bench`` (``suite.run``) is the entry point; ``worker.py`` is the process that
times one case; ``torch_ref.py`` is the PyTorch side (the same network and Algorithm-1
step), imported only inside a PyTorch worker. PyTorch is optional (``pip install -e
".[bench]"``): without it the tables show tinyproj alone.
"""
