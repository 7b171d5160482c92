package main

import "testing"

func TestTestsExitCode(t *testing.T) {
	for _, c := range []struct{ passed, failed, want int }{
		{3, 0, 0}, {3, 1, 1}, {0, 0, 1}, {0, 2, 1},
	} {
		if got, _ := testsExitCode(c.passed, c.failed); got != c.want {
			t.Errorf("testsExitCode(%d, %d) = %d, want %d", c.passed, c.failed, got, c.want)
		}
	}
}

func TestEnvList(t *testing.T) {
	var e envList
	if err := e.Set("A=1"); err != nil {
		t.Fatal(err)
	}
	if err := e.Set("B=x=y"); err != nil {
		t.Fatal(err)
	}
	if err := e.Set("novalue"); err == nil {
		t.Error("accepted an entry without =")
	}
	if e.String() != "A=1 B=x=y" {
		t.Errorf("String() = %q", e.String())
	}
}
