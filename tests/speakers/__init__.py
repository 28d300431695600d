"""Mirror tests of indomer/speakers/ (tests/speakers/test_M.py for indomer/speakers/M.py)."""
