"""The ``thermogram`` command."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

from . import __version__
from .errors import FormatError, ThermogramError


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {n}")
    return n


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for the ``thermogram`` command.

    Global options are ``--version`` and ``--debug``; the subcommands are ``demo``,
    ``inspect``, ``verify``, ``export``, ``convert`` and ``replay`` (stored in ``args.command``,
    None when no subcommand is given).
    """
    p = argparse.ArgumentParser(prog="thermogram",
                                description="Plastic memory capsules with hash-chained, replayable history.")
    p.add_argument("--version", action="version", version=f"thermogram {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    d = sub.add_parser("demo", help="run the embedded demo: activation stream -> spiking network -> capsule",
                       description="A synthetic activation stream (drifting latent concepts with noise) "
                                   "runs through the embedded spiking network with prototype learning "
                                   "into a file-backed capsule, with periodic decay and consolidation, a "
                                   "checkpoint, chain verification and a replay. Writes FOLDER/demo.thermo "
                                   "(plus its journal) and FOLDER/report.png; earlier demo files there are "
                                   "replaced. Exit status 0 only if every check passes.")
    d.add_argument("--ticks", type=_positive, default=2000,
                   help="activation vectors to process (default 2000)")
    d.add_argument("--neurons", type=_positive, default=64, help="neurons, i.e. prototypes (default 64)")
    d.add_argument("--dim", type=_positive, default=2048,
                   help="dimensions of each activation vector (default 2048)")
    d.add_argument("--concepts", type=_positive, default=8, help="latent concepts in the stream (default 8)")

    def seed(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if n < 0:
            raise argparse.ArgumentTypeError(f"expected a non-negative seed, got {n}")
        return n

    d.add_argument("--seed", type=seed, default=7, help="random seed (default 7)")
    d.add_argument("--out", default="thermogram-demo", metavar="FOLDER",
                   help="folder for the capsule and the report (default ./thermogram-demo)")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.add_argument("--no-plot", action="store_true", help="do not write report.png (no matplotlib needed)")

    i = sub.add_parser("inspect", help="describe a capsule file (v1 or v2)",
                       description="Layers, counts, strength summary, configuration, head hash, format.")
    i.add_argument("file")
    i.add_argument("--json", action="store_true", help="print the description as JSON")

    v = sub.add_parser("verify", help="check a capsule file; exit 0 only if every check passes",
                       description="Checksums, every record's hash and link, the state digest "
                                   "(and with --key, a signed head).")
    v.add_argument("file")
    v.add_argument("--key", action="append", default=[],
                   help="trusted HMAC secret as hex (repeatable): also require a signed head")

    e = sub.add_parser("export", help="export a capsule to json, parquet or an archive folder")
    e.add_argument("file")
    e.add_argument("--to", required=True, choices=["json", "parquet", "archive"])
    e.add_argument("out")

    c = sub.add_parser("convert", help="rewrite a capsule as .thermo v1 or v2")
    c.add_argument("file")
    c.add_argument("--to", required=True, choices=["v1", "v2"])
    c.add_argument("out")

    r = sub.add_parser("replay", help="rebuild a capsule from its records and compare state digests")
    r.add_argument("file")
    return p


def _load(path: str):
    from .core import Thermogram
    if not os.path.exists(path):
        raise ThermogramError(f"{path}: no such file")
    return Thermogram.load(path, verify=False)


def _describe(path: str) -> dict:
    import numpy as np
    from .io import detect_format, rfc3339
    if not os.path.exists(path):
        raise ThermogramError(f"{path}: no such file")
    with open(path, "rb") as f:
        head = f.read(64)
    fmt = detect_format(head) if head else "empty"
    t = _load(path)
    layers = {}
    for st in ("hot", "warm", "cool", "cold"):
        m = t.strengths(st)["magnitude"]
        layers[st] = {"entries": int(len(m))}
        if len(m):
            q = np.quantile(m, [0, 0.5, 1.0])
            layers[st].update(strength_min=int(q[0]), strength_median=float(q[1]), strength_max=int(q[2]))
    return {"file": path, "format": fmt, "bytes": os.path.getsize(path), "name": t.name, "id": t.id,
            "semantics": t.semantics, "layers": layers, "pending_deltas": t.pending_count,
            "records": len(t.records()), "head_hash": t.head_hash,
            "created_at": rfc3339(t.created_at), "last_consolidation": rfc3339(t.last_consolidation),
            "total_deltas": t.total_deltas, "total_consolidations": t.total_consolidations,
            "rule": t.rule.to_dict(), "thermal_config": t.thermal_config.to_dict(),
            "policy": t.policy.to_dict()}


def cmd_inspect(args) -> int:
    """``thermogram inspect``: print a description of the capsule ``args.file``.

    Prints layers with entry counts and strength min/median/max, counts, times, rule,
    thermal config, policy and head hash; with ``args.json`` the same description as JSON.

    Returns
    -------
    int
        Exit status, always 0 (errors are raised as :class:`ThermogramError`).
    """
    d = _describe(args.file)
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    print(f"{d['file']}: .thermo {d['format']}, {d['bytes']:,} bytes")
    print(f"  name {d['name']!r}  id {d['id']}  semantics {d['semantics']}")
    print(f"  {'layer':<5} {'entries':>8}  strength min / median / max")
    for st, info in d["layers"].items():
        extra = (f"{info['strength_min']} / {info['strength_median']:g} / {info['strength_max']}"
                 if info["entries"] else "-")
        print(f"  {st:<5} {info['entries']:>8}  {extra}")
    print(f"  pending deltas {d['pending_deltas']}, records {d['records']}, "
          f"lifetime deltas {d['total_deltas']}, consolidations {d['total_consolidations']}")
    print(f"  created {d['created_at']}, last consolidation {d['last_consolidation']}")
    r = d["rule"]
    print(f"  rule {r['policy']}: novelty {r['novelty_threshold'][1]}, merge {r['merge_threshold'][1]}, "
          f"decay {r['decay_rate'][1]}, prune {r['prune_threshold'][1]}, learning rate {r['learning_rate'][1]}")
    tc = d["thermal_config"]
    print(f"  thermal: decay {[x[1] for x in tc['decay_rates']]}, promote at "
          f"{[x[1] for x in tc['promotion_thresholds']]}, demote below {[x[1] for x in tc['demotion_thresholds']]}")
    print(f"  policy: triggers {d['policy']['triggers']}")
    print(f"  head {d['head_hash']}")
    return 0


def cmd_verify(args) -> int:
    """``thermogram verify``: load ``args.file`` with verification and check its chain.

    ``args.key`` is a list of hex HMAC secrets; when given, the head must also be signed by
    one of them.

    Returns
    -------
    int
        0 and an ``OK`` line if every check passes; 1 and a ``FAIL`` line on a
        :class:`ChainError` or :class:`FormatError`.
    """
    from .core import Thermogram
    from .errors import ChainError
    if not os.path.exists(args.file):
        raise ThermogramError(f"{args.file}: no such file")
    try:
        keys = [bytes.fromhex(k) for k in args.key]
    except ValueError:
        raise ThermogramError("--key takes hex") from None
    try:
        t = Thermogram.load(args.file, verify=True, trusted_keys=keys or None)
        t.verify()
    except ChainError as e:
        where = f" (record {e.index})" if e.index is not None else ""
        print(f"FAIL {args.file}: {e}{where}")
        return 1
    except FormatError as e:
        print(f"FAIL {args.file}: {e}")
        return 1
    print(f"OK {args.file}: {len(t.records())} records verified, head {t.head_hash}, "
          f"state digest {t.state_digest()}" + (", signed head trusted" if keys else ""))
    return 0


def cmd_export(args) -> int:
    """``thermogram export``: write ``args.file`` to ``args.out`` as ``args.to``.

    ``args.to`` is ``"json"`` (without consolidating first), ``"parquet"`` or ``"archive"``
    (a folder). Returns 0.
    """
    t = _load(args.file)
    if args.to == "json":
        t.export_to_json(args.out, consolidate=False)
    elif args.to == "parquet":
        t.to_parquet(args.out)
    else:
        t.export_archive(args.out)
    print(f"wrote {args.out}")
    return 0


def cmd_convert(args) -> int:
    """``thermogram convert``: save ``args.file`` to ``args.out`` in .thermo format ``args.to``
    (``"v1"`` or ``"v2"``). Returns 0."""
    t = _load(args.file)
    t.save(args.out, format=args.to)
    print(f"wrote {args.out} (.thermo {args.to})")
    return 0


def cmd_replay(args) -> int:
    """``thermogram replay``: rebuild ``args.file`` from its records and compare with the loaded capsule.

    Returns
    -------
    int
        0 if both the state digest and the head hash match, else 1.
    """
    from .core import Thermogram
    t = _load(args.file)
    r = Thermogram.replay(t.records())
    a, b = t.state_digest(), r.state_digest()
    same = a == b and r.head_hash == t.head_hash
    print(f"{'OK' if same else 'FAIL'} {args.file}: replayed {len(t.records())} records; "
          f"state digest {'matches' if a == b else 'differs'} ({b[:16]}… vs {a[:16]}…), "
          f"head {'matches' if r.head_hash == t.head_hash else 'differs'}")
    return 0 if same else 1


def main(argv: Optional[List[str]] = None) -> int:
    """Run the ``thermogram`` command.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; None reads ``sys.argv``.

    Returns
    -------
    int
        Exit status: the subcommand's status, 2 when no subcommand is given (help is
        printed), 1 on a :class:`ThermogramError` or :class:`OSError` (re-raised with
        ``--debug``), 130 when interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "demo":
            from .demo import run_demo
            res = run_demo(ticks=args.ticks, neurons=args.neurons, dim=args.dim, concepts=args.concepts,
                           seed=args.seed, folder=args.out, progress=not args.no_progress,
                           plot=not args.no_plot, out=sys.stdout)
            return 0 if res.ok else 1
        return {"inspect": cmd_inspect, "verify": cmd_verify, "export": cmd_export,
                "convert": cmd_convert, "replay": cmd_replay}[args.command](args)
    except (ThermogramError, OSError) as e:
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
