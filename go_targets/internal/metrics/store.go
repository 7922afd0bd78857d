package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mapquake/mapquake/mapprobe"
)

// StoreInfo describes the served container for mapquake_store_info.
type StoreInfo struct {
	GoType    string
	KeyType   string
	ValueType string
}

// RegisterStore exports the store's size through mapprobe, the same
// series services that import mapprobe get: mapquake_store_entries,
// mapquake_store_high_water_entries and mapquake_store_info. entries and
// highWater are called at scrape time and must be safe for concurrent use.
func RegisterStore(reg prometheus.Registerer, entries, highWater func() int, info StoreInfo) error {
	return mapprobe.RegisterShape(reg, entries,
		mapprobe.Shape{GoType: info.GoType, KeyType: info.KeyType, ValueType: info.ValueType},
		mapprobe.WithHighWater(highWater))
}
