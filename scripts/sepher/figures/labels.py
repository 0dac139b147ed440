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
    "tdm1_start_year": "Year of T-DM1 start",
    "best_response": "Best response (RECIST 1.1)",
    "n": "Patients (n)",
}


#: Display names of the survival endpoints; ``{line}`` is the adjective of the
#: analysed T-DM1 line (``survival.tdm1_line``), see :func:`endpoint_name`.
ENDPOINT_LABELS = {
    "OS": "Overall survival",
    "PFS2": "PFS on {line} T-DM1",
}

_ORDINALS = (
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
)


def line_ordinal(line: int) -> str:
    """Ordinal word of a line of therapy.

    Parameters
    ----------
    line : int
        Line number, >= 1.

    Returns
    -------
    str
        ``"first"`` ... ``"tenth"`` for 1-10, then ``"11th"``, ``"12th"``,
        ``"13th"``, ``"21st"``, ``"22nd"``, ``"23rd"``, ``"101st"``, ...

    Raises
    ------
    ValueError
        If `line` is not an integer >= 1.
    """
    if isinstance(line, bool) or int(line) != line or line < 1:
        raise ValueError(f"a line of therapy is an integer >= 1, not {line!r}")
    n = int(line)
    if n <= len(_ORDINALS):
        return _ORDINALS[n - 1]
    if n % 100 in (11, 12, 13):
        return f"{n}th"
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def line_adjective(line: int) -> str:
    """Compound adjective of a line of therapy: ``"second-line"``, ``"11th-line"``."""
    return f"{line_ordinal(line)}-line"


def endpoint_name(endpoint: str, tdm1_line: int) -> str:
    """Display name of a survival endpoint for the analysed T-DM1 line.

    Parameters
    ----------
    endpoint : str
        ``"OS"``, ``"PFS2"``; other names are returned unchanged.
    tdm1_line : int
        Line of T-DM1 analysed (``survival.tdm1_line``).

    Returns
    -------
    str
        ``endpoint_name("PFS2", tdm1_line=2)`` is ``"PFS on second-line T-DM1"``.
    """
    label = ENDPOINT_LABELS.get(endpoint, endpoint)
    return label.format(line=line_adjective(tdm1_line)) if "{line}" in label else label


def endpoint_names(tdm1_line: int, endpoints=None) -> dict[str, str]:
    """Endpoint -> display name (:func:`endpoint_name`) of every endpoint in `endpoints`.

    `endpoints` defaults to the keys of :data:`ENDPOINT_LABELS`.
    """
    endpoints = ENDPOINT_LABELS if endpoints is None else endpoints
    return {e: endpoint_name(e, tdm1_line) for e in endpoints}


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
