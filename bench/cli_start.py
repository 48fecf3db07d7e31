"""How long the light commands of `scriptlabel` take from exec to exit, and which heavy libraries they load.

    uv run python bench/cli_start.py [--runs 10]

Prints one JSON object. A temporary database gets the bundled sample PDF (31 pages, 1,147 lines), then each
light command runs `--runs` times as a fresh process (`python -m labeling.cli …`, what the installed
`scriptlabel` script runs): wall time median and minimum in seconds, CPU time (user + sys, what a busy
machine distorts least) median, and the heavy modules the process had loaded when it exited (a second run
of each command with `-X importtime` lists them). Target: ≤ 0.3 s for every one of them (issue 25).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("numpy", "pandas", "pyarrow", "xgboost", "sklearn", "scipy", "streamlit", "pymupdf", "keras", "jax",
         "matplotlib")
COMMANDS = {
    "--version": ["--version"],
    "scripts": ["scripts"],
    "sequences": ["sequences"],
    "label": ["label", "5", "dialogue", "--annotator", "bench"],
    "rate": ["rate", "1", "3", "--annotator", "bench"],
    "queue": ["queue", "--n", "5"],
}


def heavy_modules(db: Path, args: list[str]) -> list[str]:
    """Top-level heavy packages the command imported (from -X importtime's report on stderr)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "labeling.cli", "--db", str(db), *args],
                          cwd=REPO, capture_output=True, text=True, env=os.environ | {"PYTHONPATH": str(REPO)})
    names = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines()
             if line.startswith("import time:")}
    return sorted(names & set(HEAVY))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    options = parser.parse_args()
    env = os.environ | {"PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "bench.db"
        subprocess.run([sys.executable, "-m", "labeling.cli", "--db", str(db), "ingest",
                        str(REPO / "sample_scripts" / "tim_time.pdf")], cwd=REPO, env=env, check=True,
                       capture_output=True)
        report = {"runs": options.runs, "python": sys.version.split()[0], "commands": {}}
        for name, args in COMMANDS.items():
            times, cpu = [], []
            for _ in range(options.runs):
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "labeling.cli", "--db", str(db), *args], cwd=REPO, env=env,
                               check=True, capture_output=True)
                times.append(time.perf_counter() - start)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            report["commands"][name] = {"median_s": round(statistics.median(times), 3),
                                        "min_s": round(min(times), 3), "cpu_median_s": round(statistics.median(cpu), 3),
                                        "heavy_modules": heavy_modules(db, args)}
        report["light_max_median_s"] = max(command["median_s"] for command in report["commands"].values())
        report["light_max_cpu_median_s"] = max(command["cpu_median_s"] for command in report["commands"].values())
        report["target_s"] = 0.3
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
