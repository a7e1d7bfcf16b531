//go:build profile

package main

import (
	"fmt"
	"os"
	"runtime"
	"time"
)

// With -tags profile, MEMSTATS=FILE keeps in FILE the heap and goroutine stacks in use at their
// peak (sampled every 20 ms), to see what a load run's resident memory is made of.
func init() {
	path := os.Getenv("MEMSTATS")
	if path == "" {
		return
	}
	go func() {
		var peak runtime.MemStats
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse+m.StackInuse > peak.HeapInuse+peak.StackInuse {
				peak = m
			}
			s := fmt.Sprintf("heapInuse %d stackInuse %d nextgc %d\n", peak.HeapInuse>>10, peak.StackInuse>>10, peak.NextGC>>10)
			os.WriteFile(path+".tmp", []byte(s), 0o644)
			os.Rename(path+".tmp", path)
			time.Sleep(20 * time.Millisecond)
		}
	}()
}
