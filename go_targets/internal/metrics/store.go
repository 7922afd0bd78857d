package metrics

import "github.com/prometheus/client_golang/prometheus"

// StoreInfo describes the served container for mapquake_store_info.
type StoreInfo struct {
	GoType    string
	KeyType   string
	ValueType string
}

// RegisterStore exports the store's size: mapquake_store_entries,
// mapquake_store_high_water_entries and mapquake_store_info (the same series
// pkg/mapprobe gives services that import it). entries and highWater are
// called at scrape time and must be safe for concurrent use.
func RegisterStore(reg prometheus.Registerer, entries, highWater func() int, info StoreInfo) error {
	storeInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "mapquake_store_info",
		Help: "Always 1; labels give the container's Go type in the reference model's syntax.",
		ConstLabels: prometheus.Labels{
			"go_type":    info.GoType,
			"key_type":   info.KeyType,
			"value_type": info.ValueType,
		},
	})
	storeInfo.Set(1)
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mapquake_store_entries",
			Help: "Live entries in the store.",
		}, func() float64 { return float64(entries()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mapquake_store_high_water_entries",
			Help: "Most entries the store has held since start (maps do not shrink).",
		}, func() float64 { return float64(highWater()) }),
		storeInfo,
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
