"""Run the benchmarks: ``python -m bench [name ...]``; prints a table and writes
``bench/results/latest.json``. Names: matcher, bot, broadcast, claims (default: all)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import logging
import os
import sys

from bench.common import PROFILE_ENV, RESULTS, MachineUse, Results, machine, table, write

BENCHMARKS = {
    "matcher": "bench.matcher_bench",
    "bot": "bench.bot_bench",
    "broadcast": "bench.broadcast_bench",
    "claims": "bench.claims_bench",
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="name", help=", ".join(BENCHMARKS))
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--out", default="latest", help="result file name under bench/results/")
    parser.add_argument("--profile", action="store_true",
                        help="attach py-spy to the benchmarks' bot processes "
                             "(collapsed stacks in bench/results/profiles/)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    if args.profile:
        os.environ[PROFILE_ENV] = str(RESULTS / "profiles")
    results = Results()
    for name in names:
        module = importlib.import_module(BENCHMARKS[name])
        print(f"running {name} ...", file=sys.stderr, flush=True)
        run = module.run
        takes_quick = "quick" in inspect.signature(run).parameters
        kwargs = {"quick": True} if args.quick and takes_quick else {}
        use = MachineUse()
        if inspect.iscoroutinefunction(run):
            asyncio.run(run(results, **kwargs))
        else:
            run(results, **kwargs)
        results.add(name, "time taken, and the machine meanwhile (cores busy)", **use.figures())
    path = write(results, args.out)
    info = machine()
    print(f"\nMachine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, "
          f"commit {info['commit']}, {info['date']}, load average {info['load']}")
    print(table(results))
    print(f"\nwritten to {path.relative_to(path.parents[2])}")
    return 1 if any(r.met is False for r in results.rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
