// Command load measures the function binary against the minimal reference server, side by side
// on loopback: throughput and latency under wrk, cold start (exec → first 200) and peak RSS.
// Both binaries run unmodified; Google's key endpoint (and Secret Manager, for -coldstart) is
// the stand-in in internal/standin, reached through HTTPS_PROXY. Figures are medians over
// rounds; ratios are taken within each round, then their median.
//
//	go run ./bench/load -function bin/proficient-hmac -reference bin/reference
//	go run ./bench/load -function bin/proficient-hmac -coldstart 200ms
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/proficient-hmac/proficient-hmac/internal/standin"
)

const (
	project = "demo-bench"
	secret  = "hsec_benchmark_secret_0123456789"
	uid     = "bench0user0000000000000000AB" // 28 characters, like a Firebase UID
)

var (
	functionBin  = flag.String("function", "bin/proficient-hmac", "the function binary (go build ./cmd)")
	referenceBin = flag.String("reference", "bin/reference", "the reference binary (go build ./bench/reference)")
	rounds       = flag.Int("rounds", 5, "rounds; each runs both servers, alternating which goes first")
	duration     = flag.Duration("duration", 10*time.Second, "wrk duration of a throughput run")
	connections  = flag.Int("connections", 32, "wrk connections of a throughput run (one thread)")
	rssConns     = flag.Int("rss-connections", 256, "wrk connections of the burst before reading peak RSS")
	starts       = flag.Int("starts", 11, "cold starts of each server, interleaved")
	coldstart    = flag.Duration("coldstart", 0, "instead: delay the key endpoint and Secret Manager by this much and measure only the function's first request")
)

// server is one binary under test and how to configure it.
type server struct {
	name string
	bin  string
	env  []string
}

// result is one round of one server.
type result struct {
	rps, p50, p99 float64 // requests/s, latency in ms
	errors        int     // non-2xx answers and socket errors
	peakRSS       float64 // MiB (VmHWM)
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	google, err := standin.Start(project)
	if err != nil {
		log.Fatal(err)
	}
	defer google.Close()
	googleEnv, err := google.Env()
	if err != nil {
		log.Fatal(err)
	}
	token := google.IDToken(google.Claims(uid, nil))
	base := append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "GOOGLE_CLOUD_PROJECT=" + project}, googleEnv...)

	if *coldstart > 0 {
		runColdStart(google, base, token)
		return
	}
	script, err := wrkScript(token)
	if err != nil {
		log.Fatal(err)
	}
	defer os.Remove(script)
	servers := []server{
		{"function", *functionBin, append(slices.Clone(base), "PROFICIENT_HMAC_SECRET="+secret)},
		{"reference", *referenceBin, append(slices.Clone(base), "PROFICIENT_HMAC_SECRET="+secret)},
	}
	results, coldStarts := map[string][]result{}, map[string][]float64{}
	for round := range *rounds {
		order := servers
		if round%2 == 1 {
			order = []server{servers[1], servers[0]}
		}
		for _, s := range order {
			r, err := measure(s, token, script)
			if err != nil {
				log.Fatalf("%s: %v", s.name, err)
			}
			log.Printf("round %d %-9s %8.0f req/s  p50 %.2f ms  p99 %.2f ms  errors %d  peak RSS %.1f MiB",
				round+1, s.name, r.rps, r.p50, r.p99, r.errors, r.peakRSS)
			results[s.name] = append(results[s.name], r)
		}
	}
	for range *starts {
		for _, s := range servers {
			d, err := coldStart(s, token)
			if err != nil {
				log.Fatalf("%s: %v", s.name, err)
			}
			coldStarts[s.name] = append(coldStarts[s.name], d)
		}
	}
	if refused := google.Refused(); len(refused) > 0 {
		log.Fatalf("the proxy refused connections beyond the stand-in: %q", refused)
	}
	printTable(results["function"], results["reference"], coldStarts["function"], coldStarts["reference"])
}

// measure starts s, times its first 200, loads it with wrk, bursts it for peak RSS and stops it.
func measure(s server, token, script string) (result, error) {
	var r result
	port, err := freePort()
	if err != nil {
		return r, err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	cmd := exec.Command(s.bin)
	cmd.Env = append(slices.Clone(s.env), "PORT="+strconv.Itoa(port))
	logs, err := cmd.StderrPipe() // drained, as Cloud Run's logging agent drains it
	if err != nil {
		return r, err
	}
	if err := cmd.Start(); err != nil {
		return r, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	go io.Copy(io.Discard, logs)
	if err := waitFor200(url, token, 20*time.Second); err != nil {
		return r, err
	}
	if _, err := wrk(url, script, *connections, 2*time.Second); err != nil { // warm up
		return r, err
	}
	out, err := wrk(url, script, *connections, *duration)
	if err != nil {
		return r, err
	}
	if r.rps, r.p50, r.p99, r.errors, err = parseWrk(out); err != nil {
		return r, err
	}
	if _, err := wrk(url, script, *rssConns, 3*time.Second); err != nil {
		return r, err
	}
	r.peakRSS, err = peakRSS(cmd.Process.Pid)
	return r, err
}

// coldStart is the time from exec to the first 200, in ms.
func coldStart(s server, token string) (float64, error) {
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(s.bin)
	cmd.Env = append(slices.Clone(s.env), "PORT="+strconv.Itoa(port))
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	if err := waitFor200(fmt.Sprintf("http://127.0.0.1:%d/", port), token, 20*time.Second); err != nil {
		return 0, err
	}
	return ms(time.Since(start)), nil
}

// runColdStart measures the function's start against slow dependencies: exec → ready (the
// port accepts, as Cloud Run's startup probe checks), then the first user request's latency.
func runColdStart(google *standin.Google, base []string, token string) {
	google.Set(func(g *standin.Google) { g.KeysDelay, g.SecretDelay, g.Secret = *coldstart, *coldstart, secret })
	env := append(slices.Clone(base), "PROFICIENT_HMAC_SECRET_VERSION=projects/"+project+"/secrets/proficient-hmac/versions/latest")
	var ready, first, total []float64
	for range *rounds {
		port, err := freePort()
		if err != nil {
			log.Fatal(err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		cmd := exec.Command(*functionBin)
		cmd.Env = append(slices.Clone(env), "PORT="+strconv.Itoa(port))
		cmd.Stderr = os.Stderr
		start := time.Now()
		if err := cmd.Start(); err != nil {
			log.Fatal(err)
		}
		for {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				break
			}
			time.Sleep(time.Millisecond)
		}
		listening := time.Now()
		code, err := post("http://"+addr+"/", token)
		done := time.Now()
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if err != nil || code != http.StatusOK {
			log.Fatalf("first request: %d %v", code, err)
		}
		ready = append(ready, ms(listening.Sub(start)))
		first = append(first, ms(done.Sub(listening)))
		total = append(total, ms(done.Sub(start)))
	}
	fmt.Printf("key endpoint and Secret Manager each delayed %v; medians of %d starts\n\n", *coldstart, *rounds)
	fmt.Println("| exec → listening | first request after listening | exec → first 200 |")
	fmt.Println("| ---: | ---: | ---: |")
	fmt.Printf("| %.0f ms | %.0f ms | %.0f ms |\n", median(ready), median(first), median(total))
}

func waitFor200(url, token string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if code, err := post(url, token); err == nil && code == http.StatusOK {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return errors.New("no 200 within " + limit.String())
}

func post(url, token string) (int, error) {
	req, _ := http.NewRequest("POST", url, strings.NewReader(`{"data":null}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// wrkScript makes every request a callable POST from a browser, as Cloud Run forwards it.
func wrkScript(token string) (string, error) {
	f, err := os.CreateTemp("", "wrk-*.lua")
	if err != nil {
		return "", err
	}
	defer f.Close()
	_, err = fmt.Fprintf(f, `wrk.method = "POST"
wrk.body = '{"data":null}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
wrk.headers["Origin"] = "https://app.example.com"
wrk.headers["X-Cloud-Trace-Context"] = "105445aa7843bc8bf206b12000100000/1;o=1"
`, token)
	return f.Name(), err
}

func wrk(url, script string, conns int, d time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "wrk", "-t1", "-c"+strconv.Itoa(conns), "-d"+d.String(),
		"--latency", "-s", script, url).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("wrk: %v\n%s", err, out)
	}
	return string(out), nil
}

var (
	rpsLine     = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	latencyLine = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$`)
	non2xxLine  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	socketLine  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func parseWrk(out string) (rps, p50, p99 float64, errs int, err error) {
	m := rpsLine.FindStringSubmatch(out)
	if m == nil {
		return 0, 0, 0, 0, fmt.Errorf("no Requests/sec in wrk output:\n%s", out)
	}
	rps, _ = strconv.ParseFloat(m[1], 64)
	for _, l := range latencyLine.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(l[2], 64)
		v *= map[string]float64{"us": 0.001, "ms": 1, "s": 1000}[l[3]]
		if l[1] == "50" {
			p50 = v
		} else {
			p99 = v
		}
	}
	if m := non2xxLine.FindStringSubmatch(out); m != nil {
		n, _ := strconv.Atoi(m[1])
		errs += n
	}
	if m := socketLine.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(s)
			errs += n
		}
	}
	return rps, p50, p99, errs, nil
}

// peakRSS reads the process's high-water resident set size in MiB.
func peakRSS(pid int) (float64, error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if rest, ok := strings.CutPrefix(scanner.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no VmHWM")
}

func printTable(function, reference []result, functionStarts, referenceStarts []float64) {
	type metric struct {
		name   string
		get    func(result) float64
		format string
	}
	metrics := []metric{
		{"throughput (req/s)", func(r result) float64 { return r.rps }, "%.0f"},
		{"latency p50 (ms)", func(r result) float64 { return r.p50 }, "%.2f"},
		{"latency p99 (ms)", func(r result) float64 { return r.p99 }, "%.2f"},
		{"errors", func(r result) float64 { return float64(r.errors) }, "%.0f"},
		{"peak RSS (MiB)", func(r result) float64 { return r.peakRSS }, "%.1f"},
	}
	fmt.Printf("\nwrk -t1 -c%d -d%v, callable POSTs with a signed RS256 token; medians of %d rounds\n\n", *connections, *duration, len(function))
	fmt.Println("| | function | reference | function ÷ reference |")
	fmt.Println("| --- | ---: | ---: | ---: |")
	for _, m := range metrics {
		var f, r, ratios []float64
		for i := range function {
			f, r = append(f, m.get(function[i])), append(r, m.get(reference[i]))
			if m.get(reference[i]) != 0 {
				ratios = append(ratios, m.get(function[i])/m.get(reference[i]))
			}
		}
		ratio := "–"
		if len(ratios) == len(function) {
			ratio = fmt.Sprintf("%.2f", median(ratios))
		}
		fmt.Printf("| %s | "+m.format+" | "+m.format+" | %s |\n", m.name, median(f), median(r), ratio)
	}
	f, r := median(functionStarts), median(referenceStarts)
	fmt.Printf("| cold start, exec → first 200 (ms; %d starts each) | %.1f | %.1f | %.2f |\n", len(functionStarts), f, r, f/r)
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
