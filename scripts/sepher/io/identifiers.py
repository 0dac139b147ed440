"""Patient-data safety: refuse direct identifiers in the cohort table.

The cohort file must be pseudonymous: a study code per patient, the key that
links codes to people kept at the clinical site, outside this project. Two
checks, after the HIPAA Safe Harbor list of direct identifiers (45 CFR
164.514(b)(2)) and their Italian equivalents:

* column names that look like direct identifiers (name, address, postcode,
  city, phone, fax, e-mail, social security number, codice fiscale, medical
  record number, health plan, account, licence, vehicle, device serial, URL,
  IP address, biometrics, photographs, birth date), except the study's own
  columns (``advanced_dx_date`` is not a birth date);
* ``patient_id`` values that look like identifiers (e-mail addresses,
  phone numbers, codice fiscale, US SSN, full dates, person names such as
  "Mario Rossi").

Messages never repeat the identifying value in full (it would end up in
logs); they show a masked form.

Note: Safe Harbor also counts exact dates of events (diagnosis, death) as
identifiers. The study needs them, so the date form is accepted; a file to be
shared outside the treating institution should use the duration form
(``os_months`` ...), which carries no dates.
"""

from __future__ import annotations

import re

from sepher.errors import InputError

#: The study's own input columns (docs/data-dictionary.md), never refused.
STUDY_COLUMNS = frozenset(
    {
        "patient_id",
        "tdm1_line",
        "first_line_pertuzumab",
        "advanced_dx_date",
        "tdm1_start_date",
        "tdm1_progression_date",
        "last_contact_date",
        "vital_status",
        "os_months",
        "os_event",
        "pfs2_months",
        "pfs2_event",
        "age_at_advanced_dx",
        "hormone_receptor",
        "visceral_mets",
        "brain_mets",
        "de_novo",
        "n_metastatic_sites",
        "ecog",
        "prior_adjuvant_trastuzumab",
        # sample sheets (images, plates)
        "image_id",
        "path",
        "plate_id",
        "timepoint",
    }
)

_NAME_WORDS = r"(patient|pt|subject|person|first|last|full|given|family|middle|maiden|sur|nick)"

#: (kind of identifier, regex on the normalised column name: lower-case words joined by "_").
COLUMN_PATTERNS = (
    ("name", rf"^({_NAME_WORDS}_?)*name(s)?$|^(sur|first|last|full)name|^nome$|cognome|initials"),
    ("address", r"address|street|indirizzo|residen"),
    ("postcode", r"(^|_)zip(_?code)?($|_)|post_?code|postal|(^|_)cap($|_)"),
    ("city", r"(^|_)(city|town|comune|municipality|county|village)($|_)"),
    ("phone", r"phone|(^|_)tel($|_)|telefono|cellulare|(^|_)mobile($|_)"),
    ("fax", r"(^|_)fax($|_)"),
    ("e-mail", r"e_?mail|(^|_)mail($|_)"),
    ("social security number", r"(^|_)ssn($|_)|social_?security"),
    ("tax code", r"tax_?(code|id|number)|codice_?fiscale|fiscal_?code|national_?id|passport"),
    (
        "medical record number",
        r"(^|_)mrn($|_)|medical_?record|record_?(number|no|id)|chart_?(number|no)"
        r"|hospital_?(number|id)|cartella|nhs_?(number|no)",
    ),
    ("health plan number", r"health_?plan|insurance|beneficiary"),
    ("account number", r"(^|_)account"),
    ("licence number", r"licen[cs]e|certificate"),
    ("vehicle identifier", r"vehicle|licen[cs]e_?plate|number_?plate"),
    ("device serial number", r"(^|_)device|serial"),
    ("URL", r"(^|_)(url|uri|website|web_?page)($|_)"),
    ("IP address", r"(^|_)ip($|_)|ip_?address"),
    ("biometric identifier", r"biometric|fingerprint|retina|voice_?print"),
    ("photograph", r"photo|(^|_)face($|_)|portrait"),
    (
        "birth date",
        r"(^|_)dob($|_)|birth_?date|date_?of_?birth|birthday|data_?(di_)?nascita|(^|_)born($|_)",
    ),
)

#: (kind of identifier, regex searched in a patient_id value).
VALUE_PATTERNS = (
    ("e-mail address", re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")),
    ("codice fiscale", re.compile(r"[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z]", re.IGNORECASE)),
    ("US social security number", re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)")),
    (
        "phone number",
        re.compile(r"^(\+|00)\d[\d\s./()-]{7,}$|^\(?\d{2,4}\)?[\s./-]\d{3,4}[\s./-]?\d{3,4}$"),
    ),
    ("full date (birth date?)", re.compile(r"(19|20)\d{2}[-/.](0[1-9]|1[0-2])[-/.]\d{2}")),
    (
        "person name",
        re.compile(r"^[A-Z][A-Za-z'\u2019.-]+,?\s+[A-Z][A-Za-z'\u2019.-]*[A-Za-z](\s+\S+)*$"),
    ),
)

PSEUDONYMISE_HINT = (
    "Replace it with a pseudonymous study code (e.g. SPH-0001) and keep the key linking "
    "codes to patients outside the project (at the clinical site), never in this "
    "repository or its results."
)


def normalise_column_name(name: str) -> str:
    """Lower-case words joined by '_' ('DateOfBirth', 'date of birth' -> 'date_of_birth')."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name).strip())
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def identifier_column_kind(name: str, allowed=()) -> str | None:
    """The kind of direct identifier a column name suggests, or None.

    Parameters
    ----------
    name : str
        Column name as in the file.
    allowed : iterable of str
        Extra column names never refused (besides :data:`STUDY_COLUMNS`).
    """
    norm = normalise_column_name(name)
    if norm in STUDY_COLUMNS or norm in {normalise_column_name(a) for a in allowed}:
        return None
    if "birth" in norm and "year" in norm:  # year of birth is not identifying (Safe Harbor)
        return None
    for kind, pattern in COLUMN_PATTERNS:
        if re.search(pattern, norm):
            return kind
    return None


def identifier_value_kind(value) -> str | None:
    """The kind of direct identifier a patient_id value looks like, or None."""
    text = str(value).strip()
    for kind, pattern in VALUE_PATTERNS:
        if pattern.search(text):
            return kind
    return None


def mask(value) -> str:
    """A masked form of an identifying value: first character, then '*'."""
    text = str(value).strip()
    return (text[:1] + "*" * (len(text) - 1)) if text else text


def _a(kind: str) -> str:
    """'a name', 'an e-mail', 'an IP address', 'a URL': the article for a kind of identifier."""
    return ("an " if kind[:1] in "aeioI" else "a ") + kind


def check_identifier_columns(columns, file, allowed=()) -> None:
    """Raise :class:`InputError` if a column name looks like a direct identifier.

    Parameters
    ----------
    columns : iterable of str
        Header of the file.
    file : str
        File name for the message.
    allowed : iterable of str
        Column names accepted anyway (e.g. covariates named in the config).
    """
    for column in columns:
        kind = identifier_column_kind(column, allowed)
        if kind is not None:
            raise InputError(
                file,
                f"no direct patient identifiers (this column looks like {_a(kind)})",
                column=str(column),
                hint="Remove this column from the file before analysis (if it is not an "
                "identifier, rename it). Patients are known to the workflow only by "
                "patient_id, a pseudonymous study code (e.g. SPH-0001); keep the key linking "
                "codes to patients outside the project (at the clinical site).",
            )


def check_pseudonymous_ids(values, file, column="patient_id", rows=None) -> None:
    """Raise :class:`InputError` if a patient_id looks like a direct identifier.

    The message gives the 1-based data row and a masked value, never the
    identifier itself.

    Parameters
    ----------
    values : iterable of str
        patient_id values in file order.
    file : str
        File name for the message.
    column : str, default "patient_id"
    rows : sequence of int, optional
        1-based data row numbers of `values` (default 1, 2, ...).
    """
    values = list(values)
    rows = range(1, len(values) + 1) if rows is None else rows
    for row, value in zip(rows, values, strict=True):
        kind = identifier_value_kind(value)
        if kind is not None:
            raise InputError(
                file,
                f"a pseudonymous study code (this value looks like {_a(kind)}; shown masked)",
                row=int(row),
                column=column,
                value=mask(value),
                hint=PSEUDONYMISE_HINT,
            )
