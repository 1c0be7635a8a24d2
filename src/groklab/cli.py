"""The ``groklab`` command: train | sweep | phase-diagram | runs | plot | analyze | measures | presets | tasks.

Bad input exits with status 2 and one line naming the field and the value, before any
run directory is created.
"""

from __future__ import annotations

import copy
import json
import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import List, Optional

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from groklab.config import ConfigError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Reproduce, measure, explain and accelerate grokking.")
# soft_wrap: a long line (a run's path, an error) is printed whole, not broken at the console's
# width (80 columns when piped), so that what scripts and grep read is what was said
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _fail(msg: str) -> None:
    err.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _names(text: str) -> list[str]:
    """"a, b,c" -> ["a", "b", "c"]"""
    return [n.strip() for n in text.split(",") if n.strip()]


def _fmt(x, nd=3):
    """None -> "-"; a float with ``nd`` decimals, or as 2.15e-4 where those would hide it."""
    if x is None:
        return "-"
    if isinstance(x, float):
        if x != 0 and (abs(x) < 10 ** -nd or abs(x) >= 1e6):
            mant, exp = f"{x:.2e}".split("e")
            return f"{mant}e{int(exp)}"
        return f"{x:.{nd}f}"
    return str(x)


def _table(header: list[str], rows: list[list[str]], *, left: tuple[str, ...] = (), fold: tuple[str, ...] = (),
           words: tuple[str, ...] = (), title: str | None = None) -> Table:
    """A table that stays readable at 80 columns and in pipes (whose width is taken as 80):
    no vertical rules; numbers and short words keep their widest cell; where the console is
    too narrow, ``words`` columns wrap at spaces (down to their longest word) and then
    ``fold`` columns (paths) break anywhere (down to 8 characters). No cell is cut short."""
    nat = [max(len(x) for x in [name] + [r[i] for r in rows]) for i, name in enumerate(header)]
    width = list(nat)
    room = out.width - len(header)  # the rule between columns is a space; one to spare
    for group, floor in ((words, lambda i: max(len(w) for x in [header[i]] + [r[i] for r in rows] for w in x.split())),
                         (fold, lambda i: min(8, nat[i]))):
        for i, name in enumerate(header):
            if name in group and sum(width) > room:
                width[i] = max(floor(i), width[i] - (sum(width) - room))
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, padding=0)
    for i, name in enumerate(header):
        t.add_column(name, justify="left" if name in left else "right", width=width[i],
                     overflow="fold", no_wrap=name not in words and name not in fold)
    for r in rows:
        t.add_row(*r)
    return t


@app.command()
def train(
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="A named recipe (groklab presets)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="A TOML file of overrides."),
    sets: List[str] = typer.Option([], "--set", "-s", help="key=value, e.g. optim.lr=3e-3 (repeatable)."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where run directories go."),
    name: Optional[str] = typer.Option(None, "--name", help="Run directory name (default: preset-time)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this directory; with "
                                          "--set train.steps=N (or train.stop_val_acc=none), extend a finished one."),
    device: Optional[str] = typer.Option(None, "--device", help="Shorthand for --set train.device=..."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config, the members and an "
                                                           "estimate of the time (from 60 timed steps); train nothing."),
):
    """Train one run (an ensemble when lists are given, e.g. --set train.seeds=[0,1,2])."""
    from groklab.resolve import resolve
    from groklab.store import RunDirError
    from groklab.training.loop import default_run_name
    from groklab.training.loop import resume as resume_run
    from groklab.training.loop import train as train_run

    try:
        if resume is not None:
            if preset or config or name:
                _fail("--resume takes the run directory (its saved config is used) and, to extend the run, "
                      "--set train.steps=N / train.stop_val_acc=none")
            extend = list(sets) + ([f"train.device={device}"] if device else [])
            out.print(f"{'extending' if extend else 'resuming'} [bold]{resume}[/]")
            run = resume_run(resume, progress=not quiet, overrides=extend)
        else:
            overrides = list(sets) + ([f"train.device={device}"] if device else [])
            cfg = resolve(preset, config, overrides)
            if dry_run:
                return _dry_run(cfg)
            run_dir = runs_dir / (name or default_run_name(cfg))
            out.print(f"run directory: [bold]{run_dir}[/]")
            run = train_run(cfg, run_dir, progress=not quiet)
    except (ConfigError, RunDirError) as e:
        _fail(str(e))
    except KeyboardInterrupt:
        err.print("interrupted: the run directory holds the last checkpoint; continue with --resume")
        raise typer.Exit(130)
    _print_summary(run)


def _dry_run(cfg) -> None:
    """The resolved config, the ensemble's members, and the time the run would take: a
    60-step run's own clock from step 10 to 60 (an evaluation every 10 steps, denser than
    most of a run's) scaled to the run's length, plus start-up; a rough, high figure."""
    import tempfile
    import time

    from groklab.resolve import check
    from groklab.training.loop import train as train_run

    out.print_json(json.dumps(cfg.to_dict()))
    E = cfg.n_members
    keys = ["train.seeds", "optim.lr", "optim.weight_decay", "model.init_scale", "optim.embed_lr"]
    rows = [[str(e)] + [_fmt(cfg.member_values(k)[e], 4) if isinstance(cfg.member_values(k)[e], float)
                        else str(cfg.member_values(k)[e]) for k in keys] for e in range(E)]
    out.print(_table(["member", *keys], rows, title=f"{E} member(s)"))
    if E > 1:
        out.print("lists pair up member by member (member e takes element e of each list); they do not form "
                  "a grid: for a grid, write a sweep (groklab sweep)", highlight=False)
    with tempfile.TemporaryDirectory(prefix="groklab-dry-") as tmp:
        c = copy.deepcopy(cfg)
        c.train.steps, c.train.stop_val_acc, c.train.progress, c.train.eval_every = 60, None, False, 10
        t = time.perf_counter()
        m = train_run(check(c), Path(tmp) / "dry", progress=False).metrics
        startup = time.perf_counter() - t
    clock = m[(m.name == "time_s") & (m.member == 0)].set_index("step")["value"]  # training seconds, start-up out
    per_step = (clock[60] - clock[10]) / 50  # an evaluation every 10 steps: denser than most of a run's
    startup -= clock[60]
    total = startup + per_step * cfg.train.steps
    stop = " (less if it stops early)" if cfg.train.stop_val_acc is not None else ""
    out.print(f"estimate: {per_step * 1e3:.1f} ms/step here, about {total:.0f} s for {cfg.train.steps} steps{stop}",
              highlight=False)


def _print_summary(run) -> None:
    s = run.summary
    header = ["#", "seed", "lr", "wd", "train acc", "val acc", "train 99%", "val 99%", "s to val 99%", "phase"]
    rows = [[str(e), str(m["seed"]), _fmt(m["lr"], 4), _fmt(m["weight_decay"], 3), _fmt(m["train_acc"]),
             _fmt(m["val_acc"]), _fmt(m["step_train_99"]), _fmt(m["step_val_99"]), _fmt(m["seconds_val_99"], 1),
             m["phase"] or "-"] for e, m in enumerate(s["members"])]
    t = _table(header, rows, left=("phase",), words=("train acc", "val acc", "train 99%", "val 99%", "s to val 99%"),
               title=f"{run.path}  ({s['status']}, {s['steps']} steps, {s.get('seconds', 0):.1f} s)")
    out.print(t)
    if s["status"] == "stopped":
        out.print("stopped: early stop, every member held val acc >= train.stop_val_acc for "
                  "train.stop_patience evaluations", highlight=False)


@app.command()
def sweep(
    spec: Path = typer.Argument(..., help="A sweep spec (TOML); see sweeps/ for examples."),
    executor: str = typer.Option("ensemble", "--executor", "-e", help="ensemble | process | ray"),
    address: Optional[str] = typer.Option(None, "--address", help="Ray: join this cluster (default: start one)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="process/ray: parallel runs."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="The sweep goes in RUNS_DIR/<spec name>."),
    max_members: int = typer.Option(1024, "--max-members", help="ensemble: members per run directory."),
    ray_storage: str = typer.Option("object-store", "--ray-storage",
                                    help="ray: object-store (runs train on each worker's own disk and travel "
                                         "back to this machine; no shared file system) | shared (every node "
                                         "sees RUNS_DIR)."),
    retries: int = typer.Option(3, "--retries", help="ray, object-store: times a run lost with its worker is "
                                                     "started again from its last checkpoint."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
):
    """Run a sweep; running it again skips finished runs and resumes interrupted ones."""
    from groklab.store import RunDirError
    from groklab.sweep import SweepSpec, run_sweep

    try:
        s = SweepSpec.load(spec)
        if address and executor != "ray":
            _fail(f"--address {address} is for --executor ray (got {executor!r})")
        sweep_dir = runs_dir / s.name
        out.print(f"sweep directory: [bold]{sweep_dir}[/]")
        df = run_sweep(s, sweep_dir, executor, workers=workers, address=address, max_members=max_members,
                       ray_storage=ray_storage, retries=retries, progress=not quiet, log=out.print)
    except (ConfigError, RunDirError) as e:
        _fail(str(e))
    except KeyboardInterrupt:
        err.print("interrupted: finished runs are kept; run the same command again to continue")
        raise typer.Exit(130)
    t = Table(title=f"{s.name}: {len(df)} runs")
    for c in ("phase", "runs", "median step_val_99"):
        t.add_column(c)
    for phase, g in df.groupby(df["phase"].fillna("-")):
        steps = g["step_val_99"].dropna()
        t.add_row(str(phase), str(len(g)), _fmt(float(steps.median()), 0) if len(steps) else "-")
    out.print(t)
    out.print(f"summary: {sweep_dir / 'summary.parquet'}")


@app.command("phase-diagram")
def phase_diagram(
    sweep_dir: Path = typer.Argument(..., help="A sweep directory."),
    x: str = typer.Option(..., "--x", help="The axis across, e.g. optim.lr."),
    y: Optional[str] = typer.Option(None, "--y", help="The axis up (omit for a 1-D curve)."),
    color: str = typer.Option("phase", "--color", help="phase, or a metric (e.g. step_val_99, val_acc)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="PNG path (default: in SWEEP_DIR)."),
):
    """A phase diagram (two axes), or a metric against one axis with the seed spread."""
    from groklab.report.sweep_plots import plot_phase_diagram, plot_sweep_curve
    from groklab.sweep import summarize

    try:
        df = summarize(sweep_dir)
        if y is None:
            metric = "step_val_99" if color == "phase" else color
            path = plot_sweep_curve(df, x, output or sweep_dir / f"curve_{metric}.png", metric)
        else:
            path = plot_phase_diagram(df, x, y, output or sweep_dir / f"phase_{color}.png", color)
    except ConfigError as e:
        _fail(str(e))
    out.print(f"figure: {path}")


@app.command()
def landscape(
    sweep_dir: Path = typer.Argument(..., help="A fixed-norm sweep over model.init_scale (e.g. "
                                               "sweeps/omnigrok_mnist_landscape.toml)."),
    y: str = typer.Option("task.train_size", "--y", help="The other axis of the sweep."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="PNG path (default: SWEEP_DIR/landscape.png)."),
):
    """Omnigrok's LU landscape: best train / test error vs alpha (slices and heatmaps), and its table."""
    from groklab.report.landscape import landscape_table, plot_landscape
    from groklab.store import write_parquet

    try:
        table = landscape_table(sweep_dir, y)
        path = plot_landscape(table, output or sweep_dir / "landscape.png", y)
    except ConfigError as e:
        _fail(str(e))
    write_parquet(sweep_dir / "landscape.parquet", table)
    t = Table(title=f"{sweep_dir}: error = 1 - best accuracy over the run")
    for col in (y, "alpha", "train error", "test error", "final test acc"):
        t.add_column(col, justify="right")
    for _, r in table.iterrows():
        t.add_row(str(r[y]), f"{r['alpha']:.3g}", f"{r['train_error']:.3f}", f"{r['test_error']:.3f}",
                  f"{r['final_test_acc']:.3f}")
    out.print(t)
    out.print(f"figure: {path}\ntable: {sweep_dir / 'landscape.parquet'}")


@app.command()
def emergence(
    run_dir: Path = typer.Argument(..., help="A sparse-parity run with per-subtask losses (measures=['subtasks'])."),
    member: int = typer.Option(0, "--member", help="Ensemble member."),
    threshold: float = typer.Option(0.1, "--threshold", help="Loss (bits) below which a subtask counts as learned."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="PNG path (default: RUN_DIR/emergence.png)."),
):
    """Quanta: when each subtask is learned (in order of frequency?) and how abruptly."""
    from groklab.quanta.emergence import emergence as run_emergence
    from groklab.quanta.emergence import subtask_curves
    from groklab.report.quanta_plots import plot_emergence
    from groklab.run import Run
    from groklab.store import RunDirError, write_parquet

    try:
        run = Run(run_dir)
        curves = subtask_curves(run.metrics, member)
    except (RunDirError, ValueError) as e:
        _fail(str(e))
    res = run_emergence(curves, threshold, run.task.probs.numpy() if run.config.task.kind == "sparse_parity" else None)
    path = plot_emergence(curves, res, output or run_dir / "emergence.png")
    write_parquet(run_dir / "emergence.parquet", res["table"].reset_index())
    lo, hi = res["abruptness_iqr"]
    out.print(f"{res['n_learned']}/{res['n_tasks']} subtasks below {threshold:g} bits; "
              f"Spearman rho(rank, emergence step) = {res['spearman_rho']:.3f} (p = {res['spearman_p']:.2g}); "
              f"median abruptness (t10 - t90) / t90 = {res['median_abruptness']:.3f} (IQR {lo:.3f}-{hi:.3f}); "
              f"log-log slope of emergence step vs frequency {res['step_vs_frequency_slope']:.2f} "
              f"(paper -0.81, theory -1)")
    out.print(f"figure: {path}\ntable: {run_dir / 'emergence.parquet'}")


@app.command()
def scaling(
    sweep_dir: Path = typer.Argument(..., help="A sparse-parity sweep (e.g. sweeps/michaud2023_parity_laptop_N.toml)."),
    x: str = typer.Option("model.hidden", "--x", help="model.hidden (parameters N) | task.train_size (D) | "
                                                      "step (S: the loss curves of the largest model)"),
    stat: Optional[str] = typer.Option(None, "--stat", help="final | min loss over training (default: min for D, "
                                                            "else final, as the paper)"),
    fit_range: Optional[str] = typer.Option(None, "--fit-range", help="lo,hi: fit X in [lo, hi) only "
                                                                      "(steps: the paper's 500,15000; D default: "
                                                                      "from the first D below 0.95 bits)"),
    n_boot: int = typer.Option(2000, "--n-boot", help="Bootstrap replicates."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="PNG path (default: SWEEP_DIR/scaling_<x>.png)."),
):
    """Power-law scaling L ~ X^-alpha_X with a bootstrap 95% interval over seeds, against theory."""
    from groklab.quanta.scaling import (KINDS, bootstrap_power_law, from_first_below, scaling_points, steps_points,
                                        theory_exponent)
    from groklab.report.quanta_plots import plot_scaling
    from groklab.store import RunDirError

    if x not in KINDS:
        _fail(f"--x={x!r}: choose from {', '.join(KINDS)}")
    kind = KINDS[x]
    try:
        rng = None
        if fit_range:
            lo, hi = (float(v) for v in fit_range.split(","))
            rng = (lo, hi)
    except ValueError:
        _fail(f"--fit-range={fit_range!r}: expected lo,hi")
    try:
        if kind == "S" and x == "step":
            pts = steps_points(sweep_dir, step_range=rng)
        else:
            pts = scaling_points(sweep_dir, x, stat or ("min" if kind == "D" else "final"))
            if rng:
                pts = pts[(pts["x"] >= rng[0]) & (pts["x"] < rng[1])]
            elif kind == "D":  # as the paper: from the first D whose loss is below 0.95 bits
                pts = from_first_below(pts, 0.95)
        fit = bootstrap_power_law(pts, n_boot=n_boot)
    except (ConfigError, RunDirError, ValueError) as e:
        _fail(str(e))
    alpha = float(pts["zipf_alpha"].iloc[0])
    theory = theory_exponent(kind, alpha)
    path = plot_scaling(pts, fit, kind, theory, output or sweep_dir / f"scaling_{x.replace('.', '_')}.png")
    out.print(f"alpha_{kind} = {fit.exponent:.3f}, {fit.level:.0%} interval [{fit.ci_low:.3f}, {fit.ci_high:.3f}] "
              f"({fit.n_x} values of {x}, {fit.n_runs} points, {fit.n_boot} bootstrap replicates); "
              f"theory {theory:.3f} at Zipf alpha {alpha:g}")
    out.print(f"figure: {path}")


@app.command()
def qdg(
    run_dir: Path = typer.Argument(..., help="A trained sparse-parity run."),
    member: int = typer.Option(0, "--member", help="Ensemble member."),
    samples: int = typer.Option(2000, "--samples", help="Fresh samples drawn from the task's distribution."),
    min_count: int = typer.Option(5, "--min-count", help="Cluster the subtasks with at least this many kept samples."),
    with_control: bool = typer.Option(False, "--with-control", help="Keep the first layer's control-block rows."),
    similarity: str = typer.Option("cos", "--similarity", help="cos (the paper's C) | abs (its C_abs)"),
    gradient: str = typer.Option("loss", "--gradient", help="loss (the paper's) | logit_diff (groklab's variant: "
                                 "the gradient of z1 - z0, the label's sign taken out)"),
    affinity: str = typer.Option("angular", "--affinity", help="angular (the paper's 1 - arccos(C)/pi) | rbf "
                                 "(groklab's variant: exp((C - 1)/tau))"),
    tau: float = typer.Option(0.03, "--tau", help="Width of the rbf affinity (0.03, groklab.quanta.qdg.RBF_TAU: "
                              "chosen on dev seed 0)."),
    clustering: str = typer.Option("spectral", "--clustering", help="spectral (the paper's, on the affinity) | "
                                   "average (groklab's variant: average-linkage clustering of the cosine distance)"),
    norm: str = typer.Option("global", "--norm", help="global (the paper's: one norm per gradient) | tensor "
                             "(groklab's variant: each parameter tensor's part normalised on its own)"),
    n_clusters: Optional[int] = typer.Option(None, "--clusters", help="Clusters (default: the subtasks kept)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the samples and of the clustering."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="PNG path (default: RUN_DIR/qdg.png)."),
):
    """Quanta discovery from gradients: cluster per-sample gradients, score against the true subtasks."""
    from groklab.quanta.qdg import qdg as run_qdg
    from groklab.report.quanta_plots import plot_qdg
    from groklab.run import Run
    from groklab.store import RunDirError

    try:
        run = Run(run_dir)
        if run.config.task.kind != "sparse_parity":
            _fail(f"RUN_DIR={str(run_dir)!r}: QDG is scored on task.kind='sparse_parity'; "
                  f"this run is {run.config.task.kind!r}")
        res = run_qdg(run.model(), run.task, member, samples, min_count=min_count, n_clusters=n_clusters,
                      with_control=with_control, similarity=similarity, seed=seed, gradient=gradient,
                      affinity=affinity, tau=tau, clustering=clustering, norm=norm)
    except (RunDirError, ValueError) as e:
        _fail(str(e))
    path = plot_qdg(res, output or run_dir / "qdg.png")
    out.print(f"{res['n_learned']} subtasks learned; {res['n_kept']}/{res['n_drawn']} samples of them with loss < 0.1 "
              f"nats ({res['n_rare_dropped']} more of subtasks with < {min_count} set aside), {res['n_subtasks']} "
              f"subtasks; {res['method']}: {res['n_clusters']} clusters on {res['n_params']} gradient coordinates "
              f"({similarity}): ARI {res['ari']:.3f}, NMI {res['nmi']:.3f}, homogeneity {res['homogeneity']:.3f}")
    out.print(f"figure: {path}")


@app.command()
def theory(
    p: int = typer.Option(10, "--p", help="Symbols of the toy task (add_int, a <= b as in Liu et al.)."),
    n_splits: int = typer.Option(100, "--n-splits", help="Random training splits per fraction."),
    sweep_dir: Optional[Path] = typer.Option(None, "--sweep", help="A toy sweep over task.fraction to compare with."),
    output: Path = typer.Option(Path("runs/theory"), "--output", "-o", help="Directory for the figures and tables."),
    step: float = typer.Option(0.05, "--step", help="Spacing of the fraction grid of the theory (from 0.1 to 0.95)."),
    n_boot: int = typer.Option(2000, "--n-boot", help="With --sweep: bootstrap resamples (over splits) for the "
                                                      "95% intervals; 0 for none."),
):
    """The effective theory (Liu et al. 2022): lambda3 and the critical training fraction,
    and, with --sweep, the same against measured toy runs."""
    import numpy as np

    from groklab.report.theory_plots import plot_critical_fraction, plot_lambda3, plot_theory_vs_runs
    from groklab.theory import critical_fraction_of, lambda3_vs_fraction

    try:
        if not 0 < step <= 0.5:
            _fail(f"--step {step}: must lie in (0, 0.5]")
        fractions = np.round(np.arange(0.1, 0.95 + step / 2, step), 4)
        res = lambda3_vs_fraction(p, fractions, n_splits)
        output.mkdir(parents=True, exist_ok=True)
        crit = critical_fraction_of(res)
        t = Table(title=f"effective theory, add_int p={p}, {n_splits} splits per fraction")
        for c in ("fraction", "train pairs", "median λ3", "P(λ3 > 0)"):
            t.add_column(c, justify="right")
        for i, f in enumerate(res["fraction"]):
            t.add_row(f"{f:.2f}", str(int(res["n_train"][i])), f"{res['median'][i]:.3f}",
                      f"{res['share_positive'][i]:.2f}")
        out.print(t)
        out.print(f"predicted critical fraction: [bold]{crit:.3f}[/]")
        out.print(f"figure: {plot_lambda3(res, output / 'lambda3.png')}")
        if sweep_dir is not None:
            from groklab.theory.compare import measured_critical_fraction, runs_table

            tab = runs_table(sweep_dir)
            tab.to_csv(output / "runs.csv", index=False)
            measured, share = measured_critical_fraction(tab)
            t = Table(title=f"toy runs in {sweep_dir}")
            for c in ("fraction", "runs", "generalized", "median λ3", "median step linear"):
                t.add_column(c, justify="right")
            for f, g in tab.groupby("fraction"):
                t.add_row(f"{f:.2f}", str(len(g)), f"{g['generalized'].mean():.2f}",
                          f"{g['lambda3'].median():.3f}", _fmt(float(g["step_linear"].median()), 0))
            out.print(t)
            out.print(f"measured critical fraction: [bold]{measured:.3f}[/] "
                      f"(half of the plateau {share.iloc[-1]:.2f}); predicted {crit:.3f}; "
                      f"difference {measured - crit:+.3f}")
            if n_boot > 0:
                from groklab.theory.compare import bootstrap_critical_fractions

                b = bootstrap_critical_fractions(tab, res["lambda3"], res["fraction"], n_boot)
                out.print("95% intervals (bootstrap over splits, {n} resamples): measured [{m[0]:.3f}, {m[1]:.3f}], "
                          "predicted [{p[0]:.3f}, {p[1]:.3f}], difference [{d[0]:+.3f}, {d[1]:+.3f}]".format(
                              n=n_boot, m=b["measured"], p=b["predicted"], d=b["difference"]))
            record = {"sweep": str(sweep_dir), "p": p, "n_splits": n_splits, "step": step, "predicted": crit,
                      "measured": measured, "plateau": float(share.iloc[-1]), "runs": len(tab)}
            if n_boot > 0:
                record.update({f"{k}_ci95": list(b[k]) for k in ("measured", "predicted", "difference")},
                              n_boot=n_boot)
            (output / "critical_fraction.json").write_text(json.dumps(record, indent=2) + "\n")
            n_runs = tab.groupby("fraction")["generalized"].size()
            path = plot_critical_fraction(share, n_runs, res, measured, crit, output / "critical_fraction.png",
                                          b["measured"] if n_boot > 0 else None,
                                          b["predicted"] if n_boot > 0 else None)
            out.print(f"figure: {path}")
            ok = tab["generalized"] & (tab["lambda3"] > 0)
            path = plot_theory_vs_runs(tab["lambda3"].to_numpy()[ok], tab["step_linear"].to_numpy()[ok],
                                       output / "theory_vs_runs.png",
                                       ylabel="steps until the representation is linear (R² ≥ 0.99)")
            out.print(f"figure: {path}")
    except ConfigError as e:
        _fail(str(e))


def _members_cells(ms: list[dict]) -> tuple[str, str, str]:
    """val acc, step to val 99% and phase of a run's members: the value of one member; for
    an ensemble the median (val acc; step over the members that got there, with their
    count) and the most common phase with its count."""
    if not ms:
        return "-", "-", "-"
    if len(ms) == 1:
        return _fmt(ms[0]["val_acc"]), _fmt(ms[0]["step_val_99"]), ms[0]["phase"] or "-"
    acc = [m["val_acc"] for m in ms if m["val_acc"] is not None]
    steps = [m["step_val_99"] for m in ms if m["step_val_99"] is not None]
    phase, n = Counter(m["phase"] or "-" for m in ms).most_common(1)[0]
    return (_fmt(statistics.median(acc)) if acc else "-",
            f"{int(statistics.median(steps))} ({len(steps)}/{len(ms)})" if steps else f"- (0/{len(ms)})",
            f"{phase} {n}/{len(ms)}")


@app.command()
def runs(
    path: Optional[Path] = typer.Argument(None, help="A directory of runs or sweeps, or one run "
                                                      "(default: --runs-dir)."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Directory of runs."),
    status: Optional[str] = typer.Option(None, "--status", help="Only runs with this status (running, "
                                                                 "completed, stopped, interrupted, diverged)."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Only runs from this preset."),
    sort: str = typer.Option("name", "--sort", help="name | steps | val_acc | step_val_99 (first member)."),
):
    """The runs under a directory, sweeps' runs included, with their status (running while a
    process trains them) and results."""
    from groklab.rundir import RunDirError, find_runs, read_config, read_summary, writer_pid

    keys = ("name", "steps", "val_acc", "step_val_99")
    if sort not in keys:
        _fail(f"--sort {sort!r}: use one of {', '.join(keys)}")
    root = path or runs_dir
    if path is not None and not path.exists():
        _fail(f"PATH={str(path)!r}: no such directory")
    rows = []
    for p in find_runs(root):
        try:
            cfg, s = read_config(p), read_summary(p) or {"members": [], "status": "interrupted", "steps": 0}
        except RunDirError as e:
            err.print(f"skipped: {escape(str(e))}", highlight=False)
            continue
        st = "running" if writer_pid(p) is not None else s["status"]
        if (status and st != status) or (preset and cfg.preset != preset):
            continue
        name = str(p.relative_to(root)) if p != Path(root) else p.name
        rows.append((name, cfg, st, s))
    if not rows:
        out.print(f"no runs in {root}" + (" that match" if status or preset else ""))
        return

    def key(r):
        first = r[3]["members"][0] if r[3]["members"] else {}
        v = r[0] if sort == "name" else r[3]["steps"] if sort == "steps" else first.get(sort)
        return (v is None, v if v is not None else 0)

    header = ["run", "task", "model", "status", "step", "val acc", "val 99%", "phase"]
    table_rows = [[name, cfg.task.describe(), cfg.model.kind, st,
                   str(s["steps"]) + (" (checkpoint)" if st == "running" else ""), *_members_cells(s["members"])]
                  for name, cfg, st, s in sorted(rows, key=key)]
    t = _table(header, table_rows, left=("run", "task", "model", "status", "phase"), fold=("run",),
               words=("task", "step", "val acc", "val 99%", "phase"))
    out.print(t)
    notes = ["ensembles: medians over the members; val 99%: (members that got there / members)"]
    if any(r[2] == "stopped" for r in rows):
        notes.append("stopped: early stop (val acc held >= train.stop_val_acc)")
    if any(r[2] == "interrupted" for r in rows):
        notes.append("interrupted: killed or stopped by hand; continue with `groklab train --resume RUN`")
    for n in notes:
        out.print(n, highlight=False)


@app.command()
def plot(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="PNG path (default RUN_DIR/curves.png)."),
    member: Optional[int] = typer.Option(None, "--member", help="Only this ensemble member."),
    measures: Optional[str] = typer.Option(None, "--measures", "-m",
                                           help="Comma-separated measures (as `analyze` takes them) or saved "
                                                "metrics to draw under the accuracy."),
    ensemble: bool = typer.Option(False, "--ensemble",
                                  help="Every member in its own colour, labelled by its hyperparameters, "
                                       "with the weight norm."),
    title: Optional[str] = typer.Option(None, "--title", help="The figure's title (--ensemble)."),
    phases: bool = typer.Option(False, "--phases",
                                help="The memorization / circuit formation / cleanup phases of Nanda et al. "
                                     "2023 (needs `groklab analyze RUN -m restricted_loss`)."),
):
    """Accuracy and loss vs step (log x), train and val, events marked; from saved files.
    With --measures: accuracy and the named progress measures, one panel each. With --phases:
    accuracy with the phases of Nanda et al. 2023 shaded, and the losses they come from."""
    from groklab.report.plots import plot_ensemble, plot_measures, plot_phases, plot_run
    from groklab.store import RunDirError

    if sum([phases, bool(measures), ensemble]) > 1:
        _fail("--phases, --measures and --ensemble draw different figures: give one of them")
    try:
        if ensemble:
            path = plot_ensemble(run_dir, output, title)
        elif phases:
            path = plot_phases(run_dir, output, member or 0)
        elif measures:
            path = plot_measures(run_dir, _names(measures), output, member or 0)
        else:
            path = plot_run(run_dir, output, member)
    except (RunDirError, ValueError) as e:
        _fail(str(e))
    out.print(f"wrote {path}")


@app.command()
def report(
    path: Path = typer.Argument(..., help="A run, sweep or bench directory."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="HTML path (default PATH/report.html)."),
):
    """One self-contained interactive HTML file (works offline, no network request) of a
    run, a sweep or a bench, built from its saved files, also while a run is training."""
    from groklab.report.html import write_report
    from groklab.store import RunDirError

    if not path.exists():
        _fail(f"PATH={str(path)!r}: no such directory")
    try:
        written = write_report(path, output)
    except (RunDirError, ConfigError, ValueError) as e:
        _fail(str(e))
    out.print(f"wrote {written} ({written.stat().st_size / 1e6:.1f} MB)")


@app.command()
def compare(
    run_dirs: list[Path] = typer.Argument(..., help="Run directories."),
    output: Path = typer.Option(Path("compare.html"), "-o", "--output",
                                help="An .html file (interactive) or a .png file."),
    member: Optional[int] = typer.Option(None, "--member", help="Only this member of each run (default all)."),
):
    """Curves of several runs (or their members) overlaid, with the config keys that differ."""
    from groklab.store import RunDirError

    for p in run_dirs:
        if not p.exists():
            _fail(f"RUN={str(p)!r}: no such directory")
    suffix = output.suffix.lower()
    if suffix not in (".html", ".png"):
        _fail(f"--output {str(output)!r}: must end in .html or .png")
    from groklab.report.html import config_differences, write_compare
    from groklab.report.plots import plot_compare
    from groklab.run import Run

    try:
        written = (write_compare if suffix == ".html" else plot_compare)(run_dirs, output, member)
        diff = config_differences([Run(p) for p in run_dirs])
    except (RunDirError, ConfigError, ValueError) as e:
        _fail(str(e))
    if len(diff):
        out.print(_table(["key", *[p.name for p in run_dirs]],
                         [[str(v) for v in row] for row in diff.itertuples(index=False)], left=("key",),
                         fold=tuple(p.name for p in run_dirs)))
    else:
        out.print("the configs are identical")
    out.print(f"wrote {written}")


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    to: str = typer.Option(..., "--to", help="tensorboard | mlflow | wandb | transformer-lens"),
    dest: Optional[Path] = typer.Option(None, "--dest", help="Where to write (default RUN_DIR/<tracker>)."),
    member: Optional[int] = typer.Option(None, "--member", help="transformer-lens: the member (default 0)."),
):
    """A run's metrics (per member, with their steps), config (as hyperparameters) and figures,
    into TensorBoard event files, an MLflow file store or an offline W&B run; or one member's
    weights in TransformerLens's names and shapes."""
    from groklab.export import export_run, mlflow_uri
    from groklab.store import RunDirError

    if not run_dir.exists():
        _fail(f"RUN_DIR={str(run_dir)!r}: no such directory")
    try:
        if to == "transformer-lens":
            from groklab.transformer_lens import export_transformer_lens

            from groklab.run import Run

            written = export_transformer_lens(Run(run_dir), dest, member or 0)
            out.print(f"wrote {written / 'state_dict.pt'} and {written / 'config.json'} (load: "
                      "HookedTransformer(HookedTransformerConfig(**config)), then merge state_dict.pt into its "
                      "state_dict and load_state_dict)")
            return
        written = export_run(run_dir, to, dest)
    except (RunDirError, ConfigError) as e:
        _fail(str(e))
    hint = {"tensorboard": f"tensorboard --logdir {written}",
            "mlflow": f"mlflow ui --backend-store-uri {mlflow_uri(written)}",
            "wandb": f"wandb sync {written}/wandb/offline-run-*"}[to]
    out.print(f"wrote {written}  (view: {hint})")


@app.command("import-nanda")
def import_nanda(
    checkpoint: Path = typer.Argument(..., help="A .pth file in Nanda et al.'s layout (progress-measures-paper)."),
    run_dir: Path = typer.Argument(..., help="The run directory to create."),
    every: int = typer.Option(100, "--every", help="Epochs between the checkpoint's state_dicts."),
):
    """A checkpoint of Nanda et al.'s grokking code (their key names and transposes) as a
    groklab run directory of the nanda2023 preset: weights at their steps, losses as metrics,
    their split (random.shuffle under their seed)."""
    from groklab.store import RunDirError
    from groklab.transformer_lens import import_nanda_checkpoint

    if not checkpoint.is_file():
        _fail(f"CHECKPOINT={str(checkpoint)!r}: no such file")
    try:
        from groklab.run import Run

        run = Run(import_nanda_checkpoint(checkpoint, run_dir, every))
    except (RunDirError, ConfigError) as e:
        _fail(str(e))
    out.print(f"wrote {run.path}: weights at {len(run.checkpoint_steps)} steps "
              f"({run.checkpoint_steps[0]}–{run.checkpoint_steps[-1]})")


@app.command()
def analyze(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    measures: str = typer.Option(..., "--measures", "-m", help="Comma-separated measure names (groklab measures)."),
    final_keys: bool = typer.Option(True, "--final-keys/--per-step-keys",
                                    help="Fourier measures use the last checkpoint's key frequencies at every "
                                         "step (Nanda et al.'s convention, default), or each checkpoint its own."),
):
    """Compute progress measures at every saved checkpoint; merge them into metrics.parquet."""
    from groklab.analysis import analyze as run_analyze
    from groklab.store import RunDirError

    try:
        new = run_analyze(run_dir, _names(measures), progress=True, final_keys=final_keys)
    except (ConfigError, RunDirError) as e:
        _fail(str(e))
    out.print(f"{len(new)} values at {new['step'].nunique()} checkpoints written to {run_dir}/metrics.parquet: "
              f"{', '.join(sorted(new['name'].unique()))}", highlight=False)
    out.print(f"draw them with: groklab plot {run_dir} -m {','.join(_names(measures))}", highlight=False)


@app.command()
def fourier(
    run_dir: Path = typer.Argument(..., help="A run directory (a modular task)."),
    step: Optional[int] = typer.Option(None, "--step", help="Checkpoint step (default: the last)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="PNG path."),
    member: int = typer.Option(0, "--member", help="Ensemble member."),
):
    """The embedding's Fourier spectrum and its circle on the top key frequency."""
    from groklab.report.plots import plot_fourier
    from groklab.store import RunDirError

    try:
        path = plot_fourier(run_dir, step, output, member)
    except (RunDirError, ValueError) as e:
        _fail(str(e))
    out.print(f"wrote {path}")


@app.command("measures")
def list_measures():
    """The progress measures, with their unit, cost and source."""
    from groklab.measures import MEASURES

    t = Table()
    for col in ("measure", "unit", "cost", "source"):
        t.add_column(col)
    for m in MEASURES.values():
        t.add_row(m.name, m.unit, m.cost, m.citation)
    out.print(t)


@app.command()
def presets():
    """The named recipes, each with its source."""
    from groklab.presets import PRESETS

    t = Table()
    t.add_column("preset", style="bold")
    t.add_column("source")
    for p in PRESETS.values():
        t.add_row(p.name, p.citation)
    out.print(t)


@app.command()
def tasks():
    """The task kinds (``task.kind``) and the binary operations (``task.op`` ids)."""
    from groklab.tasks import OPS, TASK_CLASSES

    k = Table(title="task.kind")
    for col in ("kind", "inputs", "targets", "about"):
        k.add_column(col)
    for name, cls in TASK_CLASSES.items():
        k.add_row(name, cls.input_kind, cls.target_kind, (cls.__doc__ or "").strip().splitlines()[0])
    out.print(k)
    t = Table(title="task.op (task.kind = algorithmic)")
    for col in ("op", "formula", "group", "needs prime", "commutative"):
        t.add_column(col)
    for o in OPS.values():
        t.add_row(o.id, o.formula, o.group, "yes" if o.needs_prime else "", "yes" if o.commutative else "")
    out.print(t)


@app.command()
def bench(
    suite: str = typer.Option("challenge", "--suite",
                              help="challenge (the challenge's tasks) or fidelity (each baseline on its "
                                   "paper's task, beside the paper's step count)."),
    methods: Optional[str] = typer.Option(None, "--methods", "-m",
                                          help="Comma-separated methods (default: all; see groklab.bench.METHODS)."),
    tasks: Optional[str] = typer.Option(None, "--tasks", "-t", help="Comma-separated task ids (default: the suite's)."),
    seeds: str = typer.Option("heldout", "--seeds",
                              help="Seeds, one run each: heldout (100-109, the default), dev (0-4, the "
                                   "tuning seeds), N (the first N held-out), a-b or a,b,c. A seed sets "
                                   "the init and the split."),
    budget_s: Optional[float] = typer.Option(None, "--budget-s",
                                             help="Training seconds allowed per run (default: the suite's: "
                                                  "challenge 5, fidelity 120)."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Cap on steps per run (default: each recipe's)."),
    runs_dir: Path = typer.Option(Path("runs/bench"), "--runs-dir", help="Where the runs go (re-runs skip finished ones)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Tables and figure (default: RUNS_DIR)."),
    device: str = typer.Option("cpu", "--device", help="cpu, or cuda for the runs (seconds then compare only "
                                                       "among runs on the same device)."),
):
    """Every method x task x seed under the same wall-clock budget: share reaching 99% val
    accuracy, median [IQR] steps and seconds to it, parameters, ms per step."""
    import math

    from groklab.bench import bench as run_bench
    from groklab.store import RunDirError, read_parquet

    try:
        summary, _ = run_bench(suite, methods, tasks, seeds, budget_s, runs_dir, output, max_steps, log=out.print,
                               device=device)
    except (ConfigError, RunDirError) as e:
        _fail(str(e))
    except KeyboardInterrupt:
        err.print("interrupted: finished runs are kept; run the same command again to continue")
        raise typer.Exit(130)

    def iqr(row, key: str, nd: int) -> str:
        med = row[f"{key}_median"]
        if med is None or (isinstance(med, float) and math.isnan(med)):
            return "-"
        ci = "" if math.isnan(row[f"{key}_ci_lo"]) else \
            f" ({row[f'{key}_ci_lo']:.{nd}f}-{row[f'{key}_ci_hi']:.{nd}f})"
        return f"{med:.{nd}f} [{row[f'{key}_q25']:.{nd}f}-{row[f'{key}_q75']:.{nd}f}]{ci}"

    header = ["task", "rank", "method", "reached", "steps to 99% med [IQR] (95% CI)", "s to 99% med [IQR] (95% CI)",
              "params", "ms/step"]
    ordered = summary.sort_values(["task", "prior_knowledge", "rank"], kind="stable")
    ordered = ordered.set_index("task").loc[list(dict.fromkeys(summary["task"]))].reset_index()
    rows = []
    for _, r in ordered.iterrows():
        name = r["method"] + (" [prior knowledge]" if r["prior_knowledge"] else "")
        rows.append([r["task"], str(r["rank"]), name, f"{r['reached']}/{r['seeds']}", iqr(r, "steps", 0),
                     iqr(r, "seconds", 2), f"{r['n_params']:,}", _fmt(r["ms_per_step"], 1)])
    t = _table(header, rows, left=("task", "method"), words=("method", header[4], header[5]),
               title=f"bench {suite}: reaching 99% val acc within the budget (rank within task; "
                     "prior-knowledge recipes ranked apart; CI: bootstrap of the median)")
    out.print(t)
    fid = read_parquet((output or runs_dir) / "fidelity.parquet")  # as bench() wrote it
    if len(fid):
        rows = []
        for _, r in fid.iterrows():
            ours = "-" if math.isnan(r["steps_median"]) else iqr(r, "steps", 0)
            ratio = "-" if math.isnan(r["ratio"]) else f"{r['ratio']:.2f}"
            rows.append([r["method"], r["task"], f"{r['threshold']:.0%}", f"{r['reached']}/{r['seeds']}", ours,
                         r["published"], ratio])
        out.print(_table(["method", "task", "threshold", "reached", "steps to threshold med [IQR] (95% CI)",
                          "its paper", "ours / paper"], rows, left=("method", "task", "its paper"),
                         words=("its paper", "steps to threshold med [IQR] (95% CI)"),
                         title="fidelity: each baseline's steps to its paper's threshold, beside the paper's"))
    out.print(f"tables: {(output or runs_dir) / 'bench.parquet'}, {(output or runs_dir) / 'bench.json'}")
    out.print(f"figure: {(output or runs_dir) / 'val_acc_vs_seconds.png'}")


EXAMPLES = {
    "train": "groklab train --preset nanda2023 --set train.seeds=[0,1,2] --device cuda",
    "sweep": "groklab sweep sweeps/liu2022_toy_lr_wd.toml -e process -w 2",
    "phase-diagram": "groklab phase-diagram runs/liu2022_toy_lr_wd --x optim.lr --y optim.weight_decay",
    "landscape": "groklab landscape runs/omnigrok_mnist_landscape",
    "emergence": "groklab emergence runs/parity",
    "scaling": "groklab scaling runs/michaud2023_parity_laptop_N --x params",
    "qdg": "groklab qdg runs/parity --samples 2000",
    "theory": "groklab theory --sweep runs/liu2022_toy_fraction --step 0.025",
    "runs": "groklab runs runs/ --status running --sort val_acc",
    "plot": "groklab plot runs/nanda2023-... --phases",
    "report": "groklab report runs/nanda2023-... -o nanda2023.html",
    "compare": "groklab compare runs/a runs/b -o compare.html",
    "export": "groklab export runs/nanda2023-... --to tensorboard",
    "import-nanda": "groklab import-nanda grokking_addition_full_run.pth runs/nanda_original",
    "analyze": "groklab analyze runs/nanda2023-... -m fourier,restricted_loss,description_length",
    "fourier": "groklab fourier runs/nanda2023-... -o fourier.png",
    "measures": "groklab measures",
    "presets": "groklab presets",
    "tasks": "groklab tasks",
    "bench": "groklab bench --tasks mul97 --methods grokfast2024,fastest_transformer --seeds 100-102",
}


def _command():
    """The click command behind ``app``, its help made for people: an example under each
    command, and option placeholders named for what they take (KEY=VALUE, RUNS_DIR) instead
    of type tags (<str>); flags take none."""
    group = typer.main.get_command(app)
    group.epilog = "\b\nExamples:\n" + "\n".join(f"  {EXAMPLES[name]}" for name in group.commands)
    for name, cmd in group.commands.items():
        cmd.epilog = f"\b\nExample: {EXAMPLES[name]}"  # \b: click keeps the line as it is
        # the command list shows the docstring's whole first paragraph, not its first 45 characters
        cmd.short_help = " ".join((cmd.help or "").split("\n\n")[0].split())
        for prm in cmd.params:
            if getattr(prm, "param_type_name", None) == "option":  # typer's own click, not click's classes
                if prm.is_flag:
                    prm.metavar = ""
                elif prm.metavar is None:
                    long = max(prm.opts, key=len).lstrip("-")
                    prm.metavar = "KEY=VALUE" if long == "set" else long.upper().replace("-", "_")
            else:  # an argument: its name, [NAME] when optional, NAME... when repeated
                var = prm.name.upper() + ("..." if prm.nargs != 1 else "")
                var = var if prm.required else f"[{var}]"
                prm.make_metavar = lambda ctx=None, usage=False, _var=var: _var

        def help_option(ctx, _make=cmd.get_help_option):  # --help is a flag too
            opt = _make(ctx)
            if opt is not None:
                opt.metavar = ""
            return opt

        cmd.get_help_option = help_option
    return group


def main() -> None:
    try:
        _command()()
    except ConfigError as e:  # raised outside a command's own handling
        err.print(f"error: {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
