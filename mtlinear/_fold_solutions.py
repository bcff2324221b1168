"""The solutions of the cross-validation folds' paths, whose mean at the
chosen parameters starts the refit on all the data."""
import numpy as np

__all__ = ["FoldSolutions"]

# a fold keeps its solutions at every alpha up to this many floats (32 MiB);
# beyond, the refit starts from zero
_KEPT_SOLUTION_FLOATS = 2 ** 22


class FoldSolutions:
    """A fold's solutions ``(W (d, M), intercepts (M,))`` in the user's
    variables at every (grid, alpha) of ``shape``, or none where they would
    take more than ``_KEPT_SOLUTION_FLOATS`` floats.

    Their mean over the folds at the chosen (grid, alpha) starts the refit
    (:meth:`refit_start`), as in scikit-learn's ``LogisticRegressionCV``:
    each fold's solution is near the full data's, which the refit then
    reaches in a few steps where a start from zero needs the whole descent.
    """

    def __init__(self, shape):
        self.shape, self.W, self.intercept = shape, None, None
        self.complete = True

    def keep(self, g, k, W, intercept):
        """Keep the solution at grid ``g``, alpha ``k`` (the first one
        kept decides whether all fit under the cap)."""
        if not self.complete:
            return
        if self.W is None:
            if np.prod(self.shape) * (W.size + intercept.size) \
                    > _KEPT_SOLUTION_FLOATS:
                self.complete = False
                return
            self.W = np.zeros(self.shape + W.shape)
            self.intercept = np.zeros(self.shape + intercept.shape)
        self.W[g, k], self.intercept[g, k] = W, intercept

    @staticmethod
    def refit_start(folds, g, k):
        """The folds' mean ``(W, intercepts)`` at ``(g, k)``, or ``None``
        when a fold kept none (an infinite intercept, a class a fold's task
        lacks, starts at 0)."""
        if not all(f.complete and f.W is not None for f in folds):
            return None
        W = np.mean([f.W[g, k] for f in folds], axis=0)
        intercept = np.mean([f.intercept[g, k] for f in folds], axis=0)
        return W, np.where(np.isfinite(intercept), intercept, 0.0)
