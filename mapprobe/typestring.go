package mapprobe

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// TypeString renders t in the Go syntax the reference model reads. The
// model prices memory by layout, so the rendering keeps layout and drops
// names:
//
//   - named types are expanded: time.Duration is int64, a named struct is
//     struct{Field T; ...} with every field (embedded ones by their type
//     name, unexported ones too, tags dropped);
//   - uint8 is byte (reflect cannot tell them apart, and byte is what the
//     model and people write);
//   - every interface type is any: its slot is two words whatever its
//     methods;
//   - a type that refers to itself (type node struct{next *node}) is cut at
//     the reference: a pointer to it becomes unsafe.Pointer and any other
//     reference becomes struct{}. Both keep the size of the field that
//     refers, and the model does not follow references anyway.
func TypeString(t reflect.Type) string {
	var r renderer
	var b strings.Builder
	r.write(&b, t)
	return b.String()
}

// renderer remembers the named types being expanded, to cut recursion.
type renderer struct {
	expanding []reflect.Type
}

func (r *renderer) write(b *strings.Builder, t reflect.Type) {
	if t.Name() != "" && slices.Contains(r.expanding, t) {
		b.WriteString("struct{}")
		return
	}
	if t.Name() != "" {
		r.expanding = append(r.expanding, t)
		defer func() { r.expanding = r.expanding[:len(r.expanding)-1] }()
	}
	switch t.Kind() {
	case reflect.Uint8:
		b.WriteString("byte")
	case reflect.UnsafePointer:
		b.WriteString("unsafe.Pointer")
	case reflect.Interface:
		b.WriteString("any")
	case reflect.Array:
		b.WriteString("[" + strconv.Itoa(t.Len()) + "]")
		r.write(b, t.Elem())
	case reflect.Slice:
		b.WriteString("[]")
		r.write(b, t.Elem())
	case reflect.Pointer:
		if e := t.Elem(); e.Name() != "" && slices.Contains(r.expanding, e) {
			b.WriteString("unsafe.Pointer")
			return
		}
		b.WriteString("*")
		r.write(b, t.Elem())
	case reflect.Map:
		b.WriteString("map[")
		r.write(b, t.Key())
		b.WriteString("]")
		r.write(b, t.Elem())
	case reflect.Chan:
		r.writeChan(b, t)
	case reflect.Func:
		r.writeFunc(b, t)
	case reflect.Struct:
		r.writeStruct(b, t)
	default: // bool, string, the other numeric kinds: the kind is the Go name
		b.WriteString(t.Kind().String())
	}
}

func (r *renderer) writeChan(b *strings.Builder, t reflect.Type) {
	switch t.ChanDir() {
	case reflect.RecvDir:
		b.WriteString("<-chan ")
	case reflect.SendDir:
		b.WriteString("chan<- ")
	default:
		b.WriteString("chan ")
	}
	// "chan <-chan int" would parse as "chan<- chan int": parenthesise.
	e := t.Elem()
	paren := t.ChanDir() == reflect.BothDir && e.Kind() == reflect.Chan && e.ChanDir() == reflect.RecvDir
	if paren {
		b.WriteString("(")
	}
	r.write(b, e)
	if paren {
		b.WriteString(")")
	}
}

func (r *renderer) writeFunc(b *strings.Builder, t reflect.Type) {
	b.WriteString("func(")
	for i := range t.NumIn() {
		if i > 0 {
			b.WriteString(", ")
		}
		if t.IsVariadic() && i == t.NumIn()-1 {
			b.WriteString("...")
			r.write(b, t.In(i).Elem())
			continue
		}
		r.write(b, t.In(i))
	}
	b.WriteString(")")
	switch t.NumOut() {
	case 0:
	case 1:
		b.WriteString(" ")
		r.write(b, t.Out(0))
	default:
		b.WriteString(" (")
		for i := range t.NumOut() {
			if i > 0 {
				b.WriteString(", ")
			}
			r.write(b, t.Out(i))
		}
		b.WriteString(")")
	}
}

func (r *renderer) writeStruct(b *strings.Builder, t reflect.Type) {
	b.WriteString("struct{")
	for i := range t.NumField() {
		if i > 0 {
			b.WriteString("; ")
		}
		f := t.Field(i)
		b.WriteString(f.Name + " ")
		r.write(b, f.Type)
	}
	b.WriteString("}")
}
