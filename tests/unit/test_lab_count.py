"""The lab's controller count (make lab CONTROLLERS=N): the seed's pattern, its bounds."""

import pytest
import yaml

from tools.lab import common


def test_the_seed_count_is_the_seed_file_unchanged():
    seed = yaml.safe_load((common.REPO / "pillar" / "hardway.sls").read_text())
    assert common._cluster(3) == seed["k8s_control_plane"]


def test_five_controllers_follow_the_seed_pattern():
    cluster = common._cluster(5)
    assert [(c["id"], c["address"]) for c in cluster["controllers"]] == [
        (f"k8s-controller-{n}", f"10.240.0.1{n}") for n in range(1, 6)
    ]
    assert cluster["etcd"]["servers"] == [f"https://10.240.0.1{n}:2379" for n in range(1, 6)]
    # everything else is the seed's
    seed = common._cluster(3)
    assert {k: v for k, v in cluster.items() if k not in ("controllers", "etcd")} == {
        k: v for k, v in seed.items() if k not in ("controllers", "etcd")
    }


def test_one_controller_is_a_cluster_of_one():
    assert [c["id"] for c in common._cluster(1)["controllers"]] == ["k8s-controller-1"]


@pytest.mark.parametrize("count", [0, 10, "five", None, -1])
def test_a_count_out_of_range_names_the_valid_values(count):
    with pytest.raises(common.LabError, match=r"CONTROLLERS=.*: the lab takes 1 to 9 controllers"):
        common.check_count(count)


def test_the_recorded_count_is_read_back(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "COUNT_FILE", tmp_path / "controllers")
    assert common.controller_count() == common.SEED_CONTROLLERS  # none recorded: the seed's
    common.set_controller_count(5)
    assert common.controller_count() == 5
    assert [c["id"] for c in common.cluster()["controllers"]][-1] == "k8s-controller-5"


def test_holder_timeline_sums_the_seconds_a_census_held():
    from tools.lab.checks import HolderTimeline

    timeline = HolderTimeline()
    timeline.points = [[10.0, ["a"]], [10.5, []], [10.75, ["b"]], [11.0, ["a", "b"]], [11.1, ["a"]]]
    assert timeline.seconds(lambda h: not h) == 0.25
    assert timeline.seconds(lambda h: len(h) > 1) == 0.1
    assert timeline.seconds(lambda h: h == ["a"]) == 0.5  # the last holder's time is open-ended
