"""Build a simulation from a scenario and run it: channels, PHY, processes, recorder, manifest."""
from __future__ import annotations

import json
import platform
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import simpy

from simulator.channel.fading import FadingChannel
from simulator.channel.snr import SnrModel
from simulator.link_adaptation.cqi import CqiMapper
from simulator.link_adaptation.olla import Olla
from simulator.link_adaptation.tables import bler_table
from simulator.loader import scenario_to_dict
from simulator.mobility import Mobility
from simulator.processes.csi_rs import csi_rs_process
from simulator.processes.feedback import FeedbackLink
from simulator.processes.mobility import mobility_process
from simulator.processes.pdsch import PdschStats, pdsch_process
from simulator.recorder import Recorder
from simulator.schema import Scenario
from simulator.ue import Ue, UeLink


@dataclass
class RunSummary:
    duration_s: float
    throughput_mbps: float
    first_tx_bler: float
    residual_bler: float
    mean_mcs: float
    transmissions: int
    wall_s: float
    setup_s: float         # channels, tables, PHY build
    slots_per_s: float     # UE-slots per second of the event loop (setup excluded)

    def format(self) -> str:
        return (f"throughput {self.throughput_mbps:.2f} Mbit/s per UE | first-tx BLER {self.first_tx_bler:.3f} | "
                f"residual BLER {self.residual_bler:.4f} | mean MCS {self.mean_mcs:.2f} | "
                f"{self.transmissions} transmissions in {self.wall_s:.1f} s wall "
                f"({self.setup_s:.1f} s setup, {self.slots_per_s:.0f} slots/s)")


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("airtune", "sionna-no-rt", "tensorflow", "simpy", "numpy", "pandas", "pyarrow", "pydantic"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parent.parent
        res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        return res.stdout.strip() or None if res.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def seeds_for(scenario: Scenario) -> dict[int, dict[str, np.random.SeedSequence]]:
    """Independent seed sequences per UE and per purpose, all spawned from the scenario seed."""
    root = np.random.SeedSequence(scenario.seed)
    per_ue = root.spawn(len(scenario.ues))
    out = {}
    for ue_cfg, ss in zip(scenario.ues, per_ue):
        channel, phy, model = ss.spawn(3)
        out[ue_cfg.id] = {"channel": channel, "phy": phy, "model": model}
    return out


def build_bler_predictor(scenario: Scenario, seed: np.random.SeedSequence):
    """One predictor per UE (each fine-tunes its own copy), or None."""
    cfg = scenario.models.bler_predictor
    if cfg is None:
        return None
    from models.registry import get_model

    return get_model(cfg.type).load(cfg.checkpoint, cfg.online.model_dump(), np.random.default_rng(seed))


def build_csi_feedback(scenario: Scenario, env, ue, feedback, rec, seed: np.random.SeedSequence, trace=None):
    """The UE's neural CSI feedback (``models.csi_codec``), or None."""
    cfg = scenario.models.csi_codec
    if cfg is None:
        return None
    from models.csi_codec.data import load_track
    from models.csi_codec.online import OnlineCsiCodec
    from simulator.processes.csi_feedback import CsiFeedback

    x, _distance_m, spacing_m = load_track(cfg.track)
    online = cfg.online
    # reports a decoder update serves: the CSI-RS occasions in one fine-tuning interval (eq. 21)
    speed = ue.mobility.speed_mps
    reports = online.interval_m / (speed * scenario.csi_rs.period_ms * 1e-3) if speed > 0 else 1.0
    codec = OnlineCsiCodec(cfg.checkpoint, online.model_dump(), np.random.default_rng(seed), reports)
    return CsiFeedback(env, ue, codec, x, spacing_m, feedback, rec, interval_m=online.interval_m,
                       samples=online.samples, trace=trace)


def build_receiver_adaptation(scenario: Scenario, env, ue_ids: list[int], phy, rec, rngs: dict, trace=None) -> list:
    """One ``ReceiverAdaptation`` per UE (``models.receiver.adaptation``), sharing the network-side pool
    and a downlink pipe; [] when the adaptation is off. Turns the backend's slot records on."""
    rx = scenario.models.receiver
    if rx is None or rx.adaptation is None:
        return []
    from models.deeprx.online import NetworkFineTuner, receiver_update_coder
    from simulator.processes.receiver_adaptation import ReceiverAdaptation

    ad = rx.adaptation
    k1 = scenario.harq.k1_slots
    phy.record_slots(ad.window_slots + 2 * k1 + 1)
    tuner = NetworkFineTuner(rx.checkpoint, ad.model_dump(), scenario.carrier.num_subcarriers)
    coder = receiver_update_coder(ad.update.model_dump())
    downlink = FeedbackLink(env, ad.downlink_kbps * 1e3, int(round(ad.downlink_delay_ms * 1000)),
                            deliver=lambda msg: None, trace=trace)
    slot_us = scenario.carrier.slot_us
    return [ReceiverAdaptation(env, u, phy, tuner, coder, downlink, rec, ad, slot_us=slot_us, k1_us=k1 * slot_us,
                               rng=rngs[u], trace=trace) for u in ue_ids]


def build_phy(scenario: Scenario, table, rngs: dict[int, np.random.Generator], tf_seeds: dict[int, int]):
    if scenario.phy.backend == "abstraction":
        from simulator.phy.abstraction import AbstractionBackend

        return AbstractionBackend(table, rngs)
    from simulator.phy.link_level import LinkLevelBackend

    return LinkLevelBackend(scenario, tf_seeds)


class Simulation:
    """One run of one scenario. ``run()`` writes the logs into ``out_dir`` and returns a summary."""

    def __init__(self, scenario: Scenario, out_dir: str | Path, *, trace: bool = False, progress: bool = False):
        self.scenario = scenario
        self.out_dir = Path(out_dir)
        self.trace: list | None = [] if trace else None
        self.progress = progress
        self.receiver_adaptations: list = []     # models.receiver.adaptation: one per UE (for inspection)

    def run(self) -> RunSummary:
        sc = self.scenario
        wall0 = time.monotonic()
        manifest = {
            "scenario": scenario_to_dict(sc), "seed": sc.seed, "versions": _versions(),
            "git_commit": _git_commit(), "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        rec = Recorder(self.out_dir, manifest, sc.output.flush_rows, sc.output.flush_s)
        try:
            summary = self._run(rec, wall0)
        except BaseException as exc:  # noqa: BLE001 - the partial log must be closed whatever happened
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            rec.close(status=status, error=f"{type(exc).__name__}: {exc}", wall_s=time.monotonic() - wall0)
            raise
        rec.close(status="complete", summary=asdict(summary), wall_s=summary.wall_s)
        return summary

    def _run(self, rec: Recorder, wall0: float) -> RunSummary:
        sc = self.scenario
        slot_us = sc.carrier.slot_us
        num_slots = sc.num_slots
        duration_us = sc.duration_us
        slot_t_s = np.arange(num_slots) * slot_us * 1e-6
        table = bler_table(sc.phy.mcs_table, sc.carrier.num_prbs, sc.phy.num_dmrs_symbols, sc.phy.bler_tables)
        seeds = seeds_for(sc)
        snr_model = SnrModel(sc.snr, sc.carrier)
        env = simpy.Environment()
        ues, links = [], []
        for ue_cfg in sc.ues:
            mob = Mobility(ue_cfg.mobility)
            dist = mob.distance_m(slot_t_s)
            step_m = mob.speed_mps * slot_us * 1e-6
            sample_of_slot = np.rint(dist / step_m).astype(np.int64) if step_m > 0 else np.zeros(num_slots, np.int64)
            ch_seed = int(seeds[ue_cfg.id]["channel"].generate_state(1)[0])
            channel = FadingChannel(sc.channel, sc.carrier, sc.phy.num_ue_antennas, mob.speed_mps,
                                    sample_of_slot, ch_seed)
            snr_db = snr_model.snr_db(slot_t_s, mob.position_m(slot_t_s)).astype(np.float64)
            ues.append(Ue(ue_cfg.id, mob, channel, snr_db, mob.position_m([0.0])[0]))
            olla_cfg = sc.link_adaptation.olla
            olla = Olla(table, olla_cfg.bler_target, olla_cfg.step_up_db, olla_cfg.offset_min_db,
                        olla_cfg.offset_max_db, olla_cfg.enabled)
            links.append(UeLink(ue_cfg.id, olla, CqiMapper(table, sc.phy.mcs_table),
                                sc.harq.num_processes, sc.harq.max_transmissions))
        phy_rngs = {u: np.random.default_rng(s["phy"]) for u, s in seeds.items()}
        tf_seeds = {u: int(s["phy"].generate_state(1)[0]) for u, s in seeds.items()}
        phy = build_phy(sc, table, phy_rngs, tf_seeds)

        by_ue = {link.ue: link for link in links}
        feedback = FeedbackLink(env, sc.feedback.capacity_kbps * 1e3, int(round(sc.feedback.delay_ms * 1000)),
                                deliver=lambda msg: by_ue[msg.ue].inbox.push(msg), trace=self.trace)
        env.process(mobility_process(env, ues, int(round(sc.mobility.update_ms * 1000)), duration_us))
        csi_feedback = []
        adaptation_rngs = {}
        for ue, link in zip(ues, links):
            model_ss = seeds[ue.id]["model"]
            predictor = build_bler_predictor(sc, model_ss)
            # children of the model seed, in this order: exploration, measurement error, CSI codec,
            # receiver adaptation
            explore_rng, error_rng = (np.random.default_rng(c) for c in model_ss.spawn(2))
            csi = build_csi_feedback(sc, env, ue, feedback, rec, model_ss.spawn(1)[0], self.trace)
            adaptation_rngs[ue.id] = np.random.default_rng(model_ss.spawn(1)[0])
            if csi is not None:
                csi_feedback.append(csi)
            env.process(csi_rs_process(
                env, ue, link, feedback, period_us=int(round(sc.csi_rs.period_ms * 1000)),
                report_delay_us=int(round(sc.csi_rs.report_delay_ms * 1000)), slot_us=slot_us,
                duration_us=duration_us, report_bits=sc.feedback.cqi_report_bits, rec=rec, trace=self.trace,
                predictor=predictor,
                backoff=sc.link_adaptation.backoff if sc.link_adaptation.backoff.kind != "none" else None,
                subcarrier_spacing_hz=sc.carrier.subcarrier_spacing_khz * 1e3, num_rbs=sc.carrier.num_prbs,
                num_dmrs_symbols=sc.phy.num_dmrs_symbols,
                explore_max_offset=sc.link_adaptation.cqi_exploration.max_offset, rng=explore_rng,
                sinr_error_db=(sc.csi_rs.sinr_error_bias_db, sc.csi_rs.sinr_error_std_db), error_rng=error_rng,
                csi=csi))
        self.receiver_adaptations = build_receiver_adaptation(sc, env, [ue.id for ue in ues], phy, rec,
                                                              adaptation_rngs, self.trace)
        for adaptation in self.receiver_adaptations:
            env.process(adaptation.process())
        stats = PdschStats()
        bar = _progress_bar(num_slots) if self.progress else None

        def on_slot(slot: int) -> None:
            if slot % 256 == 255:
                rec.maybe_flush()
                if bar is not None:
                    bar.update(256)

        receiver = sc.phy.receiver if sc.phy.backend == "link_level" else "abstraction"
        loop0 = time.monotonic()
        done = env.process(pdsch_process(env, ues, links, phy, slot_us=slot_us, k1_slots=sc.harq.k1_slots,
                                         num_slots=num_slots, receiver=receiver, rec=rec, stats=stats,
                                         trace=self.trace, on_slot=on_slot))
        env.run(until=done)
        for csi in csi_feedback:
            csi.finish()
        for adaptation in self.receiver_adaptations:
            adaptation.finish()
        if bar is not None:
            bar.close()
        now = time.monotonic()
        wall, loop = now - wall0, now - loop0
        return RunSummary(
            duration_s=sc.duration_s,
            throughput_mbps=stats.delivered_bits / sc.duration_s / 1e6 / len(ues),
            first_tx_bler=stats.first_tx_nack / max(stats.first_tx, 1),
            residual_bler=stats.tbs_failed / max(stats.tbs_finished, 1),
            mean_mcs=stats.mcs_sum / max(stats.first_tx, 1),
            transmissions=stats.transmissions, wall_s=wall, setup_s=wall - loop,
            slots_per_s=num_slots * len(ues) / max(loop, 1e-9))


def _progress_bar(total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="slot", delay=2.0, dynamic_ncols=True, leave=False)


def read_manifest(out_dir: Path) -> dict | None:
    p = Path(out_dir) / "manifest.json"
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return None
