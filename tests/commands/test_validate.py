"""``indomer validate``: a clean build passes, and a damaged one fails with one line naming
the file."""

from __future__ import annotations

import shutil

from click.testing import CliRunner

from indomer.cli import main


def test_a_clean_build_is_valid(built):
    r = CliRunner().invoke(main, ["validate", str(built)])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == f"{built}: valid"


def test_a_damaged_shard_is_a_data_error_naming_it(built, tmp_path):
    copy = tmp_path / "ds"
    shutil.copytree(built, copy, symlinks=True)
    shard = next((copy / "data").glob("validation-*.parquet"))
    real = shard.resolve()
    real.chmod(0o644)
    real.write_bytes(b"PAR1 not a parquet file")
    r = CliRunner().invoke(main, ["validate", str(copy)])
    assert r.exit_code == 1, r.output
    assert shard.name in r.output
    assert "valid\n" not in r.stdout
