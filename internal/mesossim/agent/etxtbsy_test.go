package agent

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// TestFetchedExecutableStartsWhileOthersLaunch: an executable the fetcher
// copies into a sandbox starts even while other executors are copied and
// started at the same moment in the same process, as dev's agents do. A
// process forked while a copy was open for writing inherited its
// descriptor until it exec'd, and an exec of that file meanwhile failed
// with ETXTBSY ("Text file busy": sh exits 126), which once failed a
// server's first executor in a CI run (golang/go#22315).
func TestFetchedExecutableStartsWhileOthersLaunch(t *testing.T) {
	// A shell script padded to a few MB: the copy's write takes a while.
	src := filepath.Join(t.TempDir(), "exe")
	pad := make([]byte, 8<<20)
	for i := range pad {
		pad[i] = '#'
	}
	if err := os.WriteFile(src, append([]byte("#!/bin/sh\nexit 0\n"), pad...), 0o755); err != nil {
		t.Fatal(err)
	}
	const workers, rounds = 6, 15
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				dir := filepath.Join(t.TempDir(), fmt.Sprintf("w%d-%d", w, r))
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Error(err)
					return
				}
				dest := filepath.Join(dir, "exe")
				if err := copyFile(src, dest); err != nil {
					t.Error(err)
					return
				}
				if err := os.Chmod(dest, 0o755); err != nil {
					t.Error(err)
					return
				}
				cmd := exec.Command("/bin/sh", "-c", dest)
				out, err := cmd.CombinedOutput()
				var ee *exec.ExitError
				if err != nil && errors.As(err, &ee) {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("exit %d: %s", ee.ExitCode(), out))
					mu.Unlock()
				} else if err != nil {
					t.Error(err)
				}
			}
		}(w)
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d of %d starts failed, e.g. %s", len(failures), workers*rounds, failures[0])
	}
}
