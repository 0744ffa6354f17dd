"""The overlay's polkit rule, evaluated by a real JavaScript engine (node) as polkitd would call it.

polkitd itself needs a system bus and systemd; here the rule file is loaded into node with a ``polkit``
object of the same shape (``addRule``, ``Result``), and its function is called with action and subject
objects like the ones polkitd passes.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from .helpers import ROOT_OF_REPO

RULE = ROOT_OF_REPO / "overlays/etc/polkit-1/rules.d/50-otppi.rules"
NODE = shutil.which("node")

HARNESS = r"""
const fs = require("fs");
const rules = [];
const polkit = {Result: {YES: "yes", NO: "no", AUTH_ADMIN: "auth_admin", NOT_HANDLED: null},
                addRule: (f) => rules.push(f), log: () => {}};
new Function("polkit", fs.readFileSync(process.argv[1], "utf8"))(polkit);
const cases = JSON.parse(fs.readFileSync(0, "utf8"));
const out = cases.map(([id, details, user, groups]) => {
  const action = {id: id, lookup: (k) => details[k]};
  const subject = {user: user, groups: groups, isInGroup: (g) => groups.includes(g), local: false, active: false};
  for (const rule of rules) { const r = rule(action, subject); if (r !== null && r !== undefined) return r; }
  return null;
});
process.stdout.write(JSON.stringify({rules: rules.length, results: out}));
"""

ADMIN, COMPONENTS = ("otppi-admin", ["otppi"]), ("otppi", ["otppi", "dialout", "dip"])
RESTART = ("org.freedesktop.systemd1.manage-units", {"unit": "otppi.target", "verb": "restart"})

CASES = [
    # (action id, details, (user, groups), expected result)
    (*RESTART, ADMIN, "yes"),
    ("org.freedesktop.login1.reboot", {}, ADMIN, "yes"),
    ("org.freedesktop.login1.reboot-multiple-sessions", {}, ADMIN, "yes"),
    ("org.freedesktop.timedate1.set-time", {}, ADMIN, "yes"),
    # The admin web: nothing else.
    ("org.freedesktop.systemd1.manage-units", {"unit": "otppi.target", "verb": "stop"}, ADMIN, "no"),
    ("org.freedesktop.systemd1.manage-units", {"unit": "otppi.target", "verb": "start"}, ADMIN, "no"),
    ("org.freedesktop.systemd1.manage-units", {"unit": "ssh.service", "verb": "restart"}, ADMIN, "no"),
    ("org.freedesktop.systemd1.manage-units", {"unit": "otppi-api.service", "verb": "stop"}, ADMIN, "no"),
    ("org.freedesktop.systemd1.manage-units", {"unit": "otppi-evil.service", "verb": "restart"}, ADMIN, "no"),
    ("org.freedesktop.systemd1.manage-unit-files", {}, ADMIN, "no"),
    ("org.freedesktop.login1.power-off", {}, ADMIN, "no"),
    ("org.freedesktop.timedate1.set-timezone", {}, ADMIN, "no"),
    ("org.freedesktop.timedate1.set-ntp", {}, ADMIN, "no"),
    # Every other component (the api, the feeders, the modem: user otppi) and every other user: nothing.
    (*RESTART, COMPONENTS, None),
    ("org.freedesktop.login1.reboot", {}, COMPONENTS, None),
    ("org.freedesktop.timedate1.set-time", {}, COMPONENTS, None),
    (*RESTART, ("pi", ["pi", "sudo", "otppi"]), None),
    ("org.freedesktop.login1.reboot", {}, ("nobody", ["otppi"]), None),
]


@pytest.mark.skipif(NODE is None, reason="needs node to evaluate the rule's JavaScript")
def test_the_polkit_rule_grants_the_admin_web_only_restart_reboot_and_set_time() -> None:
    cases = [[action, details, user, groups] for action, details, (user, groups), _ in CASES]
    done = subprocess.run([NODE, "-e", HARNESS, str(RULE)], input=json.dumps(cases), capture_output=True, text=True,
                          timeout=30, check=True)
    answer = json.loads(done.stdout)
    assert answer["rules"] == 1
    got = {f"{a} {d} as {u}": r for (a, d, (u, _), _), r in zip(CASES, answer["results"])}
    assert got == {f"{a} {d} as {u}": expected for a, d, (u, _), expected in CASES}
