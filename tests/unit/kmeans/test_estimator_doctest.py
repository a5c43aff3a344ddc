"""The estimator's documented example runs as written."""

import doctest

import segcore.kmeans.estimator


def test_the_estimators_docstring_example_runs():
    results = doctest.testmod(segcore.kmeans.estimator, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert results.attempted >= 5 and results.failed == 0
