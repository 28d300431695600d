"""Test package, so that tests/backends/test_M.py (the mirror of indomer/backends/M.py) may share a
base name with another folder's test file without an import clash."""
