"""The `imgindex` command (and `python -m imgindex`)."""

import os

# BLAS libraries' thread counts: the index's matrix products are small (signatures of 32x32
# cells), so more threads finish no sooner and their waiting for work costs CPU (0.3 s in a cold
# scan of 1,300 images); extraction is parallel by processes instead. Read when NumPy loads.
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def one_blas_thread() -> None:
    """Ask the BLAS library for one thread, unless the user set a count; before NumPy loads."""
    for name in BLAS_THREADS:
        os.environ.setdefault(name, "1")


def main() -> None:
    one_blas_thread()
    from .cli import cli

    cli(prog_name="imgindex")


if __name__ == "__main__":  # not when a worker process imports the main module
    main()
