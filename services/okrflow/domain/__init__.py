"""The OKR model and the formulas of DESIGN §5: pure, no I/O; time is always an argument."""
