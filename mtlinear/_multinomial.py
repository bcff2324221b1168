"""Multinomial logistic regression per task: the loss and the class layout.

A task ``t`` with classes ``1..K`` has one linear predictor per class,
``z_ik = x_i . w_tk + b_tk``, and the loss of a sample of class ``y_i`` is
the softmax cross-entropy ``logsumexp_k z_ik - z_{i y_i}``.  The solvers see
the weights as one matrix of shape ``(d, T K)``, column ``t K + k`` for
class ``k`` of task ``t``, so every penalty acts on the class-expanded
matrix: ``l21`` groups feature ``j`` over all tasks and classes, the trace
norm is that of the ``(d, T K)`` matrix, ``l1`` and ``l2`` are those of
scikit-learn's multinomial ``LogisticRegression`` task by task.

Sample arrays carry the classes on their last axis in blocks of ``K``:
``(n, T K)`` in the shared layout, ``(n, K)`` in the stacked one (the row's
own task's classes).  Targets are one-hot with a sentinel: ``y_ik = 1`` for
the observed class, ``0`` for another class of the task, ``-1`` for a class
the task does not have (none of its samples, weighted, is of that class);
such a class has probability 0 for the task, its scores are left out of the
softmax and its weights get no gradient from the loss.  The estimator gives
every task of the stacked layout all the classes (pseudo-samples of those
its rows lack); the sentinel pads the columns of a shared ``Y`` with fewer
classes than the most, a binary column among multiclass ones included (a
two-class softmax, the same model family as the binary logistic loss with
its own penalty scaling).
"""
import numpy as np
import scipy.sparse as sp
from numba import njit
from scipy.special import xlogy

from ._coupling import TaskCoupling
from ._design import SharedDesign, linear_predictor
from ._newton_cg import solve_blocks
from ._task_blocks import task_blocks, task_columns
from ._task_data import TaskProblem
from .losses import Loss

__all__ = ["MultinomialLoss", "ClassExpandedDesign", "expand_classes",
           "model_intercepts", "expand_coupling", "class_scores",
           "class_hessian_blocks"]

# exact Newton steps while d (K + 1) is at most this (the blocks' side)
_DIRECT_MAX_SIZE = 128
_HESSIAN_ROWS = 4096  # rows of X densified at a time


class MultinomialLoss(Loss):
    """Softmax cross-entropy of each sample over its task's classes.

    ``F(Z) = sum_i v_i (logsumexp_k z_ik - z_{i y_i})``, with the sum over
    the task's classes (``y_ik >= 0``); ``v_i`` is repeated over a row's
    ``K`` entries.  ``F'(Z) = v (p - e_y)``, ``p`` the softmax.

    The curvature in a row's scores is ``v_i (diag(p) - p p^T)``, whose
    largest eigenvalue is at most ``v_i / 2`` (``curvature``); it is not
    diagonal (``elementwise = False``): proximal Newton, which models the
    loss entry by entry, does not apply; Newton-CG (a ridge penalty) does,
    through :meth:`newton_model` and :meth:`block_sum`.

    Conjugate: with ``u = v_i (s - e_y)``, ``f_i^*(u) = v_i sum_k s_k log
    s_k`` for ``s`` in the simplex of the task's classes, so at the dual
    point ``Theta = -F'(Z)``, ``s_i = e_{y_i} - theta_i / v_i = p_i`` and

    .. math:: -F^*(-\\Theta) = -\\sum_i v_i \\sum_k s_{ik} \\log s_{ik}.

    Parameters
    ----------
    n_classes : int >= 2
        ``K``, the classes per task (padded).
    """

    name = "multinomial"
    classification = True
    elementwise = False
    curvature = 0.5
    curvature_factor = 0.5  # the global bound is loose: test half of it
    step_shrink = 0.8

    def __init__(self, n_classes):
        self.n_classes = int(n_classes)

    def _blocks(self, a):
        """``a`` (..., M) as (..., M / K, K): one block per task and row."""
        a = np.asarray(a)
        return a.reshape(a.shape[:-1] + (-1, self.n_classes))

    def _log_proba(self, z, y):
        """Log-softmax over each block's classes (``-inf`` where ``y < 0``;
        every block has a class), as ``(..., M / K, K)``."""
        z2 = np.ascontiguousarray(np.reshape(z, (-1, self.n_classes)),
                                  dtype=np.float64)
        y2 = np.ascontiguousarray(np.reshape(y, (-1, self.n_classes)),
                                  dtype=np.float64)
        return _log_softmax(z2, y2).reshape(self._blocks(z).shape)

    def _row_weights(self, v):
        return self._blocks(v)[..., 0]

    def value(self, z, y, v):
        log_p = self._log_proba(z, y)
        observed = np.where(self._blocks(y) == 1, log_p, 0.0).sum(axis=-1)
        return -float(np.vdot(self._row_weights(v), observed))

    def derivative(self, z, y, v):
        p = np.exp(self._log_proba(z, y)).reshape(np.shape(z))
        return v * (p - (y == 1))

    def second_derivative(self, z, y, v):
        """``v p``: the diagonal of ``diag(p)``, which bounds the curvature
        ``diag(p) - p p^T`` from above (a majorizer, not the Hessian)."""
        return v * np.exp(self._log_proba(z, y)).reshape(np.shape(z))

    def _simplex_point(self, theta, y, v):
        """``s = e_y - theta / v`` on the task's classes (0 elsewhere)."""
        safe_v = np.where(v > 0, v, 1.0)
        return np.where(y >= 0, (y == 1) - theta / safe_v, 0.0)

    def dual_value(self, theta, y, v):
        s = np.clip(self._simplex_point(theta, y, v), 0.0, 1.0)  # rounding
        return -float(np.vdot(self._row_weights(v),
                              xlogy(self._blocks(s), self._blocks(s)).sum(axis=-1)))

    def balance(self, theta, y, v, task_sum, task_broadcast):
        """Make ``sum_{i in t} theta_ik = 0`` for every task and class while
        each row's ``s_i`` stays in its simplex.

        With ``N_tk`` the weight of class ``k`` in task ``t``, ``P_tk =
        sum_i v_i s_ik`` and ``V_t`` the task's weight, the point ``s'_i =
        lam_t s_i + (N_t - lam_t P_t) / V_t`` with ``lam_t = min(1, min_k
        N_tk / P_tk)`` is a distribution (the added vector is non-negative
        by the choice of ``lam_t`` and sums to ``1 - lam_t``) and has class
        sums ``N_t``, i.e. ``theta' = v (e_y - s')`` is balanced; at the
        optimum ``P = N`` and nothing moves.
        """
        s = self._simplex_point(theta, y, v)
        N = self._blocks(task_sum(v * (y == 1)))  # (T, K)
        P = self._blocks(task_sum(v * s))
        V = N.sum(axis=-1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            lam = np.where(P > N, N / P, 1.0).min(axis=-1, keepdims=True)
            shift = np.where(V > 0, (N - lam * P) / V, 0.0)
        lam = np.broadcast_to(lam, N.shape)
        s_balanced = (task_broadcast(lam.ravel()) * s
                      + task_broadcast(shift.ravel()))
        return np.where(y >= 0, v * ((y == 1) - s_balanced), 0.0)

    def newton_model(self, z, y, v):
        """The gradient and the Hessian's action, row by row ``v_i (diag(p_i)
        - p_i p_i^T) dz_i``."""
        p = np.exp(self._log_proba(z, y)).reshape(np.shape(z))
        D = v * (p - (y == 1))

        def hessian(dz):
            pdz = p * dz
            shift = self._blocks(pdz).sum(axis=-1, keepdims=True)
            return v * (pdz - p * np.broadcast_to(
                shift, self._blocks(pdz).shape).reshape(np.shape(pdz)))
        return D, hessian

    def newton_step_cost(self, design):
        """About ``d (K + 1) / 8`` Hessian products (forming each task's
        ``K (K + 1) / 2`` weighted Gram matrices by BLAS and solving its
        block, measured on School); ``None`` past ``_DIRECT_MAX_SIZE``."""
        size = design.n_features * (self.n_classes + 1)
        return None if size > _DIRECT_MAX_SIZE else max(1, size // 8)

    def newton_step(self, design, z, y, v, g, mu, intercept):
        """The exact Newton step, task by task, on the Hessian blocks of
        :func:`class_hessian_blocks` (the ridge ``mu`` on the weights), or
        ``None`` where a block is singular.

        The softmax ignores a common shift of a row's scores, so each block
        is singular along the shift of the task's intercepts over its
        classes (the weights' shift has the ridge); ``g`` is orthogonal to
        it (the class totals of ``p - e_y`` cancel), so adding ``c u u^T``
        along that unit direction ``u`` leaves the step as it is.  A class
        the task lacks has a zero intercept row: its step is 0.
        """
        K, d = self.n_classes, design.n_features
        H = class_hessian_blocks(design, np.exp(self._log_proba(z, y)),
                                 self._row_weights(v))
        T = H.shape[0]
        weights = np.arange(d * K)
        H[:, weights, weights] += mu
        rhs = -task_blocks(g[0], K)
        if intercept:
            b = d * K + np.arange(K)
            H[:, b[:, None], b] = _shift_regularized(
                H[:, b[:, None], b], _classes_present(design, y, K))
            rhs = np.column_stack([rhs, -np.reshape(g[1], (T, K))])
        else:
            H = H[:, :d * K, :d * K]
        step = solve_blocks(H, rhs)
        if step is None:
            return None
        s_W = task_columns(step[:, :d * K], K)
        s_b = step[:, d * K:].ravel() if intercept else np.zeros(T * K)
        return np.ascontiguousarray(s_W), s_b

    hessian_blocks = True

    @property
    def coupled_columns(self):
        return self.n_classes

    def newton_blocks(self, design, z, y, v):
        """:meth:`Loss.newton_blocks` from :func:`class_hessian_blocks`: a
        task's ``K`` classes are its coupled columns.  The intercepts' block
        ``S`` is singular along the common shift ``u`` of the task's
        intercepts (the softmax ignores it) and zero on a class the task
        lacks; the gradients ``a^T delta + g_b`` are orthogonal to both, so
        ``(S + c u u^T)^-1`` (with 1 on a lacking class) serves as its
        pseudo-inverse, without a rounding-level eigenvalue to invert."""
        K = self.n_classes
        p = np.exp(self._log_proba(z, y))
        D = v * (p.reshape(np.shape(z)) - (y == 1))
        H = class_hessian_blocks(design, p, self._row_weights(v))
        m = design.n_features * K
        return D, H[:, :m, :m], H[:, :m, m:], np.linalg.inv(
            _shift_regularized(H[:, m:, m:], _classes_present(design, y, K)))

    def block_sum(self, a):
        """Sums over each task's classes, repeated over them."""
        return np.repeat(self._blocks(a).sum(axis=-1), self.n_classes, axis=-1)

    def common_factor(self, c):
        """Per-column dual factors made equal over each task's classes
        (their minimum): scaling a row's classes unequally would leave its
        simplex; a smaller factor keeps a penalty's ball."""
        blocks = self._blocks(c)
        return np.repeat(blocks.min(axis=-1), self.n_classes, axis=-1)

    def null_intercept(self, y, v, task_sum, task_broadcast):
        """Per task, the log of its classes' weighted frequencies, centred
        over the task's classes (as scikit-learn's intercepts, which start
        at 0 and move by gradients summing to 0 over the classes); 0 for a
        class the task does not have."""
        N = self._blocks(task_sum(v * (y == 1)))
        present = N > 0
        with np.errstate(divide="ignore"):
            log_n = np.where(present, np.log(np.where(present, N, 1.0)), 0.0)
        mean = log_n.sum(axis=-1, keepdims=True) / np.maximum(
            present.sum(axis=-1, keepdims=True), 1)
        return np.where(present, log_n - mean, 0.0).ravel()


def _shift_regularized(S, present):
    """The intercepts' blocks ``S`` (T, K, K) plus ``c u u^T`` along each
    task's common shift ``u`` of its present classes (``c`` the block's
    trace) and 1 on the diagonal of a class it lacks: nonsingular, and
    equal to ``S`` on the directions orthogonal to both."""
    K = S.shape[1]
    u = present / np.sqrt(np.maximum(present.sum(axis=1), 1))[:, None]
    scale = np.maximum(np.trace(S, axis1=1, axis2=2), 1e-300)
    S = S + scale[:, None, None] * u[:, :, None] * u[:, None, :]
    S[:, np.arange(K), np.arange(K)] += ~present
    return S


@njit(cache=True)
def _log_softmax(z, y):
    """Row-wise log-softmax of ``z`` (blocks, K) over the entries with
    ``y >= 0`` (``-inf`` elsewhere); numpy's reductions over a short last
    axis cost several times this loop."""
    out = np.empty_like(z)
    for i in range(z.shape[0]):
        top = -np.inf
        for k in range(z.shape[1]):
            if y[i, k] >= 0 and z[i, k] > top:
                top = z[i, k]
        total = 0.0
        for k in range(z.shape[1]):
            if y[i, k] >= 0:
                total += np.exp(z[i, k] - top)
        shift = top + np.log(total)
        for k in range(z.shape[1]):
            out[i, k] = z[i, k] - shift if y[i, k] >= 0 else -np.inf
    return out


def class_hessian_blocks(design, p, v):
    """Each task's Hessian of the multinomial data fit in its weights and
    intercepts, ``(T, (d + 1) K, (d + 1) K)``: entry ``(j K + k, j' K + l)``
    is ``sum_i c_i^kl x~_ij x~_ij'`` over the task's rows, with ``c_i^kl =
    v_i (p_ik [k = l] - p_ik p_il)`` and ``x~_i = (x_c,i, 1)`` (the
    intercept as feature ``j = d``).

    ``p`` (n, B, K) are the rows' probabilities and ``v`` (n, B) their
    weights (``B`` blocks per row: the tasks of the shared layout, 1
    stacked).  A task's ``K (K + 1) / 2`` Gram matrices, one per pair of
    classes, come from one BLAS product, by chunks of rows (a sparse ``X``
    densified a chunk at a time).
    """
    n, B, K = p.shape
    X = design.X
    d = X.shape[1]
    if isinstance(design, ClassExpandedDesign):  # stacked: one block per row
        T, ptr, mean = design.base.n_tasks, design.base.task_ptr, design.base.x_mean
    else:  # shared: every row in every task
        T, ptr, mean = B, None, design.x_mean
    ks, ls = np.tril_indices(K)  # the pairs of classes, k >= l
    grams = np.zeros((T, ks.size * (d + 1), d + 1))
    A = np.empty((min(n, _HESSIAN_ROWS), d + 1))
    A[:, d] = 1.0
    for start in range(0, n, _HESSIAN_ROWS):
        stop = min(n, start + _HESSIAN_ROWS)
        a = A[:stop - start]
        a[:, :d] = X[start:stop].toarray() if sp.issparse(X) else X[start:stop]
        if ptr is None:
            if mean is not None:
                a[:, :d] -= mean
            for t in range(T):
                grams[t] += _pair_weighted(a, p[start:stop, t], v[start:stop, t],
                                           ks, ls).T @ a
            continue
        # the tasks' rows in this chunk, centred by their task's means
        segments = []
        for t in range(np.searchsorted(ptr, start, side="right") - 1,
                       np.searchsorted(ptr, stop, side="left")):
            rows = slice(max(ptr[t], start) - start, min(ptr[t + 1], stop) - start)
            if rows.stop > rows.start:
                segments.append((t, rows))
                if mean is not None:
                    a[rows, :d] -= mean[t]
        weighted = _pair_weighted(a, p[start:stop, 0], v[start:stop, 0], ks, ls)
        for t, rows in segments:
            grams[t] += weighted[rows].T @ a[rows]
    grams = grams.reshape(T, ks.size, d + 1, d + 1)
    H = np.empty((T, d + 1, K, d + 1, K))
    pairs = grams.transpose(1, 0, 2, 3)  # (pairs, T, d + 1, d + 1)
    H[:, :, ks, :, ls] = pairs  # each Gram matrix is symmetric
    H[:, :, ls, :, ks] = pairs
    return H.reshape(T, (d + 1) * K, (d + 1) * K)


def _pair_weighted(a, P, w, ks, ls):
    """Rows ``a`` (n, m) times each pair's curvature ``w (P_k [k = l] - P_k
    P_l)``, side by side: (n, pairs m)."""
    c = w[:, None] * P[:, ks] * ((ks == ls) - P[:, ls])
    return (a[:, None, :] * c[:, :, None]).reshape(len(a), -1)


class ClassExpandedDesign:
    """The stacked design seen by a multinomial loss: ``W`` (d, T K) to the
    scores (n, K) of each row's own task, ``z_ik = x_i . w_{t(i) k}``.

    Parameters
    ----------
    base : StackedDesign
    n_classes : int
    """

    shared = False

    def __init__(self, base, n_classes):
        self.base, self.n_classes = base, n_classes
        self.X, self.counts = base.X, base.counts
        self.n_samples, self.n_features = base.n_samples, base.n_features
        self.n_tasks = base.n_tasks * n_classes
        self.x_mean = (None if base.x_mean is None
                       else np.repeat(base.x_mean, n_classes, axis=0))

    def matmat(self, W):
        K = self.n_classes
        return np.column_stack([self.base.matmat(W[:, k::K]) for k in range(K)])

    def rmatmat(self, R):
        K = self.n_classes
        G = np.empty((self.n_features, self.n_tasks))
        for k in range(K):
            G[:, k::K] = self.base.rmatmat(np.ascontiguousarray(R[:, k]))
        return G

    def rmatmat_pair(self, R, Q):
        return self.rmatmat(R), self.rmatmat(Q)

    def task_sum(self, R):
        return self.base.task_sum(R).ravel()  # (T, K) -> column t K + k

    def task_broadcast(self, b):
        return np.repeat(np.reshape(b, (-1, self.n_classes)), self.counts,
                         axis=0)

    def lipschitz(self, v):
        return self.base.lipschitz(np.ascontiguousarray(v[:, 0]))


def expand_classes(problem, n_classes):
    """The multinomial :class:`TaskProblem` (the class layout of the module
    docstring, ``n_classes`` set) of ``problem``, whose ``y`` holds class
    codes ``0..K-1`` (float, in the layout's sample shape) and whose solver
    keeps an intercept variable when it has intercepts.

    A class is the task's when its samples in the task have a positive total
    weight; the others get the sentinel ``-1``.
    """
    K = n_classes
    design, codes, v = problem.design, problem.y, problem.v
    present = np.stack([design.task_sum(v * (codes == k)) > 0
                        for k in range(K)], axis=-1)  # (T, K)
    onehot = (codes[..., None] == np.arange(K)).astype(float)
    if design.shared:
        n, T = codes.shape
        y = np.where(present[None], onehot, -1.0).reshape(n, T * K)
        expanded = SharedDesign(design.X, T * K, design.x_mean)
        v = np.repeat(v, K, axis=1)
    else:
        y = np.where(np.repeat(present, design.counts, axis=0), onehot, -1.0)
        expanded = ClassExpandedDesign(design, K)
        v = np.repeat(v[:, None], K, axis=1)
    x_mean = (None if problem.x_mean is None
              else np.repeat(problem.x_mean, K, axis=0))
    return TaskProblem(design=expanded, y=y, v=v,
                       fit_intercept=problem.fit_intercept,
                       intercept_variable=problem.intercept_variable,
                       x_mean=x_mean, n_classes=K)


def model_intercepts(problem, intercept):
    """The fitted model's intercepts (T K,) from a solve's: centred over each
    task's classes (the softmax ignores a common shift, which solvers may
    drift along; scikit-learn's intercepts sum to zero likewise), ``-inf``
    for a class the task does not have (probability 0)."""
    K = problem.n_classes
    absent = ~_classes_present(problem.design, problem.y, K)
    b = np.where(absent, 0.0, np.reshape(intercept, (-1, K)))
    b -= b.sum(axis=1, keepdims=True) / np.maximum((~absent).sum(axis=1), 1)[:, None]
    return np.where(absent, -np.inf, b).ravel()


def _classes_present(design, y, K):
    """``(T, K)``: whether each task has each class (the targets ``y`` of
    :func:`expand_classes`, ``-1`` for a class the task lacks)."""
    return np.reshape(design.task_sum((y >= 0).astype(float)) > 0, (-1, K))


def expand_coupling(coupling, n_classes):
    """A task-coupling term over the class columns: ``K kron I_K`` couples
    each class's weights across the tasks (sparse when ``K`` is)."""
    if coupling.sparse:
        return TaskCoupling(sp.kron(coupling.K, sp.eye_array(n_classes),
                                    format="csr"))
    return TaskCoupling(np.kron(coupling.K, np.eye(n_classes)))


def class_scores(X, coef, intercept, task_index):
    """The scores ``x_i . w_tk + b_tk`` (``-inf`` for a class the task does
    not have, whose intercept is ``-inf``): (n, T, K) in the shared layout
    (``task_index`` ``None``), (n, K) stacked.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n, d)
    coef : ndarray of shape (T, K, d)
    intercept : ndarray of shape (T, K)
    task_index : ndarray of int of shape (n,) or None
    """
    T, K, d = coef.shape
    if task_index is None:
        return (np.asarray(X @ coef.reshape(T * K, d).T)
                + intercept.ravel()).reshape(-1, T, K)
    return np.column_stack([linear_predictor(X, coef[:, k].T, intercept[:, k],
                                             task_index) for k in range(K)])
