#!/usr/bin/env python3
"""Writes src/policy/catalog.rs: turnpike's table of APIM policy elements.

The table is read from the policy XSD schemas published with the APIM
tooling (vscode-apimanagement's policySchemas), found beside the checkout
at ../shared/corpus/policy-schemas/vscode-apimanagement, and is then owned
and edited as Rust. A test (policy::catalog) re-reads the schemas when they
are present and fails if the table and the schemas disagree.

Usage: python3 tools/gen-policy-catalog.py [SCHEMA_DIR] > src/policy/catalog.rs
"""
import glob
import os
import sys
import xml.etree.ElementTree as ET

XS = "{http://www.w3.org/2001/XMLSchema}"
here = os.path.dirname(os.path.abspath(__file__))
schema_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    here, "..", "..", "shared", "corpus", "policy-schemas", "vscode-apimanagement")

simple_types = {}   # name -> node
complex_types = {}  # name -> node
top_elements = {}   # name -> node (policy elements, one per file)
for path in sorted(glob.glob(os.path.join(schema_dir, "*.xsd"))):
    root = ET.parse(path).getroot()
    for child in root:
        name = child.get("name")
        if child.tag == XS + "simpleType":
            simple_types[name] = child
        elif child.tag == XS + "complexType":
            complex_types[name] = child
        elif child.tag == XS + "element":
            top_elements[name] = child

INT = {"xs:int", "xs:long", "xs:integer", "xs:short"}
UINT = {"xs:unsignedInt", "xs:nonNegativeInteger", "xs:positiveInteger", "xs:unsignedLong"}


def simple_kind(type_name=None, node=None, seen=()):
    """-> (kind, enum values, expression allowed)."""
    if node is None:
        if type_name is None or type_name in ("xs:string", "xs:anyURI", "xs:dateTime", "xs:duration"):
            return ("Str", [], type_name != "xs:dateTime")
        if type_name == "expression":
            return ("Str", [], True)
        if type_name == "xs:boolean":
            return ("Bool", [], False)
        if type_name in INT:
            return ("Int", [], False)
        if type_name in UINT:
            return ("UInt", [], False)
        if type_name in ("xs:float", "xs:double", "xs:decimal"):
            return ("Num", [], False)
        if type_name in simple_types and type_name not in seen:
            return simple_kind(node=simple_types[type_name], seen=seen + (type_name,))
        return ("Str", [], True)
    union = node.find(XS + "union")
    if union is not None:
        kinds, values, expr = [], [], False
        members = (union.get("memberTypes") or "").split()
        parts = [simple_kind(m, seen=seen) for m in members]
        parts += [simple_kind(node=n, seen=seen) for n in union.findall(XS + "simpleType")]
        for m, (k, v, e) in zip(members + [None] * 99, parts):
            if m == "expression":
                expr = True
                continue
            kinds.append(k)
            values += v
            expr = expr or e
        if values and all(k == "Enum" for k in kinds):
            return ("Enum", values, expr)
        if not kinds:
            return ("Str", [], True)
        # Mixed unions (e.g. an enum or a number): the most permissive base.
        base = kinds[0] if all(k == kinds[0] for k in kinds) else "Str"
        return (base, values if base == "Enum" else [], expr)
    restriction = node.find(XS + "restriction")
    if restriction is not None:
        values = [e.get("value") for e in restriction.findall(XS + "enumeration")]
        if values:
            return ("Enum", values, False)
        return simple_kind(restriction.get("base"), seen=seen)
    return ("Str", [], True)


def attr_spec(a):
    inner = a.find(XS + "simpleType")
    kind, values, expr = simple_kind(a.get("type"), inner) if inner is not None else simple_kind(a.get("type"))
    return {"name": a.get("name"), "required": a.get("use") == "required", "kind": kind,
            "values": values, "expr": expr, "default": a.get("default")}


def walk_particles(node, out, in_choice=False, repeated=False):
    """Collects (element node, min, max) and whether xs:any appears.
    Inside a choice every element is optional; inside a repeated group
    (maxOccurs="unbounded") every element may repeat."""
    any_ = False
    for c in node:
        if c.tag == XS + "element":
            lo = int(c.get("minOccurs", "1"))
            hi = c.get("maxOccurs", "1")
            unbounded = hi == "unbounded" or repeated
            out.append((c, 0 if in_choice else lo, None if unbounded else int(hi)))
        elif c.tag in (XS + "sequence", XS + "all", XS + "choice"):
            rep = repeated or c.get("maxOccurs") == "unbounded"
            any_ |= walk_particles(c, out, in_choice or c.tag == XS + "choice", rep)
        elif c.tag == XS + "any":
            any_ = True
    return any_


def complex_spec(ct, seen):
    attrs, children, any_, text = [], [], False, ct.get("mixed") == "true"
    for c in ct:
        if c.tag == XS + "attribute":
            attrs.append(attr_spec(c))
        elif c.tag in (XS + "sequence", XS + "choice", XS + "all"):
            any_ |= walk_particles(ct, children)
        elif c.tag in (XS + "simpleContent", XS + "complexContent"):
            ext = c.find(XS + "extension")
            if ext is None:
                ext = c.find(XS + "restriction")
            base = ext.get("base")
            if c.tag == XS + "simpleContent":
                text = True
            elif base in complex_types and base not in seen:
                b = complex_spec(complex_types[base], seen + (base,))
                attrs += b["attrs"]
                children += b["children"]
                any_ |= b["any"]
                text |= b["text"]
            for a in ext.findall(XS + "attribute"):
                attrs.append(attr_spec(a))
            any_ |= walk_particles(ext, children)
    # de-duplicate particles collected twice (sequence walked via ct)
    uniq, names = [], set()
    for p in children:
        if p[0].get("name") not in names:
            names.add(p[0].get("name"))
            uniq.append(p)
    return {"attrs": attrs, "children": uniq, "any": any_, "text": text}


def element_spec(el, seen=()):
    name = el.get("name")
    t = el.get("type")
    ct = el.find(XS + "complexType")
    if ct is not None:
        spec = complex_spec(ct, seen)
    elif t in complex_types and t not in seen:
        spec = complex_spec(complex_types[t], seen + (t,))
    else:
        # A simple-typed element: text content only.
        kind, values, expr = simple_kind(t)
        spec = {"attrs": [], "children": [], "any": False, "text": True}
    spec["name"] = name
    spec["children"] = [(element_spec(c, seen), lo, hi) for c, lo, hi in spec["children"]]
    return spec


def rs_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(spec, indent):
    pad = " " * indent
    attrs = []
    for a in spec["attrs"]:
        kind = a["kind"]
        ty = "Ty::Enum(&[%s])" % ", ".join(rs_str(v) for v in a["values"]) if kind == "Enum" else "Ty::" + kind
        attrs.append("%s    Attr { name: %s, required: %s, ty: %s, expr: %s },"
                     % (pad, rs_str(a["name"]), str(a["required"]).lower(), ty, str(a["expr"]).lower()))
    if spec["any"] and spec["text"]:
        content = "Content::Any"
    elif spec["any"]:
        content = "Content::Policies"
    elif spec["children"]:
        kids = []
        for c, lo, hi in spec["children"]:
            kids.append("%s        Child { min: %d, max: %s, element: &%s },"
                        % (pad, lo, "None" if hi is None else "Some(%d)" % hi, render(c, indent + 8).lstrip()))
        content = "Content::Elements(&[\n%s\n%s    ])" % ("\n".join(kids), pad)
    elif spec["text"]:
        content = "Content::Text"
    else:
        content = "Content::Empty"
    mixed = "true" if spec["text"] and content.startswith("Content::Elements") else "false"
    return "%sElement {\n%s    name: %s,\n%s    attrs: &[\n%s\n%s    ],\n%s    content: %s,\n%s    mixed: %s,\n%s}" % (
        pad, pad, rs_str(spec["name"]), pad, "\n".join(attrs), pad, pad, content, pad, mixed, pad)


skip = {"policies"}  # the document root, not a policy
names = sorted(n for n in top_elements if n not in skip)
print("// @generated by tools/gen-policy-catalog.py from the APIM policy schemas;")
print("// owned here from now on. See the module docs in policy/catalog_types.rs.")
print()
print("use super::catalog_types::*;")
print()
print("/// Every policy element APIM's schemas define, by name.")
print("pub static POLICIES: &[Element] = &[")
for n in names:
    print(render(element_spec(top_elements[n]), 4) + ",")
print("];")
