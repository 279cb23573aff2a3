"""The names users type, as Literal aliases: a leaf module every layer can import.

Each alias's values are the valid choices of one option; `choices(alias)` lists them for messages and parsers.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

Target = Literal["x0", "eps", "v", "score", "flow"]
FixedScheduleName = Literal["cosine", "linear", "sigmoid", "series", "flow"]
#: "learned" is a trained γ(t) network (Kingma et al. 2021), discretized once its weights are known.
ScheduleName = Literal["cosine", "linear", "sigmoid", "series", "flow", "learned"]
Spacing = Literal["trailing", "linspace", "quadratic", "logsnr", "karras"]
SamplerName = Literal["ddpm", "ddim", "euler", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m", "heun", "unipc", "consistency"]
#: How `difflab distill` trains a few-call student from a teacher run (`difflab.distill`).
DistillMethod = Literal["reflow", "trajectory", "consistency"]
VarianceKind = Literal["small", "large", "learned"]
ClipKind = Literal["none", "clip", "dynamic"]
Weighting = Literal["simple", "elbo", "min_snr"]
LossKind = Literal["l2", "huber"]
TimeEmbedding = Literal["scalar", "sinusoidal"]
ModelName = Literal["mlp", "unet"]
UNetSize = Literal["small", "base"]
DeviceChoice = Literal["auto", "cpu", "cuda", "mps"]
Precision = Literal["auto", "fp32", "bf16"]


def choices(alias: Any) -> tuple[str, ...]:
    """The valid values of a Literal alias, in declaration order."""
    return tuple(get_args(alias))
