"""Mirror tests of indomer/predict/ (tests/predict/test_M.py for indomer/predict/M.py)."""
