"""The ``thermogram`` command."""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from . import __version__
from .errors import ThermogramError


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {n}")
    return n


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="thermogram",
                                description="Plastic memory capsules with hash-chained, replayable history.")
    p.add_argument("--version", action="version", version=f"thermogram {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    d = sub.add_parser("demo", help="run the embedded demo capsule and print a summary",
                       description="Write, reinforce, decay, consolidate, replay and verify a small capsule.")
    d.add_argument("--keys", type=_positive, default=200, help="number of distinct keys (default 200)")
    d.add_argument("--rounds", type=_positive, default=12, help="observation rounds (default 12)")
    d.add_argument("--dim", type=_positive, default=16, help="signals per value (default 16)")
    d.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "demo":
            from .demo import run_demo
            res = run_demo(keys=args.keys, rounds=args.rounds, dim=args.dim, seed=args.seed, out=sys.stdout)
            return 0 if (res.verified and res.replay_matches) else 1
    except ThermogramError as e:
        if args.debug:
            raise
        print(f"thermogram: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("thermogram: interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
