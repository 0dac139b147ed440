"""Display names of the study's variables, in the paper's words.

Columns not listed here are shown via :func:`sepher.figures.style.humanise`.
"""

from sepher.figures.style import humanise

VARIABLE_LABELS = {
    "first_line_pertuzumab": "First-line pertuzumab",
    "age_at_advanced_dx": "Age at advanced diagnosis (years)",
    "hormone_receptor": "Hormone receptor",
    "visceral_mets": "Visceral metastases",
    "brain_mets": "Brain metastases",
    "de_novo": "De novo stage IV",
    "n_metastatic_sites": "Metastatic sites (n)",
    "ecog": "ECOG performance status",
    "prior_adjuvant_trastuzumab": "Prior adjuvant trastuzumab",
    "tdm1_line": "T-DM1 line",
    "n": "Patients (n)",
}


def variable_label(name: str) -> str:
    """Display name of a cohort column."""
    return VARIABLE_LABELS.get(name, humanise(name))
