//go:build profile

package main

// Built with -tags profile, the binary records its CPU profile and peak memory when the
// environment asks (CPU_PROFILE, MEMSTATS): see internal/benchprofile.
import _ "github.com/proficient-hmac/proficient-hmac/internal/benchprofile"
