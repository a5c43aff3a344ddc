"""`segcore generate --shape`'s lakes are the same for the same seed."""

import pandas as pd
import pytest

from segcore.sample.shapes import SHAPES

SEED = 21
END = "2026-06-30"


@pytest.mark.parametrize("shape", ["transactions", "normalized"])
def test_generate_shape_is_deterministic(tmp_path, shape):
    summaries = [SHAPES[shape](tmp_path / name, 50, SEED, pd.Timestamp(END).date()) for name in ("a", "b")]
    assert summaries[0].rows == summaries[1].rows
    for table in summaries[0].rows:
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "a" / table), pd.read_parquet(tmp_path / "b" / table)
        )
