"""What the bench runs: suites of tasks, named methods (recipes), and their expansion.

A *method* is a named recipe: a preset (``groklab presets``) plus a few overrides, e.g.
``fastest_cyclic`` is ``fastest`` with a fixed cyclic input code. A *task* is a set of
``task.*`` overrides (op, p, fraction, split) applied on top of the method, so every method
meets the same tables and, seed by seed, the same split (see below). The method
keeps its own token layout (``task.layout``), which only the transformer reads.

Every run gets the bench's own stopping and logging settings (:data:`BENCH_TRAIN`): stop
at the first evaluation with val acc >= 99%, a fixed evaluation schedule (log-spaced, 40 a
decade, at least 10 steps apart: an evaluation of the whole table costs a transformer
several training steps, and a plain log schedule evaluates each of the first ~40 steps),
no progress bar. One run per seed (``train.seeds = [seed]``): an ensemble would share its
wall-clock between members, and seconds per seed would not be comparable across methods.

Seeds, and what is held out: a bench seed s sets both the init seed and the split seed
(``train.seeds = [s]``, ``task.split_seed = s``), so every seed scores a new split as well
as a new init. The recipes were tuned on the development seeds :data:`DEV_SEEDS` (0-4; the
old protocol used split seed 0 for all of them); the bench scores the held-out seeds
:data:`HELDOUT_SEEDS` (100-109) unless told otherwise (``--seeds``, :func:`parse_seeds`).
The prefix split has no split seed: on it a seed is an init seed only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from groklab.config import ConfigError, RunConfig, apply_dict
from groklab.models import uses_prior_knowledge
from groklab.presets import PRESETS, get_preset
from groklab.resolve import check

# settings of every bench run, whatever the recipe
# (weights kept once a decade: a bench scores curves, not checkpoints; 4 one-minute runs at
# the default 10 a decade took 190 MB)
BENCH_TRAIN = {"stop_val_acc": 0.99, "stop_patience": 1, "evals_per_decade": 40, "eval_min_gap": 10,
               "checkpoints_per_decade": 1, "progress": False}  # the device: config_for's argument


DEV_SEEDS: tuple[int, ...] = tuple(range(0, 5))  # what recipes may be tuned on
HELDOUT_SEEDS: tuple[int, ...] = tuple(range(100, 110))  # what the bench scores by default


def parse_seeds(spec: int | str | list | tuple | range | None) -> list[int]:
    """The bench's seeds from ``--seeds``.

    * None or "heldout": :data:`HELDOUT_SEEDS`; "dev": :data:`DEV_SEEDS`;
    * a bare number N (int or "N"): the first N held-out seeds, 100..100+N-1;
    * "a-b": the seeds a..b inclusive; "a,b,c": a list (parts may be ranges: "0-4,100");
    * a list/tuple/range of ints: those seeds.

    Repeats are dropped, order kept. Raises :class:`ConfigError` naming ``--seeds`` and the
    bad value."""
    if spec is None:
        return list(HELDOUT_SEEDS)
    if isinstance(spec, (list, tuple, range)):
        seeds = list(spec)
        bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, int) or s < 0]
        if not seeds or bad:
            raise ConfigError("--seeds", bad[0] if bad else seeds, "seeds are non-negative integers")
        return list(dict.fromkeys(seeds))
    if isinstance(spec, bool):
        raise ConfigError("--seeds", spec, "a number of held-out seeds, a range a-b, a list a,b,c, heldout or dev")
    if isinstance(spec, int):
        if spec < 1:
            raise ConfigError("--seeds", spec, "must be at least 1 (N runs the held-out seeds 100..100+N-1)")
        return list(range(HELDOUT_SEEDS[0], HELDOUT_SEEDS[0] + spec))
    text = str(spec).strip()
    named = {"heldout": HELDOUT_SEEDS, "dev": DEV_SEEDS}
    if text in named:
        return list(named[text])
    if text.isdigit() and "," not in text:
        return parse_seeds(int(text))
    seeds: list[int] = []
    for part in (x.strip() for x in text.split(",")):
        lo, dash, hi = part.partition("-")
        if part.isdigit():
            seeds.append(int(part))
        elif dash and lo.strip().isdigit() and hi.strip().isdigit() and int(lo) <= int(hi):
            seeds.extend(range(int(lo), int(hi) + 1))
        elif part:
            raise ConfigError("--seeds", spec, f"cannot read {part!r}: give N (held-out seeds), a-b, a,b,c, "
                                               "heldout or dev")
    if not seeds:
        raise ConfigError("--seeds", spec, "names no seed")
    return list(dict.fromkeys(seeds))


@dataclass(frozen=True)
class BenchTask:
    id: str
    description: str
    task: dict  # task.* overrides
    threshold: float = 0.99  # the val accuracy its paper counts steps to (runs stop at max(0.99, this))
    methods: tuple[str, ...] | None = None  # the methods entered on it by default (None: the suite's)
    train: dict = field(default_factory=dict)  # train.* overrides on top of BENCH_TRAIN


@dataclass(frozen=True)
class BenchMethod:
    name: str
    preset: str
    description: str
    overrides: dict = field(default_factory=dict)  # nested, applied after the preset


@dataclass(frozen=True)
class Anchor:
    """A baseline's published number: steps to its paper's threshold on its paper's task."""

    method: str
    task: str
    published: str  # as the source states it
    steps: float | None  # the number compared with (None: the source gives none)
    source: str


def _task(id: str, description: str, op: str, split: str = "random", p: int = 97, fraction: float = 0.5,
          **kw) -> BenchTask:
    return BenchTask(id, description, {"op": op, "p": p, "fraction": fraction, "split": split,
                                       "dedupe_commutative": False, "exclude_diagonal": False}, **kw)


SUITES: dict[str, tuple[BenchTask, ...]] = {
    "challenge": (
        _task("add97_random", "a+b mod 97, random 50% split", "add"),
        _task("add97_prefix", "a+b mod 97, first 50% of the table in (a, b) order (the thread's split)",
              "add", split="prefix"),
        _task("mul97", "x*y mod 97, random 50% split", "mul"),
        _task("div97", "x/y mod 97 (y != 0), random 50% split", "div"),
        _task("quad97", "x^2+xy+y^2 mod 97, random 50% split", "quad"),
    ),
    # each baseline on its own paper's task, counted to its paper's threshold, evaluated as
    # often as the paper logs (Prieto et al.: every 10 full-batch steps; Grokfast: every
    # epoch of 10 steps; EGD: every epoch of 15 steps)
    "fidelity": (
        _task("prieto113", "a+b mod 113, random 40% (Prieto et al. 2025, Fig. 1a)", "add", p=113, fraction=0.4,
              threshold=1.0, methods=("prieto2025_fig1a",), train={"eval_every": 10}),
        _task("grokfast_mul97", "x*y mod 97, y != 0, random 50% (Grokfast's main.py)", "mul_nz",
              threshold=0.95, methods=("grokfast2024", "grokfast2024_ma"), train={"eval_every": 10}),
        _task("egd_add127", "a+b mod 127, random 50% (EGD's mod_add.py)", "add", p=127,
              threshold=0.95, methods=("egd2025",), train={"eval_every": 15}),
        _task("tveit_div97", "x/y mod 97 (y != 0), random 50% (one of Tveit et al.'s seven tasks); evaluated once an "
              "epoch (145 batches of 32)", "div", threshold=0.95, methods=("tveit2025_muon", "tveit2025_adamw"),
              train={"eval_every": 145}),
        BenchTask("thread_add97", "a+b mod 97, one of each commutative pair, a != b, random half (the thread's "
                  "best post)", {"op": "add", "p": 97, "fraction": 0.5, "split": "random",
                                 "dedupe_commutative": True, "exclude_diagonal": True},
                  threshold=0.99, methods=("thread_sdr",), train={"eval_every": 12}),
    ),
}
TASKS: dict[str, BenchTask] = {t.id: t for suite in SUITES.values() for t in suite}

ANCHORS: dict[tuple[str, str], Anchor] = {
    (a.method, a.task): a
    for a in [
        Anchor("prieto2025_fig1a", "prieto113", "~120 (test acc 0.97 at 110, 1.00 at 120; logged every 10)", 120,
               "their paper_plots.ipynb, cell 3, the curve of run_main_experiments.sh FIGURE 1"),
        Anchor("grokfast2024", "grokfast_mul97", "910 iterations to 95% val", 910,
               "ironjr/grokfast README, 'Grokfast' row (= paper Table 3)"),
        Anchor("grokfast2024_ma", "grokfast_mul97", "790 iterations to 95% val", 790,
               "ironjr/grokfast README, 'Grokfast-MA' row (= paper Table 3)"),
        Anchor("thread_sdr", "thread_add97", "99.4% val after 200 epochs of 12 batches (~2,400 steps; "
               "the accuracy at the end of training, not a first crossing)", 2400,
               "discourse.numenta.org/t/the-grokking-challenge/10688/20"),
        Anchor("tveit2025_muon", "tveit_div97", "grokking epoch 102.89 (95% val after train ~100%; mean over 7 tasks "
               "x 3 softmax variants; batch size and steps per epoch not stated)", None, "arXiv:2504.16041, abstract"),
        Anchor("tveit2025_adamw", "tveit_div97", "grokking epoch 153.09 (as above; Muon / AdamW = 0.67)", None,
               "arXiv:2504.16041, abstract"),
        Anchor("egd2025", "egd_add127", "no step count ('immediate generalization', reviews)", None,
               "arXiv:2510.04930; OpenReview reviews"),
    ]
}

_SDR = {"d_embed": 400}  # the thread's 400-bit codes (133 bits on)
METHODS: dict[str, BenchMethod] = {
    m.name: m
    for m in [
        BenchMethod("power2022", "power2022", PRESETS["power2022"].citation),
        BenchMethod("nanda2023", "nanda2023", PRESETS["nanda2023"].citation),
        BenchMethod("grokfast2024", "grokfast2024", PRESETS["grokfast2024"].citation),
        BenchMethod("prieto2025_stablemax", "prieto2025_stablemax", PRESETS["prieto2025_stablemax"].citation),
        BenchMethod("fastest", "fastest", PRESETS["fastest"].citation),
        BenchMethod("fastest_transformer", "fastest_transformer", PRESETS["fastest_transformer"].citation),
        BenchMethod("fastest_grokfast", "fastest_grokfast", PRESETS["fastest_grokfast"].citation),
        BenchMethod("fastest_prefix", "fastest_prefix", PRESETS["fastest_prefix"].citation),
        BenchMethod("fastest_cyclic", "fastest", "fastest with a fixed cyclic code (frequencies 1..16)",
                    {"model": {"embed": "cyclic", "d_embed": 32}}),
        BenchMethod("fastest_scalar", "fastest", "fastest with a fixed scalar code x/(p-1)",
                    {"model": {"embed": "scalar"}}),
        BenchMethod("fastest_cyclic_sdr", "fastest", "fastest with a fixed 400-bit cyclic SDR code",
                    {"model": {"embed": "cyclic_sdr", **_SDR}}),
        BenchMethod("fastest_scalar_sdr", "fastest", "fastest with a fixed 400-bit scalar SDR code",
                    {"model": {"embed": "scalar_sdr", **_SDR}}),
        BenchMethod("thread_sdr", "thread_sdr", PRESETS["thread_sdr"].citation),
        BenchMethod("grokfast2024_ma", "grokfast2024_ma", PRESETS["grokfast2024_ma"].citation),
        BenchMethod("prieto2025_fig1a", "prieto2025_fig1a", PRESETS["prieto2025_fig1a"].citation),
        BenchMethod("egd2025", "egd2025", PRESETS["egd2025"].citation),
        BenchMethod("tveit2025_muon", "tveit2025_muon", PRESETS["tveit2025_muon"].citation),
        BenchMethod("tveit2025_adamw", "tveit2025_adamw", PRESETS["tveit2025_adamw"].citation),
    ]
}
# what each suite runs by default: its methods and seconds per run. The challenge's default is
# sized to finish in 20 minutes on 2 cores (10 seeds x 5 tasks x 5 s at most per run): groklab's
# entry and the published accelerators that act on an MLP; the transformer recipes (5-50 s a
# run) and the fixed-code variants (which never reach 99%) are run by name
SUITE_DEFAULTS: dict[str, dict] = {
    "challenge": {"methods": ("fastest", "prieto2025_fig1a", "egd2025"), "budget_s": 5.0},
    "fidelity": {"methods": None, "budget_s": 120.0},  # each task's own (BenchTask.methods)
}
DEFAULT_METHODS: tuple[str, ...] = SUITE_DEFAULTS["challenge"]["methods"]


@dataclass(frozen=True)
class BenchRun:
    """One run of the bench: a method on a task with one seed, and its resolved config."""

    method: str
    task: str
    seed: int
    cfg: RunConfig = field(compare=False)

    @property
    def prior_knowledge(self) -> bool:
        return uses_prior_knowledge(self.cfg)

    @property
    def rel_dir(self) -> str:
        return f"{self.method}/{self.task}/seed{self.seed}"


def config_for(method: str, task: str, seed: int, max_steps: int | None = None, device: str = "cpu") -> RunConfig:
    """The validated RunConfig of ``method`` on ``task`` with ``seed`` (on ``device``)."""
    m, t = METHODS[method], TASKS[task]
    cfg = get_preset(m.preset)
    apply_dict(cfg, copy.deepcopy(m.overrides))
    stop = max(BENCH_TRAIN["stop_val_acc"], t.threshold)
    apply_dict(cfg, {"task": {**t.task, "split_seed": seed},
                     "train": {**BENCH_TRAIN, "stop_val_acc": stop, **t.train, "seeds": [seed],
                               "device": device}})
    if max_steps is not None:
        cfg.train.steps = max_steps
    try:
        return check(cfg)
    except ConfigError as e:  # say which method/task produced it
        raise ConfigError(e.key, e.value, f"{e.why} (method {method!r} on task {task!r})") from None


def parse_names(kind: str, text: str | None, known: dict, default: tuple[str, ...]) -> list[str]:
    """ "a,b" -> ["a", "b"], each checked against ``known``; None or "all" -> ``default``."""
    if text is None or text.strip() == "all":
        return list(default)
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError(f"--{kind}", text, f"name at least one; choose from {', '.join(known)}")
    for n in names:
        if n not in known:
            raise ConfigError(f"--{kind}", n, f"unknown {kind[:-1]}; choose from {', '.join(known)}")
    return list(dict.fromkeys(names))  # drop repeats, keep order


def expand(suite: str = "challenge", methods: str | list[str] | None = None,
           tasks: str | list[str] | None = None, seeds: int | str | list | None = None,
           max_steps: int | None = None, device: str = "cpu") -> list[BenchRun]:
    """Every method x task x seed, in that order (configs resolved and validated).

    ``methods`` / ``tasks``: comma-separated names, a list, or None (the suite's tasks; on
    each, the methods its :class:`BenchTask` names, else the suite's default methods,
    :data:`SUITE_DEFAULTS`). Named methods run on every task given. ``seeds``: as :func:`parse_seeds` (default: the held-out seeds). Bad names
    raise :class:`ConfigError` naming the value."""
    if suite not in SUITES:
        raise ConfigError("--suite", suite, f"unknown suite; choose from {', '.join(SUITES)}")
    suite_tasks = {t.id: t for t in SUITES[suite]}
    if isinstance(methods, list):
        methods = ",".join(methods)
    if isinstance(tasks, list):
        tasks = ",".join(tasks)
    t_names = parse_names("tasks", tasks, suite_tasks, tuple(suite_tasks))
    if methods is None or methods.strip() == "all":  # each task's own methods, else the suite's
        default = SUITE_DEFAULTS[suite]["methods"] or ()
        pairs = [(m, t) for t in t_names for m in (suite_tasks[t].methods or default)]
        order = list(dict.fromkeys(m for m, _ in pairs))
        pairs.sort(key=lambda mt: (order.index(mt[0]), t_names.index(mt[1])))
    else:
        pairs = [(m, t) for m in parse_names("methods", methods, METHODS, tuple(METHODS)) for t in t_names]
    seed_list = parse_seeds(seeds)
    if max_steps is not None and max_steps < 1:
        raise ConfigError("--max-steps", max_steps, "must be a positive integer")
    return [BenchRun(m, t, s, config_for(m, t, s, max_steps, device)) for m, t in pairs for s in seed_list]
