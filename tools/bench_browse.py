"""Benchmark: how fast ``indomer browse`` opens a 2,000-clip dataset.

Writes a synthetic dataset (N clips with word times, three annotators' votes and embedded
media bytes) with :func:`indomer.generation.write_dataset`, then times, best of ``--repeat``:

- ``load``: reading the shards into the page's data and binding the server (``make_server``);
- ``page + data``: GET ``/`` and GET ``/data.json`` over HTTP, to the last byte;
- ``browser``: with ``--browser``, Chromium (Debian's, through Playwright) from navigation to
  the table drawn (``body[data-ready]``), and after a filter by emotion.

    .venv/bin/python tools/bench_browse.py [--n 2000] [--repeat 3] [--browser]
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

from indomer import browse
from indomer.generation import write_dataset
from indomer.labels import label_set

sys.path.insert(0, str(Path(__file__).parent))
from benchutil import cpu_model

WORDS = [
    "saya",
    "suka",
    "memasak",
    "nasi",
    "goreng",
    "dengan",
    "telur",
    "dan",
    "sambal",
    "setiap",
    "pagi",
    "bersama",
    "keluarga",
]


def synthetic(n: int, media_bytes: int, seed: int) -> dict[str, pd.DataFrame]:
    """``n`` clips over train/validation/test with words, votes and media of fixed size."""
    rng = random.Random(seed)
    emotions = label_set("emotion").names
    sentiments = label_set("sentiment").names
    blob = bytes(rng.getrandbits(8) for _ in range(media_bytes))
    rows = []
    for i in range(n):
        words, t = [], 0.0
        for w in rng.choices(WORDS, k=rng.randint(6, 20)):
            d = rng.uniform(0.15, 0.5)
            timed = rng.random() > 0.05
            words.append(
                {
                    "word": w,
                    "start": t if timed else None,
                    "end": t + d if timed else None,
                    "score": 0.9 if timed else None,
                }
            )
            t += d + 0.05
        emo = rng.choice(emotions)
        rows.append(
            {
                "id": f"clip_{i // 10 + 1}_Cooking_{i % 10 + 1}",
                "source_id": str(i // 10 + 1),
                "segment_index": i % 10 + 1,
                "topic": rng.choice(["Cooking", "Family", "Opinion", "Society"]),
                "speaker_id": f"S{i // 30:03d}",
                "start": 0.0,
                "end": t,
                "text": " ".join(w["word"] for w in words),
                "words": words,
                "emotion": emo,
                "sentiment": rng.choice(sentiments),
                "text_sentiment": rng.choice(sentiments),
                "audio_sentiment": rng.choice(sentiments),
                "video_sentiment": rng.choice(sentiments),
                "annotations": [
                    {
                        "annotator": f"A{a}",
                        "field": f,
                        "value": rng.choice(emotions) if f == "emotion" else rng.choice(sentiments),
                    }
                    for a in (1, 2, 3)
                    for f in ("emotion", "sentiment")
                ],
                "adjudicated": rng.random() < 0.1,
                "video": {"bytes": blob, "path": f"clip_{i}.mp4"},
                "audio": {"bytes": blob[: media_bytes // 2], "path": f"clip_{i}.wav"},
            }
        )
    df = pd.DataFrame(rows)
    cut = [int(n * 0.8), int(n * 0.9)]
    return {
        "train": df.iloc[: cut[0]],
        "validation": df.iloc[cut[0] : cut[1]],
        "test": df.iloc[cut[1] :],
    }


def fetch(srv, path: str) -> int:
    host, port = srv.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("GET", path)
    body = conn.getresponse().read()
    conn.close()
    return len(body)


def best(repeat: int, fn):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="clips")
    ap.add_argument("--media-kb", type=int, default=200, help="video bytes per clip (KB)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--browser", action="store_true", help="also time Chromium drawing the page")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-browse-"))
    try:
        out = tmp / "ds"
        t = time.perf_counter()
        write_dataset(out, synthetic(args.n, args.media_kb * 1024, args.seed))
        print(
            f"wrote {args.n} clips ({sum(p.stat().st_size for p in out.rglob('*.parquet')) >> 20}"
            f" MB of shards) in {time.perf_counter() - t:.1f} s"
        )

        def load():
            return browse.make_server(out, port=0, warn=lambda m: None)

        t_load, srv = best(args.repeat, load)
        thread = threading.Thread(target=srv.serve_forever, daemon=True)
        thread.start()
        t_http, size = best(args.repeat, lambda: fetch(srv, "/") + fetch(srv, "/data.json"))
        print(f"machine: {cpu_model()}, {os.cpu_count()} cpus")
        print(f"load (read shards, build page data, bind): {t_load * 1000:.0f} ms")
        print(f"GET / + GET /data.json ({size / 1e6:.2f} MB): {t_http * 1000:.0f} ms")
        print(f"first page + table JSON from a cold start: {(t_load + t_http) * 1000:.0f} ms")
        t_media, _ = best(args.repeat, lambda: fetch(srv, "/media/video/clip_100_Cooking_5"))
        print(f"GET one clip's video ({args.media_kb} KB, row group read): {t_media * 1000:.0f} ms")
        if args.browser:
            from playwright.sync_api import sync_playwright

            with sync_playwright() as pw:
                b = pw.chromium.launch(
                    executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                    args=[
                        "--no-sandbox",
                        "--headless",
                        "--disable-gpu",
                        "--no-first-run",
                        "--disable-background-networking",
                        "--disable-component-update",
                        "--disable-sync",
                        "--disable-quic",
                    ],
                )
                page = b.new_page()

                def draw():
                    page.goto("about:blank")
                    page.goto(srv.url)
                    page.wait_for_selector("body[data-ready='1']")

                t_draw, _ = best(args.repeat, draw)

                def filtered() -> float:
                    page.evaluate("location.hash = 'emotion=anger'")
                    page.wait_for_function(
                        f"document.querySelector('#count').dataset.count != {args.n}"
                    )
                    ms = float(page.get_attribute("body", "data-render-ms"))
                    page.evaluate("location.hash = ''")
                    page.wait_for_function(
                        f"document.querySelector('#count').dataset.count == {args.n}"
                    )
                    return ms

                t_filter = min(filtered() for _ in range(args.repeat)) / 1000
                print(
                    f"Chromium: navigation to table drawn ({args.n} rows): {t_draw * 1000:.0f} ms"
                )
                print(
                    f"Chromium: filter by emotion, script time to redraw: {t_filter * 1000:.0f} ms"
                )
                b.close()
        srv.shutdown()
        srv.server_close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
