"""Multiplicity adjustment shared by the figure families (sepher.stats)."""

import numpy as np
import pytest

from sepher.stats import MULTIPLICITY_LABELS, adjust_pvalues


def test_holm_matches_r_p_adjust():
    # R: p.adjust(c(0.01, 0.02, 0.03, 0.04, 0.05), "holm")
    p = [0.01, 0.02, 0.03, 0.04, 0.05]
    np.testing.assert_allclose(adjust_pvalues(p, "holm"), [0.05, 0.08, 0.09, 0.09, 0.09])


def test_bh_matches_r_p_adjust():
    # R: p.adjust(c(0.01, 0.02, 0.03, 0.04, 0.05), "BH") and c(0.001, 0.04, 0.03, 0.2)
    np.testing.assert_allclose(adjust_pvalues([0.01, 0.02, 0.03, 0.04, 0.05], "bh"), [0.05] * 5)
    np.testing.assert_allclose(
        adjust_pvalues([0.001, 0.04, 0.03, 0.2], "bh"), [0.004, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.2]
    )


def test_nan_left_out_of_the_family_and_kept():
    out = adjust_pvalues([0.01, np.nan, 0.04], "holm")
    assert np.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], [0.02, 0.04])


def test_none_is_identity_and_capped():
    np.testing.assert_allclose(adjust_pvalues([0.2, 0.9], "none"), [0.2, 0.9])
    assert adjust_pvalues([0.6, 0.7], "holm").max() <= 1.0
    assert set(MULTIPLICITY_LABELS) == {"holm", "bh", "none"}


def test_unknown_method_named():
    with pytest.raises(ValueError, match="expected one of"):
        adjust_pvalues([0.1], "bonferonni")
