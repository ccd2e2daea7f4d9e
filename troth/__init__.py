"""Troth: a customer engagement engine that speaks the Segment spec."""

from troth.errors import TrothError

__all__ = ["TrothError", "__version__"]

__version__ = "0.1.0"
