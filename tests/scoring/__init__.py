"""Mirror tests of indomer/scoring/ (tests/scoring/test_M.py for indomer/scoring/M.py)."""
