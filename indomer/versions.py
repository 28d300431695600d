"""Library versions recorded in ``build.json`` (both build modes, and the shards stage)."""

from __future__ import annotations

import platform

from indomer import __version__


def library_versions() -> dict:
    """indomer, Python and the libraries that shape the Parquet bytes."""
    import numpy
    import pandas
    import pyarrow

    return {
        "indomer": __version__,
        "python": platform.python_version(),
        "pandas": pandas.__version__,
        "pyarrow": pyarrow.__version__,
        "numpy": numpy.__version__,
    }
