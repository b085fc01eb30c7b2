"""The checks of a scenario that need more than the schema: the checkpoints, the CSI track and the
receiver's training pool it names exist and fit the scenario (its grid, its UEs' travel), and its
channels fit this machine's memory (``simulator.memory_estimate``).

The schema (``simulator.schema``) never opens a file; ``airtune validate``, ``airtune run`` and
the sweeps call :func:`check_files` after it, so every problem still names its field.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from models.checkpoint import CheckpointError, read_checkpoint_config, verify_checkpoint
from models.config import FieldError
from models.csi_codec.data import read_description as read_csi_description
from models.csi_codec.layout import checkpoint_shapes as csi_codec_shapes
from models.deeprx.config import ReceiverAdaptationConfig
from models.deeprx.data import dataset_size
from models.deeprx.data import read_description as read_deeprx_description
from models.deeprx.layout import checkpoint_shapes as deeprx_shapes
from models.deeprx.receiver import checkpoint_grid
from models.registry import get_model
from simulator.csi.codec_grid import grid_misfit
from simulator.loader import field_errors
from simulator.memory_estimate import check_memory
from simulator.schema import CsiCodecConfig, Scenario, StaticMobility, WaypointMobility


def validate_files(scenario: Scenario) -> list[FieldError]:
    """Every problem with the files ``scenario`` names (at most one per model slot), each naming
    its field (``models.receiver.checkpoint``); [] when they are all there and fit."""
    errors = []
    for check in (_check_bler_predictor, _check_csi_codec, _check_receiver, check_memory):
        try:
            check(scenario)
        except FieldError as exc:
            errors.append(exc)
    return errors


def check_files(scenario: Scenario, source: str | Path = "") -> Scenario:
    """``scenario`` if :func:`validate_files` finds nothing, else a ConfigError with its
    ``field: message (line N)`` lines (the lines from ``source``, the scenario YAML, when given)."""
    errors = validate_files(scenario)
    if errors:
        raise field_errors(errors, source)
    return scenario


def _checkpoint_exists(path: str, field: str) -> None:
    if not Path(path).is_file():
        raise FieldError(field, f"no such checkpoint file {path!r}")


def _checkpoint_whole(path: str, field: str, shapes_of: Callable[[dict], dict] | None = None,
                      config: dict | None = None, what: str = "checkpoint") -> None:
    """The checkpoint is whole: its JSON, its weights file present, matching its sha256, every array finite
    (``verify_checkpoint``; checked after its model type, whose refusal says more), and with ``shapes_of``
    exactly the arrays, of the shapes, that its ``config`` implies (the model's weight layout)."""
    expected = None
    if shapes_of is not None:
        try:
            expected = shapes_of(config)
        except (KeyError, TypeError, ValueError) as exc:
            raise FieldError(field, f"{path}: the config's sizes are missing or wrong ({type(exc).__name__}: "
                                    f"{exc})") from None
    try:
        verify_checkpoint(path, expected, (), what)
    except CheckpointError as exc:
        raise FieldError(field, str(exc)) from None


def _check_bler_predictor(scenario: Scenario) -> None:
    """The BLER predictor's checkpoint is whole and its model's: weights of its layers' shapes, feature
    scaling of the BLER features (the model type's ``check_checkpoint``; no TensorFlow)."""
    bler = scenario.models.bler_predictor
    if bler is None or bler.checkpoint is None:
        return
    field = "models.bler_predictor.checkpoint"
    _checkpoint_exists(bler.checkpoint, field)
    try:                               # the model's check verifies the file whole (verify_checkpoint) first
        get_model(bler.type).check_checkpoint(bler.checkpoint)
    except CheckpointError as exc:
        raise FieldError(field, str(exc)) from None


def _check_csi_codec(scenario: Scenario) -> None:
    """The checkpoint exists; its grid fits the gNB array and the carrier (neural reports), or the
    track is a CSI track of the checkpoint's shape, long enough for every UE."""
    codec: CsiCodecConfig | None = scenario.models.csi_codec
    if codec is None:
        return
    field = "models.csi_codec.track"
    _checkpoint_exists(codec.checkpoint, "models.csi_codec.checkpoint")
    try:
        ckpt = read_checkpoint_config(codec.checkpoint, "conv_csi").config
    except ValueError as exc:
        raise FieldError("models.csi_codec.checkpoint", str(exc)) from None
    _checkpoint_whole(codec.checkpoint, "models.csi_codec.checkpoint", csi_codec_shapes, ckpt, "conv_csi checkpoint")
    if codec.track is None:          # neural reports: the grid must fit the array and the carrier
        misfit = grid_misfit(ckpt.get("num_ant"), ckpt.get("num_sc"), scenario.gnb.num_antennas,
                             scenario.carrier.num_prbs, scenario.csi_rs.report.subband_prbs)
        if misfit is not None:
            raise FieldError("models.csi_codec.checkpoint", misfit)
        return
    try:
        desc = read_csi_description(codec.track)
    except ValueError as exc:
        raise FieldError(field, str(exc)) from None
    track = desc.get("track")
    if not isinstance(track, dict):
        raise FieldError(field, f"{codec.track!r} is not a track (its source samples an area or i.i.d. "
                                f"channels); use a dataset made with a track source")
    shape = tuple(desc.get("shape", ())[:2])
    if shape != (ckpt.get("num_ant"), ckpt.get("num_sc")):
        raise FieldError(field, f"CSI shape {list(shape)} does not match the checkpoint's "
                                f"[{ckpt.get('num_ant')}, {ckpt.get('num_sc')}]")
    length = float(track["length_m"])
    for k, ue in enumerate(scenario.ues):
        travel = _max_travel_m(ue.mobility, scenario.duration_s)
        if travel > length + 1e-9:
            raise FieldError(field, f"the track is {length:g} m long but UE {ue.id} (ues.{k}.mobility) travels "
                                    f"{travel:g} m in duration_s {scenario.duration_s:g}")


def _check_receiver(scenario: Scenario) -> None:
    """The deeprx checkpoint exists and its grid fits the scenario's; so does the adaptation pool's."""
    rx = scenario.models.receiver
    if rx is None:
        return
    field = "models.receiver.checkpoint"
    _checkpoint_exists(rx.checkpoint, field)
    try:
        grid = checkpoint_grid(rx.checkpoint)
    except ValueError as exc:
        raise FieldError(field, str(exc)) from None
    _checkpoint_whole(rx.checkpoint, field, deeprx_shapes, read_checkpoint_config(rx.checkpoint, "deeprx").config,
                      "deeprx checkpoint")
    bits = 8 if scenario.phy.mcs_table == 2 else 6
    for name, have, want in _grid_pairs(scenario, grid):
        if have is not None and have != want:
            raise FieldError(field, f"the checkpoint's grid has {have} {name}, the scenario {want}")
    if grid["max_bits_per_symbol"] < bits:
        raise FieldError(field, f"the checkpoint gives {grid['max_bits_per_symbol']} LLRs per RE; "
                                f"MCS table {scenario.phy.mcs_table} needs {bits}")
    if rx.adaptation is not None:
        _check_pool(scenario, rx.adaptation)


def _grid_pairs(scenario: Scenario, grid: dict) -> list[tuple[str, int | None, int]]:
    """(what, the file's value, the scenario's) for a checkpoint's or a dataset's grid."""
    return [("receive antennas", grid.get("num_rx_ant"), scenario.phy.num_ue_antennas),
            ("PRBs", grid.get("num_prbs"), scenario.carrier.num_prbs),
            ("DMRS symbols", grid.get("num_dmrs_symbols"), scenario.phy.num_dmrs_symbols),
            ("subcarrier spacing (kHz)", grid.get("subcarrier_spacing_khz"), scenario.carrier.subcarrier_spacing_khz)]


def _check_pool(scenario: Scenario, ad: ReceiverAdaptationConfig) -> None:
    """The adaptation pool is a deeprx dataset on the scenario's grid, large enough for its settings."""
    field = "models.receiver.adaptation"
    try:
        desc = read_deeprx_description(ad.pool)
    except ValueError as exc:
        raise FieldError(f"{field}.pool", str(exc)) from None
    for name, have, want in _grid_pairs(scenario, desc["config"]):
        if have != want:
            raise FieldError(f"{field}.pool", f"the pool's grid has {have} {name}, the scenario {want}")
    total = dataset_size(desc)
    if ad.pool_size is not None and ad.pool_size > total:
        raise FieldError(f"{field}.pool_size", f"the pool has {total} samples (got {ad.pool_size})")
    size = ad.pool_size or total
    for name in ("hessian_subset", "samples"):
        if getattr(ad, name) > size:
            raise FieldError(f"{field}.{name}", f"must be <= the pool's {size} samples (got {getattr(ad, name)})")


def _max_travel_m(mobility, duration_s: float) -> float:
    """Distance a UE covers in ``duration_s`` (waypoint paths end at their last point)."""
    if isinstance(mobility, StaticMobility):
        return 0.0
    travel = mobility.speed_kmh / 3.6 * duration_s
    if isinstance(mobility, WaypointMobility):
        pts = [tuple(p) for p in mobility.waypoints_m]
        path = sum(sum((a - b) ** 2 for a, b in zip(p, q)) ** 0.5 for p, q in zip(pts, pts[1:]))
        travel = min(travel, path)
    return travel
