"""UE mobility models in closed form: position and distance travelled as functions of time.

Every model moves at a constant speed (or stands still), so the fading channel can be
sampled uniformly in distance: the channel at time t is the 38.901 realisation at
distance d(t) along the path, which makes a UE that stops see a frozen channel.
"""
from __future__ import annotations

import numpy as np

from simulator.schema import LinearMobility, MobilityConfig, StaticMobility, WaypointMobility


class Mobility:
    """position_m(t_s [n]) -> [n, 3]; velocity_mps(t_s [n]) -> [n, 3]; distance_m(t_s [n]) -> [n];
    speed_mps (while moving)."""

    def __init__(self, cfg: MobilityConfig):
        self.cfg = cfg
        if isinstance(cfg, StaticMobility):
            self.speed_mps = 0.0
            self._corners = np.asarray([cfg.position_m], dtype=np.float64)
        elif isinstance(cfg, LinearMobility):
            self.speed_mps = cfg.speed_kmh / 3.6
            self._start = np.asarray(cfg.start_m, dtype=np.float64)
            h = np.deg2rad(cfg.heading_deg)
            self._dir = np.array([np.cos(h), np.sin(h), 0.0])
            self._corners = None
        elif isinstance(cfg, WaypointMobility):
            self.speed_mps = cfg.speed_kmh / 3.6
            self._corners = np.asarray(cfg.waypoints_m, dtype=np.float64)
        else:  # pragma: no cover - the schema admits nothing else
            raise TypeError(f"unknown mobility config {cfg!r}")
        if self._corners is not None:
            seg = np.linalg.norm(np.diff(self._corners, axis=0), axis=1)
            self._cum = np.concatenate([[0.0], np.cumsum(seg)])
            self.path_length_m = float(self._cum[-1])
        else:
            self.path_length_m = np.inf

    def distance_m(self, t_s) -> np.ndarray:
        d = self.speed_mps * np.asarray(t_s, dtype=np.float64)
        return np.minimum(d, self.path_length_m)

    def position_m(self, t_s) -> np.ndarray:
        d = self.distance_m(t_s)
        if self._corners is None:
            return self._start[None, :] + d[..., None] * self._dir[None, :]
        if len(self._corners) == 1:
            return np.broadcast_to(self._corners[0], d.shape + (3,)).copy()
        out = np.empty(d.shape + (3,))
        for k in range(3):
            out[..., k] = np.interp(d, self._cum, self._corners[:, k])
        return out

    def velocity_mps(self, t_s) -> np.ndarray:
        """[n, 3] velocity vectors at times t_s [n]: speed_mps along the line or the current segment,
        zero standing still or stopped at the last waypoint."""
        d = self.distance_m(t_s)
        if self._corners is None:
            return np.broadcast_to(self.speed_mps * self._dir, d.shape + (3,)).copy()
        out = np.zeros(d.shape + (3,))
        if len(self._corners) == 1:
            return out
        step = np.diff(self._corners, axis=0)                                    # [segments, 3]
        length = np.linalg.norm(step, axis=1, keepdims=True)
        unit = np.divide(step, length, out=np.zeros_like(step), where=length > 0)
        seg = np.minimum(np.searchsorted(self._cum, d, side="right") - 1, len(step) - 1)   # skips empty segments
        moving = d < self.path_length_m
        out[moving] = self.speed_mps * unit[seg[moving]]
        return out
