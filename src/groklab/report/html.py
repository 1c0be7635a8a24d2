"""Self-contained interactive HTML reports of a run, a sweep or a bench directory, and the
comparison of several runs, built from saved files alone.

One file per report: plotly.js is embedded once in the page's head (no CDN, no request of
any kind), every figure is a ``<section class="figure" data-figure="NAME">`` holding one
plotly div, and every table a ``<table data-table="NAME">``, so that a test (or a user's
script) can find them. The camera button of each figure saves an SVG at twice the size:
vector figures for a paper.

* run: train/val accuracy and loss vs step (log x) with the 99% events and, where the
  restricted/excluded loss was saved, Nanda et al.'s phases; every other logged measure;
  the embedding's Fourier spectrum and key-frequency circle on a modular table; the
  config and the summary. A run being written shows as ``running``.
* sweep: the phase diagram (two axes) or the metric against its one axis, heatmaps of the
  final val accuracy and of the step to 99%, hover naming each cell's seeds, phases and
  runs; the table of runs.
* bench: the ranked table and the median best-so-far val accuracy against wall-clock
  seconds, one panel per task, one line per method.
* compare: curves of several runs (or members) overlaid, and the config keys that differ.

Curves longer than :data:`MAX_POINTS` evaluations are thinned to that many points spaced
evenly in log step (the first and last always kept), so that a 40,000-step run's report
stays small; the summary's events are computed from every evaluation.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from groklab.report.bench_curves import curves as bench_curves
from groklab.report.bench_curves import median_curve
from groklab.report.palette import PHASE_COLORS
from groklab.config import ConfigError
from groklab.detect import CELLS, modal_phase
from groklab.phases import nanda_phases
from groklab.rundir import writer_pid
from groklab.spectrum import cos_sin_directions, frequency_sq_norms, key_frequencies
from groklab.store import RunFiles, read_parquet
from groklab.sweep.summary import summarize

MAX_POINTS = 600  # per curve in a report
TRAIN, VAL = "#1f77b4", "#d62728"
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
NANDA_COLORS = {"memorization": "rgba(158,202,225,0.35)", "circuit formation": "rgba(253,208,162,0.45)",
                "cleanup": "rgba(161,217,155,0.4)"}
BASE_METRICS = ("train_acc", "val_acc", "train_loss", "val_loss", "time_s")
# A small white template, built once: plotly's "plotly_white" is a large object that every
# figure would deep-copy (2 of 3.4 s of a 33-figure report went there).
_GRID = dict(gridcolor="#e5e5e5", zerolinecolor="#cccccc", linecolor="#999999", ticks="outside", showline=True)
TEMPLATE = go.layout.Template(layout=dict(paper_bgcolor="white", plot_bgcolor="white", xaxis=_GRID, yaxis=_GRID,
                                          colorway=["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                                    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]))
PLOT_CONFIG = {"displaylogo": False, "responsive": True,
               "toImageButtonOptions": {"format": "svg", "scale": 2}}
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:1.5em auto;max-width:1150px;
color:#222;padding:0 1em}
h1{font-size:1.4em;margin-bottom:.2em}h2{font-size:1.1em;margin:1.4em 0 .3em}.meta{color:#666;font-size:.9em}
table{border-collapse:collapse;font-size:.85em;margin:.4em 0;display:block;overflow-x:auto;max-width:100%}td,th{border:1px solid #ddd;padding:2px 7px;
text-align:left;vertical-align:top}th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.status-running{color:#b35900;font-weight:bold}.status-done{color:#2a7a2a}details{margin:.5em 0}
.scroll{max-height:420px;overflow:auto;display:inline-block}
"""


# --------------------------------------------------------------------------- page


class Page:
    """An HTML page of figures and tables; :meth:`html` returns the whole document."""

    def __init__(self, title: str, subtitle: str = ""):
        self.title, self.subtitle = title, subtitle
        self.parts: list[str] = []

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def figure(self, name: str, title: str, fig: go.Figure, note: str = "") -> None:
        fig.update_layout(template=TEMPLATE, margin=dict(l=60, r=20, t=40, b=50),
                          font=dict(family="Helvetica, Arial, sans-serif", size=12))
        div = fig.to_html(full_html=False, include_plotlyjs=False, config=PLOT_CONFIG, div_id=f"fig-{name}")
        note = f'<p class="meta">{html.escape(note)}</p>' if note else ""
        self.parts.append(f'<section class="figure" data-figure="{name}"><h2>{html.escape(title)}</h2>'
                          f"{note}{div}</section>")

    def table(self, name: str, title: str, df: pd.DataFrame, scroll: bool = False) -> None:
        body = table_html(df, name)
        if scroll:
            body = f'<div class="scroll">{body}</div>'
        self.parts.append(f'<section class="table"><h2>{html.escape(title)}</h2>{body}</section>')

    def raw(self, text: str) -> None:
        self.parts.append(text)

    def html(self) -> str:
        sub = f'<p class="meta">{self.subtitle}</p>' if self.subtitle else ""
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(self.title)}</title><style>{STYLE}</style>"
                f"<script type=\"text/javascript\">{get_plotlyjs()}</script></head><body>"
                f"<h1>{html.escape(self.title)}</h1>{sub}" + "\n".join(self.parts) + "</body></html>\n")


def _cell(v) -> tuple[str, bool]:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–", True
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v)), False
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}" if abs(int(v)) >= 10_000 else str(int(v)), True
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.3g}", True
        return f"{v:.4g}", True
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v), False
    return str(v), False


def table_html(df: pd.DataFrame, name: str) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for r in df.itertuples(index=False):
        cells = []
        for v in r:
            text, num = _cell(v)
            cells.append(f'<td class="num">{html.escape(text)}</td>' if num else f"<td>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table data-table="{name}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def thin(steps: np.ndarray, max_points: int = MAX_POINTS) -> np.ndarray:
    """Indices of at most ``max_points`` of the sorted ``steps``, even in log(1 + step),
    the first and last always kept."""
    n = len(steps)
    if n <= max_points:
        return np.arange(n)
    target = np.linspace(np.log1p(steps[0]), np.log1p(steps[-1]), max_points)
    idx = np.searchsorted(np.log1p(steps), target).clip(0, n - 1)
    return np.unique(np.concatenate([[0], idx, [n - 1]]))


def _x(steps) -> np.ndarray:
    return np.asarray(steps, dtype=float).clip(min=1)  # step 0 drawn at 1 on the log axis


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


# --------------------------------------------------------------------------- run


def run_status(run: RunFiles) -> str:
    if writer_pid(run.path) is not None:
        return "running"
    s = run.summary
    return s["status"] if s else "interrupted"


def _member_label(ms: list[dict], e: int) -> str:
    if e < len(ms) and len(ms) > 1:
        m = ms[e]
        return f"member {e} (seed {m.get('seed')})"
    return f"member {e}"


def curves_figure(run: RunFiles, members: list[int] | None = None, label=None, wides: dict | None = None) -> go.Figure:
    """Accuracy and loss (log x), train dashed and val solid, one colour per member; the 99%
    events as markers; Nanda phases shaded for one member when restricted/excluded loss exist."""
    df = run.metrics
    ms = (run.summary or {"members": []})["members"]
    members = sorted(df["member"].unique()) if members is None else members
    fig = make_subplots(rows=1, cols=2, subplot_titles=("accuracy", "loss"), horizontal_spacing=0.08)
    wides = wides if wides is not None else {e: run.wide(e) for e in members}
    for i, e in enumerate(members):
        w = wides[e]
        idx = thin(w.index.to_numpy())
        w = w.iloc[idx]
        x = _x(w.index)
        c = PALETTE[i % len(PALETTE)] if len(members) > 1 else None
        name = label(e) if label else _member_label(ms, e)
        for col, (metric, kind) in enumerate((("acc", 1), ("loss", 2))):
            for split, dash, color in (("train", "dash", TRAIN), ("val", "solid", VAL)):
                key = f"{split}_{metric}"
                if key not in w:
                    continue
                fig.add_trace(go.Scatter(
                    x=x, y=w[key], mode="lines", name=f"{name}: {split}" if len(members) > 1 else split,
                    legendgroup=name, line=dict(color=c or color, dash=dash if c else "solid", width=1.6),
                    showlegend=col == 0, hovertemplate=f"{split} {metric} %{{y:.4g}} at step %{{x}}<extra>{name}</extra>"),
                    row=1, col=kind)
        if e < len(ms):
            for key, symbol in (("step_train_99", "triangle-up"), ("step_val_99", "star")):
                if ms[e].get(key) is not None:
                    fig.add_trace(go.Scatter(
                        x=[max(ms[e][key], 1)], y=[0.99], mode="markers", legendgroup=name, showlegend=False,
                        marker=dict(symbol=symbol, size=11, color=c or (TRAIN if "train" in key else VAL),
                                    line=dict(width=1, color="black")),
                        hovertemplate=f"{key.replace('step_', '').replace('_99', '')} ≥ 99% at step {ms[e][key]}"
                                      f"<extra>{name}</extra>"), row=1, col=1)
    if len(members) == 1:
        _shade_nanda(fig, wides[members[0]], float(df["step"].max()))
    fig.update_xaxes(type="log", title_text="optimization step")
    fig.update_yaxes(range=[-0.02, 1.02], row=1, col=1)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_layout(height=430, legend=dict(groupclick="togglegroup"))
    return fig


def _nanda_spans(w: pd.DataFrame):
    need = ["train_loss", "val_loss", "restricted_loss", "excluded_loss"]
    if any(n not in w for n in need):
        return []
    cp = w.dropna(subset=need)
    if len(cp) < 3:
        return []
    ph = nanda_phases(cp.index.to_numpy(), cp["train_loss"], cp["val_loss"], cp["restricted_loss"],
                      cp["excluded_loss"])
    spans, start = [], int(w.index[0])
    for name, end in (("memorization", ph.memorization_end), ("circuit formation", ph.circuit_formation_end),
                      ("cleanup", ph.cleanup_end)):
        spans.append((name, start, end))
        if end is None:
            break
        start = end
    return spans


def _shade_nanda(fig: go.Figure, w: pd.DataFrame, last: float) -> list:
    spans = _nanda_spans(w)
    for name, a, b in spans:
        x0, x1 = max(a, 1), max(b if b is not None else last, 1)
        if x1 <= x0:  # a phase that starts at the last evaluation: nothing to shade
            continue
        for col in (1, 2):
            fig.add_vrect(x0=x0, x1=x1, fillcolor=NANDA_COLORS[name], line_width=0, layer="below", row=1, col=col)
        fig.add_annotation(x=(math.log10(x0) + math.log10(x1)) / 2, y=0.99, xref="x", yref="y domain", yanchor="top",
                           text=name, showarrow=False, font=dict(size=10))  # log axes place annotations in log10
    return spans


def measure_groups(names: list[str]) -> dict[str, list[str]]:
    """Logged metrics other than the base curves, grouped by the part before the first '.'
    (``weight_norm`` with ``weight_norm.W_E`` ...)."""
    groups: dict[str, list[str]] = {}
    for n in sorted(names):
        if n in BASE_METRICS:
            continue
        groups.setdefault(n.split(".")[0], []).append(n)
    return groups


def measures_figure(run: RunFiles, names: list[str], members: list[int], wides: dict | None = None) -> go.Figure:
    fig = go.Figure()
    ms = (run.summary or {"members": []})["members"]
    wides = wides if wides is not None else {e: run.wide(e) for e in members}
    for i, e in enumerate(members):
        w = wides[e]
        for j, n in enumerate(names):
            s = w[n].dropna() if n in w else pd.Series(dtype=float)
            if s.empty:
                continue
            s = s.iloc[thin(s.index.to_numpy())]
            label = n if len(members) == 1 else f"{_member_label(ms, e)}: {n}"
            fig.add_trace(go.Scatter(x=_x(s.index), y=s.to_numpy(), mode="lines+markers" if len(s) < 80 else "lines",
                                     name=label, legendgroup=_member_label(ms, e), marker=dict(size=4),
                                     line=dict(width=1.5 if j == 0 else 1)))
    vals = pd.concat([wides[e][n] for e in members for n in names if n in wides[e]]).dropna()
    logy = len(vals) and (vals > 0).all() and vals.max() / max(vals.min(), 1e-300) > 1e3
    fig.update_xaxes(type="log", title_text="optimization step")
    fig.update_yaxes(type="log" if logy else "linear")
    fig.update_layout(height=330, legend=dict(groupclick="toggleitem"))
    return fig


def fourier_figure(run: RunFiles, member: int = 0, step: int | None = None) -> go.Figure | None:
    """The embedding's norm per Fourier frequency (key frequencies in red) and the embedding
    on the cos/sin directions of the first key frequency (Nanda et al. 2023), or None where
    the task is not a modular table with an embedding. From the saved weights as numpy
    arrays (:mod:`groklab.spectrum`): no model is built, torch is not imported."""
    cfg = run.config
    if cfg.task.kind != "algorithmic" or not run.checkpoint_steps or cfg.model.kind != "transformer":
        return None
    step, arrays = run.arrays(step)
    W_E = arrays.get("embed.W_E", arrays.get("W_E"))  # the name of the version that saved it
    p = W_E.shape[1] - 2  # the symbols; then the operation token and "="
    W = W_E[member, :p].astype(np.float64)  # (p, d)
    sq = frequency_sq_norms(W[None])[0]
    keys = key_frequencies(sq[None])[0]
    norms = np.sqrt(sq)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], horizontal_spacing=0.1,
                        subplot_titles=(f"norm per frequency, step {step}: key frequencies {keys}",
                                        f"embedding on cos/sin of k = {keys[0] if keys else '–'}"))
    freqs = np.arange(1, len(norms))
    fig.add_trace(go.Bar(x=freqs, y=norms[1:], marker_color=["#d62728" if f in keys else "#7f7f7f" for f in freqs],
                         name="frequency norm", showlegend=False,
                         hovertemplate="k = %{x}: %{y:.4g}<extra></extra>"), row=1, col=1)
    if keys:
        cos_dir, sin_dir = cos_sin_directions(W, keys[0])
        Wc = W - W.mean(0)
        xy = np.stack([Wc @ (cos_dir / np.linalg.norm(cos_dir)), Wc @ (sin_dir / np.linalg.norm(sin_dir))], 1)
        fig.add_trace(go.Scatter(x=xy[:, 0], y=xy[:, 1], mode="markers+text", text=[str(i) for i in range(p)],
                                 textposition="top center", textfont=dict(size=8), showlegend=False,
                                 marker=dict(color=np.arange(p), colorscale="Twilight", size=7),
                                 hovertemplate="token %{text}<extra></extra>"), row=1, col=2)
        fig.update_yaxes(scaleanchor="x2", scaleratio=1, row=1, col=2)
    fig.update_xaxes(title_text="frequency k", row=1, col=1)
    fig.update_layout(height=420)
    return fig


def run_page(run_dir: str | Path) -> Page:
    run = RunFiles(run_dir)
    cfg, summary = run.config, run.summary or {}
    df = run.metrics
    status = run_status(run)
    steps = int(df["step"].max()) if not df.empty else 0
    sub = (f'<span class="status-{status}">{status}</span> · {steps:,} steps evaluated · '
           f'{html.escape(cfg.task.describe())} · '
           f"{html.escape(cfg.model.kind)} · {len(df['member'].unique()) if not df.empty else 0} member(s)")
    if status == "running":
        sub += " · built while the run is being written: the curves stop at its last saved evaluation"
    page = Page(f"groklab run: {run.path.name}", sub)
    if df.empty:
        page.raw('<p class="meta">no metrics yet</p>')
    else:
        members = sorted(df["member"].unique())
        wides = {e: run.wide(e) for e in members}  # one pivot per member for every figure
        fig = curves_figure(run, members, wides=wides)
        spans = _nanda_spans(wides[members[0]]) if len(members) == 1 else []
        note = ("markers: train (▲) and val (★) first ≥ 99%; click a legend entry to hide a member"
                + ("; shaded: Nanda et al.'s phases " + ", ".join(f"{n} {a}–{'…' if b is None else b}"
                                                                  for n, a, b in spans) if spans else ""))
        page.figure("curves", "accuracy and loss", fig, note)
        for group, names in measure_groups(df["name"].unique().tolist()).items():
            page.figure(f"measure-{group}", group, measures_figure(run, names, members, wides))
        ff = fourier_figure(run)
        if ff is not None:
            page.figure("fourier", "Fourier spectrum of the embedding (member 0, last checkpoint)", ff)
    if summary.get("members"):
        page.table("summary", "summary", pd.DataFrame(summary["members"]))
    page.table("config", "config", pd.DataFrame(sorted(flatten(cfg.to_dict()).items()), columns=["key", "value"]))
    return page


# --------------------------------------------------------------------------- sweep


def _axes(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if "." in c and df[c].nunique(dropna=False) > 1]


def _cell_text(g: pd.DataFrame) -> str:
    return "<br>".join(f"{r.run} seed {r.seed}: {r.phase or r.status}"
                       f"{'' if pd.isna(r.step_val_99) else f', val 99% @ {int(r.step_val_99)}'}"
                       for r in g.itertuples())


def sweep_page(sweep_dir: str | Path) -> Page:
    sweep_dir = Path(sweep_dir)
    df = summarize(sweep_dir)
    axes = _axes(df)
    done = df[df["status"] == "done"]
    counts = df["status"].value_counts().to_dict()
    page = Page(f"groklab sweep: {sweep_dir.name}",
                f"{len(df)} runs ({', '.join(f'{v} {k}' for k, v in counts.items())}) · axes: "
                f"{html.escape(', '.join(axes) or 'none')}")
    if done.empty:
        page.raw('<p class="meta">no finished runs yet</p>')
    elif len(axes) >= 2:
        x, y = axes[0], axes[1]
        rest = axes[2:]
        if rest:
            page.raw(f'<p class="meta">other axes pooled into each cell: {html.escape(", ".join(rest))}</p>')
        xs, ys = sorted(done[x].unique()), sorted(done[y].unique())
        code, text = np.full((len(ys), len(xs)), np.nan), np.full((len(ys), len(xs)), "", dtype=object)
        acc, step = np.full_like(code, np.nan), np.full_like(code, np.nan)
        for (yv, xv), g in done.groupby([y, x]):
            i, j = ys.index(yv), xs.index(xv)
            label = modal_phase(g["phase"])
            code[i, j] = CELLS.index(label) if label in CELLS else np.nan
            text[i, j] = f"<b>{label}</b><br>{x} = {xv:g}, {y} = {yv:g}<br>" + _cell_text(g)
            acc[i, j] = pd.to_numeric(g["val_acc"]).median()
            st = pd.to_numeric(g["step_val_99"]).dropna()
            step[i, j] = np.log10(st.median()) if len(st) else np.nan
        xl, yl = [f"{v:g}" for v in xs], [f"{v:g}" for v in ys]
        n = len(CELLS)
        scale = [[b, PHASE_COLORS[k]] for k in range(n) for b in (k / n, (k + 1) / n)]
        fig = go.Figure(go.Heatmap(z=code, x=xl, y=yl, text=text, hovertemplate="%{text}<extra></extra>",
                                   colorscale=scale, zmin=-0.5, zmax=n - 0.5, xgap=1, ygap=1,
                                   colorbar=dict(tickvals=list(range(n)), ticktext=list(CELLS), title="phase")))
        fig.update_layout(xaxis_title=x, yaxis_title=y, height=520, xaxis_type="category", yaxis_type="category")
        page.figure("phase-diagram", f"phase diagram: {y} against {x} (the phase most seeds reached)", fig,
                    "hover a cell for its runs, seeds and phases")
        for name, z, title, cs in (("val-acc", acc, "final val accuracy (median over seeds)", "Viridis"),
                                   ("step-val-99", step, "log10 step to val 99% (median over seeds that got there)",
                                    "Viridis_r")):
            if np.isnan(z).all():
                page.raw(f'<p class="meta">{html.escape(title)}: no run got there</p>')
                continue
            fig = go.Figure(go.Heatmap(z=z, x=xl, y=yl, text=text, colorscale=cs, xgap=1, ygap=1,
                                       hovertemplate="%{z:.3g}<br>%{text}<extra></extra>"))
            fig.update_layout(xaxis_title=x, yaxis_title=y, height=480, xaxis_type="category", yaxis_type="category")
            page.figure(f"heatmap-{name}", title, fig)
    elif len(axes) == 1:
        x = axes[0]
        fig = make_subplots(rows=1, cols=2, subplot_titles=("final val accuracy", "step to val 99%"))
        for col, metric in ((1, "val_acc"), (2, "step_val_99")):
            v = pd.to_numeric(done[metric], errors="coerce")
            fig.add_trace(go.Scatter(x=done[x], y=v, mode="markers", marker=dict(size=6, opacity=0.6),
                                     text=[f"{r.run} seed {r.seed}: {r.phase}" for r in done.itertuples()],
                                     hovertemplate="%{text}<br>%{y:.4g}<extra></extra>", showlegend=False),
                          row=1, col=col)
            med = done.assign(v=v).groupby(x)["v"].median()
            fig.add_trace(go.Scatter(x=med.index, y=med.to_numpy(), mode="lines", name=f"median {metric}",
                                     line=dict(color="black")), row=1, col=col)
        fig.update_xaxes(title_text=x)
        fig.update_yaxes(type="log", row=1, col=2)
        fig.update_layout(height=420)
        page.figure("sweep-curve", f"results against {x} (points: runs; line: median over seeds)", fig)
    cols = ["run", "seed", *axes, "status", "phase", "step_train_99", "step_val_99", "val_acc", "dir", "member"]
    page.table("runs", "runs", df[[c for c in cols if c in df.columns]], scroll=True)
    return page


# --------------------------------------------------------------------------- bench


def bench_page(bench_dir: str | Path) -> Page:
    bench_dir = Path(bench_dir)
    summary = read_parquet(bench_dir / "bench.parquet")
    runs = read_parquet(bench_dir / "runs.parquet")
    settings = json.loads((bench_dir / "bench.json").read_text()) if (bench_dir / "bench.json").is_file() else {}
    budget = float(settings.get("budget_s") or runs["seconds"].max())
    page = Page(f"groklab bench: {bench_dir.name}",
                f"{summary['method'].nunique()} methods × {summary['task'].nunique()} tasks, "
                f"{len(runs)} runs, budget {budget:g} s a run")
    ranked = summary.sort_values(["task", "prior_knowledge", "rank"])
    cols = ["task", "rank", "method", "prior_knowledge", "reached", "seeds", "seconds_median", "seconds_q25",
            "seconds_q75", "steps_median", "n_params", "ms_per_step"]
    page.table("ranking", "ranking (share of seeds reaching val 99%, then median seconds)",
               ranked[[c for c in cols if c in ranked.columns]])
    cv = bench_curves(runs)
    tasks = list(dict.fromkeys(summary["task"]))
    if not cv.empty:
        fig = make_subplots(rows=1, cols=len(tasks), subplot_titles=tasks, shared_yaxes=True)
        pos = cv["time_s"][cv["time_s"] > 0]
        t_min = max(float(pos.min()) if len(pos) else 1e-2, 1e-3)
        grid = np.union1d(np.geomspace(t_min, max(budget, t_min * 10), 300), pos)  # every evaluation's time too
        methods = list(dict.fromkeys(summary["method"]))
        prior = dict(zip(summary["method"], summary["prior_knowledge"]))
        for j, task in enumerate(tasks):
            for i, m in enumerate(methods):
                c = cv[(cv["task"] == task) & (cv["method"] == m)]
                if c.empty:
                    continue
                y = median_curve(c, grid)
                fig.add_trace(go.Scatter(x=grid, y=y, mode="lines", name=m, legendgroup=m, showlegend=j == 0,
                                         line=dict(color=PALETTE[i % len(PALETTE)],
                                                   dash="dash" if prior.get(m) else "solid"),
                                         hovertemplate=f"{m}: %{{y:.3f}} at %{{x:.3g}} s<extra>{task}</extra>"),
                              row=1, col=j + 1)
            fig.add_hline(y=0.99, line=dict(color="#555555", dash="dot", width=1), row=1, col=j + 1)
        fig.update_xaxes(type="log", title_text="wall-clock seconds")
        fig.update_yaxes(title_text="val acc (median over seeds of best so far)", row=1, col=1)
        fig.update_layout(height=450)
        page.figure("val-acc-vs-seconds", "val accuracy against wall-clock seconds, per method", fig,
                    "dashed: methods using prior knowledge of the task")
    page.table("runs", "runs", runs.drop(columns=[c for c in ("run_dir",) if c in runs.columns]), scroll=True)
    return page


# --------------------------------------------------------------------------- compare


def config_differences(runs: list[RunFiles]) -> pd.DataFrame:
    flat = [flatten(r.config.to_dict()) for r in runs]
    keys = sorted(set().union(*flat))
    rows = [{"key": k, **{str(r.path): f.get(k, "–") for r, f in zip(runs, flat)}} for k in keys
            if len({json.dumps(f.get(k), sort_keys=True, default=str) for f in flat}) > 1]
    return pd.DataFrame(rows, columns=["key", *[str(r.path) for r in runs]])


def compare_page(run_dirs: list[str | Path], member: int | None = None) -> Page:
    """Several runs (every member of each, or ``member``) overlaid, and their config differences."""
    if len(run_dirs) < 1:
        raise ConfigError("RUN", run_dirs, "give at least one run")
    runs = [RunFiles(p) for p in run_dirs]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("accuracy", "loss"), horizontal_spacing=0.08)
    k = 0
    for r in runs:
        df = r.metrics
        if df.empty:
            continue
        members = sorted(df["member"].unique()) if member is None else [member]
        for e in members:
            if e not in set(df["member"]):
                raise ConfigError("--member", e, f"{r.path} has members {sorted(set(df['member']))}")
            w = r.wide(e)
            w = w.iloc[thin(w.index.to_numpy())]
            name = f"{r.path.name}" + (f"[{e}]" if len(set(df["member"])) > 1 else "")
            color = PALETTE[k % len(PALETTE)]
            k += 1
            for col, metric in ((1, "acc"), (2, "loss")):
                for split, dash in (("train", "dash"), ("val", "solid")):
                    if f"{split}_{metric}" in w:
                        fig.add_trace(go.Scatter(x=_x(w.index), y=w[f"{split}_{metric}"], mode="lines",
                                                 name=f"{name}: {split}", legendgroup=name, showlegend=col == 1,
                                                 line=dict(color=color, dash=dash, width=1.6)), row=1, col=col)
    fig.update_xaxes(type="log", title_text="optimization step")
    fig.update_yaxes(range=[-0.02, 1.02], row=1, col=1)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_layout(height=450, legend=dict(groupclick="togglegroup"))
    page = Page(f"groklab compare: {len(runs)} runs", " · ".join(html.escape(str(r.path)) for r in runs))
    page.figure("compare-curves", "train (dashed) and val (solid) curves", fig)
    diff = config_differences(runs)
    page.table("config-differences", "config keys that differ" if len(diff) else "configs are identical", diff)
    summ = [{"run": str(r.path), "member": e, **{k: m.get(k) for k in ("seed", "step_train_99", "step_val_99",
                                                                        "val_acc", "phase")}}
            for r in runs for e, m in enumerate((r.summary or {"members": []})["members"])
            if member is None or e == member]
    if summ:
        page.table("summary", "summary", pd.DataFrame(summ))
    return page


# --------------------------------------------------------------------------- entry points


def report_kind(path: str | Path) -> str:
    p = Path(path)
    if (p / "config.json").is_file():
        return "run"
    if (p / "sweep.json").is_file():
        return "sweep"
    if (p / "bench.parquet").is_file():
        return "bench"
    raise ConfigError("PATH", str(path), "not a run (config.json), sweep (sweep.json) or bench (bench.parquet) "
                                        "directory")


def write_report(path: str | Path, out: str | Path | None = None) -> Path:
    """Build the report of a run, sweep or bench directory; write it to ``out`` (default
    PATH/report.html). Returns the path written."""
    kind = report_kind(path)
    page = {"run": run_page, "sweep": sweep_page, "bench": bench_page}[kind](path)
    out = Path(out) if out else Path(path) / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page.html(), encoding="utf-8")
    return out


def write_compare(run_dirs: list[str | Path], out: str | Path, member: int | None = None) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(compare_page(run_dirs, member).html(), encoding="utf-8")
    return out


__all__ = ["write_report", "write_compare", "report_kind", "run_page", "sweep_page", "bench_page",
           "compare_page", "config_differences", "thin", "MAX_POINTS"]
