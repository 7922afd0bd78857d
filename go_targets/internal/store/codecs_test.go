package store

import (
	"bytes"
	"errors"
	"testing"
)

func TestBytesCodecCopiesTheBody(t *testing.T) {
	raw := []byte("abc")
	v, _ := (bytesCodec{}).Decode(raw)
	raw[0] = 'X' // servers reuse request buffers
	if string(v) != "abc" {
		t.Fatalf("decoded value changed with the request buffer: %q", v)
	}
}

func TestInt64Codec(t *testing.T) {
	cases := map[string]int64{"42": 42, "-7\n": -7, " 9223372036854775807 ": 1<<63 - 1}
	for raw, want := range cases {
		got, err := (int64Codec{}).Decode([]byte(raw))
		if err != nil || got != want {
			t.Errorf("Decode(%q) = %d, %v; want %d", raw, got, err, want)
		}
	}
	if got := (int64Codec{}).Encode(-12); string(got) != "-12" {
		t.Errorf("Encode(-12) = %q", got)
	}
	for _, raw := range []string{"", "4x", "1e3", "9223372036854775808"} {
		if _, err := (int64Codec{}).Decode([]byte(raw)); !errors.Is(err, ErrBadValue) {
			t.Errorf("Decode(%q) error = %v, want ErrBadValue", raw, err)
		}
	}
}

func TestArrayCodecPadsAndTruncates(t *testing.T) {
	short, _ := bytes8Codec.Decode([]byte("abc"))
	if want := [8]byte{'a', 'b', 'c'}; short != want {
		t.Errorf("Decode(short) = %v, want zero-padded %v", short, want)
	}
	long, _ := bytes8Codec.Decode([]byte("0123456789"))
	if got := bytes8Codec.Encode(long); !bytes.Equal(got, []byte("01234567")) {
		t.Errorf("Encode(Decode(long)) = %q, want the first 8 bytes", got)
	}
	// Every size's name and length are checked by TestConformance, whose
	// Get must answer exactly N bytes for "[N]byte".
}
