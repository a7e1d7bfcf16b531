// Command outage runs the function as Cloud Run runs it (the buildpack-style build, K_SERVICE
// set, output drained) under steady load while its dependencies fail, and checks every answer.
// Google's key endpoint is the stand-in (internal/standin), serving keys with an 8 s max-age so
// that refreshes and an expiry fit in a run; the load is 32 kept-alive connections asking for
// the HMACs of 1,000 users with their 1,000 signed tokens. Each scenario prints the requests, the
// 200s (with the right HMAC), the 503s, anything else, the key endpoint's fetches, the slowest
// answer, and the wrong HMACs (an answer no secret the function was given would sign).
//
//	go build -o bin/function ./bench/function && go run ./bench/outage -function bin/function
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/proficient-hmac/proficient-hmac/internal/standin"
)

const (
	project   = "demo-outage"
	secret    = "hsec_outage_secret_0123456789"
	rotated   = "hsec_outage_rotated_9876543210"
	users     = 1000
	keysLife  = 8 * time.Second // the keys' max-age: the function refreshes them every 4 s
	callers   = 32
	scenarioT = 14 * time.Second
)

var functionBin = flag.String("function", "bin/function", "the function as Cloud Run runs it (go build ./bench/function)")

// A scenario changes the stand-in (or the secret file) at given times after the start.
type scenario struct {
	name   string
	file   bool // the secret comes from a file, rewritten in place by the events
	events []event
}

type event struct {
	at time.Duration
	do func(g *standin.Google, secretFile string)
}

func keysFail(fail func(g *standin.Google)) func(*standin.Google, string) {
	return func(g *standin.Google, _ string) { g.Set(fail) }
}

var restore = keysFail(func(g *standin.Google) { g.KeysStatus, g.KeysUnreachable, g.KeysDelay = 0, false, 0 })

var (
	fail500     = keysFail(func(g *standin.Google) { g.KeysStatus = http.StatusInternalServerError })
	unreachable = keysFail(func(g *standin.Google) { g.KeysUnreachable = true })
	hanging     = keysFail(func(g *standin.Google) { g.KeysDelay = time.Hour })
)

var scenarios = []scenario{
	// From just after the refresh at 4 s until 1.5 s before the refreshed keys expire at 12 s.
	{name: "keys answer 500 from 4.5 s to 10.5 s", events: []event{{4500 * time.Millisecond, fail500}, {10500 * time.Millisecond, restore}}},
	{name: "keys unreachable from 4.5 s to 10.5 s", events: []event{{4500 * time.Millisecond, unreachable}, {10500 * time.Millisecond, restore}}},
	{name: "keys hang from 4.5 s to 10.5 s", events: []event{{4500 * time.Millisecond, hanging}, {10500 * time.Millisecond, restore}}},
	// Past the keys' lifetime (they expire at 8 s or 12 s).
	{name: "keys answer 500 from 1 s on", events: []event{{time.Second, fail500}}},
	{name: "keys hang from 1 s on", events: []event{{time.Second, hanging}}},
	// A writer that rewrites the secret file in place: truncates it, writes part, stalls 3 s.
	{name: "secret file torn for 3 s", file: true, events: []event{
		{2 * time.Second, func(_ *standin.Google, path string) { writeFile(path, rotated[:len("hsec_outage_")], os.O_TRUNC) }},
		{5 * time.Second, func(_ *standin.Google, path string) { writeFile(path, rotated[len("hsec_outage_"):], os.O_APPEND) }},
	}},
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
	tokens := make([]string, users)
	want := map[string][users]string{}
	for _, s := range []string{secret, rotated} {
		var hmacs [users]string
		for i := range users {
			hmacs[i] = sign(s, uidOf(i))
		}
		want[s] = hmacs
	}
	for i := range users {
		tokens[i] = google.IDToken(google.Claims(uidOf(i), map[string]any{"exp": time.Now().Add(time.Hour).Unix()}))
	}
	fmt.Printf("%s, %d connections, keys' max-age %s, %s a scenario\n\n", *functionBin, callers, keysLife, scenarioT)
	fmt.Println("| scenario | requests | 200 | 503 | other | key fetches | slowest | wrong HMACs |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, s := range scenarios {
		google.Set(func(g *standin.Google) {
			g.KeysStatus, g.KeysUnreachable, g.KeysDelay, g.KeysMaxAge = 0, false, 0, keysLife
		})
		r := run(google, googleEnv, s, tokens, want)
		fmt.Printf("| %s | %d | %d | %d | %d | %d | %.2f s | %d |\n", s.name, r.requests, r.ok, r.unavailable, r.other, r.fetches, r.slowest.Seconds(), r.wrong)
	}
}

type tally struct {
	requests, ok, unavailable, other, wrong, fetches int
	slowest                                          time.Duration
}

func (t *tally) add(o tally) {
	t.requests, t.ok, t.unavailable = t.requests+o.requests, t.ok+o.ok, t.unavailable+o.unavailable
	t.other, t.wrong, t.slowest = t.other+o.other, t.wrong+o.wrong, max(t.slowest, o.slowest)
}

// run starts the function, loads it through the scenario's events, and stops it.
func run(google *standin.Google, googleEnv []string, s scenario, tokens []string, want map[string][users]string) tally {
	env := append([]string{"PATH=" + os.Getenv("PATH"), "GOOGLE_CLOUD_PROJECT=" + project, "LOG_LEVEL=ERROR",
		"K_SERVICE=proficient-hmac", "K_REVISION=proficient-hmac-00001", "K_CONFIGURATION=proficient-hmac", "FUNCTION_TARGET=ProficientHMAC"},
		googleEnv...)
	secretFile := filepath.Join(os.TempDir(), fmt.Sprintf("outage-secret-%d", os.Getpid()))
	if s.file {
		writeFile(secretFile, secret, os.O_TRUNC)
		old := time.Now().Add(-time.Hour) // written before the instance started
		os.Chtimes(secretFile, old, old)
		defer os.Remove(secretFile)
		env = append(env, "PROFICIENT_HMAC_SECRET_FILE="+secretFile)
	} else {
		env = append(env, "PROFICIENT_HMAC_SECRET="+secret)
	}
	port := freePort()
	cmd := exec.Command(*functionBin)
	cmd.Env = append(env, "PORT="+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	for !answers(url) {
		time.Sleep(10 * time.Millisecond)
	}
	begin, fetchesBefore := time.Now(), google.KeyFetches()
	for _, e := range s.events {
		time.AfterFunc(e.at, func() { e.do(google, secretFile) })
	}
	var total tally
	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 30 * time.Second}
			var mine tally
			for time.Since(begin) < scenarioT {
				i := int(next.Add(1)) % users
				start := time.Now()
				code, hmac, err := call(client, url, tokens[i])
				took := time.Since(start)
				mine.requests++
				mine.slowest = max(mine.slowest, took)
				switch {
				case err != nil:
					mine.other++
				case code == http.StatusOK && (hmac == want[secret][i] || s.file && hmac == want[rotated][i]):
					mine.ok++
				case code == http.StatusOK:
					mine.wrong++
				case code == http.StatusServiceUnavailable:
					mine.unavailable++
				default:
					mine.other++
				}
			}
			mu.Lock()
			total.add(mine)
			mu.Unlock()
		})
	}
	wg.Wait()
	total.fetches = google.KeyFetches() - fetchesBefore
	return total
}

// call asks for token's HMAC as a callable does, and returns the status and the HMAC, if any.
func call(client *http.Client, url, token string) (int, string, error) {
	req, _ := http.NewRequest("POST", url, strings.NewReader(`{"data":null}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var answer struct {
		Result struct {
			HMAC string `json:"hmac"`
		} `json:"result"`
	}
	err = json.NewDecoder(resp.Body).Decode(&answer)
	return resp.StatusCode, answer.Result.HMAC, err
}

// answers reports whether the function answers at all (a preflight), once it listens.
func answers(url string) bool {
	req, _ := http.NewRequest("OPTIONS", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

func writeFile(path, content string, flag int) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|flag, 0o600)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		log.Fatal(err)
	}
}

func uidOf(i int) string { return fmt.Sprintf("outage-user-%04d", i) }

func sign(key, uid string) string {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(uid))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
