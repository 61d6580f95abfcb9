"""Operators: the review queue, exporting corrections, training, evaluating and switching models."""
