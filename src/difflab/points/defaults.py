"""The point kind's defaults (see `difflab.defaults.KindDefaults`); why each value, in benchmarks/README.md."""

from __future__ import annotations

from types import MappingProxyType

from difflab.defaults import KindDefaults, SamplingDefaults

#: UniPC (DPM-Solver++(2M) with the UniC corrector) on 20 quadratic timesteps: within 1.1× of the full ancestral
#: chain's energy ratio on all six sets of benchmarks/fewstep.py at 1/50 of its model calls, and as sharp as
#: DPM-Solver++(2M), so figures, evaluations and reports of a default run take seconds. Below 15 steps the steps
#: are even in log SNR instead: `--steps 10` stays within 1.5× of the full chain on all six sets, where quadratic
#: steps (and DPM-Solver++(2M), the default before) were 2.3–2.4× off; from 15 steps quadratic steps are as close
#: and sharper (k-NN precision 0.001–0.009 higher; benchmarks/RESULTS-fewstep.md). v, x0 and flow runs alike.
#: Runs that predict the noise (ε, score) take DPM-Solver++'s SDE form on 50 quadratic steps with x̂0 clipped to
#: the data's range instead: deterministic few-step solvers send their samples far off the data, and the clipped
#: SDE is the closest few-step form, within 1.5× of the full chain on all six sets at 50 steps (2.6× at 20;
#: benchmarks/RESULTS-defaults.md). `sampler="ddpm"` alone walks every trained step.
#: Guidance 1, the plain conditional model: a class's samples match that class's data best at w = 1 on
#: circles_vs_moons, a checkerboard in metres and a 5-D mixture, and drift off it as w grows
#: (benchmarks/RESULTS-defaults.md, "Class fidelity"); guidance.png shows what w > 1 does.
SAMPLING = SamplingDefaults(
    sampler="unipc",
    few_step_sampler="unipc",
    steps=20,
    ancestral_steps=None,
    spacing="quadratic",
    few_step_spacing="logsnr",
    few_step_below=15,
    guidance=1.0,
    clip=None,
    chunk_size=10_000,
    noise_target_sampler="dpmpp_2m_sde",
    noise_target_steps=50,
    noise_target_spacing="quadratic",
    noise_target_clip="clip",
)

#: Built-in sets whose default budget is not TrainConfig's 15,000 steps. complex (moons beside circles, 4-D),
#: checkerboard (sharp square edges) and circles_vs_moons (the two drawn over each other) kept k-NN precision
#: 0.011-0.021 below its floor at 15,000 steps on every seed; at 30,000 complex and checkerboard are sharp on every
#: seed and circles_vs_moons still 0.010-0.012 below; at 60,000 (6 minutes on one core) it is 0.006-0.007 below
#: (the strict yardstick of benchmarks/teachers.py, RESULTS-teachers.md).
SET_STEPS: MappingProxyType[str, int] = MappingProxyType(
    {"complex": 30_000, "checkerboard": 30_000, "circles_vs_moons": 60_000}
)

#: A point student: its least budget and learning rate, and the teacher's pairs a reflow student learns from
#: (benchmarks/RESULTS-distill.md).
DISTILLING = MappingProxyType(
    {"steps": 4000, "lr": 1e-3, "lr_warmup": 100, "distill_pairs": 50_000, "teacher_steps": 32}
)
#: A point student trains for half its teacher's steps, and at least DISTILLING's 4,000: complex's 4-call student
#: (of a 30,000-step teacher) drew k-NN precision 0.964 after 4,000 steps and 0.984 after 16,000 (floor 1.000),
#: where 4× the teacher's samples or twice its walk changed nothing; half the teacher's steps took a student 15–60%
#: of its teacher's training time (benchmarks/RESULTS-distill.md, "A student's budget").
DISTILL_SHARE = 0.5

POINTS = KindDefaults(
    name="points",
    item_name="points",
    sampling=SAMPLING,
    distilling=DISTILLING,
    distill_share=DISTILL_SHARE,
    per_set=MappingProxyType({name: MappingProxyType({"steps": steps}) for name, steps in SET_STEPS.items()}),
    evaluate_size=("n", 5000),
    evaluate_draws=4,
    plot_n=3000,
    plot_n_means="points per panel",
    animate_n=2000,
    snapshot_n=1000,
    sample_suffixes=(".npy", ".csv"),
    catch_all=True,
    array_ndims=(1, 2),
    array_shape="points (N, D)",
    item_ndims=(1,),
)
