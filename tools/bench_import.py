"""Benchmark: release import wall time and peak memory (run in a fresh process per repeat).

.venv/bin/python tools/bench_import.py [--release ../shared/indomer-release] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, resource, sys, time
from indomer.build import build_release
t = time.perf_counter()
build_release(sys.argv[1], sys.argv[2], log=lambda m: None)
wall = time.perf_counter() - t
print(json.dumps({"wall_s": wall, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--release", default=str(root.parent / "shared" / "indomer-release"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    runs = []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, args.release, f"{tmp}/o{i}"],
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")),
        platform.processor(),
    )
    walls = sorted(r["wall_s"] for r in runs)
    print(f"machine: {cpu}, python {platform.python_version()}")
    print(
        f"release import (1,944 rows, build + card): median wall {walls[len(walls) // 2]:.3f} s "
        f"(min {walls[0]:.3f}), peak RSS {max(r['peak_rss_mb'] for r in runs):.0f} MB "
        "(whole process, including imports)"
    )


if __name__ == "__main__":
    main()
