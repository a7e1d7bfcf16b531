// Command cmd runs the ProficientHMAC function locally.
//
//	GOOGLE_CLOUD_PROJECT=demo-proficient PROFICIENT_HMAC_SECRET=hsec_… go run ./cmd
//
// It listens on 127.0.0.1:$PORT (default 8080) unless HOST is set: against the Auth emulator
// the function trusts unsigned tokens, so a laptop must not expose it by accident. It serves
// the function as registered with the Functions Framework, at every path as the framework does
// for FUNCTION_TARGET, but from a server of its own: the framework's Start takes no timeouts,
// and a local runner must not keep idle or trickling connections open for ever. On Cloud Run
// the framework's own server runs it (see deploy/).
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	proficienthmac "github.com/proficient-hmac/proficient-hmac" // registers ProficientHMAC
)

func main() {
	if err := proficienthmac.StartError; err != nil {
		fail(err.Error())
	}
	host, port := envOr("HOST", "127.0.0.1"), envOr("PORT", "8080")
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		fail(fmt.Sprintf("PORT is %.20q, which is not a port number; set it to one from 1 to 65535, or unset it for 8080", port))
	}
	addr := net.JoinHostPort(host, port)
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		fail(fmt.Sprintf("cannot listen on %s (%v); set PORT to a free port", addr, err))
	}
	fmt.Fprintf(os.Stderr, "proficient-hmac: serving ProficientHMAC on http://%s\n", addr)
	server := &http.Server{
		Handler:           proficienthmac.Handler,
		ReadHeaderTimeout: 5 * time.Second,  // a client that trickles its headers
		IdleTimeout:       10 * time.Second, // a kept-alive connection with no next request
	}
	fail(server.Serve(listener).Error())
}

// fail stops the runner with one line that names what to fix.
func fail(problem string) {
	fmt.Fprintln(os.Stderr, "proficient-hmac:", problem)
	os.Exit(1)
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
