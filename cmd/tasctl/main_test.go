package main

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestMain lets the test binary stand in for tasctl when the demo re-runs
// its own executable as the Linux server and client.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == benchWorker || os.Args[1] == tasWorker) {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"ping", "--pings=0"}, {"ping", "--interval=1us"}, {"ping", "--nope"}, {"demo", "--duration=0s"}, {"demo", "--msg-size=0"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("tasctl %v exited %d, want 2 (%s)", args, code, errb.String())
		}
	}
}

// TestPing checks that every back-end answered every ping and that nothing
// is left behind.
func TestPing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: the demo needs root for namespaces")
	}
	if _, err := exec.LookPath("ping"); err != nil {
		t.Skip("ping is not installed; scripts/setup.sh installs it")
	}
	var out, errb bytes.Buffer
	if code := run([]string{"ping", "--pings=5", "--interval=5ms"}, &out, &errb); code != 0 {
		t.Fatalf("demo exited %d: %s\n%s", code, errb.String(), out.String())
	}
	for _, row := range []string{`gotas 10\.203\.0\.1\s+afxdp \([\w+]+\)\s+5/5`, `afpacket.*\s5/5`, `tap.*\s5/5`, `Linux 10\.203\.0\.3\s+kernel\s+5/5`} {
		if !regexp.MustCompile(row).MatchString(out.String()) {
			t.Errorf("demo output has no row matching %q:\n%s", row, out.String())
		}
	}
	checkRemoved(t, out.String())
}

// TestDemo runs the README's main command end to end: both servers answer
// at 1 and 64 connections and the table has a row for each.
func TestDemo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: the demo needs root for namespaces")
	}
	var out, errb bytes.Buffer
	if code := run([]string{"demo", "--duration=500ms"}, &out, &errb); code != 0 {
		t.Fatalf("demo exited %d: %s\n%s", code, errb.String(), out.String())
	}
	for _, conns := range []string{"1", "64"} {
		for _, srv := range []string{"gotas", "tas", "Linux"} {
			row := regexp.MustCompile(`(?m)^\s+` + conns + `\s+` + srv + `\s+([0-9]+)\s`)
			m := row.FindStringSubmatch(out.String())
			if m == nil || m[1] == "0" {
				t.Errorf("no row with requests for %s at %s connections:\n%s", srv, conns, out.String())
			}
		}
	}
	for _, srv := range []string{"gotas", "tas", "Linux"} {
		m := regexp.MustCompile(`(?m)^\s+` + srv + `\s+([0-9.]+) Gbit/s`).FindStringSubmatch(out.String())
		if m == nil || m[1] == "0.00" {
			t.Errorf("no bulk throughput for %s:\n%s", srv, out.String())
		}
	}
	checkRemoved(t, out.String())
}

// checkRemoved checks that a run's namespaces are gone.
func checkRemoved(t *testing.T, out string) {
	t.Helper()
	prefix := regexp.MustCompile(`removed (\S+)-\*`).FindStringSubmatch(out)
	if prefix == nil {
		t.Fatalf("no word of what was removed:\n%s", out)
	}
	ns, _ := exec.Command("ip", "netns", "list").CombinedOutput()
	if strings.Contains(string(ns), prefix[1]) {
		t.Fatalf("namespaces left behind:\n%s", ns)
	}
}
