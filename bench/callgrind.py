"""callgrind - read a callgrind profile and cost functions the way bench/profile needs.

Standard library only. The profile must be written with --compress-strings=no and
--compress-pos=no (absolute positions; bench/profile passes both), with line numbers
(--dump-line=yes, the default) and without --dump-instr.

A profile is a list of records, one per cost line: the symbol it was measured in (object,
function), the source file and line the instructions came from (for code the compiler
inlined, the inlined function's own file and line), and either a self cost or a call to a
callee with the inclusive cost of those calls. The sum of every self cost is the profile's
total (callgrind's `totals:` line).

cost(name) is a function's inclusive cost: its symbol's self costs and calls, plus
what was executed at its source lines inside other symbols (when the compiler inlined it,
there is no symbol, only lines: `lines` maps a function name to its file and line range,
which bench/profile reads from src/). Helpers inlined into an inlined function stay with
the outer symbol.
"""

import collections
import fnmatch
import os
import re

# Compiler clones of one source function (foo.isra.0, foo.part.1, foo.cold) and
# callgrind's recursion levels (foo'2) are costed as that function.
_CLONE = re.compile(r"(\.(isra|part|constprop|cold|lto_priv|localalias)(\.\d+)?)+$")
_REC = re.compile(r"'\d+$")
_COMPRESSED = re.compile(r"^\(\d+\)( |$)")


def base_name(fn):
    return _CLONE.sub("", _REC.sub("", fn))


Record = collections.namedtuple("Record", "obj fn file line callee callee_obj calls cost")


class Profile:
    def __init__(self, path):
        self.path = path
        self.records = []
        self.totals = None
        self.meta = {}
        self._read(path)
        self.by_fn = collections.defaultdict(list)
        for i, r in enumerate(self.records):
            self.by_fn[r.fn].append(i)
        self.self_total = sum(r.cost for r in self.records if r.callee is None)

    def _read(self, path):
        ob = fl = fi = fn = None
        cob = cfn = None  # the callee of the next calls= line; its object defaults to ob
        calls = None
        with open(path, errors="replace") as f:
            for line in f:
                line = line.rstrip("\n")
                if not line:
                    continue
                c = line[0]
                if c.isdigit():
                    pos, _, cost = line.partition(" ")
                    cost = int(cost.split()[0]) if cost.strip() else 0
                    if calls is not None:
                        self.records.append(Record(ob, fn, fi or fl, int(pos), cfn, cob or ob,
                                                   calls, cost))
                        calls = cob = None
                    else:
                        self.records.append(Record(ob, fn, fi or fl, int(pos), None, None, 0, cost))
                    continue
                if c in "+-*":
                    raise ValueError(f"{path}: relative positions: run callgrind with --compress-pos=no")
                key, _, value = line.partition("=")
                if key in ("ob", "fl", "fi", "fe", "fn", "cob", "cfn") and _COMPRESSED.match(value):
                    raise ValueError(f"{path}: compressed names: run callgrind with "
                                     f"--compress-strings=no")
                if key == "ob":
                    ob = value
                elif key == "fl":
                    fl, fi = value, None
                elif key in ("fi", "fe"):
                    fi = None if value == fl else value
                elif key == "fn":
                    fn, fi = base_name(value), None
                elif key == "cob":
                    cob = value
                elif key == "cfn":
                    cfn = base_name(value)
                elif key == "calls":
                    calls = int(value.split()[0])
                elif key in ("cfi", "cfl", "jump", "jcnd"):
                    pass
                elif line.startswith("totals:"):
                    self.totals = int(line.split()[1])
                elif ":" in line:
                    k, _, v = line.partition(":")
                    self.meta.setdefault(k.strip(), []).append(v.strip())

    # ---- costs ----

    def _indices(self, name, lines):
        """Records of `name`: its symbols (glob; "fn@objglob" restricts the object), and
        its source lines anywhere (when `lines` knows it)."""
        fn, _, obj = name.partition("@")
        idx = set()
        for f in fnmatch.filter(self.by_fn, fn) if any(ch in fn for ch in "*?[") else [fn]:
            for i in self.by_fn.get(f, ()):
                if not obj or fnmatch.fnmatch(self.records[i].obj or "", obj):
                    idx.add(i)
        span = lines.get(fn) if lines else None
        if span is not None:
            file, first, last = span
            for i, r in enumerate(self.records):
                if r.file and r.file.endswith(file) and first <= r.line <= last:
                    idx.add(i)
        return idx

    def cost(self, name, lines=None):
        """Inclusive cost of a function (calls to itself are not counted twice)."""
        fn = name.partition("@")[0]
        return sum(self.records[i].cost for i in self._indices(name, lines)
                   if self.records[i].callee != fn or self.records[i].callee is None)

    def calls(self, name, lines=None):
        """How many times the function was called (from anywhere but itself)."""
        fn, _, obj = name.partition("@")
        return sum(r.calls for r in self.records if r.callee is not None and
                   fnmatch.fnmatch(r.callee, fn) and r.fn != r.callee and
                   (not obj or fnmatch.fnmatch(r.callee_obj or "", obj)))

    def edge(self, caller, callee, lines=None):
        """Inclusive cost of the calls `caller` (its symbols and its inlined lines)
        makes to `callee` (a glob)."""
        return sum(self.records[i].cost for i in self._indices(caller, lines)
                   if self.records[i].callee is not None and
                   fnmatch.fnmatch(self.records[i].callee, callee))

    def loop(self, obj, entries=("start_thread",)):
        """What a library's own threads cost, less the callbacks it makes into the program:
        the functions of `obj` (a glob on the object's path) that `entries` call (a thread's
        entry: start_thread), inclusive, minus every call into the program (the profiled
        command's object) made by a function of `obj` that the program does not call itself
        (the library's event loop dispatching to us, not its API answering our calls)."""
        program = self.program()

        def in_obj(o):
            return fnmatch.fnmatch(o or "", obj)

        called_by_program = {r.callee for r in self.records if r.callee is not None and
                             r.obj == program and in_obj(r.callee_obj)}
        roots = {r.callee for r in self.records if r.callee is not None and
                 in_obj(r.callee_obj) and r.fn in entries}
        total = sum(r.cost for r in self.records if r.fn in roots and in_obj(r.obj)
                    and r.callee != r.fn)
        callbacks = sum(r.cost for r in self.records if r.callee is not None and in_obj(r.obj)
                        and r.callee_obj == program and r.fn not in called_by_program)
        return total - callbacks

    def program(self):
        """The object file of the profiled command (its first word)."""
        cmd = (self.meta.get("cmd") or [""])[0].split()
        exe = cmd[0] if cmd else ""
        for r in self.records:
            if r.obj and exe and os.path.realpath(r.obj) == os.path.realpath(exe):
                return r.obj
        return exe

    def top_self(self, n):
        """The n functions with the largest self cost: [(cost, fn, obj)]."""
        acc = collections.Counter()
        for r in self.records:
            if r.callee is None:
                acc[(r.fn, os.path.basename(r.obj or "?"))] += r.cost
        return [(c, fn, obj) for (fn, obj), c in acc.most_common(n)]


_DEF = re.compile(r"^([A-Za-z_]\w*)\(")


def c_files(directory):
    """The C files under `directory` and its folders, as paths relative to it, sorted."""
    found = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in files:
            if name.endswith(".c"):
                found.append(os.path.relpath(os.path.join(root, name), directory))
    return sorted(found)


def source_functions(directory):
    """{function name: (path suffix "/src/dir/file.c", first line, last line)} for every
    function defined in the C files under `directory`, in the project's layout
    (clang-format): the name starts a line, the body ends at the next line holding only
    "}"."""
    out = {}
    for name in c_files(directory):
        path = os.path.join(directory, name)
        suffix = "/" + os.path.basename(directory.rstrip("/")) + "/" + name
        with open(path, errors="replace") as f:
            lines = f.read().split("\n")
        i = 0
        while i < len(lines):
            m = _DEF.match(lines[i])
            if m and not lines[i].rstrip().endswith(";"):
                j = i + 1
                while j < len(lines) and lines[j] != "}":
                    if _DEF.match(lines[j]):  # a prototype or macro, not a definition
                        break
                    j += 1
                if j < len(lines) and lines[j] == "}":
                    out.setdefault(m.group(1), (suffix, i + 1, j + 1))
                    i = j
            i += 1
    return out
