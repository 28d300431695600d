"""Figures for ``indomer stats --plots``: PNG files drawn from the same numbers as the card.

matplotlib is imported lazily (Agg, no pyplot state) and every figure is drawn under the
default style with no ``Software`` stamp, so two runs on the same shards give identical
bytes. A figure whose data do not exist (durations in a build without times or audio) is
not drawn; a note says why, and a stale file of that name from an earlier run is removed.
"""

from __future__ import annotations

import io
from pathlib import Path

from indomer.errors import MissingExtraError
from indomer.fsutil import write_bytes_atomic
from indomer.labels import MODALITY_TASKS, label_set
from indomer.stats import ShardData, compute_stats, load_data

#: File names (without .png) in drawing order.
FIGURES: tuple[str, ...] = (
    "modality_sentiment",
    "emotion_long_tail",
    "topics",
    "durations",
    "classes_per_split",
)
DPI = 100
#: One colour per split, the same in every figure (matplotlib's default cycle).
SPLIT_COLOURS = {"train": "#1f77b4", "validation": "#ff7f0e", "test": "#2ca02c"}


def _mpl():
    try:
        import matplotlib
        import matplotlib.style
    except ModuleNotFoundError:
        raise MissingExtraError("matplotlib", "plots") from None
    return matplotlib


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _title(task: str) -> str:
    return task.replace("_", " ").capitalize()


def modality_sentiment(fig, stats: dict) -> None:
    """Overall (multimodal) sentiment against each modality's label: counts and row shares."""
    cm = stats["cross_modal"]
    axes = fig.subplots(1, len(MODALITY_TASKS), sharey=True)
    for ax, task in zip(axes, MODALITY_TASKS):
        conf = cm["confusion"][task]
        names, matrix = conf["labels"], conf["matrix"]
        shares = [[v / sum(r) if sum(r) else 0.0 for v in r] for r in matrix]
        ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
        for i, r in enumerate(matrix):
            for j, v in enumerate(r):
                share = shares[i][j]
                ax.text(
                    j,
                    i,
                    f"{v}\n{100 * share:.1f}%",
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if share > 0.6 else "black",
                )
        ax.set_xticks(range(len(names)), names)
        ax.set_yticks(range(len(names)), names)
        ax.set_xlabel(f"{_title(task)} label")
        agree = cm["vs_sentiment"][task]
        rate = "n/a" if agree["rate"] is None else f"{100 * agree['rate']:.1f}%"
        ax.set_title(f"{_title(task)}: agrees {rate}\n({agree['agree']} of {agree['n']})")
    axes[0].set_ylabel("Overall sentiment label")
    fig.suptitle("Per-modality sentiment against the multimodal label (row %)")


def _hbars(ax, labels: list[str], counts: list[int], total: int) -> None:
    ys = range(len(labels))
    ax.barh(ys, counts, color="#1f77b4")
    ax.set_yticks(ys, labels)
    ax.invert_yaxis()
    top = max(counts) if counts else 1
    for y, c in zip(ys, counts):
        share = 100 * c / total if total else 0.0
        ax.text(c + top * 0.01, y, f"{c} ({share:.1f}%)", va="center", fontsize=9)
    ax.set_xlim(0, top * 1.25)
    ax.set_xlabel("segments")


def emotion_long_tail(fig, stats: dict) -> None:
    """Emotion classes by frequency: one dominant class and a long tail of rare ones."""
    counts = stats["overall"]["classes"]["emotion"]
    order = sorted(counts, key=lambda k: (-counts[k], k))
    release = label_set("emotion").release
    ax = fig.subplots()
    _hbars(
        ax,
        [f"{k} ({release[k]})" for k in order],
        [counts[k] for k in order],
        stats["overall"]["segments"],
    )
    ax.set_title("Emotion labels, most to least frequent (all splits)")


def topics(fig, stats: dict) -> None:
    """Segments per topic of the source videos."""
    counts = stats["topics"]
    order = sorted(counts, key=lambda k: (-counts[k], k))
    ax = fig.subplots()
    _hbars(ax, order, [counts[k] for k in order], stats["overall"]["segments"])
    ax.set_title("Segments per topic (all splits)")


def durations(fig, stats: dict, data: ShardData) -> None:
    """Histogram of segment durations, with the mean marked."""
    import numpy as np

    d = data.durations.reindex(data.df["id"]).dropna().to_numpy()
    info = stats["overall"]["duration"]
    ax = fig.subplots()
    edges = np.histogram_bin_edges(d, bins="auto")
    ax.hist(d, bins=edges, color="#1f77b4", edgecolor="white")
    ax.axvline(info["mean_seconds"], color="#d62728", linestyle="--")
    ax.text(
        0.98,
        0.95,
        f"mean {info['mean_seconds']:.2f} s\n{info['segments_with_duration']} segments\n"
        f"{info['total_hours']:.4f} h in all",
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=9,
    )
    ax.set_xlabel("segment duration (seconds)")
    ax.set_ylabel("segments")
    ax.set_title("Segment durations (all splits)")


def classes_per_split(fig, stats: dict) -> None:
    """Emotion and sentiment class counts side by side for every split."""
    splits = list(stats["splits"])
    axes = fig.subplots(2, 1)
    for ax, task in zip(axes, ("emotion", "sentiment")):
        names = list(label_set(task).names)
        width = 0.8 / max(1, len(splits))
        top = max(
            (stats["splits"][s]["classes"][task][n] for s in splits for n in names), default=1
        )
        for k, split in enumerate(splits):
            counts = [stats["splits"][split]["classes"][task][n] for n in names]
            xs = [i + (k - (len(splits) - 1) / 2) * width for i in range(len(names))]
            ax.bar(xs, counts, width, label=split, color=SPLIT_COLOURS.get(split))
            for x, c in zip(xs, counts):
                ax.text(x, c + top * 0.01, str(c), ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(names)), names)
        ax.set_ylim(0, max(1, top) * 1.15)
        ax.set_ylabel("segments")
        ax.set_title(f"{_title(task)} classes per split")
        ax.legend(loc="upper right", fontsize=8)


def write_plots(
    out: Path, folder: Path, data: ShardData | None = None, stats: dict | None = None
) -> tuple[list[Path], list[str]]:
    """Draw every figure the shards support into ``folder``; return (files, notes)."""
    mpl = _mpl()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    data = data or load_data(out)
    stats = stats or compute_stats(out, data)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sizes = {
        "modality_sentiment": (13, 5),
        "emotion_long_tail": (8, 4.2),
        "topics": (8, 0.8 + 0.32 * max(3, len(stats["topics"]))),
        "durations": (8, 4.2),
        "classes_per_split": (9, 7.5),
    }
    written, notes = [], []
    for name in FIGURES:
        path = folder / f"{name}.png"
        if name == "durations" and "duration" not in stats["overall"]:
            notes.append(
                "durations.png not drawn: no segment has a duration (the shards have neither "
                "start/end times nor embedded audio)"
            )
            path.unlink(missing_ok=True)
            continue
        with mpl.rc_context(), mpl.style.context("default"):
            fig = Figure(figsize=sizes[name], layout="constrained")
            FigureCanvasAgg(fig)  # Agg, whatever backend pyplot may use elsewhere
            draw = globals()[name]
            if name == "durations":
                draw(fig, stats, data)
            else:
                draw(fig, stats)
            write_bytes_atomic(path, _png(fig))
        written.append(path)
    return written, notes


__all__ = ["FIGURES", "write_plots"]
