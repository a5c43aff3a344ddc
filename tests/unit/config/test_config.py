import copy
import datetime as dt
import json
import random
import re

import pytest
from conftest import ROOT

from segcore.cli.commands import main
from segcore.config import Config, build_config, load_config
from segcore.errors import ConfigError


def test_default_yaml_documents_the_embedded_defaults():
    assert load_config(str(ROOT / "conf" / "default.yaml")) == Config()


def test_overrides_set_nested_keys_with_yaml_types():
    config = build_config({}, ["kmeans.k=6", "as_of=2026-05-31", "lake.orders.columns.order_ts=InvoiceDate"])
    assert config.kmeans.k == 6
    assert config.as_of == dt.date(2026, 5, 31)
    assert config.lake.orders.columns["order_ts"] == "InvoiceDate"


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"config key 'kmeans.kk' does not exist"):
        build_config({}, ["kmeans.kk=3"])


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match=r"config key 'kmeans.k'.*'six'"):
        build_config({}, ["kmeans.k=six"])


def test_invalid_value_is_named():
    with pytest.raises(ConfigError, match=r"config key 'kmeans.k'"):
        build_config({}, ["kmeans.k=0"])


def test_malformed_override_is_explained():
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        build_config({}, ["kmeans.k"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("kmeans.k=[5", "--set 'kmeans.k=[5': the value is not valid YAML"),
        (
            "lake.orders.filter=`amount` > 0",  # Spark SQL's identifier quotes
            "quote it, e.g. --set 'lake.orders.filter=\"`amount` > 0\"'",
        ),
        (
            "kmeans.k={min:2,max:6}",
            "config key 'kmeans.k.min:2' does not exist: remove it or check its spelling (see "
            "conf/default.yaml); in YAML a mapping needs a space after each colon",
        ),
        (
            "as_of=30/06/2026",
            "config key 'as_of': Input should be a valid date or datetime, invalid character in year "
            "(got '30/06/2026'); write dates as YYYY-MM-DD",
        ),
    ],
)
def test_a_set_value_yaml_or_the_config_cannot_read_exits_2_saying_how_to_write_it(override, message, capsys):
    assert main(["features", "--set", override]) == 2
    error = capsys.readouterr().err
    assert message in error
    assert "Traceback" not in error and "'kmeans.k': Input should be a valid integer" not in error


def test_mapping_a_name_segcore_does_not_have_is_refused_at_load(capsys):
    """A typo in a mapped name is found before Spark starts, not after it has read the table."""
    assert main(["features", "--set", "lake.orders.columns.invoice_date=InvoiceDate"]) == 2
    error = capsys.readouterr().err
    assert "config key 'lake.orders.columns': Value error, maps unknown name(s) ['invoice_date']: " in error
    assert "the names segcore knows for table 'orders' are ['amount', 'category', " in error
    assert "spark application" not in error


def test_the_quoted_value_a_yaml_error_suggests_is_read_as_text():
    assert build_config({}, ['lake.orders.filter="`amount` > 0"']).lake.orders.filter == "`amount` > 0"


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "nope.yaml"))


def test_relative_paths_resolve_under_workdir(tmp_path):
    config = build_config({"workdir": str(tmp_path)})
    assert config.partition("features") == f"{tmp_path}/features/as_of=2026-06-30"
    assert config.path("s3a://bucket/lake") == "s3a://bucket/lake"
    assert config.tracking_uri() == f"sqlite:///{tmp_path}/mlflow.db"


def test_a_tracking_uri_set_in_process_does_not_leak_into_other_configs(tmp_path):
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/other.db")  # also sets MLFLOW_TRACKING_URI
    config = build_config({"workdir": str(tmp_path / "job")})
    assert config.tracking_uri() == f"sqlite:///{tmp_path}/job/mlflow.db"


def test_a_k_range_is_validated():
    assert build_config({}, ["kmeans.k={min: 3, max: 6}"]).kmeans.k.max == 6
    with pytest.raises(ConfigError, match=r"config key 'kmeans.k': .*k range max=3 is below min=6"):
        build_config({}, ["kmeans.k={min: 6, max: 3}"])


def test_local_profile_is_the_embedded_default():
    assert load_config(str(ROOT / "conf" / "local.yaml")) == Config()


def test_cluster_profile_uses_uris_a_tracking_server_and_the_spark_engine():
    config = load_config(str(ROOT / "conf" / "cluster.yaml"))
    tables = (config.lake.customers, config.lake.orders, config.lake.events)
    outputs = (
        config.features.output,
        config.score.output,
        config.score.profiles_output,
        config.score.kpis_output,
        config.drift.output,
        config.campaigns.audiences_output,
    )
    assert all(config.path(table.path).startswith("s3a://") for table in tables)
    assert [config.partition(output) for output in outputs] == [
        f"s3a://segcore/{table}/as_of=2026-06-30"
        for table in ("features", "segments", "profiles", "kpis", "drift", "audiences")
    ]
    assert config.tracking_uri().startswith("http://")
    assert config.kmeans.engine == "spark"


@pytest.mark.parametrize("fixed_k", [None, 9])
def test_fixed_rule_needs_a_fixed_k_of_the_range_at_load(fixed_k):
    overrides = ["select.rule=fixed", "kmeans.k={min: 3, max: 5}", f"select.fixed_k={fixed_k or 'null'}"]
    got = "is not set" if fixed_k is None else "is 9"
    with pytest.raises(ConfigError, match=rf"config key 'select.fixed_k' {got}: .* kmeans.k \(3..5\)"):
        build_config({}, overrides)


def test_an_impossible_date_is_named_by_its_key(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("as_of: 2026-02-30\n")
    for loaded in (lambda: load_config(str(config)), lambda: build_config({}, ["as_of=2026-02-30"])):
        with pytest.raises(ConfigError, match=r"config key 'as_of': .*day value is outside .*'2026-02-30'"):
            loaded()


@pytest.mark.parametrize("table", ["customers", "events"])
def test_a_table_with_a_null_path_is_a_lake_without_it(table):
    """``customers: {path: null}`` (issue 8's form) and ``customers: null`` mean the same."""
    as_mapping = build_config({"lake": {table: {"path": None}}})
    as_null = build_config({"lake": {table: None}})
    assert getattr(as_mapping.lake, table) is None and as_mapping == as_null
    assert build_config({}, [f"lake.{table}.path=null"]) == as_null


@pytest.mark.parametrize(
    "lake, message",
    [
        ({"orders": {"path": None}}, "the orders table is required: give lake.orders.path"),
        ({"orders": None}, "the orders table is required"),
        (
            {"customers": {"path": None, "filter": "signup_date > '2020-01-01'"}},
            r"lake.customers sets \['filter'\] but neither path nor query",
        ),
        ({"sources": {"crm": {"path": None}}}, r"config key 'lake.sources.crm.path'"),
    ],
)
def test_a_table_without_a_source_is_refused_by_its_key(lake, message):
    with pytest.raises(ConfigError, match=message):
        build_config({"lake": lake})


_MALFORMED = [
    5,
    "",
    " ",
    [],
    ["a"],
    "lake/orders",
    None,
    True,
    {},
    {"path": ""},
    {"path": " "},
    {"path": 5},
    {"path": None},
    {"format": "xml"},
    {"format": 5},
    {"columns": 5},
    {"columns": {"amount": ""}},
    {"columns": {"amount": 5}},
    {"options": 5},
    {"query": ""},
    {"query": 5},
    {"filter": 7},
    {"filter": ""},
    {"unknown": 1},
    {"path": "x", "query": "SELECT 1"},
]


def test_a_fuzz_of_malformed_lake_sections_is_exit_2_naming_the_key_or_a_valid_config(capsys):
    """Seeded random lake sections built from malformed pieces: each is a valid config or a
    ConfigError that names a lake key, and the CLI exits 2 on it before Spark starts; never a
    traceback."""
    rng = random.Random(7)
    refused = 0
    for _ in range(300):
        lake = {
            table: rng.choice(_MALFORMED)
            for table in rng.sample(["customers", "orders", "events"], rng.randint(1, 3))
        }
        if rng.random() < 0.2:
            lake["sources"] = rng.choice(
                [5, {"x": {"path": ""}}, {"x": 5}, {"x": {"path": "p", "format": "xml"}}]
            )
        try:
            build_config({"lake": copy.deepcopy(lake)})
        except ConfigError as error:
            refused += 1
            assert re.search(r"config key 'lake(\.\w+)*'", str(error)), (lake, str(error))
            assert main(["features", "--set", f"lake={json.dumps(lake)}"]) == 2
            assert "segcore features: error: config key 'lake" in capsys.readouterr().err
    assert refused > 200


def test_relative_outputs_land_under_a_uri_workdir():
    config = build_config({"workdir": "abfss://lake@acct.dfs.core.windows.net/segcore/"})
    assert config.partition("kpis") == "abfss://lake@acct.dfs.core.windows.net/segcore/kpis/as_of=2026-06-30"
    assert config.path("/mnt/shared/features") == "/mnt/shared/features"


def test_a_uri_workdir_needs_a_tracking_server(monkeypatch):
    monkeypatch.setattr("segcore.config.STARTUP_TRACKING_URI", None)  # as if $MLFLOW_TRACKING_URI were unset
    config = build_config({"workdir": "s3a://segcore"})
    with pytest.raises(ConfigError, match=r"'mlflow.tracking_uri' is not set and workdir s3a://segcore"):
        config.tracking_uri()


def test_value_scores_as_features_need_the_value_model_at_load():
    with pytest.raises(ConfigError, match=r"'train.features' names value score\(s\) \['churn_risk'\]"):
        build_config({"train": {"features": ["frequency", "churn_risk"]}, "value": {"enabled": False}})
