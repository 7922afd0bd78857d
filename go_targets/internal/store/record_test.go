package store

import "testing"

// TestVersionCountsWrites checks that both record patterns count writes the
// same way, so ifacemap and structmap differ only in where the record lives.
func TestVersionCountsWrites(t *testing.T) {
	iface, inline := newIfaceMap[int64](), newStructMap[int64]()
	for i := range int64(3) {
		iface.Store("k", i)
		inline.Store("k", i)
	}
	if got := iface.m["k"].(record[int64]); got != (record[int64]{Value: 2, Version: 3}) {
		t.Errorf("ifacemap record = %+v, want {2 3}", got)
	}
	if got := inline.m["k"]; got != (record[int64]{Value: 2, Version: 3}) {
		t.Errorf("structmap record = %+v, want {2 3}", got)
	}
	iface.Delete("k")
	inline.Delete("k")
	iface.Store("k", 9)
	inline.Store("k", 9)
	if iface.m["k"].(record[int64]).Version != 1 || inline.m["k"].Version != 1 {
		t.Error("a key stored again after Delete should start over at version 1")
	}
}
