"""The etcd membership rules (_utils/k8s_control_plane/membership.py), issue 20."""

from tests.support.orchestration import _package

IDS = ["k8s-controller-1", "k8s-controller-2", "k8s-controller-3"]
URL = {f"k8s-controller-{n}": f"https://10.240.0.1{n}:2380" for n in range(1, 6)}


def rules():
    return _package().membership


def member(name, learner=False, started=True, number=None):
    number = number or int(name.rsplit("-", 1)[1])
    return {
        "id": f"{number:x}",
        "name": name if started else "",
        "peer_urls": [URL[name]],
        "client_urls": [],
        "learner": learner,
    }


def status(name, data=True, members=None, healthy=None):
    return {
        "managed": True,
        "name": name,
        "peer_url": URL[name],
        "data": data,
        "members": members,
        "healthy": data if healthy is None else healthy,
    }


def plan(ids, statuses):
    return rules().membership_plan({m: URL[m] for m in ids}, statuses, ids)


def actions(result):
    return [(c["action"], c["name"]) for c in result["changes"]]


def test_a_new_cluster_starts_together_only_when_every_controller_is_known_empty():
    empty = {m: status(m, data=False) for m in IDS}
    assert plan(IDS, empty) == {"bootstrap": True, "changes": [], "errors": [], "members": []}
    del empty[IDS[2]]
    result = plan(IDS, empty)
    assert not result["bootstrap"]
    assert result["errors"] == [
        "k8s-controller-3 did not answer whether they hold etcd data; a new cluster starts "
        "only when every controller is known to be empty"
    ]


def test_members_matching_the_list_need_nothing():
    members = [member(m) for m in IDS]
    result = plan(IDS, {m: status(m, members=members) for m in IDS})
    assert result["changes"] == [] and result["errors"] == [] and not result["bootstrap"]


def test_growing_adds_each_new_controller_as_a_learner_in_list_order():
    ids = [*IDS, "k8s-controller-4", "k8s-controller-5"]
    members = [member(m) for m in IDS]
    statuses = {m: status(m, members=members) for m in IDS}
    statuses |= {m: status(m, data=False) for m in ids[3:]}
    result = plan(ids, statuses)
    assert actions(result) == [("add", "k8s-controller-4"), ("add", "k8s-controller-5")]
    assert result["changes"][0]["peer_url"] == URL["k8s-controller-4"]
    text = rules().describe_change(result["changes"][0])
    assert "as a learner" in text and "--initial-cluster-state existing" in text


def test_a_learner_is_promoted_and_an_added_member_never_started_joins():
    ids = [*IDS, "k8s-controller-4", "k8s-controller-5"]
    members = [member(m) for m in IDS]
    members += [member("k8s-controller-4", learner=True)]
    members += [member("k8s-controller-5", learner=True, started=False)]
    statuses = {m: status(m, members=members) for m in ids[:4]}
    statuses["k8s-controller-5"] = status("k8s-controller-5", data=False)
    assert actions(plan(ids, statuses)) == [
        ("promote", "k8s-controller-4"),
        ("join", "k8s-controller-5"),
    ]


def test_a_replaced_disk_removes_the_stale_member_first_then_adds_it_again():
    # the first controller (keepalived's MASTER, rbac's apply_from) on a new, empty disk
    members = [member(m) for m in IDS]
    statuses = {m: status(m, members=members) for m in IDS[1:]}
    statuses[IDS[0]] = status(IDS[0], data=False)
    result = plan(IDS, statuses)
    assert actions(result) == [("remove", IDS[0]), ("add", IDS[0])]
    assert result["changes"][0]["id"] == "1" and result["errors"] == []


def test_a_member_no_controller_lists_is_removed_last():
    members = [member(m) for m in [*IDS, "k8s-controller-4"]]
    statuses = {m: status(m, members=members) for m in [*IDS, "k8s-controller-4"]}
    ids = [IDS[0], IDS[1], "k8s-controller-4"]
    del statuses[IDS[2]]
    assert actions(plan(ids, statuses)) == [("remove", "k8s-controller-3")]


def test_a_removal_that_leaves_no_healthy_quorum_is_refused():
    members = [member(m) for m in IDS]
    statuses = {m: status(m, members=members) for m in IDS}
    statuses[IDS[1]]["healthy"] = False  # its member does not answer
    result = plan(IDS[:1] + IDS[1:2], statuses)  # the list drops controller-3 (healthy)
    assert actions(result) == [("remove", "k8s-controller-3")]
    assert result["errors"] == [
        "removing k8s-controller-3 would leave 1 healthy of 2 voting members, under quorum "
        "(2); refused, nothing changed"
    ]


def test_no_member_answering_is_refused():
    statuses = {m: status(m, members=None, healthy=False) for m in IDS}
    for m in IDS:
        statuses[m]["error"] = "k8s_etcd: no etcd member answered"
    result = plan(IDS, statuses)
    assert result["changes"] == []
    assert result["errors"][0].startswith("no etcd member answered its member list (")
    assert result["errors"][0].endswith("membership is changed only through a healthy member")


def test_the_environment_file_is_read_on_a_first_start_only():
    cfg = {
        "etcd": {"config_dir": "/etc/etcd", "peer_port": 2380},
        "controllers": [{"id": m, "address": URL[m][8:-5]} for m in IDS],
    }
    assert rules().etcd_environment_file(cfg) == "/etc/etcd/initial-cluster.env"
    initial = rules().initial_cluster(cfg)
    assert initial == ",".join(f"{m}={URL[m]}" for m in IDS)
    text = rules().etcd_environment(initial, "new")
    assert f"ETCD_INITIAL_CLUSTER={initial}\n" in text
    assert "ETCD_INITIAL_CLUSTER_STATE=new\n" in text
