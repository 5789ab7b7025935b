"""Mutant generation for tools/mutate.py (python3 stdlib only): standard mutation operators
applied line by line to C++ sources, outside comments, string and character literals,
preprocessor lines, code compiled only for CUDA, and the message arguments of errors.

Operators (one mutant = one edit on one line; the line count never changes):
  rel     relational swap:  < -> <=   <= -> <   > -> >=   >= -> >   == -> !=   != -> ==
          only with a space on both sides (` < `), so template brackets, <<, >>, -> and <=> are
          never taken for comparisons
  arith   binary + <-> -  and  * <-> /  (spaced, so unary minus and T* p are left alone),
          += <-> -=,  *= <-> /=,  ++ <-> --
  const   integer literal n -> n + 1 and n - 1 (0 -> 1 only; hex kept hex, octal skipped);
          floating literal x -> x + 1 and x - 1 (0.5 -> 1.5 and (-0.5); suffixes kept; a
          negative result is parenthesized); never a digit inside an identifier (int64_t, f32)
  negate  if (c) -> if (!(c)) and while (c) -> while (!(c)) (condition closed on its line);
          a unary ! removed (!x -> x)
  logic   && <-> || (spaced)
  drop    a one-line expression statement (call, assignment, ++i, continue;, a bare return;)
          that begins a statement and ends with ; replaced by {} (not declarations, other
          returns, break, throw, control statements: they mostly cannot compile when dropped)
  swap    two adjacent arguments of a call whose (...) closes on the same line, when both are
          simple expressions (no parameter declarations, no template <>, no string literals);
          not for commutative callees (min, max, add, mul, ...) nor for PRM_CHECK
Message text: a mutant whose edit lies wholly inside the message arguments of PRM_CHECK(cond, ...)
or of `throw X(...)` is not generated (it could only change the error text).
CUDA-only code: lines in the true branch of #if PRM_USE_CUDA / PRM_USE_CUDNN / PRM_USE_NCCL /
defined(__CUDACC__) (or the #else of their negation, or #if 0) are skipped: the CPU-only build
that judges the mutants never compiles them.
"""
import hashlib
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Set, Tuple

OPS = ["rel", "arith", "const", "negate", "logic", "drop", "swap"]


@dataclass(frozen=True)
class Mutant:
    path: str
    line: int  # 1-based
    op: str
    original: str  # the whole line, as it is
    mutated: str  # the whole line with the edit

    @property
    def id(self) -> str:
        key = "\0".join([self.path, str(self.line), self.op, self.original, self.mutated])
        return hashlib.sha1(key.encode()).hexdigest()[:10]


# ---- masking: comments blanked, literal insides replaced, same length and lines ----

def mask(text: str) -> str:
    """`text` with comments turned into spaces and the insides of "..." '...' R"d(...)d"
    literals into '_' (quotes kept, newlines kept), so that offsets and lines are unchanged."""
    out = list(text)
    n, i = len(text), 0

    def blank(a: int, b: int, ch: str) -> None:
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = ch

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j, " ")
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            blank(i, j, " ")
            i = j
        elif c in "\"'":
            w = i  # the identifier or number just before the quote: prefix or digit separator
            while w > 0 and (text[w - 1].isalnum() or text[w - 1] == "_"):
                w -= 1
            word = text[w:i]
            if c == "'" and word[:1].isdigit():  # 1'000'000
                i += 1
                continue
            if c == '"' and word in ("R", "uR", "UR", "LR", "u8R"):
                paren = text.find("(", i)
                closing = ")" + text[i + 1:paren] + '"'
                end = text.find(closing, paren)
                quote = n - 1 if end < 0 else end + len(closing) - 1
                blank(i + 1, quote, "_")
                i = quote + 1
                continue
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            blank(i + 1, min(j, n), "_")
            i = j + 1
        else:
            i += 1
    return "".join(out)


# ---- which lines count: no preprocessor lines, no CUDA-only code ----

CPU_FALSE = {"PRM_USE_CUDA", "PRM_USE_CUDNN", "PRM_USE_NCCL", "defined(__CUDACC__)",
             "defined __CUDACC__", "0"}


def _known(cond: str) -> Optional[bool]:
    """The value of an #if condition in the CPU-only build, or None when unknown."""
    cond = re.sub(r"\s+", " ", cond.strip())
    negated = cond.startswith("!")
    name = cond.lstrip("! ").strip()
    if name.startswith("(") and name.endswith(")"):
        name = name[1:-1].strip()
    if name == "1":
        return not negated
    if name in CPU_FALSE:
        return negated
    return None


def skipped_lines(masked_lines: List[str]) -> Set[int]:
    """0-based indices of preprocessor lines (with their \\ continuations) and of lines that
    the CPU-only build never compiles (see CPU_FALSE)."""
    skip: Set[int] = set()
    stack: List[Optional[bool]] = []  # the value of each open #if's current branch
    k = 0
    while k < len(masked_lines):
        line = masked_lines[k].strip()
        if line.startswith("#"):
            start = k
            while masked_lines[k].rstrip().endswith("\\") and k + 1 < len(masked_lines):
                k += 1
            skip.update(range(start, k + 1))
            m = re.match(r"#\s*(\w+)\s*(.*)", line)
            kw, rest = (m.group(1), m.group(2)) if m else ("", "")
            if kw in ("if", "ifdef", "ifndef"):
                value = _known(rest) if kw == "if" else \
                    _known(("!" if kw == "ifndef" else "") + f"defined({rest.strip()})")
                stack.append(value)
            elif kw == "elif" and stack:
                stack[-1] = False if stack[-1] is True else _known(rest)
            elif kw == "else" and stack:
                stack[-1] = None if stack[-1] is None else not stack[-1]
            elif kw == "endif" and stack:
                stack.pop()
        elif False in stack:
            skip.add(k)
        k += 1
    return skip


def matching(m: str, i: int) -> int:
    """Index of the parenthesis closing the one at m[i], or -1 (m is masked text)."""
    depth = 0
    for j in range(i, len(m)):
        if m[j] == "(":
            depth += 1
        elif m[j] == ")":
            depth -= 1
            if depth == 0:
                return j
    return -1


def message_regions(m: str) -> List[Tuple[int, int]]:
    """Offsets [a, b) of error-message arguments: PRM_CHECK(cond, <here>), throw X(<here>)."""
    regions = []
    for mo in re.finditer(r"\bPRM_CHECK\s*\(|\bthrow\s+[\w:]+\s*\(", m):
        open_ = mo.end() - 1
        close = matching(m, open_)
        if close < 0:
            continue
        start = open_ + 1
        if mo.group().startswith("PRM_CHECK"):
            comma = top_level_commas(m, open_ + 1, close)
            if not comma:
                continue
            start = comma[0] + 1
        regions.append((start, close))
    return regions


def arguments(m: str, open_: int, close: int) -> List[Tuple[int, int]]:
    """Offsets [a, b) of the top-level arguments between the parentheses at open_ and close."""
    bounds = [open_] + top_level_commas(m, open_ + 1, close) + [close]
    return [(bounds[k] + 1, bounds[k + 1]) for k in range(len(bounds) - 1)]


def top_level_commas(m: str, a: int, b: int) -> List[int]:
    """Offsets of the commas in m[a:b] outside (), [] and {}."""
    depth, commas = 0, []
    for j in range(a, b):
        ch = m[j]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            commas.append(j)
    return commas


# ---- the operators: each gives edits (start, end, replacement) of the line, found in its masked
# form m (same offsets) ----

Edit = Tuple[int, int, str]

REL = {"<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "=="}
ARITH = {"+": "-", "-": "+", "*": "/", "/": "*"}
NUMBER = re.compile(r"(?<![\w.'])((?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|"
                    r"0[xX][0-9a-fA-F]+|\d+)([uUlLfF]*)(?![\w.'])")
NOT_CALLEES = {"if", "for", "while", "switch", "return", "sizeof", "catch", "decltype", "alignof",
               "alignas", "static_assert", "noexcept", "PRM_CHECK", "defined", "operator"}
COMMUTATIVE = {"min", "max", "fmin", "fmax", "hypot", "swap", "add", "mul", "gcd", "lcm"}


def op_rel(line: str, m: str) -> List[Edit]:
    return [(mo.start(), mo.end(), REL[mo.group()])
            for mo in re.finditer(r"(?<=\s)(<=|>=|==|!=|<|>)(?=\s|$)", m)]


def op_arith(line: str, m: str) -> List[Edit]:
    edits = [(mo.start(), mo.end(), ARITH[mo.group()])
             for mo in re.finditer(r"(?<=\s)[-+*/](?=\s|$)", m)]
    edits += [(mo.start(), mo.start() + 1, ARITH[mo.group(1)])
              for mo in re.finditer(r"(?<![-+*/%<>=!&|^])([-+*/])=(?!=)", m)]
    edits += [(mo.start(), mo.end(), "--" if mo.group() == "++" else "++")
              for mo in re.finditer(r"(?<![-+])(\+\+|--)(?![-+=])", m)]
    return edits


def _number_variants(lit: str) -> List[str]:
    if lit.lower().startswith("0x"):
        v = int(lit, 16)
        upper = any(ch.isupper() for ch in lit[2:])
        fmt = (lambda x: lit[:2] + (f"{x:X}" if upper else f"{x:x}"))
        return [fmt(v + 1)] + ([fmt(v - 1)] if v > 0 else [])
    if re.fullmatch(r"\d+", lit):
        if len(lit) > 1 and lit.startswith("0"):
            return []  # octal: left alone
        v = int(lit)
        return [str(v + 1)] + ([str(v - 1)] if v > 0 else [])
    v = float(lit)
    out = []
    for x in (v + 1, v - 1):
        s = repr(x)
        if x == v or "inf" in s or "nan" in s:
            continue
        out.append(f"({s}" if x < 0 else s)
    return out


def op_const(line: str, m: str) -> List[Edit]:
    edits = []
    for mo in NUMBER.finditer(m):
        lit, suffix = mo.group(1), mo.group(2)
        if lit == "0" and re.search(r"\)[\w\s]*=\s*$", m[:mo.start()]):
            continue  # the pure specifier: virtual int f() = 0;
        for new in _number_variants(lit):
            closing = ")" if new.startswith("(") else ""
            edits.append((mo.start(), mo.end(), new + suffix + closing))
    return edits


def op_negate(line: str, m: str) -> List[Edit]:
    edits = []
    for mo in re.finditer(r"\b(?:if|while)\s*\(", m):
        open_ = mo.end() - 1
        close = matching(m, open_)
        if close > open_ + 1:
            edits.append((open_ + 1, close, "!(" + line[open_ + 1:close] + ")"))
    edits += [(mo.start(), mo.end(), "") for mo in re.finditer(r"!(?!=)", m)]
    return edits


def op_logic(line: str, m: str) -> List[Edit]:
    return [(mo.start(), mo.end(), "||" if mo.group() == "&&" else "&&")
            for mo in re.finditer(r"(?<=\s)(&&|\|\|)(?=\s|$)", m)]


# Two words side by side (int n, T& x, const Foo& f, std::vector<int> v, auto [a, b]), but not
# a binary * or & between spaces (a * b, x && y): the code binds * and & to the type (T* p).
DECLARATION = re.compile(r"[\w>\]][*&]*\s+[*&]*[\w\[]")
KEYWORDS = re.compile(r"(if|for|while|do|switch|else|case|default|return|break|goto|throw|"
                      r"delete|using|typedef|namespace|template|static_assert|friend|class|"
                      r"struct|enum|public|private|protected)\b")


def op_drop(line: str, m: str, prev: str) -> List[Edit]:
    code = m.strip()
    start = len(m) - len(m.lstrip())
    if not code.endswith(";") or not (prev == "" or prev.endswith((";", "{", "}", ")")) or
                                      (prev.endswith(":") and not prev.endswith("::")) or
                                      prev == "else" or prev.endswith(" else")):
        return []
    for a, b in ("()", "[]", "{}"):
        if code.count(a) != code.count(b):
            return []
    if code in ("return;", "continue;"):
        return [(start, start + len(code), "{}")]
    if KEYWORDS.match(code) or code.startswith(("[", "}", "{", ":", "~")) or \
            re.search(r"=\s*(default|delete|0)\s*;$", code):
        return []  # control statements, lambdas, destructors, defaulted or pure members
    head = re.split(r"(?<![=!<>])=(?!=)|[({;]", code, maxsplit=1)[0]
    if DECLARATION.search(head.strip()):
        return []  # int n = 0; Tensor t(x); std::vector<int> v;
    paren = m.find("(")
    close = matching(m, paren) if paren >= 0 else -1
    if close > 0 and any(DECLARATION.search(m[a:b]) for a, b in arguments(m, paren, close)):
        return []  # a constructor's or function's declaration: Foo(const Foo& other);
    return [(start, start + len(code), "{}")]


def op_swap(line: str, m: str) -> List[Edit]:
    edits = []
    for mo in re.finditer(r"([A-Za-z_]\w*)\s*(?:<[^()<>]*>)?\s*\(", m):
        if mo.group(1) in NOT_CALLEES or mo.group(1) in COMMUTATIVE:
            continue
        open_ = mo.end() - 1
        close = matching(m, open_)
        if close < 0:
            continue
        typed = re.search(r"([\w>&*\]]+)\s+$", m[:mo.start()])
        if typed and typed.group(1) not in ("return", "else", "new", "case", "do") and \
                re.match(r"\s*(const|override|noexcept|final|\{|->|:|$)", m[close + 1:]):
            continue  # a function's definition (void f(int a, int b) {...}), not a call
        args = arguments(m, open_, close)
        for (a1, b1), (a2, b2) in zip(args, args[1:]):
            x, y = m[a1:b1].strip(), m[a2:b2].strip()
            if x == y or not _simple_arg(x) or not _simple_arg(y):
                continue
            a = a1 + len(m[a1:b1]) - len(m[a1:b1].lstrip())  # the first's first character
            b = b2 - (len(m[a2:b2]) - len(m[a2:b2].rstrip()))  # one past the second's last
            between = line[a + len(x):b - len(y)]  # ", " with its spaces (or comments)
            edits.append((a, b, line[b - len(y):b] + between + line[a:a + len(x)]))
    return edits


BUILTIN_TYPES = {"int", "bool", "char", "float", "double", "void", "auto", "size_t", "int64_t",
                 "uint8_t", "uint32_t", "uint64_t", "int32_t"}


def _simple_arg(a: str) -> bool:
    if not a or '"' in a or "'" in a or a.endswith(("&", "*")) or a in BUILTIN_TYPES or \
            a.startswith("{"):
        return False  # string literals, braced lists, types of unnamed parameters: f(Tensor&, int)
    if re.search(r"[<>]", re.sub(r"\s(<=|>=|<<|>>|<|>)\s|->", " ", a)):
        return False
    return not DECLARATION.search(a)


# ---- all mutants of one file ----

def file_mutants(path: str, text: str) -> Dict[int, List[Mutant]]:
    """1-based line number -> the mutants of that line (lines without any are left out)."""
    masked = mask(text)
    lines, mlines = text.split("\n"), masked.split("\n")
    skip = skipped_lines(mlines)
    regions = message_regions(masked)
    starts, pos = [], 0
    for line in lines:
        starts.append(pos)
        pos += len(line) + 1
    out: Dict[int, List[Mutant]] = {}
    prev = ""
    for k, (line, m) in enumerate(zip(lines, mlines)):
        if k in skip or not m.strip():
            continue
        edits = {"rel": op_rel(line, m), "arith": op_arith(line, m), "const": op_const(line, m),
                 "negate": op_negate(line, m), "logic": op_logic(line, m),
                 "drop": op_drop(line, m, prev), "swap": op_swap(line, m)}
        prev = m.strip()
        found: List[Mutant] = []
        seen: Set[str] = set()
        for op in OPS:
            for edit in sorted(edits[op]):
                a, b = starts[k] + edit[0], starts[k] + edit[1]
                if any(ra <= a and b <= rb for ra, rb in regions):
                    continue  # message text only
                new = line[:edit[0]] + edit[2] + line[edit[1]:]
                if new != line and new not in seen:
                    seen.add(new)
                    found.append(Mutant(path, k + 1, op, line, new))
        if found:
            out[k + 1] = found
    return out
