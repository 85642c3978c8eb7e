"""Checks HTTP responses against the read API's OpenAPI 3.1 document
(connectors/api/openapi.json), and the document against what OpenAPI 3.1
asks of its structure, without the network.

    doc = json.load(open("connectors/api/openapi.json"))
    check_document(doc)            # AssertionError naming the first problem
    ck = Checker(doc)
    ck.check("GET", "/v1/posts/123?x=1", 200, headers, body)

check() finds the operation (an actual path like /v1/posts/123 matches
/v1/posts/{id} when 123 fits the parameter's schema; a template matches
itself), checks that the status is documented for it, that the body
validates against the response's schema (JSON Schema 2020-12, `$ref`s
resolved against the document), that the Content-Type is a documented media
type, and that every header the response documents as required is present
and every documented header that is present fits its schema. For a 2xx it
also checks that the request's query parameters are declared and valid.
A request that no operation matches (an unknown path, a method other than
GET or HEAD) may only get one of the answers under the document's
`x-feedline-any-path`. HEAD is checked as GET without a body.

Failures are AssertionErrors whose message starts with the request and
gives the JSON pointer of the first violation in the body (or the header or
parameter at fault). Validators are compiled once per schema and cached.

Needs Debian's python3-jsonschema (4.10 or later: Draft202012Validator).
"""
import json
import re
import urllib.parse

import jsonschema
from jsonschema import Draft202012Validator, _validators

# What passed a `$ref` once passes again: feeds repeat the same posts page
# after page and viewer after viewer, and jsonschema walks every keyword of
# every item each time. (No $dynamicRef here, so a $ref's answer depends
# only on the value.)
_PASSED = set()
_PASSED_MAX = 500000


def _memo_ref(validator, ref, instance, schema):
    if not isinstance(instance, (dict, list)):
        yield from _validators.ref(validator, ref, instance, schema)
        return
    key = (ref, json.dumps(instance, sort_keys=True, separators=(",", ":")))
    if key in _PASSED:
        return
    failed = False
    for err in _validators.ref(validator, ref, instance, schema):
        failed = True
        yield err
    if not failed:
        if len(_PASSED) >= _PASSED_MAX:
            _PASSED.clear()
        _PASSED.add(key)


_Validator = jsonschema.validators.extend(Draft202012Validator, {"$ref": _memo_ref})

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_STATUS_RE = re.compile(r"^([1-5][0-9][0-9]|[1-5]XX|default)$")
_PARAM_IN = ("query", "header", "path", "cookie")


def pointer(parts):
    """A JSON pointer (RFC 6901) of a sequence of keys and indexes."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts) or "/"


def _short(msg, n=300):
    return msg if len(msg) <= n else msg[:n] + "..."


def _unpointer(s):
    return [p.replace("~1", "/").replace("~0", "~") for p in s.split("/")[1:]]


def resolve(doc, ref):
    """The object a local `$ref` ("#/a/b") names; KeyError when none."""
    if not ref.startswith("#"):
        raise KeyError("%s: only references into this document are supported" % ref)
    node = doc
    for part in _unpointer(urllib.parse.unquote(ref[1:])):
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise KeyError(ref)
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise KeyError(ref)
    return node


def _deref(doc, obj, depth=0):
    """Follows an OpenAPI (not JSON Schema) `$ref` chain to the object."""
    while isinstance(obj, dict) and "$ref" in obj:
        obj = resolve(doc, obj["$ref"])
        depth += 1
        if depth > 32:
            raise AssertionError("a $ref loop")
    return obj


def _walk(node, path):
    yield node, path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, path + [k])
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, path + [i])


def _template_params(template):
    return re.findall(r"\{([^{}/]+)\}", template)


def _op_params(doc, path_item, op):
    """The operation's parameters by (name, in): its own over the path item's."""
    out = {}
    for src in (path_item.get("parameters", []), op.get("parameters", [])):
        for p in src:
            p = _deref(doc, p)
            out[(p["name"], p["in"])] = p
    return out


def check_document(doc):
    """What can be checked of an OpenAPI 3.1 document offline: the version
    and dialect, that every $ref resolves, that every path parameter is
    declared (and every declared one is in the path), parameters and
    operationIds unique, every operation with responses that have a
    description, security names declared, secured operations documenting
    401, and every schema valid against the 2020-12 meta-schema."""
    def need(cond, where, msg):
        if not cond:
            raise AssertionError("openapi document %s: %s" % (pointer(where), msg))

    need(isinstance(doc, dict), [], "not an object")
    need(re.match(r"^3\.1\.\d+$", str(doc.get("openapi", ""))), ["openapi"],
         "not 3.1.x: %r" % doc.get("openapi"))
    dialect = doc.get("jsonSchemaDialect", "https://spec.openapis.org/oas/3.1/dialect/base")
    need(dialect in ("https://json-schema.org/draft/2020-12/schema",
                     "https://spec.openapis.org/oas/3.1/dialect/base"),
         ["jsonSchemaDialect"], "a dialect this checker does not know: %s" % dialect)
    info = doc.get("info")
    need(isinstance(info, dict) and isinstance(info.get("title"), str) and
         isinstance(info.get("version"), str), ["info"], "needs title and version strings")
    need(isinstance(doc.get("paths"), dict), ["paths"], "missing")
    known_top = {"openapi", "info", "jsonSchemaDialect", "servers", "paths", "webhooks",
                 "components", "security", "tags", "externalDocs"}
    for k in doc:
        need(k in known_top or k.startswith("x-"), [k], "not a field of an OpenAPI object")
    # every $ref resolves
    for node, where in _walk(doc, []):
        if isinstance(node, dict) and "$ref" in node:
            need(isinstance(node["$ref"], str), where, "$ref is not a string")
            try:
                resolve(doc, node["$ref"])
            except KeyError:
                need(False, where + ["$ref"], "%s does not resolve" % node["$ref"])
    schemes = doc.get("components", {}).get("securitySchemes", {})
    for name, s in schemes.items():
        s = _deref(doc, s)
        need(s.get("type") in ("apiKey", "http", "mutualTLS", "oauth2", "openIdConnect"),
             ["components", "securitySchemes", name], "bad type %r" % s.get("type"))
        if s.get("type") == "http":
            need(isinstance(s.get("scheme"), str), ["components", "securitySchemes", name],
                 "an http scheme needs `scheme`")

    def check_security(reqs, where):
        need(isinstance(reqs, list), where, "security is not a list")
        for i, req in enumerate(reqs):
            for name in req:
                need(name in schemes, where + [i, name], "no such security scheme")

    if "security" in doc:
        check_security(doc["security"], ["security"])
    op_ids = {}
    shapes = {}
    for template, item in doc["paths"].items():
        where = ["paths", template]
        need(template.startswith("/"), where, "a path must start with /")
        shape = re.sub(r"\{[^{}/]+\}", "{}", template)
        need(shape not in shapes, where, "the same path as %s" % shapes.get(shape))
        shapes[shape] = template
        names = _template_params(template)
        need(len(names) == len(set(names)), where, "a parameter named twice in the path")
        item = _deref(doc, item)
        ops = [m for m in METHODS if m in item]
        need(ops, where, "no operation")
        for m in ops:
            op = item[m]
            ow = where + [m]
            for src, sw in ((item.get("parameters", []), where), (op.get("parameters", []), ow)):
                seen = set()
                for i, p in enumerate(src):
                    p = _deref(doc, p)
                    pw = sw + ["parameters", i]
                    need(isinstance(p.get("name"), str) and p.get("in") in _PARAM_IN, pw,
                         "a parameter needs name and in (query, header, path, cookie)")
                    need((p["name"], p["in"]) not in seen, pw, "declared twice")
                    seen.add((p["name"], p["in"]))
                    need(("schema" in p) != ("content" in p), pw, "needs schema or content")
                    if p["in"] == "path":
                        need(p.get("required") is True, pw, "a path parameter must be required")
                        need(p["name"] in names, pw, "%s is not in the path" % p["name"])
            params = _op_params(doc, item, op)
            for n in names:
                need((n, "path") in params, ow, "path parameter {%s} not declared" % n)
            oid = op.get("operationId")
            if oid is not None:
                need(oid not in op_ids, ow + ["operationId"],
                     "%s is also the id of %s" % (oid, op_ids.get(oid)))
                op_ids[oid] = pointer(ow)
            rs = op.get("responses")
            need(isinstance(rs, dict) and rs, ow + ["responses"], "an operation needs responses")
            for code, r in rs.items():
                rw = ow + ["responses", code]
                need(_STATUS_RE.match(str(code)), rw, "not a status code")
                r = _deref(doc, r)
                need(isinstance(r.get("description"), str), rw, "a response needs a description")
                for h, ho in r.get("headers", {}).items():
                    ho = _deref(doc, ho)
                    need("schema" in ho or "content" in ho, rw + ["headers", h], "needs a schema")
            sec = op.get("security", doc.get("security", []))
            check_security(sec, ow + ["security"])
            if any(req for req in sec):
                need("401" in rs, ow + ["responses"], "a secured operation must document 401")
    # every schema is a valid 2020-12 schema
    for node, where in _walk(doc, []):
        if where and where[-1] == "schema" and isinstance(node, dict) or \
                len(where) == 3 and where[:2] == ["components", "schemas"]:
            try:
                Draft202012Validator.check_schema(node)
            except jsonschema.exceptions.SchemaError as e:
                need(False, where + list(e.absolute_path), "not a valid schema: %s" % e.message)
    return True


class Checker:
    """Validates responses against one OpenAPI document (see the module's docstring)."""

    def __init__(self, doc):
        self.doc = doc
        self.resolver = jsonschema.RefResolver.from_schema(doc)
        self._validators = {}
        self._routes = []
        for template, item in doc["paths"].items():
            item = _deref(doc, item)
            names = _template_params(template)
            parts = re.split(r"(\{[^{}/]+\})", template)
            rx = "".join("(?P<p%d>[^/]+)" % names.index(p[1:-1]) if p.startswith("{")
                         else re.escape(p) for p in parts)
            self._routes.append((template, re.compile("^%s$" % rx), names, item))
        # an exact template first, then the one with the fewest parameters
        self._routes.sort(key=lambda r: len(r[2]))
        self.any_path = doc.get("x-feedline-any-path", {}).get("responses", {})
        # every header some response documents: one of them on a response
        # that does not document it is drift
        self.header_names = {name.lower() for node, where in _walk(doc, [])
                             if len(where) > 1 and where[-1] == "headers"
                             and isinstance(node, dict) and where[-2] != "components"
                             for name in node}
        self.checked = 0

    def validator(self, schema):
        """The compiled validator of a schema of the document (by identity:
        the document outlives the checker's use of it)."""
        v = self._validators.get(id(schema))
        if v is None:
            v = self._validators[id(schema)] = _Validator(schema, resolver=self.resolver)
        return v

    def _violation(self, schema, value):
        """The error of value against schema that says most, or None: the
        deepest in the value, and not the unevaluatedProperties one that a
        property failing its own schema brings along."""
        v = self.validator(schema)
        if v.is_valid(value):
            return None
        return min(v.iter_errors(value),
                   key=lambda e: (e.validator == "unevaluatedProperties", -len(e.absolute_path)))

    def find(self, method, path):
        """(template, path item, operation, path params) of a request; the
        operation is None when the path matches but the method does not."""
        for template, rx, names, item in self._routes:
            m = rx.match(path)
            if not m:
                continue
            values = {n: urllib.parse.unquote(m.group("p%d" % i)) for i, n in enumerate(names)}
            op = item.get(method)
            if op is None and method == "head":
                op = item.get("get")
            if op is not None and path != template:
                params = _op_params(self.doc, item, op)
                if any(self._violation(params[(n, "path")].get("schema", {}), v)
                       for n, v in values.items() if (n, "path") in params):
                    continue  # /v1/posts/abc is no request of /v1/posts/{id}
            return template, item, op, values
        return None, None, None, {}

    def check(self, method, path, status, headers, body):
        """Raises AssertionError unless the response is what the document says."""
        method = method.lower()
        where = "%s %s -> %s" % (method.upper(), path, status)

        def fail(at, msg):
            raise AssertionError("%s: %s: %s" % (where, at, msg))

        path_only, _, query = path.partition("?")
        template, item, op, _ = self.find(method, path_only)
        headers = {k.lower(): v for k, v in (headers or {}).items()}
        code = str(status)
        if op is None:
            responses = self.any_path
            if code not in responses:
                fail("status", "%s is not one of the answers to a request no operation matches "
                     "(%s)" % (code, ", ".join(sorted(responses))))
            where += " (no operation)"
        else:
            responses = op.get("responses", {})
            where += " (%s %s)" % (method.upper(), template)
        resp = responses.get(code) or responses.get(code[0] + "XX") or responses.get("default")
        if resp is None:
            fail("status", "%s is not documented (%s)" % (code, ", ".join(sorted(responses))))
        resp = _deref(self.doc, resp)
        documented = set()
        for name, h in resp.get("headers", {}).items():
            h = _deref(self.doc, h)
            documented.add(name.lower())
            value = headers.get(name.lower())
            if value is None:
                if h.get("required"):
                    fail("header " + name, "required, missing")
                continue
            if "schema" in h:
                err = self._violation(h["schema"], value)
                if err is not None:
                    fail("header " + name, "%r: %s" % (value, err.message))
        for name in headers:
            if name in self.header_names and name not in documented:
                fail("header " + name, "present but not documented for this response")
        content = resp.get("content")
        if method == "head" or not content:
            if content is None and body not in (None, b"", ""):
                fail("body", "this response has no documented body")
        else:
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            media = content.get(ctype)
            if media is None:
                fail("header Content-Type", "%r is not documented (%s)" % (
                    ctype, ", ".join(sorted(content))))
            if "schema" in media:
                value = body
                if isinstance(value, (bytes, bytearray)) and not ctype.endswith("json"):
                    value = value.decode("utf-8", "replace")
                err = self._violation(media["schema"], value)
                if err is not None:
                    fail("body " + pointer(err.absolute_path), "%s (schema %s)" % (
                        _short(err.message), pointer(err.absolute_schema_path)))
        if op is not None and code.startswith("2"):
            self._check_query(op, item, query, fail)
        self.checked += 1

    def _check_query(self, op, item, query, fail):
        params = _op_params(self.doc, item, op)
        for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
            p = params.get((name, "query"))
            if p is None:
                fail("query " + name, "answered 2xx, but not a declared parameter")
            schema = _deref(self.doc, p.get("schema", {}))
            if schema.get("type") in ("integer", "number") and re.match(r"^-?[0-9]+$", value):
                value = int(value)
            err = self._violation(p.get("schema", {}), value)
            if err is not None:
                fail("query " + name, "%r answered 2xx, but: %s" % (value, err.message))
