"""`groklab train` on bad input: exit status 2, one line naming the field and the value, and no
run directory. Training itself is replaced by a stub that fails the test if it is ever reached."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

import groklab.training.loop as loop
from groklab.cli import app

runner = CliRunner()


@pytest.fixture
def train_calls(monkeypatch):
    """Replace the training entry point: a bad input must never get this far."""
    calls = []

    def fake_train(cfg, run_dir=None, **kwargs):
        calls.append((cfg, run_dir))
        return SimpleNamespace(
            path=run_dir,
            summary={"status": "completed", "steps": cfg.train.steps, "seconds": 0.0, "members": []},
        )

    monkeypatch.setattr(loop, "train", fake_train)
    return calls


def _stderr(result) -> str:
    try:
        return result.stderr
    except ValueError:  # older click: stderr mixed into output
        return result.output


def invoke(args):
    return runner.invoke(app, args)


def train_args(runs_dir, *sets, preset="demo"):
    args = ["train", "--runs-dir", str(runs_dir), "--quiet"]
    if preset is not None:
        args += ["--preset", preset]
    for s in sets:
        args += ["--set", s]
    return args


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = [ln for ln in _stderr(result).splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])
    assert "Traceback" not in result.output
    assert "run directory" not in result.stdout


BAD_SETS = [
    pytest.param(["task.op=pow"], ["task.op", "'pow'"], id="unknown-op"),
    pytest.param(["task.op=div", "task.p=96"], ["task.p=96"], id="div-composite-p"),
    pytest.param(["task.op=div_odd", "task.p=96"], ["task.p=96"], id="div_odd-composite-p"),
    pytest.param(["task.fraction=0"], ["task.fraction=0"], id="fraction-0"),
    pytest.param(["task.fraction=1"], ["task.fraction=1"], id="fraction-1"),
    pytest.param(["task.fraction=1.5"], ["task.fraction=1.5"], id="fraction-1.5"),
    pytest.param(["task.fraction=-0.1"], ["task.fraction=-0.1"], id="fraction-neg"),
    pytest.param(["optim.lr=-1e-3"], ["optim.lr=-0.001"], id="negative-lr"),
    pytest.param(["optim.weight_decay=-0.5"], ["optim.weight_decay=-0.5"], id="negative-wd"),
    pytest.param(["train.steps=abc"], ["train.steps='abc'"], id="steps-str"),
    pytest.param(["model.layer_norm=3"], ["model.layer_norm=3"], id="layer_norm-int"),
    pytest.param(["optim.lrr=1"], ["optim.lrr=1"], id="unknown-key"),
    pytest.param(["optimizer.lr=1"], ["optimizer.lr=1"], id="unknown-section"),
    pytest.param(["train.seeds=[0,1,2]", "optim.lr=[1e-3,2e-3]"], ["optim.lr=[0.001, 0.002]"],
                 id="mismatched-lists"),
    pytest.param(["task.op=s5_mul"], ["task.p=59"], id="s5-p-not-120"),
    pytest.param(["task.op=sub", "task.dedupe_commutative=true"], ["task.dedupe_commutative=True"],
                 id="dedupe-non-commutative"),
    pytest.param(["optim.lr"], ["optim.lr"], id="override-without-equals"),
    pytest.param(["model.init=xavier"], ["model.init", "'xavier'"], id="unknown-init"),
]


@pytest.mark.parametrize("sets,fragments", BAD_SETS)
def test_bad_set_exits_2_with_one_line_and_no_run_dir(tmp_path, train_calls, sets, fragments):
    runs = tmp_path / "runs"
    result = invoke(train_args(runs, *sets))
    assert_one_line_error(result, *fragments)
    assert not runs.exists()
    assert train_calls == []


def test_unknown_preset(tmp_path, train_calls):
    runs = tmp_path / "runs"
    result = invoke(train_args(runs, preset="no_such_preset"))
    assert_one_line_error(result, "--preset", "no_such_preset")
    assert not runs.exists() and train_calls == []


def test_missing_config_file(tmp_path, train_calls):
    runs = tmp_path / "runs"
    missing = tmp_path / "missing.toml"
    result = invoke(train_args(runs) + ["--config", str(missing)])
    assert_one_line_error(result, "--config", "missing.toml")
    assert not runs.exists() and train_calls == []


def test_config_file_with_bad_key(tmp_path, train_calls):
    runs = tmp_path / "runs"
    f = tmp_path / "bad.toml"
    f.write_text("[optim]\nlrr = 0.01\n")
    result = invoke(train_args(runs) + ["--config", str(f)])
    assert_one_line_error(result, "optim.lrr=0.01")
    assert not runs.exists() and train_calls == []


def test_config_file_with_bad_value(tmp_path, train_calls):
    runs = tmp_path / "runs"
    f = tmp_path / "bad.toml"
    f.write_text('[task]\nop = "div"\np = 96\n')
    result = invoke(train_args(runs) + ["--config", str(f)])
    assert_one_line_error(result, "task.p=96")
    assert not runs.exists() and train_calls == []


def test_config_file_not_toml(tmp_path, train_calls):
    runs = tmp_path / "runs"
    f = tmp_path / "bad.toml"
    f.write_text("[optim\nlr = ")
    result = invoke(train_args(runs) + ["--config", str(f)])
    assert result.exit_code == 2
    assert "--config" in _stderr(result)
    assert not runs.exists() and train_calls == []


def test_resume_with_other_options_is_refused(tmp_path, train_calls):
    result = invoke(["train", "--resume", str(tmp_path / "somewhere"), "--preset", "demo"])
    assert result.exit_code == 2
    assert "--resume" in _stderr(result)
    assert train_calls == []


def test_good_input_reaches_training_with_the_resolved_config(tmp_path, train_calls):
    """Control: the same command line with valid values gets past validation."""
    runs = tmp_path / "runs"
    result = invoke(train_args(runs, "train.steps=7", "optim.lr=[1e-3,2e-3]", "train.seeds=[4,5]")
                    + ["--name", "r1", "--device", "cpu"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert len(train_calls) == 1
    cfg, run_dir = train_calls[0]
    assert run_dir == runs / "r1"
    assert cfg.preset == "demo" and cfg.task.p == 59
    assert cfg.train.steps == 7 and cfg.n_members == 2 and cfg.train.device == "cpu"
    assert cfg.member_values("optim.lr") == [1e-3, 2e-3]


def test_presets_and_tasks_commands_list_names():
    r = invoke(["presets"])
    assert r.exit_code == 0
    for name in ("demo", "nanda2023", "power2022", "liu2022_toy", "challenge97"):
        assert name in r.stdout
    r = invoke(["tasks"])
    assert r.exit_code == 0
    for op in ("add", "div_odd", "cube_xy2", "s5_conj", "add_int"):
        assert op in r.stdout


# --------------------------------------------------------------------------- values that look like markup


def test_bracketed_value_is_printed_verbatim(tmp_path, train_calls):
    runs = tmp_path / "runs"
    result = invoke(train_args(runs, "train.seeds=[a,b]"))
    assert_one_line_error(result, "train.seeds='[a,b]'")
    assert not runs.exists()


def test_markup_like_value_still_exits_2(tmp_path, train_calls):
    runs = tmp_path / "runs"
    result = invoke(train_args(runs, "task.op=[/]"))
    assert_one_line_error(result, "task.op='[/]'")
    assert not runs.exists()


def test_unavailable_cuda_device_exits_2_without_run_dir(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    runs = tmp_path / "runs"
    result = invoke(["train", "--preset", "demo", "--runs-dir", str(runs), "--device", "cuda"])
    assert result.exit_code == 2
    assert "train.device='cuda'" in (result.stderr if hasattr(result, "stderr") else result.output)
    assert not runs.exists()


@pytest.mark.parametrize("preset, extra", [("nanda2023", []), ("demo", ["--set", "model.dtype=float64"])])
def test_mps_is_refused_where_float64_is_needed(tmp_path, preset, extra):
    runs = tmp_path / "runs"
    result = invoke(["train", "--preset", preset, "--runs-dir", str(runs), "--device", "mps", *extra])
    assert result.exit_code == 2
    out = result.stderr if hasattr(result, "stderr") else result.output
    assert "train.device='mps'" in out and "MPS has no float64" in out
    assert not runs.exists()
