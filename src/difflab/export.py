"""Taking a run to diffusers: a scheduler config its schedulers load, and the network in safetensors.

    DIR/scheduler/scheduler_config.json   DDPMScheduler / DDIMScheduler / DPMSolverMultistepScheduler, or for a
                                          flow run FlowMatchEulerDiscreteScheduler
                                          .from_pretrained(DIR, subfolder="scheduler")
    DIR/network/config.json               what difflab needs to rebuild the network (the run's config.json)
    DIR/network/model.safetensors         its EMA weights
    DIR/README.md                         the few lines that drive it

The schedule goes over as its trained betas, so cosine, sigmoid, the series preset and a learned (VDM) schedule
all carry over exactly as difflab discretized them. `load_network` returns a module called as diffusers calls a
UNet: `net(sample, timestep, class_labels=None)` with integer timesteps, returning the prediction the scheduler
config names (a score network is converted to ε, which diffusers knows). A flow run's network takes the flow
scheduler's float timesteps T·t and returns the velocity ε - x0 that scheduler steps with.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from difflab.checkpoint import atomic_write_json, atomic_write_text, load_weights, save_weights
from difflab.errors import UserError
from difflab.kinds import kind_for_info
from difflab.model import TrainedModel, model_from_weights
from difflab.outputs import prepare_folder, refuse_file_on_the_way
from difflab.process import x0_eps_from
from difflab.run import RunRecord, read_run_record
from difflab.version import __version__

if TYPE_CHECKING:
    from difflab.kind import RunView

#: diffusers' name for what the exported network predicts, per difflab target.
PREDICTION_TYPE = {"x0": "sample", "eps": "epsilon", "v": "v_prediction", "score": "epsilon"}
SCHEDULER = "scheduler"
NETWORK = "network"


def flow_scheduler_config(run: RunView) -> dict[str, Any]:
    """diffusers' FlowMatchEulerDiscreteScheduler for a flow run: T training steps at t = 1/T .. 1, no shift, so its
    `set_timesteps(K)` walks difflab's `linspace` grid of K steps."""
    return {
        "_class_name": "FlowMatchEulerDiscreteScheduler",
        "_diffusers_version": "0.27.0",
        "num_train_timesteps": len(run.model.schedule),
        "shift": 1.0,
    }


def scheduler_config(run: RunView) -> dict[str, Any]:
    """The config every one of diffusers' DDPM, DDIM and DPMSolverMultistep schedulers accepts.

    Clipping follows what difflab samples with by default (the run's option; images clip): `clip` becomes
    `clip_sample`, `dynamic` becomes `thresholding` (Saharia et al.'s, at the same percentile).
    """
    default = run.resolve()
    return {
        "_class_name": "DDPMScheduler",
        "_diffusers_version": "0.27.0",
        "num_train_timesteps": len(run.model.schedule),
        "trained_betas": run.model.schedule.betas.tolist(),
        "prediction_type": PREDICTION_TYPE[run.config.target],
        "clip_sample": default.clip == "clip",
        "clip_sample_range": 1.0,
        "thresholding": default.clip == "dynamic",
        "dynamic_thresholding_ratio": 0.995,
        "sample_max_value": 1.0,
        "timestep_spacing": "trailing",
    }


USAGE_CODE = """# {name}, exported by difflab {version}

```python
import torch
from diffusers import {imports}
from difflab.export import load_network

net = load_network("{folder}")                       # needs difflab installed for the architecture
scheduler = {scheduler}.from_pretrained("{folder}", subfolder="scheduler")
scheduler.set_timesteps({steps})
x = torch.randn(1000, *net.item_shape)               # model units: points scaled to [-1, 1], pixels to [-1, 1]
with torch.no_grad():
    for t in scheduler.timesteps:
        x = scheduler.step(net(x, t), t, x).prev_sample
samples = net.to_data_units(x)                        # points in the data's units, images in [0, 1]
```

"""

FLOW_NOTES = """This is a flow-matching run: the network predicts the velocity ε - x0 of x_t = (1 - t) x0 + t ε, and
only FlowMatchEulerDiscreteScheduler steps with that (DDPM, DDIM and DPM-Solver schedulers expect ε, x0 or v; the
network refuses their integer timesteps). `set_timesteps(K)` walks difflab's `--sampler euler --spacing linspace
--steps K`. Classifier-free guidance: call `net(x, t, class_labels=c)` and `net(x, t)` and combine
`uncond + w * (cond - uncond)` yourself.
"""

VP_NOTES = """With DDIMScheduler, pass `use_clipped_model_output=True` to `step` where the run clips (images do):
difflab re-derives ε from the clipped x̂0. diffusers' DDIMScheduler steps back a fixed `T // steps` timesteps, so
it follows difflab's trailing grid only where `steps` divides the training steps T; DDPM and DPM-Solver follow
it for any `steps`. What does not carry over: difflab's quadratic timestep spacing (diffusers has
none; the config uses trailing), a learned variance (the shared config uses fixed variances; for DDPM pass
`variance_type="learned_range"` to `from_pretrained` and set `net.with_variance = True`), and
classifier-free guidance (call `net(x, t, class_labels=c)` and `net(x, t)` and combine
`uncond + w * (cond - uncond)` yourself; difflab's weight w is diffusers' `guidance_scale`).
"""


STUDENT_NOTES = """This is a student distilled to sample in {calls} model calls (`difflab distill`): it walks the
{calls} trailing steps it was trained on, each a DDIM step (a flow run's Euler step), which is what the lines above
do. Other step counts or schedulers leave the steps it learned.
"""


def usage(name: str, folder: Path, *, flow: bool, student_calls: int = 0) -> str:
    """The export's README.md: the lines that drive the network with diffusers, then what to know."""
    if flow:
        fields = {"imports": "FlowMatchEulerDiscreteScheduler", "scheduler": "FlowMatchEulerDiscreteScheduler"}
        steps, notes = "10", FLOW_NOTES
        if student_calls:  # the trailing grid t = 1, (K-1)/K, ..., 1/K, which set_timesteps(K) alone does not walk
            steps = (
                "sigmas=[" + ", ".join(f"{(student_calls - i) / student_calls:g}" for i in range(student_calls)) + "]"
            )
    elif student_calls:
        fields = {"imports": "DDIMScheduler", "scheduler": "DDIMScheduler"}
        steps, notes = str(student_calls), VP_NOTES
    else:
        imports = "DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler"
        fields = {"imports": imports, "scheduler": "DPMSolverMultistepScheduler"}
        steps, notes = "20", VP_NOTES
    if student_calls:
        notes = STUDENT_NOTES.format(calls=student_calls) + "\n" + notes
    return USAGE_CODE.format(name=name, version=__version__, folder=folder, steps=steps, **fields) + notes


def export_diffusers(run: RunView, folder: Path) -> Path:
    """Write the run as a diffusers scheduler config plus the network; returns `folder`."""
    refuse_file_on_the_way(folder)
    if run.config.is_student and run.config.distill_method == "consistency":
        raise UserError(
            "a consistency student samples by renoising its x̂0 at every step, which no diffusers scheduler does for "
            "a variance-preserving network; distill a trajectory or reflow student to export it"
        )
    if folder.exists() and any(folder.iterdir()):
        raise UserError(f"{folder} is not empty; export into a new folder")
    prepare_folder(folder / SCHEDULER)
    prepare_folder(folder / NETWORK)
    flow = run.config.target == "flow"
    config = flow_scheduler_config(run) if flow else scheduler_config(run)
    atomic_write_json(folder / SCHEDULER / "scheduler_config.json", config)
    record = RunRecord(run.config, run.info, run.source)
    atomic_write_json(folder / NETWORK / "config.json", record.to_dict())
    save_weights(folder / NETWORK / "model.safetensors", run.model.denoiser.model.state_dict())
    name = f"{run.config.data} ({run.kind.defaults.name}, {run.config.target} target, step {run.step})"
    calls = run.config.student_steps
    atomic_write_text(folder / "README.md", usage(name, folder, flow=flow, student_calls=calls))
    return folder


class DiffusersNetwork(nn.Module):
    """A difflab network as diffusers' schedulers expect it: integer timesteps in, their prediction type out."""

    def __init__(self, record: RunRecord, model: TrainedModel) -> None:
        super().__init__()
        self.record = record
        self.model = model
        self.denoiser = model.denoiser
        #: Also return the variance channels (for DDPMScheduler with variance_type="learned_range").
        self.with_variance = False

    @property
    def item_shape(self) -> tuple[int, ...]:
        return self.record.info.shape

    def forward(
        self, sample: torch.Tensor, timestep: torch.Tensor | int, class_labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The prediction at timestep(s) `timestep`; `class_labels` None is the "no label" entry.

        DDPM, DDIM and DPM-Solver schedulers pass integer model timesteps; FlowMatchEulerDiscreteScheduler passes
        floats T·t with t ∈ (0, 1], which are model timestep T·t - 1 of a flow run. A tensor of the other kind
        means the wrong scheduler drives the network, and is refused.
        """
        n = sample.shape[0]
        given = torch.as_tensor(timestep, device=sample.device)
        if self.denoiser.target == "flow":
            if isinstance(timestep, torch.Tensor) and not timestep.is_floating_point():
                raise UserError(
                    "this network was exported from a flow run: drive it with diffusers' "
                    "FlowMatchEulerDiscreteScheduler (its config is in scheduler/), not a DDPM, DDIM or DPM-Solver one"
                )
            t = (given.double() - 1.0).reshape(-1).expand(n)
        else:
            if isinstance(timestep, torch.Tensor) and timestep.is_floating_point():
                raise UserError(
                    "this network takes integer timesteps: drive it with the DDPM, DDIM or DPM-Solver scheduler of "
                    "its export (FlowMatchEulerDiscreteScheduler is for flow runs only)"
                )
            t = given.to(torch.int64).reshape(-1).expand(n)
        cond = class_labels
        if self.record.cfg.conditional and cond is None:
            cond = torch.full((n,), self.record.info.num_classes, dtype=torch.int64, device=sample.device)
        out = self.denoiser.raw(sample, t, cond)
        pred, _ = self.denoiser.split(out)
        if self.denoiser.target == "score":
            pred = x0_eps_from("score", self.denoiser.schedule, sample, t, pred)[1]
        if self.with_variance and self.denoiser.learned_variance:
            return torch.cat([pred, out.chunk(2, dim=1)[1]], dim=1)
        return pred

    def to_data_units(self, x: torch.Tensor) -> torch.Tensor:
        """Model units → what `Run.sample` returns: the data's units (points), or [0, 1] (images)."""
        return torch.as_tensor(kind_for_info(self.record.info).output(self.model, x))


def load_network(folder: str | Path) -> DiffusersNetwork:
    """The exported network, ready for diffusers' schedulers (in eval mode, on the CPU)."""
    network = Path(folder) / NETWORK
    if not (network / "config.json").is_file():
        raise UserError(f"{folder}: not a difflab export (no {NETWORK}/config.json)")
    record = read_run_record(network)
    model = model_from_weights(record.cfg, record.info, load_weights(network / "model.safetensors"), str(network))
    return DiffusersNetwork(record, model).eval()
