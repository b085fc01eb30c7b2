"""Proportional fair, single-user: airtime, the log-utility optimum, and Sionna SYS's rule."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.scheduler.config import PfConfig
from simulator.scheduler.pf import PfScheduler


def slot_rate_bps(rate_bps: np.ndarray, ues: np.ndarray) -> np.ndarray:
    """[num_ues] the rate each UE is scheduled in a single-user slot (its groups' rates summed)."""
    on = ues >= 0
    return np.bincount(ues[on], weights=rate_bps[ues[on], np.flatnonzero(on)], minlength=len(rate_bps))


def full_buffer(cfg: PfConfig, rates, num_slots: int, warmup: int) -> tuple[np.ndarray, np.ndarray]:
    """Run PF with ``rates(t)`` -> [num_ues, num_groups]; (group-slots, mean rate_bps) per UE after warmup."""
    num_ues, num_groups = rates(0).shape
    sched = PfScheduler(cfg, num_ues, np.full(num_groups, 4))
    last, airtime, tput = np.zeros(num_ues), np.zeros(num_ues), np.zeros(num_ues)
    for t in range(num_slots):
        r = rates(t)
        ues = sched.schedule(r, np.zeros(num_ues, dtype=np.int64), last).ues[:, 0]
        last = slot_rate_bps(r, ues)
        if t >= warmup:
            airtime += np.bincount(ues[ues >= 0], minlength=num_ues)
            tput += last
    return airtime, tput / (num_slots - warmup)


def test_equal_channel_statistics_give_equal_airtime(rng):
    num_ues, num_groups = 8, 13
    rates = lambda t: 1e6 * np.log2(1 + 10 * rng.exponential(size=(num_ues, num_groups)))   # i.i.d. Rayleigh
    airtime, _ = full_buffer(PfConfig(), rates, 20_000, 1_000)
    share = airtime / airtime.sum()
    assert np.all(np.abs(share * num_ues - 1) < 0.05), share


@pytest.mark.parametrize("throughput_exponent", [1.0, 2.0])
def test_two_snrs_converge_to_the_best_time_share(throughput_exponent):
    """Constant rates r1 > r2 on every group: PF with exponent b is the gradient scheduler of the
    alpha-fair utility with alpha = b (b = 1: sum of log-throughputs); its time share must be the
    brute-force maximiser of that utility over shares s, throughputs s r1 and (1 - s) r2."""
    r = np.array([8e6, 1e6])
    airtime, _ = full_buffer(PfConfig(throughput_exponent=throughput_exponent),
                             lambda t: np.repeat(r[:, None], 13, axis=1), 10_000, 1_000)
    s = np.linspace(0.001, 0.999, 999)
    tput = np.stack([s * r[0], (1 - s) * r[1]])
    b = throughput_exponent
    utility = np.log(tput).sum(axis=0) if b == 1 else (tput ** (1 - b) / (1 - b)).sum(axis=0)
    best = s[np.argmax(utility)]
    assert abs(airtime[0] / airtime.sum() - best) < 0.01, (airtime, best)
    assert abs(best - (0.5 if b == 1 else 1 / (1 + np.sqrt(r[0] / r[1])))) < 0.002   # the closed forms


def test_frequency_selective_constant_rates_reach_the_log_utility_optimum():
    """Two UEs, two groups, each UE better on a different group by a different margin: the PF
    throughputs maximise sum(log T) over all per-group time shares (brute force on a grid)."""
    rate = np.array([[10e6, 2e6], [4e6, 3e6]])
    _, tput = full_buffer(PfConfig(beta=0.995), lambda t: rate, 20_000, 2_000)
    x = np.linspace(0, 1, 401)
    x0, x1 = np.meshgrid(x, x, indexing="ij")          # UE 0's share of group 0 and of group 1
    with np.errstate(divide="ignore"):
        utility = np.log(x0 * rate[0, 0] + x1 * rate[0, 1]) + np.log((1 - x0) * rate[1, 0] + (1 - x1) * rate[1, 1])
    i, j = np.unravel_index(np.argmax(utility), utility.shape)
    best = np.array([x0[i, j] * rate[0, 0] + x1[i, j] * rate[0, 1], (1 - x0[i, j]) * rate[1, 0] + (1 - x1[i, j]) * rate[1, 1]])
    assert np.log(tput).sum() > utility[i, j] - 0.01
    np.testing.assert_allclose(tput, best, rtol=0.02)


def test_throughput_is_an_ema_of_the_last_slot_rates():
    sched = PfScheduler(PfConfig(beta=0.9), 2, np.full(3, 4))
    rate = np.ones((2, 3))
    sched.schedule(rate, np.zeros(2, dtype=np.int64), np.array([10.0, 0.0]))
    sched.schedule(rate, np.zeros(2, dtype=np.int64), np.array([0.0, 20.0]))
    np.testing.assert_allclose(sched.throughput_bps, [0.9 * (0.9 + 1.0), 0.9 * 0.9 + 2.0])


def test_zero_rate_groups_stay_empty_and_a_starved_ue_never_gets_nan():
    sched = PfScheduler(PfConfig(throughput_exponent=2.0), 2, np.full(2, 4))
    rate = np.array([[0.0, 5e6], [0.0, 0.0]])
    for _ in range(20_000):                  # UE 1's squared throughput decays to 0 (0 / 0 unfloored)
        alloc = sched.schedule(rate, np.zeros(2, dtype=np.int64), np.array([5e6, 0.0]))
    assert sched.throughput_bps[1] ** 2 == 0.0
    assert alloc.ues[:, 0].tolist() == [-1, 0] and alloc.prbs.tolist() == [4, 0]


def test_wrong_rate_shape_is_refused():
    sched = PfScheduler(PfConfig(), 3, np.full(13, 4))
    with pytest.raises(ValueError, match=r"\[3, 13\].*\[13, 3\]"):
        sched.schedule(np.ones((13, 3)), np.zeros(3, dtype=np.int64), np.zeros(3))


def test_multi_user_needs_a_set_rate_fn():
    with pytest.raises(ValueError, match="set_rate_fn"):
        PfScheduler(PfConfig(), 3, np.full(13, 4), max_ues_per_prb=2)


@pytest.mark.parametrize("beta", [0.984375, 0.75])
def test_numpy_rule_equals_sionna_pf_scheduler_sumimo(rng, beta):
    """Slot by slot on random rates: the same UE on every group and the same past throughput, to
    the bit, as Sionna SYS's PFSchedulerSUMIMO (double precision), each fed the rate its allocation
    scheduled. Sionna's beta passes through float32 (tf.cast of a Python float), so the betas here
    are exact in float32 (63/64, 3/4); at 0.98 the throughputs differ by ~2e-8 relative."""
    import tensorflow as tf
    from sionna.sys import PFSchedulerSUMIMO

    num_ues, num_groups = 6, 13
    ours = PfScheduler(PfConfig(beta=beta), num_ues, np.full(num_groups, 4))
    sionna = PFSchedulerSUMIMO(num_ues, num_groups, 1, beta=beta, precision="double")
    last = np.zeros(num_ues)
    for _ in range(60):
        rate = rng.uniform(0, 1e7, size=(num_ues, num_groups)) * rng.uniform(0.1, 1, size=(num_ues, 1))
        alloc = ours.schedule(rate, np.zeros(num_ues, dtype=np.int64), last)
        scheduled = sionna(tf.constant(last), tf.constant(rate.T[None]))      # [1, groups, ues, 1]
        np.testing.assert_array_equal(alloc.ues[:, 0], np.argmax(scheduled.numpy()[0, :, :, 0], axis=1))
        np.testing.assert_array_equal(ours.throughput_bps, sionna.rate_achieved_past.numpy())
        assert alloc.prbs.sum() == 4 * num_groups
        last = slot_rate_bps(rate, alloc.ues[:, 0])
