"""Which OpenBLAS kernel numpy runs, for benchmark headers.

Some machines set OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) in the environment, because older
OpenBLAS builds compute wrong results or crash on their processors. A current numpy then runs an
older, slower kernel (Haswell's AVX2 instead of SkylakeX's AVX-512: half the GFLOP/s on the
development machines), so encoder figures depend on it. To measure what the processor does
natively, unset both for that one command:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/offline.py
"""

from __future__ import annotations

import os

_FORCING = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def describe() -> str:
    """One line: the kernel numpy's BLAS runs, and the variables that forced it, if any."""
    import numpy  # noqa: F401  (loads the BLAS that threadpoolctl inspects)
    from threadpoolctl import threadpool_info

    kernels = sorted(
        {str(info.get("architecture")) for info in threadpool_info() if info["user_api"] == "blas"}
    )
    line = f"BLAS kernel: {', '.join(kernels) or 'unknown'}"
    forced = [f"{name}={os.environ[name]}" for name in _FORCING if name in os.environ]
    if forced:
        line += (
            f" (forced by the environment: {', '.join(forced)}; "
            "`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE` measures the native one)"
        )
    return line
