"""``--jobs 1`` and ``--jobs 2`` write the same bytes with the real stages.

With ``--jobs 1`` the stages run inline in the driver, which has loaded numpy (OpenBLAS) and
the CLI's other libraries before the runner could pin their thread counts; with ``--jobs 2``
they run in spawned workers that start with the pinned environment. Whisper's features go
through a BLAS matrix product whose sums depend on the thread count, so the word scores came
out different. Each build here runs the real ``indomer`` program, as a user does, with no
thread variables set.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from indomer.demo.corpus import DemoSource, make_corpus

INDOMER = str(Path(sys.executable).parent / "indomer")
#: Thread variables a user's shell may or may not set: the builds here start without them.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _outputs(out: Path) -> dict[str, bytes]:
    """The dataset's files and every stage manifest (the word scores are in align's)."""
    files = {p.relative_to(out).as_posix(): p.read_bytes()
             for p in [out / "README.md", out / "build.json", *sorted(out.glob("data/*")),
                       *sorted(out.glob("splits/*")), *sorted(out.glob("work/*/manifest.jsonl"))]}
    assert any(k.startswith("data/") for k in files) and any("align" in k for k in files)
    return files


def test_jobs_1_and_jobs_2_give_the_same_bytes(tmp_path):
    # two people, two sentences each: a build of the real stages in seconds
    sources = (DemoSource("1", "Sharing", "m3", "lfw26", (0, 5)),
               DemoSource("2", "Family", "f2", "hopper", (3, 9)))
    config = make_corpus(tmp_path / "corpus", sources=sources)
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    outputs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}"
        res = subprocess.run([INDOMER, "build", str(config), "--out", str(out), "--jobs", jobs,
                              "--quiet"], env=env, capture_output=True, text=True, timeout=900,
                             check=False)
        assert res.returncode == 0, res.stderr
        outputs.append(_outputs(out))
    one, two = outputs
    assert sorted(one) == sorted(two)
    assert [k for k in one if one[k] != two[k]] == []
