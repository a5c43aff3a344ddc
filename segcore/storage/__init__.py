"""Files through Hadoop's FileSystem in one place, and versioned output partitions behind a pointer."""
