"""Typer commands: parse options, call the library, render results. No logic here."""
