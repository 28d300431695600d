"""Test package, so that tests/stages/test_M.py (the mirror of indomer/stages/M.py) may share a
base name with another folder's test file without an import clash."""
