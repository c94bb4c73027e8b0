"""Benchmarks of tinytorch against hand-written numpy and PyTorch CPU.

Run ``python -m benchmarks.train_step`` from the repository root (``make bench``). This package
imports nothing at load time on purpose: ``train_step`` pins the BLAS/OpenMP thread pools through
environment variables, which only work if numpy and torch have not been imported yet.
"""
