"""Scaling-law analysis: reads tables (a vtp snapshot or any CSV/Parquet), never trainers.

Public surface (see each module's docstring):
    load_table, choose_columns          analysis.table
    fit_form, FitSettings, FitResult    analysis.fit      (robust fit of one law form)
    get_form, FORMS                     analysis.forms    (power, saturating, loglinear, joint, broken)
    bootstrap_fit                       analysis.bootstrap
    fit_laws, LawSettings, to_json      analysis.laws     (the fit-laws pipeline)
    write_report                        analysis.report
"""

from analysis.bootstrap import bootstrap_fit
from analysis.fit import FitResult, FitSettings, fit_form
from analysis.forms import FORMS, get_form
from analysis.laws import LawSettings, fit_laws, to_json
from analysis.report import write_report
from analysis.table import choose_columns, load_table

__all__ = ["FORMS", "FitResult", "FitSettings", "LawSettings", "bootstrap_fit", "choose_columns", "fit_form",
           "fit_laws", "get_form", "load_table", "to_json", "write_report"]
