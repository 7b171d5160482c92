package commitlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestAddListGetPrune(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "commits")
	s, err := Open(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := 1; i <= 5; i++ {
		e, err := s.Add([]byte(fmt.Sprintf("config %d\n", i)), fmt.Sprintf("file%d", i), "", t0.Add(time.Duration(i)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if e.Seq != uint64(i) || e.Index != 0 {
			t.Fatalf("entry %+v", e)
		}
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 {
		t.Fatalf("kept %d entries, want 3: %+v", len(list), list)
	}
	for i, e := range list {
		if e.Index != i || e.Seq != uint64(5-i) || e.Source != fmt.Sprintf("file%d", 5-i) {
			t.Errorf("entry %d: %+v", i, e)
		}
	}
	e, text, err := s.Get(2)
	if err != nil {
		t.Fatal(err)
	}
	if string(text) != "config 3\n" || e.Index != 2 || !e.Time.Equal(t0.Add(3*time.Minute)) {
		t.Fatalf("Get(2) = %+v %q", e, text)
	}
	if _, _, err := s.Get(3); !errors.Is(err, ErrNoEntry) {
		t.Fatalf("Get(3): %v", err)
	}
	if _, _, err := s.Get(-1); !errors.Is(err, ErrNoEntry) {
		t.Fatalf("Get(-1): %v", err)
	}
	files, _ := os.ReadDir(dir)
	if len(files) != 6 {
		t.Fatalf("%d files in store, want 6", len(files))
	}
}

func TestModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "commits")
	s, err := Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if s.Keep() != DefaultKeep {
		t.Fatalf("keep %d", s.Keep())
	}
	if _, err := s.Add([]byte("secret"), "f", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(dir)
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v", fi.Mode().Perm())
	}
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		fi, _ := de.Info()
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", de.Name(), fi.Mode().Perm())
		}
	}
}

func TestIncompleteEntryIgnored(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add([]byte("one"), "f", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	// A crash between the two writes leaves a lone .conf; it is not an entry
	// and its sequence number is reused.
	os.WriteFile(filepath.Join(dir, "commit-2.conf"), []byte("torn"), 0o600)
	os.WriteFile(filepath.Join(dir, "unrelated"), nil, 0o600)
	list, err := s.List()
	if err != nil || len(list) != 1 {
		t.Fatalf("list %+v %v", list, err)
	}
	e, err := s.Add([]byte("two"), "f", "", time.Now())
	if err != nil || e.Seq != 2 {
		t.Fatalf("add %+v %v", e, err)
	}
	_, text, _ := s.Get(0)
	if string(text) != "two" {
		t.Fatalf("active %q", text)
	}
}

// TestAddAppended: an appended entry is entry 0's text with the tail, the
// base stays rollback 1, and a base of another size is refused.
func TestAddAppended(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "c"), 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddAppended(0, []byte("x\n"), "-", "", time.Now()); !errors.Is(err, ErrBaseChanged) {
		t.Fatalf("append to an empty store: %v", err)
	}
	if _, err := s.Add([]byte("set a 1\n"), "f", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	e, err := s.AddAppended(8, []byte("set b 2\n"), "-", "delta", time.Now())
	if err != nil || e.Size != 16 || e.Comment != "delta" {
		t.Fatalf("append: %+v %v", e, err)
	}
	for n, want := range []string{"set a 1\nset b 2\n", "set a 1\n"} {
		if _, text, err := s.Get(n); err != nil || string(text) != want {
			t.Errorf("rollback %d: %q %v", n, text, err)
		}
	}
	if _, err := s.AddAppended(8, []byte("set c 3\n"), "-", "", time.Now()); !errors.Is(err, ErrBaseChanged) {
		t.Errorf("append to a base of another size: %v", err)
	}
	if list, _ := s.List(); len(list) != 2 {
		t.Errorf("%d entries after a refused append", len(list))
	}
}
