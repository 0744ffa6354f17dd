"""docs/openapi.json checked against the request contract and the live api component.

The document is written by hand; these tests are what keep it true: its
commands, fields, required flags and response codes must equal the code's, its
field schemas must accept and refuse the same values as the contract, and its
examples, sent verbatim to the running api, must get answers that fit the
documented response schemas.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
import requests
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from otppi import codes
from otppi.contract import COMMANDS, SCHEMAS, ContractError, validate
from otppi.store.models import ApiSettings

from .helpers import ROOT_OF_REPO

DOC = json.loads((ROOT_OF_REPO / "docs" / "openapi.json").read_text(encoding="utf-8"))
DOC_URI = "urn:otppi:openapi"
REGISTRY = Registry().with_resource(DOC_URI, Resource.from_contents(DOC, default_specification=DRAFT202012))
HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]


# ---------------------------------------------------------------- reading the document


def pointer(ref: str) -> Any:
    """The node a local ``#/a/b`` reference points at."""
    assert ref.startswith("#/"), f"only local references are used: {ref}"
    node: Any = DOC
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def deref(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = pointer(node["$ref"])
    return node


def anchored(node: Any) -> Any:
    """A copy of *node* whose local references name the document, so they resolve from anywhere."""
    if isinstance(node, dict):
        return {k: DOC_URI + v if k == "$ref" and isinstance(v, str) else anchored(v) for k, v in node.items()}
    if isinstance(node, list):
        return [anchored(v) for v in node]
    return node


def schema_validator(schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for *schema* (a node of the document) with its ``$ref``s resolved in the document."""
    return Draft202012Validator(anchored(schema), registry=REGISTRY)


def request_validator() -> Draft202012Validator:
    body = deref(DOC["components"]["requestBodies"]["Command"])
    return schema_validator(body["content"]["application/json"]["schema"])


def request_examples() -> dict[str, dict[str, Any]]:
    return deref(DOC["components"]["requestBodies"]["Command"])["content"]["application/json"]["examples"]


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in DOC["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield path, method, item[method]


def response_schema(response: dict[str, Any]) -> Draft202012Validator:
    return schema_validator(deref(response)["content"]["application/json"]["schema"])


def component_response(name: str) -> dict[str, Any]:
    return DOC["components"]["responses"][name]


def command_variants() -> dict[str, dict[str, Any]]:
    """Canonical command → its request schema (the first name of its ``command`` enum)."""
    request = DOC["components"]["schemas"]["Request"]
    variants = {}
    for ref in request["oneOf"]:
        schema = deref(ref)
        variants[schema["properties"]["command"]["enum"][0]] = schema
    return variants


def data_schema(command: str) -> dict[str, Any]:
    return deref(command_variants()[command]["properties"]["data"])


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def contract_accepts(obj: Any) -> bool:
    try:
        validate(obj)
    except ContractError:
        return False
    return True


# ---------------------------------------------------------------- the document against the code


def test_document_is_openapi_3_with_valid_schemas() -> None:
    assert DOC["openapi"].startswith("3.1.")
    for schema in DOC["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    for ref in set(refs(DOC)):
        pointer(ref)  # every reference resolves
    assert DOC["security"] == [{"basicAuth": []}]
    scheme = DOC["components"]["securitySchemes"]["basicAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "basic")


def test_paths_are_the_default_api_settings_and_post_only() -> None:
    defaults = {ApiSettings.otp_path.default, ApiSettings.message_path.default,
                ApiSettings.blocking_path.default, ApiSettings.unblocking_path.default}
    assert set(DOC["paths"]) == defaults
    for path, method, op in operations():
        assert method == "post", f"{path} documents {method}: the api takes POST only"
        assert op["requestBody"] == {"$ref": "#/components/requestBodies/Command"}, "every path takes every command"
        assert {"200", "400", "401", "413"} <= set(op["responses"])


def test_response_codes_equal_the_code_table() -> None:
    enum = DOC["components"]["schemas"]["ResponseCode"]["enum"]
    assert len(enum) == len(set(enum))
    assert set(enum) == codes.ALL
    response = deref(DOC["components"]["schemas"]["Response"])
    assert set(response["required"]) == {"command", "response_code", "message", "data"}


def test_commands_and_aliases_equal_the_contract() -> None:
    documented = {name: canonical for canonical, schema in command_variants().items()
                  for name in schema["properties"]["command"]["enum"]}
    assert documented == COMMANDS
    mapping = DOC["components"]["schemas"]["Request"]["discriminator"]["mapping"]
    assert {name: deref({"$ref": ref})["properties"]["command"]["enum"][0] for name, ref in mapping.items()} == COMMANDS
    responses = DOC["components"]["schemas"]["CommandResponse"]["discriminator"]["mapping"]
    assert set(responses) == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(SCHEMAS))
def test_fields_and_required_flags_equal_the_contract(command: str) -> None:
    variant = command_variants()[command]
    data = data_schema(command)
    fields = SCHEMAS[command]
    assert set(data.get("properties", {})) == set(fields)
    required = {name for name, (_check, needed) in fields.items() if needed}
    assert set(data.get("required", [])) == required
    # The contract reads a missing data as {}: data itself is required exactly when a field is.
    assert ("data" in variant["required"]) == bool(required)


@pytest.mark.parametrize("command", sorted(c for c in SCHEMAS if data_schema(c).get("x-field-aliases")))
def test_documented_field_aliases_are_accepted(command: str) -> None:
    data = data_schema(command)
    plain = minimal_data(command)
    for alias, name in data["x-field-aliases"].items():
        renamed = {alias if key == name else key: value for key, value in plain.items()}
        as_alias = validate({"command": command, "data": renamed})
        assert as_alias.data == validate({"command": command, "data": plain}).data


def minimal_data(command: str) -> dict[str, Any]:
    data = data_schema(command)
    return {name: data["properties"][name]["example"] for name in data.get("required", [])}


def probes(schema: dict[str, Any]) -> list[Any]:
    """Values to try on a field: its example, every JSON type, blanks, control characters, and the bounds."""
    example = schema["example"]
    values = [example, None, True, 7, -1, 1.5, "text", "", " ", "a\tb", "\x01", {}, [], ["x"]]
    for branch in schema.get("oneOf", [schema]):
        if isinstance(example, str) and "maxLength" in branch:
            pad = example[-1]
            values += [example.ljust(branch["maxLength"], pad), example.ljust(branch["maxLength"] + 1, pad)]
        for bound in ("minimum", "maximum", "exclusiveMaximum"):
            if bound in branch:
                values += [branch[bound] - 1, branch[bound], branch[bound] + 1]
    return values


FIELD_CASES = [(command, name) for command in sorted(SCHEMAS) for name in SCHEMAS[command]]


@pytest.mark.parametrize(("command", "name"), FIELD_CASES, ids=[f"{c}.{n}" for c, n in FIELD_CASES])
def test_field_schema_accepts_what_the_contract_accepts(command: str, name: str) -> None:
    schema = data_schema(command)["properties"][name]
    validator = request_validator()
    base = minimal_data(command)
    disagreements = []
    for value in probes(schema):
        body = {"command": command, "data": {**base, name: value}}
        documented, actual = validator.is_valid(body), contract_accepts(body)
        if documented != actual:
            disagreements.append(f"{value!r}: document {'accepts' if documented else 'refuses'}, "
                                 f"contract {'accepts' if actual else 'refuses'}")
    assert not disagreements, f"data.{name} of {command}: " + "; ".join(disagreements)


@pytest.mark.parametrize("body", [
    [], "echo", {}, {"command": 7}, {"command": "no-such-command"}, {"command": "echo", "data": []},
    {"command": "echo", "data": None}, {"command": "echo", "callback_topic": ""}, {"command": "send-sms"},
    {"command": "echo", "callback_topic": "x" * 256}, {"command": "echo", "callback_topic": "replies"},
    {"command": "get-modem-list"}, {"command": "get-modem-list", "data": {"date_time": "yesterday"}},
], ids=repr)
def test_request_envelope_agrees_with_the_contract(body: Any) -> None:
    assert request_validator().is_valid(body) == contract_accepts(body)


def test_every_command_name_has_a_request_example() -> None:
    names = {example["value"]["command"] for example in request_examples().values()}
    assert set(COMMANDS) <= names


@pytest.mark.parametrize("name", sorted(request_examples()))
def test_request_examples_fit_the_request_schema_as_the_contract_does(name: str) -> None:
    example = request_examples()[name]
    expected_ok = example.get("x-status", 200) == 200
    assert request_validator().is_valid(example["value"]) is expected_ok
    assert contract_accepts(example["value"]) is expected_ok


def test_response_examples_fit_their_schemas() -> None:
    checked = 0
    for name, response in DOC["components"]["responses"].items():
        content = response["content"]["application/json"]
        validator = schema_validator(content["schema"])
        for key, example in content.get("examples", {}).items():
            errors = [e.message for e in validator.iter_errors(example["value"])]
            assert not errors, f"responses.{name} example {key}: {errors}"
            checked += 1
    assert checked >= 8


# ---------------------------------------------------------------- the document against the live api


def check_answer(answer: requests.Response, response: dict[str, Any]) -> dict[str, Any]:
    assert answer.headers["Content-Type"].startswith("application/json")
    body = answer.json()
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in response_schema(response).iter_errors(body)]
    assert not errors, f"{answer.request.method} {answer.url} -> {answer.status_code} {body}: {errors}"
    for header, spec in deref(response).get("headers", {}).items():
        assert header in answer.headers, f"{answer.status_code} lacks the documented {header} header"
        assert schema_validator(spec["schema"]).is_valid(answer.headers[header])
    return body


@pytest.mark.slow
def test_every_example_posted_to_every_path_gets_a_documented_answer(api) -> None:
    for path, _method, op in operations():
        for name, example in request_examples().items():
            status = example.get("x-status", 200)
            answer = api.post(path, json.dumps(example["value"]))
            assert answer.status_code == status, f"{name} on {path}: {answer.status_code} {answer.text}"
            assert str(status) in op["responses"]
            body = check_answer(answer, op["responses"][str(status)])
            assert body["command"] == example["value"]["command"], "the answer names the command as sent"


@pytest.mark.slow
def test_refusals_get_documented_answers(api) -> None:
    some_path = next(iter(DOC["paths"]))
    echo = json.dumps(request_examples()["echo"]["value"])
    for path in DOC["paths"]:
        documented = {m.upper() for m in HTTP_METHODS if m in DOC["paths"][path]}
        for method in sorted({"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"} - documented):
            answer = requests.request(method, api.url + path, data=echo, auth=(api.user, api.password), timeout=30)
            assert answer.status_code == 405, f"{method} {path}"
            assert answer.headers["Allow"] == "POST"
            if method != "HEAD":
                check_answer(answer, component_response("MethodNotAllowed"))
        for auth in [False, (api.user, "wrong password"), ("nobody", api.password)]:
            answer = api.post(path, echo, auth=auth)
            assert answer.status_code == 401
            check_answer(answer, DOC["paths"][path]["post"]["responses"]["401"])

    answer = api.post("/api/not-configured", echo)
    assert answer.status_code == 404
    check_answer(answer, component_response("NotFound"))

    ops = DOC["paths"][some_path]["post"]["responses"]
    answer = api.post(some_path, b'{"command": "echo", "data": {"pad": "' + b"x" * 70_000 + b'"}}')
    assert answer.status_code == 413
    check_answer(answer, ops["413"])
    for bad in [b"not json", b'{"command": "create-otp"}', b'{"command": "echo", "command": "echo"}', b"\xff"]:
        answer = api.post(some_path, bad)
        assert answer.status_code == 400, bad
        check_answer(answer, ops["400"])
