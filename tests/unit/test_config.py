"""RunConfig: defaults, validation errors, override parsing, (de)serialisation, presets."""

from __future__ import annotations

import json

import pytest

from groklab.config import (
    ConfigError,
    RunConfig,
    apply_dict,
    apply_overrides,
    load_toml,
    parse_value,
    set_value,
)
from groklab.presets import PRESETS, get_preset
from groklab.resolve import check, resolve


def cfg_with(*overrides: str) -> RunConfig:
    cfg = RunConfig()
    apply_overrides(cfg, list(overrides))
    return cfg


# --------------------------------------------------------------------------- defaults


def test_defaults_validate_and_have_documented_values():
    cfg = RunConfig()
    assert check(cfg) is cfg
    assert (cfg.task.op, cfg.task.p, cfg.task.fraction, cfg.task.split) == ("add", 97, 0.5, "random")
    assert cfg.task.layout == "ab="
    assert (cfg.model.kind, cfg.model.impl, cfg.model.d_model, cfg.model.n_heads) == (
        "transformer", "fast", 128, 4)
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.weight_decay) == ("adamw", 1e-3, 0.0)
    assert cfg.train.seeds == [0]
    assert cfg.n_members == 1
    assert cfg.preset is None


def test_default_lists_are_not_shared_between_instances():
    a, b = RunConfig(), RunConfig()
    a.train.seeds.append(1)
    a.model.hidden.append(7)
    assert b.train.seeds == [0]
    assert b.model.hidden == [200, 200]


# --------------------------------------------------------------------------- bad values

# (overrides, dotted key named by the error, "key=value" prefix of the message)
BAD = [
    pytest.param(["task.op=pow"], "task.op", "task.op='pow'", id="unknown-op"),
    pytest.param(["task.op=div", "task.p=96"], "task.p", "task.p=96", id="div-composite-p"),
    pytest.param(["task.op=div_odd", "task.p=96"], "task.p", "task.p=96", id="div_odd-composite-p"),
    pytest.param(["task.op=div", "task.p=91"], "task.p", "task.p=91", id="div-p-7x13"),
    pytest.param(["task.fraction=0"], "task.fraction", "task.fraction=0", id="fraction-0"),
    pytest.param(["task.fraction=1"], "task.fraction", "task.fraction=1", id="fraction-1"),
    pytest.param(["task.fraction=1.5"], "task.fraction", "task.fraction=1.5", id="fraction-1.5"),
    pytest.param(["task.fraction=-0.1"], "task.fraction", "task.fraction=-0.1", id="fraction-neg"),
    pytest.param(["optim.lr=-1e-3"], "optim.lr", "optim.lr=-0.001", id="negative-lr"),
    pytest.param(["optim.lr=0"], "optim.lr", "optim.lr=0", id="zero-lr"),
    pytest.param(["optim.lr=[1e-3,-2e-3]"], "optim.lr", "optim.lr=-0.002", id="negative-lr-in-list"),
    pytest.param(["optim.weight_decay=-0.1"], "optim.weight_decay", "optim.weight_decay=-0.1",
                 id="negative-wd"),
    pytest.param(["train.steps=abc"], "train.steps", "train.steps='abc'", id="steps-str"),
    pytest.param(["train.steps=1.5"], "train.steps", "train.steps=1.5", id="steps-float"),
    pytest.param(["model.layer_norm=3"], "model.layer_norm", "model.layer_norm=3", id="layer_norm-int"),
    pytest.param(["optim.lrr=1"], "optim.lrr", "optim.lrr=1", id="unknown-key"),
    pytest.param(["optimizer.lr=1"], "optimizer.lr", "optimizer.lr=1", id="unknown-section"),
    pytest.param(["lr=1"], "lr", "lr=1", id="no-section"),
    pytest.param(["train.seeds=[0,1,2]", "optim.lr=[1e-3,2e-3]"], "optim.lr",
                 "optim.lr=[0.001, 0.002]", id="mismatched-lists"),
    pytest.param(["train.seeds=[0,1]", "model.init_scale=[1,2,3]"], "train.seeds",
                 "train.seeds=[0, 1]", id="mismatched-lists-seeds-shorter"),
    pytest.param(["task.op=s5_mul"], "task.p", "task.p=97", id="s5_mul-p97"),
    pytest.param(["task.op=s5_conj", "task.p=121"], "task.p", "task.p=121", id="s5_conj-p121"),
    pytest.param(["task.op=sub", "task.dedupe_commutative=true"], "task.dedupe_commutative",
                 "task.dedupe_commutative=True", id="dedupe-non-commutative"),
    pytest.param(["task.op=s5_mul", "task.p=120", "task.dedupe_commutative=true"],
                 "task.dedupe_commutative", "task.dedupe_commutative=True", id="dedupe-s5"),
    pytest.param(["train.seeds=[]"], "train.seeds", "train.seeds=[]", id="no-seeds"),
    pytest.param(["train.seeds=[-1]"], "train.seeds", "train.seeds=[-1]", id="negative-seed"),
    pytest.param(["optim.lr=inf"], "optim.lr", "optim.lr=inf", id="lr-inf"),
    pytest.param(["task.p=1"], "task.p", "task.p=1", id="p-1"),
    pytest.param(["model.d_model=30"], "model.d_model", "model.d_model=30", id="d_model-not-div-heads"),
    pytest.param(["task.layout=a+b="], "task.layout", "task.layout='a+b='", id="bad-layout"),
    pytest.param(["optim.name=lion"], "optim.name", "optim.name='lion'", id="bad-optimizer"),
    pytest.param(["model.init_scale=0"], "model.init_scale", "model.init_scale=0", id="init-scale-0"),
    pytest.param(["train.autocast=bf16"], "train.autocast", "train.autocast='bf16'", id="autocast-bf16"),
    pytest.param(["train.autocast=bfloat16", "model.dtype=float64"], "train.autocast",
                 "train.autocast='bfloat16'", id="autocast-float64-model"),
]


@pytest.mark.parametrize("overrides,key,prefix", BAD)
def test_bad_input_raises_config_error_naming_field_and_value(overrides, key, prefix):
    with pytest.raises(ConfigError) as info:
        resolve(None, None, overrides)
    err = info.value
    msg = str(err)
    assert err.key == key
    assert msg.startswith(prefix + ": "), msg
    assert "\n" not in msg
    assert len(msg) > len(prefix) + 2  # there is a reason after the value


def test_config_error_is_a_value_error_with_key_value_why():
    err = ConfigError("optim.lr", -1.0, "must be positive")
    assert isinstance(err, ValueError)
    assert str(err) == "optim.lr=-1.0: must be positive"
    assert (err.key, err.value, err.why) == ("optim.lr", -1.0, "must be positive")


def test_validate_type_checks_values_set_directly():
    cfg = RunConfig()
    cfg.train.steps = "abc"
    with pytest.raises(ConfigError, match=r"^train\.steps='abc': "):
        check(cfg)
    cfg = RunConfig()
    cfg.model.layer_norm = 3
    with pytest.raises(ConfigError, match=r"^model\.layer_norm=3: "):
        check(cfg)
    cfg = RunConfig()
    cfg.train.steps = True  # bool is not an int here
    with pytest.raises(ConfigError, match=r"^train\.steps=True: "):
        check(cfg)


def test_unknown_key_error_lists_the_section_fields():
    with pytest.raises(ConfigError) as info:
        cfg_with("optim.lrr=1")
    assert "weight_decay" in str(info.value) and "lr" in str(info.value)


def test_unknown_section_error_lists_sections():
    with pytest.raises(ConfigError) as info:
        cfg_with("foo.bar=1")
    msg = str(info.value)
    assert msg.startswith("foo.bar=1: ")
    for s in ("task", "model", "optim", "train", "detect"):
        assert s in msg


def test_good_edge_values_validate():
    # fraction close to the ends, prime p for div, S5 with p=120, dedupe on a commutative op
    for ov in (["task.fraction=0.01"], ["task.fraction=0.99"], ["task.op=div", "task.p=97"],
               ["task.op=div_odd", "task.p=7"], ["task.op=s5_xyx", "task.p=120"],
               ["task.op=mul", "task.dedupe_commutative=true"], ["optim.weight_decay=0"],
               ["optim.lr=1"], ["train.batch_size=none"], ["train.stop_val_acc=none"]):
        check(cfg_with(*ov))


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "text,expected",
    [
        ("none", None),
        ("None", None),
        ("NULL", None),
        ("[0, 1, 2]", [0, 1, 2]),
        ("[1e-3,2e-3]", [0.001, 0.002]),
        ("3e-3", 0.003),
        ("0.5", 0.5),
        ("true", True),
        ("false", False),
        ("add", "add"),
        ("ab=", "ab="),
        ("cuda:0", "cuda:0"),
        ('"quoted text"', "quoted text"),
    ],
)
def test_parse_value(text, expected):
    got = parse_value(text)
    assert got == expected
    assert type(got) is type(expected)


def test_parse_value_integers_stay_integers():
    v = parse_value("7")
    assert v == 7 and type(v) is int
    assert type(parse_value("7.0")) is float


def test_apply_overrides_sets_values_of_each_type():
    cfg = cfg_with(
        "optim.lr=3e-3",
        "train.seeds=[0,1,2]",
        "train.batch_size=none",
        "model.layer_norm=true",
        "task.op=mul",
        "task.layout=aopb=",  # the value itself contains '='
        " task.p = 11 ",
    )
    assert cfg.optim.lr == 0.003
    assert cfg.train.seeds == [0, 1, 2]
    assert cfg.train.batch_size is None
    assert cfg.model.layer_norm is True
    assert cfg.task.op == "mul"
    assert cfg.task.layout == "aopb="
    assert cfg.task.p == 11
    check(cfg)


def test_apply_overrides_later_wins():
    cfg = cfg_with("optim.lr=1e-2", "optim.lr=5e-4")
    assert cfg.optim.lr == 5e-4


def test_apply_overrides_without_equals_is_an_error():
    with pytest.raises(ConfigError) as info:
        cfg_with("optim.lr")
    assert str(info.value).startswith("optim.lr=")


def test_set_value_and_top_level_preset_field():
    cfg = RunConfig()
    set_value(cfg, "optim.weight_decay", 0.25)
    set_value(cfg, "preset", "demo")
    assert cfg.optim.weight_decay == 0.25 and cfg.preset == "demo"


def test_apply_dict_nested_sections_do_not_nest():
    cfg = RunConfig()
    with pytest.raises(ConfigError) as info:
        apply_dict(cfg, {"optim": {"adam": {"beta1": 0.9}}})
    assert info.value.key == "optim.adam"


# --------------------------------------------------------------------------- (de)serialisation


def test_to_dict_from_dict_round_trip_through_json():
    cfg = cfg_with(
        "task.op=div", "task.p=13", "task.fraction=0.3", "task.split=prefix", "task.layout=aopb=",
        "model.n_layers=2", "model.d_model=32", "model.layer_norm=true", "model.hidden=[8,4]",
        "model.init_scale=[1.0,2.0]", "optim.name=sgd", "optim.lr=[1e-3,2e-3]",
        "optim.weight_decay=0.5", "train.seeds=[3,4]", "train.batch_size=none", "train.steps=77",
        "detect.budget=500", "detect.gap=10",
    )
    cfg.preset = "demo"
    check(cfg)
    d = cfg.to_dict()
    assert d["task"]["op"] == "div" and d["optim"]["lr"] == [1e-3, 2e-3] and d["preset"] == "demo"
    back = RunConfig.from_dict(json.loads(json.dumps(d)))
    assert back == cfg
    assert back.to_dict() == d
    assert back is not cfg and back.train.seeds is not cfg.train.seeds


def test_from_dict_partial_keeps_defaults_and_checks_keys():
    cfg = RunConfig.from_dict({"optim": {"lr": 0.01}})
    assert cfg.optim.lr == 0.01
    assert cfg.optim.name == "adamw" and cfg.task.p == 97
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({"optim": {"lrr": 0.01}})
    assert info.value.key == "optim.lrr"


# --------------------------------------------------------------------------- ensembles


def test_n_members_is_longest_list():
    assert RunConfig().n_members == 1
    assert cfg_with("train.seeds=[0,1,2]").n_members == 3
    assert cfg_with("optim.lr=[1e-3,2e-3,3e-3,4e-3]").n_members == 4
    assert cfg_with("model.init_scale=[0.5,1.0]", "optim.weight_decay=[0.1]").n_members == 2


def test_member_values_broadcast():
    cfg = cfg_with("train.seeds=[1,2,3]", "optim.lr=[1e-3]", "optim.weight_decay=0.5")
    check(cfg)
    assert cfg.member_values("train.seeds") == [1, 2, 3]
    assert cfg.member_values("optim.lr") == [1e-3, 1e-3, 1e-3]
    assert cfg.member_values("optim.weight_decay") == [0.5, 0.5, 0.5]
    assert cfg.member_values("model.init_scale") == [1.0, 1.0, 1.0]


def test_member_values_lr_sweep_broadcasts_the_seed():
    cfg = cfg_with("optim.lr=[1e-3,3e-3]")
    check(cfg)
    assert cfg.member_values("train.seeds") == [0, 0]
    assert cfg.member_values("optim.lr") == [1e-3, 3e-3]


def test_member_values_unknown_key():
    with pytest.raises(KeyError):
        RunConfig().member_values("optim.beta1")


# --------------------------------------------------------------------------- presets and files


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_resolves_and_validates(name):
    cfg = resolve(name)
    assert cfg.preset == name
    for section, values in PRESETS[name].overrides.items():
        for k, v in values.items():
            assert getattr(getattr(cfg, section), k) == v, f"{section}.{k}"
    assert PRESETS[name].citation


def test_presets_include_the_documented_ones():
    assert {"demo", "nanda2023", "power2022", "liu2022_toy", "challenge97"} <= set(PRESETS)
    assert resolve("power2022").task.op == "div"
    assert resolve("challenge97").task.split == "prefix"


def test_get_preset_returns_fresh_configs():
    a = get_preset("demo")
    a.train.seeds.append(9)
    assert get_preset("demo").train.seeds == [0]


def test_unknown_preset_errors():
    with pytest.raises(ConfigError) as info:
        resolve("no_such_preset")
    assert info.value.key == "--preset"
    assert str(info.value).startswith("--preset='no_such_preset': ")


def test_resolve_precedence_defaults_preset_file_overrides(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text('[optim]\nlr = 0.01\nweight_decay = 0.2\n[task]\nfraction = 0.3\n')
    cfg = resolve("demo", f, ["optim.lr=0.02"])
    assert cfg.task.p == 59  # preset
    assert cfg.task.fraction == 0.3  # file over preset
    assert cfg.optim.weight_decay == 0.2  # file over preset (demo has 1.0)
    assert cfg.optim.lr == 0.02  # --set over file
    assert cfg.optim.beta1 == 0.9  # default


def test_load_toml_missing_and_invalid(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_toml(tmp_path / "nope.toml")
    assert info.value.key == "--config" and "nope.toml" in str(info.value)
    bad = tmp_path / "bad.toml"
    bad.write_text("[optim\nlr = ")
    with pytest.raises(ConfigError) as info:
        load_toml(bad)
    assert info.value.key == "--config"


def test_toml_file_with_bad_key(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text("[optim]\nlrr = 0.01\n")
    with pytest.raises(ConfigError) as info:
        resolve("demo", f)
    assert str(info.value).startswith("optim.lrr=0.01: ")
