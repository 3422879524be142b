"""A small YAML reader for Sigma rules and mamori mapping files.

Why: the Sigma test tooling (tools/sigma_events.py, the network-rule
integration test) must run with the Python standard library only, and the
rules use a narrow, regular part of YAML: block mappings and sequences,
plain / single- / double-quoted scalars, flow sequences on one line, block
scalars (| and >) and comments. Anything else raises ValueError rather
than being guessed at.
"""
import re

_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?[0-9]*\.[0-9]+$")


def _strip_comment(line):
    """The line without a trailing `# comment` (not inside quotes)."""
    q = None
    for i, ch in enumerate(line):
        if q:
            if ch == q:
                q = None
            elif ch == "\\" and q == '"':
                continue
        elif ch in "'\"" and (i == 0 or line[i - 1] in " \t:-[,{"):
            q = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def _scalar(text):
    t = text.strip()
    if t == "" or t in ("~", "null", "Null", "NULL"):
        return None
    if t[0] == "'":
        if not t.endswith("'") or len(t) < 2:
            raise ValueError(f"unterminated quote: {text!r}")
        return t[1:-1].replace("''", "'")
    if t[0] == '"':
        if not t.endswith('"') or len(t) < 2:
            raise ValueError(f"unterminated quote: {text!r}")
        return _dq(t[1:-1])
    if t[0] == "[":
        return [_scalar(x) for x in _split_flow(t)]
    if t in ("true", "True", "TRUE"):
        return True
    if t in ("false", "False", "FALSE"):
        return False
    if _INT.match(t) and not re.match(r"^[-+]?0[0-9]", t):
        return int(t)
    if _FLOAT.match(t):
        return float(t)
    return t


def _dq(s):
    out, i = [], 0
    esc = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", '"': '"', "\\": "\\", "/": "/", " ": " "}
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s):
            n = s[i + 1]
            if n in esc:
                out.append(esc[n])
                i += 2
                continue
            if n in "xuU":
                w = {"x": 2, "u": 4, "U": 8}[n]
                out.append(chr(int(s[i + 2:i + 2 + w], 16)))
                i += 2 + w
                continue
            raise ValueError(f"unknown escape \\{n}")
        out.append(ch)
        i += 1
    return "".join(out)


def _split_flow(t):
    if not t.endswith("]"):
        raise ValueError(f"multi-line flow sequence: {t!r}")
    body, items, cur, q = t[1:-1], [], [], None
    for ch in body:
        if q:
            cur.append(ch)
            if ch == q:
                q = None
        elif ch in "'\"":
            q = ch
            cur.append(ch)
        elif ch == ",":
            items.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        items.append("".join(cur))
    return items


def _split_key(s):
    """(key, rest) of `key: rest`, or None when s is no mapping entry."""
    if s[0] in "'\"":
        q = s[0]
        j = s.find(q, 1)
        while q == "'" and j + 1 < len(s) and s[j + 1] == "'":
            j = s.find(q, j + 2)
        if j < 0 or not s[j + 1:].startswith(":"):
            return None
        return _scalar(s[:j + 1]), s[j + 2:]
    m = re.match(r"^([^#'\"\[\]{}][^:]*?|[^:]*?):(?:\s+(.*)|)$", s)
    if not m:
        return None
    return m.group(1), m.group(2) or ""


class _Reader:
    def __init__(self, text):
        self.raw = text.split("\n")
        self.lines = []  # (indent, text, raw line index)
        for n, line in enumerate(self.raw):
            if "\t" in line[:len(line) - len(line.lstrip())]:
                raise ValueError(f"line {n + 1}: tab indentation")
            s = _strip_comment(line)
            if s.strip() in ("", "---"):
                continue
            self.lines.append((len(s) - len(s.lstrip()), s.strip(), n))
        self.i = 0

    def block(self, indent):
        if self.i >= len(self.lines):
            return None
        ind, text, _ = self.lines[self.i]
        if ind < indent:
            return None
        if text == "-" or text.startswith("- "):
            return self.seq(ind)
        return self.map(ind)

    def seq(self, ind):
        out = []
        while self.i < len(self.lines):
            i2, text, _ = self.lines[self.i]
            if i2 != ind or not (text == "-" or text.startswith("- ")):
                break
            rest = text[1:].strip()
            self.i += 1
            if rest == "":
                out.append(self.block(ind + 1))
            elif _split_key(rest) is not None:
                # "- key: value" opens a mapping whose other keys sit at
                # the column of "key".
                col = ind + (len(text) - len(rest))
                self.i -= 1
                self.lines[self.i] = (col, rest, self.lines[self.i][2])
                out.append(self.map(col))
            else:
                out.append(self.value(rest, ind))
        return out

    def map(self, ind):
        out = {}
        while self.i < len(self.lines):
            i2, text, n = self.lines[self.i]
            if i2 != ind or text.startswith("- ") or text == "-":
                break
            kv = _split_key(text)
            if kv is None:
                raise ValueError(f"line {n + 1}: expected `key: value`: {text!r}")
            k, rest = kv
            self.i += 1
            if rest.strip() == "":
                v = None
                if self.i < len(self.lines):
                    i3, t3, _ = self.lines[self.i]
                    if i3 > ind and not _is_entry(t3):
                        # a plain scalar starting on the next line
                        self.i += 1
                        v = self.value(t3, i3 - 1)
                    elif i3 > ind or (i3 == ind and (t3.startswith("- ") or t3 == "-")):
                        v = self.block(i3)
                out[k] = v
            else:
                out[k] = self.value(rest, ind)
        return out

    def value(self, rest, ind):
        rest = rest.strip()
        if rest[0] in "|>":
            return self.block_scalar(rest[0], ind)
        # A plain or quoted scalar continued on more-indented lines.
        parts = [rest]
        while self.i < len(self.lines) and self.lines[self.i][0] > ind and \
                not _is_entry(self.lines[self.i][1]):
            parts.append(self.lines[self.i][1])
            self.i += 1
        return _scalar(" ".join(parts))

    def block_scalar(self, style, ind):
        # Raw lines (comments kept) more indented than the key.
        start = self.lines[self.i - 1][2] + 1
        end = start
        body = []
        while end < len(self.raw):
            line = self.raw[end]
            if line.strip() and len(line) - len(line.lstrip()) <= ind:
                break
            body.append(line)
            end += 1
        while self.i < len(self.lines) and self.lines[self.i][2] < end:
            self.i += 1
        while body and not body[-1].strip():
            body.pop()
        if not body:
            return ""
        cut = min(len(b) - len(b.lstrip()) for b in body if b.strip())
        body = [b[cut:] for b in body]
        if style == "|":
            return "\n".join(body) + "\n"
        return " ".join(b.strip() for b in body if b.strip()) + "\n"


def _is_entry(text):
    return text.startswith("- ") or text == "-" or _split_key(text) is not None


def load(text):
    """The document in text as dicts, lists and scalars."""
    r = _Reader(text)
    v = r.block(0)
    if r.i != len(r.lines):
        ind, t, n = r.lines[r.i]
        raise ValueError(f"line {n + 1}: unexpected indentation: {t!r}")
    return v


def load_file(path):
    with open(path, encoding="utf-8") as f:
        return load(f.read())
