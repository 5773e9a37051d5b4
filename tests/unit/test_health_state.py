"""The k8s_health.ready state, with the execution module mocked."""

from unittest.mock import MagicMock

import pytest


@pytest.fixture
def ready_state(state_modules):
    def make(test, ok=True):
        salt = {
            "k8s_health.apiserver": MagicMock(return_value={"address": "127.0.0.1", "ok": ok}),
            "k8s_health.wait_ready": MagicMock(return_value={"seconds": 1.5}),
        }
        return state_modules("k8s_health", __salt__=salt, __opts__={"test": test}), salt

    return make


@pytest.mark.parametrize("ok", [True, False])
def test_a_dry_run_probes_only_the_loopback_apiserver(ready_state, ok):
    """Test mode asks 127.0.0.1 only: nothing leaves the host, and nothing waits."""
    module, salt = ready_state(test=True, ok=ok)
    ret = module.ready("kube-apiserver", timeout=180, scope="local")
    salt["k8s_health.apiserver"].assert_called_once_with(address="127.0.0.1", timeout=2)
    salt["k8s_health.wait_ready"].assert_not_called()
    assert ret["changes"] == {} and ret["result"] is True
    assert ret["comment"] == (
        "The apiserver is ready" if ok else "Would wait up to 180s for readiness"
    )


def test_a_real_run_waits_with_the_scope_it_was_given(ready_state):
    module, salt = ready_state(test=False)
    ret = module.ready("kube-apiserver", timeout=30, scope="local")
    salt["k8s_health.wait_ready"].assert_called_once_with(timeout=30, scope="local")
    salt["k8s_health.apiserver"].assert_not_called()
    assert ret == {
        "name": "kube-apiserver",
        "changes": {},
        "result": True,
        "comment": "Ready after 1.5s",
    }
