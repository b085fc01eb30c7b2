"""receiver_adaptation in the event loop: a tiny DeepRx (4 PRB, one DMRS symbol) fine-tuned on the
network side when its BER gap to genie grows, the coded update sent on a downlink pipe; the UE
receives with its old weights until the update has arrived, then with the weights decoded from
the update's bytes. Each chain costs its XLA compilations (~1-4 s on two cores); they are
shared by the tests of this module (same grid and receiver graph)."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from models.deeprx.model import DeepRx, DeepRxConfig
from simulator.link import serialisation_us
from simulator.loader import ConfigError, validate_data
from simulator.validation import check_files

NUM_PRBS = 4
NUM_DMRS = 1
TINY_RX = dict(num_rx_ant=1, max_bits_per_symbol=6, input_filters=4, blocks=((4, 1, 1), (4, 2, 2)))
POOL = dict(num_prbs=NUM_PRBS, num_dmrs_symbols=NUM_DMRS, mcs=(5,), channels=("tdl:A",), snr_db=(0.0, 10.0),
            num_samples=12, seed=1)
DOWNLINK_KBPS = 1000.0
SNR_DB = 2.0


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny untrained DeepRx checkpoint and a 12-slot pool on its grid."""
    from simulator.datagen.deeprx import DeepRxDataConfig, generate_dataset

    root = tmp_path_factory.mktemp("rxad")
    grid = {"num_prbs": NUM_PRBS, "num_dmrs_symbols": NUM_DMRS, "subcarrier_spacing_khz": 30}
    ckpt = DeepRx(DeepRxConfig(**TINY_RX), seed=0).save(root / "rx.json", training={"data_config": grid})
    generate_dataset(DeepRxDataConfig(**POOL), root / "pool")
    # a pool on another grid: its description is all the schema reads
    desc = json.loads((root / "pool" / "description.json").read_text())
    desc["config"]["num_prbs"] = 2
    (root / "pool2").mkdir()
    (root / "pool2" / "description.json").write_text(json.dumps(desc))
    return {"checkpoint": str(ckpt), "pool": str(root / "pool"), "pool2": str(root / "pool2")}


def _adaptation(files, **kw) -> dict:
    return {"variant": "influence", "window_slots": 5, "gap_threshold": 0.0, "num_targets": 2, "samples": 4,
            "steps": 3, "learning_rate": 0.05, "optimizer": "adam", "pool": files["pool"], "hessian_subset": 4,
            "top_k": 4, "network_gflops": 1000.0, "downlink_kbps": DOWNLINK_KBPS, "downlink_delay_ms": 0.5,
            "update": {"bins": 64, "bin_width": 0.005, "prior": "uniform"}, **kw}


def _doc(files, adaptation: dict | None) -> dict:
    # SNR_DB keeps the genie BER of every slot well above min_genie_ber (1e-3), so the slots are watched
    # 5 dB keeps the genie BER above min_genie_ber, so the slots are watched
    rx = {"type": "deeprx", "checkpoint": files["checkpoint"]}
    if adaptation is not None:
        rx["adaptation"] = adaptation
    return {"name": "rxad", "seed": 2, "duration_s": 0.01,
            "carrier": {"subcarrier_spacing_khz": 30, "num_prbs": NUM_PRBS},
            "csi_rs": {"period_ms": 20, "report_delay_ms": 15},
            "phy": {"backend": "link_level", "receiver": "neural", "num_dmrs_symbols": NUM_DMRS,
                    "link_level_batch": 2},
            "snr": {"model": "fixed", "snr_db": SNR_DB},
            "ues": [{"id": 0, "mobility": {"model": "static"}}],
            "link_adaptation": {"olla": {"enabled": False}},
            "models": {"receiver": rx}}


def test_one_fine_tuning_end_to_end(tmp_path, files):
    """One trigger, one job, one coded update that arrives late; the slots before its arrival are
    those of the same run without adaptation, the applied weights are the decoded bytes."""
    from models.deeprx.targeted import relative_ber_gap
    from simulator.engine import Simulation

    sim = Simulation(validate_data(_doc(files, _adaptation(files))), tmp_path / "on")
    sim.run()
    Simulation(validate_data(_doc(files, None)), tmp_path / "off").run()
    updates = pd.read_parquet(tmp_path / "on" / "updates.parquet")
    slots = pd.read_parquet(tmp_path / "on" / "slots.parquet").set_index("slot")
    ref = pd.read_parquet(tmp_path / "off" / "slots.parquet").set_index("slot")

    assert len(updates) == 1
    u = updates.iloc[0]
    assert (u["model"], u["trigger"], u["variant"]) == ("deeprx", "ber_gap", "influence")
    # watched: slots 0-4 (feedback of slot 4 at slot 6 with k1 = 2), checked mid-slot 6; the next
    # window (slots received with the new weights) is not complete before the run ends
    assert u["t_us"] == 6 * 500 + 250
    target = list(u["target"])
    assert len(target) == 2 and set(target) <= {0, 1, 2, 3, 4}
    gaps = relative_ber_gap(slots.loc[target, "ber"], slots.loc[target, "ber_genie"])
    assert u["ber_gap_before"] == pytest.approx(float(np.mean(gaps)), rel=1e-6)
    assert u["trigger_value"] >= u["ber_gap_before"] - 1e-6 or len(target) < 4
    # compute, then the pipe: serialisation of the coded bits plus 0.5 ms
    ad = sim.receiver_adaptations[0]
    applied = ad.applied[0]
    assert u["update_bits"] == 8 * len(applied["data"]) > 0
    assert u["compute_us"] > 0 and u["update_weights"] == sum(w.size for w in applied["old"])
    start = u["t_us"] + u["compute_us"]
    assert u["applied_t_us"] == start + serialisation_us(u["update_bits"], DOWNLINK_KBPS * 1e3) + 500
    assert applied["t_us"] == u["applied_t_us"] < 20 * 500          # arrives within the run
    assert math.isfinite(u["ber_gap_after"]) and math.isfinite(u["loss_before"]) and math.isfinite(u["loss_after"])
    # the weights the UE applies are the coder's decoding of the bytes, bit for bit, and the network's copy
    decoded = ad.coder.decode(applied["old"], applied["data"])
    backend_w = sim_backend_weights(ad, u["applied_t_us"])
    for d, n, b, net in zip(decoded, applied["new"], backend_w, ad.network_weights):
        assert d.dtype == b.dtype == np.float32
        assert d.tobytes() == n.tobytes() == b.tobytes() == net.tobytes()
    assert any(not np.array_equal(o, n) for o, n in zip(applied["old"], applied["new"]))
    # before the arrival the UE received with the old weights: the same slots as without adaptation
    before = slots.index[slots["t_us"] < u["applied_t_us"]]
    after = slots.index[slots["t_us"] >= u["applied_t_us"]]
    assert len(before) >= 10 and len(after) >= 3
    pd.testing.assert_frame_equal(slots.loc[before], ref.loc[before])
    assert not np.array_equal(slots.loc[after, "ber"].to_numpy(), ref.loc[after, "ber"].to_numpy())
    pd.testing.assert_series_equal(slots["ber_genie"], ref["ber_genie"])      # same grids throughout
    # ber_gap_after: the targets received again with the applied weights (same grids, so same genie BER)
    np.testing.assert_array_equal(applied["ber_genie_after"], slots.loc[target, "ber_genie"].to_numpy())
    assert u["ber_gap_after"] == pytest.approx(
        float(np.mean(relative_ber_gap(applied["ber_after"], slots.loc[target, "ber_genie"]))), rel=1e-6)


def sim_backend_weights(ad, t_us: int):
    return ad.backend.neural_weights_at(ad.ue, t_us)


def test_slot_records_regenerate_the_received_grids(files):
    """The grids the backend hands the network are those its receivers saw: LS+LMMSE on them
    gives the logged ber_ls, and the neural receiver the logged ber (same weights)."""
    from models.deeprx.data import to_batch
    from models.deeprx.model import hard_ber
    from simulator.datagen.deeprx import DeepRxDataConfig, reference_llrs
    from simulator.phy.base import Transmission
    from simulator.phy.link_level import LinkLevelBackend

    sc = validate_data(_doc(files, None))
    backend = LinkLevelBackend(sc, {0: 11})
    backend.record_slots(8)
    table_mcs = 5
    tbs = int(backend.chain(table_mcs).tbs_bits)
    rng = np.random.default_rng(0)
    txs = [Transmission(0, s, s * 500, s % 2, 1, table_mcs, tbs, snr,
                        ((rng.normal(size=(1, 48)) + 1j * rng.normal(size=(1, 48))) / np.sqrt(2)).astype(np.complex64))
           for s, snr in enumerate((0.0, 6.0))]
    for tx in txs:
        backend.submit(tx)
    backend.resolve(txs[0])
    recs = list(backend.history[0])
    assert [r.slot for r in recs] == [0, 1]
    arrays = backend.history.slot_arrays(recs, 6)
    data_cfg = DeepRxDataConfig(num_prbs=NUM_PRBS, num_dmrs_symbols=NUM_DMRS, mcs=(table_mcs,))
    ls = reference_llrs(data_cfg, arrays, "lmmse")
    batch = to_batch(arrays, 6)
    np.testing.assert_allclose(hard_ber(ls, batch["bits"], batch["mask"]).numpy(), [tx.ber_ls for tx in txs],
                               rtol=0, atol=2.5e-3)        # eager vs XLA LMMSE: at most a bit or two of 1,248
    model = backend.neural
    llr = model.forward(batch["x"], backend.neural_weights)
    np.testing.assert_allclose(hard_ber(llr, batch["bits"], batch["mask"]).numpy(), [tx.ber for tx in txs],
                               rtol=0, atol=2.5e-3)        # ~1 bit in 400: XLA vs eager float rounding
    again = backend.history.evaluate_records(recs, backend.neural_weights)
    np.testing.assert_array_equal(again.ber, [tx.ber for tx in txs])
    np.testing.assert_array_equal(again.ber_genie, [tx.ber_genie for tx in txs])


def test_weights_switch_at_their_time_per_ue(files):
    """A schedule for UE 0 from t = 1000 us: its transmissions before use the checkpoint's weights,
    from then on the new ones (evaluated lazily, after the schedule was made); UE 1 keeps the old."""
    from simulator.phy.base import Transmission
    from simulator.phy.link_level import LinkLevelBackend

    doc = _doc(files, None)
    doc["ues"] = [{"id": 0}, {"id": 1}]
    sc = validate_data(doc)
    mcs = 5

    def run(schedule=None, base=None):
        be = LinkLevelBackend(sc, {0: 3, 1: 4})
        if base is not None:
            be.neural_weights = base
        if schedule is not None:
            be.schedule_neural_weights(0, schedule, 1000)
        tbs = int(be.chain(mcs).tbs_bits)
        txs = [Transmission(u, s, s * 500, s, 1, mcs, tbs, 0.0, np.ones((1, 48), np.complex64))
               for s in range(4) for u in (0, 1)]
        for tx in txs:
            be.submit(tx)
        be.resolve(txs[0])
        return {(tx.ue, tx.slot): tx.ber for tx in txs}

    old = LinkLevelBackend(sc, {0: 3, 1: 4}).neural_weights
    new = [w + np.float32(0.2) * np.sign(w) for w in old]
    mixed, ref_old, ref_new = run(new), run(), run(base=new)
    for (u, s), ber in mixed.items():
        want = ref_new if (u == 0 and s * 500 >= 1000) else ref_old
        assert ber == want[(u, s)], (u, s)
    assert any(ref_old[(0, s)] != ref_new[(0, s)] for s in (2, 3))
    with pytest.raises(ValueError, match="precede"):
        be = LinkLevelBackend(sc, {0: 3, 1: 4})
        be.schedule_neural_weights(0, new, 1000)
        be.schedule_neural_weights(0, new, 500)


@pytest.mark.parametrize("change, field, message", [
    ({"pool": "/nonexistent/pool"}, "models.receiver.adaptation.pool", "no deeprx dataset"),
    ({"pool": "pool2"}, "models.receiver.adaptation.pool", "the pool's grid has 2 PRBs, the scenario 4"),
    ({"samples": 50}, "models.receiver.adaptation.samples", "must be <= the pool's 12 samples"),
    ({"pool_size": 8, "hessian_subset": 9}, "models.receiver.adaptation.hessian_subset", "must be <= pool_size (8)"),
    ({"pool_size": 13}, "models.receiver.adaptation.pool_size", "the pool has 12 samples"),
    ({"variant": "newton"}, "models.receiver.adaptation.variant", "influence"),
    ({"min_genie_ber": 0}, "models.receiver.adaptation.min_genie_ber", "greater than 0"),
    ({"window": 3}, "models.receiver.adaptation.window", "unknown key"),
])
def test_adaptation_errors_name_the_field(files, change, field, message):
    if change.get("pool") == "pool2":
        change = {**change, "pool": files["pool2"]}
    with pytest.raises(ConfigError) as exc:
        check_files(validate_data(_doc(files, _adaptation(files, **change))))
    assert len(exc.value.errors) == 1
    assert exc.value.errors[0].startswith(field + ":") and message in exc.value.errors[0], exc.value.errors


def test_cli_validate_exits_2_with_the_field(tmp_path, files, capsys):
    import yaml

    from simulator.cli import main

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_doc(files, _adaptation(files, samples=50))))
    assert main(["validate", str(path)]) == 2
    assert "models.receiver.adaptation.samples: must be <= the pool's 12 samples" in capsys.readouterr().err


def test_two_runs_give_byte_identical_logs(tmp_path, files):
    """Compute times are modelled, never measured: the same scenario and seed give the same bytes."""
    from simulator.engine import Simulation

    for name in ("a", "b"):
        Simulation(validate_data(_doc(files, _adaptation(files))), tmp_path / name).run()
    for table in ("updates", "slots", "periods"):
        assert (tmp_path / "a" / f"{table}.parquet").read_bytes() == (tmp_path / "b" / f"{table}.parquet").read_bytes()
    assert len(pd.read_parquet(tmp_path / "a" / "updates.parquet")) == 1


def test_logs_do_not_depend_on_when_the_worker_thread_finishes(tmp_path, files, monkeypatch):
    """The fine-tuning runs in the worker thread while the loop goes on; computed in place instead
    (the loop stops for it at the trigger), or slowed down so the loop must wait for it, the logs are
    the same bytes."""
    import time
    from concurrent.futures import Future

    from models.deeprx.online import NetworkFineTuner
    from simulator.engine import Simulation
    from simulator.processes.adaptation import Adaptation, Offloaded

    Simulation(validate_data(_doc(files, _adaptation(files))), tmp_path / "worker").run()

    def in_place(self, compute, compute_us):
        done = Future()
        done.set_result(compute())
        return Offloaded(int(compute_us), done)

    with monkeypatch.context() as m:
        m.setattr(Adaptation, "offload", in_place)
        Simulation(validate_data(_doc(files, _adaptation(files))), tmp_path / "in_place").run()
    run = NetworkFineTuner.run

    def slow(self, *args):
        time.sleep(2.0)
        return run(self, *args)

    monkeypatch.setattr(NetworkFineTuner, "run", slow)
    Simulation(validate_data(_doc(files, _adaptation(files))), tmp_path / "slow").run()
    for table in ("updates", "slots", "periods"):
        ref = (tmp_path / "worker" / f"{table}.parquet").read_bytes()
        assert (tmp_path / "in_place" / f"{table}.parquet").read_bytes() == ref, table
        assert (tmp_path / "slow" / f"{table}.parquet").read_bytes() == ref, table
    assert len(pd.read_parquet(tmp_path / "worker" / "updates.parquet")) == 1
