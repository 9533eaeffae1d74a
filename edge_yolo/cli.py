"""The `edge-yolo` command line: a thin layer over the Python API.

Commands live in `edge_yolo.commands.<name>` and are imported only when invoked, so
`edge-yolo info` never pays for torch or a backend it does not use. Every EdgeYoloError
becomes one line `error: ...` and a non-zero exit; `--verbose` (anywhere on the line)
shows the traceback instead.
"""

from __future__ import annotations

import importlib
import logging
import sys
import traceback

import click

from . import __version__
from .errors import EdgeYoloError, one_line

COMMANDS = {
    "detect": "Run detection on images, videos, directories, globs, webcams or streams.",
    "track": "Track objects (and count line crossings / zone presence) in videos and streams.",
    "export": "Export a YOLOv12 .pt checkpoint to ONNX or OpenVINO IR, verified against PyTorch.",
    "val": "Measure mAP of one or more models on a YOLO-format dataset, side by side.",
    "benchmark": "Latency and throughput of a model on every available backend.",
    "info": "Show a model's format, shapes, classes, metadata and the backend `auto` picks.",
}

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module = importlib.import_module(f"edge_yolo.commands.{name}")
        command = module.command
        command.short_help = command.short_help or COMMANDS[name]
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edge-yolo")
def cli() -> None:
    """edge-yolo: YOLOv12 from a .pt checkpoint to fast edge inference.

    Add --verbose anywhere to see full tracebacks and debug logs.
    """


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in args
    args = [a for a in args if a != "--verbose"]
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s" if verbose else "warning: %(message)s",
    )
    try:
        cli.main(args=args, prog_name="edge-yolo", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("error: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.UsageError as exc:  # bad or missing arguments: one line, like every other error
        hint = f" (see: {exc.ctx.command_path} --help)" if exc.ctx else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except EdgeYoloError as exc:
        if verbose:
            traceback.print_exc()
        click.echo(f"error: {one_line(exc)}", err=True)
        sys.exit(EXIT_ERROR)
    except Exception as exc:  # noqa: BLE001 - the CLI must never end in a bare traceback
        if verbose:
            traceback.print_exc()
        click.echo(f"error: unexpected {type(exc).__name__}: {one_line(exc)} (run with --verbose for details)",
                   err=True)
        sys.exit(EXIT_ERROR)
