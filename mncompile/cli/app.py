"""The `mncompile` command line.

Commands parse options, call the library and render. Library errors
(`MncompileError`) become exit codes here, in `_handle_errors`, and nowhere else.
TensorFlow is never imported at start-up: `--help` and `--version` stay fast.
"""

from __future__ import annotations

import functools
import sys
import traceback

import typer

from mncompile import __version__
from mncompile.errors import EXIT_CODES, MncompileError

EXIT_CODE_HELP = "Exit codes: " + "; ".join(f"{code} {text}" for code, text in EXIT_CODES) + "."

app = typer.Typer(
    name="mncompile",
    help="Compile a MobileNet into microcontroller firmware that provably fits and computes "
         "the right numbers.\n\nPipeline: model -> quantize -> plan -> emit -> validate. "
         "Progress goes to stderr; results to stdout, or one JSON document with --json.",
    epilog=EXIT_CODE_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)

DEBUG = {"on": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mncompile {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for internal errors."),
) -> None:
    DEBUG["on"] = debug


def _handle_errors(command):
    """Map library errors to exit codes: the one place where that happens."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from rich.markup import escape

        from mncompile.cli import render

        as_json = bool(kwargs.get("json_output"))
        try:
            return command(*args, **kwargs)
        except MncompileError as exc:
            render.err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
            if exc.hint:
                render.err.print(f"[yellow]hint:[/] {escape(exc.hint)}", highlight=False)
            if as_json:
                render.print_json(exc.to_json())
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            render.err.print("interrupted")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:  # a bug: say so, keep the contract of one JSON document
            render.err.print(f"[bold red]internal error:[/] {escape(f'{type(exc).__name__}: {exc}')}",
                             highlight=False)
            if DEBUG["on"]:
                traceback.print_exc(file=sys.stderr)
            else:
                render.err.print("run again with --debug for the traceback, and please report it")
            if as_json:
                render.print_json({"error": "internal", "message": f"{type(exc).__name__}: {exc}",
                                   "hint": None, "exit_code": 1})
            raise typer.Exit(1) from None

    return wrapper


def main() -> None:
    app()


# The commands register themselves on `app` when imported, in the order `--help` lists them.
from mncompile.cli import model_commands  # noqa: E402,F401,I001
from mncompile.cli import project_commands  # noqa: E402,F401,I001
from mncompile.cli import info_commands  # noqa: E402,F401,I001
