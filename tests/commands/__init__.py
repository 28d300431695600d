"""Test package, so that tests/commands/test_M.py (the mirror of indomer/commands/M.py) may share a
base name with another folder's test file without an import clash."""
