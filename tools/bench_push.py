"""Benchmark ``indomer push``: throughput to a local Hub stand-in and peak memory vs shards.

Synthesises a dataset of ``--total-mb`` of incompressible audio bytes cut into N shards (same
total for every N), serves a fresh tests/hubserver.FakeHub on 127.0.0.1 in this process, and
runs ``indomer push`` as a child process that reports its own peak RSS (VmHWM). Each N is
pushed twice: the first push sends everything, the second finds nothing changed (hashing only).

    .venv/bin/python tools/bench_push.py --total-mb 1024 --shards 10,100

The server shares the machine's cores with the client (it hashes and writes every byte too),
so the throughput is a floor for the client, not the speed of a real Hub.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from hubserver import FakeHub

from indomer.card import shard_manifest
from indomer.fsutil import write_json_atomic

TOKEN = "hf_bench_write_token_0123456789"
ROW_BYTES = 256 * 1024
CARD = "---\nlicense: other\nlanguage:\n- id\n---\n# push benchmark\n"


def synthesise(out: Path, n_shards: int, total_bytes: int) -> int:
    """N train shards of random audio bytes, build.json with their manifest, a minimal card."""
    data = out / "data"
    data.mkdir(parents=True)
    per = max(1, total_bytes // ROW_BYTES // n_shards)
    row_bytes = total_bytes // (n_shards * per)  # the same total whatever the shard count
    k = 0
    for i in range(n_shards):
        ids, audio = [], []
        for _ in range(per):
            ids.append(f"clip_{k}")
            audio.append({"bytes": os.urandom(row_bytes), "path": f"clip_{k}.wav"})
            k += 1
        table = pa.table(
            {
                "id": pa.array(ids, pa.string()),
                "audio": pa.array(
                    audio, pa.struct([("bytes", pa.binary()), ("path", pa.string())])
                ),
            }
        )
        pq.write_table(table, data / f"train-{i:05d}-of-{n_shards:05d}.parquet", compression="none")
    (out / "README.md").write_text(CARD, encoding="utf-8")
    (out / "rejected.jsonl").write_text("", encoding="utf-8")
    write_json_atomic(out / "build.json", {"outputs": shard_manifest(out)})
    return sum(p.stat().st_size for p in data.iterdir())


#: The child reports its own high-water RSS: VmHWM belongs to the process image, whereas
#: ru_maxrss from wait4 would include the (large) parent's RSS copied at fork time.
CHILD = (
    "import atexit, os\n"
    "def _hwm():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM'):\n"
    "            open(os.environ['BENCH_HWM_FILE'], 'w').write(line.split()[1])\n"
    "atexit.register(_hwm)\n"
    "from indomer.cli import main\n"
    "main()\n"
)


def run_push(out: Path, repo: str, env: dict, work: Path) -> tuple[float, float, str]:
    """Seconds, peak RSS (MiB) and last output line of one ``indomer push`` child process."""
    hwm = work / "hwm.txt"
    hwm.unlink(missing_ok=True)
    cmd = [sys.executable, "-c", CHILD, "push", str(out), repo]
    t0 = time.perf_counter()
    res = subprocess.run(
        cmd, env={**env, "BENCH_HWM_FILE": str(hwm)}, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"push failed ({res.returncode}): {res.stderr[-2000:]}")
    return seconds, int(hwm.read_text()) / 1024, res.stdout.strip().splitlines()[-1]


def bench(n_shards: int, total_bytes: int, work: Path) -> dict:
    out = work / f"ds-{n_shards}"
    t0 = time.perf_counter()
    size = synthesise(out, n_shards, total_bytes)
    made = time.perf_counter() - t0
    with FakeHub(work / f"hub-{n_shards}", tokens={TOKEN: ("bench", "write")}) as hub:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE_"))}
        env.update(
            HF_ENDPOINT=hub.url,
            HF_TOKEN=TOKEN,
            HF_HOME=str(work / "hf_home"),
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_DISABLE_PROGRESS_BARS="1",
            NO_PROXY="127.0.0.1,localhost",
        )
        repo = f"bench/push-{n_shards}"
        first_s, first_rss, first_line = run_push(out, repo, env, work)
        again_s, again_rss, again_line = run_push(out, repo, env, work)
        manifest = json.loads((out / "build.json").read_text())["outputs"]["splits"]["train"]
        tree = hub.tree(repo)
        same = all(tree[f["path"]].sha256 == f["sha256"] for f in manifest["files"])
        n_commits = len(hub.commits)
        n_uploads = len(hub.uploads)
    shutil.rmtree(out)
    shutil.rmtree(work / f"hub-{n_shards}")
    return {
        "shards": n_shards,
        "bytes": size,
        "synth_s": round(made, 1),
        "push_s": round(first_s, 2),
        "MB_per_s": round(size / first_s / 1e6, 1),
        "peak_rss_MiB": round(first_rss, 1),
        "commits": n_commits,
        "uploads": n_uploads,
        "repush_s": round(again_s, 2),
        "repush_rss_MiB": round(again_rss, 1),
        "identical": same,
        "first": first_line,
        "again": again_line,
    }


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--total-mb", type=int, default=1024, help="dataset size (MiB)")
    parser.add_argument("--shards", default="10,100", help="comma-separated shard counts")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch folder (temp)")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_push_", dir=args.workdir))
    total = args.total_mb << 20
    print(f"machine: {machine()}")
    results = []
    try:
        for n in [int(x) for x in args.shards.split(",")]:
            r = bench(n, total, work)
            results.append(r)
            print(
                f"{r['shards']:>5} shards  {r['bytes'] / 2**20:8.1f} MiB  push {r['push_s']:6.2f} s"
                f"  {r['MB_per_s']:6.1f} MB/s  peak RSS {r['peak_rss_MiB']:6.1f} MiB  "
                f"commits {r['commits']}  uploads {r['uploads']}  | re-push "
                f"{r['repush_s']:5.2f} s, RSS {r['repush_rss_MiB']:6.1f} MiB  identical "
                f"{r['identical']}",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        write_json_atomic(args.json, {"machine": machine(), "results": results})


if __name__ == "__main__":
    main()
