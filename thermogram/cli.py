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
                       description="A synthetic activation stream (drifting latent concepts with noise, "
                                   "and a forgetting phase in which one concept stops) runs through the "
                                   "embedded spiking network with prototype learning; its weight deltas and "
                                   "each tick's tokens (over 10,000 entries by the end) go into a file-backed "
                                   "capsule with periodic decay, consolidation and thermal transitions, then a "
                                   "checkpoint, chain verification and a replay; prototype purity is compared "
                                   "with an online k-means baseline. Writes FOLDER/demo.thermo "
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
    i.add_argument("file", help="capsule file")
    i.add_argument("--json", action="store_true", help="print the description as JSON")

    v = sub.add_parser("verify", help="check a capsule file; exit 0 only if every check passes",
                       description="Checksums, every record's hash and link, the state digest "
                                   "(and with --key, a signed head).")
    v.add_argument("file", help="capsule file")
    v.add_argument("--key", action="append", default=[],
                   help="trusted HMAC secret as hex (repeatable): also require a signed head")

    e = sub.add_parser("export", help="export a capsule to json, parquet or an archive folder",
                       description="Write the capsule FILE to OUT without changing it. json: the "
                                   "reference crate's export shape (entries with their layer, the delta "
                                   "history, metadata), for reading by other tools; it is not a capsule "
                                   "and cannot be loaded back (keep the .thermo file). parquet: one row "
                                   "per entry. archive: a new folder of Parquet files (state, records, "
                                   "deltas) with a SHA-256 manifest. The folder OUT goes into must exist; "
                                   "an existing file OUT is replaced atomically.")
    e.add_argument("file", help="capsule file (.thermo v1 or v2, or the reference's JSON capsule)")
    e.add_argument("--to", required=True, choices=["json", "parquet", "archive"], help="output kind")
    e.add_argument("out", help="output file (json, parquet) or new folder (archive)")

    c = sub.add_parser("convert", help="rewrite a capsule as .thermo v1 or v2",
                       description="Save the capsule FILE as OUT in .thermo v2 (everything: state, "
                                   "configuration, the whole record history, extensions) or v1 (the "
                                   "reference crate's format: entries and pending deltas only). Converting "
                                   "to v1 prints a warning naming what is dropped.")
    c.add_argument("file", help="capsule file (.thermo v1 or v2, or the reference's JSON capsule)")
    c.add_argument("--to", required=True, choices=["v1", "v2"], help="output format")
    c.add_argument("out", help="output file (the folder must exist)")

    r = sub.add_parser("replay", help="rebuild a capsule from its records and compare state digests",
                       description="Load FILE, rebuild a capsule from its records alone "
                                   "(Thermogram.replay) and compare state digests and head hashes. Exit "
                                   "status 0 only if both match.")
    r.add_argument("file", help="capsule file")

    rc = sub.add_parser("recover", help="repair a file-backed capsule whose journal is damaged",
                        description="Keep the verified prefix of the capsule's journal segment and move "
                                    "every byte after it to a new FILE.journal.quarantine file (never "
                                    "overwriting one); prints what was kept and what was moved. Exit "
                                    "status 0 when the capsule opens afterwards.")
    rc.add_argument("file")
    return p


def cmd_recover(args) -> int:
    """``thermogram recover FILE``: see :meth:`thermogram.Thermogram.recover`."""
    from .core import Thermogram
    if not os.path.exists(args.file):
        raise ThermogramError(f"{args.file}: no such file")
    report = Thermogram.recover(args.file)
    for line in report.lines():
        print(line)
    with Thermogram.open(args.file) as t:
        print(f"opens: {len(t.records())} records, head {t.head_hash[:16]}")
    return 0


def _check_input(path: str) -> None:
    """Raise a :class:`ThermogramError` unless ``path`` is an existing file."""
    if not os.path.exists(path):
        raise ThermogramError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ThermogramError(f"{path} is a directory, not a capsule file")


def _check_output(path: str, *, folder: bool = False, example: str = "out") -> None:
    """Raise a :class:`ThermogramError` unless ``path`` can be written as an output.

    The folder that ``path`` goes into must exist (nothing is created on the way). A file
    output (``folder=False``) must not name a directory; a folder output must not exist.
    """
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ThermogramError(f"{path}: folder {parent} does not exist (create it first)")
    if folder:
        if os.path.exists(path):
            raise ThermogramError(f"{path} exists; an archive is written once into a new folder")
    elif os.path.isdir(path):
        raise ThermogramError(f"{path} is a directory; give a file name such as "
                              f"{os.path.join(path, example)}")


def _load(path: str):
    from .core import Thermogram
    _check_input(path)
    return Thermogram.load(path, verify=False)


def _triggers_text(triggers: List[List]) -> str:
    """Consolidation triggers as words: ``every 1000 deltas, every 24 h``."""
    words = []
    for kind, value in triggers:
        if kind == "delta_count":
            words.append(f"every {value} deltas")
        elif kind == "time_period":
            words.append(f"every {value} h")
        elif kind == "dirty_size":
            words.append(f"at {value:,} pending bytes")
        elif kind == "manual":
            words.append("manual")
        else:
            words.append(f"{kind} {value}")
    return ", ".join(words) if words else "none"


def _describe(path: str) -> dict:
    import numpy as np
    from .io import detect_format, rfc3339
    _check_input(path)
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
    print(f"  policy: consolidate {_triggers_text(d['policy']['triggers'])}")
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
    _check_input(args.file)
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
    _check_output(args.out, folder=args.to == "archive",
                  example="export.json" if args.to == "json" else "state.parquet")
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
    (``"v1"`` or ``"v2"``).

    Converting to v1 prints a warning on stderr naming what the reference's format cannot
    hold: the record history before the pending deltas and the extensions.

    Returns
    -------
    int
        0.
    """
    _check_output(args.out, example=f"{args.to}.thermo")
    t = _load(args.file)
    t.save(args.out, format=args.to)
    print(f"wrote {args.out} (.thermo {args.to})")
    if args.to == "v1":
        lost = _dropped_by_v1(t, args.out)
        if lost:
            print(f"thermogram: warning: .thermo v1 keeps the entries and pending deltas only; "
                  f"dropped: {'; '.join(lost)}", file=sys.stderr)
    return 0


def _dropped_by_v1(t, out: str) -> List[str]:
    """What the v1 file ``out`` lost from ``t``, in words (empty when nothing was lost)."""
    back = _load(out)
    lost = []
    n, m = len(t.records()), len(back.records())
    if m < n:
        lost.append(f"history ({n} records -> {m})")
    if t.extensions:
        lost.append(f"extensions {sorted(t.extensions)}")
    if t.semantics != back.semantics:
        lost.append(f"semantics {t.semantics!r} (reads back as {back.semantics!r})")
    return lost


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
                "convert": cmd_convert, "replay": cmd_replay, "recover": cmd_recover}[args.command](args)
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
