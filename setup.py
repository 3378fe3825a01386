"""Build of the optional C extension; everything else is declared in pyproject.toml.

``qsampling.core._rankhash`` hashes the inspector ranks of a draw (DESIGN §4 step 5) about
ten times faster than hashlib from Python. It is optional: without a C compiler the install
still succeeds and :mod:`qsampling.core.assignment` uses its pure-Python path, with the same
results.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "qsampling.core._rankhash",
            sources=["src/qsampling/core/_rankhash.c"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
