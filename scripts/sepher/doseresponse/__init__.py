"""sepher.doseresponse: drc-grade dose-response statistics.

Least-squares fits of LL.4 / LL.3 / LL.5 / W1.4 in drc's b/c/d/e convention
with drc's full-Hessian covariance (:mod:`.fit`), effective doses with
delta-method CIs (:mod:`.ed`), joint fits and ED50 ratios (:mod:`.compare`),
the same single-curve fits for many curves at once (:mod:`.manyfit`, used by
the stage, :mod:`.stage`), GR metrics (:mod:`.gr`), plate normalisation
(:mod:`.normalise`) and plate QC (:mod:`.qc`).
"""

from .compare import JointFit, compare_ed50, ed_ratio, fit_joint
from .ed import activity_area, area_under_curve, ed
from .fit import FitResult, fit_curve, lack_of_fit, select_model
from .gr import gr_fit, gr_metrics, gr_values
from .manyfit import ManyFits, fit_many
from .normalise import normalise_plate
from .qc import plate_qc, z_prime

__all__ = [
    "FitResult",
    "JointFit",
    "ManyFits",
    "activity_area",
    "area_under_curve",
    "compare_ed50",
    "ed",
    "ed_ratio",
    "fit_curve",
    "fit_joint",
    "fit_many",
    "gr_fit",
    "gr_metrics",
    "gr_values",
    "lack_of_fit",
    "normalise_plate",
    "plate_qc",
    "select_model",
    "z_prime",
]
