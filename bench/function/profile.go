//go:build profile

package main

import (
	"os"
	"runtime/pprof"
	"time"
)

// With -tags profile, CPU_PROFILE=FILE records a CPU profile of the running function for
// CPU_PROFILE_SECONDS (default 10), to see where a load run's time goes.
func init() {
	path := os.Getenv("CPU_PROFILE")
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		panic(err)
	}
	seconds, err := time.ParseDuration(os.Getenv("CPU_PROFILE_SECONDS") + "s")
	if err != nil {
		seconds = 10 * time.Second
	}
	pprof.StartCPUProfile(f)
	time.AfterFunc(seconds, func() {
		pprof.StopCPUProfile()
		f.Close()
	})
}
