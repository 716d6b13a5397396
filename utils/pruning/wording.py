"""The wording decisions of chapter 3's text: percentages of d, and sentences chosen from computed values."""
from __future__ import annotations


def percent_format(value: float) -> str:
    """The format spec that prints a fraction as a percentage without spurious decimals (0.3 -> 30%, 0.025 -> 2.5%)."""
    return ".0%" if abs(100 * value - round(100 * value)) < 1e-9 else ".1%"



def percent(value: float) -> str:
    """``value`` (a fraction) as a percentage: 0.3 -> "30%", 0.025 -> "2.5%"; NaN -> ""."""
    return "" if value != value else format(value, percent_format(value))



def compare_criteria_text(best: str, best_top1: float, abs_A_top1: float) -> str:
    """A clause comparing the criterion chosen on training text with the paper's on held-out top-1 agreement."""
    if best == "abs_A":
        return "the choice made on training text is the paper's own criterion"
    if best_top1 > abs_A_top1:
        return "on held-out text the choice made on training text keeps more top tokens than the paper's criterion"
    if best_top1 < abs_A_top1:
        return ("on held-out text the choice made on training text keeps fewer top tokens than the paper's criterion, "
                "although it kept more on training text")
    return "on held-out text the choice made on training text keeps as many top tokens as the paper's criterion"



def measure_gap_text(js_fraction: float, top1_fraction: float) -> str:
    """Which measure tolerates more deletion, from the largest fractions within the JS threshold (averaged
    distribution) and within the top-1 threshold (per-position predictions)."""
    if js_fraction > top1_fraction:
        return "the averaged distribution stays inside its threshold longer than the per-position predictions do"
    if js_fraction < top1_fraction:
        return "the per-position predictions stay inside their threshold longer than the averaged distribution does"
    return "both measures reach their thresholds at the same fraction of the grid"


def compensation_text(zeroed_top1: float, compensated_top1: float, margin: float = 0.05) -> str:
    """Whether replacing deleted coordinates by their means helps: it does when it raises top-1 agreement by at least
    ``margin`` over zeroing them."""
    if compensated_top1 - zeroed_top1 < margin:
        return "so the damage comes from the varying part of the deleted coordinates, not from their means"
    return "so a good part of the damage is the fixed shift of the logits by the deleted coordinates' means"
