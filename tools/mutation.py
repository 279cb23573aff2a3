"""Mutation testing of the math modules: does the unit suite notice every single-line mistake?

    PYTHONPATH=src python tools/mutation.py [--modules schedule,vlb] [--limit N --seed S] [--jobs J]

Each mutant changes one line of one module the way a careful reader might get it wrong: + and - or * and /
swapped, ** 2 and ** 0.5 exchanged, a .sqrt() dropped, a numeric constant changed (0.5 -> 1, 2 -> 1, 1e-3 ->
1e-2, ...), an index i for i-1 or a slice [:-1] for [1:], a variable for a similarly named one, a term or a
factor dropped, a comparison or a condition turned round, a reassignment deleted. `HANDWRITTEN` adds
realistic mistakes no single token edit makes (Heun's method turned into Euler's, the VDM grid i/T). Code in
docstrings, comments, strings and annotations is never mutated, and mutants that do not compile are skipped.

For each mutant the module is rewritten in a private copy of `src/difflab` (the checkout is only read; the
copy is restored after every mutant and deleted at the end), and the unit test files run against it in a
forked child with `-x -q -p no:cacheprovider` and a timeout, the test file that mirrors the module first.
A failing test catches the mutant; a timeout counts as caught (the suite would hang) and is listed. The
parent imports torch, diffusers, numpy, ... once before forking, so a mutant costs its tests, not their
imports. Mutants listed in `EQUIVALENT` (behaviour provably identical, with the reason) are not run.

The run ends with a table per module, the survivors as file:line and mutated text, and a line
`mutation score: caught C / N (E equivalent, listed)`. The exit status is 1 if any mutant survived.
Not part of `make test`: the full run takes about an hour on two cores.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "difflab"

#: The modules that hold the library's math, in the order the report lists them.
MODULES = (
    "schedule.py",
    "process.py",
    "objectives.py",
    "denoiser.py",
    "samplers.py",
    "vlb.py",
    "learned_schedule.py",
)

#: Test files that run first for a module: the ones that pin its formulas.
MIRRORS = {
    "schedule.py": ("test_schedule.py", "test_respacing.py"),
    "process.py": ("test_process.py", "test_targets.py"),
    "objectives.py": ("test_objectives.py",),
    "denoiser.py": ("test_denoiser.py",),
    "samplers.py": ("test_samplers.py",),
    "vlb.py": ("test_vlb.py",),
    "learned_schedule.py": ("test_learned_schedule.py",),
}

#: Realistic mistakes that are more than one token edit: (module, original line, mistaken line, what it is).
#: Lines are compared without their indentation; a line that no longer exists is reported as stale.
HANDWRITTEN: tuple[tuple[str, str, str, str], ...] = (
    (
        "samplers.py",
        "x_tilde = x / float(scale[i]) + step * 0.5 * (pred.eps + pred_next.eps)",
        "x_tilde = x / float(scale[i]) + step * pred.eps",
        "Heun replaced by Euler",
    ),
    (
        "samplers.py",
        "x_tilde = x / float(scale[i]) + step * 0.5 * (pred.eps + pred_next.eps)",
        "x_tilde = x / float(scale[i]) + step * (0.25 * pred.eps + 0.75 * pred_next.eps)",
        "Heun's two slopes reweighted",
    ),
    (
        "samplers.py",
        "_, pred_next = _predict(denoiser, x_tilde * float(scale[i - 1]), schedule, i - 1)",
        "_, pred_next = _predict(denoiser, x_tilde * float(scale[i]), schedule, i - 1)",
        "Heun's predictor evaluated at the wrong scale",
    ),
    (
        "learned_schedule.py",
        "diffusion = 0.5 * dg * (eps - eps_hat).pow(2).flatten(1).sum(1)",
        "diffusion = 0.65 * dg * (eps - eps_hat).pow(2).flatten(1).sum(1)",
        "VDM diffusion term scaled by 1.3",
    ),
    (
        "learned_schedule.py",
        "prior = 0.5 * (var1 + (1.0 - var1) * x.pow(2) - 1.0 - torch.log(var1)).flatten(1).sum(1)",
        "prior = 0.5 * (var1 + var1 * x.pow(2) - 1.0 - torch.log(var1)).flatten(1).sum(1)",
        "VDM prior with σ² in place of α²",
    ),
    (
        "learned_schedule.py",
        "t = torch.linspace(0.0, 1.0, num_steps, dtype=torch.float64)",
        "t = torch.arange(num_steps, dtype=torch.float64) / num_steps",
        "discretization grid i/T instead of i/(T-1)",
    ),
    (
        "learned_schedule.py",
        "t = ((u0 + torch.arange(n, device=x.device) / n) % 1.0).requires_grad_(True)",
        "t = torch.rand(n, generator=generator, device=x.device).requires_grad_(True)",
        "plain uniform t instead of the low-discrepancy grid (draws change)",
    ),
    (
        "vlb.py",
        "return _per_sample(normal_kl(math.sqrt(ab) * x0, log_var, zero, zero))",
        "return _per_sample(normal_kl(ab * x0, log_var, zero, zero))",
        "prior KL with ᾱ in place of √ᾱ",
    ),
    (
        "vlb.py",
        "return len(denoiser.schedule) * per_dim",
        "return per_dim",
        "hybrid loss without its factor T",
    ),
    (
        "schedule.py",
        "return torch.log(torch.cat([var[1:2], var[1:]]))",
        "return torch.log(torch.cat([var[2:3], var[1:]]))",
        "clipped log-variance at t = 0 from the wrong step",
    ),
    (
        "schedule.py",
        "f = (-torch.sigmoid((u * (end - start) + start) / tau) + v_end) / (v_end - v_start)",
        "f = (-torch.sigmoid(u * (end - start) / tau + start) + v_end) / (v_end - v_start)",
        "sigmoid schedule: τ applied to part of the argument",
    ),
    (
        "process.py",
        "return sigma / det, -b / det, -alpha / det, a / det",
        "return sigma / det, -b / det, alpha / det, a / det",
        "ε inversion with the sign of α flipped",
    ),
    (
        "objectives.py",
        "w[0] = 0.5 / schedule.betas[0]",
        "w[0] = 0.5 / schedule.posterior_variance[1]",
        "ELBO weight at t = 0 from β̃_1 instead of β_0",
    ),
)

_ONE_ELEMENT = "with one element ab[1:] and ab[:-1] are empty and the check passes either way (empty is refused above)"
_SIGMOID_NORM = (
    "the normalizer (v_end - v_start) is a constant factor of f, which cancels in the ratios f[k+1]/f[k] that are "
    "all the schedule uses (only the last bit of rounding differs)"
)
_SAME_AS_X0 = "x starts as x0 and each step keeps its shape, dtype and device"
_LONGER_HISTORY = (
    "the history keeps at least the newest `order` predictions and the updates read only those, so keeping more "
    "changes nothing"
)
_LIKE = "only the dtype, device and shape of the tensor are read, and x_0 and x_t have the same ones"
_XT_CANCELS = (
    "x_t enters L_{t-1} only through μ̃(x_t, x_0) - μ̃(x_t, x̂_0) = coef_x0 (x_0 - x̂_0), where it cancels, and at "
    "t = 0 its coefficient is 0 (only rounding differs)"
)
_CANNOT_FIRE = (
    "the guard cannot fire (distinct timesteps for every count, tested for T = 40 and 1000), so a weaker guard "
    "behaves the same"
)

#: Mutants whose behaviour is provably identical to the original: (module, mutated line) -> why.
EQUIVALENT: dict[tuple[str, str], str] = {
    ("schedule.py", "return len(self.alphas)"): "alphas = alphas_cumprod / alphas_cumprod_prev has the same length",
    ("schedule.py", "return len(self.alphas_cumprod_prev)"): "alphas_cumprod_prev is [1, ᾱ_0..ᾱ_{K-2}]: same length",
    ("schedule.py", "if len(ab) >= 1 and not bool((ab[1:] < ab[:-1]).all()):"): _ONE_ELEMENT,
    ("schedule.py", "if len(ab) > 0 and not bool((ab[1:] < ab[:-1]).all()):"): _ONE_ELEMENT,
    ("schedule.py", "v_start = torch.sigmoid(torch.tensor(start * tau, dtype=torch.float64))"): _SIGMOID_NORM,
    ("schedule.py", "v_start = torch.sigmoid(torch.tensor(start, dtype=torch.float64))"): _SIGMOID_NORM,
    (
        "schedule.py",
        "f = (-torch.sigmoid((u * (end - start) + start) / tau) + v_end) * (v_end - v_start)",
    ): _SIGMOID_NORM,
    ("schedule.py", "f = (-torch.sigmoid((u * (end - start) + start) / tau) + v_end)"): _SIGMOID_NORM,
    (
        "schedule.py",
        "f = (-torch.sigmoid((u * (end - start) + start) / tau) + v_end) / (v_end + v_start)",
    ): _SIGMOID_NORM,
    ("schedule.py", "f = (-torch.sigmoid((u * (end - start) + start) / tau) + v_end) / (v_end)"): _SIGMOID_NORM,
    ("schedule.py", "if bool((ts[1:] < ts[:-1]).any()):"): _CANNOT_FIRE,
    ("schedule.py", "if bool((ts[1:] <= ts[:1]).any()):"): _CANNOT_FIRE,
    ("schedule.py", "return torch.Tensor(out)"): "both make float32 from a list of Python numbers (the caller casts)",
    ("samplers.py", "return _dpmpp_multistep(denoiser, x, schedule, callback, order=4, sde=False)"): (
        "_multistep_update takes every order above 2 as 3 (it reads the newest three predictions), so keeping a "
        "fourth in the history changes nothing"
    ),
    ("schedule.py", "if num_steps == 0:"): (
        "the one-step shortcut of noise_spaced_timesteps: without it one level goes through the general path, "
        "whose pull-back ends every grid at the last timestep, so one step still gives [T-1] as int64 (checked "
        "for cosine, linear and sigmoid at T = 2, 10, 1000); zero steps are refused before it"
    ),
    ("schedule.py", "for i in range(len(out) - 2, -0, -1):"): (
        "skips the pull-back of out[0], which never changes it: on a grid that starts at 0 with at most last + 1 "
        "points, out[1] >= 1 after the pull-back (pushed values are >= their index, pulled ones "
        ">= last - (K-1-i) >= i)"
    ),
    ("process.py", "noise = torch.randn(x0.shape, generator=generator, dtype=x.dtype, device=x.device)"): _SAME_AS_X0,
    ("process.py", "noise = torch.randn(x.shape, generator=generator, dtype=x0.dtype, device=x.device)"): _SAME_AS_X0,
    ("process.py", "noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x0.device)"): _SAME_AS_X0,
    (
        "process.py",
        "return at(schedule.posterior_mean_coef_x0, i, x0) * x0 + at(schedule.posterior_mean_coef_xt, i, xt) * xt",
    ): _LIKE,
    (
        "process.py",
        "return at(schedule.posterior_mean_coef_x0, i, xt) * x0 + at(schedule.posterior_mean_coef_xt, i, x0) * xt",
    ): _LIKE,
    ("process.py", "return at(a, i, x0) * x0 + at(b, i, xt) * eps"): _LIKE,
    ("process.py", "return at(a, i, xt) * x0 + at(b, i, x0) * eps"): _LIKE,
    ("objectives.py", "goal = target_from(denoiser.target, schedule, x0, t, x0, noise)"): _LIKE,
    ("objectives.py", "per_elem = elementwise_loss(self.loss, pred, goal) * at(weights, t, xt)"): _LIKE,
    ("objectives.py", "w = 0.5 * (torch.cat([snr[-1:], snr[:-1]]) - snr)"): "w[0] is overwritten on the next line",
    ("objectives.py", "loss = per_elem.flatten(1).mean(dim=0).mean()"): (
        "every sample has the same number of features, so the mean of column means is the mean of row means "
        "(rounding aside)"
    ),
    (
        "objectives.py",
        "for p, grad in zip(self.params, vdm_gradients(terms, vlb, self.params, gamma), strict=False):",
    ): "vdm_gradients returns one gradient per parameter it is given, so the lengths always match",
    (
        "samplers.py",
        "if sigma > 0 and i >= 0:",
    ): "at i = 0, ᾱ_{-1} = 1 makes σ exactly 0, so the condition is false anyway",
    ("vlb.py", "true_log_var = at(schedule.posterior_log_variance_clipped, i, x0)"): _LIKE,
    ("vlb.py", "kl = _per_sample(normal_kl(true_mean, true_log_var.expand_as(x0), model_mean, log_var))"): _LIKE,
    ("vlb.py", "return torch.where(i.to(x0.device) == 0, decoder, kl)"): _LIKE,
    ("vlb.py", "log_var = ddpm_log_variance(schedule, idx, x0, variance, var_interp)"): _LIKE,
    ("vlb.py", 'log_var = ddpm_log_variance(denoiser.schedule, t, x0, "learned", var_interp)'): _LIKE,
    ("vlb.py", "per_dim = vlb_term(denoiser.schedule, x0, xt, t, x0_pred, log_var) / x0_pred[0].numel()"): _LIKE,
    ("vlb.py", "per_dim = vlb_term(denoiser.schedule, x0, xt, t, x0_pred, log_var) / xt[0].numel()"): _LIKE,
    ("vlb.py", "per_dim = vlb_term(denoiser.schedule, x0, x0, t, x0_pred, log_var) / x0[0].numel()"): _XT_CANCELS,
    ("vlb.py", "terms[i] = vlb_term(schedule, x0, x0, idx, pred.x0.double().cpu(), log_var)"): _XT_CANCELS,
    (
        "learned_schedule.py",
        "grads_shape = torch.autograd.grad(terms.diffusion.pow(2).mean(), shape, allow_unused=False)",
    ): "every shape parameter enters γ(t), hence γ'(t) and L_diff, so none is ever unused",
    (
        "learned_schedule.py",
        "by_id = {id(p): g for p, g in zip([*rest, *shape], [*grads_rest, *grads_shape], strict=False)}",
    ): "autograd.grad returns one gradient per input, so both lists have the same length",
}

#: The multistep history line, keeping a longer history than the solver reads.
_HISTORY = "history = [*history[-({}) :], (pred.x0, float(lam[i]))]"
EQUIVALENT.update(
    {("samplers.py", _HISTORY.format(keep)): _LONGER_HISTORY for keep in ("order", "order - 0", "order + 1")}
)


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One changed line of one module."""

    module: str
    line: int  # 1-based
    original: str  # the whole original line
    mutated: str  # the whole mutated line
    kind: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.module, self.mutated.strip())

    def where(self) -> str:
        return f"src/difflab/{self.module}:{self.line}"

    def apply(self, source: str) -> str:
        lines = source.splitlines(keepends=True)
        ending = lines[self.line - 1][len(lines[self.line - 1].rstrip("\r\n")) :]
        if lines[self.line - 1].rstrip("\r\n") != self.original:
            raise RuntimeError(f"{self.where()} no longer reads {self.original.strip()!r}")
        lines[self.line - 1] = self.mutated + ending
        return "".join(lines)


# --- generating mutants ---------------------------------------------------------------------------------

_OP_SWAPS: dict[type, tuple[tuple[str, str], ...]] = {
    ast.Add: (("+", "-"),),
    ast.Sub: (("-", "+"),),
    ast.Mult: (("*", "/"),),
    ast.Div: (("/", "*"),),
    ast.FloorDiv: (("//", "/"),),
    ast.Pow: (("**", "*"),),
    ast.Mod: (("%", "/"),),
}
_CMP_SWAPS: dict[type, tuple[tuple[str, str], ...]] = {
    ast.Lt: (("<", "<="), ("<", ">")),
    ast.LtE: (("<=", "<"), ("<=", ">=")),
    ast.Gt: ((">", ">="), (">", "<")),
    ast.GtE: ((">=", ">"), (">=", "<=")),
    ast.Eq: (("==", "!="),),
    ast.NotEq: (("!=", "=="),),
    ast.Is: (("is", "is not"),),
    ast.IsNot: (("is not", "is"),),
    ast.In: (("in", "not in"),),
    ast.NotIn: (("not in", "in"),),
}
_SQRT_OWNERS = {"math", "torch", "np", "numpy"}
_ATOMS = (ast.Name, ast.Attribute, ast.Constant, ast.Call, ast.Subscript)


def _number_mutants(value: object) -> list[object]:
    """Plausible wrong values for a numeric constant."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return {0: [1], 1: [0, 2], 2: [1, 3]}.get(value, [value + 1, value - 1])
    if isinstance(value, float):
        if value == 0.0:
            return [1.0]
        if value == 1.0:
            return [2.0]
        if value == 0.5:
            return [1.0, 0.25]
        if value == 2.0:
            return [1.0, 4.0]
        if abs(value) < 0.1:
            return [value * 10]
        return [value * 2, value / 2]
    return []


def _similar(a: str, b: str) -> bool:
    """Names a reader could mix up: one extends the other (x / x0 / x_tilde), or one character differs (g0 / g1)."""
    if a == b or a.startswith("_") or b.startswith("_"):
        return False
    short, long_ = sorted((a, b), key=len)
    if long_.startswith(short):
        rest = long_[len(short) :]
        return rest[0] in "_0123456789" or len(short) >= 3
    if len(a) == len(b) >= 2:
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    return False


def _bound_names(node: ast.AST) -> dict[str, int]:
    """Names a function (or lambda) binds, each with the line of its first binding."""
    first: dict[str, int] = {}
    args = node.args  # type: ignore[attr-defined]
    for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
        if a is not None:
            first[a.arg] = node.lineno  # type: ignore[attr-defined]
    body = node.body if isinstance(node.body, list) else [node.body]  # type: ignore[attr-defined]
    for stmt in body:
        for sub in ast.walk(stmt):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                first[sub.id] = min(first.get(sub.id, sub.lineno), sub.lineno)
    return first


class _Finder(ast.NodeVisitor):
    """Collects single-line text edits (line, start, end, replacement, kind); columns count characters."""

    def __init__(self, source: str) -> None:
        self.lines = source.splitlines()
        self.edits: list[tuple[int, int, int, str, str]] = []
        self.scopes: list[dict[str, int]] = []
        tree = ast.parse(source)
        self.attributes = sorted({n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)})
        module_names: dict[str, int] = {}
        for stmt in tree.body:
            if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                for sub in ast.walk(stmt):
                    if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                        module_names.setdefault(sub.id, stmt.lineno)
        self.scopes.append(module_names)
        self.visit(tree)

    # positions: ast columns are UTF-8 byte offsets, edits are made on characters
    def _col(self, line: int, byte_col: int) -> int:
        return len(self.lines[line - 1].encode()[:byte_col].decode())

    def _span(self, node: ast.AST) -> tuple[int, int, int] | None:
        if node.lineno != node.end_lineno:  # type: ignore[attr-defined]
            return None
        line = node.lineno  # type: ignore[attr-defined]
        return line, self._col(line, node.col_offset), self._col(line, node.end_col_offset)  # type: ignore[attr-defined]

    def _text(self, node: ast.AST) -> str | None:
        span = self._span(node)
        return None if span is None else self.lines[span[0] - 1][span[1] : span[2]]

    def _add(self, line: int, start: int, end: int, replacement: str, kind: str) -> None:
        self.edits.append((line, start, end, replacement, kind))

    def _replace(self, node: ast.AST, replacement: str, kind: str) -> None:
        span = self._span(node)
        if span is not None:
            self._add(*span, replacement, kind)

    def _operand(self, node: ast.AST) -> str | None:
        text = self._text(node)
        if text is None:
            return None
        return text if isinstance(node, _ATOMS) else f"({text})"

    def _swap_between(self, left: ast.AST, right: ast.AST, old: str, new: str, kind: str) -> None:
        """Replace the operator token `old` that sits between two operands on one line."""
        if left.end_lineno != right.lineno:  # type: ignore[attr-defined]
            return
        line = right.lineno  # type: ignore[attr-defined]
        start, end = self._col(line, left.end_col_offset), self._col(line, right.col_offset)  # type: ignore[attr-defined]
        gap = self.lines[line - 1][start:end]
        bare = gap.replace("(", " ").replace(")", " ")
        if bare.strip() != old:
            return
        at = start + bare.index(old)
        self._add(line, at, at + len(old), new, kind)

    # scopes and the code that is never mutated
    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        for default in [*node.args.defaults, *[d for d in node.args.kw_defaults if d is not None]]:
            self.visit(default)
        self.scopes.append(_bound_names(node))
        body = node.body if isinstance(node.body, list) else [node.body]
        if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
            body = body[1:]  # the docstring
        for stmt in body:
            self.visit(stmt)
        self.scopes.pop()

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function
    visit_Lambda = _visit_function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for stmt in node.body:
            if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
                self.visit(stmt)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        pass

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        pass

    def visit_Import(self, node: ast.Import) -> None:
        pass

    # the mutation operators
    def visit_BinOp(self, node: ast.BinOp) -> None:
        for old, new in _OP_SWAPS.get(type(node.op), ()):
            self._swap_between(node.left, node.right, old, new, "operator")
        if isinstance(node.op, ast.Pow) and isinstance(node.right, ast.Constant):
            swap = {2: "0.5", 0.5: "2"}.get(node.right.value)  # type: ignore[call-overload]  # 2.0 == 2
            if swap is not None:
                self._replace(node.right, swap, "power")
        left, right = self._operand(node.left), self._operand(node.right)
        if left is not None and right is not None and self._span(node) is not None:
            if isinstance(node.op, (ast.Add, ast.Mult)):
                self._replace(node, left, "drop term")
                self._replace(node, right, "drop term")
            elif isinstance(node.op, (ast.Sub, ast.Div, ast.Pow, ast.FloorDiv)):
                self._replace(node, left, "drop term")
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        for old, new in _OP_SWAPS.get(type(node.op), ()):
            self._swap_between(node.target, node.value, old + "=", new + "=", "operator")
        self._delete(node)
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        old, new = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
        for left, right in zip(node.values, node.values[1:], strict=False):
            self._swap_between(left, right, old, new, "boolean")
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        for left, op, right in zip([node.left, *node.comparators], node.ops, node.comparators, strict=False):
            for old, new in _CMP_SWAPS.get(type(op), ()):
                self._swap_between(left, right, old, new, "comparison")
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        span = self._span(node)
        if span is not None and isinstance(node.op, (ast.USub, ast.Not)):
            line, start, _ = span
            token = "-" if isinstance(node.op, ast.USub) else "not"
            if self.lines[line - 1][start : start + len(token)] == token:
                width = len(token) + (
                    len(self.lines[line - 1][start + len(token) :])
                    - len(self.lines[line - 1][start + len(token) :].lstrip())
                )
                self._add(line, start, start + width, "", "negation")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        for value in _number_mutants(node.value):
            self._replace(node, repr(value) if isinstance(value, (float, bool)) else str(value), "constant")

    def visit_Name(self, node: ast.Name) -> None:
        if not isinstance(node.ctx, ast.Load):
            return
        scope = self.scopes[-1]
        if node.id not in scope:
            return
        for other in sorted(scope):
            if _similar(node.id, other) and scope[other] <= node.lineno:
                self._replace(node, other, "name")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        span = self._span(node)
        if span is not None and isinstance(node.ctx, ast.Load) and isinstance(node.value, (ast.Name, ast.Attribute)):
            line, _, end = span
            swaps = [a for a in self.attributes if _similar(node.attr, a)]
            swaps += {"clamp_min": ["clamp_max"], "clamp_max": ["clamp_min"]}.get(node.attr, [])
            for other in swaps:
                self._add(line, end - len(node.attr), end, other, "attribute")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        text = self._text(node)
        func = node.func
        if text is not None and isinstance(func, ast.Attribute) and func.attr == "sqrt":
            if not node.args and text.endswith(".sqrt()"):
                self._replace(node, self._operand(func.value) or text[: -len(".sqrt()")], "drop sqrt")
            elif isinstance(func.value, ast.Name) and func.value.id in _SQRT_OWNERS and len(node.args) == 1:
                self._replace(node, f"({self._text(node.args[0])})", "drop sqrt")
        if isinstance(func, ast.Name) and func.id in ("min", "max"):
            self._replace(func, "max" if func.id == "min" else "min", "min/max")
        for kw in node.keywords:
            if kw.arg in ("min", "max") and kw.lineno == kw.end_lineno:  # type: ignore[attr-defined]
                line, start = kw.lineno, self._col(kw.lineno, kw.col_offset)  # type: ignore[attr-defined]
                self._add(line, start, start + len(kw.arg), "max" if kw.arg == "min" else "min", "min/max")
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        index = node.slice
        if isinstance(index, ast.Name):
            self._replace(index, f"{index.id} - 1", "index")
        elif (
            isinstance(index, ast.BinOp)
            and isinstance(index.left, ast.Name)
            and isinstance(index.op, (ast.Add, ast.Sub))
            and isinstance(index.right, ast.Constant)
            and index.right.value == 1
        ):
            self._replace(index, index.left.id, "index")
        elif isinstance(index, ast.Slice) and index.step is None:
            text = self._text(index)
            swap = {":-1": "1:", "1:": ":-1", ":1": "-1:", "-1:": ":1"}.get((text or "").replace(" ", ""))
            if swap is not None:
                self._replace(index, swap, "slice")
        self.generic_visit(node)

    def visit_If(self, node: ast.If) -> None:
        text = self._text(node.test)
        if text is not None:
            self._replace(node.test, f"not ({text})", "negated condition")
        self.generic_visit(node)

    def _delete(self, node: ast.stmt) -> None:
        """Replace a statement by `pass` where the code still runs: a reassignment, an update, a call."""
        if node.lineno != node.end_lineno:
            return
        line = node.lineno
        indent = len(self.lines[line - 1]) - len(self.lines[line - 1].lstrip())
        code = self._text(node)  # named in a comment, so that each deletion has its own text
        self._add(line, indent, len(self.lines[line - 1]), f"pass  # deleted: {code}", "deleted statement")

    def visit_Assign(self, node: ast.Assign) -> None:
        if len(self.scopes) > 1:
            target = node.targets[0]
            reassigned = isinstance(target, ast.Name) and self.scopes[-1].get(target.id, node.lineno) < node.lineno
            if reassigned or isinstance(target, ast.Subscript):
                self._delete(node)
        self.generic_visit(node)

    def visit_Expr(self, node: ast.Expr) -> None:
        if len(self.scopes) > 1 and isinstance(node.value, ast.Call):
            self._delete(node)
        self.generic_visit(node)


def _comment_free(line: str) -> str:
    """The code of a line without a trailing comment (for comparing a mutant with its original)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return line.strip()
    return " ".join(t.string for t in tokens if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE))


def generate(module: str, source: str | None = None) -> list[Mutant]:
    """Every mutant of one module that compiles and differs from the original, in line order."""
    source = (PACKAGE / module).read_text() if source is None else source
    lines = source.splitlines()
    finder = _Finder(source)
    seen: set[tuple[int, str]] = set()
    out: list[Mutant] = []
    candidates = [  # hand-written first, so that a generated duplicate does not take its label
        (number, text[: len(text) - len(text.lstrip())] + mistaken, "hand: " + label)
        for mod, original, mistaken, label in HANDWRITTEN
        if mod == module
        for number, text in enumerate(lines, 1)
        if text.strip() == original
    ]
    candidates += [
        (line, lines[line - 1][:start] + repl + lines[line - 1][end:], kind)
        for line, start, end, repl, kind in finder.edits
    ]
    for line, mutated, kind in sorted(candidates, key=lambda c: c[0]):
        if (line, mutated) in seen or _comment_free(mutated) == _comment_free(lines[line - 1]):
            continue
        seen.add((line, mutated))
        mutant = Mutant(module, line, lines[line - 1], mutated, kind)
        try:
            compile(mutant.apply(source), module, "exec")
        except SyntaxError:
            continue
        out.append(mutant)
    return out


def stale_handwritten() -> list[str]:
    """Hand-written mutants whose original line no longer exists."""
    missing = []
    for module, original, _, label in HANDWRITTEN:
        if not any(text.strip() == original for text in (PACKAGE / module).read_text().splitlines()):
            missing.append(f"{module}: {label}: {original!r}")
    return missing


# --- running the tests against one mutant ------------------------------------------------------------------


def _test_files(module: str | None, root: Path, only: set[str] | None = None) -> list[str]:
    """Every unit test file, those that mirror `module` first; with `only`, just the files those node ids live in.

    All of tests/unit, not a list of "math" files: a new test file of a math module (test_noise_spacing.py was
    one) must count without anyone remembering to list it, and tracing keeps each mutant to the tests that
    execute its line.
    """
    first = MIRRORS.get(module or "", ())
    every = sorted(p.name for p in (root / "tests" / "unit").glob("test_*.py"))
    files = [f"tests/unit/{f}" for f in [*first, *(f for f in every if f not in first)]]
    files = [f for f in files if (root / f).exists()]
    if only is not None:
        files = [f for f in files if any(n.split("::")[0] == f for n in only)]
    return [str(root / f) for f in files]


class _Recorder:
    """A pytest plugin that remembers the first failing test (or collection error)."""

    def __init__(self) -> None:
        self.first: str | None = None

    def pytest_runtest_logreport(self, report) -> None:  # type: ignore[no-untyped-def]
        if report.failed and self.first is None:
            self.first = report.nodeid

    def pytest_collectreport(self, report) -> None:  # type: ignore[no-untyped-def]
        if report.failed and self.first is None:
            self.first = report.nodeid or "collection"


class _Select:
    """A pytest plugin that keeps only the given tests (those that run the mutated line), the quickest of each
    file first, so that a caught mutant costs little."""

    def __init__(self, keep: set[str] | None, seconds: dict[str, float]) -> None:
        self.keep = keep
        self.seconds = seconds

    def pytest_collection_modifyitems(self, config, items) -> None:  # type: ignore[no-untyped-def]
        if self.keep is not None:
            dropped = [item for item in items if item.nodeid not in self.keep]
            if dropped:
                config.hook.pytest_deselected(items=dropped)
                items[:] = [item for item in items if item.nodeid in self.keep]
        files = list(dict.fromkeys(item.nodeid.split("::")[0] for item in items))
        items.sort(key=lambda item: (files.index(item.nodeid.split("::")[0]), self.seconds.get(item.nodeid, 0.0)))


class _Coverage:
    """A pytest plugin recording which lines of the math modules each test runs, with a trace function.

    Lines run while a file is collected, or while a test is set up or torn down (module fixtures), are
    credited to every test of that file; lines run by the test itself to that test alone.
    """

    def __init__(self, package: Path) -> None:
        self.modules = {str(package / m): m for m in MODULES}
        self.known: dict[str, str | None] = {}
        self.context = "file:"
        self.lines: dict[str, set[tuple[str, int]]] = {}
        self.order: list[str] = []
        self.seconds: dict[str, float] = {}

    def _module(self, filename: str) -> str | None:
        if filename not in self.known:
            self.known[filename] = self.modules.get(os.path.realpath(filename))
        return self.known[filename]

    def trace(self, frame, event, arg):  # type: ignore[no-untyped-def]
        module = self._module(frame.f_code.co_filename)
        if module is None:
            return None
        self.lines.setdefault(self.context, set()).add((module, frame.f_lineno))
        return self._line

    def _line(self, frame, event, arg):  # type: ignore[no-untyped-def]
        if event == "line":
            self.lines.setdefault(self.context, set()).add((self._module(frame.f_code.co_filename), frame.f_lineno))  # type: ignore[arg-type]
        return self._line

    @pytest.hookimpl(hookwrapper=True)
    def pytest_make_collect_report(self, collector):  # type: ignore[no-untyped-def]
        self.context = "file:" + collector.nodeid.split("::")[0]
        yield

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_setup(self, item):  # type: ignore[no-untyped-def]
        self.order.append(item.nodeid)
        self.context = "file:" + item.nodeid.split("::")[0]
        yield

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):  # type: ignore[no-untyped-def]
        self.context = item.nodeid
        yield
        self.context = "file:" + item.nodeid.split("::")[0]

    def pytest_runtest_logreport(self, report) -> None:  # type: ignore[no-untyped-def]
        self.seconds[report.nodeid] = self.seconds.get(report.nodeid, 0.0) + report.duration

    def per_test(self) -> dict[str, dict[str, object]]:
        """Each test's lines (its file's shared lines included) and seconds, in run order."""
        out = {}
        for nodeid in self.order:
            lines = self.lines.get(nodeid, set()) | self.lines.get("file:" + nodeid.split("::")[0], set())
            out[nodeid] = {"lines": sorted([m, n] for m, n in lines), "seconds": self.seconds.get(nodeid, 0.0)}
        return out


@dataclasses.dataclass
class Job:
    """What one forked child runs: a mutant (None: the unmutated code) against all tests or the selected ones."""

    mutant: Mutant | None
    selected: set[str] | None = None
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    coverage: Path | None = None
    timeout: float = float("inf")


def _child(copy: Path, job: Job, result: Path, log: Path) -> None:
    """In the forked child: write the mutant into the copy, run the tests on it, report, and exit."""
    code = 3
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.setpgid(0, 0)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        sys.dont_write_bytecode = True
        mutant = job.mutant
        if mutant is not None:
            target = copy / "src" / "difflab" / mutant.module
            target.write_text(mutant.apply(target.read_text()))
        keep = [
            p for p in sys.path if not (Path(p or ".") / "difflab").is_dir() and not (Path(p or ".") / "tests").is_dir()
        ]
        sys.path[:] = [str(copy / "src"), str(copy), *keep]
        os.chdir(copy)
        plugins: list[object] = [recorder := _Recorder()]
        plugins.append(_Select(job.selected, job.seconds))
        coverage = _Coverage((copy / "src" / "difflab").resolve()) if job.coverage is not None else None
        if coverage is not None:
            plugins.append(coverage)
            threading.settrace(coverage.trace)
            sys.settrace(coverage.trace)
        import difflab

        if not Path(difflab.__file__).resolve().is_relative_to(copy.resolve()):
            raise RuntimeError(f"imported difflab from {difflab.__file__}, not from the mutated copy")
        files = _test_files(mutant.module if mutant else None, copy, job.selected)
        code = int(pytest.main([*files, "-x", "-q", "-p", "no:cacheprovider"], plugins=plugins))
        if coverage is not None and job.coverage is not None:
            sys.settrace(None)
            job.coverage.write_text(json.dumps(coverage.per_test()))
        result.write_text(json.dumps({"rc": code, "killer": recorder.first}))
    except BaseException as e:
        with contextlib.suppress(Exception):
            result.write_text(json.dumps({"rc": 3, "killer": f"harness: {type(e).__name__}: {e}"}))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _statement_spans(source: str) -> tuple[set[int], list[tuple[int, int]]]:
    """Lines that only run when a function is called, and the (first, last) line of every statement.

    Everything else (module and class bodies, signatures with their defaults, decorators) runs at import,
    before any test, so a mutant there must face every test.
    """
    tree = ast.parse(source)
    in_functions: set[int] = set()
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for stmt in node.body:
                in_functions.update(range(stmt.lineno, stmt.end_lineno + 1))  # type: ignore[operator]
        if isinstance(node, ast.stmt):
            spans.append((node.lineno, node.end_lineno or node.lineno))
    return in_functions, spans


def _covering(mutant: Mutant, coverage: dict[str, set[tuple[str, int]]], order: list[str]) -> set[str] | None:
    """The tests that run the mutated line (None: all tests, for a line that runs at import)."""
    in_functions, spans = _statement_spans((PACKAGE / mutant.module).read_text())
    if mutant.line not in in_functions:
        return None
    first, last = min((s for s in spans if s[0] <= mutant.line <= s[1]), key=lambda s: s[1] - s[0])
    lines = {(mutant.module, n) for n in range(first, last + 1)}
    return {nodeid for nodeid in order if coverage[nodeid] & lines}


@dataclasses.dataclass
class Outcome:
    mutant: Mutant | None
    status: str  # caught, survived, timeout, error, equivalent
    seconds: float = 0.0
    killer: str | None = None


class Slot:
    """A private copy of the package and its tests (as they were at the start) where one mutant at a time runs."""

    def __init__(self, root: Path, number: int) -> None:
        self.copy = root / f"slot{number}"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(PACKAGE, self.copy / "src" / "difflab", ignore=ignore)
        shutil.copytree(ROOT / "tests", self.copy / "tests", ignore=ignore)
        shutil.copy2(ROOT / "pyproject.toml", self.copy / "pyproject.toml")
        self.pristine = {m: (self.copy / "src" / "difflab" / m).read_text() for m in MODULES}
        self.pid: int | None = None
        self.mutant: Mutant | None = None
        self.started = 0.0
        self.timeout = float("inf")
        self.result = root / f"slot{number}.json"
        self.log = root / f"slot{number}.log"

    def start(self, job: Job) -> None:
        self.restore()
        self.result.unlink(missing_ok=True)
        self.mutant, self.started, self.timeout = job.mutant, time.monotonic(), job.timeout
        pid = os.fork()
        if pid == 0:
            _child(self.copy, job, self.result, self.log)
        self.pid = pid

    def poll(self) -> Outcome | None:
        """The outcome once the child has finished (or been killed for taking too long), else None."""
        assert self.pid is not None
        elapsed = time.monotonic() - self.started
        pid, _ = os.waitpid(self.pid, os.WNOHANG)
        if pid == 0 and elapsed < self.timeout:
            return None
        try:
            if pid == 0:
                self.kill()
                return Outcome(self.mutant, "timeout", elapsed)
            report = json.loads(self.result.read_text()) if self.result.exists() else {"rc": -1, "killer": None}
            rc, killer = report["rc"], report["killer"]
            if rc == 0:
                return Outcome(self.mutant, "survived", elapsed)
            if rc in (1, 2) or (rc == 3 and not str(killer).startswith("harness")):
                return Outcome(self.mutant, "caught", elapsed, killer)
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            return Outcome(self.mutant, "error", elapsed, f"rc {rc} {killer or ''} {tail}")
        finally:
            self.pid = None
            self.restore()

    def kill(self) -> None:
        if self.pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)  # the child's own process group (it called setpgid)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        self.pid = None

    def restore(self) -> None:
        for module, text in self.pristine.items():
            path = self.copy / "src" / "difflab" / module
            if path.read_text() != text:
                path.write_text(text)


# --- the parent ---------------------------------------------------------------------------------------------


def _preimport() -> None:
    """Import, once, the third-party modules the tests load, so forked children start with them in memory."""
    probe = (
        "import sys, json, pytest\n"
        f"sys.path[:0] = [{str(ROOT / 'src')!r}, {str(ROOT)!r}]\n"
        f"pytest.main([*{_test_files(None, ROOT)!r}, '--collect-only', '-q', '-p', 'no:cacheprovider'])\n"
        "print('\\nMODULES ' + json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=False)
    names = json.loads(out.stdout.rsplit("MODULES ", 1)[1]) if "MODULES " in out.stdout else []
    for name in names:
        if name.split(".")[0] in ("difflab", "tests", "conftest", "__main__") or name.startswith("test_"):
            continue
        with contextlib.suppress(Exception):
            __import__(name)


def _digest() -> str:
    return hashlib.sha256(b"".join((PACKAGE / m).read_bytes() for m in MODULES)).hexdigest()


def _check_clean(allow_dirty: bool) -> None:
    paths = [str(PACKAGE / m) for m in MODULES]
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", *paths], capture_output=True, text=True, cwd=ROOT, check=False
    ).stdout.strip()
    if dirty and not allow_dirty:
        sys.exit(f"the math modules have uncommitted changes (pass --allow-dirty to test them as they are):\n{dirty}")


def _select(args: argparse.Namespace) -> list[Mutant]:
    wanted = [m if m.endswith(".py") else m + ".py" for m in args.modules.split(",")] if args.modules else MODULES
    unknown = sorted(set(wanted) - set(MODULES))
    if unknown:
        sys.exit(f"unknown module(s) {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    mutants = [m for module in MODULES if module in wanted for m in generate(module)]
    if args.rerun:
        previous = json.loads(Path(args.rerun).read_text())
        keys = {
            (r["module"], r["mutated"].strip()) for r in previous if r["status"] in ("survived", "timeout", "error")
        }
        mutants = [m for m in mutants if m.key in keys]
    if args.limit is not None and args.limit < len(mutants):
        chosen = set(random.Random(args.seed).sample(range(len(mutants)), args.limit))
        mutants = [m for i, m in enumerate(mutants) if i in chosen]
    return mutants


def _run(
    mutants: list[Mutant], jobs: int, timeout: float | None, check_equivalent: bool, all_tests: bool
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    todo: list[Mutant] = []
    for m in mutants:
        if m.key in EQUIVALENT and not check_equivalent:
            outcomes.append(Outcome(m, "equivalent"))
        else:
            todo.append(m)
    root = Path(tempfile.mkdtemp(prefix="difflab-mutation-"))
    slots: list[Slot] = []
    try:
        slots = [Slot(root, j) for j in range(max(1, jobs))]
        base = slots[0]
        traced = root / "coverage.json"
        base.start(Job(None, coverage=traced))
        while (baseline := base.poll()) is None:
            time.sleep(0.05)
        if baseline.status != "survived":
            sys.exit(f"the tests fail on the unmutated code ({baseline.killer}); fix that first")
        traces = json.loads(traced.read_text())
        per_test = {k: {(m, n) for m, n in v["lines"]} for k, v in traces.items()}
        seconds = {k: v["seconds"] for k, v in traces.items()}
        order = list(per_test)
        print(f"baseline: {len(order)} unit tests pass in {baseline.seconds:.1f} s (traced)", flush=True)
        queue: list[Job] = []
        for m in todo:
            selected = None if all_tests else _covering(m, per_test, order)
            if selected is not None and not selected:
                outcomes.append(Outcome(m, "survived", 0.0, "no test runs this line"))
                _progress(len(outcomes), len(mutants), outcomes[-1])
            else:
                # Generous: a mutant that only runs slowly (on a busy machine) must not pass for a caught one.
                limit = timeout or 120.0 + 10.0 * sum(seconds[n] for n in (order if selected is None else selected))
                queue.append(Job(m, selected, seconds, timeout=limit))
        while queue or any(s.pid is not None for s in slots):
            for slot in slots:
                if slot.pid is None and queue:
                    slot.start(queue.pop(0))
                elif slot.pid is not None:
                    outcome = slot.poll()
                    if outcome is not None:
                        outcomes.append(outcome)
                        _progress(len(outcomes), len(mutants), outcome)
            time.sleep(0.05)
    finally:
        for slot in slots:
            slot.kill()
            slot.restore()
        shutil.rmtree(root, ignore_errors=True)
    return outcomes


def _progress(done: int, total: int, o: Outcome) -> None:
    m = o.mutant
    assert m is not None
    killer = f"  <- {o.killer.split('::')[-1][:60]}" if o.status in ("caught", "survived") and o.killer else ""
    print(f"[{done}/{total}] {o.status:8s} {o.seconds:5.1f}s {m.where()}: {m.mutated.strip()[:90]}{killer}", flush=True)


STATUSES = ("caught", "timeout", "survived", "equivalent", "error")


def _row(name: str, counts: dict[str, int]) -> str:
    return f"{name:22s} {sum(counts.values()):7d} " + " ".join(f"{counts[k]:{max(len(k), 6)}d}" for k in STATUSES)


def _report(outcomes: list[Outcome], seconds: float) -> int:
    by_module: dict[str, dict[str, int]] = {}
    for o in outcomes:
        assert o.mutant is not None
        by_module.setdefault(o.mutant.module, dict.fromkeys(STATUSES, 0))[o.status] += 1
    print(f"\n{'module':22s} {'mutants':>7s} " + " ".join(f"{k:>{max(len(k), 6)}s}" for k in STATUSES))
    totals = dict.fromkeys(STATUSES, 0)
    for module in MODULES:
        if module in by_module:
            print(_row(module, by_module[module]))
            for k, v in by_module[module].items():
                totals[k] += v
    n = sum(totals.values())
    print(_row("total", totals))
    for status, title in (("survived", "Survivors"), ("timeout", "Timeouts (counted as caught)"), ("error", "Errors")):
        listed = [o for o in outcomes if o.status == status]
        if listed:
            print(f"\n{title}:")
            for o in sorted(listed, key=lambda o: (MODULES.index(o.mutant.module), o.mutant.line)):  # type: ignore[union-attr]
                m = o.mutant
                assert m is not None
                print(f"  {m.where()}: {m.mutated.strip()}\n      was: {m.original.strip()}  [{m.kind}]")
                if status == "error":
                    print(f"      {o.killer}")
    equivalent = [o for o in outcomes if o.status == "equivalent"]
    if equivalent:
        print("\nEquivalent (not run):")
        for o in equivalent:
            m = o.mutant
            assert m is not None
            print(f"  {m.where()}: {m.mutated.strip()}\n      because {EQUIVALENT[m.key]}")
    extra = "".join(f"; {totals[k]} {k}" for k in ("survived", "error") if totals[k])
    caught = totals["caught"] + totals["timeout"]
    print(f"\nwall time {seconds / 60:.1f} min")
    print(f"mutation score: caught {caught} / {n} ({totals['equivalent']} equivalent, listed{extra})")
    return 1 if totals["survived"] or totals["error"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--modules", help=f"comma-separated, from {', '.join(MODULES)} (default: all)")
    parser.add_argument("--limit", type=int, help="run a random sample of this many mutants")
    parser.add_argument("--seed", type=int, default=0, help="seed of that sample (default 0)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested at once (default 1)")
    parser.add_argument("--timeout", type=float, help="seconds per mutant (default: 120 + 10x its tests' traced time)")
    parser.add_argument("--list", action="store_true", help="print the mutants and exit")
    parser.add_argument("--report", help="write every outcome as JSON to this file")
    parser.add_argument("--rerun", help="only the mutants that survived, timed out or errored in this JSON report")
    parser.add_argument(
        "--all-tests", action="store_true", help="run every unit test on every mutant, not only those that run its line"
    )
    parser.add_argument("--check-equivalent", action="store_true", help="run the EQUIVALENT mutants too")
    parser.add_argument("--allow-dirty", action="store_true", help="test uncommitted changes of the math modules")
    args = parser.parse_args(argv)
    for line in stale_handwritten():
        print(f"warning: stale hand-written mutant {line}", file=sys.stderr)
    mutants = _select(args)
    if args.list:
        for m in mutants:
            print(f"{m.where()} [{m.kind}]: {m.mutated.strip()}")
        print(f"{len(mutants)} mutants")
        return 0
    known = {m.key for module in MODULES for m in generate(module)}
    for key in sorted(set(EQUIVALENT) - known):
        print(f"warning: EQUIVALENT entry matches no mutant: {key}", file=sys.stderr)
    _check_clean(args.allow_dirty)

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds through the finally blocks that kill children and clean up

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    digest = _digest()
    start = time.monotonic()
    _preimport()
    print(f"{len(mutants)} mutants of {', '.join(sorted({m.module for m in mutants}))}", flush=True)
    outcomes = _run(mutants, args.jobs, args.timeout, args.check_equivalent, args.all_tests)
    if _digest() != digest:
        print("error: the math modules changed during the run", file=sys.stderr)
        return 2
    if args.report:
        rows = [
            {**dataclasses.asdict(o.mutant), "status": o.status, "seconds": round(o.seconds, 2), "killer": o.killer}
            for o in outcomes
            if o.mutant is not None
        ]
        Path(args.report).write_text(json.dumps(rows, indent=1, ensure_ascii=False))
    return _report(outcomes, time.monotonic() - start)


if __name__ == "__main__":
    sys.exit(main())
