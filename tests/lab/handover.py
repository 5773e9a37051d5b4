"""One converged lab handed from one lab test module to the next (tests/lab/conftest.py)."""

from tools.lab import lab

# {"version": ...} while the running lab is handed from one module to the next
HANDOVER: dict = {}


def hand_over() -> None:
    """
    A module's last test calls this once it has proved the lab converged with the override
    pillar unset (its last orchestration a success): the next module asking for
    ``converged_lab`` at the same version takes the lab as it is instead of a fresh one.
    """
    HANDOVER["version"] = lab.kube_version()
