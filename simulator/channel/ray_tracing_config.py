"""Settings of a Sionna RT scene and its path solver: shared by the ray-traced CSI datasets
(``simulator.datagen.raytrace.RayTracedConfig``) and the event loop's ray-traced channel
(``channel.ray_traced``: ``RayTracedChannelConfig``). Nothing here imports Sionna."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# the scenes that sionna.rt.scene ships (sionna-rt 1.2.2)
SCENES = ("box", "box_knife", "box_one_screen", "box_two_screens", "double_reflector", "etoile", "floor_wall",
          "florence", "munich", "san_francisco", "simple_reflector", "simple_street_canyon",
          "simple_street_canyon_with_cars", "simple_wedge", "triple_reflector")
SceneName = Literal[SCENES]


class RayTracingConfig(BaseModel):
    """One of Sionna RT's bundled scenes, the way the BS array faces, and the path solver's settings."""
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    scene: SceneName = Field(description="one of Sionna RT's bundled scenes (sionna.rt.scene.<name>)")
    bs_look_at_m: tuple[float, float, float] | None = Field(
        None, description="point the BS array broadside faces; default: the array faces +x, upright")
    max_depth: int = Field(3, ge=0, le=20, description="maximum number of reflections/refractions per path")
    samples_per_src: int = Field(100_000, ge=1, le=100_000_000, description="rays shot from the BS per PathSolver call")
    receivers_per_call: int = Field(128, ge=1, le=100_000, description="UE positions traced together in one PathSolver call "
                                                           "(speed only)")


class RayTracedChannelConfig(RayTracingConfig):
    """``channel.ray_traced``: the scene the UEs drive through (the gNB at ``gnb.position_m``) and how
    far apart along each UE's trajectory its paths are traced."""

    anchor_spacing_m: float = Field(1.0, gt=0, le=100, description="distance travelled between two traces of "
                                                                   "the UE's paths (anchors); in between, each "
                                                                   "path's phase follows the UE's distance to "
                                                                   "the path's source (its Doppler shift)")
