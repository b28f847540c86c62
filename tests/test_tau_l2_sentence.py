"""The x/tau vs l2 tau^2 sentence says "equal" only for converged fits with a small gap."""

from jaxclip.studies.class_agnostic_render_tau import equivalence_sentence


def _row(tau, gap, conv_l, conv_r, same=1.0):
    return {
        "tau": tau,
        "objective_gap": gap,
        "converged_left": conv_l,
        "converged_right": conv_r,
        "same_predictions": same,
    }


def test_unconverged_row_is_not_called_equal():
    # the digits-pixel case: left fit 1.5 % above the optimum, not converged
    s = equivalence_sentence([_row(1.0, 1e-7, True, True), _row(0.07, 0.015, False, True, 0.995)])
    assert "equal" not in s.lower()
    assert "0.07" in s and "1.50e-02" in s and "99.50" in s


def test_converged_small_gap_is_equal_within_measured_gap():
    s = equivalence_sentence([_row(1.0, 2e-7, True, True), _row(0.02, 3e-6, True, True)])
    assert "equal within 3.0e-06" in s


def test_converged_large_gap_is_not_equal():
    assert "equal" not in equivalence_sentence([_row(0.5, 1e-3, True, True)]).lower()
