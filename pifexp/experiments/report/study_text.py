"""A study's tables as text: study.md (cells, comparisons, trends, what they support) and
study.tex (booktabs), with fixed number formats so that the same cells give the same bytes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

import pifexp.experiments.report.text as text
from pifexp.experiments.report.latex import tex, tex_caption
from pifexp.experiments.report.markdown import md_row

BA, ES = "balanced_accuracy", "early_stopping_epoch"


def study_markdown(
    table: pd.DataFrame,
    comparisons: pd.DataFrame,
    trends: pd.DataFrame,
    study: Mapping[str, Any],
    reporting: Mapping[str, Any],
) -> str:
    """study.md."""
    lines = [f"# Study: {study['title']} ({study['name']})", "", *_source_lines(table, study)]
    lines += ["", "## Cells", "", *_cells_lines(table, study, reporting)]
    lines += ["", "## Comparisons", "", *_comparison_lines(comparisons, study, reporting)]
    if len(trends):
        lines += ["", f"## Trend over the {study['factor_label']}", ""]
        lines += _trend_lines(trends, study, reporting)
    lines += ["", "## What these numbers support", ""]
    lines += _reading(comparisons, trends, study, reporting)
    return "\n".join(lines) + "\n"


def _source_lines(table: pd.DataFrame, study: Mapping[str, Any]) -> list[str]:
    sources = sorted({str(s) for s in table["data_source"].dropna()})
    synthetic = any("synthetic" in source for source in sources)
    seeds = sorted({int(s) for s in table["seeds"]})
    factor = (
        f"Factor: the arm (one level: {table['level_label'].iloc[0]})"
        if table["level"].nunique() == 1
        else f"Factor: {study['factor_label']} ({study['factor']})"
    )
    return [
        *(["**Synthetic data: not the paper's result.**"] if synthetic else []),
        f"Data: {'; '.join(sources) or 'unknown'}.",
        f"{factor}; seeds per cell: {', '.join(map(str, seeds))}.",
        f"What the mechanism predicts: {study['expectation']}.",
    ]


def _lead(study: Mapping[str, Any], one_level: bool) -> list[str]:
    """The factor's column header; none where the arms themselves are the factor."""
    label = str(study["factor_label"])
    return [] if one_level else [label[:1].upper() + label[1:]]


def _level(record: Mapping[str, Any], one_level: bool) -> list[str]:
    return [] if one_level else [str(record["level_label"])]


def _cells_lines(
    table: pd.DataFrame, study: Mapping[str, Any], reporting: Mapping[str, Any]
) -> list[str]:
    ba, es = _decimals(reporting, BA), _decimals(reporting, ES)
    one_level = table["level"].nunique() == 1
    header = [*_lead(study, one_level), "Arm", "Seeds", "BA (%)", "BA 95% CI", "ES epoch",
              "Stopped by cap", "Training subjects per seed", "Parameters",
              "PIF layer"]  # fmt: skip
    lines = [md_row(header), md_row(["---"] * len(header))]
    for record in table.to_dict("records"):
        lines.append(md_row([
            *_level(record, one_level), str(record["arm_label"]), _seeds_of(record),
            text.mean_std(record, BA, ba, 100), _interval(record, BA, ba - 1),
            text.mean_std(record, ES, es, 1.0), str(record["stopped_by_cap"]),
            _span(record, "train_subjects"), f"{int(record['parameters']):,}",
            f"{int(record['parameters_pif']):,}" if record["parameters_pif"] else "—",
        ]))  # fmt: skip
    confidence = float(reporting["statistics"]["confidence"])
    return lines + [
        "",
        "Mean ± standard deviation over seeds. BA: balanced accuracy on the test subjects; ES: "
        "the epoch at which training stopped (epochs counted from 0); stopped by cap: seeds that "
        f"the epoch cap, not early stopping, ended. BA {confidence:.0%} CI: the interval of the "
        "mean over seeds, widened for seeds that are repeated random splits of one cohort "
        "(corrected resampled t, Nadeau and Bengio 2003).",
    ]


def _comparison_lines(
    comparisons: pd.DataFrame, study: Mapping[str, Any], reporting: Mapping[str, Any]
) -> list[str]:
    statistics = reporting["statistics"]
    digits = _decimals(reporting, "p_value")
    es = _decimals(reporting, ES)
    ba_rows = comparisons[comparisons["metric"] == BA].to_dict("records")
    es_rows = {(r["level"], r["arm"], r["reference"]): r
               for r in comparisons[comparisons["metric"] == ES].to_dict("records")}  # fmt: skip
    one_level = comparisons["level"].nunique() <= 1
    header = [*_lead(study, one_level), "Comparison", "Seeds", "Pairing", "BA diff (pp)",
              "95% CI (pp)", "d_z", "p", "p adj.", "MDD (pp)", "ES diff", "ES 95% CI",
              "ES p"]  # fmt: skip
    lines = [md_row(header), md_row(["---"] * len(header))]
    for record in ba_rows:
        stop = es_rows.get((record["level"], record["arm"], record["reference"]))
        lines.append(md_row([
            *_level(record, one_level), f"{record['arm_label']} − {record['reference_label']}",
            str(record["seeds"]), str(record["pairing"]),
            text.signed(record["difference"], 2, 100), text.interval(record, 2, 100),
            text.number(record["effect_size"], 2) or "n/a",
            text.p_value(record["p_value"], digits),
            text.p_value(record["p_value_adjusted"], digits),
            text.number(record["minimum_detectable_difference"], 1, 100) or "n/a",
            text.signed(stop["difference"], es) if stop else "n/a",
            text.interval(stop, es) if stop else "n/a",
            text.p_value(stop["p_value"], digits) if stop else "n/a",
        ]))  # fmt: skip
    if not ba_rows:
        lines.append(md_row(["—"] * len(header)))
    adjustment = text.adjustment_name(statistics["adjustment"])
    return lines + [
        "",
        "Each arm minus the reference arm at the same level, seed by seed where both trained on "
        "the same split (Pairing). p: the corrected resampled t-test over the paired seeds "
        f"(Welch's t-test when unpaired); p adj.: {adjustment}-adjusted across the "
        f"study's {len(ba_rows)} balanced-accuracy comparisons; d_z: mean difference / SD of the "
        "differences. MDD: the smallest true difference that this test finds with "
        f"{float(statistics['power']):.0%} power at α = {float(statistics['alpha']):g} with "
        "this many seeds, given the observed SD of the differences. ES diff: the same for the "
        "early-stopping epoch (not adjusted).",
    ]


def _trend_lines(
    trends: pd.DataFrame, study: Mapping[str, Any], reporting: Mapping[str, Any]
) -> list[str]:
    digits = _decimals(reporting, "p_value")
    per = _per_unit(trends, study)
    header = ["Comparison", "Metric", f"Slope ({per})", "95% CI", "p", "p adj.", "Levels",
              "Seeds"]  # fmt: skip
    lines = [md_row(header), md_row(["---"] * len(header))]
    for record in trends.to_dict("records"):
        scale, decimals = (100, 2) if record["metric"] == BA else (1, 2)
        unit = " pp" if record["metric"] == BA else " epochs"
        lines.append(md_row([
            f"{record['arm_label']} − {record['reference_label']}",
            str(record["metric"]).replace("_", " "),
            text.signed(record["slope"], decimals, scale) + unit,
            text.interval(record, decimals, scale), text.p_value(record["p_value"], digits),
            text.p_value(record["p_value_adjusted"], digits), str(record["levels"]),
            str(record["seeds"]),
        ]))  # fmt: skip
    return lines + [
        "",
        f"Per seed, the least-squares slope of the paired difference over the levels ({per}); "
        "then the mean slope over seeds with the corrected resampled interval and t-test (its "
        "n_test/n_train term the largest of the levels': conservative). p adj.: across the "
        "trends of the primary metric.",
    ]


def _per_unit(trends: pd.DataFrame, study: Mapping[str, Any]) -> str:
    if study.get("trend_unit"):
        return str(study["trend_unit"])
    if (trends["scale"] == "log2").any():
        return f"per doubling of the {study['factor_label']}"
    return f"per unit of the {study['factor_label']}"


def _reading(
    comparisons: pd.DataFrame, trends: pd.DataFrame, study: Mapping[str, Any],
    reporting: Mapping[str, Any],
) -> list[str]:  # fmt: skip
    """The comparisons in words: which differences the adjusted tests support, which not."""
    unit = _per_unit(trends, study) if len(trends) else ""
    alpha = float(reporting["statistics"]["alpha"])
    ba = comparisons[comparisons["metric"] == BA]
    shown = ba[ba["p_value_adjusted"] < alpha]
    lines = []
    for record in shown.to_dict("records"):
        lines.append(
            f"- {record['arm_label']} − {record['reference_label']} at {record['level_label']}: "
            f"{text.signed(record['difference'], 1, 100)} pp, 95% CI "
            f"{text.interval(record, 1, 100)}, adjusted p = "
            f"{text.p_value(record['p_value_adjusted'], 3)}."
        )
    if len(ba) > len(shown):
        mdd = ba.loc[~ba.index.isin(shown.index), "minimum_detectable_difference"] * 100
        spread = _range(mdd)
        lines.append(
            f"- {len(ba) - len(shown)} of {len(ba)} balanced-accuracy comparisons show no "
            f"difference distinguishable from noise (adjusted p ≥ {alpha:g}); with these seeds "
            f"they could detect differences of {spread} pp (MDD)."
        )
    trend = trends[trends["metric"] == BA] if len(trends) else trends
    for record in trend.to_dict("records") if len(trend) else []:
        record["unit"] = unit
        verdict = (
            "a trend"
            if record["p_value_adjusted"] < alpha
            else "no trend distinguishable from noise"
        )
        lines.append(
            f"- {record['arm_label']} − {record['reference_label']} over the factor: {verdict} "
            f"(slope {text.signed(record['slope'], 2, 100)} pp {record['unit']}, 95% CI "
            f"{text.interval(record, 2, 100)}, adjusted p = "
            f"{text.p_value(record['p_value_adjusted'], 3)})."
        )
    return lines or ["- No comparison could be made (a reference arm or its pair is missing)."]


def _range(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "n/a"
    low, high = float(values.min()), float(values.max())
    return f"{low:.1f}" if math.isclose(low, high, abs_tol=0.05) else f"{low:.1f}-{high:.1f}"


def study_latex(
    table: pd.DataFrame, comparisons: pd.DataFrame, study: Mapping[str, Any],
    reporting: Mapping[str, Any],
) -> str:  # fmt: skip
    """study.tex: the cells and the balanced-accuracy comparisons as booktabs tables."""
    ba, es = _decimals(reporting, BA), _decimals(reporting, ES)
    digits = _decimals(reporting, "p_value")
    synthetic = any("synthetic" in str(s) for s in table["data_source"].dropna())
    one_level = table["level"].nunique() == 1
    lead = "".join(f"{tex(name)} & " for name in _lead(study, one_level))
    lines = ["% pifexp study (needs \\usepackage{booktabs})", "\\begin{table}", "\\centering",
             f"\\begin{{tabular}}{{{'l' * (2 - one_level)}rrrrr}}", "\\toprule",
             f"{lead}Arm & Seeds & BA (\\%) & BA 95\\% CI & ES epoch & Parameters \\\\",
             "\\midrule"]  # fmt: skip
    for record in table.to_dict("records"):
        cells = [*_level(record, one_level), str(record["arm_label"]), _seeds_of(record),
                 text.mean_std(record, BA, ba, 100), _interval(record, BA, ba - 1),
                 text.mean_std(record, ES, es, 1.0), f"{int(record['parameters']):,}"]
        lines.append(" & ".join(tex(cell) for cell in cells) + " \\\\")
    warning = "Synthetic data, not the paper's result. " if synthetic else ""
    caption = (f"{warning}{study['title']}: mean $\\pm$ SD over seeds; CI: corrected resampled "
               "interval of the mean; ES: early-stopping epoch.")  # fmt: skip
    lines += ["\\bottomrule", "\\end{tabular}", f"\\caption{{{tex_caption(caption)}}}",
              "\\end{table}", "", "\\begin{table}", "\\centering",
              f"\\begin{{tabular}}{{{'l' * (2 - one_level)}rlrrrr}}", "\\toprule",
              f"{lead}Comparison & Seeds & Pairing & Diff (pp) & 95\\% CI & $p$ & $p$ adj. \\\\",
              "\\midrule"]  # fmt: skip
    for record in comparisons[comparisons["metric"] == BA].to_dict("records"):
        cells = [*_level(record, one_level),
                 f"{record['arm_label']} - {record['reference_label']}",
                 str(record["seeds"]), str(record["pairing"]),
                 text.signed(record["difference"], 2, 100), text.interval(record, 2, 100),
                 text.p_value(record["p_value"], digits),
                 text.p_value(record["p_value_adjusted"], digits)]  # fmt: skip
        lines.append(" & ".join(tex(cell) for cell in cells) + " \\\\")
    adjustment = text.adjustment_name(reporting["statistics"]["adjustment"])
    caption = ("Balanced accuracy, arm minus reference arm: corrected resampled t-test over "
               f"seeds paired by split; $p$ adj.: {adjustment} across the study's "
               "comparisons.")  # fmt: skip
    lines += ["\\bottomrule", "\\end{tabular}", f"\\caption{{{tex_caption(caption)}}}",
              "\\end{table}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def _decimals(reporting: Mapping[str, Any], key: str) -> int:
    return int(reporting["decimals"][key])


def _seeds_of(record: Mapping[str, Any]) -> str:
    seeds, planned = int(record["seeds"]), int(record["seeds_planned"])
    return str(seeds) if seeds >= planned else f"{seeds} of {planned}"


def _interval(record: Mapping[str, Any], metric: str, decimals: int) -> str:
    scale = 100 if metric == BA else 1
    return text.interval(record, decimals, scale, prefix=f"{metric}_ci")


def _span(record: Mapping[str, Any], column: str) -> str:
    low, high = record[f"{column}_min"], record[f"{column}_max"]
    if pd.isna(low):
        return "n/a"
    return f"{int(low)}" if int(low) == int(high) else f"{int(low)}-{int(high)}"

