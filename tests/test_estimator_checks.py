"""scikit-learn's estimator checks over every public estimator of mtlinear."""
import inspect

from sklearn.base import BaseEstimator
from sklearn.utils.estimator_checks import parametrize_with_checks

import mtlinear


def _public_estimators():
    """Every public estimator class exported by ``mtlinear``, discovered."""
    return [obj for name in mtlinear.__all__
            if inspect.isclass(obj := getattr(mtlinear, name))
            and issubclass(obj, BaseEstimator)]


ESTIMATORS = [cls() for cls in _public_estimators()]

# Nothing is expected to fail: every check passes as is.
EXPECTED_FAILED_CHECKS = {}


def test_estimators_are_discovered():
    assert len(ESTIMATORS) >= 1


@parametrize_with_checks(ESTIMATORS,
                         expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(
                             type(est).__name__, {}))
def test_sklearn_compatible(estimator, check):
    check(estimator)
