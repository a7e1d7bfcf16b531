// Command load measures the function against the minimal reference server, side by side on
// loopback, as Cloud Run runs them: K_SERVICE and its siblings set, stdout and stderr into pipes
// that are drained. It reports throughput, CPU per request and latency under wrk for each
// request form, cold start (exec → first 200) and peak RSS. A third server, the platform floor
// (the reference with -as-function: served by the Functions Framework, reading its body),
// separates what the platform costs any function from what the function's own work costs.
// The binaries run unmodified; Google's key endpoint (and Secret Manager, for -coldstart) is the
// stand-in in internal/standin, reached through HTTPS_PROXY. Figures are medians with their
// range over rounds whose order rotates; ratios are taken within each round, then their median.
//
//	go run ./bench/load -function bin/function -reference bin/reference
//	go run ./bench/load -function bin/function -coldstart 200ms
package main

import (
	"bufio"
	"bytes"
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
	functionBin  = flag.String("function", "bin/function", "the function binary as Cloud Run runs it (go build ./bench/function)")
	referenceBin = flag.String("reference", "bin/reference", "the reference binary (go build ./bench/reference)")
	rounds       = flag.Int("rounds", 5, "rounds; each runs both servers, alternating which goes first")
	duration     = flag.Duration("duration", 10*time.Second, "wrk duration of a throughput run")
	connections  = flag.Int("connections", 32, "wrk connections of a throughput run (one thread)")
	rssConns     = flag.Int("rss-connections", 256, "wrk connections of the burst before reading peak RSS")
	starts       = flag.Int("starts", 11, "cold starts of each server, interleaved")
	coldstart    = flag.Duration("coldstart", 0, "instead: delay the key endpoint and Secret Manager by this much and measure only the function's first request")
	profileDir   = flag.String("profile-dir", "", "binaries built with -tags profile: record each server's CPU profile (first form) and peak memory there, per round")
	extraEnv     []string // -function-env, repeatable
)

func init() {
	flag.Func("function-env", "`NAME=VALUE` to add to the function's environment (repeatable), e.g. LOG_LEVEL=WARNING", func(v string) error {
		if !strings.Contains(v, "=") {
			return errors.New("want NAME=VALUE")
		}
		extraEnv = append(extraEnv, v)
		return nil
	})
}

// cloudRun is what Cloud Run sets in a function's environment, besides PORT.
var cloudRun = []string{"K_SERVICE=proficient-hmac", "K_REVISION=proficient-hmac-00001",
	"K_CONFIGURATION=proficient-hmac", "FUNCTION_TARGET=ProficientHMAC"}

// warmUp is how long each form runs before it is measured.
const warmUp = 2 * time.Second

// A form is one kind of request, as a wrk script.
type form struct {
	name, script string
}

// server is one binary under test and how to configure it.
type server struct {
	name string
	bin  string
	args []string
	env  []string
}

// result is one round of one server in one form.
type result struct {
	rps, p50, p99 float64 // requests/s, latency in ms
	cpu           float64 // the server's own CPU time (user + system) per request, in µs
	errors        int     // non-2xx answers and socket errors
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
	base = append(base, cloudRun...)

	if *coldstart > 0 {
		runColdStart(google, base, token)
		return
	}
	forms, err := wrkScripts(token)
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		for _, f := range forms {
			os.Remove(f.script)
		}
	}()
	referenceEnv := append(slices.Clone(base), "PROFICIENT_HMAC_SECRET="+secret)
	functionEnv := append(slices.Clone(referenceEnv), extraEnv...)
	servers := []server{
		{"function", *functionBin, nil, functionEnv},
		{"reference", *referenceBin, nil, referenceEnv},
		{"floor", *referenceBin, []string{"-as-function"}, referenceEnv},
	}
	results := map[string]map[string][]result{} // server, form
	rss, coldStarts := map[string][]float64{}, map[string][]float64{}
	for round := range *rounds {
		// Each round starts with the next server, so each goes first, second and third in turn.
		order := append(slices.Clone(servers[round%len(servers):]), servers[:round%len(servers)]...)
		for _, s := range order {
			if *profileDir != "" { // see internal/benchprofile
				name := filepath.Join(*profileDir, fmt.Sprintf("%s-%d", s.name, round+1))
				s.env = append(slices.Clone(s.env), "CPU_PROFILE="+name+".prof", "MEMSTATS="+name+".mem",
					fmt.Sprintf("CPU_PROFILE_SECONDS=%.0f", (warmUp+*duration).Seconds()))
			}
			byForm, peak, err := measure(s, token, forms)
			if err != nil {
				log.Fatalf("%s: %v", s.name, err)
			}
			if results[s.name] == nil {
				results[s.name] = map[string][]result{}
			}
			for _, f := range forms {
				r := byForm[f.name]
				log.Printf("round %d %-9s %-15s %8.0f req/s  %5.1f µs CPU/req  p50 %.2f ms  p99 %.2f ms  errors %d",
					round+1, s.name, f.name, r.rps, r.cpu, r.p50, r.p99, r.errors)
				results[s.name][f.name] = append(results[s.name][f.name], r)
			}
			log.Printf("round %d %-9s peak RSS %.1f MiB", round+1, s.name, peak)
			rss[s.name] = append(rss[s.name], peak)
		}
	}
	for range *starts {
		for _, s := range servers[:2] {
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
	printTable(forms, results, rss, coldStarts)
}

// start runs s on port with its stdout and stderr on pipes that are drained, as Cloud Run's
// logging agent drains them.
func start(s server, port int) (*exec.Cmd, error) {
	cmd := exec.Command(s.bin, s.args...)
	cmd.Env = append(slices.Clone(s.env), "PORT="+strconv.Itoa(port))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go io.Copy(io.Discard, stdout)
	go io.Copy(io.Discard, stderr)
	return cmd, nil
}

func stop(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
}

// measure starts s, loads it with wrk in each form, bursts it for peak RSS and stops it.
func measure(s server, token string, forms []form) (map[string]result, float64, error) {
	port, err := freePort()
	if err != nil {
		return nil, 0, err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	cmd, err := start(s, port)
	if err != nil {
		return nil, 0, err
	}
	defer stop(cmd)
	if err := waitFor200(url, token, 20*time.Second); err != nil {
		return nil, 0, err
	}
	results := map[string]result{}
	for _, f := range forms {
		if _, err := wrk(url, f.script, *connections, warmUp); err != nil {
			return nil, 0, err
		}
		cpuBefore, err := cpuTime(cmd.Process.Pid)
		if err != nil {
			return nil, 0, err
		}
		out, err := wrk(url, f.script, *connections, *duration)
		if err != nil {
			return nil, 0, err
		}
		cpuAfter, err := cpuTime(cmd.Process.Pid)
		if err != nil {
			return nil, 0, err
		}
		var r result
		if r.rps, r.p50, r.p99, r.errors, err = parseWrk(out); err != nil {
			return nil, 0, err
		}
		r.cpu = float64((cpuAfter - cpuBefore).Microseconds()) / (r.rps * duration.Seconds())
		results[f.name] = r
	}
	if _, err := wrk(url, forms[0].script, *rssConns, 3*time.Second); err != nil {
		return nil, 0, err
	}
	peak, err := peakRSS(cmd.Process.Pid)
	return results, peak, err
}

// coldStart is the time from exec to the first 200, in ms.
func coldStart(s server, token string) (float64, error) {
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	begin := time.Now()
	cmd, err := start(s, port)
	if err != nil {
		return 0, err
	}
	defer stop(cmd)
	if err := waitFor200(fmt.Sprintf("http://127.0.0.1:%d/", port), token, 20*time.Second); err != nil {
		return 0, err
	}
	return ms(time.Since(begin)), nil
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

// wrkScripts are the request forms measured, each as a browser sends it through Cloud Run:
// a callable POST (httpsCallable), a REST GET with a body (Proficient's example client), and
// a streaming callable (.stream()).
func wrkScripts(token string) ([]form, error) {
	common := fmt.Sprintf(`wrk.headers["Authorization"] = "Bearer %s"
wrk.headers["Origin"] = "https://app.example.com"
wrk.headers["X-Cloud-Trace-Context"] = "105445aa7843bc8bf206b12000100000/1;o=1"
`, token)
	forms := []form{
		{name: "callable POST", script: `wrk.method = "POST"
wrk.body = '{"data":null}'
wrk.headers["Content-Type"] = "application/json"
`},
		{name: "REST GET", script: `wrk.method = "GET"
wrk.body = '{"userExternalId":"` + uid + `"}'
wrk.headers["Content-Type"] = "application/json"
`},
		{name: "stream POST", script: `wrk.method = "POST"
wrk.body = '{"data":null}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "text/event-stream"
`},
	}
	for i, f := range forms {
		file, err := os.CreateTemp("", "wrk-*.lua")
		if err != nil {
			return nil, err
		}
		_, err = file.WriteString(f.script + common)
		file.Close()
		if err != nil {
			return nil, err
		}
		forms[i].script = file.Name()
	}
	return forms, nil
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

// cpuTime is the CPU time (user + system) a process has used, from /proc/PID/stat, whose
// fields 14 and 15 count it in clock ticks (USER_HZ, 100 a second on Linux).
func cpuTime(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces; count from after it.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	user, err1 := strconv.ParseInt(fields[11], 10, 64)
	system, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(user+system) * (time.Second / 100), nil
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

func printTable(forms []form, results map[string]map[string][]result, rss, coldStarts map[string][]float64) {
	fmt.Printf("\nproduction mode (K_SERVICE set, stdout and stderr on drained pipes); wrk -t1 -c%d -d%v;\n", *connections, *duration)
	fmt.Printf("median (min–max) of %d rounds, the order rotating; a ratio is the median of each round's ratio.\n", *rounds)
	fmt.Println("floor: the reference served by the Functions Framework, reading its body (-as-function)")
	if len(extraEnv) > 0 {
		fmt.Printf("the function's environment adds %s\n", strings.Join(extraEnv, " "))
	}
	fmt.Println()
	fmt.Println("| | function | reference | floor | function ÷ reference | function ÷ floor |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: |")
	metrics := []struct {
		name, format string
		get          func(result) float64
	}{
		{"throughput (req/s)", "%.0f", func(r result) float64 { return r.rps }},
		{"CPU per request (µs)", "%.1f", func(r result) float64 { return r.cpu }},
		{"latency p50 (ms)", "%.2f", func(r result) float64 { return r.p50 }},
		{"latency p99 (ms)", "%.2f", func(r result) float64 { return r.p99 }},
		{"errors", "%.0f", func(r result) float64 { return float64(r.errors) }},
	}
	for _, f := range forms {
		for _, m := range metrics {
			values := map[string][]float64{}
			for name, byForm := range results {
				for _, r := range byForm[f.name] {
					values[name] = append(values[name], m.get(r))
				}
			}
			row(f.name+", "+m.name, m.format, values["function"], values["reference"], values["floor"])
		}
	}
	row("peak RSS after a "+strconv.Itoa(*rssConns)+"-connection burst (MiB)", "%.1f", rss["function"], rss["reference"], rss["floor"])
	row(fmt.Sprintf("cold start, exec → first 200 (ms; %d starts each)", len(coldStarts["function"])), "%.1f",
		coldStarts["function"], coldStarts["reference"], nil)
}

// row prints one metric: each server's median and range, and the medians of the function's
// ratios to the reference and to the floor, round by round.
func row(name, format string, function, reference, floor []float64) {
	spread := func(v []float64) string {
		if len(v) == 0 {
			return "–"
		}
		return fmt.Sprintf(format+" ("+format+"–"+format+")", median(v), slices.Min(v), slices.Max(v))
	}
	fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", name, spread(function), spread(reference), spread(floor),
		ratio(function, reference), ratio(function, floor))
}

// ratio is the median (min–max) of a[i] ÷ b[i], or "–" where a pair cannot be divided.
func ratio(a, b []float64) string {
	var ratios []float64
	for i := range a {
		if i < len(b) && b[i] != 0 {
			ratios = append(ratios, a[i]/b[i])
		}
	}
	if len(ratios) == 0 || len(ratios) != len(a) {
		return "–"
	}
	return fmt.Sprintf("%.2f (%.2f–%.2f)", median(ratios), slices.Min(ratios), slices.Max(ratios))
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
