package auth

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestWatchFiles(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.pem")
	b := filepath.Join(dir, "b.pem") // missing at first
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(a, "version 0")

	changes := make(chan struct{}, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		WatchFiles(ctx, []string{a, b}, 5*time.Millisecond, func() { changes <- struct{}{} })
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("WatchFiles did not return after ctx ended")
		}
	}()

	waitChange := func(what string) {
		t.Helper()
		select {
		case <-changes:
		case <-time.After(5 * time.Second):
			t.Fatalf("no onChange after %s", what)
		}
		// Let a poll that saw the same change pass, then drain.
		time.Sleep(20 * time.Millisecond)
		for len(changes) > 0 {
			<-changes
		}
	}
	noChange := func(what string) {
		t.Helper()
		select {
		case <-changes:
			t.Fatalf("onChange without a change (%s)", what)
		case <-time.After(50 * time.Millisecond):
		}
	}

	// Modify: the watcher's first snapshot may come after our first write,
	// so write new content until a change is seen.
	deadline := time.Now().Add(5 * time.Second)
	for i := 1; ; i++ {
		write(a, "version "+strconv.Itoa(i))
		select {
		case <-changes:
		case <-time.After(50 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("no onChange after modifying a file")
			}
			continue
		}
		break
	}
	time.Sleep(20 * time.Millisecond)
	for len(changes) > 0 {
		<-changes
	}
	noChange("idle")

	// Same size and mtime, other content: only the hash tells.
	fi, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(a)
	same := []byte(string(old))
	same[0] ^= 0x20
	write(a, string(same))
	if err := os.Chtimes(a, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	waitChange("a same-size rewrite with the old mtime")

	// A missing file appears.
	write(b, "new key")
	waitChange("creating a watched file")

	// A file disappears.
	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	waitChange("deleting a watched file")
	noChange("after delete")

	// Replaced by rename (how editors and Kubernetes update files).
	tmp := filepath.Join(dir, "b.tmp")
	write(tmp, "rotated key")
	if err := os.Rename(tmp, b); err != nil {
		t.Fatal(err)
	}
	waitChange("renaming over a watched file")
}

func TestWatchFilesStopsWithContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		WatchFiles(ctx, []string{path}, 0, func() {})
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("WatchFiles did not return")
	}
}
