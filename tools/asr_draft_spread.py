"""How much the ASR draft test's figure moves with the CPU's numeric paths.

``tests/backends/test_asr.py::test_asr_draft_finds_most_of_the_true_words`` counts the true
words the Whisper base draft contains. The count depends a little on the machine: CTranslate2
picks its int8 GEMM backend (Intel MKL on Intel CPUs, oneDNN elsewhere) and ISA at run time,
and torch (whisperx's VAD) picks its ISA. This tool runs the test's own clips and measure
(``DRAFT_CLIPS``, ``draft_clips``, ``found_share``, ``load_draft_asr``) once per variant, each
in a fresh process with the variant's environment, and prints found/total per clip and overall,
with the old two-sentence input for comparison. Variants that the CPU cannot run (an ISA it
lacks) are reported as errors.

    .venv/bin/python tools/asr_draft_spread.py            # all variants (about 1 min each)
    .venv/bin/python tools/asr_draft_spread.py default dnnl_avx2
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchutil import cpu_model

ROOT = Path(__file__).resolve().parents[1]

#: name -> (threads, environment). ``threads`` goes to torch and CTranslate2 (0: the default).
VARIANTS: dict[str, tuple[int, dict[str, str]]] = {
    "default": (0, {}),
    "threads1": (1, {}),
    "threads2": (2, {}),
    "ct2_avx512": (0, {"CT2_FORCE_CPU_ISA": "AVX512"}),
    "dnnl": (0, {"CT2_USE_MKL": "0"}),
    "dnnl_threads1": (1, {"CT2_USE_MKL": "0"}),
    "dnnl_avx2": (0, {"CT2_USE_MKL": "0", "ONEDNN_MAX_CPU_ISA": "AVX2",
                      "DNNL_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}),
    "mkl_avx2": (0, {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ATEN_CPU_CAPABILITY": "avx2",
                     "ONEDNN_MAX_CPU_ISA": "AVX2"}),
    "aten_default": (0, {"ATEN_CPU_CAPABILITY": "default"}),
    "generic": (0, {"CT2_FORCE_CPU_ISA": "GENERIC", "CT2_USE_MKL": "0",
                    "ONEDNN_MAX_CPU_ISA": "SSE41", "DNNL_MAX_CPU_ISA": "SSE41",
                    "ATEN_CPU_CAPABILITY": "default"}),
}

_CHILD = r"""
import json, sys
sys.path[:0] = [sys.argv[3], sys.argv[3] + "/backends"]
threads, cache = int(sys.argv[1]), sys.argv[2]
import torch
if threads:
    torch.set_num_threads(threads)
import test_asr as t
from indomer.demo.synth import VOICES, speak
asr = t.load_draft_asr(cache, threads=threads)
clips = t.draft_clips()
old_wav, old_truth = speak(t.SENTENCES[4:6], VOICES["m3"])
old = [w for s in old_truth["sentences"] for x in s["words"] for w in t.spoken_words(x["word"])]
out = {"aten": torch.backends.cpu.get_cpu_capability(), "clips": {}}
for voice, wav, words in clips + [("old", old_wav, old)]:
    text = asr.transcribe(wav)
    out["clips"][voice] = [round(t.found_share(text, words) * len(words)), len(words), text]
print("RESULT " + json.dumps(out))
"""


def run(name: str, cache: str) -> dict:
    threads, extra = VARIANTS[name]
    env = {**os.environ, **extra, "CT2_VERBOSE": "1", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "PYANNOTE_METRICS_ENABLED": "false"}
    res = subprocess.run([sys.executable, "-c", _CHILD, str(threads), cache,
                          str(ROOT / "tests")], env=env, capture_output=True, text=True,
                         check=False, cwd=ROOT)
    lines = [line for line in res.stdout.splitlines() if line.startswith("RESULT ")]
    if res.returncode != 0 or not lines:
        return {"error": (res.stderr.strip().splitlines() or ["no output"])[-1]}
    out = json.loads(lines[-1][len("RESULT "):])
    for key, label in (("isa", "Selected ISA: "), ("gemm_s8", "GEMM_S8 backend: ")):
        found = [line.split(label, 1)[1].split()[0] for line in res.stderr.splitlines()
                 if label in line]
        out[key] = found[0] if found else "?"
    return out


def main(names: list[str]) -> None:
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    names = names or list(VARIANTS)
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="asr-draft-spread-") as cache:
        header = None
        for name in names:
            out = run(name, cache)
            if "error" in out:
                print(f"{name:<14} error: {out['error']}", flush=True)
                continue
            clips = out["clips"]
            if header is None:
                header = list(clips)
                print(f"{'variant':<14} {'aten':<7} {'ct2 isa':<8} {'int8 gemm':<9} "
                      + " ".join(f"{c:>6}" for c in header) + "  overall")
            drafts = [c for c in header if c != "old"]
            found = sum(clips[c][0] for c in drafts)
            total = sum(clips[c][1] for c in drafts)
            cells = " ".join(f"{clips[c][0]:>3}/{clips[c][1]:<2}" for c in header)
            print(f"{name:<14} {out['aten']:<7} {out['isa']:<8} {out['gemm_s8']:<9} {cells}"
                  f"  {found}/{total} = {found / total:.3f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
