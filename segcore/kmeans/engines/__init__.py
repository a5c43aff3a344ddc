"""Where the blocks of rows live and how partial results are reduced: one module per engine."""
