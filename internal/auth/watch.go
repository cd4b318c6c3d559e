package auth

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"time"
)

// maxWatchHash bounds how much of a watched file is hashed per poll.
const maxWatchHash = 4 << 20

// watchedState is what WatchFiles compares between polls.
type watchedState struct {
	exists bool
	mod    int64 // UnixNano
	size   int64
	sum    [sha256.Size]byte
}

func statWatched(path string) watchedState {
	fi, err := os.Stat(path) // follows symlinks: Kubernetes swaps a ..data link
	if err != nil {
		return watchedState{}
	}
	st := watchedState{exists: true, mod: fi.ModTime().UnixNano(), size: fi.Size()}
	if fi.Mode().IsRegular() {
		if f, err := os.Open(path); err == nil {
			h := sha256.New()
			_, _ = io.Copy(h, io.LimitReader(f, maxWatchHash))
			f.Close()
			copy(st.sum[:], h.Sum(nil))
		}
	}
	return st
}

// WatchFiles calls onChange when any of paths changes (mtime, size or content
// hash), polling every interval (1s when interval <= 0), until ctx ends.
// Missing files count as a change when they appear or disappear. It blocks:
// run it in its own goroutine; onChange runs on that goroutine, once per poll
// that saw any change. Polling (not inotify) also sees Kubernetes secret and
// ConfigMap updates, which replace a symlink rather than write the file.
func WatchFiles(ctx context.Context, paths []string, interval time.Duration, onChange func()) {
	if interval <= 0 {
		interval = time.Second
	}
	paths = append([]string(nil), paths...)
	prev := make([]watchedState, len(paths))
	for i, p := range paths {
		prev[i] = statWatched(p)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed := false
		for i, p := range paths {
			cur := statWatched(p)
			if cur != prev[i] {
				prev[i] = cur
				changed = true
			}
		}
		if changed && ctx.Err() == nil {
			onChange()
		}
	}
}
