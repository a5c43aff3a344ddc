"""`segcore features` as a user runs it on a lake mapped by a YAML file: unusable rows are dropped
and counted beside the feature table, and every kind of lake error is one line with exit code 2."""

import json
import re
from pathlib import Path

import pytest
from commands import BIN, run
from lake_data import LINE_COUNTS, lines_lake, write_config, write_lines

from segcore.lake.tables import INPUT_ROWS_FILE
from segcore.storage.versions import local_partition


def _features(tmp_path, data):
    return run(BIN / "segcore", "features", "--config", write_config(tmp_path / "lake.yaml", data))


def test_an_invoice_line_lake_mapped_by_yaml_builds_features_and_counts_dropped_rows(tmp_path):
    data = lines_lake(tmp_path)
    data["lake"]["max_dropped_fraction"] = 0.6
    result = _features(tmp_path, data)
    assert result.returncode == 0, result.stderr[-3000:]
    folder = local_partition(tmp_path / "features" / "as_of=2026-06-30")
    counts = json.loads((Path(folder) / INPUT_ROWS_FILE).read_text())
    assert {name: counts[name] for name in LINE_COUNTS} == LINE_COUNTS
    assert counts["orders_orphan_customer"] == 1
    assert counts["customers_dropped_null_customer_id"] == 1


def _truncate_one_file(tmp_path, data):
    path = next((tmp_path / "lines").rglob("*.parquet"))
    path.write_bytes(path.read_bytes()[:-100])
    return rf"table 'orders': file \S+/{path.parent.name}/{path.name} is not a readable Parquet file"


def _bad_expression(tmp_path, data):
    data["lake"]["orders"]["columns"]["amount"] = "Quantity * UnitPrce"
    return r"lake.orders.columns.amount: cannot use 'Quantity \* UnitPrce': \[UNRESOLVED_COLUMN"


def _failing_query(tmp_path, data):
    data["lake"]["sources"] = {"lines": {"path": data["lake"]["orders"].pop("path")}}
    data["lake"]["orders"]["query"] = "SELECT *, no_such_function(Quantity) AS x FROM lines"
    return r"table 'orders': lake.orders.query fails: \[UNRESOLVED_ROUTINE\] .*`no_such_function`"


def _too_many_dropped(tmp_path, data):
    return r"table 'orders': 5 of 9 rows before as_of 2026-06-30 cannot be used \('customer_id' "


def _file_with_another_type(tmp_path, data):
    write_lines(tmp_path / "lines", {"extra.parquet": [("1", 17850.0, 1.5, 1.0, "1/1/2026 10:00")]})
    return r"file \S+/extra.parquet has column 'Quantity' of type double, the other files of type int64"


CASES = [_truncate_one_file, _bad_expression, _failing_query, _too_many_dropped, _file_with_another_type]


@pytest.mark.parametrize("case", CASES, ids=[case.__name__.strip("_") for case in CASES])
def test_lake_errors_exit_2_with_one_line_and_no_java_trace(tmp_path, case):
    data = lines_lake(tmp_path)
    message = case(tmp_path, data)
    result = _features(tmp_path, data)
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("segcore features: error:")]
    assert len(errors) == 1
    assert re.search(message, errors[0]), errors[0]
    assert "Traceback" not in result.stderr
    assert "at org.apache" not in result.stderr
