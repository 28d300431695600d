"""Test package, so that tests/demo/test_M.py (the mirror of indomer/demo/M.py) may share a
base name with another folder's test file without an import clash."""
