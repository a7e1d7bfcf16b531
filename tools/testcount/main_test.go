package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The event files in testdata were written by the runners themselves (go1.26, Node 20.20) over
// small suites made to have one of each case:
//
//   - go.jsonl: make's "go vet ./..." line and a function's JSON log line, then go test -json
//     ./... of a package with a test, a table of rows that pass, fail and skip, a parent that
//     fails on its own after its row passed, and a fuzz test's two seeds; a package that does not
//     build; one whose TestMain panics; one with no test files.
//   - passing.jsonl: three of go.jsonl's passing tests.
//   - node.jsonl: node --test with tools/test-events.mjs over a file that is not JavaScript; one
//     whose before hook fails (sign-in) ahead of a test and of a table; and one with a test, a
//     table of rows that pass, fail, skip and are todo, a parent that fails on its own, a parent
//     past its timeout with a row still running (cancelled), and a test past its timeout.
func TestCount(t *testing.T) {
	tests := []struct {
		name                  string
		args                  []string
		wantCounts            string
		wantReport, notReport []string
	}{
		{
			name:       "go test -json: rows once, not their parents; a package that does not build, or whose TestMain fails, once",
			args:       []string{"go", "testdata/go.jsonl"},
			wantCounts: "5 4 1",
			wantReport: []string{
				"--- FAIL: example/table TestTable/fails", "table_test.go:12: the row's assertion",
				"--- FAIL: example/table TestParentFailsOnItsOwn", "the parent's own assertion",
				"--- FAIL: example/nobuild did not build", "nobuild/nobuild_test.go:5:37: undefined: undefined",
				"--- FAIL: example/testmain (outside its tests)", "panic: TestMain could not set up",
			},
			notReport: []string{"example/table TestTable\n", "=== RUN", "go vet"},
		},
		{
			name:       "Node's test runner: rows once, not their parents; cancelled rows and failed hooks fail; todo is skipped",
			args:       []string{"e2e", "testdata/node.jsonl"},
			wantCounts: "3 7 2",
			wantReport: []string{
				"not ok: row fails (/repo/e2e/table.test.mjs)", "    1 == 2",
				"not ok: parent fails on its own", "not ok: needs the hook", "    sign-in failed", "not ok: needs it too",
				"not ok (cancelled): row never ends", "not ok (cancelled): alone past its timeout",
				"not ok: /repo/e2e/broken.test.mjs",
			},
			notReport: []string{"parent past its timeout", "not ok: table "},
		},
		{
			name:       "at its floor",
			args:       []string{"-floors", "testdata/floors", "exact", "testdata/passing.jsonl"},
			wantCounts: "3 0 0",
		},
		{
			name:       "under its floor with nothing failed: a failure, and how the output ends",
			args:       []string{"-floors", "testdata/floors", "passing", "testdata/passing.jsonl", "testdata/text.log"},
			wantCounts: "3 1 0",
			wantReport: []string{"passing: 3 tests counted, fewer than its floor of 4 (testdata/floors)", "    # the emulator stopped"},
		},
		{
			name:       "under its floor with tests failed: those failures alone",
			args:       []string{"-floors", "testdata/floors", "e2e", "testdata/node.jsonl"},
			wantCounts: "3 7 2",
			notReport:  []string{"floor"},
		},
		{
			name:       "no test at all, and no floor: a failure",
			args:       []string{"-floors", "testdata/floors", "other", "testdata/text.log"},
			wantCounts: "0 1 0",
			wantReport: []string{"other: 0 tests counted, fewer than its floor of 1", "TAP version 13"},
		},
		{
			name:       "events never written: a failure that says so",
			args:       []string{"e2e", filepath.Join("testdata", "missing.events")},
			wantCounts: "0 1 0",
			wantReport: []string{"missing.events: not written: the test runner did not run"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := testcount(tt.args, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			counts, report, _ := strings.Cut(stdout.String(), "\n")
			if counts != tt.wantCounts {
				t.Errorf("counts: got %q, want %q", counts, tt.wantCounts)
			}
			for _, want := range tt.wantReport {
				if !strings.Contains(report, want) {
					t.Errorf("report:\n%s\nwant it to hold %q", report, want)
				}
			}
			for _, notWant := range tt.notReport {
				if strings.Contains(report, notWant) {
					t.Errorf("report:\n%s\nwant no %q", report, notWant)
				}
			}
		})
	}
}

func TestBadInvocation(t *testing.T) {
	dir := t.TempDir()
	malformed := filepath.Join(dir, "floors")
	if err := os.WriteFile(malformed, []byte("# suite minimum\ngo many\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no files", []string{"go"}, "usage: testcount"},
		{"a floors file that is not there", []string{"-floors", filepath.Join(dir, "none"), "go", "testdata/go.jsonl"}, "no such file"},
		{"a malformed floor", []string{"-floors", malformed, "go", "testdata/go.jsonl"}, `floors:2: want SUITE MINIMUM, got "go many"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := testcount(tt.args, &stdout, &stderr); code != 2 || stdout.Len() != 0 || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("got exit %d, stdout %q, stderr %q; want 2, nothing, and %q", code, stdout.String(), stderr.String(), tt.want)
			}
		})
	}
}
