"""scenarios.theory: exact queueing theory, checked against independent computations."""

import itertools
import math
import time

import numpy as np
import pytest
from scipy import integrate, linalg, stats

from scenarios.theory import (
    erlang_a,
    erlang_b,
    erlang_c,
    halfin_whitt_beta,
    hypercube,
    mmc,
    mmc_priority_waits,
    mt_m_inf_mean,
    mt_m_inf_sinusoid,
    mt_m_st,
    square_root_staffing,
    staff_for_p_wait,
    staff_for_service_level,
)


def erlang_b_by_sum(c: int, a: float) -> float:
    terms = [a**k / math.factorial(k) for k in range(c + 1)]
    return terms[-1] / sum(terms)


def erlang_c_by_sum(c: int, a: float) -> float:
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


# --- Erlang B / C ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("c", [0, 1, 2, 5, 10, 17])
@pytest.mark.parametrize("a", [0.0, 0.4, 3.0, 9.5, 25.0])
def test_erlang_b_and_c_match_the_factorial_sums(c: int, a: float) -> None:
    assert erlang_b(c, a) == pytest.approx(erlang_b_by_sum(c, a), rel=1e-12, abs=1e-300)
    if a < c:
        b = erlang_b(c, a)
        assert erlang_c(c, a) == pytest.approx(erlang_c_by_sum(c, a), rel=1e-12, abs=1e-300)
        assert erlang_c(c, a) == pytest.approx(c * b / (c - a * (1 - b)), rel=1e-12, abs=1e-300)
    else:
        assert erlang_c(c, a) == 1.0


def test_erlang_table_values() -> None:
    assert erlang_b(10, 5) == pytest.approx(0.018385, abs=5e-7)
    assert erlang_b(5, 2) == pytest.approx(0.036697, abs=5e-7)
    assert erlang_b(1, 1) == 0.5
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3, rel=1e-14)            # M/M/2, rho = 1/2: 2 rho^2 / (1 + rho)
    # large c, where the factorial sum overflows: B = P(Poisson(A) = c) / P(Poisson(A) <= c)
    assert erlang_b(1000, 950) == pytest.approx(stats.poisson.pmf(1000, 950) / stats.poisson.cdf(1000, 950), rel=1e-9)
    assert 0.0 < erlang_c(1000, 950) < 1.0


def test_mmc_littles_law_and_wait_distribution() -> None:
    r = mmc(arrival_rate=7.2, service_rate=1.0, servers=9)
    assert r.mean_queue == pytest.approx(r.arrival_rate * r.mean_wait, rel=1e-14)
    assert r.p_wait_le(0.0) == pytest.approx(1 - r.p_wait, rel=1e-15)
    assert r.p_wait_le(math.inf) == 1.0
    assert r.utilisation == pytest.approx(0.8)
    ts = np.linspace(0, 5, 50)
    assert np.all(np.diff([r.p_wait_le(t) for t in ts]) > 0)
    # E[W] = integral of P(W > t)
    assert integrate.quad(r.p_wait_gt, 0, np.inf)[0] == pytest.approx(r.mean_wait, rel=1e-9)
    m1 = mmc(0.6, 1.0, 1)                                                 # M/M/1 by hand
    assert (m1.p_wait, m1.mean_wait) == pytest.approx((0.6, 0.6 / 0.4), rel=1e-14)
    with pytest.raises(ValueError, match="utilisation"):
        mmc(10.0, 1.0, 10)


# --- Erlang A --------------------------------------------------------------------------------------------

def test_erlang_a_approaches_erlang_c_without_abandonment() -> None:
    c_res, a_res = mmc(8.0, 1.0, 10), erlang_a(8.0, 1.0, 10, 1e-9)
    assert a_res.p_wait == pytest.approx(c_res.p_wait, rel=1e-6)
    assert a_res.mean_queue == pytest.approx(c_res.mean_queue, rel=1e-6)
    assert a_res.mean_wait == pytest.approx(c_res.mean_wait, rel=1e-6)
    assert a_res.p_abandon < 1e-8
    for t in (0.0, 0.05, 0.3, 1.0, 3.0):
        assert a_res.p_wait_le(t) == pytest.approx(c_res.p_wait_le(t), abs=1e-8)


def test_erlang_a_with_patience_equal_to_service_is_poisson() -> None:
    # theta = mu makes every customer leave at rate mu: the number in system is Poisson(lambda / mu)
    lam, mu, c = 13.0, 1.5, 7
    r = erlang_a(lam, mu, c, mu)
    n = np.arange(400)
    p = stats.poisson.pmf(n, lam / mu)
    assert r.p_wait == pytest.approx(stats.poisson.sf(c - 1, lam / mu), rel=1e-10)
    assert r.mean_queue == pytest.approx(np.dot(np.maximum(n - c, 0), p), rel=1e-10)
    assert r.utilisation == pytest.approx(np.dot(np.minimum(n, c), p) / c, rel=1e-10)


def test_erlang_a_flow_balance_and_overload() -> None:
    r = erlang_a(20.0, 1.0, 10, 0.5)                                      # twice the capacity: still stable
    assert r.p_abandon == pytest.approx(r.abandonment_rate * r.mean_queue / r.arrival_rate, rel=1e-14)
    assert r.utilisation == pytest.approx(r.arrival_rate * (1 - r.p_abandon) / 10, rel=1e-10)
    assert r.p_abandon > 1 - 10 / 20.0 and r.utilisation < 1
    assert r.mean_wait == pytest.approx(r.mean_queue / r.arrival_rate, rel=1e-14)


@pytest.mark.parametrize(("lam", "mu", "c", "theta"), [(12.0, 1.0, 10, 0.5), (3.0, 0.5, 4, 2.0), (40.0, 1.0, 30, 0.2)])
def test_erlang_a_wait_distribution(lam: float, mu: float, c: int, theta: float) -> None:
    r = erlang_a(lam, mu, c, theta)
    assert r.p_wait_le(0.0) == pytest.approx(1 - r.p_wait, rel=1e-14)
    assert r.p_wait_le(math.inf) == 1.0
    ts = np.linspace(0, 20 / (c * mu), 60)
    values = [r.p_wait_le(t) for t in ts]
    assert np.all(np.diff(values) >= -1e-15) and values[-1] <= 1.0
    # the mean of the time in queue is E[Lq] / lambda
    assert integrate.quad(r.p_wait_gt, 0, np.inf, limit=200)[0] == pytest.approx(r.mean_wait, rel=1e-8)
    # independent: dense matrix exponential of the phase process (k ahead, killed by own patience)
    seen = r.queue_seen_on_arrival
    k = np.arange(seen.size)
    gen = np.diag(-(c * mu + (k + 1) * theta)) + np.diag(c * mu + k[1:] * theta, 1)   # transposed generator
    for t in (0.1, 0.7, 2.5):
        assert r.p_wait_gt(t) == pytest.approx((linalg.expm(gen * t) @ seen).sum(), rel=1e-9, abs=1e-15)


# --- staffing --------------------------------------------------------------------------------------------

def test_square_root_staffing_and_halfin_whitt() -> None:
    assert square_root_staffing(100.0, 1.0) == 110
    assert square_root_staffing(100.0, 0.5) == 105
    assert square_root_staffing(0.0, 2.0) == 0
    for alpha in (0.9, 0.5, 0.2, 0.05, 1e-4, 1e-40):
        beta = halfin_whitt_beta(alpha)
        phi_ratio = stats.norm.cdf(beta) / stats.norm.pdf(beta)
        assert 1 / (1 + beta * phi_ratio) == pytest.approx(alpha, rel=1e-9)
    assert halfin_whitt_beta(0.5) == pytest.approx(0.5061, abs=1e-4)


@pytest.mark.parametrize(("lam", "mu", "target"), [(10.0, 1.0, 0.2), (100.0, 1.0, 0.5), (3.0, 0.25, 0.01), (0.5, 1.0, 0.9)])
def test_staff_for_p_wait_is_the_fewest(lam: float, mu: float, target: float) -> None:
    c = staff_for_p_wait(lam, mu, target)
    assert erlang_c(c, lam / mu) <= target < erlang_c(c - 1, lam / mu)
    scan = next(n for n in itertools.count(1) if erlang_c(n, lam / mu) <= target)    # plain linear scan
    assert c == scan


@pytest.mark.parametrize("theta", [None, 1 / 120, 1 / 30])
def test_staff_for_service_level_is_the_fewest(theta: float | None) -> None:
    lam, mu, wait, target = 0.5, 1 / 60, 20.0, 0.8       # per second: 30 calls a minute, 1-minute service
    c = staff_for_service_level(lam, mu, wait_s=wait, target=target, abandonment_rate=theta)

    def level(n: int) -> float:
        if theta is None:
            return mmc(lam, mu, n).p_wait_le(wait) if n > lam / mu else 0.0
        return erlang_a(lam, mu, n, theta).p_wait_le(wait)

    assert level(c) >= target > level(c - 1)


def test_service_level_counts_abandonment_as_the_end_of_the_wait() -> None:
    # patience 10 s < 20 s: P(time in queue <= 20 s) >= 1 - e^-2 > 0.8 with any staffing
    assert staff_for_service_level(0.5, 1 / 60, wait_s=20.0, target=0.8, abandonment_rate=0.1) == 1


# --- M_t/M/inf -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("mu", "period", "amplitude"), [(1.0, 1.0, 0.8), (0.2, 24.0, 0.5), (5.0, 0.3, 1.0)])
def test_mt_m_inf_quadrature_matches_the_sinusoid(mu: float, period: float, amplitude: float) -> None:
    t = 60 / mu + np.linspace(0, 2 * period, 41)                          # long warm-up: transient < e^-60
    rate = lambda u: 4.0 * (1 + amplitude * np.sin(2 * np.pi * u / period))
    quad = mt_m_inf_mean(t, rate=rate, service_rate=mu)
    exact = mt_m_inf_sinusoid(t, mean_rate=4.0, amplitude=amplitude, period=period, service_rate=mu)
    assert np.max(np.abs(quad / exact - 1)) < 1e-6


def test_mt_m_inf_constant_and_step_rates() -> None:
    mu, t0 = 0.5, 2.0
    t = np.array([[1.0, 2.0, 2.5], [3.0, 10.0, 40.0]])
    m = mt_m_inf_mean(t, rate=lambda u: np.full_like(u, 3.0), service_rate=mu, t0=t0)
    assert m.shape == t.shape
    expected = 3.0 / mu * (1 - np.exp(-mu * np.maximum(t - t0, 0)))
    assert np.allclose(m, expected, rtol=1e-9, atol=0)
    # a step from 1 to 5 per time unit at s = 3.7 (a discontinuity inside the interval)
    s, tt = 3.7, np.array([2.0, 3.7, 4.0, 9.0, 30.0])
    step = mt_m_inf_mean(tt, rate=lambda u: np.where(u < s, 1.0, 5.0), service_rate=mu)
    after = np.exp(-mu * np.maximum(tt - s, 0))
    expected = (np.exp(-mu * (tt - np.minimum(tt, s))) - np.exp(-mu * tt)) / mu + 5.0 / mu * (1 - after)
    assert np.allclose(step, expected, rtol=1e-9, atol=0)
    assert float(mt_m_inf_mean(0.5, rate=lambda u: 1.0 + 0 * u, service_rate=1.0)) == pytest.approx(1 - math.exp(-0.5))


def test_mt_m_inf_hourly_rates_at_arbitrary_times() -> None:
    hourly = np.array([2, 1, 1, 1, 2, 5, 9, 12, 10, 8, 8, 9, 10, 9, 8, 8, 9, 10, 9, 7, 6, 5, 4, 3], dtype=float)
    mu = 0.7

    def by_hand(t: float) -> float:  # sum over whole and partial hours of rate / mu (e^-mu(t-b) - e^-mu(t-a))
        return sum(hourly[k % 24] / mu * (math.exp(-mu * (t - min(k + 1, t))) - math.exp(-mu * (t - k)))
                   for k in range(math.ceil(t)))

    times = np.random.default_rng(5).uniform(0.5, 47.5, 12)
    for t in times[:4]:                                                   # one time point at a time ...
        got = float(mt_m_inf_mean(t, rate=lambda u: hourly[np.floor(u).astype(int) % 24], service_rate=mu))
        assert got == pytest.approx(by_hand(t), rel=1e-9)
    grid = np.concatenate([times, np.arange(1.0, 48.0, 0.5)])            # ... and many, some on the jumps
    got = mt_m_inf_mean(grid, rate=lambda u: hourly[np.floor(u).astype(int) % 24], service_rate=mu)
    assert np.allclose(got, [by_hand(t) for t in grid], rtol=1e-9, atol=0)


# --- hypercube -------------------------------------------------------------------------------------------

def brute_force_hypercube(lam: np.ndarray, pref: list[list[int]], mu: float, fcfs: bool, max_queue: int = 90):
    """Dense generic CTMC over (busy set, queue length): workloads, dispatch fractions, P(all busy)."""
    units, atoms = len(pref[0]), len(lam)
    full = frozenset(range(units))
    states = [(frozenset(b), 0) for r in range(units + 1) for b in itertools.combinations(range(units), r)]
    if fcfs:
        states += [(full, k) for k in range(1, max_queue + 1)]
    index = {s: i for i, s in enumerate(states)}
    q = np.zeros((len(states), len(states)))
    for (busy, k), i in index.items():
        if busy != full:
            for j in range(atoms):
                unit = next(n for n in pref[j] if n not in busy)
                q[i, index[(busy | {unit}, 0)]] += lam[j]
        elif fcfs and k < max_queue:
            q[i, index[(full, k + 1)]] += lam.sum()
        for n in busy:
            q[i, index[(full, k - 1)] if k > 0 else index[(busy - {n}, 0)]] += mu
    q -= np.diag(q.sum(axis=1))
    a = np.vstack([q.T, np.ones(len(states))])
    p = np.linalg.lstsq(a, np.r_[np.zeros(len(states)), 1.0], rcond=None)[0]
    workloads = np.array([sum(p[i] for (b, _), i in index.items() if n in b) for n in range(units)])
    disp = np.zeros((units, atoms))
    for (busy, k), i in index.items():
        if busy != full:
            for j in range(atoms):
                disp[next(n for n in pref[j] if n not in busy), j] += lam[j] * p[i]
        elif k > 0:
            disp += mu * p[i] * lam[None, :] / lam.sum()
    all_busy = sum(p[i] for (b, _), i in index.items() if b == full)
    return workloads, disp / disp.sum(), all_busy


def random_instance(seed: int, units: int, atoms: int, utilisation: float, mu: float = 1.0):
    rng = np.random.default_rng(seed)
    lam = rng.uniform(0.2, 1.0, atoms)
    lam *= utilisation * units * mu / lam.sum()
    return lam, [[int(n) for n in rng.permutation(units)] for _ in range(atoms)]


@pytest.mark.parametrize("queue", ["fcfs", "loss"])
def test_hypercube_exact_matches_a_brute_force_ctmc(queue: str) -> None:
    lam, pref = random_instance(4, units=4, atoms=7, utilisation=0.5, mu=1.3)
    r = hypercube(lam, pref, 1.3, queue=queue, method="exact")
    workloads, disp, all_busy = brute_force_hypercube(lam, pref, 1.3, queue == "fcfs")
    assert r.exact and r.states == 16
    assert np.allclose(r.workloads, workloads, atol=1e-9, rtol=0)
    assert np.allclose(r.dispatch_fractions, disp, atol=1e-9, rtol=0)
    assert r.p_all_busy == pytest.approx(all_busy, abs=1e-9)


def test_hypercube_single_unit_is_mm1_and_erlang_loss() -> None:
    lam, mu = [0.2, 0.3, 0.1], 1.0                                       # rho = 0.6
    fcfs = hypercube(lam, [[0]] * 3, mu, queue="fcfs")
    assert fcfs.workloads[0] == pytest.approx(0.6, abs=1e-12)
    assert fcfs.p_queue == pytest.approx(0.6, abs=1e-12) and fcfs.p_loss == 0.0
    assert np.allclose(fcfs.dispatch_fractions[0], np.array(lam) / 0.6)
    loss = hypercube(lam, [[0]] * 3, mu, queue="loss")
    assert loss.p_loss == pytest.approx(erlang_b(1, 0.6), abs=1e-12) == pytest.approx(0.6 / 1.6)
    assert loss.workloads[0] == pytest.approx(0.6 / 1.6, abs=1e-12) and loss.p_queue == 0.0


@pytest.mark.parametrize("queue", ["fcfs", "loss"])
def test_hypercube_two_units_by_hand(queue: str) -> None:
    # atom 0 prefers (0, 1), atom 1 prefers (1, 0). Levels are M/M/2/2: P0 : P1 : P2 = 1 : A : A^2 / 2.
    # Balance of "only unit 0 busy": (lam + mu) Pa = lam0 P0 + mu P2, and symmetrically for unit 1.
    l0, l1, mu = 0.7, 0.4, 1.0
    lam = l0 + l1
    a = lam / mu
    p0 = 1.0
    p2 = a * a / 2
    pa, pb = (l0 * p0 + mu * p2) / (lam + mu), (l1 * p0 + mu * p2) / (lam + mu)
    disp = np.array([[l0 * (p0 + pb), l1 * pb], [l0 * pa, l1 * (p0 + pa)]])
    if queue == "fcfs":
        rho = lam / (2 * mu)
        p2_all = p2 / (1 - rho)                                        # all busy, any queue
        total = p0 + pa + pb + p2_all
        disp = disp + np.array([[l0, l1], [l0, l1]]) * p2_all / 2      # queued calls: either unit, 1/2 each
    else:
        p2_all = p2
        total = p0 + pa + pb + p2
    r = hypercube([l0, l1], [[0, 1], [1, 0]], mu, queue=queue)
    assert r.workloads == pytest.approx(np.array([pa + p2_all, pb + p2_all]) / total, abs=1e-12)
    assert r.dispatch_fractions == pytest.approx(disp / disp.sum(), abs=1e-12)
    assert r.p_all_busy == pytest.approx(p2_all / total, abs=1e-12)
    assert r.interarea_fraction == pytest.approx((disp[1, 0] + disp[0, 1]) / disp.sum(), abs=1e-12)


@pytest.mark.parametrize(("units", "queue"), [(5, "fcfs"), (5, "loss"), (11, "fcfs")])
def test_hypercube_symmetric_ring_has_equal_workloads(units: int, queue: str) -> None:
    pref = [[(j + s) % units for s in (0, 1, -1, 2, -2, 3, -3, 4, -4, 5, -5)[:units]] for j in range(units)]
    r = hypercube([0.6] * units, pref, 1.0, queue=queue, method="exact")
    assert np.ptp(r.workloads) < 1e-10
    assert r.dispatch_fractions.sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("queue", ["fcfs", "loss"])
def test_hypercube_conservation_and_travel(queue: str) -> None:
    lam, pref = random_instance(7, units=6, atoms=15, utilisation=0.55, mu=0.5)
    home = [p[1] for p in pref]                                          # not the first choice, on purpose
    not_home = np.ones((6, 15))
    not_home[home, np.arange(15)] = 0.0
    r = hypercube(lam, pref, 0.5, queue=queue, travel=not_home, home=home)
    served = 1 - r.p_loss
    assert r.workloads.mean() == pytest.approx(lam.sum() * served / (6 * 0.5), abs=1e-11)
    assert r.dispatch_fractions.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.allclose(r.dispatch_fractions.sum(axis=0), lam / lam.sum(), atol=1e-11)   # every atom equally served
    assert r.mean_travel_time == pytest.approx(r.interarea_fraction, abs=1e-12)
    if queue == "fcfs":
        assert r.p_queue == pytest.approx(erlang_c(6, lam.sum() / 0.5), abs=1e-11)      # the count is M/M/N
    else:
        assert r.p_loss == pytest.approx(erlang_b(6, lam.sum() / 0.5), abs=1e-11)


def test_larson_correction_factors_book_example() -> None:
    from scenarios.theory import _larson_factors  # Larson & Odoni, Urban Operations Research, 5.5.3

    q, _, _ = _larson_factors(3, 1.5, True)
    assert q == pytest.approx([1.0, 0.73684, 0.63158], abs=1e-5)


@pytest.mark.parametrize(("queue", "units", "utilisation"), [("fcfs", 7, 0.45), ("loss", 8, 0.35), ("fcfs", 6, 0.6)])
def test_larson_approximation_is_close_to_exact(queue: str, units: int, utilisation: float) -> None:
    lam, pref = random_instance(units, units=units, atoms=3 * units, utilisation=utilisation)
    exact = hypercube(lam, pref, 1.0, queue=queue, method="exact")
    approx = hypercube(lam, pref, 1.0, queue=queue, method="larson")
    assert not approx.exact and approx.states > 1
    assert np.max(np.abs(approx.workloads - exact.workloads)) < 0.03
    assert abs(approx.interarea_fraction - exact.interarea_fraction) < 0.03
    assert np.max(np.abs(approx.dispatch_fractions - exact.dispatch_fractions)) < 0.01
    assert approx.dispatch_fractions.sum() == pytest.approx(1.0, abs=1e-12)
    assert approx.p_all_busy == pytest.approx(exact.p_all_busy, abs=1e-10)


def test_larson_is_fast_for_fifty_units() -> None:
    lam, pref = random_instance(50, units=50, atoms=200, utilisation=0.6)
    start = time.perf_counter()
    r = hypercube(lam, pref, 1.0)                                         # auto: Larson above 12 units
    assert time.perf_counter() - start < 0.5
    assert not r.exact and r.workloads.shape == (50,)
    assert r.workloads.mean() == pytest.approx(0.6, abs=1e-9)
    assert hypercube(lam[:12], [p[:12] for p in random_instance(1, 12, 12, 0.5)[1]], 1.0).exact


# --- bad arguments ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("call", "name"), [
    (lambda: erlang_b(-1, 1.0), "servers"),
    (lambda: erlang_b(2.5, 1.0), "servers"),
    (lambda: erlang_b(3, -1.0), "offered_load"),
    (lambda: erlang_c(3, float("nan")), "offered_load"),
    (lambda: mmc(1.0, 0.0, 2), "service_rate"),
    (lambda: mmc(-1.0, 1.0, 2), "arrival_rate"),
    (lambda: mmc(1.0, 1.0, 0), "servers"),
    (lambda: erlang_a(1.0, 1.0, 2, 0.0), "abandonment_rate"),
    (lambda: mmc(1.0, 1.0, 2).p_wait_le(float("nan")), "t"),
    (lambda: halfin_whitt_beta(1.0), "target_p_wait"),
    (lambda: staff_for_p_wait(1.0, 1.0, 0.0), "target_p_wait"),
    (lambda: staff_for_service_level(1.0, 1.0, wait_s=-1.0, target=0.8), "wait_s"),
    (lambda: staff_for_service_level(1.0, 1.0, wait_s=1.0, target=1.2), "target"),
    (lambda: mt_m_inf_mean(1.0, rate=lambda u: u, service_rate=-1.0), "service_rate"),
    (lambda: mt_m_inf_mean(1.0, rate=lambda u: -1.0 + 0 * u, service_rate=1.0), "rate"),
    (lambda: mt_m_inf_sinusoid(1.0, mean_rate=1.0, amplitude=1.5, period=1.0, service_rate=1.0), "amplitude"),
    (lambda: hypercube([1.0, -1.0], [[0, 1], [1, 0]], 1.0), "arrival_rates"),
    (lambda: hypercube([1.0, 1.0], [[0, 1], [1, 1]], 1.0), "preferences"),
    (lambda: hypercube([1.0, 1.0], [[0, 1], [1]], 1.0), "preferences"),
    (lambda: hypercube([1.0, 1.0], [[0, 1], [1, 0]], 1.0), "utilisation"),
    (lambda: hypercube([0.5, 0.5], [[0, 1], [1, 0]], 1.0, queue="lifo"), "queue"),  # type: ignore[arg-type]
    (lambda: hypercube([0.5, 0.5], [[0, 1], [1, 0]], 1.0, method="fast"), "method"),  # type: ignore[arg-type]
    (lambda: hypercube([0.5, 0.5], [[0, 1], [1, 0]], 1.0, home=[0, 2]), "home"),
    (lambda: hypercube([0.5, 0.5], [[0, 1], [1, 0]], 1.0, travel=np.ones((2, 3))), "travel"),
])
def test_bad_arguments_name_the_argument(call, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        call()


def test_forward_equations_at_a_constant_rate_are_erlang_c() -> None:
    lam, mu, c = 10 / 3600, 1 / 1800, 8
    p = mt_m_st(lambda t: lam, mu, lambda t: c, period=86_400.0, times=[0.0, 43_200.0], capacity=80)
    assert p.sum(axis=1) == pytest.approx([1.0, 1.0], abs=1e-9)
    assert p[:, c:].sum(axis=1) == pytest.approx([erlang_c(c, lam / mu)] * 2, rel=1e-6)
    mean = mmc(lam, mu, c)
    assert p @ np.arange(81) == pytest.approx([lam / mu + mean.mean_queue] * 2, rel=1e-6)
    with pytest.raises(ValueError):
        mt_m_st(lambda t: lam, mu, lambda t: c, period=100.0, times=[150.0], capacity=20)


def test_priority_waits_reduce_to_erlang_c_and_keep_the_mean() -> None:
    lam, mu, c = 25 / 3600, 1 / 600, 6
    one = mmc_priority_waits([lam], mu, c)
    assert one[0] == pytest.approx(mmc(lam, mu, c).mean_wait)
    rates = [lam * 0.2, lam * 0.3, lam * 0.5]
    w = mmc_priority_waits(rates, mu, c)
    assert w[0] < w[1] < w[2]
    # Work conservation: the rate-weighted mean wait is FCFS's (equal service times).
    assert float(np.dot(rates, w) / lam) == pytest.approx(mmc(lam, mu, c).mean_wait)
    with pytest.raises(ValueError, match="offered load"):
        mmc_priority_waits([1 / 60], 1 / 600, 6)
