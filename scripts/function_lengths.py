#!/usr/bin/env python3
"""Lists the functions in C++ sources longer than a limit (default 80 lines).

    python3 scripts/function_lengths.py [--max N] DIR...     exit 1 if any is longer

A function is a brace block at namespace level (or a member function in a class) whose
opening line holds a parameter list; its length counts from its signature's first line to
the closing brace. Comments and string literals are skipped when braces are matched.
"""
import argparse
import pathlib
import re
import sys


def strip(text):
    """The source with comments, strings and character literals blanked (newlines kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith('R"', i):
            m = re.match(r'R"([^(]*)\(', text[i:])
            end = text.find(")" + m.group(1) + '"', i) + len(m.group(1)) + 2
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(" " * (j + 1 - i))
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


CONTROL = {"if", "for", "while", "switch", "catch", "return", "sizeof", "decltype"}


def function_name(head):
    """The name of the function whose body opens after `head`, or None (a block, a class, a lambda)."""
    h = head.rstrip()
    h = re.sub(r"->\s*[\w:<>,\s&*]+$", "", h).rstrip()  # trailing return type
    while True:
        m = re.search(r"\b(const|noexcept|override|final|mutable)$", h)
        if not m:
            break
        h = h[:m.start()].rstrip()
    if h.endswith(")") and ":" in h:  # a constructor's initializer list: back to its signature
        k = h.rfind(") :")
        if k > 0:
            h = h[:k + 1]
    if not h.endswith(")"):
        return None
    depth, k = 0, len(h) - 1
    while k >= 0:
        depth += {")": 1, "(": -1}.get(h[k], 0)
        if depth == 0:
            break
        k -= 1
    m = re.search(r"([~\w:]+)\s*$", h[:k])
    if not m or m.group(1) in CONTROL or h[:k].rstrip().endswith("]"):
        return None
    return m.group(1)


def functions(path):
    """(name, first line, length) of each function body in the file."""
    text = strip(path.read_text())
    lines = text.split("\n")
    result, depth, scopes = [], 0, []  # scopes: (kind, start line, name, depth)
    for ln, line in enumerate(lines, 1):
        for pos, c in enumerate(line):
            if c == "{":
                head = " ".join(lines[max(0, ln - 4):ln - 1] + [line[:pos]])[-400:]
                name = None if any(sc[0] == "fn" for sc in scopes) else function_name(head)
                if name:
                    start = ln
                    for back in range(ln, max(0, ln - 4), -1):  # the signature's first line
                        if name in lines[back - 1]:
                            start = back
                            break
                    scopes.append(("fn", start, name, depth))
                else:
                    scopes.append(("block", ln, "", depth))
                depth += 1
            elif c == "}":
                depth -= 1
                if scopes:
                    kind, start, name, _ = scopes.pop()
                    if kind == "fn":
                        result.append((name, start, ln - start + 1))
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max", type=int, default=80)
    ap.add_argument("dirs", nargs="+")
    args = ap.parse_args()
    long = []
    for d in args.dirs:
        for path in sorted(pathlib.Path(d).rglob("*")):
            if path.suffix in (".cpp", ".hpp", ".h", ".cc"):
                long += [(path, n, s, l) for n, s, l in functions(path) if l > args.max]
    for path, name, start, length in long:
        print(f"{path}:{start}: {name} is {length} lines (max {args.max})")
    print(f"{len(long)} functions longer than {args.max} lines")
    return 1 if long else 0


if __name__ == "__main__":
    sys.exit(main())
