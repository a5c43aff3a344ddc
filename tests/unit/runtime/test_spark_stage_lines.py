"""The log line of one Spark stage: a scan named by the table whose rows it read, a scan of cached
blocks (one record per batch) not mistaken for a table, the write, the shuffle."""

from segcore.runtime.spark_stages import SparkStage

TABLES = {19_830_564: "orders", 1_000_000: "customers"}


def test_a_scan_is_named_by_the_rows_it_read():
    line = SparkStage(14.1, 27.9, 19_830_564, 590 * 2**20, 0).describe(TABLES)
    assert line == "read orders (19,830,564 rows), shuffle 590.0 MiB in 14.1 s (27.9 s of tasks)"


def test_a_read_of_cached_batches_names_no_table():
    line = SparkStage(19.6, 38.0, 104, 0, 0).describe(TABLES)
    assert line == "read 104 records (cached batches or files) in 19.6 s (38.0 s of tasks)"
    line = SparkStage(8.5, 16.0, 104, 0, 1_000_000).describe(TABLES)
    assert line.startswith(
        "read 104 records (cached batches or files), aggregate, join and write (1,000,000 rows)"
    )


def test_the_last_stage_writes_and_an_empty_one_aggregates():
    assert (
        SparkStage(8.5, 16.0, 0, 0, 1_000_000)
        .describe(TABLES)
        .startswith("aggregate, join and write (1,000,000 rows) in 8.5 s")
    )
    assert SparkStage(0.0, 0.0, 0, 0, 0).describe(TABLES) == "aggregate in 0.0 s (0.0 s of tasks)"
    assert (
        SparkStage(1.0, 2.0, 0, 2**20, 0).describe(TABLES).startswith("aggregate, shuffle 1.0 MiB in 1.0 s")
    )
