"""Run directories sent from a Ray worker to the driver (groklab.sweep.transfer)."""

import pytest

from groklab.store import RunDirError
from groklab.sweep.transfer import Outbox, apply_files, read_files


def test_outbox_sends_each_change_once_even_a_same_size_rewrite(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "config.json").write_bytes(b"{}")
    (tmp_path / "checkpoints" / "resume.safetensors").write_bytes(b"AAAA")
    (tmp_path / ".lock").write_bytes(b"")
    (tmp_path / ".metrics.parquet.x1y2").write_bytes(b"half-written")
    box = Outbox(tmp_path)
    assert box.changed() == {"config.json": b"{}", "checkpoints/resume.safetensors": b"AAAA"}
    assert box.changed() == {}
    (tmp_path / "checkpoints" / "resume.safetensors").write_bytes(b"BBBB")  # same size, same tick
    assert box.changed() == {"checkpoints/resume.safetensors": b"BBBB"}
    assert Outbox(tmp_path, read_files(tmp_path)).changed() == {}  # a resumed worker resends nothing


def test_apply_writes_in_the_loops_order(tmp_path, monkeypatch):
    import groklab.sweep.transfer as transfer

    order = []
    monkeypatch.setattr(transfer, "write_bytes", lambda path, data: order.append(path.relative_to(tmp_path).as_posix()))
    names = ["summary.json", "checkpoints/resume.safetensors", "checkpoints/step_00000100.safetensors",
             "checkpoints/resume.prev.safetensors", "metrics.parquet", "split.safetensors", "config.json"]
    apply_files(tmp_path, {n: b"" for n in names})
    assert order == ["config.json", "split.safetensors", "metrics.parquet", "checkpoints/step_00000100.safetensors",
                     "checkpoints/resume.prev.safetensors", "checkpoints/resume.safetensors", "summary.json"]


@pytest.mark.parametrize("bad", ["../escape", "/etc/passwd", "checkpoints/../../x", ".lock", ""])
def test_apply_refuses_paths_outside_the_run_directory(tmp_path, bad):
    with pytest.raises(RunDirError, match="not a plain relative path"):
        apply_files(tmp_path / "run", {"config.json": b"{}", bad: b"x"})
    assert not (tmp_path / "run").exists()  # checked before anything is written


def test_read_files_of_a_directory_without_a_run_is_empty(tmp_path):
    (tmp_path / "stray").write_bytes(b"x")
    assert read_files(tmp_path) == {}
    assert read_files(tmp_path / "missing") == {}
