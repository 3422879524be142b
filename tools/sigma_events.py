#!/usr/bin/env python3
"""Writes positive and negative test events for the network-side Sigma rules
(logsource category proxy, webserver, dns, firewall; product zeek,
fortigate, cisco; service apache, nginx) into tests/data/sigma-network/.

Why: the public regression data covers Windows only. For each rule this
reads the detection, picks the smallest set of selections that makes the
condition true, and builds an ECS-style JSON event whose fields (mapped
through rules/mappings/*.yml the way the engine maps them) satisfy them.
Cases written per rule:
  - the positive, then one positive per other value of each list and per
    other minimal way to satisfy the condition ("1 of", "or"), the positive
    in swapped case, with wildcards standing for text, with numbers as JSON
    strings, with keywords in event.original, and keyword-only web cases as
    syslog lines (program apache);
  - negatives on the same logsource: each filter of the rule triggered (by
    each value it lists), and near misses, one per field of a true
    selection: an exact value with a letter added, a startswith value not
    at the start, an endswith value not at the end, a contains value with
    its middle character changed, a number plus one, an address outside
    the range.
Values are padded where the rule does not anchor them, so an engine that
anchors a contains fails the positive. Every event is checked against the
small reference matcher here (Sigma semantics: case-insensitive, a list
field matches when an element does) before it is written; the integration
test (tests/integration/test_sigma_network.py) checks the real engine
against the written expectations. Values the generator cannot invent (|re)
come from OVERRIDES below. Rules listed in skipped.txt are left out.

Output: <group>.jsonl (and <group>.log for syslog lines) per logsource group
and cases.json, one {"file", "n" (record number from 1), "rule", "title",
"match", "note"} a line. Rerun after changing a mapping or updating the
corpus, and review what changed: the expectations are test data.

Standard library only. Usage:
  tools/sigma_events.py [--corpus DIR] [--out DIR]
"""
import argparse
import ipaddress
import itertools
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sigma_yaml  # noqa: E402

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS_DIRS = ("rules", "rules-emerging-threats", "rules-threat-hunting")

# Logsource -> output group and the event.module / dataset that makes
# src/detect/sigma_logsource.c derive that logsource.
CATEGORY_BASE = {
    "proxy": {"event": {"module": "squid"}},
    "webserver": {"event": {"module": "apache"}},
    "dns": {"event": {"module": "dns"}},
    "firewall": {"event": {"module": "firewall"}},
}

# Zeek log fields that are JSON arrays in Zeek's JSON output.
ZEEK_ARRAYS = {"answers", "resp_mime_types", "orig_mime_types", "client_header_names",
               "server_header_names", "TTLs", "resp_fuids", "orig_fuids", "tags"}

# Values for fields the generator cannot build (|re), by rule id and the
# detection key as written.
OVERRIDES = {
    "eb6c2004-1cef-427f-8885-9042974e5eb6": {
        "cs-uri|re": {"pos": "https://ipfs.io/ipfs/bafybeih4x/login.html#jane.doe@example.com"}},
    "0066d244-c277-4c3e-88ec-9e7b777cc8bc": {
        "c-uri|re": {"pos": "http://74.50.94.156/MSHTML_C7/zip_k.asp?d=99.99.99.99"}},
    "d9365e39-febd-4a4b-8441-3ca91bb9d333": {
        "c-uri|re": {"pos": "http://74.50.94.156/MSHTML_C7/zip_k.asp?d=99.99.99.99"}},
    "aee7681f-b53d-4594-a9de-ac51e6ad3362": {"cs-host|re": {"pos": "a" * 160 + ".example.org"}},
    "a4e068b5-e27c-4f21-85b3-e69e5a4f7ce1": {"cs-host|re": {"pos": "a" * 160 + ".example.org"}},
    "e0e121d0-be4d-4281-af7e-17abbba4a408": {
        "c-uri|re": {"pos": "https://login-abc.portal-s-account.workers.dev/oauth2/v2.0/devicecode"}},
}

BENIGN = "mamori-benign"


def network_group(ls):
    """The output group of a rule's logsource, or None if not network-side."""
    cat, prod = ls.get("category"), ls.get("product")
    if cat in CATEGORY_BASE:
        return cat
    if prod in ("zeek", "fortigate", "cisco", "huawei", "juniper", "fortios"):
        return prod
    if not prod and not cat and ls.get("service") in ("apache", "nginx"):
        return ls["service"]      # web server error logs
    return None


def rule_files(corpus):
    for d in CORPUS_DIRS:
        for root, dirs, files in os.walk(os.path.join(corpus, d)):
            dirs.sort()
            for f in sorted(files):
                if f.endswith((".yml", ".yaml")):
                    yield os.path.join(root, f)


def network_rules(corpus):
    """(path, rule dict, group) of every network-side rule in the corpus."""
    for p in rule_files(corpus):
        r = sigma_yaml.load_file(p)
        if not isinstance(r, dict) or "detection" not in r:
            continue
        g = network_group(r.get("logsource") or {})
        if g:
            yield p, r, g


# ---- field mapping (the same choice as sigma_map_field in sigma_load.c) ----

def load_mappings(src):
    maps = []
    d = os.path.join(src, "rules", "mappings")
    for f in sorted(os.listdir(d)):
        if f.endswith(".yml"):
            m = sigma_yaml.load_file(os.path.join(d, f))
            maps.append(m)
    return maps


def map_field(maps, ls, field):
    best, best_score = None, -1
    for m in maps:
        mls = m.get("logsource") or {}
        ok = all(not mls.get(k) or (ls.get(k) or "").lower() == str(mls[k]).lower()
                 for k in ("product", "category", "service"))
        if not ok:
            continue
        score = (1 if mls.get("product") else 0) + (2 if mls.get("category") else 0) + \
            (2 if mls.get("service") else 0)
        fields = m.get("fields") or {}
        listed = field in fields
        if not listed and not m.get("default"):
            continue
        if listed:
            score += 8
        if score >= best_score:
            best, best_score = m, score
    if not best:
        return field
    fields = best.get("fields") or {}
    if field in fields:
        return fields[field]
    return best["default"].replace("{field}", field)


# ---- Sigma values ----

STAR = [""]  # what `*` becomes in generated values (see generate)


def unescape(v):
    """A Sigma string value with wildcards resolved to one concrete string:
    `*` becomes STAR[0] (the empty string by default), `?` one character."""
    out, i = [], 0
    while i < len(v):
        ch = v[i]
        if ch == "\\" and i + 1 < len(v) and v[i + 1] in "*?\\":
            out.append(v[i + 1])
            i += 2
            continue
        if ch == "*":
            out.append(STAR[0])
        elif ch == "?":
            out.append("a")
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def value_regex(v, mods):
    """A Python regex for a Sigma string value with its modifiers."""
    if "re" in mods:
        # |re is case-sensitive unless the expression says (?i); |i, |m
        # and |s add the flags.
        flags = (re.I if "i" in mods else 0) | (re.M if "m" in mods else 0) | \
            (re.S if "s" in mods else 0)
        return re.compile(v, flags)
    parts, i = [], 0
    while i < len(v):
        ch = v[i]
        if ch == "\\" and i + 1 < len(v) and v[i + 1] in "*?\\":
            parts.append(re.escape(v[i + 1]))
            i += 2
            continue
        parts.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
        i += 1
    body = "".join(parts)
    pre = ".*" if ({"contains", "endswith"} & mods) else ""
    post = ".*" if ({"contains", "startswith"} & mods) else ""
    return re.compile("^" + pre + body + post + "$", re.S | (0 if "cased" in mods else re.I))


def split_key(key):
    parts = key.split("|")
    return parts[0], set(parts[1:])


def as_list(v):
    return v if isinstance(v, list) else [v]


def match_value(ev_val, pattern, mods):
    """Whether one event value (None when absent) matches one Sigma value."""
    if pattern is None:
        return ev_val is None or ev_val == ""
    if ev_val is None:
        return False
    if isinstance(ev_val, list):
        return any(match_value(x, pattern, mods) for x in ev_val)
    if "cidr" in mods:
        try:
            return ipaddress.ip_address(str(ev_val)) in ipaddress.ip_network(pattern, strict=False)
        except ValueError:
            return False
    if isinstance(pattern, bool):
        pattern = "true" if pattern else "false"
    if isinstance(pattern, (int, float)) and not mods:
        return str(ev_val) == str(pattern)
    rx = value_regex(str(pattern), mods)
    s = str(ev_val)
    return bool(rx.search(s)) if "re" in mods else bool(rx.match(s))


def all_values(ev):
    out = []
    for v in ev.values():
        if isinstance(v, dict):
            out.extend(all_values(v))
        elif isinstance(v, list):
            out.extend(str(x) for x in v)
        else:
            out.append(str(v))
    return out


class Rule:
    def __init__(self, path, doc, group, maps):
        self.path, self.doc, self.group, self.maps = path, doc, group, maps
        self.id = doc["id"]
        self.title = doc.get("title", "")
        self.ls = doc.get("logsource") or {}
        det = dict(doc["detection"])
        cond = det.pop("condition")
        det.pop("timeframe", None)
        if isinstance(cond, list):
            cond = " or ".join(f"({c})" for c in cond)
        self.cond = cond
        self.sels = det
        self.ast = parse_condition(cond, list(det))

    def field(self, name):
        return map_field(self.maps, self.ls, name)

    # reference matcher
    def sel_true(self, name, ev):
        s = self.sels[name]
        if isinstance(s, list) and s and not all(isinstance(x, dict) for x in s):
            return any(kw_match(ev, k) for k in s)
        if isinstance(s, (str, int)):
            return kw_match(ev, s)
        return any(self.map_true(m, ev) for m in as_list(s))

    def map_true(self, m, ev):
        for key, vals in m.items():
            fname, mods = split_key(key)
            if fname == "":
                ok = (all if "all" in mods else any)(
                    kw_match(ev, v, mods - {"all"}) for v in as_list(vals))
                if not ok:
                    return False
                continue
            ev_val = ev.get(self.field(fname))
            vals = as_list(vals)
            if "exists" in mods:
                if (ev_val is not None) != bool(vals[0]):
                    return False
                continue
            test = all if "all" in mods else any
            if not test(match_value(ev_val, v, mods - {"all"}) for v in vals):
                return False
        return True

    def matches_nested(self, ev):
        f = flatten(ev)
        return self.matches(f)

    def matches(self, ev):
        truth = {n: self.sel_true(n, ev) for n in self.sels}
        return eval_cond(self.ast, truth)


def kw_match(ev, kw, mods=frozenset()):
    mods = set(mods) | ({"contains"} if not ({"startswith", "endswith", "re"} & set(mods)) else set())
    return any(match_value(v, kw, mods) for v in all_values(ev))


# ---- conditions ----

TOKEN = re.compile(r"\s*(\(|\)|[A-Za-z0-9_*\-]+)")


def parse_condition(text, names):
    toks = TOKEN.findall(text)
    pos = [0]

    def peek():
        return toks[pos[0]].lower() if pos[0] < len(toks) else None

    def take():
        pos[0] += 1
        return toks[pos[0] - 1]

    def expand(pat):
        if pat == "them":
            return [n for n in names if not n.startswith("_")]
        rx = re.compile("^" + re.escape(pat).replace(r"\*", ".*") + "$")
        return [n for n in names if rx.match(n)]

    def primary():
        t = peek()
        if t == "(":
            take()
            e = orexpr()
            take()
            return e
        if t == "not":
            take()
            return ("not", primary())
        if t in ("1", "all", "any"):
            q = take().lower()
            if peek() == "of":
                take()
                ms = expand(take())
                return ("or" if q in ("1", "any") else "and", [("sel", m) for m in ms])
            raise ValueError(f"bad quantifier in {text!r}")
        return ("sel", take())

    def andexpr():
        e = [primary()]
        while peek() == "and":
            take()
            e.append(primary())
        return e[0] if len(e) == 1 else ("and", e)

    def orexpr():
        e = [andexpr()]
        while peek() == "or":
            take()
            e.append(andexpr())
        return e[0] if len(e) == 1 else ("or", e)

    e = orexpr()
    if pos[0] != len(toks):
        raise ValueError(f"cannot parse condition {text!r}")
    return e


def eval_cond(e, truth):
    if e[0] == "sel":
        return truth[e[1]]
    if e[0] == "not":
        return not eval_cond(e[1], truth)
    vals = [eval_cond(x, truth) for x in e[1]]
    return all(vals) if e[0] == "and" else any(vals)


def cond_names(e, out):
    if e[0] == "sel":
        out.append(e[1])
    elif e[0] == "not":
        cond_names(e[1], out)
    else:
        for x in e[1]:
            cond_names(x, out)
    return out


# ---- building events ----

class Unbuildable(Exception):
    pass


def build_string(cons):
    """One string that meets a list of (mods, value) constraints on a field."""
    exact = [v for m, v in cons if not ({"contains", "startswith", "endswith"} & m)]
    if exact:
        return exact[0]
    pre = "".join(v for m, v in cons if "startswith" in m)
    mid = "".join(v for m, v in cons if "contains" in m)
    suf = "".join(v for m, v in cons if "endswith" in m)
    # Pad what is not anchored, so that an engine anchoring contains or
    # endswith, or matching startswith exactly, fails the positive.
    lead = "a" if not pre and (mid or suf) else ""
    trail = "z" if not suf and (mid or pre) else ""
    return lead + pre + mid + suf + trail


def selection_constraints(rule, name, choice=0, pick=None):
    """{event field: [(mods, value)]} and keyword strings that make selection
    `name` true, using alternative `choice` where the selection offers some."""
    s = rule.sels[name]
    fields, kws = {}, []
    if isinstance(s, (str, int)) or (isinstance(s, list) and s and
                                     not all(isinstance(x, dict) for x in s)):
        lst = as_list(s)
        kws.append(unescape(str(lst[choice % len(lst)])))
        return fields, kws
    maps = as_list(s)
    m = maps[choice % len(maps)]
    for key, vals in m.items():
        fname, mods = split_key(key)
        over = OVERRIDES.get(rule.id, {}).get(key)
        vals = as_list(vals)
        if fname == "":
            pick = vals if "all" in mods else [vals[0]]
            kws.extend(unescape(str(v)) for v in pick)
            continue
        ef = rule.field(fname)
        if over is not None:
            fields.setdefault(ef, []).append(({"_re"}, over["pos"]))
            continue
        if "re" in mods:
            raise Unbuildable(f"{key}: |re value needs an override")
        if "exists" in mods:
            if vals[0]:
                fields.setdefault(ef, []).append((set(), "x"))
            else:
                fields.setdefault(ef, []).append((set(), None))
            continue
        sel = vals if "all" in mods else [vals[(pick or {}).get(key, 0) % len(vals)]]
        for v in sel:
            if v is None:
                fields.setdefault(ef, []).append((set(), None))
            elif "cidr" in mods:
                net = ipaddress.ip_network(v, strict=False)
                host = net.network_address + (1 if net.num_addresses > 1 else 0)
                fields.setdefault(ef, []).append(({"_cidr"}, str(host)))
            elif isinstance(v, (int, float)) and not isinstance(v, bool) and not mods - {"all"}:
                fields.setdefault(ef, []).append((set(), v))
            else:
                sv = "true" if v is True else "false" if v is False else str(v)
                fields.setdefault(ef, []).append((mods - {"all", "cased"}, unescape(sv)))
    return fields, kws


def mutate(mods, v):
    """A near miss of one constraint value: what an engine that anchors,
    compares or reads the value wrongly would still match."""
    if v is None:
        return set(), "x"
    if isinstance(v, bool):
        return mods, not v
    if isinstance(v, (int, float)):
        return mods, v + 1
    if "_cidr" in mods:
        return mods, "198.51.100.7"
    if "_re" in mods:
        return mods, BENIGN
    if "startswith" in mods:
        return mods, "x" + v
    if "endswith" in mods:
        return mods, v + "x"
    if "contains" in mods:
        if not v:
            return mods, v
        i = len(v) // 2
        ch = v[i]
        if ch.isalpha():
            rep = "q" if ch.lower() != "q" else "z"
        elif ch.isdigit():
            rep = "7" if ch != "7" else "3"
        else:
            rep = "Q"
        return mods, v[:i] + rep + v[i + 1:]
    return mods, (v + "s") if v else "x"


def swapcase(mods, v):
    if isinstance(v, str) and not ({"_re", "_cidr", "cased"} & mods):
        return mods, v.swapcase()
    return mods, v


def make_event(rule, true_sels, choices=None, fill=False, alter=None):
    base = {}
    if rule.group in CATEGORY_BASE:
        base = json.loads(json.dumps(CATEGORY_BASE[rule.group]))
    elif rule.group == "cisco" and rule.ls.get("service") == "syslog":
        # product cisco, and a syslog program name adds service syslog.
        base = {"event": {"module": "cisco"}, "log": {"syslog": {"appname": "IOSXE"}}}
    elif rule.group == "zeek":
        base = {"event": {"module": "zeek", "dataset": "zeek." + rule.ls.get("service", "")}}
    else:
        base = {"event": {"module": rule.group}}
    cons, kws = {}, []
    for n in true_sels:
        f, k = selection_constraints(rule, n, *(choices or {}).get(n, (0, None)))
        if alter:
            f, k = alter(n, f, k)
        for ef, c in f.items():
            cons.setdefault(ef, []).extend(c)
        kws.extend(k)
    ev = dict(base)
    for ef, c in cons.items():
        if any(v is None for _, v in c):
            continue
        nums = [v for _, v in c if isinstance(v, (int, float, bool))]
        if nums and len(c) == 1:
            v = nums[0]
        else:
            v = build_string([(m, str(v)) for m, v in c])
        if rule.group == "zeek":
            if ef in ZEEK_ARRAYS:
                # Zeek writes these as arrays; the value is not the first.
                v = ["192.0.2.53" if ef == "answers" else "text/plain", v]
            elif v in ("true", "false"):
                v = v == "true"
        ev[ef] = v
    if kws:
        ev["message"] = message_for(rule, " ".join(kws))
    if fill:
        # Fields the false selections look at get an unrelated value, as
        # they would in a real log (and `field: null` filters stay false).
        for n in rule.sels:
            if n in true_sels:
                continue
            try:
                f, _ = selection_constraints(rule, n)
            except Unbuildable:
                continue
            for ef, c in f.items():
                if ef not in ev and ef not in cons:
                    v = c[0][1]
                    filler = benign_for(v if v is not None else "x")
                    if any("cidr" in str(k) for k in _keys_for(rule, n, ef)):
                        filler = "198.51.100.7"
                    if rule.group == "zeek" and ef in ZEEK_ARRAYS:
                        filler = [filler]
                    elif rule.group == "zeek" and filler in ("true", "false"):
                        filler = filler == "true"
                    ev[ef] = filler
    return ev


def _keys_for(rule, name, ef):
    out = []
    for m in as_list(rule.sels[name]):
        if isinstance(m, dict):
            out.extend(k for k in m if rule.field(split_key(k)[0]) == ef)
    return out


def message_for(rule, text):
    """A raw log line carrying keyword text, shaped like the logsource's."""
    if rule.group == "nginx":
        return f"2026/11/25 10:00:00 [alert] 4242#4242: worker process 4243 {text}"
    if rule.group == "apache":
        return f"[Wed Nov 25 10:00:00.000000 2026] [core:notice] [pid 4242] AH00052: child pid 4243 {text}"
    if rule.group == "webserver":
        return f'203.0.113.7 - - [25/Nov/2026:10:00:00 +0000] "GET /{text} HTTP/1.1" 200 512 "-" "Mozilla/5.0"'
    if rule.group == "proxy":
        return f"1764064800.000 120 203.0.113.7 TCP_MISS/200 512 GET http://example.org/{text} - HIER_DIRECT/192.0.2.1 text/html"
    return text


def truth_assignments(rule):
    names = list(dict.fromkeys(cond_names(rule.ast, [])))
    if len(names) > 14:
        raise Unbuildable("too many selections")
    for k in range(len(names) + 1):
        for on in itertools.combinations(names, k):
            t = {n: (n in on) for n in rule.sels}
            if eval_cond(rule.ast, t):
                yield list(on), names


def benign_for(v):
    if isinstance(v, list):
        return [benign_for(v[0])] if v else v
    if isinstance(v, bool):
        return not v
    if v in ("true", "false"):
        return "true" if v == "false" else "false"
    if isinstance(v, int):
        return 299 if v != 299 else 298
    try:
        ipaddress.ip_address(str(v))
        return "198.51.100.99"
    except ValueError:
        pass
    return BENIGN


def nest(ev):
    """ev with "a.b": v keys written as {"a": {"b": v}}."""
    out = {}
    for k, v in ev.items():
        parts = k.split(".")
        d = out
        for p in parts[:-1]:
            d = d.setdefault(p, {})
            if not isinstance(d, dict):
                return ev
        if isinstance(v, dict):
            d.setdefault(parts[-1], {}).update(v)
        else:
            d[parts[-1]] = v
    return out


def flatten(ev, prefix=""):
    out = {}
    for k, v in ev.items():
        if isinstance(v, dict):
            out.update(flatten(v, prefix + k + "."))
        else:
            out[prefix + k] = v
    return out


def list_variants(rule, n):
    """((choice, pick), note) for every other alternative and list value of
    selection n."""
    sel = rule.sels[n]
    out = []
    if isinstance(sel, list):
        out += [((i, None), f"alternative {i + 1} of {n}") for i in range(1, len(sel))]
    if isinstance(sel, dict):
        for key, vals in sel.items():
            if isinstance(vals, list) and "|all" not in key:
                out += [((0, {key: i}), f"value {i + 1} of {n}.{key}")
                        for i in range(1, len(vals))]
    return out


def generate(rule):
    """[(event, must match, note)] for a rule, or raises Unbuildable: a
    positive, the positive in swapped case (Sigma compares without case),
    the positive with a filter triggered, and a near miss."""
    pos = None
    for on, names in truth_assignments(rule):
        for fill in (True, False):
            ev = make_event(rule, on, fill=fill)
            if rule.matches(ev):
                pos, pos_on, pos_fill = ev, on, fill
                break
        if pos is not None:
            break
    if pos is None:
        raise Unbuildable("no event satisfying the condition could be built")
    out = [(pos, True, "positive")]
    uses_re = any("|re" in k or "|cased" in k for m in rule.sels.values()
                  for d in as_list(m) if isinstance(d, dict) for k in d)

    def swap_all(n, f, k):
        return ({ef: [swapcase(m, v) for m, v in c] for ef, c in f.items()},
                [v.swapcase() for v in k])

    # Every other value of the lists in the true selections, and every
    # other minimal way to satisfy the condition ("1 of", "or").
    seen = [pos]
    for n in pos_on:
        for ch, note in list_variants(rule, n):
            try:
                ev = make_event(rule, pos_on, choices={n: ch}, fill=pos_fill)
            except Unbuildable:
                continue
            if ev not in seen and rule.matches(ev):
                seen.append(ev)
                out.append((ev, True, "positive, " + note))
    k = len(pos_on)
    for on, _ in truth_assignments(rule):
        if len(on) > k or len(seen) > 4000:
            break
        if on == pos_on:
            continue
        try:
            ev = make_event(rule, on, fill=pos_fill)
        except Unbuildable:
            continue
        if ev not in seen and rule.matches(ev):
            seen.append(ev)
            out.append((ev, True, "positive, selections " + " ".join(on)))
    if not uses_re:
        ev = make_event(rule, pos_on, fill=pos_fill, alter=swap_all)
        if ev != pos and rule.matches(ev):
            out.append((ev, True, "positive, values in swapped case"))
    # Wildcards standing for more than nothing.
    STAR[0] = "W1-x/"
    try:
        ev = make_event(rule, pos_on, fill=pos_fill)
    finally:
        STAR[0] = ""
    if ev != pos and rule.matches(ev):
        out.append((ev, True, "positive, wildcards as text"))
    # Numbers as JSON strings, as some shippers write them.
    ev = {k: (str(v) if isinstance(v, int) and not isinstance(v, bool) else v)
          for k, v in pos.items()}
    if ev != pos and rule.matches(ev):
        out.append((ev, True, "positive, numbers as strings"))
    # The positive with a filter triggered as well.
    names = list(dict.fromkeys(cond_names(rule.ast, [])))
    for n in names:
        if n in pos_on:
            continue
        try:
            ev = make_event(rule, pos_on + [n], fill=pos_fill)
        except Unbuildable:
            continue
        if not rule.matches(ev) and base_selections_hold(rule, pos_on, ev):
            out.append((ev, False, f"filter {n} triggered"))
            # and by each other value the filter lists
            for ch, note in list_variants(rule, n):
                try:
                    ev = make_event(rule, pos_on + [n], choices={n: ch}, fill=pos_fill)
                except Unbuildable:
                    continue
                if not rule.matches(ev) and base_selections_hold(rule, pos_on, ev):
                    out.append((ev, False, f"filter {n} triggered, {note}"))
    # Dotted names as nested objects, as most shippers write them.
    ev = nest(pos)
    if ev != pos and rule.matches_nested(ev):
        out.append((ev, True, "positive, nested objects"))
    # Keywords in event.original (the raw line a shipper keeps), which the
    # engine then searches instead of every field.
    if "message" in pos:
        ev = dict(pos)
        ev["event.original"] = ev.pop("message")
        if rule.matches(ev):
            out.append((ev, True, "positive, keywords in event.original"))
    # Near misses: one value of a true selection mutated, for each field.
    near = 0
    for n in pos_on:
        f, kws = selection_constraints(rule, n)
        for ef in list(f) + (["<keywords>"] if kws else []):
            def alter(sel, f2, k2, n=n, ef=ef):
                if sel != n:
                    return f2, k2
                if ef == "<keywords>":
                    return f2, [mutate({"contains"}, k)[1] for k in k2]
                f2 = dict(f2)
                f2[ef] = [mutate(m, v) for m, v in f2[ef]]
                return f2, k2
            ev = make_event(rule, pos_on, fill=pos_fill, alter=alter)
            if ev != pos and not rule.matches(ev):
                out.append((ev, False, f"near miss: {n} {ef} altered"))
                near += 1
                if near >= 6:
                    return out
    if near:
        return out
    # Else one field of a true selection replaced.
    for n in pos_on:
        f, kws = selection_constraints(rule, n)
        for ef in list(f) + (["message"] if kws else []):
            ev = json.loads(json.dumps(pos))
            if ef == "message":
                ev["message"] = message_for(rule, "index.html")
            elif ef in ev:
                ev[ef] = benign_for(ev[ef])
            else:
                continue
            if not rule.matches(ev):
                out.append((ev, False, f"{n}: {ef} replaced"))
                return out
    if len([o for o in out if not o[1]]) == 0:
        raise Unbuildable("no negative found")
    return out


SYSLOG_APP = {"webserver": "apache", "proxy": "squid", "apache": "apache", "nginx": "nginx"}


def syslog_variants(rule, evs):
    """The keyword-only cases of web server and proxy rules again as syslog
    lines (the raw access-log line, program apache / squid), the other way
    such logs reach mamori."""
    app = SYSLOG_APP.get(rule.group)
    out = []
    if not app:
        return out
    for ev, want, note in evs:
        if set(ev) != {"event", "message"}:
            continue
        line = f"<134>Nov 25 10:00:00 web1 {app}: {ev['message']}"
        if rule.matches({"event": ev["event"], "message": line}) == want:
            out.append((line, want, note + " (syslog)"))
    return out


def base_selections_hold(rule, on, ev):
    return all(rule.sel_true(n, ev) for n in on)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=os.environ.get(
        "MAMORI_CONFORMANCE_DIR", os.path.join(SRC, "..", "shared")))
    ap.add_argument("--out", default=os.path.join(SRC, "tests", "data", "sigma-network"))
    args = ap.parse_args()
    corpus = os.path.join(args.corpus, "sigma")
    maps = load_mappings(SRC)
    skipped = read_skipped(os.path.join(args.out, "skipped.txt"))
    files, cases, problems = {}, [], []
    for path, doc, group in network_rules(corpus):
        if doc["id"] in skipped:
            continue
        rule = Rule(path, doc, group, maps)
        try:
            evs = generate(rule)
        except (Unbuildable, ValueError, KeyError) as e:
            problems.append(f"{rule.id} {os.path.relpath(path, corpus)}: {e}")
            continue
        for ev, want, note in evs + syslog_variants(rule, evs):
            name = group + (".log" if isinstance(ev, str) else ".jsonl")
            lines = files.setdefault(name, [])
            lines.append(ev if isinstance(ev, str) else json.dumps(ev, ensure_ascii=False))
            cases.append({"file": name, "n": len(lines), "rule": rule.id,
                          "title": rule.title, "match": want, "note": note})
    os.makedirs(args.out, exist_ok=True)
    for name, lines in files.items():
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    with open(os.path.join(args.out, "cases.json"), "w", encoding="utf-8") as f:
        f.write("[\n" + ",\n".join(json.dumps(c, ensure_ascii=False) for c in cases) + "\n]\n")
    print(f"{len({c['rule'] for c in cases})} rules with {len(cases)} cases, {len(problems)} not built, {len(skipped)} skipped")
    for p in problems:
        print("  not built:", p)
    return 1 if problems else 0


def read_skipped(path):
    out = {}
    if os.path.exists(path):
        for line in open(path, encoding="utf-8"):
            line = line.strip()
            if line and not line.startswith("#"):
                rid, _, why = line.partition(" ")
                out[rid] = why.strip()
    return out


if __name__ == "__main__":
    sys.exit(main())
