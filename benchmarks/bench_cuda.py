"""Training speed on a CUDA device next to the CPU of the same machine: ms per step.

For each configuration, ``groklab.train`` runs N1 and N2 steps (no early stop, the
preset's evaluation schedule); ms/step = (t(N2) - t(N1)) / (N2 - N1), so start-up,
data and the first CUDA kernels' compilation drop out. Each timing is the median of
``--repeats`` runs, CPU and GPU alternating in one sitting.

    python benchmarks/bench_cuda.py [--repeats 3] [--cpu-threads N]

Needs a CUDA device; run it alone on the machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

import groklab

CONFIGS = {
    # name: (preset, overrides, N1, N2)
    "nanda2023, E=1 (full batch, p=113)": ("nanda2023", [], 100, 600),
    "nanda2023, E=16 seeds": ("nanda2023", [f"train.seeds={list(range(16))}"], 10, 40),
    "power2022, E=1 (batch 512)": ("power2022", [], 50, 300),
    "omnigrok_mnist, E=1 (batch 200)": ("omnigrok_mnist", [], 50, 300),
    "michaud2023_parity_laptop, E=1": ("michaud2023_parity_laptop", [], 50, 300),
}


def seconds(preset: str, overrides: list[str], steps: int, device: str, tmp: Path) -> float:
    over = [*overrides, f"train.steps={steps}", "train.stop_val_acc=none", "train.progress=false",
            f"train.device={device}"]
    cfg = groklab.resolve(preset, overrides=over)
    t = time.perf_counter()
    groklab.train(cfg, Path(tempfile.mkdtemp(dir=tmp)), progress=False)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cpu-threads", type=int, default=None)
    ap.add_argument("--device", default="cuda", help="the accelerator (cpu: test this script)")
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("bench_cuda.py needs a CUDA device")
    if args.cpu_threads:
        torch.set_num_threads(args.cpu_threads)
    tmp = Path(tempfile.mkdtemp(prefix="groklab-cuda-"))
    gpu = torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device
    print(f"GPU: {gpu}; CPU threads: {torch.get_num_threads()}; torch {torch.__version__}", flush=True)
    print("| configuration | CPU ms/step | GPU ms/step | CPU / GPU |")
    print("| --- | --- | --- | --- |")
    for name, (preset, over, n1, n2) in CONFIGS.items():
        for device in ("cpu", args.device):
            seconds(preset, over, n1, device, tmp)  # warm-up (numba, kernels)
        per = {"cpu": [], args.device: []}
        for _ in range(args.repeats):
            for device in ("cpu", args.device):
                a = seconds(preset, over, n1, device, tmp)
                b = seconds(preset, over, n2, device, tmp)
                per[device].append(1e3 * (b - a) / (n2 - n1))
        ms = {d: statistics.median(v) for d, v in per.items()}
        print(f"| {name} | {ms['cpu']:.2f} | {ms[args.device]:.2f} | {ms['cpu'] / ms[args.device]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
