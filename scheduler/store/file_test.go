package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

func fileOpener(dir string) opener {
	return func(t *testing.T, service string, lockWait time.Duration) (Store, error) {
		return OpenFile(context.Background(), Config{Dir: dir, Service: service, LockWait: lockWait, Logger: zaptest.NewLogger(t)})
	}
}

func TestFileStoreConformance(t *testing.T) {
	runConformance(t, fileOpener(t.TempDir()))
}

func TestFileStoreLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "nested")
	s, err := OpenFile(context.Background(), Config{Dir: dir, Service: "/prod/consul"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if want := filepath.Join(dir, "dcos-service-prod__consul.db"); s.Path() != want {
		t.Errorf("path %s, want %s", s.Path(), want)
	}
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestFileStoreLockedErrorIsClear(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenFile(context.Background(), Config{Dir: dir, Service: "consul"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = OpenFile(context.Background(), Config{Dir: dir, Service: "consul", LockWait: 200 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), s.Path()) || !strings.Contains(err.Error(), "another dcos-consul scheduler") {
		t.Fatalf("error %q should wrap ErrLocked and name the file and the cause", err)
	}
	// A context deadline shorter than the lock wait bounds the wait.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = OpenFile(ctx, Config{Dir: dir, Service: "consul", LockWait: time.Minute})
	if err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("open bounded by the context: %v after %s", err, time.Since(start))
	}
	// Another service in the same directory is independent.
	other, err := OpenFile(context.Background(), Config{Dir: dir, Service: "consul-2", LockWait: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("another service in the same dir: %v", err)
	}
	other.Close()
}

// TestCrashHelper is the child process of the crash tests: it writes keys in
// a loop and prints each acknowledged one, until it is killed.
func TestCrashHelper(t *testing.T) {
	kind := os.Getenv("STORE_CRASH_HELPER")
	if kind == "" {
		t.Skip("helper process for the crash tests")
	}
	cfg := Config{Service: os.Getenv("STORE_CRASH_SERVICE"), LockWait: 30 * time.Second, SessionTimeout: 4 * time.Second}
	if kind == "zk" {
		cfg.ZK = os.Getenv("STORE_CRASH_ZK")
	} else {
		cfg.Dir = os.Getenv("STORE_CRASH_DIR")
	}
	s, err := Open(context.Background(), cfg)
	if err != nil {
		fmt.Println("open error:", err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		k := fmt.Sprintf("tasks/t%06d", i)
		if err := s.Apply(context.Background(), PutOp(k, []byte("v"+strconv.Itoa(i))), PutOp("last", []byte(strconv.Itoa(i)))); err != nil {
			fmt.Fprintln(w, "error:", err)
			w.Flush()
			continue
		}
		fmt.Fprintln(w, "ack", i)
		w.Flush()
	}
}

// crashTest kills a writing process with SIGKILL and checks that every
// write it saw acknowledged is there, and that the state opens again.
func crashTest(t *testing.T, env []string, reopen func() (Store, error)) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.v=false")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	lastAck := -1
	deadline := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	for sc.Scan() {
		line := sc.Text()
		if n, ok := strings.CutPrefix(line, "ack "); ok {
			lastAck, _ = strconv.Atoi(n)
			if lastAck >= 150 {
				cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		} else if strings.HasPrefix(line, "open error") {
			t.Fatalf("helper: %s", line)
		}
	}
	_ = cmd.Wait()
	if lastAck < 150 {
		t.Fatalf("helper acknowledged only %d writes", lastAck+1)
	}
	s, err := reopen()
	if err != nil {
		t.Fatalf("reopen after the crash: %v", err)
	}
	defer s.Close()
	for i := 0; i <= lastAck; i++ {
		k := fmt.Sprintf("tasks/t%06d", i)
		v, err := s.Get(context.Background(), k)
		if err != nil || string(v) != "v"+strconv.Itoa(i) {
			t.Fatalf("acknowledged write %s lost after the crash: %q %v", k, v, err)
		}
	}
	last, err := s.Get(context.Background(), "last")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(string(last))
	if n < lastAck {
		t.Fatalf("last = %d, older than the last acknowledged write %d", n, lastAck)
	}
	// The write in flight at the kill is all or nothing.
	if n > lastAck {
		if _, err := s.Get(context.Background(), fmt.Sprintf("tasks/t%06d", n)); err != nil {
			t.Fatalf("last = %d but its task key is missing: the transaction was torn", n)
		}
	}
	t.Logf("killed after %d acknowledged writes; all present (last=%d)", lastAck+1, n)
}

func TestFileStoreSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	crashTest(t, []string{"STORE_CRASH_HELPER=file", "STORE_CRASH_DIR=" + dir, "STORE_CRASH_SERVICE=consul"},
		func() (Store, error) {
			// The dead process's file lock is gone at once.
			return OpenFile(context.Background(), Config{Dir: dir, Service: "consul", LockWait: 2 * time.Second})
		})
}
