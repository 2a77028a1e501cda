"""leharness: a small, explicit agent loop whose whole history is a SQLite database."""

__version__ = "0.1.0"
