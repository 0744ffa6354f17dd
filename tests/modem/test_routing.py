"""Routing: the seed's own example of four operators, and round robin between SIMs of one operator."""

from __future__ import annotations

from otppi.modem.routing import RoundRobin, RouteModem, tiers


def modem(name: str, *prefixes: str, default: bool = False, api: bool = True, active: bool = True) -> RouteModem:
    return RouteModem(name, frozenset(prefixes), default, api, active)


SEED = [
    modem("modem1", "62871", "62872"),
    modem("modem2", "62835", "62856", "62837"),
    modem("modem3", "62845"),
    modem("modem4", "62848", "62849", default=True),
]


def first(msisdn: str, modems=SEED) -> list[str]:
    return tiers(msisdn, 5, modems)[0]


def test_the_seed_example() -> None:
    assert first("628711234567") == ["modem1"]
    assert first("628721234567") == ["modem1"]
    for number in ("628351234567", "628561234567", "628371234567"):
        assert first(number) == ["modem2"]
    assert first("628451234567") == ["modem3"]
    assert first("628481234567") == ["modem4"]
    assert first("628121234567") == ["modem4"], "everything else goes to the default modem"


def test_tiers_are_the_failover_order() -> None:
    assert tiers("628711234567", 5, SEED) == [["modem1"], ["modem4"], ["modem2", "modem3"]]
    assert tiers("628121234567", 5, SEED) == [["modem4"], ["modem1", "modem2", "modem3"]]


def test_inactive_and_manual_only_modems() -> None:
    modems = [modem("a", "62871", active=False), modem("b", "62871", api=False), modem("c", default=True)]
    assert tiers("628711234567", 5, modems) == [["c"]]
    assert tiers("628711234567", 5, modems, manual=True) == [["b"], ["c"]]


def test_without_prefix_or_default_every_api_modem_takes_turns() -> None:
    modems = [modem("x"), modem("y"), modem("z", api=False)]
    assert tiers("441234567", 5, modems) == [["x", "y"]]
    assert tiers("441234567", 5, []) == []


def test_round_robin_between_sims_of_one_operator() -> None:
    rr = RoundRobin()
    tier = ["sim-a", "sim-b"]
    picked = []
    for _ in range(4):
        name = rr.order(tier)[0]
        rr.used(tier, name)
        picked.append(name)
    assert picked == ["sim-a", "sim-b", "sim-a", "sim-b"]
    assert rr.order(["sim-a", "sim-b", "sim-c"]) == ["sim-a", "sim-b", "sim-c"], "each tier keeps its own turn"
