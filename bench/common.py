"""What every benchmark shares: percentiles, the machine description, the result file."""

from __future__ import annotations

import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEV_SET = ROOT.parent / "shared" / "eval" / "dev.jsonl"


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0-100), nearest-rank, of non-empty ``values``."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


@dataclass
class Row:
    """One line of the results table."""

    benchmark: str
    case: str
    figures: dict[str, Any]
    target: str = ""
    met: bool | None = None


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)

    def add(self, benchmark: str, case: str, target: str = "", met: bool | None = None,
            **figures: Any) -> Row:
        row = Row(benchmark, case, figures, target, met)
        self.rows.append(row)
        return row


def machine() -> dict[str, Any]:
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in
                   Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        commit = ""
    return {
        "python": sys.version.split()[0], "platform": platform.platform(), "cpu": cpu,
        "cores": os.cpu_count(), "commit": commit,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        # Other work on the machine (1, 5 and 15 minute load averages) skews every rate.
        "load": [round(x, 1) for x in os.getloadavg()],
    }


def write(results: Results, name: str = "latest") -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), "rows": [asdict(r) for r in results.rows]},
                               ensure_ascii=False, indent=2))
    return path


def table(results: Results) -> str:
    lines = ["| benchmark | case | figures | target | met |", "|---|---|---|---|---|"]
    for r in results.rows:
        figures = ", ".join(f"{k} {_fmt(v)}" for k, v in r.figures.items())
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(f"| {r.benchmark} | {r.case} | {figures} | {r.target} | {met} |")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


PROFILE_ENV = "QR_BENCH_PROFILE"


class Profiler:
    """py-spy attached to a benchmark's child process when ``--profile`` is given (the
    ``QR_BENCH_PROFILE`` directory); writes collapsed stacks to ``<dir>/<name>.txt``."""

    def __init__(self, pid: int, name: str) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        directory = os.environ.get(PROFILE_ENV)
        if not directory:
            return
        Path(directory).mkdir(parents=True, exist_ok=True)
        spy = Path(sys.executable).with_name("py-spy")
        self.path = Path(directory) / f"{name}.txt"
        self._proc = subprocess.Popen(
            [str(spy), "record", "--pid", str(pid), "--format", "raw", "--rate", "200",
             "--nonblocking", "-o", str(self.path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()


class MachineUse:
    """How long a benchmark took, how many cores the whole machine kept busy meanwhile, and how
    many of those were this run (this process and the child processes it waited for). The rest
    is other people's work, plus the PostgreSQL server serving us."""

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._start = (time.perf_counter(), self._busy(), self._ours())

    def _busy(self) -> float:
        t = self._psutil.cpu_times()
        return sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "steal", 0.0) \
            - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)

    def _ours(self) -> float:
        t = self._psutil.Process().cpu_times()
        return t.user + t.system + t.children_user + t.children_system

    def figures(self) -> dict[str, float]:
        wall0, busy0, ours0 = self._start
        wall = time.perf_counter() - wall0
        busy = (self._busy() - busy0) / wall
        ours = (self._ours() - ours0) / wall
        return {"seconds": wall, "busy_cores": busy, "this_run_cores": ours,
                "other_cores": max(0.0, busy - ours)}
