// Package benchprofile records, in a binary built with -tags profile, what a load run costs it:
// importing it (bench/function and bench/reference do, under that tag) reads two variables.
//
//   - CPU_PROFILE=FILE: a CPU profile of the running process for CPU_PROFILE_SECONDS
//     (default 10), to see where the time of a load run goes.
//   - MEMSTATS=FILE: the heap and the goroutine stacks in use at their peak (sampled every
//     20 ms), rewritten as they grow, to see what the resident memory is made of.
package benchprofile

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"
)

func init() {
	if path := os.Getenv("CPU_PROFILE"); path != "" {
		startCPUProfile(path)
	}
	if path := os.Getenv("MEMSTATS"); path != "" {
		go recordPeakMemory(path)
	}
}

func startCPUProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		panic(err)
	}
	seconds, err := time.ParseDuration(os.Getenv("CPU_PROFILE_SECONDS") + "s")
	if err != nil {
		seconds = 10 * time.Second
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		panic(err)
	}
	time.AfterFunc(seconds, func() {
		pprof.StopCPUProfile()
		f.Close()
	})
}

// recordPeakMemory keeps in path the sample with the most heap and stack in use. The file is
// replaced by a rename, so a process stopped at any moment leaves a whole line.
func recordPeakMemory(path string) {
	var peak runtime.MemStats
	for {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		if m.HeapInuse+m.StackInuse > peak.HeapInuse+peak.StackInuse {
			peak = m
			line := fmt.Sprintf("heap in use %d KiB, stacks in use %d KiB, next GC at %d KiB\n",
				peak.HeapInuse>>10, peak.StackInuse>>10, peak.NextGC>>10)
			if os.WriteFile(path+".tmp", []byte(line), 0o644) == nil {
				os.Rename(path+".tmp", path)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}
