package store

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrBadValue is returned by Store.Put when the body cannot be decoded into
// the store's value type (today only "int64" can reject a body). Servers map
// it to a client error (HTTP 400, gRPC InvalidArgument).
var ErrBadValue = errors.New("bad value")

// bytesCodec stores the body as a []byte. Decode copies, because servers hand
// over request buffers they reuse; Encode returns the stored slice, which the
// caller must not modify.
type bytesCodec struct{}

func (bytesCodec) Decode(raw []byte) ([]byte, error) { return append([]byte(nil), raw...), nil }
func (bytesCodec) Encode(v []byte) []byte            { return v }
func (bytesCodec) GoType() string                    { return "[]byte" }

// stringCodec stores the body as a string (the conversion copies it).
type stringCodec struct{}

func (stringCodec) Decode(raw []byte) (string, error) { return string(raw), nil }
func (stringCodec) Encode(v string) []byte            { return []byte(v) }
func (stringCodec) GoType() string                    { return "string" }

// int64Codec reads and writes the value as decimal text, so curl users and
// Locust workloads can send "42" and read it back. Surrounding whitespace
// (a trailing newline from a shell) is ignored.
type int64Codec struct{}

func (int64Codec) Decode(raw []byte) (int64, error) {
	text := strings.TrimSpace(string(raw))
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		if len(text) > 32 {
			text = text[:32] + "..."
		}
		return 0, fmt.Errorf("%w: int64 store wants a decimal integer body, got %q", ErrBadValue, text)
	}
	return n, nil
}
func (int64Codec) Encode(v int64) []byte { return strconv.AppendInt(nil, v, 10) }
func (int64Codec) GoType() string        { return "int64" }

// arrayCodec stores the body in a fixed-size byte array A, the seed's §4.3
// workload: values stored inline in the map's slots. Short bodies are
// zero-padded and long ones truncated, so any load generator can drive any
// array size. view exposes A as a slice; Go generics cannot slice a type
// parameter ranging over several array types, hence the function.
type arrayCodec[A any] struct {
	name string
	view func(*A) []byte
}

func (c arrayCodec[A]) Decode(raw []byte) (A, error) {
	var a A
	copy(c.view(&a), raw)
	return a, nil
}

func (c arrayCodec[A]) Encode(v A) []byte { return c.view(&v) }
func (c arrayCodec[A]) GoType() string    { return c.name }

// The array codecs New accepts, one per size in ValueTypes.
var (
	bytes8Codec   = arrayCodec[[8]byte]{"[8]byte", func(a *[8]byte) []byte { return a[:] }}
	bytes16Codec  = arrayCodec[[16]byte]{"[16]byte", func(a *[16]byte) []byte { return a[:] }}
	bytes32Codec  = arrayCodec[[32]byte]{"[32]byte", func(a *[32]byte) []byte { return a[:] }}
	bytes64Codec  = arrayCodec[[64]byte]{"[64]byte", func(a *[64]byte) []byte { return a[:] }}
	bytes128Codec = arrayCodec[[128]byte]{"[128]byte", func(a *[128]byte) []byte { return a[:] }}
	bytes256Codec = arrayCodec[[256]byte]{"[256]byte", func(a *[256]byte) []byte { return a[:] }}
)
