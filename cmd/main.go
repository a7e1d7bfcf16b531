// The local runner: serves the ProficientHMAC function on this machine.
//
//	GOOGLE_CLOUD_PROJECT=demo-proficient PROFICIENT_HMAC_SECRET=hsec_… go run ./cmd
//
// It listens on 127.0.0.1:$PORT (default 8080) unless HOST is set: against the Auth emulator the
// function trusts unsigned tokens, so a laptop must not expose it by accident.
//
// It answers as the deployed function does: Cloud Run runs the main the Go buildpack generates
// (bench/function), whose funcframework.Start puts the function on an http.ServeMux at "/", and
// that mux answers some requests itself (an unclean path such as /api//x gets a 307). The same
// mux serves here. What the framework adds around the function shows in no answer here (a deadline
// from CLOUD_RUN_TIMEOUT_SECONDS, which only Cloud Run sets; IDs in the request's context; a 500
// on a panic, which no request causes), and TestRunnerAnswersAsTheDeployedBuild holds the two to
// the same answers. Only the server differs: this one has socket timeouts (the framework's Start
// takes none), and on SIGTERM it stops accepting while the function drains what it accepted.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	proficienthmac "github.com/proficient-hmac/proficient-hmac" // registers ProficientHMAC
)

func main() {
	if err := proficienthmac.StartError; err != nil {
		fail(err.Error())
	}
	if target := envOr("FUNCTION_TARGET", "ProficientHMAC"); target != "ProficientHMAC" {
		fail(fmt.Sprintf("FUNCTION_TARGET is %.40q, but this runner serves only ProficientHMAC; unset it", target))
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
	// The function's own SIGTERM handling drains the requests accepted and then exits; closing
	// the listener first stops new connections meanwhile.
	sigterm, stopping := make(chan os.Signal, 1), make(chan struct{})
	signal.Notify(sigterm, syscall.SIGTERM)
	go func() {
		<-sigterm
		close(stopping)
		listener.Close()
	}()
	mux := http.NewServeMux() // as funcframework.Start serves FUNCTION_TARGET
	mux.Handle("/", proficienthmac.Handler)
	server := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,  // a client that trickles its headers
		IdleTimeout:       10 * time.Second, // a kept-alive connection with no next request
	}
	fmt.Fprintf(os.Stderr, "proficient-hmac: serving ProficientHMAC on http://%s\n", addr)
	err = server.Serve(listener)
	select {
	case <-stopping:
		select {} // the function exits once it has drained
	default:
		fail(err.Error())
	}
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
