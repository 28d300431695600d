"""The calibration report as a readable table (``indomer speakers calibrate`` without
``--json``)."""

from __future__ import annotations


def render(report: dict) -> str:
    """The report as a readable table, one block per embedding model."""
    lines: list[str] = []
    voices = report["voices"]
    lines.append(f"{len(report['recordings'])} recordings, {len(voices)} voices "
                 f"(speaker x recording) with >= {report['settings']['min_solo']:g} s of solo "
                 f"speech, {len({v['speaker'] for v in voices})} speakers; "
                 f"{report['too_short']} shorter voices left out")
    for r in report["recordings"]:
        if r["match"] != "exact":
            lines.append(f"matched: RTTM uri {r['uri']!r} -> {r['wav']} ({r['match']})")
    for name, m in report["models"].items():
        lines += ["", f"model {name}: {m['model']}",
                  f"{'pairs':<18}{'n':>5}{'min':>9}{'median':>9}{'max':>9}{'mean':>9}"]
        for key in ("same_person", "different_people"):
            st = m[key]
            lines.append(f"{key.replace('_', ' '):<18}{st['n']:>5}{st['min']:>9.3f}"
                         f"{st['median']:>9.3f}{st['max']:>9.3f}{st['mean']:>9.3f}")
        lines.append(f"({m['pairs']['same_recording']} pairs within one recording not scored)")
        lines += ["", f"{'operating point':<26}{'threshold':>10}{'miss':>8}{'false merge':>13}"]
        e = m["eer"]
        lines.append(f"{'EER ' + format(e['rate'], '.3f'):<26}{e['threshold']:>10.4f}"
                     f"{e['miss_rate']:>8.3f}{e['false_merge_rate']:>13.3f}")
        for row in m["at_miss_rate"]:
            lines.append(f"{'miss <= ' + format(row['target_miss_rate'], 'g'):<26}"
                         f"{row['threshold']:>10.4f}{row['miss_rate']:>8.3f}"
                         f"{row['false_merge_rate']:>13.3f}")
        s = m["split_safe"]
        lines.append(f"{'split-safe (margin ' + format(s['margin'], 'g') + ')':<26}"
                     f"{s['threshold']:>10.4f}{s['miss_rate']:>8.3f}"
                     f"{s['false_merge_rate']:>13.3f}")
        lines.append(f"split-safe single linkage: {s['components']} groups of {s['people']} "
                     f"people over {m['voices']} voices (largest {s['largest_component']})")
        prob = m.get("probability")
        if prob:
            lines.append(f"probability of one person (cohort-normalised score, EER "
                         f"{prob['eer']['rate']:.3f}): logit p = {prob['slope']:.4f} * score "
                         f"{prob['intercept']:+.4f}")
    return "\n".join(lines) + "\n"
