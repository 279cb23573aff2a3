"""`difflab export --diffusers`: diffusers' own schedulers, loaded from the export, reproduce difflab's samplers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, FlowMatchEulerDiscreteScheduler

import difflab
from difflab.cli import main
from difflab.errors import UserError
from difflab.export import load_network
from difflab.samplers import SAMPLERS

PAIRS = [(DDPMScheduler, "ddpm"), (DDIMScheduler, "ddim"), (DPMSolverMultistepScheduler, "dpmpp_2m")]
POINTS = {"steps": 60, "hidden": 32, "depth": 2, "timesteps": 100, "n_data": 400, "batch_size": 64}


def both(run: difflab.Run, folder: Path, scheduler_class: type, sampler: str, steps: int, n: int, **kw: object):  # type: ignore[no-untyped-def]
    """(difflab's samples, diffusers' samples) from the same noise and generator, in model units."""
    scheduler = scheduler_class.from_pretrained(str(folder), subfolder="scheduler", **kw)
    scheduler.set_timesteps(steps)
    net = load_network(folder)
    g = torch.Generator().manual_seed(0)
    theirs = torch.randn((n, *net.item_shape), generator=g)
    # diffusers' DDIM re-derives ε from a clipped x̂0 only when asked; difflab always does (as GLIDE did).
    step_options = {"use_clipped_model_output": True} if scheduler_class is DDIMScheduler else {}
    with torch.no_grad():
        for t in scheduler.timesteps:
            theirs = scheduler.step(net(theirs, t), t, theirs, generator=g, **step_options).prev_sample
    sampling = run.resolve(sampler=sampler, steps=steps, spacing="trailing")
    g = torch.Generator().manual_seed(0)
    x = torch.randn((n, *net.item_shape), generator=g)
    denoiser = run.model.denoiser
    denoiser.clip = sampling.clip
    ours = SAMPLERS[sampler](
        run.model.denoiser_for(), x, sampling.schedule(run.model), generator=g, **sampling.sampler_kwargs()
    )
    return ours, theirs


@pytest.mark.parametrize("target", ["v", "score"])
def test_a_point_run_round_trips_through_diffusers(tmp_path: Path, target: str) -> None:
    run = difflab.train("moons", out=tmp_path / "run", target=target, progress=False, **POINTS)
    folder = tmp_path / "export"
    assert main(["export", str(run.path), "--diffusers", str(folder)]) == 0
    clips = run.resolve().clip == "clip"  # ε and score runs clip by default, and DPMSolverMultistep cannot
    for scheduler_class, sampler in PAIRS[:2] if clips else PAIRS:
        # 40 does not divide T = 100: trailing's half-way rounding must match diffusers' (97, not 96). Their DDIM
        # steps back a fixed T // steps, so it follows the grid only where steps divides T (25 does).
        for steps in (10, 25) if scheduler_class is DDIMScheduler else (10, 40):
            ours, theirs = both(run, folder, scheduler_class, sampler, steps, 200)
            # diffusers keeps ᾱ in float32, difflab in float64: equal to float32 rounding, which a score network's
            # x̂0 = (x_t + σ²ŝ)/√ᾱ amplifies by 1/√ᾱ ≈ 10⁴ at the noisiest step, and the Fourier features' steeper
            # network further (measured: 3e-4 relative without them, 3e-3 with); a plumbing mistake is O(1).
            tolerance = {"rtol": 0.0, "atol": 2e-5} if target == "v" else {"rtol": 1e-2, "atol": 1e-3}
            torch.testing.assert_close(theirs, ours, **tolerance)
    net = load_network(folder)
    assert torch.allclose(net.to_data_units(ours).float(), torch.as_tensor(run.model.to_data_units(ours)).float())


def test_an_image_run_round_trips_with_clipping_and_classes(tmp_path: Path) -> None:
    options = {"model": "unet", "conditional": True, "target": "eps", "steps": 4, "batch_size": 8, "timesteps": 50}
    run = difflab.train("digits", out=tmp_path / "run", progress=False, **options)
    folder = run.export(tmp_path / "export")
    net = load_network(folder)
    assert net.item_shape == (1, 8, 8)
    for scheduler_class, sampler in PAIRS[:2]:  # DPMSolverMultistep has no plain clipping; images clip
        ours, theirs = both(run, folder, scheduler_class, sampler, 10, 6)
        torch.testing.assert_close(theirs, ours, rtol=0, atol=2e-5)
    labels = torch.tensor([3, 3])
    x, t = torch.randn(2, 1, 8, 8), torch.tensor(20)
    conditional = run.model.denoiser.raw(x, t.expand(2), labels)
    torch.testing.assert_close(net(x, t, class_labels=labels), conditional)


def test_a_learned_variance_goes_to_ddpm_on_request(tmp_path: Path) -> None:
    run = difflab.train("moons", out=tmp_path / "run", learned_variance=True, progress=False, **POINTS)
    folder = run.export(tmp_path / "export")
    net = load_network(folder)
    net.with_variance = True
    scheduler = DDPMScheduler.from_pretrained(str(folder), subfolder="scheduler", variance_type="learned_range")
    scheduler.set_timesteps(10)
    g = torch.Generator().manual_seed(0)
    theirs = [torch.randn(200, 2, generator=g)]
    with torch.no_grad():
        for t in scheduler.timesteps:
            theirs.append(scheduler.step(net(theirs[-1], t), t, theirs[-1], generator=g).prev_sample)
    sampling = run.resolve(sampler="ddpm", steps=10, spacing="trailing", variance="learned")
    g = torch.Generator().manual_seed(0)
    ours = [torch.randn(200, 2, generator=g)]
    SAMPLERS["ddpm"](
        run.model.denoiser_for(),
        ours[0],
        sampling.schedule(run.model),
        generator=g,
        variance="learned",
        callback=lambda state: ours.append(state["x"]) if state["i"] < 9 else None,
    )
    # Every state up to the last step agrees; at t = 0 diffusers adds noise with the interpolated variance
    # (log β̃_0 clamped at 1e-20), where difflab returns the posterior mean, as Ho et al. and improved-DDPM do.
    torch.testing.assert_close(torch.stack(theirs[:10]), torch.stack(ours), rtol=0, atol=2e-5)


def test_export_refuses_a_folder_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = difflab.train("moons", out=tmp_path / "run", progress=False, **{**POINTS, "steps": 2})
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("keep")
    capsys.readouterr()
    assert main(["export", str(run.path), "--diffusers", str(tmp_path / "busy")]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert (tmp_path / "busy" / "mine.txt").read_text() == "keep"


def test_a_flow_run_round_trips_through_flow_match_euler(tmp_path: Path) -> None:
    """diffusers' FlowMatchEulerDiscreteScheduler, loaded from the export, steps the exported network as difflab's
    Euler sampler does on its linspace grid (K = 10 and 4: T - 1 = 99 is a multiple of K - 1, so diffusers'
    float timesteps are difflab's integer ones); the wrong kind of scheduler is refused with one line."""
    run = difflab.train("moons", out=tmp_path / "run", target="flow", progress=False, **POINTS)
    folder = run.export(tmp_path / "export")
    net = load_network(folder)
    for steps in (10, 4):
        scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(str(folder), subfolder="scheduler")
        scheduler.set_timesteps(steps)
        theirs = torch.randn((300, *net.item_shape), generator=torch.Generator().manual_seed(0))
        x = theirs.clone()
        with torch.no_grad():
            for t in scheduler.timesteps:
                theirs = scheduler.step(net(theirs, t), t, theirs).prev_sample
        sampling = run.resolve(sampler="euler", steps=steps, spacing="linspace")
        ours = SAMPLERS["euler"](run.model.denoiser_for(), x, sampling.schedule(run.model))
        torch.testing.assert_close(theirs, ours, rtol=0, atol=2e-5)  # diffusers steps in float32
    ddpm = DDPMScheduler.from_pretrained(str(folder), subfolder="scheduler")
    ddpm.set_timesteps(10)
    with pytest.raises(UserError, match="FlowMatchEulerDiscreteScheduler"):
        net(x, ddpm.timesteps[0])
    assert "FlowMatchEulerDiscreteScheduler" in (folder / "README.md").read_text()
    v_net = load_network(difflab.train("moons", out=tmp_path / "v", progress=False, **POINTS).export(tmp_path / "v-x"))
    with pytest.raises(UserError, match="integer timesteps"):
        v_net(x, scheduler.timesteps[0])
