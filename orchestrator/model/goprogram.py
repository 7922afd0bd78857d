"""Generate the Go measuring program for a set of container types (research §6 recipe).

One program measures any number of (type, entries) requests, one JSON line each::

    prog 0:1000 0:100000:hw=200000 1:10:hint=64 0:10:reps=4096

``reps=R`` builds R containers of the same request side by side (each with its own hash
seed) and reports their total: the mean per container is exact to a byte, which is what an
expected value is compared with where a single container's layout is random.

For each request it builds the keys and values first (pointerful ones into slices, the
rest on the fly: they allocate nothing), takes ``runtime.GC(); ReadMemStats``, makes the
container, inserts (boxing ``any(T)`` slots on insert), deletes down to ``entries`` when a
high-water mark is asked, then ``runtime.GC(); ReadMemStats`` again with the container
still reachable. It runs with GOMAXPROCS=1 and the GC off (``SetGCPercent(-1)``) and
reads table counts / bucket shift / trie nodes through ``unsafe`` for diagnostics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.model.gotypes import STD_PACKAGES, Container, GoType

_ZERO_CARD_CAP = 1 << 62


def go_syntax(t: GoType) -> str:
    """The static Go type of a slot: ``any(T)`` is ``any``."""
    k = t.kind
    if k == "interface":
        return "error" if t.name == "error" else "any"
    if k == "struct" and t.name:  # a standard-library type: its own name
        return f"atomic.Pointer[{go_syntax(_e(t))}]" if t.name == "atomic.Pointer" else t.name
    if k in ("basic", "string"):
        return t.name
    if k == "pointer":
        return t.name if t.name == "unsafe.Pointer" else "*" + go_syntax(_e(t))
    if k == "slice":
        return "[]" + go_syntax(_e(t))
    if k == "array":
        return f"[{t.length}]" + go_syntax(_e(t))
    if k == "map":
        assert t.key is not None
        return f"map[{go_syntax(t.key)}]{go_syntax(_e(t))}"
    if k == "chan":
        return "chan " + go_syntax(_e(t))
    if k == "func":
        return t.text
    if k == "struct":
        parts = []
        for f in t.fields:
            parts.append(go_syntax(f.type) if f.embedded else f"{f.name} {go_syntax(f.type)}")
        return "struct{" + "; ".join(parts) + "}"
    raise ValueError(f"no Go syntax for {t.kind}")


def _e(t: GoType) -> GoType:
    assert t.elem is not None
    return t.elem


@dataclass
class _Gen:
    funcs: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    imports: set[str] = field(default_factory=set)

    def mk(self, t: GoType) -> str:
        """Name of a ``func(i int) T`` giving distinct values for distinct i < cardinality."""
        syntax = go_syntax(t)
        if t.text in self.names:
            return self.names[t.text]
        name = f"mk{len(self.names)}"
        self.names[t.text] = name
        body = self._body(t, syntax)
        self.funcs.append(f"func {name}(i int) (v {syntax}) {{\n{body}\n}}")
        return name

    def _body(self, t: GoType, syntax: str) -> str:
        k = t.kind
        if k == "struct" and t.name:
            return self._std_body(t)
        if k == "basic":
            if t.name == "bool":
                return "\treturn i%2 == 1"
            if t.is_integer:
                return f"\treturn {syntax}(i + 256)"
            if t.name.startswith("complex"):
                return f"\treturn {syntax}(complex(float64(i)+0.5, 1))"
            return f"\treturn {syntax}(i) + 0.5"
        if k == "string":
            self.imports.add("strconv")
            return '\treturn "k" + strconv.Itoa(i)'
        if k == "interface":
            if t.name == "error":
                self.imports.add("errors")
                self.imports.add("strconv")
                return "\treturn errors.New(strconv.Itoa(i))"
            if t.boxed is not None:
                return f"\treturn {self.mk(t.boxed)}(i)"
            return "\treturn any(int64(i) + 256)"
        if k == "pointer":
            if t.name == "unsafe.Pointer":
                self.imports.add("unsafe")
                return "\tp := new(int64)\n\t*p = int64(i)\n\treturn unsafe.Pointer(p)"
            return f"\tv = new({go_syntax(_e(t))})\n\t*v = {self.mk(_e(t))}(i)\n\treturn"
        if k == "slice":
            return f"\treturn {syntax}{{{self.mk(_e(t))}(i)}}"
        if k == "map":
            return f"\treturn make({syntax})"
        if k == "chan":
            return f"\treturn make({syntax})"
        if k == "func":
            return "\treturn nil"
        if k == "array":
            e = _e(t)
            if t.length == 0:
                return "\treturn"
            card = e.cardinality()
            if card >= _ZERO_CARD_CAP:
                return f"\tfor j := range v {{\n\t\tv[j] = {self.mk(e)}(i)\n\t}}\n\treturn"
            return (
                f"\tx := i\n\tfor j := range v {{\n\t\tv[j] = {self.mk(e)}(x % {card})\n\t\tx /= {card}\n\t}}\n\treturn"
            )
        if k == "struct":
            lines = ["\tx := i", "\t_ = x"]
            for f in t.fields:
                if f.name == "_" or f.type.size == 0:
                    continue
                card = f.type.cardinality()
                fn = self.mk(f.type)
                if card >= _ZERO_CARD_CAP:
                    lines.append(f"\tv.{f.name} = {fn}(i)")
                else:
                    lines.append(f"\tv.{f.name} = {fn}(x % {card})\n\tx /= {card}")
            lines.append("\treturn")
            return "\n".join(lines)
        raise ValueError(f"cannot generate values of {t.text}")

    def _std_body(self, t: GoType) -> str:
        """Distinct values of a standard-library struct type through its own API (its fields
        are unexported); a lock's zero value is the only one (its cardinality is 1)."""
        name = t.name
        if name in ("sync.Mutex", "sync.RWMutex", "sync.Once", "sync.WaitGroup"):
            return "\treturn"
        # The integer atomics are written through unsafe, not Store: go1.23's escape analysis
        # moves a v whose Store method is called to the heap, and those 4/8-B garbage copies
        # would share tiny blocks with the boxes being measured (measured: +8 B per any(atomic.Int64)).
        # Their one field sits at offset 0 (noCopy and align64 are zero-size).
        if name == "atomic.Bool":
            return "\t*(*uint32)(unsafe.Pointer(&v)) = uint32(i % 2)\n\treturn"
        if name in ("atomic.Int32", "atomic.Int64", "atomic.Uint32", "atomic.Uint64", "atomic.Uintptr"):
            word = name.removeprefix("atomic.").lower()
            return f"\t*(*{word})(unsafe.Pointer(&v)) = {word}(i + 256)\n\treturn"
        if name == "atomic.Value":
            return "\tv.Store(int64(i) + 256)\n\treturn"
        if name == "atomic.Pointer":
            elem = _e(t)
            return f"\tp := new({go_syntax(elem)})\n\t*p = {self.mk(elem)}(i)\n\tv.Store(p)\n\treturn"
        if name == "time.Time":
            return "\treturn time.Unix(int64(i), 0)"
        raise ValueError(f"cannot generate values of {t.text}")


def std_imports(t: GoType, out: set[str] | None = None) -> set[str]:
    """The packages a program naming ``t`` imports for its standard-library types (a named
    type's unexported fields are not walked: the program never names them)."""
    out = set() if out is None else out
    if t.name and "." in t.name and t.kind in ("struct", "basic"):
        out.add(STD_PACKAGES[t.name.split(".", 1)[0]])
        if t.name == "atomic.Pointer":
            std_imports(_e(t), out)
        return out
    for sub in (t.key, t.elem, t.boxed):
        if sub is not None:
            std_imports(sub, out)
    for f in t.fields:
        std_imports(f.type, out)
    return out


def _prebuilt(t: GoType) -> bool:
    """Whether values of the slot's (dynamic) type must be built before the baseline."""
    dyn = t.boxed if t.kind == "interface" and t.boxed is not None else t
    if t.kind == "interface" and t.boxed is None:
        return True
    return dyn.has_pointers


def _value_expr(t: GoType, gen: _Gen, arr: str) -> tuple[str, str]:
    """(prebuild statements, expression for entry i) of a slot of type ``t``."""
    dyn = t.boxed if t.kind == "interface" and t.boxed is not None else t
    fn = gen.mk(dyn)
    if _prebuilt(t):
        pre = f"\t{arr} := make([]{go_syntax(dyn)}, total)\n\tfor i := range {arr} {{\n\t\t{arr}[i] = {fn}(i)\n\t}}\n"
        expr = f"{arr}[i]"
    else:
        pre = f"\tvar {arr} []{go_syntax(dyn)}\n"
        expr = f"{fn}(i)"
    if t.kind == "interface" and t.boxed is not None:
        expr = f"any({expr})"
    return pre, expr


def _measure_func(idx: int, c: Container, gen: _Gen) -> str:
    kpre, kexpr = _value_expr(c.key, gen, "keys")
    vpre, vexpr = _value_expr(c.elem, gen, "vals")
    head = (
        f"func measure{idx}(n, hw, hint, reps int) result {{\n"
        "\ttotal := n\n\tif hw > total {\n\t\ttotal = hw\n\t}\n"
        f"{kpre}{vpre}"
        # Allocated before the baseline: holding R containers must not count as theirs.
        "\thold := make([]any, reps)\n"
        "\tvar d diag\n"
        "\tvar a, b runtime.MemStats\n"
        "\truntime.GC()\n\truntime.GC()\n\truntime.ReadMemStats(&a)\n"
        "\tfor r := range hold {\n"
        "\ttinyFence()\n"
    )
    if c.kind == "syncmap":
        body = (
            "\tm := new(sync.Map)\n"
            f"\tfor i := 0; i < total; i++ {{\n\t\tm.Store({kexpr}, {vexpr})\n\t}}\n"
            f"\tfor i := n; i < total; i++ {{\n\t\tm.Delete({kexpr})\n\t}}\n"
            "\thold[r] = m\n"
        )
        diag = "\t\td.add(syncMapDiag(unsafe.Pointer(h.(*sync.Map))))\n"
    else:
        mt = f"map[{go_syntax(c.key)}]{go_syntax(c.elem)}"
        if c.shards == 1:
            body = (
                f"\tvar m {mt}\n\tif hint > 0 {{\n\t\tm = make({mt}, hint)\n\t}} else {{\n\t\tm = make({mt})\n\t}}\n"
                f"\tfor i := 0; i < total; i++ {{\n\t\tm[{kexpr}] = {vexpr}\n\t}}\n"
                f"\tfor i := n; i < total; i++ {{\n\t\tdelete(m, {kexpr})\n\t}}\n"
                "\thold[r] = m\n"
            )
            diag = f"\t\tm := h.({mt})\n\t\td.add(mapDiag(*(*unsafe.Pointer)(unsafe.Pointer(&m))))\n"
        else:
            s = c.shards
            body = (
                f"\tms := new([{s}]{mt})\n\tsh := (hint + {s - 1}) / {s}\n"
                f"\tfor j := range ms {{\n\t\tif sh > 0 {{\n\t\t\tms[j] = make({mt}, sh)\n\t\t}} else {{\n"
                f"\t\t\tms[j] = make({mt})\n\t\t}}\n\t}}\n"
                f"\tfor i := 0; i < total; i++ {{\n\t\tms[i%{s}][{kexpr}] = {vexpr}\n\t}}\n"
                f"\tfor i := n; i < total; i++ {{\n\t\tdelete(ms[i%{s}], {kexpr})\n\t}}\n"
                "\thold[r] = ms\n"
            )
            diag = (
                f"\t\tms := h.(*[{s}]{mt})\n"
                "\t\tfor j := range ms {\n\t\t\td.add(mapDiag(*(*unsafe.Pointer)(unsafe.Pointer(&ms[j]))))\n\t\t}\n"
            )
    tail = (
        "\t}\n"
        "\tfence = nil\n"
        "\truntime.GC()\n\truntime.ReadMemStats(&b)\n"
        # Diagnostics allocate (capacity maps): read them only after the measurement.
        f"\tfor _, h := range hold {{\n{diag}\t}}\n"
        "\truntime.KeepAlive(keys)\n\truntime.KeepAlive(vals)\n"
        "\treturn result{Live: int64(b.HeapAlloc) - int64(a.HeapAlloc), "
        "Cumulative: int64(b.TotalAlloc - a.TotalAlloc), Diag: d}\n}\n"
    )
    return head + body + tail


SWISS_LAYOUT = r"""// Go >= 1.24 internal/runtime/maps.Map and table.
type swissMap struct {
	used        uint64
	seed        uintptr
	dirPtr      unsafe.Pointer
	dirLen      int
	globalDepth uint8
}

type swissTable struct {
	used       uint16
	capacity   uint16
	growthLeft uint16
	localDepth uint8
	index      int
	groups     unsafe.Pointer
	lengthMask uint64
}
"""
"""The runtime's Swiss map header and table as Go declarations: the one copy every program that reads
a map's tables through unsafe uses (the measuring program, tests/integration/test_model_rebuild.py)."""

_RUNTIME = (
    r"""
// fence keeps tinyFence's filler on the heap; fillers are garbage once overwritten.
var fence *uint64

// tinyFence fills the tiny allocator's current 16-B block with an 8-B garbage filler, so
// the next container starts a block of its own, as a lone container does after runtime.GC
// (which drops the block). Without it, replicas would share blocks and each would be
// charged less than a lone container for its boxes under 16 B. A block holding only
// fillers is freed by the final GC; one shared with a container is charged to it anyway.
func tinyFence() {
	fence = new(uint64)
	if uintptr(unsafe.Pointer(fence))%16 == 0 {
		fence = new(uint64)
	}
}

type diag struct {
	Tables      int            `json:"tables,omitempty"`
	DirLen      int            `json:"dir_len,omitempty"`
	Capacities  map[string]int `json:"capacities,omitempty"`
	B           int            `json:"B"`
	Overflow    int            `json:"noverflow,omitempty"`
	Growing     bool           `json:"growing,omitempty"`
	TrieNodes   int            `json:"trie_nodes,omitempty"`
	Maps        int            `json:"maps"`
}

func (d *diag) add(o diag) {
	d.Tables += o.Tables
	d.DirLen += o.DirLen
	d.B += o.B
	d.Overflow += o.Overflow
	d.Growing = d.Growing || o.Growing
	d.TrieNodes += o.TrieNodes
	d.Maps += o.Maps
	for k, v := range o.Capacities {
		if d.Capacities == nil {
			d.Capacities = map[string]int{}
		}
		d.Capacities[k] += v
	}
}

type result struct {
	Live       int64 `json:"live"`
	Cumulative int64 `json:"cumulative"`
	Diag       diag  `json:"diag"`
}

var classic = runtime.Version() < "go1.24"

"""
    + SWISS_LAYOUT
    + r"""
// Go <= 1.23 runtime.hmap.
type hmap struct {
	count      int
	flags      uint8
	B          uint8
	noverflow  uint16
	hash0      uint32
	buckets    unsafe.Pointer
	oldbuckets unsafe.Pointer
}

func mapDiag(p unsafe.Pointer) diag {
	d := diag{Maps: 1}
	if p == nil {
		return d
	}
	if classic {
		h := (*hmap)(p)
		d.B = int(h.B)
		d.Overflow = int(h.noverflow)
		d.Growing = h.oldbuckets != nil
		return d
	}
	m := (*swissMap)(p)
	if m.dirLen == 0 {
		return d
	}
	dir := unsafe.Slice((**swissTable)(m.dirPtr), m.dirLen)
	d.DirLen = m.dirLen
	d.Capacities = map[string]int{}
	for i, t := range dir {
		if i == 0 || t != dir[i-1] {
			d.Tables++
			d.Capacities[strconv.Itoa(int(t.capacity))]++
		}
	}
	return d
}

// Go >= 1.24 internal/sync.HashTrieMap node layout.
type trieIndirect struct {
	isEntry  bool
	dead     bool
	mu       [2]uint32
	parent   unsafe.Pointer
	children [16]unsafe.Pointer
}

func trieCount(n *trieIndirect) int {
	c := 1
	for _, ch := range n.children {
		if ch != nil && !*(*bool)(ch) {
			c += trieCount((*trieIndirect)(ch))
		}
	}
	return c
}

func syncMapDiag(p unsafe.Pointer) diag {
	d := diag{Maps: 1}
	if classic {
		// sync.Map{mu Mutex; read atomic.Pointer; dirty map[any]*entry; misses int}
		dirty := *(*unsafe.Pointer)(unsafe.Add(p, 16))
		if dirty != nil {
			d.B = int((*hmap)(dirty).B)
		}
		return d
	}
	root := *(*unsafe.Pointer)(unsafe.Add(p, 16))
	if root != nil {
		d.TrieNodes = trieCount((*trieIndirect)(root))
	}
	return d
}

func main() {
	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(-1)
	var warm runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&warm)
	runtime.ReadMemStats(&warm)
	enc := json.NewEncoder(os.Stdout)
	// Warm up: the first container made in a process can pick up a one-time runtime object.
	for _, f := range measurers {
		f(1, 0, 0, 1)
	}
	for _, arg := range os.Args[1:] {
		parts := strings.Split(arg, ":")
		idx, _ := strconv.Atoi(parts[0])
		n, _ := strconv.Atoi(parts[1])
		hw, hint, reps := 0, 0, 1
		for _, opt := range parts[2:] {
			kv := strings.SplitN(opt, "=", 2)
			v, _ := strconv.Atoi(kv[1])
			switch kv[0] {
			case "hw":
				hw = v
			case "hint":
				hint = v
			case "reps":
				reps = v
			}
		}
		r := measurers[idx](n, hw, hint, reps)
		enc.Encode(map[string]any{"request": arg, "go": runtime.Version(), "result": r})
		runtime.GC()
	}
}
"""
)


def program(containers: list[Container]) -> str:
    """Go source of a measuring program for ``containers`` (request index = list index)."""
    gen = _Gen()
    funcs = [_measure_func(i, c, gen) for i, c in enumerate(containers)]
    imports = {"encoding/json", "os", "runtime", "runtime/debug", "strconv", "strings", "unsafe"}
    if any(c.kind == "syncmap" for c in containers):
        imports.add("sync")
    imports |= gen.imports
    for c in containers:
        std_imports(c.key, imports)
        std_imports(c.elem, imports)
    table = (
        "var measurers = []func(n, hw, hint, reps int) result{\n"
        + "".join(f"\tmeasure{i},\n" for i in range(len(containers)))
        + "}\n"
    )
    return (
        "// Code generated by mapquake model measure. DO NOT EDIT.\n\npackage main\n\nimport (\n"
        + "".join(f'\t"{imp}"\n' for imp in sorted(imports))
        + ")\n"
        + _RUNTIME
        + "\n"
        + table
        + "\n"
        + "\n".join(funcs)
        + "\n"
        + "\n\n".join(gen.funcs)
        + "\n"
    )


_LAYOUT_MAIN = r"""
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

// ptrBytes reads the type descriptor's PtrBytes, its second word (internal/abi.Type in
// 1.22 ... 1.27): the prefix of the type holding pointers, 0 for a noscan type.
func ptrBytes(t reflect.Type) uintptr {
	e := (*eface)(unsafe.Pointer(&t))
	return *(*uintptr)(unsafe.Add(e.data, 8))
}

func main() {
	enc := json.NewEncoder(os.Stdout)
	for _, c := range layouts {
		enc.Encode(map[string]any{
			"type": c.name, "go": runtime.Version(),
			"size": c.t.Size(), "align": c.t.Align(), "ptr_bytes": ptrBytes(c.t),
		})
	}
}
"""


def layout_program(types: list[GoType]) -> str:
    """Go source printing, for each of ``types``, one JSON line: its size, alignment and pointer
    bytes as the toolchain lays it out (reflect agrees with unsafe.Sizeof/Alignof)."""
    imports = {"encoding/json", "os", "reflect", "runtime", "unsafe"}
    for t in types:
        std_imports(t, imports)
    rows = "".join(f'\t{{"{t.text}", reflect.TypeFor[{go_syntax(t)}]()}},\n' for t in types)
    return (
        "// Code generated by mapquake's model tests. DO NOT EDIT.\n\npackage main\n\nimport (\n"
        + "".join(f'\t"{imp}"\n' for imp in sorted(imports))
        + ")\n\nvar layouts = []struct {\n\tname string\n\tt    reflect.Type\n}{\n"
        + rows
        + "}\n"
        + _LAYOUT_MAIN
    )
