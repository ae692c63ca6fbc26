package main

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"demo", "--pings=0"}, {"demo", "--interval=1us"}, {"demo", "--nope"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("tasctl %v exited %d, want 2 (%s)", args, code, errb.String())
		}
	}
}

// TestDemo runs the README's main command end to end and checks that every
// back-end answered every ping and that nothing is left behind.
func TestDemo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: the demo needs root for namespaces")
	}
	if _, err := exec.LookPath("ping"); err != nil {
		t.Skip("ping is not installed; scripts/setup.sh installs it")
	}
	var out, errb bytes.Buffer
	if code := run([]string{"demo", "--pings=5", "--interval=5ms"}, &out, &errb); code != 0 {
		t.Fatalf("demo exited %d: %s\n%s", code, errb.String(), out.String())
	}
	for _, row := range []string{`gotas 10\.203\.0\.1\s+afxdp \(\w+\)\s+5/5`, `afpacket.*\s5/5`, `tap.*\s5/5`, `Linux 10\.203\.0\.3\s+kernel\s+5/5`} {
		if !regexp.MustCompile(row).MatchString(out.String()) {
			t.Errorf("demo output has no row matching %q:\n%s", row, out.String())
		}
	}
	prefix := regexp.MustCompile(`removed (\S+)-\*`).FindStringSubmatch(out.String())
	if prefix == nil {
		t.Fatalf("demo did not say what it removed:\n%s", out.String())
	}
	ns, _ := exec.Command("ip", "netns", "list").CombinedOutput()
	if strings.Contains(string(ns), prefix[1]) {
		t.Fatalf("demo left namespaces behind:\n%s", ns)
	}
}
