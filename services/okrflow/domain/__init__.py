"""The OKR model and the formulas of docs/formulas.md: pure, no I/O; time is always an argument."""
