"""Command-line entry points: parse, check, call the library, one failure path."""
