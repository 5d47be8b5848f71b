"""`python -m bench NAME [options]`: run one benchmark; exit non-zero only on errors."""

from __future__ import annotations

import argparse
import sys

from bench import chaos, consume, fanout, publish

# name → module with HELP, add_arguments(parser) and main(args) -> exit status
BENCHMARKS = {"publish": publish, "consume": consume, "fanout": fanout, "chaos": chaos}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Streamsite's benchmarks.")
    commands = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name, module in BENCHMARKS.items():
        module.add_arguments(
            commands.add_parser(
                name,
                help=module.HELP,
                description=module.__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
        )
    args = parser.parse_args(argv)
    status: int = BENCHMARKS[args.benchmark].main(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
