"""The image kind's defaults (see `difflab.defaults.KindDefaults`); why each value, in benchmarks/README.md."""

from __future__ import annotations

from types import MappingProxyType

from difflab.defaults import KindDefaults, SamplingDefaults

#: DDIM, 50 trailing steps (a 1000-step chain is minutes per grid on a CPU), guidance 2 and clipped x̂0
#: (benchmarks/RESULTS-mnist5k.md); 50 images a chunk (benchmarks/RESULTS-speed.md, "Images: chunk size").
SAMPLING = SamplingDefaults(
    sampler="ddim",
    few_step_sampler="ddim",
    steps=50,
    ancestral_steps=50,
    spacing="trailing",
    guidance=2.0,
    clip="clip",
    chunk_size=50,
)

#: The small U-Net with benchmarks/mnist5k.py's settings (Fourier features are an input of the MLP only);
#: min-SNR weighting reaches 95% conditional accuracy on mnist5k in fewer steps than uniform ε weighting
#: (benchmarks/RESULTS-speed.md, "Characters").
TRAINING = MappingProxyType(
    {
        "model": "unet",
        "target": "eps",
        "weighting": "min_snr",
        "batch_size": 64,
        "steps": 1000,
        "fourier_features": 0,
    }
)

#: An image student: its budget and learning rate, and the teacher's pairs a reflow student learns from.
DISTILLING = MappingProxyType({"steps": 500, "lr": 5e-4, "lr_warmup": 50, "distill_pairs": 1000, "teacher_steps": 32})

#: Image sets by name, and the prefixes of image sets given by path.
SET_NAMES = ("mnist5k", "digits")
SET_PREFIXES = ("emnist:", "images:")

IMAGES = KindDefaults(
    name="images",
    item_name="images",
    sampling=SAMPLING,
    training=TRAINING,
    distilling=DISTILLING,
    evaluate_size=("per_class", 50),
    evaluate_draws=2,
    plot_n=64,
    plot_n_means="samples per class",
    animate_n=16,
    snapshot_n=16,
    sample_suffixes=(".npy", ".png"),
    writes_text=True,
    spec_names=SET_NAMES,
    spec_prefixes=SET_PREFIXES,
    array_ndims=(4,),
    array_shape="images (N, C, H, W)",
    item_ndims=(3,),
)
