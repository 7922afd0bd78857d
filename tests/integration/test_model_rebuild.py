"""The rebuild cycle's simulation against the real runtime: a map pre-sized for N keys, churned
(insert a new key, delete the oldest) R times, its tables read through unsafe on go1.26."""

from __future__ import annotations

import statistics
import subprocess

import pytest

from orchestrator.core.errors import InfrastructureError
from orchestrator.model import swiss
from orchestrator.model.goprogram import SWISS_LAYOUT
from orchestrator.model.gotypes import parse
from orchestrator.model.measure import build
from orchestrator.model.rebuild import rebuild_cycle
from orchestrator.model.toolchains import find

pytestmark = pytest.mark.integration

ENTRIES, REBUILD_EVERY, MAPS = 25_001, 10_000, 16

CHURN = (
    r"""
package main

import (
	"fmt"
	"os"
	"strconv"
	"unsafe"
)

"""
    + SWISS_LAYOUT
    + r"""
// tables counts the distinct tables of the directory and sums their capacities.
func tables(m map[string][32]byte) (n, slots, dirLen int) {
	p := (*swissMap)(*(*unsafe.Pointer)(unsafe.Pointer(&m)))
	dir := unsafe.Slice((**swissTable)(p.dirPtr), p.dirLen)
	for i, t := range dir {
		if i == 0 || t != dir[i-1] {
			n++
			slots += int(t.capacity)
		}
	}
	return n, slots, p.dirLen
}

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	r, _ := strconv.Atoi(os.Args[2])
	maps, _ := strconv.Atoi(os.Args[3])
	keys := make([]string, n+r)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%015d", i)
	}
	for range maps {
		m := make(map[string][32]byte, n) // the store's rebuild: a map pre-sized for its live keys
		for i := 0; i < n; i++ {
			m[keys[i]] = [32]byte{1}
		}
		for j := 0; j < r; j++ {
			m[keys[n+j]] = [32]byte{2}
			if j < r-1 {
				delete(m, keys[j]) // the R-th delete would rebuild
			}
		}
		t, slots, d := tables(m)
		fmt.Println(t, slots, d)
	}
}
"""
)


def test_real_churned_maps_lie_in_the_simulated_cycle() -> None:
    try:
        tc = find("1.26")
    except InfrastructureError as err:
        pytest.skip(f"Go 1.26 toolchain missing: {err}")
    binary = build(CHURN, tc)
    out = subprocess.run(
        [str(binary), str(ENTRIES), str(REBUILD_EVERY), str(MAPS)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    rows = [tuple(map(int, line.split())) for line in out.splitlines()]
    assert len(rows) == MAPS
    key, elem = parse("string"), parse("[32]byte")
    cycle = rebuild_cycle("map[string][32]byte", ENTRIES, REBUILD_EVERY, go_version="1.26")
    ends = []
    for count, slots, dir_len in rows:
        assert slots == 1024 * count  # every table at its full size: growth is by splits
        ends.append(swiss.live_given_tables(key, elem, ENTRIES, dir_len=dir_len, capacities={1024: count}))
    # Every real map ends inside the predicted cycle, and on average where the simulation ends.
    assert all(cycle.start < e <= cycle.high for e in ends), (ends, cycle)
    table = swiss.live_given_tables(key, elem, 0, dir_len=1, capacities={1024: 1}) - swiss.MAP_HEADER - 8
    assert abs(statistics.fmean(ends) - cycle.end) <= 2 * table, (statistics.fmean(ends), cycle.end)
