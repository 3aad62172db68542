"""scripts/debian-packages.sh, run by `make test` on a fresh machine, driven with stand-in
apt-get and dpkg-query commands: it installs what is missing, keeps services from starting
meanwhile, and exits 0 whether or not policy-rc.d was there before."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "debian-packages.sh"


@pytest.fixture
def machine(tmp_path):
    """A bin folder of stand-ins; ``installed`` lists the packages dpkg-query reports."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    installed = tmp_path / "installed"
    installed.write_text("")
    policy = tmp_path / "policy-rc.d"
    (bin_dir / "dpkg-query").write_text(
        f"#!/bin/sh\nfor package; do :; done\n"
        f"grep -qx \"$package\" {installed} && printf 'install ok installed' && exit 0\n"
        'echo "dpkg-query: no packages found matching $package" >&2\nexit 1\n'
    )
    # apt-get records its arguments and whether the policy forbidding service starts is in
    # place while it runs; APT_FAIL makes the install step fail.
    (bin_dir / "apt-get").write_text(
        f'#!/bin/sh\necho "$* policy=$(cat {policy} 2>/dev/null | tail -n 1)" >> {log}\n'
        'case "$*" in *install*) [ -n "$APT_FAIL" ] && exit 100;; esac\nexit 0\n'
    )
    for stand_in in bin_dir.iterdir():
        stand_in.chmod(0o755)

    def run(*packages: str, fail: bool = False) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "POLICY_RC_D": str(policy)}
        if fail:
            env["APT_FAIL"] = "1"
        return subprocess.run(["bash", str(SCRIPT), *packages], env=env, capture_output=True, text=True, timeout=60)

    run.log, run.installed, run.policy = log, installed, policy  # type: ignore[attr-defined]
    return run


def test_with_an_existing_policy_the_install_exits_0_and_leaves_the_policy_alone(machine):
    """Before the fix the EXIT trap's false test became the status: exit 1 after installing."""
    machine.policy.write_text("#!/bin/sh\n# the image's own\nexit 101\n")
    done = machine("nginx", "prometheus")
    assert done.returncode == 0, done.stderr
    assert "install -y -qq --no-install-recommends nginx prometheus policy=exit 101" in machine.log.read_text()
    assert machine.policy.read_text() == "#!/bin/sh\n# the image's own\nexit 101\n"


def test_without_a_policy_one_is_in_place_during_the_install_and_removed_after(machine):
    done = machine("nginx")
    assert done.returncode == 0, done.stderr
    assert "install -y -qq --no-install-recommends nginx policy=exit 101" in machine.log.read_text()
    assert not machine.policy.exists()


def test_only_missing_packages_are_installed_and_none_missing_installs_nothing(machine):
    machine.installed.write_text("nginx\n")
    assert machine("nginx", "chromium").returncode == 0
    assert "--no-install-recommends chromium policy" in machine.log.read_text()
    machine.log.unlink()
    machine.installed.write_text("nginx\nchromium\n")
    assert machine("nginx", "chromium").returncode == 0
    assert not machine.log.exists()


def test_a_failed_install_fails_the_script_and_still_removes_the_policy_it_made(machine):
    done = machine("nginx", fail=True)
    assert done.returncode != 0
    assert not machine.policy.exists()
