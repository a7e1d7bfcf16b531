// Command load measures the function against the minimal reference server, side by side on
// loopback, as Cloud Run runs them: K_SERVICE and its siblings set, stdout and stderr into pipes
// that are drained. It reports throughput, CPU per request and latency under wrk for each
// request form, cold start (exec → first 200) and peak RSS. A third server, the platform floor
// (the reference with -as-function: served by the Functions Framework, reading its body),
// separates what the platform costs any function from what the function's own work costs.
// Two Node peers (bench/node: firebase-functions' onCall served by the Functions Framework,
// and Express with firebase-admin) are what a user would write instead; they are measured on
// the callable POST alone.
// The servers run unmodified; Google's key endpoint (and Secret Manager, for -coldstart) is the
// stand-in in internal/standin, reached through HTTPS_PROXY. Before it is measured, every server
// must answer the token with its HMAC and a token with a wrong signature with 401. Figures are
// medians with their range over rounds whose order rotates; ratios are taken within each round,
// then their median.
//
//	go run ./bench/load -function bin/function -reference bin/reference -node bench/node
//	go run ./bench/load -function bin/function -coldstart 200ms
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
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
	nodeDir      = flag.String("node", "", "the Node peers' package (bench/node, after npm ci); empty leaves them out")
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
	flag.Func("function-env", "`NAME=VALUE` to add to the function's environment (repeatable), e.g. LOG_LEVEL=WARNING; a PROFICIENT_HMAC_SECRET* variable replaces the secret's value", func(v string) error {
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

// server is one program under test and how to configure it.
type server struct {
	name         string
	bin          string // relative to dir, if dir is set
	args         []string
	env          []string
	dir          string
	callableOnly bool // measured in the first form alone
}

// result is one round of one server in one form.
type result struct {
	rps, p50, p99 float64 // requests/s, latency in ms
	cpu           float64 // the server's own CPU time (user + system) per request, in µs
	cpuPerOK      float64 // the same per 2xx answer: µs per HMAC, or vCPU-seconds per million
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
	forged, err := forgedToken(google)
	if err != nil {
		log.Fatal(err)
	}
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
	if slices.ContainsFunc(extraEnv, func(v string) bool { return strings.HasPrefix(v, "PROFICIENT_HMAC_SECRET") }) {
		functionEnv = append(slices.Clone(base), extraEnv...) // the secret as -function-env gives it
	}
	servers := []server{
		{name: "function", bin: *functionBin, env: functionEnv},
		{name: "reference", bin: *referenceBin, env: referenceEnv},
		{name: "floor", bin: *referenceBin, args: []string{"-as-function"}, env: referenceEnv},
	}
	if *nodeDir != "" {
		peers, err := nodePeers(*nodeDir, referenceEnv)
		if err != nil {
			log.Fatal(err)
		}
		servers = append(servers, peers...)
	}
	results, rss := runRounds(servers, forms, token, forged)
	coldStarts := map[string][]float64{}
	for range *starts {
		for _, s := range servers {
			if s.name == "floor" {
				continue
			}
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
	printTables(forms, results, rss, coldStarts)
}

// runRounds measures every server once a round, in each of its forms, and reads its peak RSS.
func runRounds(servers []server, forms []form, token, forged string) (results map[string]map[string][]result, rss map[string][]float64) {
	results, rss = map[string]map[string][]result{}, map[string][]float64{} // results by server, then form
	for round := range *rounds {
		// Each round starts with the next server, so each goes first, second, … in turn.
		order := append(slices.Clone(servers[round%len(servers):]), servers[:round%len(servers)]...)
		for _, s := range order {
			if *profileDir != "" { // see internal/benchprofile
				name := filepath.Join(*profileDir, fmt.Sprintf("%s-%d", s.name, round+1))
				s.env = append(slices.Clone(s.env), "CPU_PROFILE="+name+".prof", "MEMSTATS="+name+".mem",
					fmt.Sprintf("CPU_PROFILE_SECONDS=%.0f", (warmUp+*duration).Seconds()))
			}
			measured := forms
			if s.callableOnly {
				measured = forms[:1]
			}
			byForm, peak, err := measure(s, token, forged, measured)
			if err != nil {
				log.Fatalf("%s: %v", s.name, err)
			}
			if results[s.name] == nil {
				results[s.name] = map[string][]result{}
			}
			for _, f := range measured {
				r := byForm[f.name]
				log.Printf("round %d %-9s %-15s %8.0f req/s  %7.1f µs CPU/req  p50 %.2f ms  p99 %.2f ms  errors %d",
					round+1, s.name, f.name, r.rps, r.cpu, r.p50, r.p99, r.errors)
				results[s.name][f.name] = append(results[s.name][f.name], r)
			}
			log.Printf("round %d %-9s peak RSS %.1f MiB", round+1, s.name, peak)
			rss[s.name] = append(rss[s.name], peak)
		}
	}
	return results, rss
}

// nodePeers are what a user would deploy instead, from the package in dir, each started as
// Cloud Run starts it and preloaded with standin.js, which sends firebase-admin's fetch of
// Google's keys through HTTPS_PROXY to the stand-in.
func nodePeers(dir string, env []string) ([]server, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
		return nil, fmt.Errorf("the Node peers are not installed (make bench/node/node_modules/.package-lock.json): %v", err)
	}
	// Google's Node buildpack runs with NODE_ENV=production.
	env = append(slices.Clone(env), "NODE_ENV=production", "NODE_OPTIONS=--require "+filepath.Join(dir, "standin.js"))
	for _, kv := range env {
		if file, ok := strings.CutPrefix(kv, "SSL_CERT_FILE="); ok {
			env = append(env, "NODE_EXTRA_CA_CERTS="+file)
		}
	}
	// What firebase deploy sets for a 2nd gen function (FIREBASE_CONFIG and GCLOUD_PROJECT, the
	// target, LOG_EXECUTION_ID), and the signature type the buildpack passes the framework.
	onCallEnv := append(slices.Clone(env), `FIREBASE_CONFIG={"projectId":"`+project+`"}`, "GCLOUD_PROJECT="+project,
		"FUNCTION_TARGET=proficientHmac", "FUNCTION_SIGNATURE_TYPE=http", "LOG_EXECUTION_ID=true")
	return []server{
		{name: "onCall", bin: "node_modules/.bin/functions-framework", env: onCallEnv, dir: dir, callableOnly: true},
		{name: "Express", bin: "node", args: []string{"express.js"}, env: env, dir: dir, callableOnly: true},
	}, nil
}

// forgedToken has the claims and key ID of a good token but is signed by another key.
func forgedToken(google *standin.Google) (string, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	header := map[string]any{"alg": "RS256", "kid": standin.KID, "typ": "JWT"}
	return standin.SignJWT(key, header, google.Claims(uid, nil)), nil
}

// start runs s on port with its stdout and stderr on pipes that are drained, as Cloud Run's
// logging agent drains them.
func start(s server, port int) (*exec.Cmd, error) {
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.dir
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

// measure starts s, checks that it refuses the forged token, loads it with wrk in each form,
// bursts it for peak RSS and stops it.
func measure(s server, token, forged string, forms []form) (map[string]result, float64, error) {
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
	if err := checkTokens(url, token, forged); err != nil {
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
		var requests, non2xx int
		if r.rps, r.p50, r.p99, requests, non2xx, r.errors, err = parseWrk(out); err != nil {
			return nil, 0, err
		}
		cpu := float64((cpuAfter - cpuBefore).Microseconds())
		r.cpu = cpu / float64(requests)
		r.cpuPerOK = cpu / float64(requests-non2xx)
		results[f.name] = r
	}
	if _, err := wrk(url, forms[0].script, *rssConns, 3*time.Second); err != nil {
		return nil, 0, err
	}
	peak, err := peakRSS(cmd.Process.Pid)
	return results, peak, err
}

// checkTokens: the good token gets its HMAC, and the forged one 401, so what is measured is
// real verification of real work.
func checkTokens(url, token, forged string) error {
	if code, body, err := post(url, token); err != nil || !strings.Contains(body, `"`+wantHMAC()+`"`) {
		return fmt.Errorf("the good token: got %d %q (%v), want the HMAC of %s", code, body, err, uid)
	}
	if code, _, err := post(url, forged); err != nil || code != http.StatusUnauthorized {
		return fmt.Errorf("a token with a wrong signature: got %d (%v), want 401", code, err)
	}
	return nil
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
		code, _, err := post("http://"+addr+"/", token)
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
		if code, _, err := post(url, token); err == nil && code == http.StatusOK {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return errors.New("no 200 within " + limit.String())
}

func post(url, token string) (code int, body string, err error) {
	req, _ := http.NewRequest("POST", url, strings.NewReader(`{"data":null}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// wantHMAC is what every server must answer to the good token: the HMAC of its UID.
func wantHMAC() string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(uid))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
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
	requestsLine = regexp.MustCompile(`(\d+) requests in`)
	rpsLine      = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	latencyLine  = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$`)
	non2xxLine   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	socketLine   = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// parseWrk reads wrk's report: errs counts the non-2xx answers and the socket errors.
func parseWrk(out string) (rps, p50, p99 float64, requests, non2xx, errs int, err error) {
	m, r := requestsLine.FindStringSubmatch(out), rpsLine.FindStringSubmatch(out)
	if m == nil || r == nil {
		return 0, 0, 0, 0, 0, 0, fmt.Errorf("no requests or Requests/sec in wrk output:\n%s", out)
	}
	requests, _ = strconv.Atoi(m[1])
	rps, _ = strconv.ParseFloat(r[1], 64)
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
		non2xx, _ = strconv.Atoi(m[1])
	}
	errs = non2xx
	if m := socketLine.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(s)
			errs += n
		}
	}
	return rps, p50, p99, requests, non2xx, errs, nil
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

// metrics are the rows measured under wrk, per request form.
var metrics = []struct {
	name, format string
	get          func(result) float64
}{
	{"throughput (req/s)", "%.0f", func(r result) float64 { return r.rps }},
	{"CPU per request (µs)", "%.1f", func(r result) float64 { return r.cpu }},
	{"vCPU-seconds per million HMACs", "%.1f", func(r result) float64 { return r.cpuPerOK }},
	{"latency p50 (ms)", "%.2f", func(r result) float64 { return r.p50 }},
	{"latency p99 (ms)", "%.2f", func(r result) float64 { return r.p99 }},
	{"errors", "%.0f", func(r result) float64 { return float64(r.errors) }},
}

func printTables(forms []form, results map[string]map[string][]result, rss, coldStarts map[string][]float64) {
	fmt.Printf("\nproduction mode (K_SERVICE set, stdout and stderr on drained pipes); wrk -t1 -c%d -d%v;\n", *connections, *duration)
	fmt.Printf("median (min–max) of %d rounds, the order rotating; a ratio is the median of each round's ratio.\n", *rounds)
	fmt.Println("floor: the reference served by the Functions Framework, reading its body (-as-function)")
	if len(extraEnv) > 0 {
		fmt.Printf("the function's environment adds %s\n", strings.Join(extraEnv, " "))
	}
	goServers := table{columns: []string{"function", "reference", "floor"}, ratios: [][2]string{{"function", "reference"}, {"function", "floor"}}}
	goServers.print(forms, results, rss, coldStarts)
	if results["onCall"] == nil {
		return
	}
	fmt.Println("\nwhat a user would deploy instead, on the callable POST: firebase-functions' onCall served by the")
	fmt.Println("Functions Framework, and Express with firebase-admin (bench/node)")
	peers := table{columns: []string{"function", "reference", "onCall", "Express"}, ratios: [][2]string{{"onCall", "function"}, {"Express", "function"}}}
	peers.print(forms[:1], results, rss, coldStarts)
}

// A table has a column per server and a column per ratio between two of them.
type table struct {
	columns []string
	ratios  [][2]string
}

func (t table) print(forms []form, results map[string]map[string][]result, rss, coldStarts map[string][]float64) {
	header, rule := "| |", "| --- |"
	for _, c := range t.columns {
		header, rule = header+" "+c+" |", rule+" ---: |"
	}
	for _, r := range t.ratios {
		header, rule = header+" "+r[0]+" ÷ "+r[1]+" |", rule+" ---: |"
	}
	fmt.Printf("\n%s\n%s\n", header, rule)
	for _, f := range forms {
		for _, m := range metrics {
			values := map[string][]float64{}
			for name, byForm := range results {
				for _, r := range byForm[f.name] {
					values[name] = append(values[name], m.get(r))
				}
			}
			name := m.name
			if len(forms) > 1 {
				name = f.name + ", " + name
			}
			t.row(name, m.format, values)
		}
	}
	t.row("peak RSS after a "+strconv.Itoa(*rssConns)+"-connection burst (MiB)", "%.1f", rss)
	t.row(fmt.Sprintf("cold start, exec → first 200 (ms; %d starts each)", *starts), "%.1f", coldStarts)
}

// row prints one metric: each server's median and range, and the medians of the ratios, round
// by round.
func (t table) row(name, format string, values map[string][]float64) {
	spread := func(v []float64) string {
		if len(v) == 0 {
			return "–"
		}
		return fmt.Sprintf(format+" ("+format+"–"+format+")", median(v), slices.Min(v), slices.Max(v))
	}
	line := "| " + name + " |"
	for _, c := range t.columns {
		line += " " + spread(values[c]) + " |"
	}
	for _, r := range t.ratios {
		line += " " + ratio(values[r[0]], values[r[1]]) + " |"
	}
	fmt.Println(line)
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
