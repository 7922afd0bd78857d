"""Go type expressions: parser, amd64 sizes and alignment, pointerness, comparability.

The syntax is Go's own type syntax plus two mapquake extensions:

* ``any(T)``: an interface slot whose dynamic value has type ``T`` and is converted
  (boxed) when the container stores it, e.g. ``map[string]any(int64)``.
* ``sync.Map[K]V``: a ``sync.Map`` storing ``K`` keys and ``V`` values.

Besides the predeclared types it knows the standard-library types services hold in their
values: ``sync.Mutex``, ``sync.RWMutex``, ``sync.Once``, ``sync.WaitGroup``, the
``sync/atomic`` types (``atomic.Bool``, ``Int32``, ``Int64``, ``Uint32``, ``Uint64``,
``Uintptr``, ``Value``, ``Pointer[T]``), ``time.Time`` and ``time.Duration``, laid out as the
Go version asked for defines them (:data:`STD_TYPES`).

Invalid types are refused the way the Go compiler refuses them (a non-comparable map key,
an undefined name, a duplicate field, …) with a :class:`~orchestrator.core.errors.UsageError`
that quotes the type, points a caret at the offending part and says how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from orchestrator.core.errors import UsageError

PTR_SIZE = 8
GoVersion = tuple[int, int]
#: The layout of the standard-library types when no Go version is given (the default toolchain).
DEFAULT_GO_VERSION: GoVersion = (1, 26)
#: The compiler refuses types larger than this on amd64 ("type too large").
MAX_TYPE_SIZE = 1 << 50


@dataclass(frozen=True)
class GoType:
    """A parsed Go type with its amd64 layout.

    ``kind`` is one of: ``basic``, ``string``, ``pointer``, ``slice``, ``array``, ``struct``,
    ``map``, ``chan``, ``func``, ``interface`` (``boxed`` set for ``any(T)``), ``syncmap``.
    """

    kind: str
    text: str
    size: int
    align: int
    has_pointers: bool
    comparable: bool
    name: str = ""
    elem: GoType | None = None
    key: GoType | None = None
    length: int = 0
    fields: tuple[Field, ...] = ()
    boxed: GoType | None = None
    signed: bool = False
    is_integer: bool = False
    is_float: bool = False
    #: Distinct values a key generator can make, where the fields would say more (a lock's
    #: state is the runtime's, so only its zero value can be built): 0 derives it.
    values: int = 0

    def __str__(self) -> str:
        return self.text

    @property
    def pointer_shaped(self) -> bool:
        """Stored directly in an interface data word, no boxing (Go's ``IsDirectIface``)."""
        if self.kind in ("pointer", "map", "chan", "func"):
            return True
        if self.kind == "array" and self.length == 1 and self.elem is not None:
            return self.elem.pointer_shaped
        if self.kind == "struct" and len(self.fields) == 1:
            return self.fields[0].type.pointer_shaped
        return False

    def sole_component(self) -> GoType | None:
        """The only primitive component of a one-field struct / one-element array chain, or
        None if there is more than one (Go's ``SoleComponent``, blank fields count)."""
        t = self
        while True:
            if t.kind == "struct":
                if len(t.fields) != 1:
                    return None
                t = t.fields[0].type
            elif t.kind == "array" and t.elem is not None:
                if t.length != 1:
                    return None
                t = t.elem
            else:
                return t

    def cardinality(self) -> int:
        """How many distinct values of this type a key generator can produce (capped)."""
        cap = 1 << 62
        if self.values:
            return self.values
        if self.kind == "basic":
            if self.name == "bool":
                return 2
            if self.is_integer:
                return min(cap, 1 << (8 * self.size))
            if self.is_float:
                return 1 << 24 if self.name in ("float32", "complex64") else cap
            return cap
        if self.kind == "interface" and self.boxed is not None:
            return self.boxed.cardinality()
        if self.kind == "array":
            assert self.elem is not None
            if self.length == 0:
                return 1
            return min(cap, int(self.elem.cardinality() ** min(self.length, 64)))
        if self.kind == "struct":
            total = 1
            for f in self.fields:
                if f.name != "_":
                    total = min(cap, total * f.type.cardinality())
            return total
        return cap


@dataclass(frozen=True)
class Field:
    name: str
    type: GoType
    offset: int
    embedded: bool = False


_INT_KINDS = {
    "int8": (1, True),
    "uint8": (1, False),
    "byte": (1, False),
    "int16": (2, True),
    "uint16": (2, False),
    "int32": (4, True),
    "rune": (4, True),
    "uint32": (4, False),
    "int64": (8, True),
    "uint64": (8, False),
    "int": (8, True),
    "uint": (8, False),
    "uintptr": (8, False),
}
_FLOAT_KINDS = {"float32": (4, 4), "float64": (8, 8), "complex64": (8, 4), "complex128": (16, 8)}


def _basic(name: str) -> GoType | None:
    if name in _INT_KINDS:
        size, signed = _INT_KINDS[name]
        return GoType("basic", name, size, size, False, True, name=name, signed=signed, is_integer=True)
    if name in _FLOAT_KINDS:
        size, align = _FLOAT_KINDS[name]
        return GoType("basic", name, size, align, False, True, name=name, is_float=True)
    if name == "bool":
        return GoType("basic", name, 1, 1, False, True, name=name)
    if name == "string":
        return GoType("string", name, 16, 8, True, True, name=name)
    if name == "unsafe.Pointer":
        return GoType("pointer", name, 8, 8, True, True, name=name)
    if name in ("any", "error"):
        return GoType("interface", name, 16, 8, True, True, name=name)
    return None


def basic_type(name: str) -> GoType:
    """A predeclared type by name (``int64``, ``string``, ``any``, …)."""
    t = _basic(name)
    if t is None:
        raise ValueError(f"not a predeclared Go type: {name}")
    return t


def align_up(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def struct_layout(members: list[tuple[str, GoType, bool]], text: str) -> GoType:
    """Lay out a struct like the gc compiler on amd64 (including the trailing zero-size pad)."""
    offset = 0
    align = 1
    fields: list[Field] = []
    for name, ftype, embedded in members:
        offset = align_up(offset, ftype.align)
        fields.append(Field(name, ftype, offset, embedded))
        offset += ftype.size
        align = max(align, ftype.align)
    # Go issue 9401: a non-zero-size struct ending in a zero-size field gets one byte of
    # padding so that &last can't point at the next object.
    if offset > 0 and members and members[-1][1].size == 0:
        offset += 1
    size = align_up(offset, align)
    return GoType(
        "struct",
        text,
        size,
        align,
        any(f.type.has_pointers for f in fields),
        all(f.type.comparable for f in fields),
        fields=tuple(fields),
    )


def array_of(elem: GoType, length: int, text: str) -> GoType:
    return GoType(
        "array",
        text,
        elem.size * length,
        elem.align,
        elem.has_pointers and length > 0,
        elem.comparable,
        elem=elem,
        length=length,
    )


def pointer_to(elem: GoType) -> GoType:
    return GoType("pointer", f"*{elem.text}", 8, 8, True, True, elem=elem)


#: Both map implementations store a key or value over this many bytes through a pointer
#: (classic hmap's maxKeySize/maxElemSize, Swiss tables' MaxKeyBytes/MaxElemBytes).
MAP_MAX_INLINE_BYTES = 128


@dataclass(frozen=True)
class MapSlots:
    """The key and value types as a map stores them in its slots."""

    key: GoType
    elem: GoType
    indirect_key: bool
    indirect_elem: bool


def map_slots(key: GoType, elem: GoType) -> MapSlots:
    """Keys and values over 128 B live in their own allocation; the slot holds a pointer."""
    ik = key.size > MAP_MAX_INLINE_BYTES
    ie = elem.size > MAP_MAX_INLINE_BYTES
    return MapSlots(pointer_to(key) if ik else key, pointer_to(elem) if ie else elem, ik, ie)


def interface_holding(dynamic: GoType | None) -> GoType:
    if dynamic is None:
        return GoType("interface", "any", 16, 8, True, True, name="any")
    return GoType("interface", f"any({dynamic.text})", 16, 8, True, True, name="any", boxed=dynamic)


# --------------------------------------------------------------------------------------------
# Standard-library types

#: The packages whose types the parser knows, as a type names them, and their import paths.
STD_PACKAGES = {"sync": "sync", "atomic": "sync/atomic", "time": "time", "unsafe": "unsafe"}

#: Each standard-library type as the struct it is on linux/amd64, in the model's own syntax,
#: per Go version: the entry with the newest version ≤ the one asked for applies. Read from
#: the Go sources of go1.23.5 (/usr/lib/go-1.23/src), go1.26.8 (/usr/local/go/src) and go1.27.3
#: (GOTOOLCHAIN); a zero-size marker (noCopy, align64: struct{} on amd64) is written struct{}.
#: 1.24 and 1.25 get the 1.26 layout unread. Every difference between the versions is in
#: unexported fields of equal size: unsafe.Sizeof/Alignof and the pointer bytes agree on all three
#: toolchains (docs/model.md, "Standard-library types"). time.Time's *Location is written
#: unsafe.Pointer: it points at a zone shared by every Time (time.Local, a cached zone), so it
#: makes the struct pointerful (scanned, never in a noscan size class) but owns nothing.
#: atomic.Pointer[T] is built by the parser (its layout mentions T).
STD_TYPES: dict[str, tuple[tuple[GoVersion, str], ...]] = {
    "sync.Mutex": (
        ((1, 22), "struct{state int32; sema uint32}"),
        ((1, 24), "struct{_ struct{}; mu struct{state int32; sema uint32}}"),
    ),
    "sync.RWMutex": (
        (
            (1, 22),
            "struct{w sync.Mutex; writerSem uint32; readerSem uint32; readerCount atomic.Int32; "
            "readerWait atomic.Int32}",
        ),
    ),
    "sync.Once": (
        ((1, 22), "struct{done atomic.Uint32; m sync.Mutex}"),
        ((1, 24), "struct{_ struct{}; done atomic.Bool; m sync.Mutex}"),
    ),
    "sync.WaitGroup": (((1, 22), "struct{noCopy struct{}; state atomic.Uint64; sema uint32}"),),
    "atomic.Bool": (((1, 22), "struct{_ struct{}; v uint32}"),),
    "atomic.Int32": (((1, 22), "struct{_ struct{}; v int32}"),),
    "atomic.Int64": (((1, 22), "struct{_ struct{}; _ struct{}; v int64}"),),
    "atomic.Uint32": (((1, 22), "struct{_ struct{}; v uint32}"),),
    "atomic.Uint64": (((1, 22), "struct{_ struct{}; _ struct{}; v uint64}"),),
    "atomic.Uintptr": (((1, 22), "struct{_ struct{}; v uintptr}"),),
    "atomic.Value": (((1, 22), "struct{v any}"),),
    "time.Time": (((1, 22), "struct{wall uint64; ext int64; loc unsafe.Pointer}"),),
}
#: Distinct values a key generator can make where the fields say more: a lock's or a once's
#: state belongs to the runtime (only the zero value can be made); an atomic.Bool holds 0 or 1.
_STD_VALUES = {"sync.Mutex": 1, "sync.RWMutex": 1, "sync.Once": 1, "sync.WaitGroup": 1, "atomic.Bool": 2}
#: Every standard-library type name the parser resolves.
STD_NAMES = (*STD_TYPES, "atomic.Pointer", "time.Duration")


def std_layout(name: str, go: GoVersion) -> str:
    """The struct (model syntax) the standard-library type ``name`` is in Go ``go``."""
    layout = STD_TYPES[name][0][1]
    for since, text in STD_TYPES[name]:
        if since <= go:
            layout = text
    return layout


# --------------------------------------------------------------------------------------------
# Parser


class _Parser:
    def __init__(self, text: str, go: GoVersion = DEFAULT_GO_VERSION) -> None:
        self.text = text
        self.pos = 0
        self.go = go

    # -- errors -------------------------------------------------------------------------------
    def fail(self, message: str, hint: str, at: int | None = None, width: int = 1) -> UsageError:
        at = self.pos if at is None else at
        caret = " " * at + "^" * max(1, width)
        return UsageError(
            f"invalid Go type at column {at + 1}: {message}\n    {self.text}\n    {caret}",
            hint=hint,
        )

    # -- lexing -------------------------------------------------------------------------------
    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\n":
            self.pos += 1

    def peek(self, s: str) -> bool:
        self.skip_ws()
        return self.text.startswith(s, self.pos)

    def expect(self, s: str, hint: str) -> None:
        self.skip_ws()
        if not self.text.startswith(s, self.pos):
            found = self.text[self.pos] if self.pos < len(self.text) else "end of type"
            raise self.fail(f"expected '{s}', found '{found}'", hint)
        self.pos += len(s)

    def ident(self) -> tuple[str, int]:
        self.skip_ws()
        start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isalnum() or self.text[self.pos] == "_"):
            self.pos += 1
        if start == self.pos or self.text[start].isdigit():
            self.pos = start
            return "", start
        return self.text[start : self.pos], start

    def keyword(self, word: str) -> bool:
        """Consume ``word`` if it is the next identifier."""
        self.skip_ws()
        end = self.pos + len(word)
        if self.text.startswith(word, self.pos) and (
            end >= len(self.text) or not (self.text[end].isalnum() or self.text[end] == "_")
        ):
            self.pos = end
            return True
        return False

    # -- grammar ------------------------------------------------------------------------------
    def parse_top(self) -> GoType:
        t = self.parse_type(top=True)
        self.skip_ws()
        if self.pos != len(self.text):
            raise self.fail(
                f"unexpected '{self.text[self.pos :]}' after the type",
                "remove the trailing text; a TYPE is one Go type expression such as map[string]int64",
                width=len(self.text) - self.pos,
            )
        return t

    def parse_type(self, top: bool = False) -> GoType:
        self.skip_ws()
        start = self.pos
        if self.pos >= len(self.text):
            raise self.fail("expected a type, found end of type", "complete the type, e.g. map[string]int64")
        if self.peek("("):
            self.pos += 1
            t = self.parse_type()
            self.expect(")", "close the parenthesis")
            return t
        if self.peek("*"):
            self.pos += 1
            elem = self.parse_type()
            return pointer_to(elem)
        if self.peek("[]"):
            self.pos += 2
            elem = self.parse_type()
            return GoType("slice", f"[]{elem.text}", 24, 8, True, False, elem=elem)
        if self.peek("["):
            return self.parse_array(top)
        if self.keyword("map"):
            return self.parse_map(start)
        if self.keyword("chan"):
            elem = self.parse_type()
            return GoType("chan", f"chan {elem.text}", 8, 8, True, True, elem=elem)
        if self.keyword("func"):
            return self.parse_func(start)
        if self.keyword("struct"):
            return self.parse_struct()
        if self.keyword("interface"):
            self.expect("{", "write an interface type as interface{} or any")
            if not self.peek("}"):
                raise self.fail(
                    "only the empty interface is supported (an interface slot is 16 bytes whatever its methods)",
                    "write any, or any(T) for a slot holding a boxed T",
                )
            self.pos += 1
            return interface_holding(None)
        name, at = self.ident()
        if not name:
            found = self.text[self.pos]
            raise self.fail(
                f"expected a type, found '{found}'",
                "a type starts with a name (int64, string, …), *, [, map, struct, any or sync.Map",
            )
        if self.peek(".") and name in STD_PACKAGES:
            self.pos += 1
            sel, _ = self.ident()
            name = f"{name}.{sel}"
        if name == "sync.Map":
            return self.parse_syncmap(at, top)
        if name in STD_NAMES:
            return self.parse_std(name, at)
        if name == "any" and self.peek("("):
            self.pos += 1
            dyn_at = self.pos
            dynamic = self.parse_type()
            self.expect(")", "close any(T) with ')'")
            if dynamic.kind == "interface":
                raise self.fail(
                    "any(T) needs a concrete dynamic type T, not an interface",
                    "write any for a pre-built interface value, or any(T) with T concrete, e.g. any(int64)",
                    at=dyn_at,
                    width=len(dynamic.text),
                )
            if dynamic.kind == "syncmap":
                raise self.fail("sync.Map cannot be boxed", "sync.Map[K]V is only allowed as the whole TYPE", dyn_at)
            return interface_holding(dynamic)
        basic = _basic(name)
        if basic is None:
            raise self.fail(
                f"undefined: {name}",
                "use a predeclared type (bool, int8…int64, uint8…uint64, int, uint, uintptr, float32, "
                "float64, complex64, complex128, string, byte, rune, any, error, unsafe.Pointer), one of "
                "sync.Mutex, sync.RWMutex, sync.Once, sync.WaitGroup, atomic.Bool, atomic.Int32, "
                "atomic.Int64, atomic.Uint32, atomic.Uint64, atomic.Uintptr, atomic.Value, "
                "atomic.Pointer[T], time.Time, time.Duration, or spell the named type out as a struct{...}",
                at=at,
                width=len(name),
            )
        return basic

    def parse_std(self, name: str, at: int) -> GoType:
        """A standard-library type: its struct for this Go version, under its own name."""
        if name == "time.Duration":
            return replace(basic_type("int64"), text=name, name=name)
        if name == "atomic.Pointer":
            if not self.peek("["):
                raise self.fail(
                    "atomic.Pointer needs its type argument",
                    "write atomic.Pointer[T], e.g. atomic.Pointer[struct{Value int64}]",
                    at=at,
                    width=len(name),
                )
            self.pos += 1
            elem_at = self.pos
            elem = self.parse_type()
            self.expect("]", "close atomic.Pointer's type argument with ']'")
            if elem.kind == "syncmap":
                raise self.fail("sync.Map[K]V cannot be a type argument", "model the sync.Map on its own", elem_at)
            # sync/atomic: struct{_ [0]*T; _ noCopy; v unsafe.Pointer} in every version covered.
            members = [
                ("_", array_of(pointer_to(elem), 0, f"[0]*{elem.text}"), False),
                ("_", struct_layout([], "struct{}"), False),
                ("v", basic_type("unsafe.Pointer"), False),
            ]
            text = f"atomic.Pointer[{elem.text}]"
            return replace(struct_layout(members, text), name=name, elem=elem)
        layout = _Parser(std_layout(name, self.go), self.go).parse_top()
        return replace(layout, text=name, name=name, values=_STD_VALUES.get(name, 0))

    def parse_array(self, top: bool) -> GoType:
        self.expect("[", "")
        self.skip_ws()
        at = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in "]":
            self.pos += 1
        raw = self.text[at : self.pos].strip()
        self.expect("]", "close the array length with ']'")
        try:
            length = int(raw.replace("_", ""), 0)
        except ValueError:
            raise self.fail(
                f"array length {raw!r} is not an integer constant",
                "write a non-negative integer length, e.g. [32]byte",
                at=at,
                width=max(1, len(raw)),
            ) from None
        if length < 0:
            raise self.fail(f"invalid array length {raw}", "an array length must be ≥ 0", at=at, width=len(raw))
        elem_at = self.pos
        elem = self.parse_type()
        if elem.kind == "syncmap":
            raise self.fail("sync.Map cannot be an array element", "model each sync.Map alone", elem_at)
        if elem.size * length > MAX_TYPE_SIZE:
            raise self.fail(f"array too large: [{length}]{elem.text}", "use a smaller length", at=at)
        return array_of(elem, length, f"[{length}]{elem.text}")

    def parse_map(self, start: int) -> GoType:
        self.expect("[", "write a map type as map[K]V")
        key_at = self.pos
        self.skip_ws()
        key_at = self.pos
        key = self.parse_type()
        self.expect("]", "close the key type with ']'")
        self.check_key(key, key_at, "map key")
        val_at = self.pos
        elem = self.parse_type()
        if elem.kind == "syncmap":
            raise self.fail("sync.Map[K]V cannot be a map value", "model the sync.Map on its own", val_at)
        return GoType("map", f"map[{key.text}]{elem.text}", 8, 8, True, False, key=key, elem=elem)

    def parse_syncmap(self, at: int, top: bool) -> GoType:
        if not self.peek("["):
            raise self.fail(
                "sync.Map needs its key and value types",
                "write sync.Map[K]V, e.g. sync.Map[string][32]byte",
                at=at,
                width=8,
            )
        if not top:
            raise self.fail(
                "sync.Map[K]V is only supported as the whole TYPE",
                "model the sync.Map on its own, e.g. sync.Map[string]int64",
                at=at,
                width=8,
            )
        self.expect("[", "")
        self.skip_ws()
        key_at = self.pos
        key = self.parse_type()
        self.expect("]", "close the key type with ']'")
        self.check_key(key, key_at, "sync.Map key")
        elem = self.parse_type()
        return GoType(
            "syncmap",
            f"sync.Map[{key.text}]{elem.text}",
            48,
            8,
            True,
            False,
            key=key,
            elem=elem,
        )

    def check_key(self, key: GoType, at: int, what: str) -> None:
        dyn = key.boxed if key.kind == "interface" and key.boxed is not None else key
        if not dyn.comparable:
            bad = _first_incomparable(dyn)
            if key.boxed is not None:
                message = f"{what} any({dyn.text}) would panic at run time: hash of unhashable type {bad}"
            else:
                message = f"invalid {what} type {key.text}: {bad} is not comparable"
            raise self.fail(
                message,
                "map keys must be comparable: not a slice, map or func (nor a struct/array "
                "containing one); use a string or an array instead of a slice",
                at=at,
                width=len(key.text),
            )

    def parse_func(self, start: int) -> GoType:
        # Only the shape matters (a func value is one pointer); skip the signature.
        self.skip_ws()
        if not self.peek("("):
            raise self.fail("expected '(' after func", "write a func type as func(int) error")
        depth = 0
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c in "([{":
                depth += 1
            elif c in ")]}":
                depth -= 1
                if depth == 0:
                    self.pos += 1
                    break
            self.pos += 1
        else:
            raise self.fail("unterminated func signature", "close the parameter list with ')'")
        # Optional single result type.
        save = self.pos
        self.skip_ws()
        if self.pos < len(self.text) and self.text[self.pos] not in ";}])":
            try:
                self.parse_type()
            except UsageError:
                self.pos = save
        text = self.text[start : self.pos].strip()
        return GoType("func", text, 8, 8, True, False)

    def parse_struct(self) -> GoType:
        self.expect("{", "write a struct as struct{Name Type; Other Type}")
        members: list[tuple[str, GoType, bool]] = []
        seen: dict[str, int] = {}
        parts: list[str] = []
        while True:
            self.skip_ws()
            while self.peek(";"):
                self.pos += 1
            if self.peek("}"):
                self.pos += 1
                break
            if self.pos >= len(self.text):
                raise self.fail("unterminated struct", "close the struct with '}'")
            decl_at = self.pos
            names: list[tuple[str, int]] = []
            first, first_at = self.ident()
            embedded = False
            ftype: GoType
            if self.peek("*") and not first:
                # embedded *T
                self.pos += 1
                _, name_at = self.ident()
                self.pos = name_at
                elem = self.parse_type()
                ftype = pointer_to(elem)
                names = [((elem.name or elem.text).split(".")[-1], name_at)]
                embedded = True
            elif not first:
                raise self.fail(
                    f"expected a field name, found '{self.text[self.pos]}'",
                    "write fields as Name Type, separated by ';'",
                )
            else:
                names.append((first, first_at))
                while self.peek(","):
                    self.pos += 1
                    n, n_at = self.ident()
                    if not n:
                        raise self.fail("expected a field name after ','", "write fields as A, B Type")
                    names.append((n, n_at))
                self.skip_ws()
                if len(names) == 1 and (self.peek(";") or self.peek("}") or self.peek(".") or self.peek("`")):
                    # Embedded field: the name is the type.
                    self.pos = decl_at
                    ftype = self.parse_type()
                    embedded = True
                    # The field is named after the type: sync.Mutex → Mutex, atomic.Pointer[T] → Pointer.
                    names = [((ftype.name or ftype.text).split(".")[-1], decl_at)]
                else:
                    ftype = self.parse_type()
            self.skip_ws()
            if self.peek("`") or self.peek('"'):
                quote = self.text[self.pos]
                end = self.text.find(quote, self.pos + 1)
                if end < 0:
                    raise self.fail("unterminated field tag", f"close the tag with {quote}")
                self.pos = end + 1
            if ftype.kind == "syncmap":
                raise self.fail("sync.Map[K]V cannot be a struct field", "model the sync.Map on its own", decl_at)
            for name, name_at in names:
                if name != "_" and name in seen:
                    raise self.fail(
                        f"{name} redeclared in this struct",
                        "give every field a distinct name",
                        at=name_at,
                        width=len(name),
                    )
                seen[name] = name_at
                members.append((name, ftype, embedded))
                parts.append(ftype.text if embedded else f"{name} {ftype.text}")
            self.skip_ws()
            if self.peek(";"):
                self.pos += 1
            elif not self.peek("}"):
                found = self.text[self.pos] if self.pos < len(self.text) else "end of type"
                raise self.fail(
                    f"expected ';' or '}}' after a field, found '{found}'",
                    "separate struct fields with ';', e.g. struct{Value int64; Version uint64}",
                )
        text = "struct{" + "; ".join(parts) + "}"
        t = struct_layout(members, text)
        if t.size > MAX_TYPE_SIZE:
            raise self.fail("struct too large", "use smaller fields")
        return t


def _first_incomparable(t: GoType) -> str:
    if t.kind in ("slice", "map", "func"):
        return t.text
    if t.kind == "array" and t.elem is not None:
        return _first_incomparable(t.elem)
    if t.kind == "struct":
        for f in t.fields:
            if not f.type.comparable:
                return _first_incomparable(f.type)
    return t.text


def parse(text: str, go: GoVersion = DEFAULT_GO_VERSION) -> GoType:
    """Parse a Go type expression (with ``any(T)`` and ``sync.Map[K]V``) as Go ``go`` lays it out;
    UsageError if invalid."""
    if not text or not text.strip():
        raise UsageError("empty Go type", hint="give a type such as map[string]int64")
    return _Parser(text, go).parse_top()


@dataclass(frozen=True)
class Container:
    """What a TYPE asks the model about: ``shards`` independent maps/sync.Maps of one kind."""

    kind: str  # "map" or "syncmap"
    key: GoType
    elem: GoType
    shards: int = 1
    text: str = ""
    notes: list[str] = field(default_factory=list)


def container_of(text: str, go: GoVersion = DEFAULT_GO_VERSION) -> Container:
    """Parse TYPE and check it names a container mapquake models (a map, [S]map or sync.Map)."""
    t = parse(text, go)
    if t.kind == "syncmap":
        assert t.key is not None and t.elem is not None
        return Container("syncmap", t.key, t.elem, text=t.text)
    if t.kind == "map":
        assert t.key is not None and t.elem is not None
        return Container("map", t.key, t.elem, text=t.text)
    if t.kind == "array" and t.elem is not None and t.elem.kind == "map":
        if t.length < 1:
            raise UsageError(
                f"{t.text}: a sharded map needs at least one shard",
                hint="write [S]map[K]V with S ≥ 1, e.g. [32]map[string][]byte",
            )
        m = t.elem
        assert m.key is not None and m.elem is not None
        return Container("map", m.key, m.elem, shards=t.length, text=t.text)
    raise UsageError(
        f"{t.text} is not a container the model knows",
        hint="give a map[K]V, a sharded [S]map[K]V or a sync.Map[K]V",
    )
