"""Random networks through every engine: `python -m flow.fuzz --networks N --seed S`."""
