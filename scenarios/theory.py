"""What we compute: exact, fast queueing theory that the SimPy simulator is validated against.

The simulator must agree with these numbers within its 95% confidence intervals. Everything is closed
form or solved exactly (to round-off or a stated tolerance), except Larson's hypercube approximation.

Units: any time unit, as long as rates and times agree. Rates (``arrival_rate``, ``service_rate``,
``abandonment_rate``) are per time unit and times (``t``, ``wait_s``, ``period``, travel times) are in
that unit: rates per hour with times in hours, or per second with times in seconds. Offered loads
(arrival_rate / service_rate) are in erlangs (mean busy servers).

Models: Erlang B / C / A, square-root (Halfin-Whitt) staffing, M_t/M/inf (Eick, Massey & Whitt 1993),
and the hypercube dispatch model (Larson 1974) with Larson's (1975) / Jarvis's (1985) approximation.
"""

import math
from dataclasses import dataclass, field
from typing import Callable, Literal, Sequence  # noqa: UP035  (this module imports only typing, by design)

import numpy as np
import scipy.sparse as sp
from scipy.optimize import brentq
from scipy.sparse.linalg import LinearOperator, gmres, spsolve
from scipy.special import gammaln, log_ndtr, logsumexp

__all__ = [
    "ErlangAResult", "ErlangCResult", "HypercubeResult", "erlang_a", "erlang_b", "erlang_c",
    "halfin_whitt_beta", "hypercube", "mmc", "mt_m_inf_mean", "mt_m_inf_sinusoid", "square_root_staffing",
    "staff_for_p_wait", "staff_for_service_level",
]

_TAIL_MASS = 1e-14          # Erlang A: truncate the birth-death chain where the neglected mass is below this
_QUAD_EPSREL = 1e-11        # M_t/M/inf: relative tolerance of the adaptive quadrature
_LARSON_TOL = 1e-10         # Larson: stop when no workload moves by more than this
_EXACT_MAX_UNITS = 20       # hypercube: 2^20 states is the most the exact solver accepts


# --- argument checks -------------------------------------------------------------------------------------

def _int_arg(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _real_arg(name: str, value: object, *, positive: bool = False, allow_inf: bool = False,
              nonnegative: bool = True) -> float:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if math.isnan(x) or (math.isinf(x) and not allow_inf):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and x <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if nonnegative and x < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return x


def _probability_arg(name: str, value: object) -> float:
    x = _real_arg(name, value)
    if not 0.0 < x < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value!r}")
    return x


# --- Erlang B and C --------------------------------------------------------------------------------------

def erlang_b(servers: int, offered_load: float) -> float:
    """Erlang B: P(an arriving call finds all c servers busy and is lost) in the M/M/c/c loss system.

    Uses the stable recurrence ``B(0) = 1, B(k) = A B(k-1) / (k + A B(k-1))``.

    Args:
        servers: Number of servers c (>= 0).
        offered_load: Offered load A = arrival rate / service rate, in erlangs (>= 0).
    """
    c = _int_arg("servers", servers, 0)
    a = _real_arg("offered_load", offered_load)
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(servers: int, offered_load: float) -> float:
    """Delay probability P(W > 0) of the M/M/c queue, ``C = c B / (c - A (1 - B))`` (Erlang C).

    Args:
        servers: Number of servers c (>= 0).
        offered_load: Offered load A in erlangs (>= 0); 1.0 is returned when A >= c (unstable queue).
    """
    c = _int_arg("servers", servers, 0)
    a = _real_arg("offered_load", offered_load)
    if a >= c:
        return 1.0
    b = erlang_b(c, a)
    return c * b / (c - a * (1.0 - b))


@dataclass(frozen=True)
class ErlangCResult:
    """Steady state of the M/M/c queue (FCFS, infinite waiting room).

    Attributes:
        servers: Number of servers c.
        arrival_rate: Arrival rate lambda (per time unit).
        service_rate: Service rate mu of one server (per time unit).
        p_wait: P(W > 0), the Erlang C delay probability.
        mean_wait: E[W], mean wait in queue over all customers (time units of 1/rate).
        mean_queue: E[Lq], mean number waiting.
        utilisation: lambda / (c mu), the fraction of time a server is busy.
    """

    servers: int
    arrival_rate: float
    service_rate: float
    p_wait: float
    mean_wait: float
    mean_queue: float
    utilisation: float

    def p_wait_le(self, t: float) -> float:
        """P(W <= t) = 1 - C exp(-(c mu - lambda) t) for a wait threshold t (time units; inf allowed)."""
        return 1.0 - self.p_wait_gt(t)

    def p_wait_gt(self, t: float) -> float:
        """P(W > t) = C exp(-(c mu - lambda) t); 1 for t < 0."""
        t = _real_arg("t", t, allow_inf=True, nonnegative=False)
        if t < 0:
            return 1.0
        return self.p_wait * math.exp(-(self.servers * self.service_rate - self.arrival_rate) * t)


def mmc(arrival_rate: float, service_rate: float, servers: int) -> ErlangCResult:
    """Solve the M/M/c queue.

    Args:
        arrival_rate: Poisson arrival rate lambda (per time unit, >= 0).
        service_rate: Exponential service rate mu of one server (same time unit, > 0).
        servers: Number of servers c (>= 1).

    Raises:
        ValueError: If an argument is invalid or the utilisation lambda / (c mu) is >= 1 (unstable).
    """
    lam = _real_arg("arrival_rate", arrival_rate)
    mu = _real_arg("service_rate", service_rate, positive=True)
    c = _int_arg("servers", servers, 1)
    rho = lam / (c * mu)
    if rho >= 1.0:
        raise ValueError(f"utilisation arrival_rate / (servers * service_rate) = {rho:.6g} must be < 1 "
                         "for a stable M/M/c queue")
    p = erlang_c(c, lam / mu)
    mean_wait = p / (c * mu - lam)
    return ErlangCResult(c, lam, mu, p, mean_wait, lam * mean_wait, rho)


# --- Erlang A (M/M/c+M) ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ErlangAResult:
    """Steady state of the M/M/c+M queue (Palm / Erlang A): FCFS with exponential patience.

    A waiting customer abandons after an exponential patience with rate ``abandonment_rate``;
    customers in service never abandon.

    Attributes:
        servers: Number of servers c.
        arrival_rate: Arrival rate lambda (per time unit).
        service_rate: Service rate mu of one server (per time unit).
        abandonment_rate: Patience rate theta of a waiting customer (per time unit).
        p_wait: P(an arrival finds all servers busy), i.e. P(time in queue > 0).
        p_abandon: Fraction of arrivals that abandon, theta E[Lq] / lambda.
        mean_wait: Mean time in queue over all arrivals, served or abandoned: E[Lq] / lambda.
        mean_queue: E[Lq], mean number waiting.
        utilisation: Mean busy servers / c, equal to lambda (1 - p_abandon) / (c mu).
        queue_seen_on_arrival: P(an arrival finds c + k in system), k = 0, 1, ... (read-only).
    """

    servers: int
    arrival_rate: float
    service_rate: float
    abandonment_rate: float
    p_wait: float
    p_abandon: float
    mean_wait: float
    mean_queue: float
    utilisation: float
    queue_seen_on_arrival: np.ndarray = field(repr=False, compare=False, default_factory=lambda: np.zeros(0))

    def p_wait_gt(self, t: float) -> float:
        """P(time in queue > t) for an arriving customer (see :meth:`p_wait_le`)."""
        t = _real_arg("t", t, allow_inf=True, nonnegative=False)
        if t < 0:
            return 1.0
        if math.isinf(t):
            return 0.0
        seen = self.queue_seen_on_arrival
        if t == 0 or seen.size == 0:
            return self.p_wait
        # P(V_k > t) = I_x(c mu / theta, k + 1) is a negative-binomial cdf: summed term by term in log space
        cmu, theta = self.servers * self.service_rate, self.abandonment_rate
        j = np.arange(1, seen.size, dtype=float)
        step = np.log((cmu / theta + j - 1.0) * -math.expm1(-theta * t) / j)
        log_term = -cmu * t + np.concatenate(([0.0], np.cumsum(step)))
        offered_wait_gt = np.exp(np.logaddexp.accumulate(log_term))      # P(V_k > t), k = 0, 1, ...
        return float(min(math.exp(-theta * t) * np.dot(seen, np.minimum(offered_wait_gt, 1.0)), self.p_wait))

    def p_wait_le(self, t: float) -> float:
        """P(time in queue <= t) for an arriving customer (PASTA: any arrival, served or abandoning).

        Time in queue ends at service start or at abandonment, whichever comes first, so it is
        ``min(V, patience)`` with V the offered wait (the wait of an infinitely patient customer)
        and patience ~ Exp(theta) independent of V. An arrival that finds c + k in system has k
        customers ahead, and V is then hypoexponential with phase rates c mu + k theta, ...,
        c mu + theta, c mu, whose survival function is the regularised incomplete beta
        I_x(c mu / theta, k + 1), x = exp(-theta t); it is summed exactly over k (no cancellation,
        exact as theta -> 0). P(W <= 0) = 1 - p_wait and P(W <= inf) = 1.

        Args:
            t: Wait threshold in time units (``math.inf`` allowed; 0 for t < 0).
        """
        return 1.0 - self.p_wait_gt(t)


def _erlang_a_distribution(lam: float, mu: float, c: int, theta: float) -> np.ndarray:
    """Stationary P(n in system) of M/M/c+M, truncated where the neglected tail mass is < 1e-14."""
    size = c + max(64, c)
    while True:
        n = np.arange(1, size + 1, dtype=float)
        death = np.minimum(n, c) * mu + np.maximum(n - c, 0.0) * theta
        log_weight = np.concatenate(([0.0], np.cumsum(math.log(lam) - np.log(death))))
        weight = np.exp(log_weight - log_weight.max())
        total = float(weight.sum())
        next_ratio = lam / (c * mu + (size + 1 - c) * theta)  # birth/death ratios fall with n beyond size
        if next_ratio < 1.0 and weight[-1] * next_ratio / (1.0 - next_ratio) < _TAIL_MASS * total:
            return np.asarray(weight / total)
        size *= 2
        if size > 1 << 26:
            raise ValueError("abandonment_rate is too small for the queue to be truncated: the chain needs "
                             f"more than {1 << 26} states")


def erlang_a(arrival_rate: float, service_rate: float, servers: int, abandonment_rate: float) -> ErlangAResult:
    """Solve the M/M/c+M queue (Palm's model, Erlang A) exactly.

    The number in system is a birth-death chain (birth lambda, death min(n, c) mu + (n - c)+ theta),
    solved in log space and truncated where the neglected tail mass is below 1e-14. Abandonment
    keeps it stable for any load, including lambda >= c mu.

    Args:
        arrival_rate: Poisson arrival rate lambda (per time unit, > 0).
        service_rate: Service rate mu of one server (per time unit, > 0).
        servers: Number of servers c (>= 1).
        abandonment_rate: Patience rate theta of a waiting customer (per time unit, > 0).
    """
    lam = _real_arg("arrival_rate", arrival_rate, positive=True)
    mu = _real_arg("service_rate", service_rate, positive=True)
    c = _int_arg("servers", servers, 1)
    theta = _real_arg("abandonment_rate", abandonment_rate, positive=True)
    p = _erlang_a_distribution(lam, mu, c, theta)
    seen = p[c:].copy()
    seen.setflags(write=False)
    mean_queue = float(np.dot(np.arange(seen.size, dtype=float), seen))
    busy = float(np.dot(np.minimum(np.arange(p.size), c), p))
    return ErlangAResult(c, lam, mu, theta, p_wait=float(seen.sum()), p_abandon=theta * mean_queue / lam,
                         mean_wait=mean_queue / lam, mean_queue=mean_queue, utilisation=busy / c,
                         queue_seen_on_arrival=seen)


# --- staffing --------------------------------------------------------------------------------------------

def square_root_staffing(offered_load: float, beta: float) -> int:
    """Square-root staffing: ``ceil(R + beta sqrt(R))`` servers for offered load R (erlangs), at least 0."""
    r = _real_arg("offered_load", offered_load)
    b = _real_arg("beta", beta, nonnegative=False)
    x = r + b * math.sqrt(r)
    return max(0, math.ceil(x - 1e-12 * max(1.0, abs(x))))  # 110.00000000000001 is 110 servers


def halfin_whitt_beta(target_p_wait: float) -> float:
    """Quality-of-service parameter beta of the Halfin-Whitt regime for a target delay probability.

    Solves ``alpha = [1 + beta Phi(beta) / phi(beta)]^-1`` for beta > 0 (Phi, phi: standard normal cdf
    and density), in log space so that tiny targets do not overflow.

    Args:
        target_p_wait: Target delay probability alpha, strictly between 0 and 1.
    """
    alpha = _probability_arg("target_p_wait", target_p_wait)
    goal = math.log1p(-alpha) - math.log(alpha)  # log(1/alpha - 1) = log(beta Phi / phi)
    half_log_2pi = 0.5 * math.log(2.0 * math.pi)

    def gap(beta: float) -> float:
        return math.log(beta) + float(log_ndtr(beta)) + 0.5 * beta * beta + half_log_2pi - goal

    lo, hi = 1e-3, 1.0
    while gap(lo) > 0:
        lo *= 1e-3
    while gap(hi) < 0:
        hi *= 2.0
    return float(brentq(gap, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500))


def _fewest(meets: Callable[[int], bool], lo: int, guess: int) -> int:
    """Fewest c >= lo with meets(c), for meets monotone in c: gallop up from the guess, then bisect."""
    hi, step = max(lo, guess), max(1, guess - lo)
    while not meets(hi):
        lo, hi, step = hi + 1, hi + step, 2 * step
        if hi > 1 << 40:
            raise ValueError("no server count meets the target")
    while lo < hi:
        mid = (lo + hi) // 2
        if meets(mid):
            hi = mid
        else:
            lo = mid + 1
    return hi


def staff_for_p_wait(arrival_rate: float, service_rate: float, target_p_wait: float) -> int:
    """Fewest servers c with Erlang C delay probability P(W > 0) <= target_p_wait.

    Starts from square-root staffing with the Halfin-Whitt beta, then searches exactly.

    Args:
        arrival_rate: Arrival rate lambda (per time unit, > 0).
        service_rate: Service rate mu per server (same time unit, > 0).
        target_p_wait: Largest acceptable delay probability, strictly between 0 and 1.
    """
    lam = _real_arg("arrival_rate", arrival_rate, positive=True)
    mu = _real_arg("service_rate", service_rate, positive=True)
    alpha = _probability_arg("target_p_wait", target_p_wait)
    load = lam / mu
    guess = square_root_staffing(load, halfin_whitt_beta(alpha))
    return _fewest(lambda c: erlang_c(c, load) <= alpha, math.floor(load) + 1, guess)


def staff_for_service_level(arrival_rate: float, service_rate: float, *, wait_s: float, target: float,
                            abandonment_rate: float | None = None) -> int:
    """Fewest servers c with service level P(W <= wait_s) >= target.

    Args:
        arrival_rate: Arrival rate lambda (per time unit, > 0).
        service_rate: Service rate mu per server (same time unit, > 0).
        wait_s: Answer-time threshold, in the time unit of the rates (seconds when rates are per second).
        target: Required fraction of arrivals whose wait is at most ``wait_s``, strictly between 0 and 1.
        abandonment_rate: Patience rate theta (per time unit). None: Erlang C (M/M/c, no abandonment).
            Given: Erlang A, where the wait is the time in queue up to service or abandonment
            (see :meth:`ErlangAResult.p_wait_le`).
    """
    lam = _real_arg("arrival_rate", arrival_rate, positive=True)
    mu = _real_arg("service_rate", service_rate, positive=True)
    wait = _real_arg("wait_s", wait_s)
    level = _probability_arg("target", target)
    load = lam / mu
    guess = square_root_staffing(load, halfin_whitt_beta(1.0 - level))
    if abandonment_rate is None:
        return _fewest(lambda c: mmc(lam, mu, c).p_wait_le(wait) >= level, math.floor(load) + 1, guess)
    theta = _real_arg("abandonment_rate", abandonment_rate, positive=True)
    return _fewest(lambda c: erlang_a(lam, mu, c, theta).p_wait_le(wait) >= level, 1, guess)


# --- M_t/M/inf -------------------------------------------------------------------------------------------

def _damped_integrals(rate: Callable[[np.ndarray], np.ndarray], mu: float, lo: np.ndarray,
                      hi: np.ndarray) -> np.ndarray:
    """integral_lo^hi rate(u) exp(-mu (hi - u)) du for each pair (hi > lo), by vectorised adaptive
    quadrature (Gauss-Radau vs Gauss-Lobatto), halving until each piece meets its share of a
    relative tolerance of 1e-11 (or is 1e-15 of the whole), so rate jumps are handled."""
    n, end, span = lo.size, hi.copy(), hi - lo
    owner = np.arange(n)
    # 10-point Gauss-Radau (left end) vs 20-point Gauss-Lobatto: both see an endpoint, so no rate jump hides
    # beside one, and the pair is asymmetric, so a jump at the midpoint does not fool them alike.
    legendre = np.polynomial.legendre.Legendre
    x10 = np.concatenate(([-1.0], np.sort((legendre.basis(9) + legendre.basis(10)).roots().real)[1:]))
    w10 = np.concatenate(([0.02], (1 - x10[1:]) / (100 * legendre.basis(9)(x10[1:]) ** 2)))
    x20 = np.concatenate(([-1.0], np.sort(legendre.basis(19).deriv().roots().real), [1.0]))
    w20 = 2.0 / (20 * 19 * legendre.basis(19)(x20) ** 2)
    nodes = np.concatenate([x10, x20])
    total, total_abs = np.zeros(n), np.zeros(n)
    while owner.size:
        if owner.size > 2_000_000:
            raise ValueError("rate is too irregular for the quadrature to converge")
        half = 0.5 * (hi - lo)
        u = (0.5 * (hi + lo))[:, None] + half[:, None] * nodes
        r = np.broadcast_to(np.asarray(rate(u.ravel()), dtype=float), (u.size,)).reshape(u.shape)
        if not np.all(np.isfinite(r)) or np.any(r < 0):
            raise ValueError("rate must return finite, non-negative arrival rates")
        f = r * np.exp(-mu * (end[owner][:, None] - u))
        coarse, fine = half * (f[:, :10] @ w10), half * (f[:, 10:] @ w20)
        scale = total_abs + np.bincount(owner, np.abs(fine), minlength=n)
        share = 2 * half / span[owner]
        done = (np.abs(fine - coarse) <= _QUAD_EPSREL * scale[owner] * share) | (share <= 1e-15)
        total += np.bincount(owner[done], fine[done], minlength=n)
        total_abs += np.bincount(owner[done], np.abs(fine[done]), minlength=n)
        keep = ~done
        mid = 0.5 * (hi[keep] + lo[keep])
        owner = np.concatenate([owner[keep], owner[keep]])
        lo, hi = np.concatenate([lo[keep], mid]), np.concatenate([mid, hi[keep]])
    return total


def mt_m_inf_mean(t: float | np.ndarray, *, rate: Callable[[np.ndarray], np.ndarray], service_rate: float,
                  t0: float = 0.0) -> np.ndarray:
    """Mean number in system m(t) of the M_t/M/inf queue, starting empty at t0.

    ``m(t) = integral_{t0}^{t} rate(u) exp(-mu (t - u)) du``. The sorted times split the axis into pieces,
    each integrated by adaptive Gauss-Radau/Lobatto quadrature (relative tolerance 1e-11; rate jumps such as
    hourly rates are fine) and chained by m(t') = m(t) exp(-mu (t' - t)) + piece. Arrivals older than
    745 / mu contribute below double precision and are skipped. The number in system is Poisson(m(t)).

    Args:
        t: Time(s) at which to evaluate, in time units; m = 0 for t <= t0.
        rate: Arrival rate function (per time unit), vectorised: maps a 1-D array of times to rates >= 0.
        service_rate: Service rate mu (per time unit, > 0).
        t0: Time at which the system starts empty.

    Returns:
        m(t), an array shaped like ``t``.
    """
    mu = _real_arg("service_rate", service_rate, positive=True)
    start = _real_arg("t0", t0, nonnegative=False)
    times = np.asarray(t, dtype=float)
    if not np.all(np.isfinite(times)):
        raise ValueError("t must be finite")
    flat = times.ravel()
    order = np.argsort(flat, kind="stable")
    order = order[flat[order] > start]
    ends = np.unique(flat[order])
    begins = np.maximum(np.concatenate(([start], ends[:-1])), ends - 745.0 / mu)
    pieces = _damped_integrals(rate, mu, begins, ends)
    decay = np.exp(-mu * np.diff(np.concatenate(([start], ends))))
    mean = np.empty(ends.size)
    acc = 0.0
    for i in range(ends.size):
        acc = acc * decay[i] + pieces[i]
        mean[i] = acc
    out = np.zeros(flat.size)
    out[order] = mean[np.searchsorted(ends, flat[order])]
    return out.reshape(times.shape)


def mt_m_inf_sinusoid(t: float | np.ndarray, *, mean_rate: float, amplitude: float, period: float,
                      service_rate: float) -> np.ndarray:
    """Periodic steady-state mean of M_t/M/inf for a sinusoidal arrival rate (Eick, Massey & Whitt 1993).

    For ``rate(t) = mean_rate (1 + amplitude sin(2 pi t / period))`` and w = 2 pi / period,
    ``m(t) = mean_rate / mu [1 + amplitude (mu^2 sin(w t) - mu w cos(w t)) / (mu^2 + w^2)]``.
    The number in system is Poisson with this mean.

    Args:
        t: Time(s), in time units.
        mean_rate: Mean arrival rate (per time unit, >= 0).
        amplitude: Relative amplitude, |amplitude| <= 1 so that the rate stays non-negative.
        period: Period of the rate (time units, > 0).
        service_rate: Service rate mu (per time unit, > 0).
    """
    lam = _real_arg("mean_rate", mean_rate)
    a = _real_arg("amplitude", amplitude, nonnegative=False)
    if abs(a) > 1:
        raise ValueError(f"amplitude must satisfy |amplitude| <= 1, got {amplitude!r}")
    w = 2.0 * math.pi / _real_arg("period", period, positive=True)
    mu = _real_arg("service_rate", service_rate, positive=True)
    x = np.asarray(t, dtype=float)
    return lam / mu * (1.0 + a * (mu * mu * np.sin(w * x) - mu * w * np.cos(w * x)) / (mu * mu + w * w))


def mmc_priority_waits(arrival_rates: Sequence[float], service_rate: float, servers: int) -> np.ndarray:
    """Mean waits of the classes of an M/M/c queue with non-preemptive priority and one
    service rate for all (Cobham 1954; Kleinrock 1976, 3.7):

    ``W_k = [C(c, a) / (c μ)] / [(1 - σ_{k-1}) (1 - σ_k)]``, ``σ_k = Σ_{i <= k} λ_i / (c μ)``,
    with ``C`` Erlang C at the total load ``a = Σ λ_i / μ``.

    Args:
        arrival_rates: λ of each class, highest priority first.
        service_rate: μ of every class.
        servers: c.

    Raises:
        ValueError: the total load is not below ``servers``.
    """
    lams = [_real_arg(f"arrival_rates[{k}]", v) for k, v in enumerate(arrival_rates)]
    mu = _real_arg("service_rate", service_rate, positive=True)
    c = _int_arg("servers", servers, 1)
    a = sum(lams) / mu
    if a >= c:
        raise ValueError(f"offered load {a:.3g} must be below servers {c}")
    head = erlang_c(c, a) / (c * mu)
    sigma = np.cumsum(np.asarray(lams) / (c * mu))
    before = np.concatenate([[0.0], sigma[:-1]])
    out: np.ndarray = head / ((1.0 - before) * (1.0 - sigma))
    return out


def mt_m_st(rate: Callable[[float], float], service_rate: float, servers: Callable[[float], int], *,
            period: float, times: Sequence[float] | np.ndarray, capacity: int, warm_periods: int = 4) -> np.ndarray:
    """P(N(t) = n) of the M_t/M/s_t queue (birth-death, FCFS, no abandonment) at ``times``
    in its periodic regime: the Kolmogorov forward equations, truncated at ``capacity``,
    integrated numerically (``scipy.integrate.solve_ivp``) from an empty system through
    ``warm_periods`` periods, then over the period that ``times`` fall in (measured from
    its start, 0 <= t < period).

    ``dp_n/dt = λ(t) p_{n-1} + μ min(n+1, s(t)) p_{n+1} - (λ(t) [n < capacity] + μ min(n, s(t))) p_n``.
    When ``servers`` steps down, customers beyond the new count wait (the servers leaving
    do not finish their work), which is the textbook chain; the twin's members finish
    theirs, so compare at constant staffing or away from downward steps.

    Args:
        rate: Arrival rate λ(t), periodic with ``period``.
        service_rate: μ (per time unit, > 0).
        servers: Servers s(t) (>= 1), periodic with ``period``.
        period: The period (time units, > 0).
        times: Times within the period at which to report the distribution.
        capacity: Truncation (largest state); take it well above the peak load.
        warm_periods: Periods run before the reported one (the start is forgotten
            geometrically; check by raising it).

    Returns:
        ``(len(times), capacity + 1)`` probabilities.
    """
    from scipy.integrate import solve_ivp

    mu = _real_arg("service_rate", service_rate, positive=True)
    per = _real_arg("period", period, positive=True)
    cap = _int_arg("capacity", capacity, 1)
    n = np.arange(cap + 1, dtype=float)

    def deriv(t: float, p: np.ndarray) -> np.ndarray:
        lam = float(rate(t))
        s = float(servers(t))
        out = np.empty_like(p)
        served = mu * np.minimum(n, s) * p
        arrive = lam * p
        arrive[-1] = 0.0  # truncation: no arrival beyond capacity
        out[:] = -arrive - served
        out[1:] += arrive[:-1]
        out[:-1] += served[1:]
        return out

    p0 = np.zeros(cap + 1)
    p0[0] = 1.0
    warm = solve_ivp(deriv, (0.0, warm_periods * per), p0, method="RK45", rtol=1e-8, atol=1e-11, max_step=per / 200)
    start = warm.y[:, -1]
    ts = np.asarray(times, dtype=float)
    if np.any((ts < 0) | (ts >= per)):
        raise ValueError("times must lie within one period: 0 <= t < period")
    order = np.argsort(ts)
    last = solve_ivp(deriv, (warm_periods * per, (warm_periods + 1) * per), start, method="RK45", rtol=1e-8,
                     atol=1e-11, max_step=per / 200, t_eval=warm_periods * per + ts[order])
    out = np.empty((len(ts), cap + 1))
    out[order] = last.y.T
    return np.clip(out, 0.0, 1.0)


# --- the hypercube model ---------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class HypercubeResult:
    """Performance of a fixed-preference dispatch system (the hypercube queueing model).

    Attributes:
        workloads: (units,) fraction of time each unit is busy.
        dispatch_fractions: (units, atoms) fraction of all dispatches (served calls) that send unit n
            to atom j; sums to 1.
        interarea_fraction: Fraction of dispatches where the unit sent is not the atom's home unit.
        p_all_busy: P(all units busy) (fcfs: including the states with calls queued).
        p_loss: Loss model: fraction of calls lost; queue model: 0.
        p_queue: Queue model: P(a call waits); loss model: 0.
        mean_travel_time: Sum of f_nj travel[n, j] over dispatches when travel times were given, else None.
        exact: True for the exact 2^N-state solution, False for Larson's approximation.
        states: States solved (exact) or fixed-point iterations (approximation).
    """

    workloads: np.ndarray
    dispatch_fractions: np.ndarray
    interarea_fraction: float
    p_all_busy: float
    p_loss: float
    p_queue: float
    mean_travel_time: float | None
    exact: bool
    states: int


def _solve_balance(rows: np.ndarray, cols: np.ndarray, rates: np.ndarray, size: int,
                   guess: np.ndarray) -> np.ndarray:
    """Stationary p of a CTMC from its transposed generator (COO), with the first balance equation
    replaced by sum(p) = 1: sparse LU for small chains, Jacobi-preconditioned GMRES for large ones."""
    keep = rows != 0
    rows = np.concatenate([rows[keep], np.zeros(size, dtype=rows.dtype)])
    cols = np.concatenate([cols[keep], np.arange(size)])
    rates = np.concatenate([rates[keep], np.ones(size)])
    matrix = sp.csr_matrix((rates, (rows, cols)), shape=(size, size))
    rhs = np.zeros(size)
    rhs[0] = 1.0
    p, info = guess, 1
    if size > 1 << 10:
        diagonal = matrix.diagonal()
        jacobi = LinearOperator((size, size), matvec=lambda x: x / diagonal, dtype=float)
        try:
            p, info = gmres(matrix, rhs, x0=guess, M=jacobi, rtol=1e-14, atol=0.0, restart=200, maxiter=2000)
        except TypeError:  # scipy < 1.12 names the tolerance tol
            p, info = gmres(matrix, rhs, x0=guess, M=jacobi, tol=1e-14, atol=0.0, restart=200, maxiter=2000)
    if info != 0:
        p = spsolve(matrix.tocsc(), rhs, permc_spec="MMD_AT_PLUS_A")
    p = np.maximum(np.asarray(p, dtype=float), 0.0)
    return np.asarray(p / p.sum())


def _hypercube_exact(lam_j: np.ndarray, pref: np.ndarray, mu: float,
                     fcfs: bool) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Solve the 2^N-state chain; returns workloads, dispatch fractions (N, J), P(all busy), states."""
    atoms, units = pref.shape
    size = 1 << units
    state = np.arange(size)
    busy = (state[:, None] >> np.arange(units)) & 1                      # (states, units)
    first = np.full((atoms, size), -1)                                   # first free preferred unit
    for k in range(units):
        unit = pref[:, k]
        take = (first < 0) & (busy[:, unit].T == 0)
        first[take] = np.broadcast_to(unit[:, None], first.shape)[take]
    atom, src = np.nonzero(first >= 0)
    sent = first[atom, src]
    up = np.bincount(src * units + sent, lam_j[atom], minlength=size * units).reshape(size, units)
    s_up, n_up = np.nonzero(up)
    s_dn, n_dn = np.nonzero(busy)
    rows = np.concatenate([s_up | (1 << n_up), s_dn ^ (1 << n_dn), state])     # balance equation of ...
    cols = np.concatenate([s_up, s_dn, state])                                # ... flow out of this state
    vals = np.concatenate([up[s_up, n_up], np.full(s_dn.size, mu), -(up.sum(axis=1) + mu * busy.sum(axis=1))])
    level = busy.sum(axis=1)                     # busy units; the level process is exactly M/M/N/N
    i = np.arange(units + 1)
    log_level = i * math.log(float(lam_j.sum()) / mu) - gammaln(i + 1.0)
    guess = np.exp(log_level - logsumexp(log_level))[level] / np.bincount(level)[level]
    p = _solve_balance(rows, cols, vals, size, guess)
    lam = float(lam_j.sum())
    if fcfs:  # all-busy with k queued: P(N + k) = P(all busy, k = 0) rho^k, rho = lambda / (N mu)
        rho = lam / (units * mu)
        queued = p[-1] * rho / (1.0 - rho)
        p /= 1.0 + queued
        queued /= 1.0 + queued
        p_all_busy = p[-1] + queued
        workloads = busy.T @ p + queued
        served = lam
    else:
        p_all_busy, queued = p[-1], 0.0
        workloads = busy.T @ p
        served = lam * (1.0 - p_all_busy)
    rates = np.bincount(sent * atoms + atom, lam_j[atom] * p[src], minlength=units * atoms).reshape(units, atoms)
    if fcfs:  # a queued call goes to whichever unit frees first (uniform); its atom follows arrival_rates
        rates += lam_j[None, :] * p_all_busy / units
    return workloads, rates / served, float(p_all_busy), size


def _larson_factors(units: int, load: float, fcfs: bool) -> tuple[np.ndarray, float, float]:
    """Correction factors Q(N, rho, k), k = 0..N-1, P(all busy) and the mean workload per unit.

    Q makes ``Q(k) r^k (1 - r)`` the exact P(k given units busy, another given unit free) of the
    M/M/N queue (fcfs, Larson 1975) or M/M/N/N loss system (Jarvis 1985), r the mean workload.
    """
    i = np.arange(units + 1)
    log_w = i * math.log(load) - gammaln(i + 1.0)
    if fcfs:
        log_w[units] -= math.log1p(-load / units)     # the all-busy states with k >= 0 queued
    log_p = log_w - logsumexp(log_w)
    p_all_busy = float(np.exp(log_p[units]))
    r = load / units if fcfs else load * (1.0 - p_all_busy) / units
    k, j = np.arange(units)[:, None], np.arange(units)[None, :]
    d = np.maximum(j - k, 0)
    log_term = (log_p[:units][None, :] + gammaln(units - k) - gammaln(d + 1.0) - gammaln(units - j)
                - gammaln(units + 1.0) + gammaln(j + 1.0) + gammaln(units - j + 1.0) - k * math.log(r)
                - math.log1p(-r))
    q = np.exp(logsumexp(np.where(j >= k, log_term, -np.inf), axis=1))
    return q, p_all_busy, r


def _hypercube_larson(lam_j: np.ndarray, pref: np.ndarray, mu: float,
                      fcfs: bool) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Larson's (1975) fixed point; returns workloads, dispatch fractions (N, J), P(all busy), iterations."""
    atoms, units = pref.shape
    lam = float(lam_j.sum())
    q, p_all_busy, r = _larson_factors(units, lam / mu, fcfs)
    weight = lam_j[:, None] * q[None, :] / mu               # lambda_j Q(k) / mu for the k-th preferred unit
    queued = lam * p_all_busy / (units * mu) if fcfs else 0.0   # delayed dispatches, shared equally
    rho = np.full(units, r)

    def ahead_busy(rho: np.ndarray) -> np.ndarray:  # (J, N): product of workloads of the better-placed units
        return np.cumprod(np.concatenate([np.ones((atoms, 1)), rho[pref[:, :-1]]], axis=1), axis=1)

    iteration = 0
    while True:
        iteration += 1
        v = np.bincount(pref.ravel(), (weight * ahead_busy(rho)).ravel(), minlength=units)
        new = (v + queued) / (1.0 + v)                       # rho_n = V_n (1 - rho_n) + queued
        new = np.minimum(new * (units * r / new.sum()), 1.0)  # workload normalisation: sum = N r exactly
        moved = float(np.max(np.abs(new - rho)))
        rho = new
        if moved < _LARSON_TOL:
            break
        if iteration >= 100_000:
            raise RuntimeError("Larson's approximation did not converge")
    first_free = q[None, :] * ahead_busy(rho) * (1.0 - rho[pref])
    first_free /= first_free.sum(axis=1, keepdims=True)
    if fcfs:
        first_free = (1.0 - p_all_busy) * first_free + p_all_busy / units
    f = np.zeros((units, atoms))
    f[pref, np.arange(atoms)[:, None]] = first_free * (lam_j / lam)[:, None]
    return rho, f, p_all_busy, iteration


def hypercube(arrival_rates: Sequence[float], preferences: Sequence[Sequence[int]], service_rate: float, *,
              queue: Literal["loss", "fcfs"] = "fcfs", travel: np.ndarray | None = None,
              home: Sequence[int] | None = None,
              method: Literal["exact", "larson", "auto"] = "auto") -> HypercubeResult:
    """Larson's hypercube queueing model of fixed-preference dispatch of N units to J atoms.

    Calls arrive from atom j as a Poisson process; the dispatcher sends the first free unit in
    ``preferences[j]``; service (travel + on scene + return) is exponential with rate mu for every unit.

    Args:
        arrival_rates: (J,) call rate of each atom (per time unit, >= 0, positive total).
        preferences: preferences[j] is the complete ordered list of all N units for atom j
            (a permutation of range(N)).
        service_rate: Service rate mu of a unit (per time unit, > 0).
        queue: "loss": calls arriving when all units are busy are lost. "fcfs": they wait in an
            infinite FCFS queue (needs rho = lambda / (N mu) < 1); a queued call is served by
            whichever unit frees first, i.e. uniformly over units, and its atom is distributed as
            arrival_rates / lambda. Queued dispatches count in dispatch_fractions and
            interarea_fraction, and all-busy queue states count as busy time in workloads.
        travel: Optional (N, J) mean travel times (time units) from unit n to atom j.
        home: home[j], the home unit of atom j; defaults to preferences[j][0].
        method: "exact": solve the 2^N-state Markov chain (sparse LU or GMRES; N <= 20, fast to ~14).
            "larson": Larson's (1975) approximation (fcfs; Jarvis's 1985 factors for "loss"),
            iterated to 1e-10. "auto": exact for N <= 12, larson above.

    Raises:
        ValueError: If an argument is invalid (naming it) or the fcfs queue is unstable.
    """
    try:
        lam_j = np.asarray(arrival_rates, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("arrival_rates must be a sequence of rates") from None
    try:
        pref = np.asarray(preferences)
    except ValueError:
        raise ValueError("preferences must list every unit for every atom") from None
    if lam_j.ndim != 1 or not np.all(np.isfinite(lam_j)) or np.any(lam_j < 0) or lam_j.sum() <= 0:
        raise ValueError("arrival_rates must be a 1-D sequence of finite rates >= 0 with a positive total")
    atoms = lam_j.size
    if pref.ndim != 2 or pref.shape[0] != atoms or pref.shape[1] == 0 or not np.issubdtype(pref.dtype, np.integer):
        raise ValueError(f"preferences must be {atoms} lists (one per atom) of the same integer unit ids")
    units = pref.shape[1]
    pref = pref.astype(np.int64)
    if np.any(np.sort(pref, axis=1) != np.arange(units)):
        raise ValueError(f"preferences: each atom's list must be a permutation of range({units})")
    mu = _real_arg("service_rate", service_rate, positive=True)
    if queue not in ("loss", "fcfs"):
        raise ValueError(f"queue must be 'loss' or 'fcfs', got {queue!r}")
    if method not in ("exact", "larson", "auto"):
        raise ValueError(f"method must be 'exact', 'larson' or 'auto', got {method!r}")
    home_unit = pref[:, 0] if home is None else np.asarray(home)
    if (home_unit.shape != (atoms,) or not np.issubdtype(home_unit.dtype, np.integer)
            or np.any((home_unit < 0) | (home_unit >= units))):
        raise ValueError(f"home must give one unit id in range({units}) per atom")
    if travel is not None:
        travel = np.asarray(travel, dtype=float)
        if travel.shape != (units, atoms) or not np.all(np.isfinite(travel)):
            raise ValueError(f"travel must be a finite ({units}, {atoms}) array of travel times")
    fcfs = queue == "fcfs"
    lam = float(lam_j.sum())
    if fcfs and lam >= units * mu:
        raise ValueError(f"utilisation lambda / (N mu) = {lam / (units * mu):.6g} must be < 1 for queue='fcfs'")
    exact = method == "exact" or (method == "auto" and units <= 12)
    if exact and units > _EXACT_MAX_UNITS:
        raise ValueError(f"method='exact' handles at most {_EXACT_MAX_UNITS} units, got {units}")
    solve = _hypercube_exact if exact else _hypercube_larson
    workloads, f, p_all_busy, states = solve(lam_j, pref, mu, fcfs)
    workloads.setflags(write=False)
    f.setflags(write=False)
    return HypercubeResult(
        workloads=workloads, dispatch_fractions=f,
        interarea_fraction=float(f.sum() - f[home_unit, np.arange(atoms)].sum()),
        p_all_busy=p_all_busy, p_loss=0.0 if fcfs else p_all_busy, p_queue=p_all_busy if fcfs else 0.0,
        mean_travel_time=None if travel is None else float(np.sum(f * travel)), exact=exact, states=states)
