"""Does the DiT probe work? Its controls, read from a snapshot's eval rows (vtp.stages.eval).

A generation metric means something only if the probe learned to generate the classes it was asked
for. The oracle (the fallback feature network's classifier) reads each generated sample; its accuracy
is compared with two references logged beside it:
  positive control  `oracle_accuracy_recon`: the oracle on decode(encode(real held-out images)), what
                    a perfect generator in this latent space and decoder would reach;
  chance            `oracle_chance` = 1 / number of classes.
A tokenizer configuration's probe passes when its samples' oracle accuracy (mean over the final
checkpoints of its seeds) reaches at least PASS_FRACTION of the control and CHANCE_MULTIPLE x chance.
The negative control is the same probe with a DiT trained on shuffled labels (tag
`probe_labels=shuffled`): it cannot know which class is which, so it must fail the same rule.

Laws are fitted only on configurations whose probe passed (`passing_rows`); the report lists the
others and why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.table import final_checkpoints

PASS_FRACTION = 0.5  # of the positive control
CHANCE_MULTIPLE = 5.0

ORACLE, CONTROL, CHANCE = "metric.oracle_accuracy", "metric.oracle_accuracy_recon", "metric.oracle_chance"
LABELS = "tag.probe_labels"


def probe_passes(oracle: float, control: float, chance: float) -> bool:
    """The rule: oracle >= PASS_FRACTION x control and >= CHANCE_MULTIPLE x chance (NaN fails)."""
    return bool(oracle >= PASS_FRACTION * control and oracle >= CHANCE_MULTIPLE * chance)


def rule_text() -> str:
    return (f"a probe passes when the oracle accuracy of its samples is at least {PASS_FRACTION:g} x the "
            f"control (the oracle on decode(encode(real held-out images))) and at least {CHANCE_MULTIPLE:g} x "
            "chance (1 / classes); mean over the final checkpoints of the configuration's seeds")


@dataclass(frozen=True)
class ProbeCheck:
    key: dict  # by-column -> value: one tokenizer configuration
    labels: str  # "true", or "shuffled" for the negative control
    runs: int  # tokenizer runs (seeds) averaged
    oracle: float
    control: float
    chance: float

    @property
    def passed(self) -> bool:
        return probe_passes(self.oracle, self.control, self.chance)

    @property
    def name(self) -> str:
        return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in self.key.items()) or "all"


def has_controls(frame: pd.DataFrame) -> bool:
    return all(c in frame.columns for c in (ORACLE, CONTROL, CHANCE))


def probe_checks(rows: pd.DataFrame, by: tuple[str, ...]) -> list[ProbeCheck]:
    """One check per (configuration, label kind) from a snapshot's eval-stage rows (all stages whose
    rows carry the oracle metrics: the probe's and its negative control's)."""
    if not has_controls(rows):
        return []
    rows = rows[pd.to_numeric(rows[ORACLE], errors="coerce").notna()]
    labels = rows[LABELS].fillna("true") if LABELS in rows.columns else pd.Series("true", index=rows.index)
    out = []
    for kind in sorted(labels.unique()):
        part = final_checkpoints(rows[labels == kind])  # per label kind: the control has its own rows
        groups = part.groupby(list(by), sort=True, dropna=False) if by else [((), part)]
        for values, g in groups:
            values = values if isinstance(values, tuple) else (values,)
            mean = {c: float(np.nanmean(pd.to_numeric(g[c], errors="coerce"))) for c in (ORACLE, CONTROL, CHANCE)}
            runs = g["root_key"].nunique() if "root_key" in g.columns else len(g)
            out.append(ProbeCheck(key={c: (v.item() if hasattr(v, "item") else v) for c, v in zip(by, values)},
                                  labels=str(kind), runs=int(runs), oracle=mean[ORACLE], control=mean[CONTROL],
                                  chance=mean[CHANCE]))
    return out


def passing_rows(frame: pd.DataFrame, checks: list[ProbeCheck], by: tuple[str, ...]) -> pd.DataFrame:
    """The rows of configurations whose (true-label) probe passed; all rows when nothing was checked."""
    failed = [c.key for c in checks if c.labels == "true" and not c.passed]
    if not failed or not by:
        return frame
    keep = pd.Series(True, index=frame.index)
    for key in failed:
        hit = pd.Series(True, index=frame.index)
        for col, value in key.items():
            hit &= frame[col].astype(object) == value
        keep &= ~hit
    return frame[keep]


def check_row(c: ProbeCheck) -> list[str]:
    verdict = "passes" if c.passed else "fails"
    if c.labels != "true":
        verdict += " (as it should)" if not c.passed else " (it should not: the probe scores without learning classes)"
    return [c.name, c.labels, str(c.runs), f"{c.oracle:.3f}", f"{c.control:.3f}", f"{c.chance:.3f}",
            f"{c.oracle / c.chance:.1f}x" if c.chance > 0 else "-", f"{c.oracle / c.control:.2f}" if c.control > 0 else "-",
            verdict]


CHECK_HEADER = ["configuration", "labels", "runs", "oracle accuracy of samples", "control (oracle on reconstructions)",
                "chance", "samples / chance", "samples / control", "probe"]


def summary_line(checks: list[ProbeCheck], fitted_anyway: bool = False) -> str:
    """One Summary line: how many configurations' probes passed, the negative control's outcome."""
    true = [c for c in checks if c.labels == "true"]
    neg = [c for c in checks if c.labels != "true"]
    line = f"Probe controls: {sum(c.passed for c in true)} of {len(true)} configurations pass ({rule_text()})"
    failed = [c.name for c in true if not c.passed]
    if failed:
        line += f"; {'fitted anyway (--all-series)' if fitted_anyway else 'left out of the fits'}: {'; '.join(failed)}"
    if neg:
        line += "; negative control (DiT on shuffled labels): " + "; ".join(
            f"{c.name}: oracle {c.oracle:.3f} vs chance {c.chance:.3f}, {'PASSES (the probe is not measuring classes)' if c.passed else 'fails, as it should'}"
            for c in neg)
    else:
        line += "; no negative control in this sweep"
    return line
