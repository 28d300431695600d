"""The score JSON and the human-readable report ``indomer score`` prints: the output side of
scoring (its schema check, its JSON text, its tables)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from indomer.labels import TASKS
from indomer.scoring.metrics import CI_METRICS, HEADLINE, MIN_UNITS
from indomer.scoring.reader import schema_validator


def validate_score(result: dict) -> None:
    """Check a score result against ``score.schema.json`` (a failure is a bug in indomer)."""
    from jsonschema.exceptions import best_match

    err = best_match(schema_validator("score").iter_errors(result))
    if err is not None:
        where = "/".join(str(p) for p in err.absolute_path) or "(top)"
        raise RuntimeError(f"score JSON breaks score.schema.json at {where}: {err.message}")

def dump_json(result: dict) -> str:
    """The score JSON text: sorted keys, two-space indent, trailing newline, no NaN."""
    return json.dumps(result, sort_keys=True, indent=2, allow_nan=False) + "\n"


# ---------------------------------------------------------------------------------------------
# Human-readable report


def _fmt_ci(ci: list[float] | None, undefined: bool = False) -> str:
    if undefined:
        return "[undefined]"
    return f"[{ci[0]:.4f}, {ci[1]:.4f}]" if ci else ""


def undefined_lines(undefined: dict[str, str], unit: str) -> list[str]:
    """``  95% CI undefined for ...: reason`` lines, one per reason (score and leaderboard).

    A reason of too few units gets the way out: the naive per-clip interval, which the user
    may choose knowing what it ignores.
    """
    by_reason: dict[str, list[str]] = {}
    for key in CI_METRICS:
        if key in undefined:
            by_reason.setdefault(undefined[key], []).append(key)
    lines = []
    for reason, keys in by_reason.items():
        hint = ""
        if reason.startswith("only ") and unit != "segment":
            hint = (
                f"; score a split with {MIN_UNITS} or more {unit.replace('_', ' ')}s, or pass "
                "--bootstrap-unit segment for the naive per-clip interval"
            )
        lines.append(f"  95% CI undefined for {', '.join(keys)}: {reason}{hint}")
    return lines


def lacking_line(boot: dict, names: Sequence[str]) -> str:
    """One line: how many resamples missed a reference class, and which, in label order."""
    n = boot.get("n_resamples_lacking_a_class", 0)
    head = f"  resamples lacking a reference class: {n} of {boot['n_resamples']}"
    lacking = boot.get("lacking_class", {})
    which = [f"{name} {lacking[name]}" for name in names if lacking.get(name)]
    return head + (
        f" ({', '.join(which)}); macro averages there count it only if predicted" if which else ""
    )


def format_task(result: dict) -> str:
    """One task's result as a plain-text table (metrics with CIs, per class, confusion)."""
    boot = result.get("bootstrap", {})
    head = (
        f"{result['task']}  split={result['split']}  n={result['n']}  "
        f"missing={result['n_missing']}  invalid={result['n_invalid']}"
    )
    lines = [head]
    if result.get("ci95"):
        lines.append(
            f"  95% CI: percentile bootstrap, {boot['n_resamples']} resamples of "
            f"{boot['n_units']} {boot['unit']} units, seed {boot['seed']}"
        )
        lines.append(lacking_line(boot, result["confusion"]["labels"]))
        lines += undefined_lines(result.get("ci95_undefined", {}), boot["unit"])
    lines.append("")
    ci = result.get("ci95") or {}
    for key in HEADLINE:
        shown = _fmt_ci(ci.get(key), ci.get(key, []) is None)
        lines.append(f"  {key:<20} {result['metrics'][key]:.4f}  {shown}".rstrip())
    comp = result.get("compare")
    if comp:
        undefined = bool(comp.get("undefined")) and result.get("ci95") is not None
        if comp["p_value"] is not None:
            p = f"  p={comp['p_value']:.4f} (one-sided)"
        elif undefined:
            p = "  p undefined (the macro_f1 interval is)"
        else:
            p = ""
        lines.append(
            f"  vs {comp.get('other', 'other')}: macro_f1 {comp['macro_f1']:.4f}, "
            f"delta {comp['delta']:+.4f} {_fmt_ci(comp['ci95'], undefined)}{p}".rstrip()
        )
    names = result["confusion"]["labels"]
    width = max(10, *(len(n) for n in names)) + 2
    lines += ["", f"  {'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}"]
    for name in names:
        row = result["per_class"][name]
        lines.append(
            f"  {name:<{width}}{row['precision']:>10.4f}{row['recall']:>10.4f}"
            f"{row['f1']:>10.4f}{row['support']:>9d}"
        )
    conf = result["confusion"]
    extra = [c for c in ("invalid", "missing") if any(conf.get(c, []))]
    cols = [*names, *extra]
    cw = max(8, *(len(c) for c in cols)) + 1
    lines += ["", "  confusion (rows: reference, columns: prediction)"]
    lines.append("  " + " " * width + "".join(f"{c:>{cw}}" for c in cols))
    for i, name in enumerate(names):
        cells = [*conf["matrix"][i], *(conf[c][i] for c in extra)]
        lines.append(f"  {name:<{width}}" + "".join(f"{v:>{cw}d}" for v in cells))
    return "\n".join(lines)


def format_report(result: dict) -> str:
    """The report for :func:`score_predictions`' result (one task or keyed by task)."""
    if "task" in result:
        return format_task(result) + "\n"
    return "\n\n".join(format_task(result[t]) for t in TASKS if t in result) + "\n"
