import pytest

from clora_lite.continual import metrics


R = [[90.0],
     [70.0, 80.0],
     [50.0, 60.0, 85.0]]


def test_forgetting_and_bwt_by_hand():
    # task 0: best before the end 90, at the end 50 -> 40; task 1: best 80, end 60 -> 20
    assert metrics.forgetting(R) == pytest.approx(30.0)
    # task 0: 50 - 90 = -40; task 1: 60 - 80 = -20
    assert metrics.bwt(R) == pytest.approx(-30.0)


def test_forgetting_uses_the_best_earlier_value_not_the_first():
    R2 = [[40.0], [70.0, 80.0], [50.0, 80.0, 85.0]]  # task 0 improved after task 1, then fell to 50
    assert metrics.forgetting(R2) == pytest.approx((20.0 + 0.0) / 2)
    assert metrics.bwt(R2) == pytest.approx((10.0 + 0.0) / 2)


def test_summary():
    s = metrics.summarize(R, seen_acc=[90.0, 75.0, 65.0], task_il=[95.0, 90.0, 85.0])
    assert s == {"last_acc": 65.0, "inc_acc": pytest.approx(230 / 3), "forgetting": pytest.approx(30.0),
                 "bwt": pytest.approx(-30.0), "task_il_acc": pytest.approx(90.0)}


def test_single_task_has_no_forgetting():
    s = metrics.summarize([[70.0]], [70.0], [99.0])
    assert s["forgetting"] is None and s["bwt"] is None and s["last_acc"] == 70.0
