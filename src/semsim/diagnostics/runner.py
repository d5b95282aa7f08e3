"""``semsim diagnose NAME SUBJECT``: run one measurement (or all), write JSON + PNG + a report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from semsim.diagnostics import plots
from semsim.diagnostics.trajectories import Trajectories, collect
from semsim.errors import SemsimError

NAMES = ("causal", "separator", "stp", "fit-potential", "jacobian-symmetry", "energy", "attractors", "landscape",
         "coverage", "energy-trend", "langevin")
SPLM_ONLY = ("energy", "attractors", "landscape")
SPHERE_ONLY = ("coverage", "energy-trend", "langevin")  # the hypersphere model's splats and sampler
LAYERED = ("separator", "stp", "fit-potential", "jacobian-symmetry")  # need a stack of layers to trace


@dataclass
class Options:
    n_seqs: int = 32
    separator_steps: int = 1500
    separator_hiddens: tuple[int, ...] = (64, 256)
    fit_steps: int = 1500
    pca_k: int = 16
    n_perm: int = 200
    attractor_steps: int = 1500  # published: 1,500 descent steps per prompt
    progress: bool = True
    metrics: str | None = None  # the subject's training log (energy-trend reads it)


class Session:
    """One subject + its validation windows; trajectories collected once and shared."""

    def __init__(self, model, windows: torch.Tensor, out_dir: Path, opts: Options, decode=None):
        self.model, self.windows, self.out, self.opts, self.decode = model, windows, Path(out_dir), opts, decode
        self.out.mkdir(parents=True, exist_ok=True)
        self._traj: Trajectories | None = None

    @property
    def is_splm(self) -> bool:
        return hasattr(self.model, "potential")

    @property
    def is_sphere(self) -> bool:
        return hasattr(self.model, "splats")

    def trajectories(self) -> Trajectories:
        if self._traj is None:
            self._traj = collect(self.model, self.windows, self.opts.n_seqs)
        return self._traj

    def save(self, name: str, result: dict) -> dict:
        (self.out / f"{name}.json").write_text(json.dumps(result, indent=2))
        return result

    # ------------------------------------------------------------------ measurements
    def causal(self) -> dict:
        from semsim.diagnostics.causal import causal_probe

        return self.save("causal", causal_probe(self.model))

    def separator(self) -> dict:
        from semsim.diagnostics import separator as sep

        train, test = self.trajectories().split(0.5)
        o = self.opts
        device = next(self.model.parameters()).device
        with tqdm(total=o.separator_steps * len(o.separator_hiddens), desc="separator", disable=not o.progress) as bar:
            res = sep.separator(train, test, o.separator_hiddens, o.separator_steps, device=device, progress=bar)
        if self.is_splm:
            tr = self.trajectories()
            if tr.m is not None:
                res["oracle"] = sep.oracle(self.model, tr)
        sep.plot_profile(res, self.out / "separator.png")
        return self.save("separator", res)

    def stp(self) -> dict:
        from semsim.diagnostics.stp import stp_stats

        tr = self.trajectories()
        res = {"layer": stp_stats(tr, "layer", n_perm=self.opts.n_perm),
               "sequence": stp_stats(tr, "sequence", n_perm=self.opts.n_perm)}
        return self.save("stp", res)

    def fit_potential(self) -> dict:
        from semsim.diagnostics.potential_fit import fitting_menu

        train, test = self.trajectories().split(0.5)
        res = fitting_menu(train, test, k=min(8, self.opts.pca_k), steps=self.opts.fit_steps)
        forms = [r["form"] for r in res["forms"]]
        plots.bars(forms, [r["r2"] for r in res["forms"]], self.out / "fit_potential.png", "held-out R²",
                   "potential forms", ref=res["static_null_r2"])
        return self.save("fit_potential", res)

    def jacobian_symmetry(self) -> dict:
        from semsim.diagnostics.jacobian import jacobian_symmetry

        return self.save("jacobian_symmetry", jacobian_symmetry(self.trajectories(), self.opts.pca_k))

    def energy(self) -> dict:
        self._need_splm("energy")
        device = next(self.model.parameters()).device
        sums, n = {}, 0
        with torch.no_grad():
            for i in range(0, min(len(self.windows), self.opts.n_seqs), 8):
                e = self.model(self.windows[i : i + 8].to(device), return_extras=True).extras["energy"]
                for k, v in e.items():
                    sums[k] = sums.get(k, 0) + v.double().cpu()
                n += 1
        res = {k: (v / n).tolist() for k, v in sums.items()}
        plots.energy_plot(res, self.out / "energy.png")
        return self.save("energy", res)

    def attractors(self) -> dict:
        from semsim.diagnostics.attractors import attractors

        self._need_splm("attractors")
        prompts = self.windows[:4, :32]
        res = {"prompts": []}
        for p in prompts:
            a = attractors(self.model, p[None].to(next(self.model.parameters()).device),
                           steps=self.opts.attractor_steps, decode=self.decode, progress=self.opts.progress)
            a["prompt"] = self.decode(p.tolist()) if self.decode else p.tolist()
            res["prompts"].append(a)
        return self.save("attractors", res)

    def landscape(self) -> dict:
        from semsim.diagnostics.landscape import landscape_stats

        self._need_splm("landscape")
        res = landscape_stats(self.model, self.windows, max_windows=self.opts.n_seqs)
        vals = res.pop("_values")
        plots.histogram(vals.numpy(), self.out / "landscape.png", "V_θ(ξ, h)", "potential over validation tokens")
        return self.save("landscape", res)

    def coverage(self) -> dict:
        from semsim.diagnostics.splats import coverage

        self._need_sphere("coverage")
        return self.save("coverage", coverage(self.model, self.windows, self.opts.n_seqs))

    def energy_trend(self) -> dict:
        from semsim.diagnostics.splats import energy_trend, plot_energy_trend

        self._need_sphere("energy-trend")
        if self.opts.metrics is None:
            raise SemsimError("energy-trend reads a run's metrics.jsonl: give the run folder (or its checkpoint)")
        res = energy_trend(self.opts.metrics)
        plot_energy_trend(res, self.out / "energy_trend.png")
        return self.save("energy_trend", res)

    def langevin(self) -> dict:
        from semsim.diagnostics.splats import langevin_convergence, plot_langevin

        self._need_sphere("langevin")
        res = langevin_convergence(self.model, self.windows, n_seqs=min(8, self.opts.n_seqs))
        plot_langevin(res, self.out / "langevin.png")
        return self.save("langevin", res)

    def _need_sphere(self, name: str) -> None:
        if not self.is_sphere:
            raise SemsimError(f"diagnostic {name!r} reads a splat store (a sphere-ebm checkpoint)")

    def _need_splm(self, name: str) -> None:
        if not self.is_splm:
            raise SemsimError(f"diagnostic {name!r} needs a model with a potential (an SPLM-family checkpoint)")

    def run(self, name: str) -> dict:
        if name not in NAMES:
            raise SemsimError(f"unknown diagnostic {name!r}; one of {', '.join(NAMES)} or all")
        return getattr(self, name.replace("-", "_"))()

    def names(self) -> list[str]:
        """The measurements that apply to this subject."""
        if self.is_sphere:  # one settled point per token, no stack of layers to trace
            return ["causal", "coverage", "langevin"] + (["energy-trend"] if self.opts.metrics else [])
        return [n for n in NAMES if n not in SPHERE_ONLY and (self.is_splm or n not in SPLM_ONLY)]

    def run_all(self, title: str) -> dict:
        names = self.names()
        results = {}
        for n in tqdm(names, desc="diagnostics", disable=not self.opts.progress):
            results[n] = self.run(n)
        (self.out / "report.md").write_text(report(title, results))
        return results


def report(title: str, r: dict) -> str:
    """A one-page Markdown summary with the figures."""
    lines = [f"# Diagnostics: {title}", ""]
    if "causal" in r:
        c = r["causal"]
        lines += [f"**Causal probe**: {'passed' if c['passed'] else 'FAILED'} "
                  f"(max |Δlogits| before t = {c['max_abs_dlogits_before_t']:.3g}, "
                  f"max gradient from the future = {c['max_abs_grad_from_future']:.3g}).", ""]
    if "separator" in r:
        s = r["separator"]
        lines += ["## Shared-potential separator", "",
                  f"Median held-out R² **{s['median_r2']:.3f}** (velocity only: {s['velocity_only']['median_r2']:.3f}; "
                  f"best V_ψ hidden {s['best_hidden']}). Published: SPLM 0.90, GPT-2-style 8M 0.56, GPT-2 small 0.45.", "",
                  "| layer | " + " | ".join(str(i + 1) for i in range(len(s["r2"]))) + " |",
                  "|---|" + "---|" * len(s["r2"]),
                  "| R² | " + " | ".join(f"{x:.2f}" for x in s["r2"]) + " |", ""]
        if "oracle" in s:
            lines += [f"Oracle (the model's own V_θ): median R² {s['oracle']['median_r2']:.3f}.", ""]
        lines += ["![separator](separator.png)", ""]
    if "stp" in r:
        lines += ["## STP / acceleration decomposition", "", "| axis | STP | decelerating | tangential/normal | z vs shuffled |",
                  "|---|---|---|---|---|"]
        for axis in ("layer", "sequence"):
            t = r["stp"][axis]
            lines.append(f"| {axis} | {t['stp_mean']:.3f} | {t['frac_decelerating']:.1%} | "
                         f"{t['tangential_over_normal']:.2f} | {t['z']:.1f} |")
        lines += ["", "Published (GPT-2): 97.9% decelerating, tangential/normal ≈ 2, z < −11.", ""]
    if "fit-potential" in r:
        f = r["fit-potential"]
        lines += ["## Potential-form fitting", "", f"Best form **{f['best_form']}** (held-out R² {f['best_r2']:.3f}; "
                  f"static null {f['static_null_r2']:.3f}).", "", "![forms](fit_potential.png)", ""]
    if "jacobian-symmetry" in r:
        j = r["jacobian-symmetry"]
        lines += [f"## Jacobian symmetry\n\nMedian asymmetry ‖J − Jᵀ‖/‖J‖ in PCA-{j['k']}: "
                  f"**{j['median_asymmetry']:.3f}** (0: gradient field, 2: pure rotation).", ""]
    if "energy" in r:
        lines += ["## Energy", "", "![energy](energy.png)", ""]
    if "landscape" in r:
        a = r["landscape"]["all"]
        lines += [f"## Landscape\n\nV_θ over {r['landscape']['tokens']} tokens: mean {a['mean']:.3g}, std {a['std']:.3g}, "
                  f"range [{a['min']:.3g}, {a['max']:.3g}].", "", "![landscape](landscape.png)", ""]
    if "coverage" in r:
        c = r["coverage"]
        lines += ["## Splat coverage", "", f"Share of {c['tokens']:,} validation tokens whose nearest of "
                  f"{c['splats_in_use']:,} splats lies within its κ-radius (μ·x ≥ 1 − T/κ, T = {c['temperature']:g}):",
                  f"at the query **{c['query']['coverage']:.1%}**, after settling {c['settled']['coverage']:.1%} "
                  f"(design target {c['target']:.0%}); distinct nearest splats {c['query']['distinct_nearest_splats']:,}.", ""]
    if "energy-trend" in r:
        e = r["energy-trend"]
        slope = e.get("slope_per_1k_steps_second_half")
        lines += ["## Energy trend", "", f"{len(e['steps'])} validations; mean splat energy "
                  f"{e['splat_energy'][0]:.3f} → {e['splat_energy'][-1]:.3f}" + (
                      f", slope over the second half {slope:+.4f} per 1,000 steps" if slope is not None else "") +
                  f"; splats merged or pruned over the run: {e['consolidated']:,}.", "", "![energy trend](energy_trend.png)", ""]
    if "langevin" in r:
        lv = r["langevin"]
        lines += ["## Langevin convergence", "", "| dynamics | E at start | E at end | steps to within 1% of the end |",
                  "|---|---|---|---|"]
        for name in ("langevin", "deterministic"):
            t = lv[name]
            lines.append(f"| {name} (T = {t['temperature']:g}) | {t['start']:.4f} | {t['end']:.4f} | "
                         f"{t['steps_to_1pct_of_final']} |")
        lines += ["", "![langevin](langevin.png)", ""]
    if "attractors" in r:
        lines += ["## Attractors", ""]
        for p in r["attractors"]["prompts"][:2]:
            top = ", ".join(f"{' '.join(json.dumps(t) for t in (a['nearest_tokens'] or a['nearest_ids'])[:3])} "
                            f"({a['weight']:.2f})" for a in p["attractors"][:5])
            lines.append(f"- {json.dumps(str(p['prompt'])[-60:])}: {p['n_attractors']} attractors — {top}")
        lines.append("")
    return "\n".join(lines)
