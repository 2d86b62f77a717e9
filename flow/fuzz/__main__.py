"""python -m flow.fuzz --networks N --seed S [--out DIR] [--images K] [--per-structure R]
[--csim-every C] [--first I] | --spec FILE

Random networks through export, build, the numpy reference, the RTL simulation and (every C-th
network) the C simulation; the last line printed is `fuzz: N networks, M mismatches`. Exit 0
when there are none, 1 when some network failed (its reproducer is in OUT/fail-<i>/), 2 for
bad arguments."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from flow.fuzz.run import FuzzConfig, Summary, run_fuzz, run_one, sim_cache
from flow.fuzz.spec import spec_from_dict


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one sentence, exit 2
        self.exit(2, f"python -m flow.fuzz: {message}\n")


def _count(lo: int):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be at least {lo}, got {v}")
        return v
    return parse


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m flow.fuzz", description="Random networks through every engine.")
    p.add_argument("--networks", type=_count(1), help="how many networks")
    p.add_argument("--seed", type=_count(0), default=0)
    p.add_argument("--out", type=Path, default=Path("fuzz-out"), help="work folder; failures in OUT/fail-<i>/")
    p.add_argument("--images", type=_count(1), default=4, help="inputs per network")
    p.add_argument("--per-structure", type=_count(1), default=1,
                   help="networks per structure (one design, other weights: one simulator compile)")
    p.add_argument("--csim-every", type=_count(0), default=10, help="C simulation on every C-th network (0: never)")
    p.add_argument("--first", type=_count(0), default=0, help="index of the first network")
    p.add_argument("--spec", type=Path, help="replay one spec.json (inputs.npy beside it is used when present)")
    return p


def _replay(args) -> Summary | int:
    try:
        spec = spec_from_dict(json.loads(args.spec.read_text()))
    except OSError as exc:
        return _bad(f"cannot read --spec {args.spec}: {exc.strerror or exc}")
    except (ValueError, TypeError) as exc:  # JSON errors included
        return _bad(f"--spec {args.spec} is not a fuzz spec: {str(exc).splitlines()[0]}")
    x_path = args.spec.with_name("inputs.npy")
    x = np.load(x_path) if x_path.is_file() else None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with sim_cache(out):
        res = run_one(spec, out, args.images, True, x=x)
    print(f"net {spec.index} {spec.summary()}: {res.status} {'+'.join(res.engines) or '-'} {res.seconds:.1f} s")
    if res.failed:
        print(res.detail)
    return Summary(networks=1, mismatches=int(res.failed))


def _bad(msg: str) -> int:
    print(f"python -m flow.fuzz: {msg}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.spec is not None:
        if args.networks is not None:
            return _bad("give --networks or --spec, not both")
        summary = _replay(args)
        if isinstance(summary, int):
            return summary
    else:
        if args.networks is None:
            return _bad("give --networks N (with --seed S), or --spec FILE to replay one network")
        cfg = FuzzConfig(args.networks, args.seed, args.out, args.images, args.per_structure, args.csim_every,
                         args.first)
        summary = run_fuzz(cfg)
    print(summary.line())
    return 1 if summary.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
