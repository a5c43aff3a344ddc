"""Tools shipped with segcore: the k-means benchmark, the fault campaign and the build of the Spark
JVM's class archive."""
