// Command testcount counts the tests of one make test suite from its test runner's events, each
// test function and table row once, and tells what failed. tools/quiet-test.sh runs it.
//
//	go -C tools run ./testcount [-floors FILE] SUITE FILE...
//
// The files hold events one JSON object a line, among other lines, which are skipped: go test
// -json's (test2json's events) or the Node test runner's, as tools/test-events.mjs writes them.
// It prints "PASSED FAILED SKIPPED", then what failed, with its output.
//
// A test with subtests counts through them, and once more only if it failed on its own. A Go
// package that failed outside its tests (it did not build, TestMain failed) is one failure, shown
// with its errors. A suite where nothing failed, but that counts fewer tests than its floor in the
// floors file (at least one without), gets a failure: tests were lost without failing.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

func main() {
	os.Exit(testcount(os.Args[1:], os.Stdout, os.Stderr))
}

// testcount runs the command with args, and returns its exit code: 2 if it could not count.
func testcount(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("testcount", flag.ContinueOnError)
	flags.SetOutput(stderr)
	floors := flags.String("floors", "", "a file of lines `SUITE MINIMUM`: the fewest tests each suite may count")
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: testcount [-floors FILE] SUITE FILE...")
		flags.PrintDefaults()
	}
	if flags.Parse(args) != nil || flags.NArg() < 2 {
		flags.Usage()
		return 2
	}
	suite, files := flags.Arg(0), flags.Args()[1:]
	floor, err := readFloor(*floors, suite)
	if err != nil {
		fmt.Fprintln(stderr, "testcount:", err)
		return 2
	}
	var r record
	for _, name := range files {
		if err := r.readFile(name); err != nil {
			fmt.Fprintln(stderr, "testcount:", err)
			return 2
		}
	}
	c := r.count()
	if total := c.passed + c.failed + c.skipped; total < floor && c.failed == 0 {
		c.failed++
		c.report = append(c.report, fmt.Sprintf("%s: %d tests counted, fewer than its floor of %d (%s)", suite, total, floor, *floors))
		if len(r.text) > 0 {
			c.report = append(c.report, "  the output ends:")
			c.report = append(c.report, indent(r.text[max(0, len(r.text)-20):])...)
		}
	}
	fmt.Fprintf(stdout, "%d %d %d\n", c.passed, c.failed, c.skipped)
	for _, line := range c.report {
		fmt.Fprintln(stdout, line)
	}
	return 0
}

// readFloor is suite's floor in the floors file: 1 when the file names none, or there is no file.
func readFloor(path, suite string) (int, error) {
	if path == "" {
		return 1, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for i, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") || fields[0] != suite {
			continue
		}
		n, err := strconv.Atoi(fields[len(fields)-1])
		if len(fields) != 2 || err != nil {
			return 0, fmt.Errorf("%s:%d: want SUITE MINIMUM, got %q", path, i+1, line)
		}
		return n, nil
	}
	return 1, nil
}

// event is one line of either runner's events.
type event struct {
	// go test -json (cmd/test2json's TestEvent)
	Action      string `json:"Action"`
	Package     string `json:"Package"`
	Test        string `json:"Test"`
	Output      string `json:"Output"`
	ImportPath  string `json:"ImportPath"`  // of build-output
	FailedBuild string `json:"FailedBuild"` // on a package's fail: the ImportPath of its build output
	// the Node test runner's test:pass and test:fail, as tools/test-events.mjs writes them
	Type    string `json:"type"`
	Name    string `json:"name"`
	Nesting int    `json:"nesting"`
	File    string `json:"file"`
	Skip    bool   `json:"skip"`
	Todo    bool   `json:"todo"`
	Failure string `json:"failure"` // failureType: testCodeFailure, cancelledByParent, testTimeoutFailure…
	Error   string `json:"error"`
}

// record is what the files told.
type record struct {
	packages    []*goPackage // in the order they first appear
	byPath      map[string]*goPackage
	buildOutput map[string][]string // by ImportPath
	node        []event             // test:pass and test:fail, in order
	text        []string            // the lines that are no event
}

type goPackage struct {
	path     string
	failed   bool   // the package's own fail event
	build    string // FailedBuild
	output   []string
	tests    []string          // in the order they ended
	outcome  map[string]string // pass, fail or skip
	testsOut map[string][]string
}

func (r *record) readFile(name string) error {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		r.text = append(r.text, name+": not written: the test runner did not run")
		return nil
	} else if err != nil {
		return err
	}
	defer f.Close()
	return r.read(f)
}

func (r *record) read(in io.Reader) error {
	scanner := bufio.NewScanner(in)
	scanner.Buffer(make([]byte, 64<<10), 64<<20) // an event holds a whole line of output
	for scanner.Scan() {
		line := scanner.Text()
		var e event
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &e) != nil {
			r.text = append(r.text, line)
			continue
		}
		switch {
		case e.Action != "" && (e.Package != "" || e.ImportPath != ""):
			r.addGo(e)
		case e.Type == "test:pass" || e.Type == "test:fail":
			r.node = append(r.node, e)
		default:
			r.text = append(r.text, line) // JSON, but no event (a log line)
		}
	}
	return scanner.Err()
}

func (r *record) addGo(e event) {
	if e.Action == "build-output" {
		if r.buildOutput == nil {
			r.buildOutput = map[string][]string{}
		}
		r.buildOutput[e.ImportPath] = append(r.buildOutput[e.ImportPath], strings.TrimRight(e.Output, "\n"))
		return
	}
	if e.Package == "" {
		return // build-fail: its package's fail event follows
	}
	p := r.byPath[e.Package]
	if p == nil {
		p = &goPackage{path: e.Package, outcome: map[string]string{}, testsOut: map[string][]string{}}
		if r.byPath == nil {
			r.byPath = map[string]*goPackage{}
		}
		r.byPath[e.Package] = p
		r.packages = append(r.packages, p)
	}
	switch {
	case e.Action == "output" && e.Test != "":
		p.testsOut[e.Test] = append(p.testsOut[e.Test], strings.TrimRight(e.Output, "\n"))
	case e.Action == "output":
		p.output = append(p.output, strings.TrimRight(e.Output, "\n"))
	case e.Action == "fail" && e.Test == "":
		p.failed, p.build = true, e.FailedBuild
	case (e.Action == "pass" || e.Action == "fail" || e.Action == "skip") && e.Test != "":
		if _, seen := p.outcome[e.Test]; !seen {
			p.tests = append(p.tests, e.Test)
		}
		p.outcome[e.Test] = e.Action
	}
}

// counts are a suite's counts, and what failed.
type counts struct {
	passed, failed, skipped int
	report                  []string
}

func (c *counts) add(outcome string) {
	switch outcome {
	case "pass":
		c.passed++
	case "fail":
		c.failed++
	case "skip":
		c.skipped++
	}
}

func (r *record) count() counts {
	var c counts
	for _, p := range r.packages {
		r.countPackage(p, &c)
	}
	countNode(r.node, &c)
	return c
}

// countPackage counts a Go package's tests: the leaves of its tree of subtests, and a parent that
// failed when none of its subtests did.
func (r *record) countPackage(p *goPackage, c *counts) {
	failedBefore := c.failed
	for _, name := range p.tests {
		children, childFailed := false, false
		for _, other := range p.tests {
			if strings.HasPrefix(other, name+"/") {
				children = true
				childFailed = childFailed || p.outcome[other] == "fail"
			}
		}
		outcome := p.outcome[name]
		if children && (outcome != "fail" || childFailed) {
			continue
		}
		c.add(outcome)
		if outcome == "fail" {
			c.report = append(c.report, "--- FAIL: "+p.path+" "+name)
			c.report = append(c.report, indent(testOutput(p.testsOut[name]))...)
		}
	}
	if !p.failed || c.failed > failedBefore {
		return
	}
	c.failed++
	lines := p.output
	if p.build != "" {
		lines = r.buildOutput[p.build]
		c.report = append(c.report, "--- FAIL: "+p.path+" did not build")
	} else {
		c.report = append(c.report, "--- FAIL: "+p.path+" (outside its tests)")
	}
	c.report = append(c.report, indent(lines[max(0, len(lines)-30):])...)
}

// testOutput is what a test printed, without the runner's own lines, at most 30 lines.
func testOutput(lines []string) []string {
	var kept []string
	for _, line := range lines {
		if t := strings.TrimSpace(line); !strings.HasPrefix(t, "=== ") && !strings.HasPrefix(t, "--- ") {
			kept = append(kept, line)
		}
	}
	return kept[:min(len(kept), 30)]
}

// countNode counts the Node test runner's tests, which end in order, subtests before their
// parent: a test is a parent when tests one level deeper, in its file, ended since the last test
// at its own level.
func countNode(events []event, c *counts) {
	type level struct{ ended, failed bool }
	levels := map[string]map[int]level{} // by file, then nesting
	for _, e := range events {
		if levels[e.File] == nil {
			levels[e.File] = map[int]level{}
		}
		at := levels[e.File]
		children := at[e.Nesting+1]
		delete(at, e.Nesting+1)
		failed := e.Type == "test:fail"
		at[e.Nesting] = level{ended: true, failed: at[e.Nesting].failed || failed}
		if children.ended && (!failed || children.failed) {
			continue
		}
		switch {
		case e.Skip || e.Todo:
			c.skipped++
		case !failed:
			c.passed++
		default:
			c.failed++
			how := "not ok"
			if e.Failure == "cancelledByParent" || e.Failure == "testTimeoutFailure" {
				how = "not ok (cancelled)"
			}
			c.report = append(c.report, how+": "+e.Name+" ("+e.File+")")
			lines := strings.Split(strings.TrimRight(e.Error, "\n"), "\n")
			c.report = append(c.report, indent(lines[:min(len(lines), 30)])...)
		}
	}
}

func indent(lines []string) []string {
	out := make([]string, len(lines))
	for i, line := range lines {
		out[i] = "    " + line
	}
	return out
}
