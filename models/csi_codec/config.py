"""Online settings of the neural CSI codec (``models.csi_codec.online`` in a scenario) and of the
weight-update coder it shares with the DeepRx downlink: the only place their defaults live."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class UpdateCodingConfig(BaseModel):
    """How a weight update is quantised and range-coded (``models.csi_codec.update_coder``; seeds/002, eq. 12-19)."""
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    bins: int = Field(64, ge=2, le=65536, description="Quantiser levels N (equispaced, width bin_width, 0 included)")
    bin_width: float = Field(0.005, gt=0, le=1, description="Quantiser bin width t")
    prior: Literal["spike_slab", "uniform"] = Field("spike_slab", description="Prior the update is coded under")
    alpha: float = Field(1000.0, ge=0, le=1e9, description="spike_slab: weight of the spike against the slab")
    sigma_slab: float = Field(0.05, ge=1e-12, le=1e3, description="spike_slab: slab standard deviation")


class CsiUpdateConfig(UpdateCodingConfig):
    """How a full_model decoder update is quantised and coded (seeds/002, eq. 12-19)."""
    beta: float = Field(1.0, ge=0, le=1e9, description="Weight of the update rate in the fine-tuning loss (eq. 21)")
    rate_term: bool = Field(True, description="false: fine-tune without the update-rate term (beta ignored)")


class CsiOnlineConfig(BaseModel):
    """When and how a UE fine-tunes its CSI codec (seeds/002, Sec. V)."""
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    scheme: Literal["none", "encoder_only", "full_model", "genie", "translation"] = Field(
        "none", description="Fine-tuning scheme (paper Sec. V): none, encoder_only, full_model (decoder update "
                            "coded and sent on the feedback link), genie (decoder update free), translation")
    interval_m: float = Field(12.0, ge=0.01, le=1e6, description="Fine-tune every this many metres travelled")
    samples: int = Field(100, ge=1, le=100_000, description="Most recent CSI reports the UE keeps and fine-tunes on")
    steps: int = Field(200, ge=1, le=100000, description="Gradient steps per fine-tuning")
    batch: int = Field(32, ge=1, le=100_000, description="Mini-batch size")
    learning_rate: float = Field(1e-4, gt=0, le=1, description="Adam step size (the paper's 1e-4)")
    lmbda: float | None = Field(None, gt=0, le=1e9, description="RD weight lambda; null: the checkpoint's training lambda")
    ue_gflops: float = Field(100.0, ge=1e-3, le=1e9, description="UE compute speed: a fine-tuning is charged "
                                                      "3 x forward FLOPs x batch x steps at this rate")
    update: CsiUpdateConfig = Field(default_factory=CsiUpdateConfig)
