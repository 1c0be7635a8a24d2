"""`groklab report` and `groklab compare` loaded in a real headless Chromium (Debian's, which
`make test` installs): no console error, no network request, every expected figure drawn and
table filled, a screenshot that is not blank — for a run (with Nanda phases and measures), a
sweep (a phase diagram) and a bench. And the check itself fails when a figure is missing.

Set GROKLAB_SCREENSHOTS=DIR to keep the screenshots. The README's screenshots (docs/report_*.png)
are taken by :func:`test_docs_screenshot`, on the directories named by GROKLAB_DOCS_RUN,
GROKLAB_DOCS_SWEEP and GROKLAB_DOCS_BENCH (``benchmarks/report_screenshots.py`` sets them:
the 40,000-step nanda2023 run, the toy phase diagram, a bench); without them it skips."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from groklab.analysis import analyze
from groklab.bench import bench
from groklab.config import apply_overrides
from groklab.presets import get_preset
from groklab.report.browser import check_report, find_chromium
from groklab.report.html import measure_groups, write_report
from groklab.report.plots import plot_compare
from groklab.sweep import SweepSpec, run_sweep
from groklab.training.loop import train

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium: `make test` installs Debian's chromium with apt-get, which needs root "
                             "and the package registry; neither was available here")

RUN_FIGURES = ["curves", "measure-restricted_loss", "measure-excluded_loss", "measure-weight_norm", "fourier"]
SPEC = """
name = "toy"
preset = "liu2022_toy"
seeds = 2
[base]
"task.fraction" = 0.8
"model.hidden" = [16, 16]
"model.embed_init_scale" = 0.01
"optim.name" = "adamw"
"optim.embed_lr" = 1e-2
"optim.embed_wd_mult" = 0
"train.steps" = 300
"train.checkpoint_every" = 100
[axes]
"optim.lr" = [1e-3, 1e-2]
"optim.weight_decay" = [0.0, 1.0]
"""


def shot(tmp_path: Path, name: str) -> Path:
    d = os.environ.get("GROKLAB_SCREENSHOTS")
    return Path(d) / name if d else tmp_path / name


def cli(groklab_cmd, *args, timeout=300) -> str:
    r = subprocess.run(groklab_cmd + list(args), capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr + r.stdout
    return r.stdout


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    """A small modular-addition transformer with Nanda's measures analysed afterwards, a second
    run that differs in two keys, a 2 x 2 toy sweep and a 2-method bench (in this process:
    the CLI's own calls, without four interpreter starts)."""
    tmp = tmp_path_factory.mktemp("reports")
    runs = tmp / "runs"
    base = get_preset("nanda2023")
    train(apply_overrides(base, ["task.p=31", "train.steps=600", "train.stop_val_acc=none"]), runs / "nanda",
          progress=False)
    analyze(runs / "nanda", ["restricted_loss"], progress=False)
    train(apply_overrides(base, ["task.p=31", "train.steps=300", "optim.weight_decay=0.1"]), runs / "nanda_wd01",
          progress=False)
    spec = tmp / "toy.toml"
    spec.write_text(SPEC)
    run_sweep(SweepSpec.load(spec), runs / "toy", "ensemble", progress=False, log=lambda *_: None)
    bench(methods="fastest,fastest_cyclic", tasks="add97_random", seeds=1, budget_s=60, max_steps=300,
          runs_dir=runs / "bench", output=tmp / "bench", log=lambda *_: None)
    return {"run": runs / "nanda", "run2": runs / "nanda_wd01", "sweep": runs / "toy", "bench": tmp / "bench",
            "tmp": tmp}


def assert_clean(res):
    assert not res.problems, res.problems
    assert res.ink > 0.01


def test_run_report_in_chromium(dirs, tmp_path, groklab_cmd):
    out = cli(groklab_cmd, "report", str(dirs["run"]))
    html = dirs["run"] / "report.html"
    assert f"wrote {html}" in out.replace("\n", "")
    res = check_report(html, figures=RUN_FIGURES, tables=["summary", "config"], screenshot=shot(tmp_path, "run.png"))
    assert_clean(res)
    assert res.figures["curves"] >= 4  # train/val accuracy and loss at least
    assert res.requests == [html.resolve().as_uri()]  # the file itself, nothing else
    text = html.read_text()
    assert "memorization" in text and "circuit formation" in text  # Nanda's phases shaded and named
    assert "cdn" not in text.lower().split("<script", 1)[0]  # head has no external script tag
    assert not re.search(r"<script[^>]+src=", text)


def test_sweep_report_in_chromium(dirs, tmp_path):
    write_report(dirs["sweep"], dirs["tmp"] / "sweep.html")  # the CLI's call, in this process
    reached = pd.read_parquet(dirs["sweep"] / "summary.parquet")["step_val_99"].notna().any()
    figures = ["phase-diagram", "heatmap-val-acc"] + (["heatmap-step-val-99"] if reached else [])
    res = check_report(dirs["tmp"] / "sweep.html", figures=figures, tables=["runs"], screenshot=shot(tmp_path, "sweep.png"))
    assert_clean(res)
    assert res.tables["runs"] == 8
    text = (dirs["tmp"] / "sweep.html").read_text()
    assert "r00000 seed 0" in text  # hover names each cell's runs and seeds
    assert reached or "log10 step to val 99% (median over seeds that got there): no run got there" in text


def test_bench_report_in_chromium(dirs, tmp_path):
    write_report(dirs["bench"])
    res = check_report(dirs["bench"] / "report.html", figures=["val-acc-vs-seconds"], tables=["ranking", "runs"],
                       screenshot=shot(tmp_path, "bench.png"))
    assert_clean(res)
    assert res.tables["ranking"] == 2 and res.figures["val-acc-vs-seconds"] == 2


@pytest.mark.parametrize("kind", ["run", "sweep", "bench"])
def test_docs_screenshot(kind, tmp_path):
    path = os.environ.get(f"GROKLAB_DOCS_{kind.upper()}")
    if not path:
        pytest.skip(f"the README's {kind} screenshot: GROKLAB_DOCS_{kind.upper()}=DIR names its directory "
                    "(benchmarks/report_screenshots.py sets it)")
    path = Path(path)
    if kind == "run":
        names = pd.read_parquet(path / "metrics.parquet", columns=["name"])["name"].unique().tolist()
        figures, tables = ["curves", *[f"measure-{g}" for g in measure_groups(names)], "fourier"], ["summary", "config"]
    elif kind == "sweep":
        figures, tables = ["phase-diagram", "heatmap-val-acc", "heatmap-step-val-99"], ["runs"]
    else:
        figures, tables = ["val-acc-vs-seconds"], ["ranking", "runs"]
    write_report(path, tmp_path / f"{kind}.html")
    res = check_report(tmp_path / f"{kind}.html", figures=figures, tables=tables,
                       screenshot=Path(os.environ.get("GROKLAB_SCREENSHOTS", "docs")) / f"report_{kind}.png")
    assert_clean(res)
    assert set(res.figures) >= set(figures) and all(res.figures[f] > 0 for f in figures)


def test_compare_in_chromium_and_as_png(dirs, tmp_path, groklab_inproc):
    html = tmp_path / "compare.html"
    r = groklab_inproc(["compare", dirs["run"], dirs["run2"], "-o", html])
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "optim.weight_decay" in out and "train.steps" in out  # the config keys that differ
    res = check_report(html, figures=["compare-curves"], tables=["config-differences", "summary"])
    assert not res.problems, res.problems
    assert res.figures["compare-curves"] == 8  # 2 runs x train/val x acc/loss
    png = plot_compare([dirs["run"], dirs["run2"]], tmp_path / "compare.png")  # `compare -o X.png` calls it
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_check_fails_when_a_figure_is_missing(dirs, tmp_path):
    """The same run report with its Fourier section removed: the check names the figure."""
    text = (dirs["run"] / "report.html").read_text()
    start = text.index('<section class="figure" data-figure="fourier">')
    broken = tmp_path / "broken.html"
    broken.write_text(text[:start] + text[text.index("</section>", start) + len("</section>"):])
    res = check_report(broken, figures=RUN_FIGURES)
    assert res.problems == ["figure 'fourier': not in the page"]


def test_the_check_sees_a_network_request_and_a_console_error(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png">'
                    '<script>console.error("boom")</script><p>text</p></body></html>')
    res = check_report(page)
    assert any(p.startswith("network request: http://127.0.0.1:9/x.png") for p in res.problems), res.problems
    assert any("boom" in p for p in res.problems), res.problems
