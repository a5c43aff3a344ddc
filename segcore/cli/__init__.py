"""The `segcore` command: its parser, one function per subcommand, and the demo."""

from segcore.cli.commands import main

__all__ = ["main"]
