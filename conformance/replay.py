#!/usr/bin/env python3
"""Replays identity-provider request suites (conformance/okta.json, conformance/entra.json)
against a live scimd and checks every answer.

Usage:
    python3 conformance/replay.py --url http://127.0.0.1:8080/scim/v2 --token TOKEN SUITE.json...

The token may also come from the environment variable SCIMD_REPLAY_TOKEN (so that `ps` never
shows it). Prints one PASS/FAIL line per step and exits 1 if any step failed, 2 on bad usage or
an unreadable suite. Standard library only.

Suite format (JSON):

    {
      "name": "okta",
      "description": "...",
      "headers": {"Content-Type": "application/json"},    # optional, sent on every step
      "steps": [
        {
          "name": "create user",
          "source": "title of the public document that describes this request",
          "method": "POST",
          "path": "/Users?filter=userName eq \"{user}\"",    # relative to --url, NOT encoded
          "headers": {"Authorization": "{token}"},           # optional; null removes a header
          "body": {...},                                     # optional JSON
          "expect": {
            "status": 201,                                   # an int, or a list of ints
            "json": {"/id": "present", "/password": "absent", "/active": true}
          },
          "save": {"uid": "/id"}                             # variable -> JSON pointer
        }
      ]
    }

Placeholders `{name}` are replaced in the path, header values and every string (and object key)
of the body. A string that is exactly one placeholder takes the variable's JSON value as is
(so a saved object such as `meta` can be sent back). Built-in variables: `token`, `base` (the
--url value), `run` (random hex, fixed for one suite run, to keep names unique) and `uuid` (a
fresh random UUID per step).

The path's query string is written plainly (spaces, quotes, `+`) and percent-encoded here, the
way an HTTP client encodes it, so `+` reaches the server as `%2B`, never as a space.

Default headers: `Accept: application/scim+json`, `Authorization: Bearer {token}` and, when the
step has a body, `Content-Type: application/scim+json`; the suite's and the step's `headers`
override them in that order.

Assertions in `expect.json` map an RFC 6901 JSON pointer to:
    "absent" / "present"         the pointer does not / does resolve
    {"$len": n}                  an array (or object) of n entries
    {"$empty": true}             absent, null, [] or {} (RFC 7643 §2.5: all mean "no value")
    {"$type": t}                 a JSON value of type t: string, integer, number, boolean,
                                 array, object or null
    {"$contains": v}             an array with an element that matches v (objects: v's keys only)
    {"$not_contains": v}         no element of the array matches v
    {"$each": {ptr: expected}}   every element of the array passes these nested assertions
    {"$all": [e1, e2, ...]}      every one of these expectations holds (one pointer, many checks)
    anything else                equal to this JSON value (for strings: exactly)
"""

import argparse
import json
import os
import re
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid

TIMEOUT_SECONDS = 30
EXCERPT = 600
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
MISSING = object()


class StepError(Exception):
    """A step failed; the message says why."""


class UnsetVariable(StepError):
    pass


# --- placeholders ---------------------------------------------------------------------------


def fill_str(text, env):
    def one(m):
        name = m.group(1)
        if name not in env:
            raise UnsetVariable(f"variable {{{name}}} is not set (an earlier step did not save it)")
        value = env[name]
        return value if isinstance(value, str) else json.dumps(value)

    return PLACEHOLDER.sub(one, text)


def fill(value, env):
    """Substitute placeholders in a JSON value (strings and object keys)."""
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole:
            name = whole.group(1)
            if name not in env:
                raise UnsetVariable(f"variable {{{name}}} is not set (an earlier step did not save it)")
            return env[name]
        return fill_str(value, env)
    if isinstance(value, list):
        return [fill(v, env) for v in value]
    if isinstance(value, dict):
        return {fill_str(k, env): fill(v, env) for k, v in value.items()}
    return value


# --- JSON pointer and matching --------------------------------------------------------------


def resolve(doc, pointer):
    """RFC 6901. Returns MISSING when the pointer does not resolve."""
    if pointer == "":
        return doc
    if not pointer.startswith("/"):
        raise StepError(f"bad JSON pointer {pointer!r} in the suite (must start with '/')")
    cur = doc
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(cur, dict):
            if token not in cur:
                return MISSING
            cur = cur[token]
        elif isinstance(cur, list):
            if not token.isdigit() or int(token) >= len(cur):
                return MISSING
            cur = cur[int(token)]
        else:
            return MISSING
    return cur


def same(a, b):
    """JSON equality that keeps true != 1 (Python alone says True == 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def partial(actual, wanted):
    """`wanted` matches `actual` if every key of a wanted object matches (recursively)."""
    if isinstance(wanted, dict):
        return isinstance(actual, dict) and all(
            k in actual and partial(actual[k], v) for k, v in wanted.items()
        )
    return same(actual, wanted)


def json_type(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def short(value):
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 200 else text[:200] + "..."


def check(doc, pointer, expected, where=""):
    """Raise StepError when the assertion does not hold."""
    at = f"{where}{pointer or '/'}"
    actual = resolve(doc, pointer)
    if isinstance(expected, dict) and list(expected) == ["$all"]:
        for one in expected["$all"]:
            check(doc, pointer, one, where)
        return
    if isinstance(expected, dict) and list(expected) == ["$empty"]:
        if actual is not MISSING and actual not in (None, [], {}):
            raise StepError(f"{at}: expected no value, found {short(actual)}")
        return
    if expected == "absent":
        if actual is not MISSING:
            raise StepError(f"{at}: expected absent, found {short(actual)}")
        return
    if actual is MISSING:
        raise StepError(f"{at}: missing (expected {short(expected)})")
    if expected == "present":
        return
    if isinstance(expected, dict) and len(expected) == 1 and next(iter(expected)).startswith("$"):
        op, arg = next(iter(expected.items()))
        if op == "$len":
            if not isinstance(actual, (list, dict)) or len(actual) != arg:
                n = len(actual) if isinstance(actual, (list, dict)) else "not an array"
                raise StepError(f"{at}: expected {arg} entries, found {n}: {short(actual)}")
            return
        if op == "$type":
            if json_type(actual) != arg:
                raise StepError(f"{at}: expected a JSON {arg}, found {short(actual)}")
            return
        if op in ("$contains", "$not_contains", "$each") and not isinstance(actual, list):
            raise StepError(f"{at}: expected an array, found {short(actual)}")
        if op == "$contains":
            if not any(partial(el, arg) for el in actual):
                raise StepError(f"{at}: no element matches {short(arg)}; found {short(actual)}")
            return
        if op == "$not_contains":
            if any(partial(el, arg) for el in actual):
                raise StepError(f"{at}: an element matches {short(arg)}; found {short(actual)}")
            return
        if op == "$each":
            for i, el in enumerate(actual):
                for sub_ptr, sub_expected in arg.items():
                    check(el, sub_ptr, sub_expected, where=f"{at}/{i}")
            return
        raise StepError(f"unknown matcher {op!r} in the suite")
    if not same(actual, expected):
        raise StepError(f"{at}: expected {short(expected)}, found {short(actual)}")


# --- HTTP -----------------------------------------------------------------------------------


def encode_path(path):
    """Percent-encode the query of a plainly written path ("a b" -> "a%20b", "+" -> "%2B")."""
    if "?" not in path:
        return urllib.parse.quote(path, safe="/:@-._~!$'()*,;=")
    base, query = path.split("?", 1)
    parts = []
    for pair in query.split("&"):
        key, eq, value = pair.partition("=")
        enc = urllib.parse.quote(key, safe="") + eq + urllib.parse.quote(value, safe="")
        parts.append(enc)
    return urllib.parse.quote(base, safe="/:@-._~!$'()*,;=") + "?" + "&".join(parts)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is an answer to check, not to follow


OPENER = urllib.request.build_opener(NoRedirect)


def send(method, url, headers, body_bytes):
    req = urllib.request.Request(url, data=body_bytes, method=method)
    for k, v in headers.items():
        req.add_header(k, v)
    try:
        with OPENER.open(req, timeout=TIMEOUT_SECONDS) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers or {}), e.read()


# --- running --------------------------------------------------------------------------------


def run_step(step, env, base_url, suite_headers):
    env = dict(env, uuid=str(uuid.uuid4()))
    method = step.get("method", "GET").upper()
    path = fill_str(step["path"], env)
    headers = {"Accept": "application/scim+json", "Authorization": "Bearer {token}"}
    if "body" in step:
        headers["Content-Type"] = "application/scim+json"
    for layer in (suite_headers, step.get("headers", {})):
        for k, v in layer.items():
            # header names are case-insensitive: an override replaces any spelling
            for existing in [h for h in headers if h.lower() == k.lower()]:
                del headers[existing]
            if v is not None:
                headers[k] = v
    headers = {k: fill_str(v, env) for k, v in headers.items()}
    body = fill(step["body"], env) if "body" in step else None
    body_bytes = json.dumps(body).encode() if body is not None else None

    request_line = f"{method} {path}"
    status, _headers, raw = send(method, base_url + encode_path(path), headers, body_bytes)
    text = raw.decode("utf-8", errors="replace")
    doc = MISSING
    if text.strip():
        try:
            doc = json.loads(text)
        except ValueError:
            doc = MISSING

    def fail(reason):
        lines = [reason, f"request: {request_line}"]
        if body is not None:
            lines.append("request body: " + clip(json.dumps(body, ensure_ascii=False)))
        lines.append(f"response: {status} " + (clip(text) if text.strip() else "(empty body)"))
        return StepError("\n".join(lines))

    expect = step.get("expect", {})
    wanted = expect.get("status")
    if wanted is not None:
        allowed = wanted if isinstance(wanted, list) else [wanted]
        if status not in allowed:
            raise fail(f"status: expected {wanted}, got {status}")
    assertions = expect.get("json", {})
    if assertions and doc is MISSING:
        raise fail("expected a JSON body, got " + ("none" if not text.strip() else "non-JSON"))
    for pointer, expected in assertions.items():
        try:
            check(doc, fill_str(pointer, env), fill(expected, env))
        except StepError as e:
            raise fail(str(e)) from None
    saved = {}
    for var, pointer in step.get("save", {}).items():
        value = resolve(doc, pointer) if doc is not MISSING else MISSING
        if value is MISSING:
            raise fail(f"save {var}: {pointer} is missing from the response")
        saved[var] = value
    return status, request_line, saved


def clip(text):
    text = text.strip().replace("\n", " ")
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "..."


def load_suite(path):
    with open(path, encoding="utf-8") as f:
        suite = json.load(f)
    if not isinstance(suite.get("steps"), list) or not suite["steps"]:
        raise ValueError("a suite needs a non-empty 'steps' list")
    for i, step in enumerate(suite["steps"], 1):
        missing = [k for k in ("name", "path", "source", "expect") if k not in step]
        if missing:
            raise ValueError(f"step {i} lacks {', '.join(missing)}")
    return suite


def run_suite(suite, base_url, token):
    name = suite.get("name", "suite")
    env = {"token": token, "base": base_url, "run": secrets.token_hex(4)}
    failures = 0
    width = len(str(len(suite["steps"])))
    for i, step in enumerate(suite["steps"], 1):
        label = f"{name} {i:0{width}d} {step['name']}"
        try:
            status, request_line, saved = run_step(step, env, base_url, suite.get("headers", {}))
        except StepError as e:
            failures += 1
            first, *rest = str(e).split("\n")
            print(f"FAIL {label}: {first}")
            for line in rest:
                print(f"       {line}")
            continue
        except OSError as e:  # connection refused, timeout, ...
            failures += 1
            print(f"FAIL {label}: no answer: {e}")
            continue
        env.update(saved)
        print(f"PASS {label} ({request_line} -> {status})")
    total = len(suite["steps"])
    print(f"{name}: {total - failures}/{total} steps passed")
    return failures


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="SCIM base URL, e.g. http://127.0.0.1:8080/scim/v2")
    ap.add_argument("--token", help="provisioning token (default: $SCIMD_REPLAY_TOKEN)")
    ap.add_argument("suites", nargs="+", help="suite files (JSON)")
    args = ap.parse_args(argv)
    token = args.token or os.environ.get("SCIMD_REPLAY_TOKEN")
    if not token:
        ap.error("no token: pass --token or set SCIMD_REPLAY_TOKEN")
    base_url = args.url.rstrip("/")
    suites = []
    for path in args.suites:
        try:
            suites.append(load_suite(path))
        except (OSError, ValueError) as e:
            print(f"cannot load suite {path}: {e}", file=sys.stderr)
            return 2
    failures = sum(run_suite(s, base_url, token) for s in suites)
    if failures:
        print(f"replay: FAILED: {failures} step(s) failed")
        return 1
    print("replay: all steps passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
