"""Rasa SDK custom actions, run in-process by the service or by `rasa run actions`."""
