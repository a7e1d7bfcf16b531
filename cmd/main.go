// Command cmd runs the ProficientHMAC function locally with the Functions Framework.
//
//	GOOGLE_CLOUD_PROJECT=demo-proficient PROFICIENT_HMAC_SECRET=hsec_… go run ./cmd
//
// It listens on 127.0.0.1:$PORT (default 8080) unless HOST is set: against the Auth emulator
// the function trusts unsigned tokens, so a laptop must not expose it by accident.
package main

import (
	"fmt"
	"net"
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	proficienthmac "github.com/proficient-hmac/proficient-hmac" // registers ProficientHMAC
)

func main() {
	if err := proficienthmac.StartError; err != nil {
		fmt.Fprintln(os.Stderr, "proficient-hmac:", err)
		os.Exit(1)
	}
	if os.Getenv("FUNCTION_TARGET") == "" {
		os.Setenv("FUNCTION_TARGET", "ProficientHMAC")
	}
	host, port := envOr("HOST", "127.0.0.1"), envOr("PORT", "8080")
	fmt.Fprintf(os.Stderr, "proficient-hmac: serving %s on http://%s\n", os.Getenv("FUNCTION_TARGET"), net.JoinHostPort(host, port))
	if err := funcframework.StartHostPort(host, port); err != nil {
		fmt.Fprintln(os.Stderr, "proficient-hmac:", err)
		os.Exit(1)
	}
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
