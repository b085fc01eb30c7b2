"""Build a simulation from a scenario and run it: a short builder that wires UEs, links, models,
the PHY and the processes, then runs the event loop and writes the logs."""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import simpy

from models.registry import get_model
from simulator.channel.fading import FadingChannel
from simulator.channel.snr import SnrModel
from simulator.csi.codec_grid import CodecGrid
from simulator.csi.report import CsiReporter
from simulator.link import Link
from simulator.link_adaptation.cqi import CqiMapper
from simulator.link_adaptation.olla import Olla
from simulator.link_adaptation.tables import NUM_OFDM_SYMBOLS, bler_table
from simulator.manifest import new_manifest
from simulator.mobility import Mobility
from simulator.processes.adaptation import Adaptation
from simulator.processes.co_scheduling import CoScheduling
from simulator.processes.context import RunContext, UeContext
from simulator.processes.csi_feedback import CsiFeedback
from simulator.processes.csi_rs import CsiRsSetup, csi_rs_process
from simulator.processes.inbox import gnb_inbox_process, ue_inbox_process
from simulator.processes.pdsch import PdschStats, Scheduling, pdsch_process
from simulator.processes.receiver_adaptation import ReceiverAdaptation
from simulator.recorder import Recorder
from simulator.scheduler.build import build_scheduler
from simulator.scheduler.prb_groups import group_sizes_prbs
from simulator.schema import Scenario
from simulator.status import StatusLine
from simulator.summary import RunSummary
from simulator.ue import Ue, UeLink


def seeds_for(scenario: Scenario) -> dict[int, dict[str, np.random.SeedSequence]]:
    """Independent seed sequences per UE and per purpose, all spawned from the scenario seed."""
    root = np.random.SeedSequence(scenario.seed)
    per_ue = root.spawn(len(scenario.ues))
    out = {}
    for ue_cfg, ss in zip(scenario.ues, per_ue):
        channel, phy, model = ss.spawn(3)
        out[ue_cfg.id] = {"channel": channel, "phy": phy, "model": model}
    return out


def build_ue(sc: Scenario, ue_cfg, table, snr_model: SnrModel, channel_seed: np.random.SeedSequence) -> tuple[Ue, UeLink]:
    """The UE (mobility, fading channel, SNR of every slot) and the gNB's link state for it."""
    slot_us, num_slots = sc.carrier.slot_us, sc.num_slots
    slot_t_s = np.arange(num_slots) * slot_us * 1e-6
    mob = Mobility(ue_cfg.mobility)
    step_m = mob.speed_mps * slot_us * 1e-6
    sample_of_slot = (np.rint(mob.distance_m(slot_t_s) / step_m).astype(np.int64) if step_m > 0
                      else np.zeros(num_slots, np.int64))
    channel = FadingChannel(sc.channel, sc.carrier, sc.phy.num_ue_antennas, mob.speed_mps, sample_of_slot,
                            int(channel_seed.generate_state(1)[0]), gnb=sc.gnb,
                            start_position_m=mob.position_m([0.0])[0], velocity_mps=mob.velocity_mps([0.0])[0],
                            mobility=mob, ue_field=f"ues.{sc.ues.index(ue_cfg)}.mobility")
    snr_db = snr_model.snr_db(slot_t_s, mob.position_m(slot_t_s)).astype(np.float64)
    o = sc.link_adaptation.olla
    table2 = two_layer_table(sc)
    def new_olla():
        return Olla(table, o.bler_target, o.step_up_db, o.offset_min_db, o.offset_max_db, o.enabled, table2=table2)

    link = UeLink(ue_cfg.id, new_olla(), CqiMapper(table, sc.phy.mcs_table), sc.harq.num_processes,
                  sc.harq.max_transmissions, None if table2 is None else CqiMapper(table2, sc.phy.mcs_table))
    if sc.scheduler is not None and sc.scheduler.max_ues_per_prb > 1 and sc.scheduler.mu_mcs == "set_estimate":
        link.olla_mu = new_olla()
    return Ue(ue_cfg.id, mob, channel, snr_db), link


def two_layer_table(sc: Scenario):
    """The BLER table of two-layer transport blocks when reports may have rank 2, else None."""
    if sc.csi_rs.report.max_rank < 2:
        return None
    return bler_table(sc.phy.mcs_table, sc.carrier.num_prbs, sc.phy.num_dmrs_symbols, sc.phy.bler_tables, 2)


def build_phy(scenario: Scenario, table, rngs: dict[int, np.random.Generator], tf_seeds: dict[int, int]):
    if scenario.phy.backend == "abstraction":
        from simulator.phy.abstraction import AbstractionBackend

        return AbstractionBackend(table, rngs, two_layer_table(scenario))
    from simulator.phy.link_level import LinkLevelBackend   # imports TensorFlow and Sionna: only when used

    return LinkLevelBackend(scenario, tf_seeds)


def build_bler_predictor(scenario: Scenario, seed: np.random.SeedSequence):
    """One predictor per UE (each fine-tunes its own copy), or None."""
    cfg = scenario.models.bler_predictor
    if cfg is None:
        return None
    return get_model(cfg.type).load(cfg.checkpoint, cfg.online, np.random.default_rng(seed))


def build_csi_feedback(scenario: Scenario, run: RunContext, ue: Ue, uplink: Link,
                       seed: np.random.SeedSequence) -> CsiFeedback | None:
    """The UE's neural CSI feedback (``models.csi_codec``), or None."""
    cfg = scenario.models.csi_codec
    if cfg is None:
        return None
    codec_type = get_model(cfg.type)
    online = cfg.online
    # reports a decoder update serves: the CSI-RS occasions in one fine-tuning interval (eq. 21)
    speed = ue.mobility.speed_mps
    reports = online.interval_m / (speed * scenario.csi_rs.period_ms * 1e-3) if speed > 0 else 1.0
    codec = codec_type.online(cfg.checkpoint, online, np.random.default_rng(seed), reports)
    common = dict(interval_m=online.interval_m, samples=online.samples)
    rep = scenario.csi_rs.report
    if rep.kind == "neural":         # the UE's own measured channel on the codec's grid
        grid = CodecGrid(codec.config.num_ant, codec.config.num_sc, scenario.gnb.num_antennas,
                         scenario.carrier.num_prbs, rep.subband_prbs)
        return CsiFeedback(run, ue.id, codec, codec, uplink, grid=grid, subband_sc=12 * rep.subband_prbs,
                           max_rank=rep.max_rank, **common)
    x, _distance_m, spacing_m = codec_type.read_track(cfg.track)
    return CsiFeedback(run, ue.id, codec, codec, uplink, track_x=x, spacing_m=spacing_m, **common)


def build_receiver_adaptation(scenario: Scenario, run: RunContext, ue_ids: list[int], phy,
                              rngs: dict[int, np.random.Generator]) -> list[ReceiverAdaptation]:
    """One ``ReceiverAdaptation`` per UE (``models.receiver.adaptation``), sharing the network side's
    adapter and a downlink; [] when the adaptation is off. Turns the backend's slot records on."""
    rx = scenario.models.receiver
    if rx is None or rx.adaptation is None:
        return []
    ad = rx.adaptation
    k1 = scenario.harq.k1_slots
    phy.record_slots(ad.window_slots + 2 * k1 + 1)
    rx_type = get_model(rx.type)
    tuner = rx_type.adapter(rx.checkpoint, ad, scenario.carrier.num_subcarriers)
    coder = rx_type.update_coder(ad.update)
    downlink = Link(run.env, "downlink", ad.downlink_kbps * 1e3, int(round(ad.downlink_delay_ms * 1000)), ue_ids,
                    trace=run.trace)
    out = []
    for u in ue_ids:
        run.env.process(ue_inbox_process(run, downlink.inbox(u)))
        out.append(ReceiverAdaptation(run, u, phy, tuner, coder, downlink, ad, k1_us=k1 * run.slot_us,
                                      rng=rngs[u]))
    return out


def build_scheduling(sc: Scenario, contexts: list, table) -> Scheduling | None:
    """The scheduler of ``sc.scheduler`` on the carrier's PRB groups, with the BLER table of each
    allocation size (all built here, ~0.2 s each), or None (every UE on the whole carrier)."""
    if sc.scheduler is None:
        return None
    num_ues = len(contexts)
    p = sc.phy
    data_re_per_prb = 12 * (NUM_OFDM_SYMBOLS - p.num_dmrs_symbols)
    sizes = group_sizes_prbs(sc.carrier.num_prbs, sc.scheduler.prb_group_prbs)
    co = (CoScheduling(contexts, sizes, data_re_per_prb, sc.carrier.slot_us * 1e-6,
                       keep_channels=p.backend == "link_level")
          if sc.scheduler.max_ues_per_prb > 1 else None)
    scheduler = build_scheduler(sc.scheduler, num_ues, sc.carrier.num_prbs, None if co is None else co.set_rate_fn)

    def table_for(num_prbs: int, layers: int):
        if num_prbs == sc.carrier.num_prbs and layers == 1:
            return table
        return bler_table(p.mcs_table, num_prbs, p.num_dmrs_symbols, p.bler_tables, layers)

    # every allocation size a slot can give (sums of group sizes), built here rather than in the loop
    sums = {0}
    for size in sizes:
        sums |= {s + int(size) for s in sums}
    for num_prbs in sorted(sums - {0}):
        for layers in range(1, sc.csi_rs.report.max_rank + 1):
            table_for(num_prbs, layers)

    return Scheduling(scheduler, scheduler.group_sizes_prbs, table_for, data_re_per_prb, co)


class Simulation:
    """One run of one scenario. ``run()`` writes the logs into ``out_dir`` and returns a summary."""

    def __init__(self, scenario: Scenario, out_dir: str | Path, *, trace: bool = False, progress: bool = False):
        self.scenario = scenario
        self.out_dir = Path(out_dir)
        self.trace: list | None = [] if trace else None
        self.progress = progress
        self.receiver_adaptations: list[ReceiverAdaptation] = []     # one per UE when the adaptation is on
        self.phy = None          # the run's PHY backend (set by run)
        self._adaptation: Adaptation | None = None

    def run(self) -> RunSummary:
        sc = self.scenario
        wall0 = time.monotonic()
        rec = Recorder(self.out_dir, new_manifest(sc), sc.output.flush_rows, sc.output.flush_s)
        try:
            summary = self._run(rec, wall0)
            rec.close(status="complete", summary=asdict(summary), wall_s=summary.wall_s)
        except BaseException as exc:  # noqa: BLE001 - the partial log must be closed whatever happened
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            rec.close(status=status, error=f"{type(exc).__name__}: {exc}", wall_s=time.monotonic() - wall0)
            raise
        finally:
            if self._adaptation is not None:
                self._adaptation.close()
            if self.phy is not None:
                self.phy.close()
        return summary

    def _run(self, rec: Recorder, wall0: float) -> RunSummary:
        sc = self.scenario
        say = StatusLine(self.progress)
        env = simpy.Environment()
        self._adaptation = Adaptation(env, rec, self.trace)
        run = RunContext(env, rec, self._adaptation, sc.carrier.slot_us, sc.duration_us, self.trace)
        say("building the BLER tables")
        table = bler_table(sc.phy.mcs_table, sc.carrier.num_prbs, sc.phy.num_dmrs_symbols, sc.phy.bler_tables)
        seeds = seeds_for(sc)
        say(f"building the channels of {len(sc.ues)} UE(s) ({sc.channel.model}, {sc.duration_s:g} s)")
        snr_model = SnrModel(sc.snr, sc.carrier, sc.gnb)
        built = [build_ue(sc, u, table, snr_model, seeds[u.id]["channel"]) for u in sc.ues]
        phy_rngs = {u: np.random.default_rng(s["phy"]) for u, s in seeds.items()}
        tf_seeds = {u: int(s["phy"].generate_state(1)[0]) for u, s in seeds.items()}
        say(f"building the {sc.phy.backend} PHY")
        phy = self.phy = build_phy(sc, table, phy_rngs, tf_seeds)
        ue_ids = [ue.id for ue, _ in built]
        uplink = Link(env, "feedback", sc.feedback.capacity_kbps * 1e3, int(round(sc.feedback.delay_ms * 1000)),
                      ue_ids, trace=self.trace)
        setup = CsiRsSetup.of(sc)
        reporter = CsiReporter(sc.csi_rs.report, sc.gnb, sc.carrier.num_prbs)
        contexts, adaptation_rngs = [], {}
        if sc.models.bler_predictor is not None or sc.models.csi_codec is not None:
            say("loading the models of every UE")
        for ue, link in built:
            model_ss = seeds[ue.id]["model"]
            # children of the model seed, in this order: exploration, measurement error, CSI codec,
            # receiver adaptation
            explore_rng, error_rng = (np.random.default_rng(c) for c in model_ss.spawn(2))
            ctx = UeContext(ue, link, uplink, reporter, predictor=build_bler_predictor(sc, model_ss),
                            model_updates=simpy.Store(env))
            ctx.csi = build_csi_feedback(sc, run, ue, uplink, model_ss.spawn(1)[0])
            if sc.csi_rs.report.kind == "neural":
                ctx.reporter = ctx.csi
            adaptation_rngs[ue.id] = np.random.default_rng(model_ss.spawn(1)[0])
            env.process(csi_rs_process(run, ctx, setup, explore_rng, error_rng))
            env.process(gnb_inbox_process(run, ctx))
            contexts.append(ctx)
        self.receiver_adaptations = build_receiver_adaptation(sc, run, ue_ids, phy, adaptation_rngs)
        for adaptation in self.receiver_adaptations:
            env.process(adaptation.process())
        stats = PdschStats()
        if sc.scheduler is not None:
            say("building the scheduler's BLER tables (one per allocation size)")
        scheduling = build_scheduling(sc, contexts, table)
        say.done()
        bar = _progress_bar(sc.num_slots) if self.progress else None
        compiling = []
        if bar is not None and hasattr(phy, "on_new_program"):      # link_level: say why the bar waits

            def on_new_program(what: str) -> None:
                compiling.append(what)
                bar.set_postfix_str(what[:100], refresh=True)

            phy.on_new_program = on_new_program
        step = 256 if sc.phy.backend == "abstraction" else 4     # bar updates: link_level runs ~10-100 slots/s

        def on_slot(slot: int) -> None:
            if slot % 256 == 255:
                rec.maybe_flush()
            if bar is not None and slot % step == step - 1:
                if compiling:
                    compiling.clear()
                    bar.set_postfix_str("", refresh=False)
                bar.update(slot + 1 - bar.n)

        receiver = sc.phy.receiver if sc.phy.backend == "link_level" else "abstraction"
        loop0 = time.monotonic()
        done = env.process(pdsch_process(run, contexts, phy, k1_slots=sc.harq.k1_slots, num_slots=sc.num_slots,
                                         receiver=receiver, stats=stats, on_slot=on_slot, scheduling=scheduling))
        env.run(until=done)
        for ctx in contexts:
            if ctx.csi is not None:
                ctx.csi.finish()
        run.adaptation.finish()
        if bar is not None:
            bar.close()
        now = time.monotonic()
        return RunSummary.of(stats, sc, len(contexts), wall_s=now - wall0, loop_s=now - loop0)


def _progress_bar(total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="slot", delay=2.0, dynamic_ncols=True, leave=False)
