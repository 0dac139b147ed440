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


#: Display names of the survival endpoints.
ENDPOINT_LABELS = {
    "OS": "Overall survival",
    "PFS2": "PFS on second-line T-DM1",
}


def variable_label(name: str) -> str:
    """Display name of a cohort column."""
    return VARIABLE_LABELS.get(name, humanise(name))


def coefficient_label(coefficient: str, labels: dict | None = None) -> str:
    """Display name of a model coefficient: variable label and level.

    A coefficient is named by its variable followed by the level, as R and
    ``sepher.survival`` write them (``first_line_pertuzumabyes``, ``ecog1``,
    or with a separator, ``tgrade_II``). The longest variable name (key of
    ``labels``, at least 3 characters) that the coefficient starts with
    gives the label; the rest is the level.

    Parameters
    ----------
    coefficient : str
    labels : dict, optional
        Variable -> display name; default :data:`VARIABLE_LABELS`.

    Returns
    -------
    str
        ``"First-line pertuzumab: yes"``, ``"ECOG performance status: 1"``,
        ``"Age at advanced diagnosis (years)"``; an unknown name is humanised.
    """
    labels = VARIABLE_LABELS if labels is None else labels
    name = str(coefficient)
    if name in labels:
        return labels[name]
    prefixes = [k for k in labels if len(k) >= 3 and name.startswith(k)]
    if not prefixes:
        return humanise(name)
    key = max(prefixes, key=len)
    level = name[len(key) :].lstrip("_.:= ")
    return f"{labels[key]}: {level}" if level else labels[key]
