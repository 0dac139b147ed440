"""sepher.survival: survival statistics matching R survival 3.5-3.

- :mod:`~sepher.survival.km`: Kaplan-Meier curves, medians, numbers at risk.
- :mod:`~sepher.survival.logrank`: log-rank test for k >= 2 groups (survdiff).
- :mod:`~sepher.survival.cox`: Cox regression (coxph; Efron/Breslow) and
  Harrell's concordance.
- :mod:`~sepher.survival.zph`: proportional-hazards score test (cox.zph >= 3.0)
  and scaled Schoenfeld residuals.
- :mod:`~sepher.survival.weighting`: propensity scores, stabilised IPTW weights,
  standardised mean differences.
- :mod:`~sepher.survival.imputation`: MICE + Rubin's rules for the Cox model.
- :mod:`~sepher.survival.table1`, :mod:`~sepher.survival.response`: Table 1 and
  RECIST response tables.
"""

from sepher.survival.cox import CoxResult, concordance_counts, fit_cox
from sepher.survival.km import (
    kaplan_meier,
    km_median,
    number_at_risk,
    reverse_km_followup,
    rmst,
    rmst_difference,
    survival_at,
)
from sepher.survival.logrank import logrank_test
from sepher.survival.weighting import (
    propensity_scores,
    stabilised_weights,
    standardised_differences,
)
from sepher.survival.zph import cox_zph, scaled_schoenfeld

__all__ = [
    "CoxResult",
    "concordance_counts",
    "cox_zph",
    "fit_cox",
    "kaplan_meier",
    "km_median",
    "logrank_test",
    "number_at_risk",
    "propensity_scores",
    "reverse_km_followup",
    "rmst",
    "rmst_difference",
    "scaled_schoenfeld",
    "stabilised_weights",
    "standardised_differences",
    "survival_at",
]
