"""The input tables: mapping by config, file checks, the bad-rows policy, the canonical schema."""
