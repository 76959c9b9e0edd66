import json
from pathlib import Path

import pytest

from metapbt.errors import ConfigError
from metapbt.runs.config import RunConfig, TrainingProtocol
from metapbt.studies.config import load_study

STUDIES = Path(__file__).resolve().parents[2] / "studies"

MINIMAL = """
name = "t"
methods = ["random", {label = "warm", method = "pb2-star", portfolio = "pf/{env}__{context}.json"}]
seeds = [3, 5]
[protocol]
population = 2
budget = 4000
interval = 2000
[[tasks]]
env = "cart_pole"
contexts = ["earth", "gravity=12,length=0.4"]
[[tasks]]
env = "pendulum"
contexts = "planets"
"""


def _write(tmp_path, text):
    path = tmp_path / "study.toml"
    path.write_text(text)
    return path


def test_grid_expansion_order_and_stable_ids(tmp_path):
    study = load_study(_write(tmp_path, MINIMAL))
    cells = study.cells
    assert len(cells) == (2 + 5) * 2 * 2
    assert [c.id for c in cells[:4]] == [
        "random__cart_pole__earth__seed3",
        "random__cart_pole__earth__seed5",
        "warm__cart_pole__earth__seed3",
        "warm__cart_pole__earth__seed5",
    ]
    assert cells[4].id == "random__cart_pole__gravity=12+length=0.4__seed3"
    assert [c.id for c in load_study(_write(tmp_path, MINIMAL)).cells] == [c.id for c in cells]
    assert study.results_dir == tmp_path / "results" / "t"


def test_cells_become_run_configs_with_filled_paths(tmp_path):
    study = load_study(_write(tmp_path, MINIMAL))
    warm = study.cells[2].run_config()
    assert warm.method == "pb2-star" and warm.seed == 3
    assert warm.portfolio == str(tmp_path / "pf" / "cart_pole__earth.json")
    assert (warm.population, warm.budget, warm.interval) == (2, 4000, 2000)
    assert study.cells[0].run_config().portfolio is None
    assert study.cells[0].run_config().save_meta is None


def test_the_protocol_is_the_engines_and_save_meta_fills_every_run(tmp_path):
    text = 'save_meta = "meta/{env}"\n' + MINIMAL.replace("[protocol]", "[protocol]\nstrict = true")
    study = load_study(_write(tmp_path, text))
    assert isinstance(study.protocol, TrainingProtocol) and study.protocol.quantile == 0.25
    config = study.cells[-1].run_config()
    assert isinstance(config, RunConfig) and config.save_meta == str(tmp_path / "meta" / "pendulum")
    assert config.strict and not RunConfig().strict
    defaults = load_study(
        _write(tmp_path, MINIMAL.split("[protocol]")[0] + "[[tasks]]\nenv = 'acrobot'")
    )
    assert defaults.protocol == TrainingProtocol()
    assert defaults.protocol.budget == RunConfig().budget


@pytest.mark.parametrize(
    "change, match",
    [
        (("seeds = [3, 5]", "seeds = [3, 5]\ncolour = 1"), "colour"),
        (("population = 2", "population = 0"), "protocol.population"),
        (("budget = 4000", "budget = 5000"), "multiple of interval"),
        (
            ("interval = 2000", "interval = 1000"),
            "protocol: interval 1000 .* 'classic' preset's batch",
        ),
        (("interval = 2000", "interval = 1000\nbudget2 = 1"), "budget2"),
        (('"random"', '"randm"'), "unknown method 'randm'"),
        (('env = "pendulum"', 'env = "lunar"'), "unknown env 'lunar'"),
        (('contexts = "planets"', 'contexts = "mars"'), "planets"),
        (('"earth", "gravity', '"pluto", "gravity'), "pluto"),
        (("seeds = [3, 5]", "seeds = [3, 3]"), "distinct"),
        (("seeds = [3, 5]", 'seeds = [3, 5]\nbase = "/"'), "base"),
        (('methods = ["random",', 'methods = ["random", "random",'), "unique"),
    ],
)
def test_invalid_files_name_the_key(tmp_path, change, match):
    text = MINIMAL.replace(*change)
    assert text != MINIMAL
    with pytest.raises(ConfigError, match=match):
        load_study(_write(tmp_path, text))


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_study(tmp_path / "none.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_study(_write(tmp_path, "name = "))
    bad = MINIMAL.replace("{env}__{context}", "{planet}")
    with pytest.raises(ConfigError, match="unknown placeholder"):
        load_study(_write(tmp_path, bad)).cells[2].run_config()


def test_shipped_studies_parse():
    smoke = load_study(STUDIES / "smoke.toml")
    assert len(smoke.cells) == 12
    full = load_study(STUDIES / "classic_control.toml")
    assert len(full.cells) == 4 * 5 * 10 * 8
    assert full.protocol.population == 4 and full.protocol.budget == 600_000
    assert full.protocol.interval == 40_000
    assert {c.env for c in full.cells} == {"cart_pole", "mountain_car", "pendulum", "acrobot"}
    repro = load_study(STUDIES / "classic_control_repro.toml")
    assert len(repro.cells) == 8 * 4 * 5 * 5 and repro.protocol.preset == "classic"
    labels = {c.method.label for c in repro.cells}
    assert labels == {
        "random",
        "pbt",
        "pb2",
        "pb2-star",
        "pb2-star-warm",
        "meta-prior",
        "multitask",
        "taf",
    }
    warm = next(c for c in repro.cells if c.method.label == "pb2-star-warm")
    assert warm.run_config().portfolio.endswith(
        f"portfolios/classic/general/{warm.env}__{warm.context}.json"
    )
    brax = load_study(STUDIES / "brax.toml")
    assert len(brax.cells) == 8 * 9 * 5 * 10 and brax.protocol.preset == "brax-paper"
    assert (brax.protocol.budget, brax.protocol.interval) == (3_000_000, 200_000)
    assert len(load_study(STUDIES / "brax_smoke.toml").cells) == 4


def test_grid_contexts_in_a_study(tmp_path):
    text = MINIMAL.replace('contexts = "planets"', 'contexts = "grid:l"')
    study = load_study(_write(tmp_path, text))
    pendulum = [c for c in study.cells if c.env == "pendulum"]
    assert len(pendulum) == 22 * 2 * 2 and pendulum[0].context == "l=0.1"


def test_a_task_may_override_part_of_the_protocol(tmp_path):
    text = MINIMAL.replace(
        'env = "pendulum"', 'env = "pendulum"\nprotocol = { budget = 8000, preset = "fast" }'
    )
    study = load_study(_write(tmp_path, text))
    by_env = {c.env: c.protocol for c in study.cells}
    assert by_env["cart_pole"] == study.protocol
    expected = TrainingProtocol(population=2, budget=8000, interval=2000, preset="fast")
    assert by_env["pendulum"] == expected
    assert study.cells[-1].run_config().budget == 8000
    bad = MINIMAL.replace('env = "pendulum"', 'env = "pendulum"\nprotocol = { budget = 3000 }')
    with pytest.raises(ConfigError, match=r"tasks\.pendulum\.protocol"):
        load_study(_write(tmp_path, bad))
    unknown = MINIMAL.replace('env = "pendulum"', 'env = "pendulum"\nprotocol = { budgte = 1 }')
    with pytest.raises(ConfigError, match="budgte"):
        load_study(_write(tmp_path, unknown))


ABLATIONS = MINIMAL.replace(
    'methods = ["random", {label = "warm"',
    'methods = [{label = "high-lr", method = "pb2-star", init_ranges = {lr = [6.31e-4, 1e-3]}},'
    ' {label = "random-warm", method = "random", portfolio = "pf/{env}.json"},'
    ' {label = "warm"',
)


def test_any_method_composes_with_a_warm_start_or_an_initial_range(tmp_path):
    study = load_study(_write(tmp_path, ABLATIONS))
    by_label = {c.method.label: c.run_config() for c in study.cells if c.seed == 3}
    assert by_label["high-lr"].init_ranges == {"lr": (6.31e-4, 1e-3)}
    assert by_label["high-lr"].method == "pb2-star" and by_label["high-lr"].portfolio is None
    assert by_label["random-warm"].portfolio.endswith(f"pf/{by_label['random-warm'].env}.json")
    bad = ABLATIONS.replace("6.31e-4, 1e-3", "6.31e-4, 1e-2")
    with pytest.raises(ConfigError, match=r"methods\.0\.init_ranges: .*<= 0\.001"):
        load_study(_write(tmp_path, bad))


@pytest.mark.parametrize(("seeding", "state"), [("shared", "done"), ("task", "stale")])
def test_a_summary_without_seeding_is_a_shared_seeding_run(tmp_path, seeding, state):
    from metapbt.studies.states import cell_dir, cell_state

    text = MINIMAL.replace("[protocol]", f'[protocol]\nseeding = "{seeding}"')
    study = load_study(_write(tmp_path, text))
    cell = study.cells[0]
    recorded = cell.run_config().model_dump(mode="json")
    recorded.pop("seeding")
    cell_dir(study, cell).mkdir(parents=True)
    (cell_dir(study, cell) / "summary.json").write_text(json.dumps(recorded))
    assert cell_state(study, cell) == state


def test_the_attribution_study_composes_its_ablations():
    study = load_study(STUDIES / "warm_attribution.toml")
    assert len(study.cells) == 16 * 20 * 10 and study.protocol.seeding == "task"
    by_label = {c.method.label: c.run_config() for c in study.cells if c.seed == 0}
    assert by_label["high-lr"].init_ranges == {"lr": (6.31e-4, 1e-3)}
    assert by_label["random-warm"].method == "random" and by_label["random-warm"].portfolio
    assert by_label["pb2-star-tr-warm"].method == "pb2-star-tr"
    assert {by_label[f"{m}-pooled"].metadata for m in ("meta-prior", "multitask", "taf")} == {
        "pooled"
    }
    repro = load_study(STUDIES / "classic_control_repro.toml")
    assert repro.protocol.seeding == "shared"


def test_the_runs_of_one_command_are_a_study_named_by_context_and_seed(tmp_path):
    from metapbt.studies.config import study_of_runs
    from metapbt.studies.states import cell_dir

    config = RunConfig(method="meta-prior", budget=8000, interval=4000, init_ranges=None)
    study = study_of_runs(config, [0, 3], ["earth", "gravity=12"], tmp_path / "out")
    assert [study.cell_name(c) for c in study.cells] == [
        "earth__seed0",
        "earth__seed3",
        "gravity=12__seed0",
        "gravity=12__seed3",
    ]
    assert cell_dir(study, study.cells[1]) == tmp_path / "out" / "earth__seed3"
    # each cell runs the command's settings, in its own context and seed
    first = study.cells[2].run_config()
    expected = config.model_copy(update={"context": "gravity=12", "seed": 0})
    assert first.model_dump() == expected.model_dump()
    # nothing given: the config's own context and seed
    alone = study_of_runs(config, [], [], tmp_path / "one")
    assert [study.cell_name(c) for c in alone.cells] == ["earth__seed0"]
    with pytest.raises(ConfigError, match="each seed may be given once"):
        study_of_runs(config, [1, 1], [], tmp_path / "x")
    with pytest.raises(ConfigError, match="neither a planet"):
        study_of_runs(config, [], ["mars"], tmp_path / "x")
    with pytest.raises(ConfigError, match="one method, one task"):
        load_study_text(tmp_path, 'layout = "run"')


def load_study_text(tmp_path: Path, extra: str):
    text = (
        f'name = "s"\nmethods = ["random", "pb2"]\n{extra}\n'
        '[[tasks]]\nenv = "cart_pole"\ncontexts = ["earth"]\n'
    )
    (tmp_path / "s.toml").write_text(text)
    return load_study(tmp_path / "s.toml")


def test_the_logging_table_is_an_output_not_a_setting_of_the_runs(tmp_path):
    plain = load_study(_write(tmp_path, MINIMAL))
    assert plain.tensorboard_dir is None
    logged = load_study(_write(tmp_path, MINIMAL + '[logging]\ntensorboard = "tb"\n'))
    assert logged.tensorboard_dir == tmp_path / "tb"  # relative to the study file
    assert logged.cells == plain.cells
    assert [c.run_config() for c in logged.cells] == [c.run_config() for c in plain.cells]
    elsewhere = tmp_path.parent / "tb-abs"
    with pytest.raises(ConfigError, match="is absolute: a study file writes only below"):
        load_study(_write(tmp_path, MINIMAL + f'[logging]\ntensorboard = "{elsewhere}"\n'))
    for table, match in (
        ('wandb = "x"', "logging.wandb: Extra inputs"),
        ('tensorboard = ""', "logging.tensorboard: String should have at least 1 character"),
        ("tensorboard = 3", "logging.tensorboard: Input should be a valid string"),
    ):
        with pytest.raises(ConfigError, match=match):
            load_study(_write(tmp_path, f"{MINIMAL}[logging]\n{table}\n"))


def test_the_runs_of_one_command_log_where_the_command_says(tmp_path):
    from metapbt.studies.config import study_of_runs

    config = RunConfig(budget=8000, interval=4000)
    study = study_of_runs(config, [0, 1], [], tmp_path / "out", tensorboard=tmp_path / "tb")
    assert study.tensorboard_dir == tmp_path / "tb"
    assert study_of_runs(config, [0, 1], [], tmp_path / "out").tensorboard_dir is None


def test_a_method_may_tune_its_own_space_beside_the_protocols():
    study = load_study(STUDIES / "mixed_space.toml")
    assert len(study.cells) == 3 * 3 * 5
    by_label = {c.method.label: c.run_config() for c in study.cells if c.env == "cart_pole"}
    mixed = by_label["pb2-mix"].search_space
    assert mixed.categorical_names == ["gamma"] and mixed["epochs"].high == 8
    assert by_label["pbt"].search_space == mixed
    held = by_label["pb2-star"].search_space
    assert held.names == ["lr", "clip", "epochs"] and not held.categorical_names


def test_a_methods_initial_ranges_lie_in_its_own_space(tmp_path):
    lr = '{ type = "float", low = 1e-5, high = 1e-3, log = true }'
    own = f'{{ lr = {lr}, epochs = {{ type = "int", low = 1, high = 8 }} }}'
    few = f'label = "few", method = "pbt", space = {own}, init_ranges = {{ epochs = [1, 2] }}'
    text = MINIMAL.replace('methods = ["random", ', f"methods = [{{{few}}}, ")
    study = load_study(_write(tmp_path, text))
    few = next(c for c in study.cells if c.method.label == "few").run_config()
    assert few.init_ranges == {"epochs": (1.0, 2.0)} and few.search_space["epochs"].high == 8
    with pytest.raises(ConfigError, match="init_ranges"):
        load_study(_write(tmp_path, text.replace("epochs = [1, 2]", "clip = [0.1, 0.2]")))
