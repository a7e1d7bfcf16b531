package proficienthmac

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proficient-hmac/proficient-hmac/internal/standin"
)

// TestSoak sends a fixed number of requests from many concurrent clients through a real HTTP
// server: valid tokens of several users mixed with garbage, forged and expired ones. Every
// valid answer must be that user's HMAC, every other a 401, none a 5xx; afterwards goroutines
// and heap must be back to where they were.
func TestSoak(t *testing.T) {
	const clients, perClient = 32, 125
	h, _ := newTestHandler(t, testConfig(), dependencies{logs: io.Discard})
	now := time.Now().Unix()
	type kind struct {
		token string
		uid   string // "" for a token that must be refused
	}
	var kinds []kind
	for i := range 8 {
		uid := fmt.Sprintf("soak-user-%d", i)
		kinds = append(kinds, kind{google.IDToken(google.Claims(uid, nil)), uid})
	}
	kinds = append(kinds,
		kind{"not.a.token", ""},
		kind{standin.SignJWT(otherKey, map[string]any{"alg": "RS256", "kid": standin.KID}, google.Claims("soak-user-0", nil)), ""},
		kind{google.IDToken(google.Claims("soak-user-1", map[string]any{"iat": now - 4000, "exp": now - 400})), ""},
		kind{google.IDToken(google.Claims("soak-user-2", map[string]any{"aud": "other-project"})), ""},
	)
	want := map[string]string{}
	for _, k := range kinds {
		if k.uid != "" {
			want[k.uid] = newHMACKey([]byte(testSecret)).sign(k.uid)
		}
	}

	runtime.GC()
	goroutinesBefore := runtime.NumGoroutine()
	var heapBefore runtime.MemStats
	runtime.ReadMemStats(&heapBefore)

	server := httptest.NewServer(h)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var (
		mu       sync.Mutex
		counts   = map[int]int{}
		failures []string
		wg       sync.WaitGroup
	)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perClient {
				k := kinds[(c*perClient+i)%len(kinds)]
				code, got, err := soakCall(client, server.URL, k.token, i%2 == 0)
				mu.Lock()
				counts[code]++
				switch {
				case err != nil:
					failures = append(failures, err.Error())
				case k.uid != "" && (code != 200 || got != (hmacResult{want[k.uid], k.uid})):
					failures = append(failures, fmt.Sprintf("%s: got %d %+v", k.uid, code, got))
				case k.uid == "" && code != 401:
					failures = append(failures, fmt.Sprintf("bad token: got %d", code))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	client.CloseIdleConnections()
	server.Close()

	t.Logf("%d requests from %d clients: %v (HTTP status → count)", clients*perClient, clients, counts)
	if len(failures) > 0 {
		t.Fatalf("%d wrong answers, first: %s", len(failures), failures[0])
	}
	if counts[200]+counts[401] != clients*perClient {
		t.Fatalf("status counts %v: want only 200 and 401", counts)
	}

	// Connections close asynchronously: give their goroutines a bounded chance to end.
	goroutinesAfter := runtime.NumGoroutine()
	for tries := 0; goroutinesAfter > goroutinesBefore && tries < 100; tries++ {
		time.Sleep(10 * time.Millisecond)
		goroutinesAfter = runtime.NumGoroutine()
	}
	runtime.GC()
	var heapAfter runtime.MemStats
	runtime.ReadMemStats(&heapAfter)
	t.Logf("goroutines %d → %d; heap in use %.1f → %.1f MiB", goroutinesBefore, goroutinesAfter,
		float64(heapBefore.HeapAlloc)/(1<<20), float64(heapAfter.HeapAlloc)/(1<<20))
	if goroutinesAfter > goroutinesBefore {
		t.Errorf("goroutines: %d after, %d before", goroutinesAfter, goroutinesBefore)
	}
	if heapAfter.HeapAlloc > heapBefore.HeapAlloc+4<<20 {
		t.Errorf("heap: %d bytes after, %d before", heapAfter.HeapAlloc, heapBefore.HeapAlloc)
	}
}

// soakCall asks for an HMAC over HTTP, REST or callable.
func soakCall(client *http.Client, url, token string, callable bool) (int, hmacResult, error) {
	body := `{"userExternalId":null}`
	if callable {
		body = `{"data":null}`
	}
	req, _ := http.NewRequest("POST", url+"/api/proficient-hmac", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, hmacResult{}, err
	}
	defer resp.Body.Close()
	var answer struct {
		hmacResult
		Result *hmacResult `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return resp.StatusCode, hmacResult{}, err
	}
	if answer.Result != nil {
		return resp.StatusCode, *answer.Result, nil
	}
	return resp.StatusCode, answer.hmacResult, nil
}
