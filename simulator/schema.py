"""The scenario schema: pydantic models, unknown keys forbidden, units in field names.

Every field has a unit in its name (``_ms``, ``_db``, ``_kmh``, ...) and a default where one
makes sense. Cross-field rules (a period that is not a whole number of slots, a PRB count the
numerology cannot carry) are checked here too, so every error names a field. Each model's online
settings are defined beside the model (``models/<model>/config.py``) and composed here. Nothing
here opens a file: the checkpoints, tracks and pools a scenario names are checked by
``simulator.validation``.
"""
from __future__ import annotations

import math
from typing import Annotated, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from models.config import FieldError, ScenarioPath
from models.csi_codec.config import CsiOnlineConfig
from models.deeprx.config import ReceiverAdaptationConfig
from models.ff_bler.config import LightTuneConfig
from simulator.channel.ray_tracing_config import RayTracedChannelConfig
from simulator.scheduler.config import SchedulerConfig, check_fits
from simulator.scheduler.prb_groups import group_sizes_prbs

# Maximum transmission bandwidth configuration N_RB per numerology (38.101-1 Table 5.3.2-1
# for FR1 at 15/30/60 kHz, 38.101-2 Table 5.3.2-1 for FR2 at 120 kHz).
MAX_PRBS_PER_SCS_KHZ = {15: 270, 30: 273, 60: 135, 120: 264}

TDL_PROFILES = ("A", "B", "C", "D", "E", "A30", "B100", "C300")
CDL_PROFILES = ("A", "B", "C", "D", "E")
# Profiles whose delay spread is fixed by 38.901 (Sionna rejects any other value).
FIXED_DELAY_SPREAD_NS = {"A30": 30.0, "B100": 100.0, "C300": 300.0}
# 38.901 system-level models and their minimum BS-UT distance in the ground plane (Table 7.2-1)
SYSTEM_LEVEL_MIN_DISTANCE_2D_M = {"umi": 10.0, "uma": 35.0}


# a point in the scenario's frame, metres: within 1,000 km of the origin (no coordinate overflows a distance)
Coordinate_m = Annotated[float, Field(ge=-1e6, le=1e6)]
Position_m = tuple[Coordinate_m, Coordinate_m, Coordinate_m]

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class CarrierConfig(_Strict):
    subcarrier_spacing_khz: Literal[15, 30, 60, 120] = Field(30, description="Subcarrier spacing (numerology)")
    num_prbs: int = Field(52, ge=1, description="Bandwidth in physical resource blocks (12 subcarriers each)")
    carrier_frequency_ghz: float = Field(3.5, gt=0, le=100, description="Carrier frequency")

    @model_validator(mode="after")
    def _prbs_fit_numerology(self) -> "CarrierConfig":
        cap = MAX_PRBS_PER_SCS_KHZ[self.subcarrier_spacing_khz]
        if self.num_prbs > cap:
            raise FieldError("num_prbs", f"must be <= {cap} at {self.subcarrier_spacing_khz} kHz "
                                         f"subcarrier spacing (got {self.num_prbs})")
        return self

    @property
    def slot_us(self) -> int:
        """Slot duration in integer microseconds (14 OFDM symbols)."""
        return 1000 * 15 // self.subcarrier_spacing_khz

    @property
    def num_subcarriers(self) -> int:
        return 12 * self.num_prbs


class CsiReportConfig(_Strict):
    kind: Literal["ideal", "type1", "etype2", "neural"] = Field(
        "ideal", description="What the UE reports besides the CQI and the gNB precodes with: ideal (the "
                             "measured channel, whose per-subband dominant eigenvector the gNB uses; carried "
                             "free beyond the CQI bits) or type1 (38.214 Type I single-panel PMI, codebookMode "
                             "1, rank 1; its 38.212 bits on the feedback link) or etype2 (38.214 Rel-16 enhanced "
                             "Type II PMI at param_combination; its 38.212 bits) or neural (models.csi_codec compresses "
                             "the measured channel, its coded bits on the feedback link; the gNB precodes with "
                             "the dominant eigenvectors of what it decodes; needs a gNB array). With one gNB "
                             "antenna ideal and type1 are the CQI alone")
    subband_prbs: int = Field(4, ge=1, le=32, description="PRBs per precoding subband (the PMI's i2 and the "
                                                          "ideal precoder are per subband)")
    subband_pmi: bool = Field(True, description="type1: one i2 per subband (else one wideband i2)")
    param_combination: int = Field(4, ge=1, le=8, description="etype2: 38.214 paramCombination-r16 (Table "
                                                               "5.2.2.2.5-1: L beams 2/2/4/4/4/4/6/6, p_v 1/4 but 1/2 "
                                                               "for 6, beta 1/4, 1/2, 1/4, 1/2, 3/4, 1/2, 1/2, 3/4)")
    max_rank: Literal[1, 2] = Field(1, description="Most layers the UE may report (2 needs two UE antennas and a "
                                                   "gNB array; not with the neural receiver): the rank with the most mutual "
                                                   "information at the measured SNR is reported (type1: its RI bits)")


class CsiRsConfig(_Strict):
    period_ms: float = Field(20.0, gt=0, le=10000, description="CSI-RS periodicity")
    report_delay_ms: float = Field(2.0, ge=0, le=10000, description="UE processing time from CSI-RS to CQI report")
    report: CsiReportConfig = Field(default_factory=CsiReportConfig)
    sinr_error_std_db: float = Field(0.0, ge=0, le=20, description="UE measurement error: std of a Gaussian "
                                                                   "error (dB) on the SNR measured at each "
                                                                   "occasion, which drives the CQI and the BLER "
                                                                   "features; 0 = perfect measurement")
    sinr_error_bias_db: float = Field(0.0, ge=-20, le=20, description="Constant part of that error (dB); > 0 "
                                                                       "reports optimistic CQIs")


class GnbConfig(_Strict):
    antenna_rows: int = Field(1, ge=1, le=16, description="Uniform planar array: rows (vertical)")
    antenna_cols: int = Field(1, ge=1, le=32, description="Uniform planar array: columns (horizontal)")
    polarization: Literal["single", "dual"] = Field("single", description="single (V) or dual (cross-polarised: "
                                                                           "two ports per element)")
    element_spacing_wavelengths: float = Field(0.5, gt=0, le=10, description="Element spacing, both directions")
    position_m: Position_m = Field((0.0, 0.0, 10.0), description="Array position (its height is "
                                                                                 "the 38.901 BS height)")
    tx_power_dbm: float = Field(30.0, ge=-100, le=100, description="Transmit power over the carrier (snr.model: pathloss)")

    @property
    def num_antennas(self) -> int:
        """Transmit ports: rows x cols, twice that when dual-polarised (Sionna's order: rows fastest
        within a polarisation, then the second polarisation; 38.214's port order with N1 = cols, N2 = rows)."""
        return self.antenna_rows * self.antenna_cols * (2 if self.polarization == "dual" else 1)


class HarqConfig(_Strict):
    max_transmissions: int = Field(4, ge=1, le=16, description="Transmissions per transport block, first included")
    k1_slots: int = Field(2, ge=1, le=15, description="Slots from PDSCH to its ACK/NACK at the gNB")
    num_processes: int = Field(16, ge=1, le=32, description="HARQ processes per UE")


class PhyConfig(_Strict):
    backend: Literal["abstraction", "link_level"] = Field("abstraction", description="PHY model")
    receiver: Literal["lmmse", "genie_lmmse", "neural"] = Field(
        "lmmse", description="lmmse: LS channel estimate on DMRS + LMMSE; genie_lmmse: perfect CSI + LMMSE; "
                             "neural: models.receiver (link_level only; genie and LS+LMMSE BER logged alongside)")
    mcs_table: Literal[1, 2] = Field(1, description="38.214 MCS table (1: up to 64QAM, 2: up to 256QAM); "
                                                    "the CQI table with the same index is used")
    num_ue_antennas: Literal[1, 2, 4] = Field(1, description="UE receive antennas (receive diversity)")
    num_dmrs_symbols: Literal[1, 2, 3, 4] = Field(2, description="DMRS symbols per slot (1 front-loaded + additional)")
    bler_tables: Literal["airtune", "sionna"] = Field(
        "airtune", description="AWGN BLER tables of the abstraction, CQI and OLLA: airtune = Sionna's with PDSCH "
                               "table 1 re-simulated on a fine grid (simulator/link_adaptation/calibrate.py); "
                               "sionna = as shipped")
    link_level_batch: int | None = Field(
        None, ge=1, le=65536, description="link_level: XLA batch the transport blocks of one MCS pending when feedback is "
                                "due are padded to (larger groups: next power of two). Default: num_ues * "
                                "harq.k1_slots, the most that can be pending, so each MCS compiles once")
    compile_ahead: int = Field(
        4, ge=0, le=28, description="link_level: how many MCS on either side of the last one used a background "
                                    "thread compiles the chain programs of ahead of need, so that a run rarely "
                                    "waits for an XLA compilation when link adaptation changes the MCS (0: off; "
                                    "results are the same either way)")


class ChannelConfig(_Strict):
    model: Literal["tdl", "cdl", "umi", "uma", "ray_traced"] = Field(
        "tdl", description="38.901 fading model: tdl | cdl (link-level profiles) or umi | uma (system-level "
                           "urban micro/macro cell from the gNB's and the UE's geometry at t = 0, the UE >= 10 m "
                           "(umi) / 35 m (uma) from the gNB; small-scale fading only, the SNR still comes "
                           "from snr:) or ray_traced (a Sionna RT scene traced along each UE's drive, the gNB "
                           "at gnb.position_m; settings under ray_traced; its power divided by its mean over "
                           "the drive, the SNR from snr: fixed | schedule)")
    profile: str = Field("B", description="TDL: A B C D E A30 B100 C300; CDL: A B C D E (tdl/cdl only)",
                         json_schema_extra={"enum": list(TDL_PROFILES)})     # CDL's are a subset: checked below
    delay_spread_ns: float = Field(100.0, gt=0, le=10000, description="RMS delay spread (tdl/cdl; umi/uma "
                                                                      "draw theirs, ray_traced has the scene's)")
    num_sinusoids: int = Field(20, ge=4, le=256, description="TDL sum-of-sinusoids count (tdl only)")
    los: bool | None = Field(None, description="umi/uma: line of sight (true) or not (false); null: drawn with "
                                               "38.901's LoS probability at the UE's start distance")
    ray_traced: RayTracedChannelConfig | None = Field(None, description="model ray_traced: the scene, where the "
                                                                        "gNB faces, the path solver and the "
                                                                        "anchor spacing")

    @model_validator(mode="after")
    def _known_profile(self) -> "ChannelConfig":
        if self.model == "ray_traced":
            if self.ray_traced is None:
                raise FieldError("ray_traced", "model ray_traced needs its settings ({scene: ..., ...})")
            for name in ("profile", "delay_spread_ns", "num_sinusoids", "los"):
                if self._given(name):
                    raise FieldError(name, "does not apply to ray_traced (the scene's paths set the delays, "
                                           "angles and line of sight); leave it out")
            return self
        if self.ray_traced is not None:
            raise FieldError("ray_traced", f"applies to model ray_traced only (model is {self.model}); leave it out")
        if self.model in SYSTEM_LEVEL_MIN_DISTANCE_2D_M:
            for name in ("profile", "delay_spread_ns", "num_sinusoids"):
                if self._given(name):
                    raise FieldError(name, f"does not apply to {self.model} (its clusters and delay spread "
                                           f"are drawn from the geometry); leave it out")
            return self
        if self._given("los"):
            raise FieldError("los", f"applies to umi/uma only (model is {self.model}); leave it out")
        valid = TDL_PROFILES if self.model == "tdl" else CDL_PROFILES
        if self.profile not in valid:
            raise FieldError("profile", f"unknown {self.model.upper()} profile {self.profile!r}; "
                                        f"valid: {', '.join(valid)}")
        fixed = FIXED_DELAY_SPREAD_NS.get(self.profile) if self.model == "tdl" else None
        if fixed is not None and self._given("delay_spread_ns") and self.delay_spread_ns != fixed:
            raise FieldError("delay_spread_ns", f"TDL-{self.profile} has a fixed delay spread of {fixed} ns "
                                                f"(got {self.delay_spread_ns})")
        return self

    def _given(self, name: str) -> bool:
        """Set to something other than its default (a scenario written back out, as a sweep point or a
        manifest is, carries every field at its default: that is not setting it)."""
        return name in self.model_fields_set and getattr(self, name) != type(self).model_fields[name].default

    @property
    def delay_spread_s(self) -> float:
        fixed = FIXED_DELAY_SPREAD_NS.get(self.profile) if self.model == "tdl" else None
        return (fixed if fixed is not None else self.delay_spread_ns) * 1e-9


class FixedSnr(_Strict):
    """Constant average SNR."""

    model: Literal["fixed"]
    snr_db: float = Field(15.0, ge=-30, le=60, description="Average per-resource-element SNR")


class ScheduleSnr(_Strict):
    """Piecewise-linear SNR over time."""

    model: Literal["schedule"]
    points: list[tuple[float, float]] = Field(
        ..., min_length=1, description="Piecewise-linear [t_s, snr_db] pairs, t_s strictly increasing; "
                                        "held constant before the first and after the last point")

    @field_validator("points")
    @classmethod
    def _time_ordered(cls, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        for i in range(1, len(points)):
            if points[i][0] <= points[i - 1][0]:
                raise ValueError(f"t_s must be strictly increasing: point {i} has t_s={points[i][0]} "
                                 f"after t_s={points[i - 1][0]}")
        if points[0][0] < 0:
            raise ValueError(f"t_s must be >= 0 (got {points[0][0]})")
        return points


class PathlossSnr(_Strict):
    """38.901 pathloss from the UE's distance to the gNB (no shadowing)."""

    model: Literal["pathloss"]
    scenario: Literal["umi", "uma"] = Field("umi", description="38.901 pathloss scenario")
    los: bool = Field(True, description="Line of sight (LOS or NLOS pathloss formula)")
    noise_figure_db: float = Field(7.0, ge=0, le=50, description="UE noise figure")

    @model_validator(mode="before")
    @classmethod
    def _moved_to_gnb(cls, data):
        for old, new in (("gnb_position_m", "position_m"), ("tx_power_dbm", "tx_power_dbm")):
            if isinstance(data, dict) and old in data:
                raise FieldError(old, f"the gNB's position and power are set under gnb: (gnb.{new})")
        return data


SnrConfig = Annotated[Union[FixedSnr, ScheduleSnr, PathlossSnr], Field(discriminator="model")]


class StaticMobility(_Strict):
    """The UE stands still (frozen fading)."""

    model: Literal["static"]
    position_m: Position_m = Field((50.0, 0.0, 1.5), description="UE position")


class LinearMobility(_Strict):
    """Straight line at constant speed."""

    model: Literal["linear"]
    speed_kmh: float = Field(3.0, ge=0, le=500, description="UE speed (sets the channel Doppler)")
    start_m: Position_m = Field((50.0, 0.0, 1.5), description="Position at t = 0")
    heading_deg: float = Field(0.0, ge=-3600, le=3600, description="Direction of travel, degrees from the x axis")


class WaypointMobility(_Strict):
    """Constant speed along a polyline; stops at the last waypoint."""

    model: Literal["waypoints"]
    speed_kmh: float = Field(3.0, gt=0, le=500, description="Constant speed along the path")
    waypoints_m: list[Position_m] = Field(
        ..., min_length=2, description="Path corners; the UE stops at the last one")


MobilityConfig = Annotated[Union[StaticMobility, LinearMobility, WaypointMobility], Field(discriminator="model")]


class UeConfig(_Strict):
    id: int = Field(..., ge=0, le=2 ** 31 - 1, description="UE identifier (unique)")
    mobility: MobilityConfig = Field(default_factory=lambda: StaticMobility(model="static"),
                                     description="static | linear | waypoints")


class OllaConfig(_Strict):
    bler_target: float = Field(0.1, gt=0, lt=1, description="First-transmission BLER target")
    step_up_db: float = Field(0.5, gt=0, le=10, description="Offset increase on NACK; "
                                                           "step_down = step_up * target / (1 - target)")
    offset_min_db: float = Field(-20.0, ge=-100, le=100, description="Lower clamp of the SINR offset")
    offset_max_db: float = Field(20.0, ge=-100, le=100, description="Upper clamp of the SINR offset")
    enabled: bool = Field(True, description="false: MCS straight from the reported CQI (no outer loop)")


class BackoffConfig(_Strict):
    kind: Literal["none", "cqi_tune"] = Field("none", description="CQI backoff on top of the table CQI: "
                                                                 "cqi_tune needs models.bler_predictor")
    tau_bler: float = Field(0.9, gt=0, le=1, description="CQI-Tune: back off while predicted BLER >= this")
    cqi_min: int | None = Field(None, ge=1, le=15, description="CQI-Tune floor; default max(CQI_table - 1, 1)")


class CqiExplorationConfig(_Strict):
    max_offset: int = Field(0, ge=0, le=14, description="Data collection: report CQI_table + an offset drawn "
                                                        "uniformly from [-max_offset, max_offset] (clipped to "
                                                        "1..15), so the observed BLER covers more than the OLLA "
                                                        "target (use with olla.enabled: false); 0 = off. Logs the BLER features per period")


class LinkAdaptationConfig(_Strict):
    olla: OllaConfig = Field(default_factory=OllaConfig)
    backoff: BackoffConfig = Field(default_factory=BackoffConfig)
    cqi_exploration: CqiExplorationConfig = Field(default_factory=CqiExplorationConfig)


class BlerPredictorConfig(_Strict):
    type: str = Field("ff_bler", description="registered model type")
    checkpoint: ScenarioPath | None = Field(None, description="checkpoint JSON; null: untrained weights (tests only)")
    online: LightTuneConfig = Field(default_factory=LightTuneConfig)

    @field_validator("type")
    @classmethod
    def _registered(cls, name: str) -> str:
        from models.registry import get_model, registered

        def fits(n: str) -> bool:   # a model of this slot has the BlerPredictor protocol's methods
            return n in registered() and all(hasattr(get_model(n), m) for m in ("predict", "observe", "load"))

        if not fits(name):
            valid = [n for n in registered() if fits(n)]
            raise ValueError(f"unknown model type {name!r}; valid: {', '.join(valid)}")
        return name

    @model_validator(mode="after")
    def _online_supported(self):
        from models.registry import get_model

        if self.online.policy != "none" and not getattr(get_model(self.type), "supports_online", True):
            raise FieldError("online.policy", f"{self.type} is an offline model; use policy: none")
        return self


class CsiCodecConfig(_Strict):
    type: Literal["conv_csi"] = Field("conv_csi", description="Neural CSI compressor (seeds/002)")
    checkpoint: ScenarioPath = Field(..., description="conv_csi checkpoint JSON (`airtune train conv_csi` or `python -m models.csi_codec.train`)")
    track: ScenarioPath | None = Field(None, description="One gNB antenna only (the study mode of seeds/002): a CSI track "
                                                "dataset (`airtune data csi` with a track source) whose sample at the "
                                                "UE's distance travelled is compressed at each CSI-RS occasion, scored "
                                                "and used for nothing else. With csi_rs.report.kind: neural the codec "
                                                "compresses the UE's measured channel instead: leave it out")
    online: CsiOnlineConfig = Field(default_factory=CsiOnlineConfig)


class ReceiverConfig(_Strict):
    type: Literal["deeprx"] = Field("deeprx", description="Neural receiver (seeds/000): LLRs from the received grid")
    checkpoint: ScenarioPath = Field(..., description="deeprx checkpoint JSON (`airtune train deeprx`); its grid (receive "
                                             "antennas, and PRBs/DMRS symbols when recorded) must fit the scenario")
    adaptation: ReceiverAdaptationConfig | None = Field(
        None, description="receiver_adaptation process: targeted fine-tuning on the network side when the BER gap "
                          "to genie grows, the coded update sent on a downlink pipe; null: the checkpoint throughout")


class ModelsConfig(_Strict):
    bler_predictor: BlerPredictorConfig | None = Field(None, description="UE-side BLER predictor (LightTune)")
    csi_codec: CsiCodecConfig | None = Field(None, description="UE-side neural CSI compressor with online "
                                                               "fine-tuning; its reports travel on the feedback link")
    receiver: ReceiverConfig | None = Field(None, description="UE-side neural receiver for phy.receiver: neural")


class FeedbackConfig(_Strict):
    capacity_kbps: float = Field(1000.0, ge=0.001, le=1e7, description="Uplink feedback pipe capacity (FIFO), 1 bit/s "
                                                                    "to 10 Gbit/s (a report's time on the link "
                                                                    "is counted in whole microseconds)")
    delay_ms: float = Field(0.0, ge=0, le=1e6, description="Propagation/processing delay after serialisation")
    cqi_report_bits: int = Field(4, ge=1, le=64, description="Size of one CQI report")


def _not_blank(v: str) -> str:
    if not v.strip():
        raise ValueError("is blank; give a folder (e.g. results/my_run)")
    return v


FolderName = Annotated[str, AfterValidator(_not_blank)]     # an output folder: a blank one is the working directory


class OutputConfig(_Strict):
    dir: FolderName = Field("results/run", min_length=1, description="Output folder (relative to the working directory); "
                                                               "not empty")
    flush_rows: int = Field(20000, ge=1, le=10_000_000, description="Rows buffered per log before a Parquet part is written")
    flush_s: float = Field(5.0, gt=0, le=1e6, description="Wall-clock seconds between flushes of buffered rows")


class Scenario(_Strict):
    name: str = Field(..., min_length=1, description="Scenario name")
    seed: int = Field(0, ge=0, le=2 ** 63 - 1, description="Root seed; every RNG is spawned from it")
    duration_s: float = Field(..., gt=0, le=36000, description="Simulated time")
    carrier: CarrierConfig = Field(default_factory=CarrierConfig)
    csi_rs: CsiRsConfig = Field(default_factory=CsiRsConfig)
    harq: HarqConfig = Field(default_factory=HarqConfig)
    gnb: GnbConfig = Field(default_factory=GnbConfig)
    phy: PhyConfig = Field(default_factory=PhyConfig)
    channel: ChannelConfig = Field(default_factory=ChannelConfig)
    snr: SnrConfig = Field(default_factory=lambda: FixedSnr(model="fixed"),
                           description="Average SNR model: fixed | schedule | pathloss")
    ues: list[UeConfig] = Field(..., min_length=1, description="UEs, each an independent full-buffer link")
    link_adaptation: LinkAdaptationConfig = Field(default_factory=LinkAdaptationConfig)
    feedback: FeedbackConfig = Field(default_factory=FeedbackConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    scheduler: SchedulerConfig | None = Field(
        None, description="Share the carrier: a scheduler allocates PRB groups to the UEs every slot (pf | "
                          "round_robin; max_ues_per_prb > 1: MU-MIMO with regularised zero-forcing, groups as "
                          "wide as the precoding subbands; link_level: groups of one size, a chain per MCS and "
                          "allocation size). null: every UE on the whole carrier every slot, N independent links")
    output: OutputConfig = Field(default_factory=OutputConfig)

    @model_validator(mode="after")
    def _cross_field(self) -> "Scenario":
        slot_us = self.carrier.slot_us
        for path, value_ms in (("csi_rs.period_ms", self.csi_rs.period_ms),
                               ("csi_rs.report_delay_ms", self.csi_rs.report_delay_ms)):
            us = value_ms * 1000.0
            if abs(us - round(us)) > 1e-6 or (path != "csi_rs.report_delay_ms" and round(us) % slot_us):
                raise FieldError(path, f"must be a whole number of {slot_us / 1000} ms slots "
                                       f"at {self.carrier.subcarrier_spacing_khz} kHz (got {value_ms})")
        if self.csi_rs.report_delay_ms >= self.csi_rs.period_ms:
            raise FieldError("csi_rs.report_delay_ms", f"must be < csi_rs.period_ms "
                                                       f"({self.csi_rs.period_ms}) (got {self.csi_rs.report_delay_ms})")
        if round(self.duration_s * 1e6) < slot_us:
            raise FieldError("duration_s", f"must cover at least one slot ({slot_us} us)")
        ids = [ue.id for ue in self.ues]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise FieldError("ues", f"UE ids must be unique (repeated: {dup})")
        if self.link_adaptation.backoff.kind == "cqi_tune" and self.models.bler_predictor is None:
            raise FieldError("link_adaptation.backoff.kind", "cqi_tune needs models.bler_predictor")
        self._check_receiver()
        self._check_report()
        self._check_scheduler()
        self._check_system_level_start()
        if self.channel.model == "ray_traced" and self.snr.model == "pathloss":
            raise FieldError("snr.model", "pathloss does not go with channel.model ray_traced, whose channel keeps "
                                          "the scene's own pathloss around its mean over the drive (38.901's would "
                                          "count the distance trend twice): use fixed or schedule, the SNR at the "
                                          "drive's mean power")
        if self.link_adaptation.olla.offset_min_db > self.link_adaptation.olla.offset_max_db:
            raise FieldError("link_adaptation.olla.offset_min_db", "must be <= offset_max_db")
        return self

    def _check_report(self) -> None:
        g, rep = self.gnb, self.csi_rs.report
        if rep.max_rank == 2:
            if self.phy.num_ue_antennas < 2 or g.num_antennas < 2:
                raise FieldError("csi_rs.report.max_rank", f"2 layers need two UE antennas and a gNB array (phy."
                                                           f"num_ue_antennas {self.phy.num_ue_antennas}, gnb ports "
                                                           f"{g.num_antennas})")
            if self.phy.receiver == "neural":
                raise FieldError("csi_rs.report.max_rank", "the neural receiver is one-layer; 2 layers need "
                                                           "phy.receiver lmmse or genie_lmmse")
            if self.models.bler_predictor is not None or self.link_adaptation.cqi_exploration.max_offset:
                raise FieldError("csi_rs.report.max_rank", "the BLER predictor's features are one-layer ones; use "
                                                           "max_rank 1 with models.bler_predictor or "
                                                           "link_adaptation.cqi_exploration")
        if rep.kind == "type1" and g.num_antennas > 1:
            from simulator.csi.type1 import codebook_config

            try:
                codebook_config(g.antenna_cols, g.antenna_rows, g.polarization == "dual", field="gnb")
            except ValueError as exc:
                raise FieldError("gnb", f"{g.antenna_rows} rows x {g.antenna_cols} cols ({g.polarization}) "
                                        f"has no Type I codebook (csi_rs.report.kind: type1; N1 = antenna_cols, "
                                        f"N2 = antenna_rows): " + str(exc).removeprefix("gnb: ")) from None
        if rep.kind == "etype2":
            from simulator.csi.etype2 import etype2_config
            from simulator.csi.type1 import codebook_config

            if g.num_antennas == 1:
                raise FieldError("csi_rs.report.kind", "etype2 needs a gNB array (gnb.antenna_rows x antenna_cols > 1)")
            try:
                cb = codebook_config(g.antenna_cols, g.antenna_rows, g.polarization == "dual", field="gnb")
            except ValueError as exc:
                raise FieldError("gnb", f"{g.antenna_rows} rows x {g.antenna_cols} cols ({g.polarization}) "
                                        f"has no eType II codebook (csi_rs.report.kind: etype2; N1 = antenna_cols, "
                                        f"N2 = antenna_rows): " + str(exc).removeprefix("gnb: ")) from None
            try:
                etype2_config(cb, rep.param_combination, -(-self.carrier.num_prbs // rep.subband_prbs))
            except ValueError as exc:
                path, _, msg = str(exc).partition(": ")
                raise FieldError(path, msg) from None
        codec = self.models.csi_codec
        if rep.kind == "neural":
            if g.num_antennas == 1:
                raise FieldError("csi_rs.report.kind", "neural reports need a gNB array (gnb.antenna_rows x "
                                                       "antenna_cols > 1): with one antenna there is nothing to precode")
            if codec is None:
                raise FieldError("csi_rs.report.kind", "neural needs models.csi_codec ({type: conv_csi, "
                                                       "checkpoint: ...})")
            if codec.track is not None:
                raise FieldError("models.csi_codec.track", "neural reports compress the UE's measured channel; "
                                                           "a track is only for a one-antenna gNB: leave it out")
        elif codec is not None:
            if g.num_antennas > 1:
                raise FieldError("models.csi_codec", f"with a gNB array the codec's reports are the CSI the gNB "
                                                     f"precodes with: set csi_rs.report.kind: neural (got "
                                                     f"{rep.kind}) and leave out track")
            if codec.track is None:
                raise FieldError("models.csi_codec.track", "required with one gNB antenna (a CSI track dataset); "
                                                           "for neural reports on the measured channel use a gNB "
                                                           "array and csi_rs.report.kind: neural")

    def _check_system_level_start(self) -> None:
        """umi/uma place each UE at its start position: no closer to the gNB than 38.901's minimum."""
        min_m = SYSTEM_LEVEL_MIN_DISTANCE_2D_M.get(self.channel.model)
        if min_m is None:
            return
        for i, ue in enumerate(self.ues):
            m = ue.mobility
            name = {"static": "position_m", "linear": "start_m", "waypoints": "waypoints_m.0"}[m.model]
            start = m.waypoints_m[0] if m.model == "waypoints" else getattr(m, name)
            d_m = math.hypot(start[0] - self.gnb.position_m[0], start[1] - self.gnb.position_m[1])
            if d_m < min_m:
                raise FieldError(f"ues.{i}.mobility.{name}", f"channel.model {self.channel.model} needs the UE at "
                                                             f">= {min_m} m from the gNB in the ground plane "
                                                             f"(38.901 Table 7.2-1) at t = 0 (got {d_m:.1f} m)")

    def _check_scheduler(self) -> None:
        cfg = self.scheduler
        if cfg is None:
            return
        for field, message in check_fits(cfg, self.carrier.num_prbs, self.gnb.num_antennas, self.csi_rs.report.max_rank):
            raise FieldError("scheduler." + field, message)
        if cfg.max_ues_per_prb > 1:
            group = int(group_sizes_prbs(self.carrier.num_prbs, cfg.prb_group_prbs)[0])
            if group != self.csi_rs.report.subband_prbs:
                raise FieldError("scheduler.prb_group_prbs", f"MU-MIMO precodes each PRB group with the reports' "
                                                             f"subband: the groups ({group} PRBs) must be "
                                                             f"csi_rs.report.subband_prbs "
                                                             f"({self.csi_rs.report.subband_prbs}) wide")
            if self.csi_rs.report.max_rank > 1:
                raise FieldError("csi_rs.report.max_rank", "MU-MIMO co-schedules one-layer UEs: use 1 with "
                                                           "scheduler.max_ues_per_prb > 1")
        if self.phy.backend == "link_level":
            sizes = group_sizes_prbs(self.carrier.num_prbs, cfg.prb_group_prbs)
            if len(set(sizes.tolist())) > 1:
                raise FieldError("scheduler.prb_group_prbs", f"link_level retransmits a block on as many PRBs as it "
                                                             f"had: the PRB groups must be of one size (carrier.num_prbs "
                                                             f"{self.carrier.num_prbs} gives {sorted(set(sizes.tolist()))})")
            if self.models.receiver is not None and self.models.receiver.adaptation:
                raise FieldError("models.receiver.adaptation", "the receiver adaptation regenerates whole-carrier "
                                                               "received grids of one UE: not with a scheduler "
                                                               "(scheduler: null)")

    def _check_receiver(self) -> None:
        rx = self.models.receiver
        if self.phy.receiver != "neural":
            if rx is not None:
                raise FieldError("models.receiver", f"is only used with phy.receiver: neural "
                                                    f"(phy.receiver is {self.phy.receiver})")
            return
        if self.phy.backend != "link_level":
            raise FieldError("phy.receiver", f"neural needs phy.backend: link_level (got {self.phy.backend})")
        if rx is None:
            raise FieldError("models.receiver", "phy.receiver: neural needs models.receiver "
                                                "({type: deeprx, checkpoint: ...})")

    # Derived integer-microsecond quantities (the engine's time base).
    @property
    def duration_us(self) -> int:
        return int(round(self.duration_s * 1e6))

    @property
    def num_slots(self) -> int:
        return self.duration_us // self.carrier.slot_us


JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def scenario_json_schema() -> dict:
    """The scenario's JSON Schema (``airtune schema``): pydantic's, with its dialect named. Bounds and
    enums are the validator's; what JSON Schema cannot say (cross-field rules, finite floats, the
    files a scenario names) only ``airtune validate`` checks."""
    return {"$schema": JSON_SCHEMA_DIALECT, **Scenario.model_json_schema()}
