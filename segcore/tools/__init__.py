"""Tools shipped with segcore: the k-means benchmark and the fault campaign."""
