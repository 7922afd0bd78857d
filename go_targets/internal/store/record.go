package store

// record is the value ifacemap and structmap keep per key: the value plus a
// version that counts writes (1 on create, +1 per overwrite). The version is
// what makes the value a struct, as in the seed's §2.4 example of
// map[string]interface{} holding small records.
type record[V any] struct {
	Value   V
	Version uint64
}

// recordGoType spells record[V] for the model, field names included.
func recordGoType(value string) string {
	return "struct{Value " + value + "; Version uint64}"
}
