#!/usr/bin/env python3
"""Generates visioncore/_decls.py (ctypes signatures and constants) from include/visioncore.h.

  gen_decls.py           rewrite bindings/python/visioncore/_decls.py
  gen_decls.py --check   fail if the committed file differs from a fresh generation
"""
import pathlib, re, sys

HERE = pathlib.Path(__file__).resolve().parent
HEADER = HERE.parents[2] / "include" / "visioncore.h"
OUT = HERE.parent / "visioncore" / "_decls.py"

SCALARS = {"int32_t": "c_int32", "int64_t": "c_int64", "uint64_t": "c_uint64", "uint8_t": "c_uint8", "int": "c_int",
           "float": "c_float", "double": "c_double", "ptrdiff_t": "c_ssize_t", "size_t": "c_size_t", "bool": "c_bool",
           "char": "c_char", "void": "None"}


def ctypes_of(t: str) -> str:
    t = " ".join(t.replace("*", " * ").split())
    base = t.replace("const ", "")
    stars = base.count("*")
    name = base.replace("*", "").strip()
    if stars == 0:
        return SCALARS[name]
    if name == "char" and stars == 1:
        return "c_char_p"
    opaque = name == "void" or name.startswith("vc_")
    if opaque and stars == 1:
        return "c_void_p"
    if name == "char" and stars == 2:
        return "POINTER(c_char_p)"
    inner = "c_void_p" if opaque else SCALARS[name]
    return f"POINTER({inner})" if stars - opaque == 1 else f"POINTER(POINTER({inner}))"


def generate() -> str:
    text = HEADER.read_text()
    body = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    consts = re.findall(r"^\s+(VC_[A-Z0-9_]+) = (-?\d+),$", body, re.M)
    funcs = re.findall(r"^([\w ]+?\**)\s*\b(vc_\w+)\(([^)]*)\);", body, re.M)
    lines = ['"""ctypes declarations generated from include/visioncore.h by tools/gen_decls.py - do not edit."""',
             "from ctypes import POINTER, c_bool, c_char, c_char_p, c_double, c_float, c_int, c_int32, c_int64, c_size_t, "
             "c_ssize_t, c_uint8, c_uint64, c_void_p  # noqa: F401", ""]
    lines += [f"{n} = {v}" for n, v in consts]
    lines += ["", "FUNCTIONS = {"]
    for ret, name, params in funcs:
        args = []
        for p in filter(None, (x.strip() for x in params.split(","))):
            if p == "void":
                continue
            m = re.fullmatch(r"(.+?)\s*(\w+)", p)
            args.append(ctypes_of(m.group(1)))
        lines.append(f"    {name!r}: ({ctypes_of(ret)}, [{', '.join(args)}]),")
    lines.append("}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    text = generate()
    if "--check" in sys.argv:
        if not OUT.exists() or OUT.read_text() != text:
            sys.exit("bindings/python/visioncore/_decls.py is stale: run bindings/python/tools/gen_decls.py")
        print("python declarations: up to date")
    else:
        OUT.write_text(text)
        print(f"wrote {OUT}")
