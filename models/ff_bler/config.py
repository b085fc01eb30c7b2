"""LightTune's online settings (``models.bler_predictor.online`` in a scenario): the only place
their defaults live; the scenario schema composes this model and the predictor takes it."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LightTuneConfig(BaseModel):
    """When and how the forward-forward BLER predictor fine-tunes online (paper 003, Algorithm 1)."""
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    policy: Literal["none", "lighttune"] = Field("lighttune", description="none: frozen model")
    delta: float = Field(0.3, gt=0, le=1, description="LightTune: update when |predicted - observed BLER| >= delta")
    optimizer: Literal["one_step_adam", "adam"] = Field("one_step_adam", description="one_step_adam resets "
                                                                                  "the moments at every update")
    learning_rate: float = Field(0.003, gt=0, le=1, description="LightTune step size")
    negatives: Literal["uniform", "hard"] = Field("uniform", description="negative label: uniform over the "
                                                                      "wrong ones, or the wrong prediction")
    ue_gflops: float = Field(100.0, ge=1e-3, le=1e9, description="UE compute speed: an update is charged its modelled "
                                                      "FLOPs (forward pass of the pair, closed-form gradients, "
                                                      "Adam step per layer) at this rate")
