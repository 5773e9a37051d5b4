"""
keepalived's track_file (the tuned profile): haproxy's unit gets a drop-in that
writes the file keepalived watches, 1 when haproxy stops or dies and 0 once it
has started; the seed profile polls only and gets neither.
"""

import pytest

from tools.render import render_minion

DROP_IN = "etc/systemd/system/haproxy.service.d/k8s_control_plane-track-file.conf"
TRACK = "/run/k8s_control_plane-haproxy-down"


def test_tuned_profile_writes_the_file_keepalived_watches(minion_for, tmp_path):
    manifest = render_minion(minion_for("example", "prod-cp-1"), tmp_path)
    drop_in = (tmp_path / DROP_IN).read_text().splitlines()
    assert "[Service]" in drop_in
    assert f"ExecStartPost=/bin/sh -c 'echo 0 > {TRACK}'" in drop_in
    assert f"ExecStopPost=/bin/sh -c 'echo 1 > {TRACK}'" in drop_in
    assert f"/{DROP_IN} 0644 (contents in the SLS)" in manifest
    keepalived = (tmp_path / "etc/keepalived/keepalived.conf").read_text()
    block = keepalived[keepalived.index("track_file haproxy_down {") :]
    assert f'file "{TRACK}"' in block and "weight 0" in block and "init_file 0" in block
    instance = keepalived[keepalived.index("vrrp_instance") :]
    assert "track_file {\n    haproxy_down\n  }" in instance
    assert "track_script {\n    chk_haproxy\n  }" in instance  # the polling net stays


@pytest.mark.parametrize(("cluster", "minion_id"), [("hardway", "k8s-controller-1")])
def test_seed_profile_polls_only(minion_for, tmp_path, cluster, minion_id):
    render_minion(minion_for(cluster, minion_id), tmp_path)
    assert not (tmp_path / DROP_IN).exists()
    assert "track_file" not in (tmp_path / "etc/keepalived/keepalived.conf").read_text()
