package mapprobe

import (
	"runtime/metrics"

	"github.com/prometheus/client_golang/prometheus"
)

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
	heapLiveDesc = prometheus.NewDesc(heapLiveName,
		"Heap bytes marked live by the last garbage collection (runtime/metrics /gc/heap/live:bytes), read at scrape time.",
		nil, nil)
	heapGoalDesc = prometheus.NewDesc(heapGoalName,
		"The heap size the garbage collector aims to finish its next cycle by (runtime/metrics /gc/heap/goal:bytes), read at scrape time. The live heap's mark counts what was allocated while marking, up to this goal: goal minus live bounds how far a figure from the last GC can be off.",
		nil, nil)
	ownedBytesDesc = prometheus.NewDesc(ownedBytesName,
		"Mean heap bytes a sampled entry's key or value owns beyond what the container's type prices (string bytes, backing arrays, pointees, boxes), each object rounded to its allocator size class and counted once per sample.",
		[]string{"part"}, nil)
	ownedSampledDesc = prometheus.NewDesc(ownedSampledName,
		"Entries the last owned-bytes sample measured (0: the map was empty).", nil, nil)
	ownedUnmeasuredDesc = prometheus.NewDesc(ownedUnmeasuredName,
		"References in the last owned-bytes sample that were not followed (maps, chans, funcs, unsafe.Pointers, objects deeper than the walk goes), by reason.",
		[]string{"reason"}, nil)
)

// collector is one registered map. All its series go into one Collector so
// that registering a map either fully succeeds or changes nothing.
type collector struct {
	length    func() int
	highWater func() int // nil: no high-water series
	shape     Shape
	entries   *entrySampler // nil: no owned-bytes series
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- entriesDesc
	if c.highWater != nil {
		ch <- highWaterDesc
	}
	ch <- infoDesc
	ch <- heapLiveDesc
	ch <- heapGoalDesc
	if c.entries != nil {
		ch <- ownedBytesDesc
		ch <- ownedSampledDesc
		ch <- ownedUnmeasuredDesc
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(entriesDesc, prometheus.GaugeValue, float64(c.length()))
	if c.highWater != nil {
		ch <- prometheus.MustNewConstMetric(highWaterDesc, prometheus.GaugeValue, float64(c.highWater()))
	}
	ch <- prometheus.MustNewConstMetric(infoDesc, prometheus.GaugeValue, 1,
		c.shape.GoType, c.shape.KeyType, c.shape.ValueType)
	// Every registration exports the live heap, so a service whose Go
	// collector does not (client_golang's default NewGoCollector() has no
	// go_gc_heap_live_bytes) still gives mapquake a live-heap sample rather
	// than heap_alloc, which counts garbage too. Several maps export the same
	// value under their own labels.
	// The goal rides along: objects allocated while the last cycle marked
	// were counted live, up to the goal, so the comparator takes goal minus
	// live as this figure's own uncertainty.
	heap := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/goal:bytes"}}
	metrics.Read(heap)
	for i, desc := range []*prometheus.Desc{heapLiveDesc, heapGoalDesc} {
		if heap[i].Value.Kind() == metrics.KindUint64 {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(heap[i].Value.Uint64()))
		}
	}
	if c.entries != nil {
		s := c.entries.sample()
		ch <- prometheus.MustNewConstMetric(ownedBytesDesc, prometheus.GaugeValue, s.perEntry(keyPart), "key")
		ch <- prometheus.MustNewConstMetric(ownedBytesDesc, prometheus.GaugeValue, s.perEntry(valuePart), "value")
		ch <- prometheus.MustNewConstMetric(ownedSampledDesc, prometheus.GaugeValue, float64(s.sampled))
		for _, reason := range s.unmeasuredReasons() {
			ch <- prometheus.MustNewConstMetric(ownedUnmeasuredDesc, prometheus.GaugeValue, float64(s.unmeasured[reason]), reason)
		}
	}
}
