// Package commitlog keeps the last committed configurations of a gateway on
// disk, newest first, so that `bpfvpn rollback N` can restore one.
//
// Layout: one file per commit in Dir, named commit-SEQ.conf with SEQ a
// decimal sequence number that grows with every commit, and a metadata file
// commit-SEQ.json beside it. Entry 0 is the active configuration (the newest
// commit), entry 1 the one before it, and so on. Files are written mode 0600
// in a directory of mode 0700: a configuration may hold pre-shared keys.
// Every write goes to a temporary file that is synced and renamed, so a crash
// leaves either the old or the new entry, never a torn one.
package commitlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultDir is where the daemon keeps its commits unless told otherwise.
const DefaultDir = "/var/lib/bpfvpn/commits"

// DefaultKeep is how many committed configurations are kept (the active one
// included).
const DefaultKeep = 5

// Entry describes one committed configuration.
type Entry struct {
	// Index is the rollback number: 0 is the active configuration.
	Index int `json:"index"`
	// Seq is the commit's sequence number (grows by one per commit).
	Seq uint64 `json:"seq"`
	// Time is when the commit was made.
	Time time.Time `json:"time"`
	// Source names where the configuration came from (a file name, or
	// "rollback N").
	Source string `json:"source"`
	// Comment is the optional commit comment.
	Comment string `json:"comment,omitempty"`
	// Size is the length of the configuration text in bytes.
	Size int `json:"size"`
}

// Store is a directory of committed configurations. Its methods are safe for
// concurrent use within one process.
type Store struct {
	dir  string
	keep int
	mu   sync.Mutex
}

// Open returns the store in dir (created mode 0700 when missing) that keeps
// keep entries (DefaultKeep when keep ≤ 0).
func Open(dir string, keep int) (*Store, error) {
	if dir == "" {
		dir = DefaultDir
	}
	if keep <= 0 {
		keep = DefaultKeep
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("commit store %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("commit store %s: %w", dir, err)
	}
	return &Store{dir: dir, keep: keep}, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Keep returns how many entries the store keeps.
func (s *Store) Keep() int { return s.keep }

func (s *Store) confPath(seq uint64) string {
	return filepath.Join(s.dir, "commit-"+strconv.FormatUint(seq, 10)+".conf")
}

func (s *Store) metaPath(seq uint64) string {
	return filepath.Join(s.dir, "commit-"+strconv.FormatUint(seq, 10)+".json")
}

// seqs returns the sequence numbers of complete entries, newest first.
func (s *Store) seqs() ([]uint64, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("commit store %s: %w", s.dir, err)
	}
	have := map[uint64]int{}
	for _, de := range des {
		name := de.Name()
		rest, ok := strings.CutPrefix(name, "commit-")
		if !ok {
			continue
		}
		num, ext, ok := strings.Cut(rest, ".")
		if !ok || (ext != "conf" && ext != "json") {
			continue
		}
		seq, err := strconv.ParseUint(num, 10, 64)
		if err != nil {
			continue
		}
		have[seq]++
	}
	var out []uint64
	for seq, n := range have {
		if n == 2 {
			out = append(out, seq)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] > out[j] })
	return out, nil
}

// Add records text as the new active configuration and prunes entries beyond
// Keep. It returns the new entry (Index 0).
func (s *Store) Add(text []byte, source, comment string, now time.Time) (Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seqs, err := s.seqs()
	if err != nil {
		return Entry{}, err
	}
	return s.addLocked(seqs, len(text), source, comment, now, func(w *os.File) error {
		_, err := w.Write(text)
		return err
	})
}

// addLocked adds an entry of size bytes that write writes. The caller holds
// s.mu; seqs are the current entries.
func (s *Store) addLocked(seqs []uint64, size int, source, comment string, now time.Time, write func(*os.File) error) (Entry, error) {
	var seq uint64 = 1
	if len(seqs) > 0 {
		seq = seqs[0] + 1
	}
	e := Entry{Index: 0, Seq: seq, Time: now.UTC(), Source: source, Comment: comment, Size: size}
	meta, err := json.Marshal(e)
	if err != nil {
		return Entry{}, fmt.Errorf("commit store: encode metadata: %w", err)
	}
	// The configuration first: an entry counts only once both files exist.
	if err := writeAtomic(s.confPath(seq), write); err != nil {
		return Entry{}, err
	}
	if err := writeFileAtomic(s.metaPath(seq), meta); err != nil {
		os.Remove(s.confPath(seq))
		return Entry{}, err
	}
	seqs = append([]uint64{seq}, seqs...)
	var errs []error
	for _, old := range seqs[min(len(seqs), s.keep):] {
		for _, p := range []string{s.metaPath(old), s.confPath(old)} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return e, fmt.Errorf("commit store: prune old commits: %w", err)
	}
	return e, nil
}

// ErrBaseChanged reports that AddAppended found entry 0 other than the
// caller expected.
var ErrBaseChanged = errors.New("rollback 0 is not the expected base")

// AddAppended records entry 0's text (of baseSize bytes) followed by tail as
// the new active configuration, as Add does, without the caller holding
// the whole text: the file is copied in the kernel where it can be.
func (s *Store) AddAppended(baseSize int, tail []byte, source, comment string, now time.Time) (Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seqs, err := s.seqs()
	if err != nil {
		return Entry{}, err
	}
	if len(seqs) == 0 {
		return Entry{}, fmt.Errorf("commit store: append: %w (no entries)", ErrBaseChanged)
	}
	base, err := os.Open(s.confPath(seqs[0]))
	if err != nil {
		return Entry{}, fmt.Errorf("commit store: %w", err)
	}
	defer base.Close()
	if fi, err := base.Stat(); err != nil || fi.Size() != int64(baseSize) {
		return Entry{}, fmt.Errorf("commit store: append to commit %d: %w", seqs[0], ErrBaseChanged)
	}
	return s.addLocked(seqs, baseSize+len(tail), source, comment, now, func(w *os.File) error {
		if _, err := io.Copy(w, base); err != nil {
			return err
		}
		_, err := w.Write(tail)
		return err
	})
}

// List returns the entries, newest (index 0) first.
func (s *Store) List() ([]Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seqs, err := s.seqs()
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(seqs))
	for i, seq := range seqs {
		e, err := s.readMeta(seq)
		if err != nil {
			return nil, err
		}
		e.Index = i
		out = append(out, e)
	}
	return out, nil
}

func (s *Store) readMeta(seq uint64) (Entry, error) {
	data, err := os.ReadFile(s.metaPath(seq))
	if err != nil {
		return Entry{}, fmt.Errorf("commit store: %w", err)
	}
	var e Entry
	if err := json.Unmarshal(data, &e); err != nil {
		return Entry{}, fmt.Errorf("commit store: %s: %w", s.metaPath(seq), err)
	}
	e.Seq = seq
	return e, nil
}

// ErrNoEntry reports a rollback number the store does not hold.
var ErrNoEntry = errors.New("no such commit")

// Get returns entry n (0 = active) and its configuration text.
func (s *Store) Get(n int) (Entry, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seqs, err := s.seqs()
	if err != nil {
		return Entry{}, nil, err
	}
	if n < 0 || n >= len(seqs) {
		return Entry{}, nil, fmt.Errorf("rollback %d: %w (the store holds 0-%d)", n, ErrNoEntry, len(seqs)-1)
	}
	e, err := s.readMeta(seqs[n])
	if err != nil {
		return Entry{}, nil, err
	}
	e.Index = n
	text, err := os.ReadFile(s.confPath(seqs[n]))
	if err != nil {
		return Entry{}, nil, fmt.Errorf("commit store: %w", err)
	}
	return e, text, nil
}

// writeFileAtomic writes data to path mode 0600 through a synced temporary
// file in the same directory.
func writeFileAtomic(path string, data []byte) error {
	return writeAtomic(path, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// writeAtomic is writeFileAtomic with the content written by write.
func writeAtomic(path string, write func(*os.File) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := write(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// WriteFileAtomic is writeFileAtomic for other packages (the daemon writes
// the committed configuration back to its configuration file).
func WriteFileAtomic(path string, data []byte) error { return writeFileAtomic(path, data) }
