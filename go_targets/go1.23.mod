module github.com/mapquake/mapquake/go_targets

go 1.23.0

require (
	github.com/mapquake/mapquake/mapprobe v0.0.0-00010101000000-000000000000
	github.com/prometheus/client_golang v1.22.0
	golang.org/x/net v0.35.0
	google.golang.org/grpc v1.72.2
	google.golang.org/protobuf v1.36.6
)

require (
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/kylelemons/godebug v1.1.0 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/prometheus/client_model v0.6.1 // indirect
	github.com/prometheus/common v0.62.0 // indirect
	github.com/prometheus/procfs v0.15.1 // indirect
	golang.org/x/sys v0.30.0 // indirect
	golang.org/x/text v0.22.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20250218202821-56aae31c358a // indirect
)

// mapprobe is its own module (so services can require it alone); built from this checkout.
replace github.com/mapquake/mapquake/mapprobe => ../mapprobe
