"""Turning measurements into the printed table, the --json record and the --plot."""

from __future__ import annotations

import json

from measure import CHECK_TOLERANCE

PLACEMENT_MARKS = {"apart": "*", "shared": "+"}  # machine.placement(), after thr


def summarise(case, threads: int, results: dict, peak_gflops: float) -> dict:
    """One table row: per peer ms, GFLOP/s, % peak and time / fastrnn's time."""
    base = results.get("fastrnn")
    base_ms = base.ms if base is not None and base.status == "ok" else None
    row = {"case": {**case.to_dict(), "label": case.label, "gflop": case.gflop}, "threads": threads}
    row["results"] = {}
    for name, r in results.items():
        entry = {"status": r.status, "reason": r.reason}
        if r.status == "ok":
            gflops = case.gflop / (r.ms / 1e3)
            entry.update(
                ms=r.ms,
                times_ms=[1e3 * t for t in r.times],
                gflops=gflops,
                pct_peak=100.0 * gflops / peak_gflops,
                # A baseline of another function (fastrnn-plain) gets no ratio to fastrnn.
                ratio=(r.ms / base_ms) if base_ms and name != "fastrnn" and r.checked else None,
                check_err=r.check_err,
                check_ok=r.check_ok,
            )
        row["results"][name] = entry
    return row


# --- the text table -----------------------------------------------------------------


def _fmt_ms(ms: float) -> str:
    for limit, digits in ((100, 0), (10, 1), (1, 2)):
        if ms >= limit:
            return f"{ms:.{digits}f}"
    return f"{ms:.3f}"


def _cell(entry: dict | None, key: str) -> str:
    if entry is None or entry["status"] == "skipped":
        return "-"
    if entry["status"] == "failed":
        return "fail"
    value = entry.get(key)
    if value is None:
        return ""
    if key == "ms":
        return _fmt_ms(value)
    if key == "gflops":
        return f"{value:.1f}"
    if key == "pct_peak":
        return f"{value:.0f}%"
    mark = "!" if entry.get("check_ok") is False else ""  # the output differs from fastrnn's
    return f"{value:.2f}x{mark}"


def _check_cell(row: dict) -> str:
    bad = [
        f"{name} {e['check_err']:.0e}"
        for name, e in row["results"].items()
        if e["status"] == "ok" and e.get("check_ok") is False  # None: never compared
    ]
    return "MISMATCH " + ", ".join(bad) if bad else "ok"


def _columns(peer_names: list[str], peak_label: str) -> list[tuple[str, str, callable]]:
    """(group, sub-header, row -> text), left to right."""
    cols = [
        ("", "case", lambda r: r["case"]["label"]),
        ("", "thr", lambda r: str(r["threads"]) + PLACEMENT_MARKS.get(r.get("placement"), "")),
    ]
    for name in peer_names:
        keys = [("ms", "ms"), ("gflops", "GF/s"), ("pct_peak", peak_label)]
        if name != "fastrnn":
            keys = [("ms", "ms"), ("pct_peak", peak_label), ("ratio", "/fast")]
        for key, sub in keys:
            cols.append((name, sub, lambda r, n=name, k=key: _cell(r["results"].get(n), k)))
    cols.append(("", "check", _check_cell))
    return cols


def format_table(rows: list[dict], peer_names: list[str], peak_label: str) -> str:
    """One aligned table; each peer is a group of columns under its name."""
    cols = _columns(peer_names, peak_label)
    cells = [[fn(r) for _, _, fn in cols] for r in rows]
    widths = [max([len(sub)] + [len(c[i]) for c in cells]) for i, (_, sub, _) in enumerate(cols)]
    left = {0, len(cols) - 1}  # text columns are left-aligned, numbers right-aligned

    def line(values):
        parts = [
            v.ljust(w) if i in left else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths))
        ]
        return "  ".join(parts).rstrip()

    group_line, i = [], 0
    while i < len(cols):
        j = i
        while j + 1 < len(cols) and cols[j + 1][0] == cols[i][0]:
            j += 1
        span = sum(widths[i : j + 1]) + 2 * (j - i)
        group_line.append(cols[i][0].center(span, "-" if cols[i][0] else " "))
        i = j + 1
    out = ["  ".join(group_line).rstrip(), line([sub for _, sub, _ in cols])]
    out += [line(c) for c in cells]
    return "\n".join(out)


def footnotes(rows: list[dict], peer_names: list[str]) -> list[str]:
    """Why cells of the table's peers are "-" or "fail", and what "!" means; each once."""
    seen, notes = set(), []
    for row in rows:
        for name, e in row["results"].items():
            if name not in peer_names:
                continue
            if e["status"] != "ok" and (name, e["reason"]) not in seen:
                seen.add((name, e["reason"]))
                mark = "-" if e["status"] == "skipped" else "fail"
                notes.append(f'"{mark}" {name}: {e["reason"]}')
    placed = {row.get("placement") for row in rows}
    if "apart" in placed:
        notes.append(
            f'"{PLACEMENT_MARKS["apart"]}" after thr: around this row fastrnn\'s threads ran on '
            "cores that share no cache (the header's round trip): multi-thread figures there "
            "are unreliable (fastrnn's 2-thread training measured up to 20% slower)"
        )
    if "shared" in placed:
        notes.append(
            f'"{PLACEMENT_MARKS["shared"]}" after thr: around this row two fastrnn threads took '
            "turns on one core (another process, or a runtime's spinning threads, held the "
            "other): multi-thread figures there are unreliable"
        )
    mismatch = any(_check_cell(row) != "ok" for row in rows)
    if mismatch:
        notes.append(
            f'"!" output differs from fastrnn\'s by more than {CHECK_TOLERANCE:g} '
            "(max abs error / max abs value): that peer computed a different function"
        )
    else:
        notes.append(
            f"check: every peer's outputs match fastrnn's within {CHECK_TOLERANCE:g} (relative)"
        )
    return notes


def format_peephole(rows: list[dict], plain: str) -> str:
    """The peephole cost: each peephole row's fastrnn time over the plain LSTM's on the
    same data, both timed in the same interleaved rounds; "" when no row has both."""
    lines = []
    for row in rows:
        peep, base = row["results"].get("fastrnn"), row["results"].get(plain)
        if not (peep and base) or base["status"] == "skipped":
            continue
        where = f"  {row['case']['label']} thr {row['threads']}:"
        if peep["status"] != "ok" or base["status"] != "ok":
            why = base["reason"] if base["status"] != "ok" else "fastrnn failed"
            lines.append(f"{where} not measured ({why})")
            continue
        lines.append(
            f"{where} {_fmt_ms(peep['ms'])} ms with, "
            f"{_fmt_ms(base['ms'])} ms without = {peep['ms'] / base['ms']:.2f}x"
        )
    if not lines:
        return ""
    head = "peephole cost (fastrnn with / without peepholes, timed in the same rounds):"
    return "\n".join([head, *lines])


# --- records --------------------------------------------------------------------------


def write_json(path: str, header: dict, rows: list[dict], judged: list[dict]) -> None:
    with open(path, "w") as f:
        json.dump({**header, "rows": rows, "targets": judged}, f, indent=1, default=str)


def write_plot(path: str, rows: list[dict], peer_names: list[str], peak_label: str) -> str | None:
    """% of peak per case and peer, one panel per thread count; None or why it was skipped."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: never needs a display
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed: --plot skipped"
    threads = sorted({r["threads"] for r in rows})
    labels = list(dict.fromkeys(r["case"]["label"] for r in rows))
    fig, axes = plt.subplots(
        1,
        len(threads),
        figsize=(7 * len(threads), 0.45 * len(labels) * len(peer_names) / 3 + 2),
        sharey=True,
        squeeze=False,
    )
    bar = 0.8 / len(peer_names)
    for ax, n in zip(axes[0], threads):
        by_label = {r["case"]["label"]: r for r in rows if r["threads"] == n}
        for k, name in enumerate(peer_names):
            ys, xs = [], []
            for y, label in enumerate(labels):
                e = by_label.get(label, {}).get("results", {}).get(name)
                if e and e["status"] == "ok":
                    ys.append(y + k * bar)
                    xs.append(e["pct_peak"])
            ax.barh(ys, xs, height=bar, label=name)
        ax.set_title(f"{n} thread{'s' if n > 1 else ''}")
        ax.set_xlabel(f"{peak_label} (GEMM GFLOP/s / measured peak)")
        ax.axvline(100, color="grey", lw=0.8)
    axes[0][0].set_yticks([y + 0.4 - bar / 2 for y in range(len(labels))], labels)
    axes[0][0].invert_yaxis()
    axes[0][-1].legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
