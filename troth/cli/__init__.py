"""The `troth` command line."""

from troth.cli.app import app, main

__all__ = ["app", "main"]
