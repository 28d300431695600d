"""Mirror tests of indomer/calibrate/ (tests/calibrate/test_M.py for indomer/calibrate/M.py)."""
