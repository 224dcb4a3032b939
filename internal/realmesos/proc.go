package realmesos

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is one process the harness runs (master, agent, Mesos-DNS,
// scheduler), in its own process group, logging to a file, SIGKILLed by
// the kernel if the test process dies (Pdeathsig).
type proc struct {
	name    string
	path    string
	args    []string
	env     []string // nil: the test process's environment
	logPath string

	cmd  *exec.Cmd
	done chan struct{}
	err  error // the exit error, once done is closed
	log  *os.File
}

func (p *proc) start() error {
	if p.running() {
		return fmt.Errorf("%s is already running (pid %d)", p.name, p.cmd.Process.Pid)
	}
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: opening its log: %w", p.name, err)
	}
	fmt.Fprintf(f, "==== %s starting %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), p.path, strings.Join(p.args, " "))
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("starting %s (%s): %w", p.name, p.path, err)
	}
	p.cmd, p.log, p.done = cmd, f, make(chan struct{})
	go func(done chan struct{}) {
		p.err = cmd.Wait()
		fmt.Fprintf(f, "==== %s exited: %v\n", time.Now().UTC().Format(time.RFC3339Nano), p.err)
		f.Close()
		close(done)
	}(p.done)
	return nil
}

func (p *proc) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// exited is closed when the process has exited (nil before the first start).
func (p *proc) exited() <-chan struct{} { return p.done }

// stop sends sig to the process group and waits up to grace, then
// SIGKILLs the group. It returns once the process has exited.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) {
	if !p.running() {
		return
	}
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(-pid, sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-p.done
	}
	// Children left in the group (none expected) go too.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

func (p *proc) kill() { p.stop(syscall.SIGKILL, 10*time.Second) }

// sandboxProcs lists the processes whose environment has MESOS_SANDBOX (or
// MESOS_DIRECTORY) under root, and, if executorID is not empty,
// MESOS_EXECUTOR_ID=executorID: the executors the agents under root
// launched, which outlive their agent (they wait for it to come back).
func sandboxProcs(root, executorID string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	root = filepath.Clean(root) + "/"
	self := os.Getpid()
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		inRoot, isExec := false, executorID == ""
		for _, kv := range bytes.Split(env, []byte{0}) {
			s := string(kv)
			switch {
			case strings.HasPrefix(s, "MESOS_SANDBOX="+root), strings.HasPrefix(s, "MESOS_DIRECTORY="+root):
				inRoot = true
			case executorID != "" && s == "MESOS_EXECUTOR_ID="+executorID:
				isExec = true
			}
		}
		if inRoot && isExec {
			out = append(out, pid)
		}
	}
	return out
}

// killSandboxProcs SIGKILLs every process sandboxProcs finds and waits (up
// to 10 s) until none is left; it returns the pids it killed.
func killSandboxProcs(root, executorID string) ([]int, error) {
	var killed []int
	seen := map[int]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := sandboxProcs(root, executorID)
		if len(pids) == 0 {
			return killed, nil
		}
		for _, pid := range pids {
			if !seen[pid] {
				seen[pid] = true
				killed = append(killed, pid)
			}
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if time.Now().After(deadline) {
			return killed, fmt.Errorf("processes under %s still alive after SIGKILL: %v", root, pids)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// SweepStale cleans up after earlier runs of this suite whose test process
// is gone: it kills their executors (after a SIGKILLed `go test` the
// master, agents, Mesos-DNS and scheduler die with it through Pdeathsig,
// but executors are not the test's children and outlive their agent), then
// removes their directories (kept after a failure). Run roots are named
// <base>/<RunDirPrefix><pid>-*; only those of dead pids are touched. It
// returns what it did, for the log.
func SweepStale(base string) []string {
	matches, _ := filepath.Glob(filepath.Join(base, RunDirPrefix+"*"))
	var out []string
	for _, dir := range matches {
		rest := strings.TrimPrefix(filepath.Base(dir), RunDirPrefix)
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue
		}
		killed, err := killSandboxProcs(dir, "")
		if len(killed) > 0 {
			out = append(out, fmt.Sprintf("%s: killed pids %v", dir, killed))
		}
		// Its logs were printed when it failed; its fetcher caches and
		// sandboxes hold a copy of the binary per agent and per task.
		if err == nil {
			if err := os.RemoveAll(dir); err == nil {
				out = append(out, "removed "+dir)
			}
		}
	}
	return out
}

// RunDirPrefix names a run's root directory: RunDirPrefix<pid>-<random>.
const RunDirPrefix = "dcos-consul-realmesos-"
