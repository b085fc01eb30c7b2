"""Settings of the network side's targeted fine-tuning of a DeepRx receiver
(``models.receiver.adaptation`` in a scenario) and of its downlink update coder: the only place
their defaults live."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.config import FieldError, ScenarioPath
from models.csi_codec.config import UpdateCodingConfig


class ReceiverUpdateConfig(UpdateCodingConfig):
    """How a receiver update (new weights - the UE's weights) is quantised and coded for the downlink."""
    bin_width: float = Field(1e-5, gt=0, le=1, description="Quantiser bin width t (sized for the default sgd "
                                                           "steps; adam moves every weight by about lr a step)")
    sigma_slab: float = Field(5e-5, ge=1e-12, le=1e3, description="spike_slab: slab standard deviation")


class ReceiverAdaptationConfig(BaseModel):
    """Targeted fine-tuning of the UE's neural receiver on the network side (seeds/000)."""
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    variant: Literal["influence", "random", "gradient_ascent"] = Field(
        "influence", description="influence: descend on the pool samples most beneficial to the targets; random: "
                                 "on random pool samples; gradient_ascent: ascend on the most harmful ones")
    score: Literal["classic", "l_relative", "theta_relative"] = Field(
        "l_relative", description="Influence score that ranks the pool (influence, gradient_ascent)")
    loss: Literal["bce", "ber"] = Field("bce", description="Target loss the pool is scored against: bce, or ber "
                                                           "(soft-BER surrogate); the fine-tuning minimises BCE")
    optimizer: Literal["sgd", "adam"] = Field("sgd", description="Fine-tuning steps: sgd (the paper's first-order "
                                                                 "descent) or adam (fresh moments)")
    window_slots: int = Field(20, ge=1, le=100000, description="The BER gap is watched over the UE's latest this "
                                                              "many transmissions whose HARQ feedback has arrived "
                                                              "(and that used the weights in force)")
    gap_threshold: float = Field(0.1, ge=0, le=1e6, description="Fine-tune when the mean relative BER gap "
                                                        "(ber - ber_genie) / ber_genie of the window's slots with "
                                                        "ber_genie >= min_genie_ber reaches this")
    min_genie_ber: float = Field(1e-3, gt=0, lt=1, description="Slots whose genie BER is below this are neither "
                                                                "watched nor targeted (their relative gap is noise)")
    num_targets: int = Field(1, ge=1, le=1000, description="Target slots per fine-tuning: the window's largest "
                                                           "relative gaps")
    samples: int = Field(50, ge=1, le=1_000_000, description="Pool samples fine-tuned on (the paper's top-50)")
    steps: int = Field(3, ge=1, le=10000, description="Gradient steps per fine-tuning")
    learning_rate: float = Field(0.002, gt=0, le=1, description="Fine-tuning step size")
    pool: ScenarioPath = Field(..., description="Network-side training pool: a deeprx dataset folder (`airtune data "
                                       "deeprx`) on the scenario's grid")
    pool_size: int | None = Field(None, ge=1, le=100_000_000, description="Use the pool's first this many samples; null: all")
    hessian_subset: int = Field(16, ge=1, le=1_000_000, description="Pool samples the Hessian is estimated on (the first ones)")
    top_k: int = Field(40, ge=1, le=10_000, description="Eigenpairs of the Arnoldi inverse Hessian (the paper's 40)")
    network_gflops: float = Field(1000.0, ge=1e-3, le=1e9, description="Network-side compute speed: a fine-tuning is charged "
                                                            "its modelled FLOPs (HVPs, pool and target gradients, "
                                                            "training steps) at this rate")
    downlink_kbps: float = Field(10000.0, ge=0.001, le=1e7, description="Capacity of the downlink pipe the coded update "
                                                            "travels on (FIFO, separate from the PDSCH)")
    downlink_delay_ms: float = Field(0.0, ge=0, le=1e6, description="Delay after serialisation on that pipe")
    update: ReceiverUpdateConfig = Field(default_factory=ReceiverUpdateConfig)

    @model_validator(mode="after")
    def _sizes(self):
        if self.pool_size is not None:
            for name in ("hessian_subset", "samples"):
                if getattr(self, name) > self.pool_size:
                    raise FieldError(name, f"must be <= pool_size ({self.pool_size}) (got {getattr(self, name)})")
        return self
