"""``--engine ray`` on real Ray: the same bytes as the local engine, streaming, faults.

One local Ray (2 CPUs and one custom ``accelerator`` resource standing in for a GPU) serves
the module; tests/ is on its workers' PYTHONPATH so they import the small test stages
(tests/ray_stages.py: fake model stages that compute on every clip's bytes, so the real
runner and the real engine are compared byte for byte in seconds). The one build of the real
stages on Ray, the demo's, runs on the ``ray start --head`` cluster (separate processes, as
users start one) and is compared with the suite-wide local demo build.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import ray_stages
import test_pipeline as tp
from click.testing import CliRunner
from demo_build import demo_dataset

from indomer.cli import main
from indomer.errors import UsageError
from indomer.faults import FAULT_ENV
from indomer.pipeline import run_pipeline

TESTS = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def cluster():
    """A local Ray for the module; its workers inherit PYTHONPATH from this process.

    Ray 2.59+ turns token authentication on for a new local cluster and, lacking a token,
    writes one to ~/.ray/auth_token, where every later ``ray start --head`` on the machine
    would find it and demand it; a token in the environment keeps the home folder untouched.
    """
    import secrets

    import ray

    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(TESTS), *([old] if old else [])])
    had_token = "RAY_AUTH_TOKEN" in os.environ
    os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
    try:
        ray.init(num_cpus=2, resources={"accelerator": 1}, include_dashboard=False,
                 log_to_driver=False, logging_level="ERROR", namespace="indomer-tests")
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        if not had_token:
            os.environ.pop("RAY_AUTH_TOKEN", None)
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def _work(out: Path) -> dict[str, bytes]:
    """The work folder's manifests, journals and fingerprints (run times, and the shards
    stage's salt of clip mtimes, left out)."""
    found = {}
    for rel, data in tp._files(out, "work").items():
        if rel.endswith("fingerprint.json"):
            rec = json.loads(data)
            rec.pop("stats")
            if "_shards/" in rel:  # salted with the clip files' mtimes: two folders differ
                rec.pop("items_salt")
                rec.pop("fingerprint")
            data = json.dumps(rec, sort_keys=True).encode()
        if rel.endswith((".jsonl", ".json")):
            found[rel] = data
    return found


def _build(cfg: Path, out: Path, stages=None, **kw) -> dict:
    return run_pipeline(cfg, out, stages=stages or tp.fake_stages(), quiet=True, **kw)


def _loads(root: Path) -> dict[str, int]:
    """Model loads per stage, from the fake model stages' ``loads.log``."""
    found: dict[str, int] = {}
    for line in (root / "loads.log").read_text().splitlines():
        found[line.split()[0]] = found.get(line.split()[0], 0) + 1
    (root / "loads.log").unlink()
    return found


def test_ray_build_equals_the_local_build(cluster, tmp_path):
    """The real runner and engines with fake model stages (tests/ray_stages.py: numpy
    features of the clips, words with float scores, embeddings in side files, a partial
    rejection, speaker ids from the embeddings on the driver): every byte the same."""
    cfg = tp.make_project(tmp_path / "p")
    stages = ray_stages.model_stages()
    local = _build(cfg, tmp_path / "local", stages=stages)
    assert _loads(tmp_path) == dict.fromkeys(("align", "voices", "faces"), 1)
    on_ray = _build(cfg, tmp_path / "ray", stages=stages, engine="ray")
    # one load per worker (the cluster holds two at once), not one per item (four)
    loads = _loads(tmp_path)
    assert sorted(loads) == ["align", "faces", "voices"] and max(loads.values()) <= 2, loads
    assert on_ray["rows"] == local["rows"] == {"train": 5, "validation": 3, "test": 3}
    assert tp._outputs(tmp_path / "ray") == tp._outputs(tmp_path / "local")
    assert _work(tmp_path / "ray") == _work(tmp_path / "local")  # journals and fingerprints too
    ray_files, local_files = (tp._files(tmp_path / d, "work") for d in ("ray", "local"))
    side = [k for k in local_files if k.endswith((".npy", "embeddings.json"))]
    assert len(side) == 12 and all(ray_files[k] == local_files[k] for k in side)
    speakers = {r["speaker_id"] for r in pq.read_table(tmp_path / "ray" / "data").to_pylist()}
    assert speakers == {"spk0", "spk1", "spk2"}
    rejected = (tmp_path / "ray" / "rejected.jsonl").read_text()
    assert f'"id":"{ray_stages.REJECTED_CLIP}"' in rejected and '"stage":"align"' in rejected
    # the engine is in no fingerprint: a local rerun of the Ray build redoes nothing
    again = _build(cfg, tmp_path / "ray", stages=stages)
    assert {s["name"]: s["status"] for s in again["stages"]} == dict.fromkeys(
        [s["name"] for s in again["stages"]], "skipped"
    )


def test_a_local_build_finishes_on_ray_redoing_nothing(cluster, tmp_path):
    cfg = tp.make_project(tmp_path / "p")
    out = tmp_path / "out"
    _build(cfg, out, stop="cut")
    report = _build(cfg, out, engine="ray")
    status = {s["name"]: (s["status"], s["redone"]) for s in report["stages"]}
    assert all(status[n] == ("skipped", 0) for n in ("fetch", "probe", "segment", "cut"))
    assert status["align"] == ("ran", 4)
    _build(cfg, tmp_path / "clean")
    assert tp._outputs(out) == tp._outputs(tmp_path / "clean")


def test_streaming_the_gpu_stage_starts_before_the_cpu_stage_ends(cluster, tmp_path):
    """Order, not time: with one CPU-stage worker and one 'GPU' worker (the custom
    accelerator resource), a barrier would log every cpu end before any gpu start."""
    cfg = tp.make_project(tmp_path / "p", n_sources=ray_stages.CPU_ITEMS)
    doc = json.loads(cfg.read_text())
    doc["probe"] = {"resources": {"concurrency": 1}}
    doc["align"] = {"resources": {"custom": {"accelerator": 1}, "concurrency": 1}}
    cfg.write_text(json.dumps(doc))
    stages = ray_stages.replace(
        tp.fake_stages(), probe=(ray_stages.cpu_step, False), align=(ray_stages.gpu_step, True)
    )
    out = tmp_path / "out"
    report = _build(cfg, out, stages=stages, engine="ray")
    assert report["rows"]
    log = (tmp_path / "order.log").read_text().splitlines()
    cpu_ends = [i for i, line in enumerate(log) if line.startswith("cpu") and line.endswith("end")]
    gpu_starts = [i for i, line in enumerate(log) if line.startswith("gpu") and "start" in line]
    assert len(cpu_ends) == len(gpu_starts) == 5
    assert gpu_starts[0] < cpu_ends[-1], log


def test_a_worker_killed_mid_item_is_retried(cluster, tmp_path):
    """SIGKILL of the worker running item 2 of a task stage and item 3 of an actor stage:
    Ray reruns both; every item is in the manifests once, as in a local build."""
    cfg = tp.make_project(tmp_path / "p")
    stages = ray_stages.replace(
        tp.fake_stages(), probe=(ray_stages.kill_probe, False), align=(ray_stages.kill_align, True)
    )
    out = tmp_path / "out"
    report = _build(cfg, out, stages=stages, engine="ray")
    assert (tmp_path / "killed-probe-2").exists() and (tmp_path / "killed-align-3").exists()
    assert report["rows"] == {"train": 6, "validation": 3, "test": 3}
    for stage in ("02_probe", "05_align"):
        keys = [json.loads(x)["key"] for x in (out / "work" / stage / "done.jsonl").read_text()
                .splitlines()[1:]]
        assert keys == ["1", "2", "3", "4"]
    clean = tmp_path / "clean"
    _build(cfg, clean, stages=stages)  # markers exist now: no kills locally
    assert tp._outputs(out) == tp._outputs(clean)


KILL_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import test_pipeline as tp
from indomer.pipeline import run_pipeline
run_pipeline({cfg!r}, {out!r}, stages=tp.fake_stages(), quiet=True, engine="ray",
             address={address!r})
"""


def test_the_driver_killed_redoes_only_items_in_flight(cluster, tmp_path):
    calls = tmp_path / "calls.txt"
    cfg = tp.make_project(tmp_path / "p", n_sources=6, probe={"calls": str(calls)})
    out = tmp_path / "out"
    script = KILL_SCRIPT.format(tests=str(TESTS), cfg=str(cfg), out=str(out), address=cluster)
    # the driver kills itself right after it journaled its 2nd probe item (INDOMER_FAULT):
    # an exact moment, whatever the machine's speed, and no sleeps
    env = {**os.environ, FAULT_ENV: "journaled:probe:2"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, check=False, timeout=300)
    assert proc.returncode == -signal.SIGKILL
    done = out / "work/02_probe/done.jsonl"
    recorded = {json.loads(x)["key"] for x in done.read_text().splitlines()[1:]}
    assert len(recorded) == 2
    assert not (out / "work/02_probe/manifest.jsonl").exists()
    first = tp._calls(calls)

    report = _build(cfg, out, engine="ray")
    redone = [c.split()[1] for c in tp._calls(calls)[len(first):] if c.startswith("probe")]
    assert not set(redone) & recorded  # nothing journaled is redone
    assert sorted(redone) == sorted({str(i) for i in range(1, 7)} - recorded)
    assert report["rows"]
    clean = tmp_path / "clean"
    _build(cfg, clean)
    assert tp._outputs(out) == tp._outputs(clean)


# --------------------------------------------------------------------------- the demo corpus


def _shards(dataset: Path) -> dict[str, bytes]:
    return {
        rel: data
        for rel, data in tp._files(dataset).items()
        if rel.startswith(("data/", "splits/")) or rel in ("build.json", "README.md")
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_demo_on_a_ray_start_head_cluster(tmp_path_factory, tmp_path):
    """The one build of the real stages on Ray: a cluster of separate processes (``ray
    start --head``), joined with --address, by the CLI in its own process; the demo corpus
    comes out byte-identical to the suite-wide local demo build, its journals and
    fingerprints too (the fake model stages above cover the engine's other paths)."""
    reference = demo_dataset(tmp_path_factory)
    config = reference.parent / "corpus" / "config.yaml"
    port = _free_port()
    temp = Path("/tmp") / f"rayt{port}"  # Ray's socket paths must stay short
    head = subprocess.Popen(
        [str(VENV_BIN / "ray"), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
         "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        out = tmp_path / "dataset"
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:  # the head answers once its GCS listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or head.poll() is not None:
                    pytest.fail("ray start --head did not come up")
                time.sleep(0.5)
        res = subprocess.run(
            [str(VENV_BIN / "indomer"), "build", str(config), "--out", str(out),
             "--engine", "ray", "--address", address, "--quiet"],
            check=False, capture_output=True, text=True, timeout=1200,
        )
        assert res.returncode == 0, res.stderr[-3000:]
        assert res.stdout.startswith("built "), res.stdout
        assert _shards(out) == _shards(reference)
        assert _work(out) == _work(reference)
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        subprocess.run(["rm", "-rf", str(temp)], check=False)


# --------------------------------------------------------------------------- bad input


def _cli(*args: str):
    return CliRunner().invoke(main, list(args))


def test_engine_ray_without_ray_names_the_extra(tmp_path, monkeypatch):
    import ray as _ray  # noqa: F401 - loaded, then hidden

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    cfg = tp.make_project(tmp_path / "p")
    res = _cli("build", str(cfg), "--out", str(tmp_path / "out"), "--engine", "ray")
    assert res.exit_code == 2
    assert res.output.strip() == (
        "error: --engine ray: Ray is not installed; pip install 'indomer[ray]' "
        "(or: bash tools/install.sh ray)"
    )


def test_an_unreachable_address_is_one_line(tmp_path):
    cfg = tp.make_project(tmp_path / "p")
    port = _free_port()  # nothing listens there
    res = _cli("build", str(cfg), "--out", str(tmp_path / "out"), "--engine", "ray",
               "--address", f"127.0.0.1:{port}")
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: --address 127.0.0.1:{port}: no Ray "
                                                   "cluster answers there"), res.output
    assert not (tmp_path / "out").exists()
    res = _cli("build", str(cfg), "--out", str(tmp_path / "out"), "--engine", "ray",
               "--address", "nonsense")
    assert res.exit_code == 2 and "expected HOST:PORT" in res.output


def test_address_needs_engine_ray(tmp_path):
    cfg = tp.make_project(tmp_path / "p")
    res = _cli("build", str(cfg), "--out", str(tmp_path / "out"), "--address", "auto")
    assert res.exit_code == 2
    assert res.output.strip() == "error: --address: only with --engine ray (the Ray cluster to join)"


def test_resources_no_node_has_are_refused_before_any_work(cluster, tmp_path):
    cfg = tp.make_project(tmp_path / "p")
    doc = json.loads(cfg.read_text())
    doc["align"] = {"resources": {"num_gpus": 1}}
    cfg.write_text(json.dumps(doc))
    out = tmp_path / "out"
    with pytest.raises(UsageError, match=r"^align.resources: asks each worker for CPU 1, GPU 1, which "
                       r"no node of the Ray cluster has \(nodes: .*CPU 2.*\); lower it"):
        _build(cfg, out, engine="ray")
    assert not out.exists()  # nothing ran, nothing was written


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"align": {"resources": {"num_gpu": 1}}},
         r"align.resources.num_gpu: unknown resource key; expected one of num_cpus, num_gpus"),
        ({"cut": {"resources": {"concurrency": 0}}},
         r"cut.resources.concurrency: 0; expected workers of the stage at once"),
        ({"align": {"resources": {"custom": {"accelerator": "one"}}}},
         r"align.resources.custom: expected a mapping of resource names to numbers"),
        ({"speakers": {"resources": {"num_cpus": 1}}},
         (r"speakers.resources: the speakers stage sees the whole dataset and runs on the "
          r"driver, so it takes no resources \(the per-clip work is the voices stage")),
        ({"voices": {"threshold": 0.5}},
         r"voices.threshold: the voices stage takes its settings from another section"),
    ],
)
def test_bad_resources_name_the_key(tmp_path, section, message):
    cfg = tp.make_project(tmp_path / "p")
    doc = json.loads(cfg.read_text())
    doc.update(section)
    cfg.write_text(json.dumps(doc))
    res = _cli("build", str(cfg), "--out", str(tmp_path / "out"), "--engine", "ray")
    assert res.exit_code == 2, res.output
    assert len(res.output.strip().splitlines()) == 1
    assert str(cfg) in res.output and __import__("re").search(message, res.output), res.output


# --------------------------------------------------------------------------- token auth

#: What Ray 2.60's ``ray.init(address=...)`` raised when the head wanted a token and this
#: driver had no ``RAY_AUTH_MODE=token``: a bare ``Failed to connect``, the reason in its cause.
REFUSED_CAUSE = (
    "Failed to connect to GCS. Last connection error: Traceback (most recent call last):\n"
    '  File "python/ray/includes/common.pxi", line 119, in ray._raylet.check_status\n'
    "ray.exceptions.AuthenticationError: RPC error: InvalidAuthToken: Authentication token is "
    "missing or incorrect. Note: RAY_AUTH_MODE is currently 'disabled' (not 'token')."
)


def _refused(address: str) -> ConnectionError:
    try:
        try:
            raise RuntimeError(REFUSED_CAUSE)
        except RuntimeError as cause:
            raise ConnectionError(f"Failed to connect to Ray cluster at {address}") from cause
    except ConnectionError as exc:
        return exc


def test_auth_refusal_names_ray_auth_mode(monkeypatch):
    from indomer.ray_engine import auth_refusal

    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    line = auth_refusal(_refused("10.0.0.1:6379"), "10.0.0.1:6379")
    assert line == (
        "--address 10.0.0.1:6379: the cluster requires a Ray authentication token and this "
        "driver sent none (RAY_AUTH_MODE is unset here); export RAY_AUTH_MODE=token on this "
        "machine and on every node, with the head's token in ~/.ray/auth_token (or "
        "RAY_AUTH_TOKEN), then run again"
    )
    # the header form of earlier token-auth releases is recognised too
    old = ConnectionError("Failed to connect: Unauthenticated: Missing authorization header")
    assert "RAY_AUTH_MODE=token" in auth_refusal(old, "h:1")
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    missing = RuntimeError("Token authentication is enabled but no authentication token was found")
    assert "no Ray authentication token here; copy the head's ~/.ray/auth_token" in auth_refusal(
        missing, "h:1"
    )
    assert "refused this driver's Ray authentication token" in auth_refusal(_refused("h:1"), "h:1")
    # a cluster that is simply not there is not an authentication problem
    assert auth_refusal(ConnectionError("Failed to connect to Ray cluster at h:1"), "h:1") is None


def test_a_refused_token_is_one_line_naming_ray_auth_mode(tmp_path, monkeypatch):
    import ray

    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    cfg = tp.make_project(tmp_path / "p")
    with socket.socket() as listener:  # something answers at the address, as a head would
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = f"127.0.0.1:{listener.getsockname()[1]}"

        def refuse(*args, **kwargs):
            raise _refused(address)

        monkeypatch.setattr(ray, "init", refuse)
        monkeypatch.setattr(ray, "is_initialized", lambda: False)
        res = _cli("build", str(cfg), "--out", str(tmp_path / "out"), "--engine", "ray",
                   "--address", address)
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    assert lines[0].startswith(f"error: --address {address}: the cluster requires a Ray "
                               "authentication token")
    assert "export RAY_AUTH_MODE=token" in lines[0]
    assert not (tmp_path / "out").exists()


def test_a_real_token_cluster_refuses_a_driver_without_ray_auth_mode(cluster, tmp_path):
    """Ray 2.59+ turns token authentication on for a new local cluster (the module's); a
    driver in another process, without RAY_AUTH_MODE and without the token, is refused."""
    assert os.environ.get("RAY_AUTH_MODE") == "token"  # set by ray.init for its cluster
    cfg = tp.make_project(tmp_path / "p")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["HOME"] = str(tmp_path / "home")  # no ~/.ray/auth_token there
    res = subprocess.run(
        [str(VENV_BIN / "indomer"), "build", str(cfg), "--out", str(tmp_path / "out"),
         "--engine", "ray", "--address", cluster],
        check=False, capture_output=True, text=True, timeout=300, env=env,
    )
    assert res.returncode == 2, res.stderr[-3000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: --address {cluster}: the cluster requires a Ray "
                           "authentication token and this driver sent none"), res.stderr[-3000:]
    assert "export RAY_AUTH_MODE=token" in last
    assert not (tmp_path / "out").exists()
