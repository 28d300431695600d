"""``indomer.versions``: build.json records the versions that shape the Parquet bytes, read
from the running interpreter and libraries."""

from __future__ import annotations

import platform

import numpy
import pandas
import pyarrow

from indomer import __version__
from indomer.versions import library_versions


def test_the_running_versions_are_reported():
    assert library_versions() == {
        "indomer": __version__,
        "python": platform.python_version(),
        "pandas": pandas.__version__,
        "pyarrow": pyarrow.__version__,
        "numpy": numpy.__version__,
    }
