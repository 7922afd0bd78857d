package mapprobe

import "github.com/prometheus/client_golang/prometheus"

// The metric descriptions are shared with mapquake's own maptarget, so a
// dashboard or check written against one works on the other.
var (
	entriesDesc = prometheus.NewDesc("mapquake_store_entries",
		"Live entries in the store.", nil, nil)
	highWaterDesc = prometheus.NewDesc("mapquake_store_high_water_entries",
		"Most entries the store has held since start (maps do not shrink).", nil, nil)
	infoDesc = prometheus.NewDesc("mapquake_store_info",
		"Always 1; labels give the container's Go type in the reference model's syntax.",
		[]string{"go_type", "key_type", "value_type"}, nil)
)

// collector is one registered map. All its series go into one Collector so
// that registering a map either fully succeeds or changes nothing.
type collector struct {
	length    func() int
	highWater func() int // nil: no high-water series
	shape     Shape
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- entriesDesc
	if c.highWater != nil {
		ch <- highWaterDesc
	}
	ch <- infoDesc
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(entriesDesc, prometheus.GaugeValue, float64(c.length()))
	if c.highWater != nil {
		ch <- prometheus.MustNewConstMetric(highWaterDesc, prometheus.GaugeValue, float64(c.highWater()))
	}
	ch <- prometheus.MustNewConstMetric(infoDesc, prometheus.GaugeValue, 1,
		c.shape.GoType, c.shape.KeyType, c.shape.ValueType)
}
