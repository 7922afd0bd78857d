// Command mapload is mapquake's native Go load generator, the
// physical-limit baseline for the Python (Locust) workloads. It writes keys
// to one maptarget and prints one JSON summary on stdout.
//
//	mapload --addr HOST:PORT [--allow LIST] [--protocol grpc|http] [--ops N]
//	        [--duration D] [--keys sequential|uniform|zipf] [--key-space K]
//	        [--zipf-s S] [--key-prefix P] [--concurrency C] [--batch B]
//	        [--stream] [--value-size S] [--seed N] [--request-timeout D]
//	        [--allow-errors]
//
// Every run is bounded: it stops after --ops writes or --duration (default
// 60s), whichever comes first. It refuses any --addr outside the address
// allow-list: loopback, plus what --allow lists, a comma-separated list of
// CIDR networks, IP addresses and exact host names that the run created
// (mapquake passes its backend's list, e.g. --allow 198.18.0.0/15 for the
// local backend's namespaces). A listed name is dialled as it is; any other
// name is resolved and every address it resolves to must be allowed.
// Key naming and distributions: see internal/loadgen.
//
// Exit status: 0 done without errors; 1 some requests failed (unless
// --allow-errors; the summary is printed either way); 2 bad flags or a
// refused address.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mapquake/mapquake/go_targets/internal/loadgen"
)

const name = "mapload"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c loadgen.Config
	var allowErrors bool
	var allow string
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.Addr, "addr", "", "target address HOST:PORT: the gRPC or HTTP address of a maptarget (required)")
	fs.StringVar(&allow, "allow", "", "comma-separated CIDR networks, IPs and exact host names --addr may be on,\n"+
		"besides loopback (always allowed); e.g. 198.18.0.0/15,cache-0.mq-run.svc (default: loopback only)")
	fs.StringVar(&c.Protocol, "protocol", "grpc", "grpc or http")
	fs.Int64Var(&c.Ops, "ops", 100000, "writes to send")
	fs.DurationVar(&c.Duration, "duration", 60*time.Second, "stop after this long even if --ops are not all sent")
	fs.StringVar(&c.Keys, "keys", loadgen.Sequential, "key distribution: sequential, uniform or zipf")
	fs.Int64Var(&c.KeySpace, "key-space", 100000, "number of distinct keys (key i is named <key-prefix><i>)")
	fs.Float64Var(&c.ZipfS, "zipf-s", 1.1, "zipf exponent s (> 1)")
	fs.StringVar(&c.KeyPrefix, "key-prefix", "k", "key name prefix")
	fs.IntVar(&c.Concurrency, "concurrency", 4, "workers, each with its own connection")
	fs.IntVar(&c.Batch, "batch", 1, "writes per request (grpc BatchPut; http allows only 1)")
	fs.BoolVar(&c.Stream, "stream", false, "grpc: send each batch as one PutStream instead of BatchPut")
	fs.IntVar(&c.ValueSize, "value-size", 32, "value bytes (ASCII digits; an int64 store needs ≤ 18)")
	fs.Uint64Var(&c.Seed, "seed", 1, "seed for uniform and zipf keys")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", 10*time.Second, "timeout of one request")
	fs.BoolVar(&allowErrors, "allow-errors", false, "exit 0 even if some requests failed")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "usage: %s --addr HOST:PORT [flags]\n\n", name)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0
		}
		msg := strings.ReplaceAll(err.Error(), "flag -", "flag --")
		msg = strings.Replace(msg, "flag provided but not defined: -", "unknown flag --", 1)
		fmt.Fprintf(stderr, "%s: %s (see --help)\n", name, msg)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q (all options are --flags)\n", name, fs.Arg(0))
		return 2
	}
	if c.Addr == "" {
		fmt.Fprintf(stderr, "%s: --addr is required (a maptarget's gRPC or HTTP HOST:PORT on the --allow list)\n", name)
		return 2
	}
	var err error
	if c.Allow, err = loadgen.ParseAllowList(allow); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	s, err := loadgen.Run(ctx, c)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	out, _ := json.Marshal(s)
	fmt.Fprintln(stdout, string(out))
	if s.Errors > 0 && !allowErrors {
		fmt.Fprintf(stderr, "%s: %d of %d requests failed; first error: %s\n", name, s.Errors, s.Requests, s.FirstError)
		return 1
	}
	return 0
}
