package vm

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestSkipKnownFlaky(t *testing.T) {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	release := unix.ByteSliceToString(uts.Release[:])
	t.Setenv(FlakyEnv, "")
	if !t.Run("other kernel runs", func(t *testing.T) { SkipKnownFlaky(t, "defect", "0.0.") }) {
		t.Error("a check for another kernel did not run")
	}
	skipped := false
	t.Run("this kernel skips", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		SkipKnownFlaky(t, "defect", release[:2])
	})
	if !skipped {
		t.Errorf("a check listed for %s was not skipped", release)
	}
	t.Setenv(FlakyEnv, "1")
	t.Run("forced runs", func(t *testing.T) {
		SkipKnownFlaky(t, "defect", release[:2])
		if t.Skipped() {
			t.Error("skipped although " + FlakyEnv + "=1")
		}
	})
}
