package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/proficient-hmac/proficient-hmac/internal/standin"
)

// runner is the local runner and deployed the buildpack-style build, each built once for these
// tests; googleEnv points them at a stand-in for Google's endpoints, so a start that fetches keys
// logs nothing but what a test looks for, and tokens it signs verify.
var (
	runner, deployed string
	google           *standin.Google
	googleEnv        []string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "proficient-hmac-cmd")
	if err != nil {
		panic(err)
	}
	runner, deployed = filepath.Join(dir, "proficient-hmac"), filepath.Join(dir, "function")
	for bin, pkg := range map[string]string{runner: ".", deployed: "../bench/function"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			panic("go build " + pkg + ": " + err.Error() + "\n" + string(out))
		}
	}
	google, err = standin.Start("demo-x")
	if err != nil {
		panic(err)
	}
	if googleEnv, err = google.Env(); err != nil {
		panic(err)
	}
	code := m.Run()
	google.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestConfigurationErrorsStopTheRunner: a bad configuration exits non-zero before serving, with
// one plain line locally and one CRITICAL JSON line on Cloud Run.
func TestConfigurationErrorsStopTheRunner(t *testing.T) {
	tests := []struct {
		name     string
		env      []string
		variable string
		says     string // part of the fix the line must give, if any
	}{
		{"no project", []string{"PROFICIENT_HMAC_SECRET=hsec_x"}, "GOOGLE_CLOUD_PROJECT", ""},
		{"no secret", []string{"GOOGLE_CLOUD_PROJECT=demo-x"}, "PROFICIENT_HMAC_SECRET", ""},
		{"secret without hsec_", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET=sk_live_leak"}, "PROFICIENT_HMAC_SECRET", ""},
		{"secret file missing", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET_FILE=/nonexistent/hmac"}, "PROFICIENT_HMAC_SECRET_FILE", "check the path"},
		{"secret that is only the prefix", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET=hsec_"}, "PROFICIENT_HMAC_SECRET", "only the prefix hsec_"},
		{"emulator host with a scheme", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET=hsec_x", "FIREBASE_AUTH_EMULATOR_HOST=http://127.0.0.1:9099"}, "FIREBASE_AUTH_EMULATOR_HOST", "no scheme"},
		// GCE_METADATA_HOST: the start's probe for a metadata server goes to loopback, not to DNS.
		{"emulator that does not answer", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET=hsec_x", "FIREBASE_AUTH_EMULATOR_HOST=" + closedAddr(t), "GCE_METADATA_HOST=" + closedAddr(t)}, "FIREBASE_AUTH_EMULATOR_HOST", "nothing answers"},
		{"emulator with HOST=0.0.0.0", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET=hsec_x", "FIREBASE_AUTH_EMULATOR_HOST=127.0.0.1:9099", "HOST=0.0.0.0"}, "HOST", "loopback"},
		{"emulator with a project not named demo-", []string{"GOOGLE_CLOUD_PROJECT=my-prod-app", "PROFICIENT_HMAC_SECRET=hsec_x", "FIREBASE_AUTH_EMULATOR_HOST=127.0.0.1:9099"}, "GOOGLE_CLOUD_PROJECT", "demo-"},
		{"emulator with the secret from a file", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET_FILE=/secrets/hmac", "FIREBASE_AUTH_EMULATOR_HOST=127.0.0.1:9099"}, "PROFICIENT_HMAC_SECRET_FILE", "by value"},
		{"projects that disagree", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "GCLOUD_PROJECT=demo-y", "PROFICIENT_HMAC_SECRET=hsec_x"}, "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"},
		{"the secret in the file variable", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET_FILE=hsec_sk_live_leak"}, "PROFICIENT_HMAC_SECRET_FILE", ""},
		{"the secret in the version variable", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET_VERSION=hsec_sk_live_leak"}, "PROFICIENT_HMAC_SECRET_VERSION", ""},
		{"the secret in the refresh variable", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET=hsec_x", "PROFICIENT_HMAC_SECRET_REFRESH=hsec_sk_live_leak"}, "PROFICIENT_HMAC_SECRET_REFRESH", "starting with hsec_"},
		{"secret with its quotes", []string{"GOOGLE_CLOUD_PROJECT=demo-x", `PROFICIENT_HMAC_SECRET="hsec_sk_live_leak"`}, "PROFICIENT_HMAC_SECRET", "quoted"},
		{"bad CORS origin", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET=hsec_x", "CORS_ALLOWED_ORIGINS=https://a.example/"}, "CORS_ALLOWED_ORIGINS", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := run(t, tt.env...)
			line := strings.TrimSuffix(stderr, "\n")
			if !exitedWith(err, 1) || strings.Contains(line, "\n") || !strings.HasPrefix(line, "proficient-hmac: "+tt.variable+" ") {
				t.Errorf("got %v, stderr %q; want exit 1 and one line naming %s", err, stderr, tt.variable)
			}
			if !strings.Contains(line, tt.says) {
				t.Errorf("stderr %q: want it to say %q", stderr, tt.says)
			}
			if stdout != "" || strings.Contains(stderr, "sk_live_leak") {
				t.Errorf("stdout %q, stderr %q: want nothing on stdout and no secret anywhere", stdout, stderr)
			}
		})
	}
	t.Run("on Cloud Run", func(t *testing.T) {
		_, stderr, err := run(t, "K_SERVICE=proficient-hmac", "GOOGLE_CLOUD_PROJECT=demo-x",
			"PROFICIENT_HMAC_SECRET=hsec_x", "FIREBASE_AUTH_EMULATOR_HOST=127.0.0.1:9099")
		var entry map[string]any
		if jsonErr := json.Unmarshal([]byte(stderr), &entry); !exitedWith(err, 1) || jsonErr != nil {
			t.Fatalf("got %v, stderr %q; want exit 1 and one JSON log line", err, stderr)
		}
		if msg, _ := entry["message"].(string); entry["severity"] != "CRITICAL" || !strings.Contains(msg, "FIREBASE_AUTH_EMULATOR_HOST") {
			t.Errorf("got %v, want a CRITICAL entry naming FIREBASE_AUTH_EMULATOR_HOST", entry)
		}
	})
}

// run starts the runner with only env (and PATH and googleEnv), so the caller's environment
// cannot leak in.
func run(t *testing.T, env ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // a runner that starts serving is a failure, not a hang
	defer cancel()
	cmd := exec.CommandContext(ctx, runner)
	cmd.Env = append(append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "PORT=1"}, googleEnv...), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

func exitedWith(err error, code int) bool {
	var exit *exec.ExitError
	return errors.As(err, &exit) && exit.ExitCode() == code
}

// TestRunnerClosesSlowAndIdleConnections: the local runner does not keep a connection open for
// ever that sends nothing, trickles a body, or stays idle after its answer. Each connection
// here would stay open until the test's own 30 s deadline on a server without timeouts.
func TestRunnerClosesSlowAndIdleConnections(t *testing.T) {
	addr := startRunner(t, "GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET=hsec_x")
	tests := []struct {
		name, send string
		want       string // what the server answers before it closes, if anything
	}{
		{"nothing sent", "", ""},
		{"headers never finished", "POST / HTTP/1.1\r\nHost: x\r\n", ""},
		{"body trickled", "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"da",
			"The request body could not be read."},
		{"idle after an answer", "OPTIONS / HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\r\n\r\n", "204 No Content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := io.WriteString(conn, tt.send); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(conn) // until the server closes the connection
			if err != nil {
				t.Fatalf("got %v after %q; want the server to close the connection", err, got)
			}
			if tt.want == "" && len(got) != 0 || !strings.Contains(string(got), tt.want) {
				t.Errorf("answer %q, want %q", got, tt.want)
			}
		})
	}
}

// TestRunnerSettings: a PORT that is not a port stops the runner with a line naming it.
func TestRunnerSettings(t *testing.T) {
	_, stderr, err := run(t, "GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET=hsec_x", "PORT=abc")
	if !exitedWith(err, 1) || !strings.HasPrefix(stderr, "proficient-hmac: PORT is \"abc\"") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("got %v, stderr %q; want exit 1 and one line naming PORT", err, stderr)
	}
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startRunner starts the runner on a free port with env and returns its address once it says
// it is serving.
func startRunner(t *testing.T, env ...string) string {
	t.Helper()
	addr, _ := startRunnerCmd(t, env...)
	return addr
}

// startRunnerCmd is startRunner, and the process.
func startRunnerCmd(t *testing.T, env ...string) (string, *exec.Cmd) {
	t.Helper()
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", port)
	cmd := exec.Command(runner)
	cmd.Env = append(append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "PORT=" + port}, googleEnv...), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		if strings.HasPrefix(lines.Text(), "proficient-hmac: serving ") {
			go io.Copy(io.Discard, stderr)
			return addr, cmd
		}
	}
	t.Fatalf("the runner exited without serving")
	return "", nil
}

// TestRunnerAnswersAsTheDeployedBuild sends the same requests to the runner and to the
// buildpack-style build (bench/function: funcframework.Start, FUNCTION_TARGET set, as Cloud Run
// runs it): clean and unclean paths, every method, preflights, a stream, answers that the mux
// gives itself; status, headers (but Date) and body must be the same.
func TestRunnerAnswersAsTheDeployedBuild(t *testing.T) {
	env := []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET=hsec_x"}
	runnerAddr := startRunner(t, env...)
	deployedAddr := startDeployed(t, env...)
	token := google.IDToken(google.Claims("user-1", nil))
	callable := "Content-Type: application/json\r\nAuthorization: Bearer " + token + "\r\nContent-Length: 13\r\n\r\n{\"data\":null}"
	requests := []string{
		"POST /api/proficient-hmac HTTP/1.1\r\nHost: x\r\n" + callable,
		"POST / HTTP/1.1\r\nHost: x\r\n" + callable,
		"POST /api//proficient-hmac HTTP/1.1\r\nHost: x\r\n" + callable,
		"POST /api/./proficient-hmac HTTP/1.1\r\nHost: x\r\n" + callable,
		"POST /api/../proficient-hmac HTTP/1.1\r\nHost: x\r\n" + callable,
		"POST // HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n" + callable,
		"POST /api/proficient-hmac HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n" + callable,
		"POST /api/proficient-hmac?x=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
		"OPTIONS /api/proficient-hmac HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization,content-type\r\n\r\n",
		"OPTIONS // HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\r\nAccess-Control-Request-Method: POST\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /api/proficient-hmac HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token + "\r\n\r\n",
		"HEAD /api/proficient-hmac HTTP/1.1\r\nHost: x\r\n\r\n",
		"PUT /api/proficient-hmac HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
		"DELETE /api/proficient-hmac HTTP/1.1\r\nHost: x\r\n\r\n",
		"PATCH /api/proficient-hmac HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
		"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n",
		"BREW /api/proficient-hmac HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /api/proficient-hmac HTTP/1.0\r\n" + callable,
	}
	for _, request := range requests {
		name := strings.SplitN(request, "\r\n", 2)[0]
		runner, deployed := exchange(t, runnerAddr, request), exchange(t, deployedAddr, request)
		if runner != deployed {
			t.Errorf("%s:\nrunner:   %q\ndeployed: %q", name, runner, deployed)
		}
		if strings.HasPrefix(request, "POST /api/proficient-hmac HTTP/1.1") && !strings.Contains(runner, `"hmac":`) {
			t.Errorf("%s: %q, want an HMAC (a bad test otherwise)", name, runner)
		}
	}
}

// exchange sends one raw request on its own connection and returns the answer with its Date
// header removed.
func exchange(t *testing.T, addr, request string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: strings.Fields(request)[0]})
	if err != nil {
		t.Fatalf("%q: %v", request, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	resp.Header.Del("Date")
	var header bytes.Buffer
	resp.Header.Write(&header)
	return resp.Status + "\n" + header.String() + "\n" + string(body)
}

// startDeployed starts the buildpack-style build as Cloud Run does (FUNCTION_TARGET set), on a
// free port, and returns its address once it answers.
func startDeployed(t *testing.T, env ...string) string {
	t.Helper()
	addr, _ := startDeployedCmd(t, env...)
	return addr
}

// startDeployedCmd is startDeployed, and the process.
func startDeployedCmd(t *testing.T, env ...string) (string, *exec.Cmd) {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(deployed)
	cmd.Env = append(append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "PORT=" + port, "FUNCTION_TARGET=ProficientHMAC"}, googleEnv...), env...)
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := net.JoinHostPort("127.0.0.1", port)
	for range 600 { // it prints nothing when it serves: wait until it accepts, at most 30 s
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			return addr, cmd
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the buildpack-style build never listened")
	return "", nil
}

// TestEmulatorModeOnTheNetwork: against the Auth emulator, a peer on the network gets nothing
// from either build. The buildpack-style build listens on every interface, as funcframework.Start
// does, and refuses the peer (403, naming its address); the runner listens on loopback only.
func TestEmulatorModeOnTheNetwork(t *testing.T) {
	emulator := fakeEmulator(t)
	env := []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET=hsec_x", "FIREBASE_AUTH_EMULATOR_HOST=" + emulator,
		"GCE_METADATA_HOST=" + closedAddr(t)}
	peer, err := standin.NetworkAddress()
	if err != nil {
		t.Fatal(err)
	}
	runnerAddr, deployedAddr := startRunner(t, env...), startDeployed(t, env...)
	request := "POST /api/proficient-hmac HTTP/1.1\r\nHost: localhost:8080\r\nContent-Length: 0\r\n\r\n"
	for name, addr := range map[string]string{"runner": runnerAddr, "deployed": deployedAddr} {
		if got := exchange(t, addr, request); !strings.HasPrefix(got, "401 ") { // past the check: no token
			t.Errorf("%s over loopback: got %q, want 401", name, got)
		}
	}
	_, port, _ := net.SplitHostPort(deployedAddr)
	if got := exchange(t, net.JoinHostPort(peer, port), request); !strings.HasPrefix(got, "403 ") || !strings.Contains(got, "the client address") {
		t.Errorf("deployed, from %s: got %q, want 403 naming the client address", peer, got)
	}
	_, port, _ = net.SplitHostPort(runnerAddr)
	if conn, err := net.Dial("tcp", net.JoinHostPort(peer, port)); err == nil {
		conn.Close()
		t.Errorf("runner: a peer connected to %s:%s; want it listening on loopback only", peer, port)
	}
}

// fakeEmulator is an address that accepts connections, as the emulator's does: the function
// checks at start that something answers there.
func fakeEmulator(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	return l.Addr().String()
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// TestSIGTERMUnderLoad: clients keep sending on kept-alive connections while the instance gets
// SIGTERM, as Cloud Run sends it; they stop a second later, as Cloud Run routes no more to a
// stopping instance. Every request sent before the signal is answered with its HMAC (none is
// reset), and the process then exits as SIGTERM would have it, in each build.
func TestSIGTERMUnderLoad(t *testing.T) {
	env := []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET=hsec_x"}
	for name, start := range map[string]func(*testing.T, ...string) (string, *exec.Cmd){"runner": startRunnerCmd, "deployed": startDeployedCmd} {
		t.Run(name, func(t *testing.T) {
			addr, process := start(t, env...)
			token := google.IDToken(google.Claims("user-1", nil))
			var signalled atomic.Int64 // Unix ns of the SIGTERM, 0 before
			type outcome struct {
				sent time.Time
				err  error
			}
			outcomes := make(chan outcome, 1<<20)
			var wg sync.WaitGroup
			for range 16 {
				wg.Go(func() {
					client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
					for {
						if s := signalled.Load(); s != 0 && time.Since(time.Unix(0, s)) > time.Second {
							return
						}
						sent := time.Now()
						req, _ := http.NewRequest("POST", "http://"+addr+"/", strings.NewReader(`{"data":null}`))
						req.Header.Set("Content-Type", "application/json")
						req.Header.Set("Authorization", "Bearer "+token)
						resp, err := client.Do(req)
						if err == nil {
							body, readErr := io.ReadAll(resp.Body)
							resp.Body.Close()
							if err = readErr; err == nil && (resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"hmac":`))) {
								err = errors.New(resp.Status + " " + string(body))
							}
						}
						outcomes <- outcome{sent, err}
					}
				})
			}
			// Under way: the first few hundred answers came.
			for answered := 0; answered < 300; answered++ {
				if o := <-outcomes; o.err != nil {
					t.Fatalf("before SIGTERM: %v", o.err)
				}
			}
			signalled.Store(time.Now().UnixNano())
			process.Process.Signal(syscall.SIGTERM)
			wg.Wait()
			close(outcomes)
			before, failedBefore, after := 0, 0, 0
			for o := range outcomes {
				switch {
				case o.sent.UnixNano() >= signalled.Load():
					after++
				case o.err != nil:
					failedBefore++
					t.Errorf("sent before SIGTERM, not answered: %v", o.err)
				default:
					before++
				}
			}
			err := process.Wait()
			if !exitedWith(err, 128+int(syscall.SIGTERM)) {
				t.Errorf("exit: %v, want %d", err, 128+int(syscall.SIGTERM))
			}
			t.Logf("%d requests sent before SIGTERM answered, %d not; %d sent after", before, failedBefore, after)
		})
	}
}
