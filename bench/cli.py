"""What every benchmark's command shares: argument parsers, the run in an isolated
Streamsite with its failures turned into exit statuses, and the results file.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import redis
from rich.console import Console

from bench.common import BenchError, World, machine_info, start_world

T = TypeVar("T")


def positive(kind: Callable[[str], float]) -> Callable[[str], Any]:
    """An argument type: a positive number of `kind` (int or float)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
        return value

    return parse


def choices(allowed: Sequence[str], noun: str) -> Callable[[str], list[str]]:
    """An argument type: a comma-separated subset of `allowed`, returned in their order."""

    def parse(text: str) -> list[str]:
        values = [part.strip() for part in text.split(",") if part.strip()]
        if not values or set(values) - set(allowed):
            raise argparse.ArgumentTypeError(f"{noun} are {', '.join(allowed)}; got {text!r}")
        return [value for value in allowed if value in values]

    return parse


def option(parser: argparse.ArgumentParser, name: str, kind: Any, default: Any, text: str) -> None:
    """`--name` of type `kind`; its help is `text` and the default."""
    parser.add_argument(name, type=kind, default=default, help=f"{text} (default: %(default)s)")


def add_run_arguments(parser: argparse.ArgumentParser, benchmark: str, quick: str) -> None:
    """--no-aof, --quick (a smoke run that does what `quick` says) and --output."""
    parser.add_argument(
        "--no-aof",
        dest="aof",
        action="store_false",
        help="run redis-server without its append-only file (unlike production)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run: {quick}; writes results only when --output is given",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"the results file (default: bench/results/{benchmark}.json; none for --quick)",
    )


def run_in_world(
    args: argparse.Namespace, console: Console, work: Callable[[World], T]
) -> tuple[T, dict[str, Any], list[str]] | int:
    """Run `work` in an isolated Streamsite started as `args` say, then stop it: what `work`
    returned, the machine's facts and the server log's problems; or, when the run failed,
    its exit status (1, or 130 when interrupted), after saying why.
    """
    try:
        with contextlib.ExitStack() as stack:
            world = start_world(
                stack,
                persistent=args.aof,
                servers=args.servers,
                log=lambda line: console.print(f"[dim]{line}[/]"),
            )
            machine = machine_info(world.redis_url)
            measured = work(world)
            return measured, machine, world.log_problems()
    except (BenchError, OSError, redis.RedisError, httpx.HTTPError) as error:
        console.print(f"[red bold]error:[/] {error}")
        return 1
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]")
        return 130


def warn_if_busy(console: Console, other_percents: Sequence[float]) -> None:
    """Warn when the rest of the machine took over a quarter of a core in some measurement."""
    busiest = max(other_percents, default=0.0)
    if busiest > 25:
        console.print(
            f"[yellow]warning: other processes took up to {busiest:.0f}% of a core "
            "during a measurement: the figures understate this machine.[/]"
        )


def write_results(
    console: Console, results: dict[str, Any], errors: list[str], output: Path | None
) -> int:
    """Write `results` to `output` (if any) unless there were errors: the exit status.

    A run with errors writes nothing, so that the file keeps the last valid run.
    """
    if errors:
        console.print(
            f"[red bold]{len(errors)} error(s)[/]: the run is not valid; no results written"
        )
        return 1
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
        console.print(f"[dim]results written to {output}[/]")
    return 0
