package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// racyChildEnv marks the re-executed test binary that is meant to die.
const racyChildEnv = "MAPQUAKE_STORE_RACYMAP_CHILD"

// TestRacyMapDiesOnConcurrentWrites shows the seed's §4.1 claim as it really
// happens: unsynchronised writers kill the process with the unrecoverable
// "fatal error: concurrent map writes" (no recover, no panic value). A fatal
// error cannot be caught in-process, so the test re-runs itself as a child
// that hammers a racymap, and checks how the child died.
//
// Under -race the race detector reports a DATA RACE first; GORACE
// halt_on_error=0 lets the child run on into the runtime's own check, which
// is what the racymap scenario relies on in production builds.
func TestRacyMapDiesOnConcurrentWrites(t *testing.T) {
	if os.Getenv(racyChildEnv) == "1" {
		hammerRacyMap(t)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestRacyMapDiesOnConcurrentWrites$", "-test.count=1")
	cmd.Env = append(os.Environ(), racyChildEnv+"=1", "GORACE=halt_on_error=0", "GOMAXPROCS=4", "GOTRACEBACK=single")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("child did not finish within 40s; output:\n%s", tail(stderr.String()))
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("child exited with %v, want it to die; output:\n%s", err, tail(stderr.String()))
	}
	t.Logf("child: %v; output starts:\n%.300s", err, stderr.String())
	if !strings.Contains(stderr.String(), "fatal error: concurrent map writes") {
		t.Fatalf("child died (%v) without %q; output:\n%s", err, "fatal error: concurrent map writes", tail(stderr.String()))
	}
}

// hammerRacyMap writes distinct keys into one racymap from several
// goroutines released together. It is bounded in writes and in time; if the
// runtime never notices, the child fails the test instead of crashing.
func hammerRacyMap(t *testing.T) {
	const writers, writesEach, limit = 8, 1 << 22, 20 * time.Second
	m := newRacyMap[int64]()
	start := make(chan struct{})
	deadline := time.Now().Add(limit)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			prefix := "w" + strconv.Itoa(w) + "-"
			<-start
			for i := range writesEach {
				if i%4096 == 0 && time.Now().After(deadline) {
					return
				}
				m.Store(prefix+strconv.Itoa(i), int64(i))
			}
		})
	}
	close(start)
	wg.Wait()
	t.Fatalf("%d writers made up to %d writes each for up to %v and the runtime never stopped them", writers, writesEach, limit)
}

// tail keeps failure messages short: the child's goroutine dump can be long.
func tail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}
