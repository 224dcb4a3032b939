// Package scale measures the real scheduler against a large simulated
// Mesos cluster (internal/mesossim with in-process executors): how long a
// deploy onto every agent takes from the first offers, how many offers the
// scheduler handles per second, its CPU and peak memory, and how long a
// restarted scheduler needs to reconcile every task (issue 4).
//
// The scheduler runs either as its own process (the dcos-consul binary's
// `scheduler` command, configured by environment as Marathon would), which
// gives clean per-process CPU time and peak RSS, or in this process through
// scheduler.RunWith, where the simulator's CPU and memory are mixed in.
// Either way it uses the file store in a temporary directory.
//
// Times come from the scheduler's own log (JSON, millisecond timestamps,
// info level as in production): "subscribed", the first "offer accepted"
// or "offer declined" (the first offer handled), each task's "task state"
// change to TASK_RUNNING, and "explicit reconciliation complete". The
// scheduler's /metrics only tell the harness when a phase is over.
package scale

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dcos-consul/dcos-consul/internal/freeport"
	"github.com/dcos-consul/dcos-consul/internal/mesossim"
	"github.com/dcos-consul/dcos-consul/scheduler"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

// Config describes one measurement.
type Config struct {
	Agents  int // default 10,000
	Servers int // default 3
	// MasterIP is the simulated master's address (any free port is used);
	// FirstAgentIP the first agent's (in-process agents bind nothing).
	MasterIP     string // default 127.6.0.1
	FirstAgentIP string // default 127.6.1.1
	// Binary is a built dcos-consul: the scheduler runs as its own process.
	// Empty: the scheduler runs in this process (scheduler.RunWith).
	Binary string
	// CPUs, with Binary, limits the scheduler process to this many CPUs
	// with a CFS quota (CPUs × 100 ms per 100 ms period), as a Mesos agent
	// with CFS enabled (DC/OS's default) enforces Marathon's "cpus". It
	// needs a writable cgroup v1 cpu hierarchy at /sys/fs/cgroup/cpu.
	// Zero: no limit.
	CPUs float64
	// Dir holds the scheduler's state and logs (required).
	Dir string
	// AllocationInterval of the simulated master (default 1 s, as Mesos).
	AllocationInterval time.Duration
	// PhaseTimeout bounds the deploy and the reconciliation (default 10 min).
	PhaseTimeout time.Duration
	// CPUProfile, with an in-process scheduler, writes a CPU profile of the
	// whole run; the scheduler's goroutines carry the label
	// component=scheduler (go tool pprof -tagfocus component=scheduler).
	CPUProfile string
	// Progress receives a line now and then (may be nil).
	Progress func(format string, args ...any)
}

func (c *Config) defaults() error {
	if c.Agents <= 0 {
		c.Agents = 10000
	}
	if c.Servers <= 0 {
		c.Servers = 3
	}
	if c.MasterIP == "" {
		c.MasterIP = "127.6.0.1"
	}
	if c.FirstAgentIP == "" {
		c.FirstAgentIP = "127.6.1.1"
	}
	if c.AllocationInterval <= 0 {
		c.AllocationInterval = time.Second
	}
	if c.PhaseTimeout <= 0 {
		c.PhaseTimeout = 10 * time.Minute
	}
	if c.Progress == nil {
		c.Progress = func(string, ...any) {}
	}
	if c.Dir == "" {
		return errors.New("scale: Config.Dir is required")
	}
	if c.Agents <= c.Servers {
		return fmt.Errorf("scale: %d agents cannot hold %d servers and a client", c.Agents, c.Servers)
	}
	return nil
}

// Deploy is what a first deploy onto every agent took.
type Deploy struct {
	// SubscribeToFirstOffer: "subscribed" → the first offer handled.
	SubscribeToFirstOffer time.Duration
	// FirstOfferToAllRunning: the first offer handled → the last task's
	// TASK_RUNNING handled (every agent has a RUNNING task).
	FirstOfferToAllRunning time.Duration
	// StartToAllRunning: scheduler start (process or RunWith) → all RUNNING.
	StartToAllRunning time.Duration
	// FirstToLastAccept: the first → the last accepted offer (Accepted of
	// them), the launch burst.
	FirstToLastAccept time.Duration
	Accepted          int
	// Offers received, accepted and declined until every task ran
	// (the scheduler's counters).
	OffersReceived, OffersAccepted, OffersDeclined float64
	// Updates is the status updates received until every task ran: two
	// per task (STARTING, RUNNING) unless agents resent some that were
	// not acknowledged within their 10 s retry.
	Updates float64
	Usage   Usage
}

// OffersPerSecond is offers received ÷ (first offer → all RUNNING).
func (d Deploy) OffersPerSecond() float64 {
	return perSecond(d.OffersReceived, d.FirstOfferToAllRunning)
}

// AcceptsPerSecond is accepted offers ÷ (first → last accept).
func (d Deploy) AcceptsPerSecond() float64 {
	return perSecond(float64(d.Accepted), d.FirstToLastAccept)
}

func perSecond(n float64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return n / d.Seconds()
}

// Reconcile is what a restarted scheduler took to reconcile every task.
type Reconcile struct {
	// StartToLoaded: process start → its state loaded from the store.
	StartToLoaded time.Duration
	// StartToSubscribed: process start → "subscribed".
	StartToSubscribed time.Duration
	// SubscribedToReconciled: "subscribed" → "explicit reconciliation
	// complete" (every known task's status received).
	SubscribedToReconciled time.Duration
	// StartToReconciled: process start → reconciliation complete.
	StartToReconciled time.Duration
	// Tasks that were reconciled; Relaunched counts launches after the
	// restart (want 0).
	Tasks      int
	Relaunched float64
	Usage      Usage
}

// Usage is the scheduler's CPU and memory during a phase. With a separate
// process they are that process's own; in process they include the
// simulator (Shared is then true).
type Usage struct {
	User, System time.Duration
	// PeakRSS is the scheduler process's VmHWM (in process: this process's).
	PeakRSS uint64
	// PeakHeap is the highest Go heap in use sampled (every 100 ms).
	PeakHeap uint64
	// PeakAnon is the highest anonymous RSS sampled (every 100 ms): VmHWM
	// without the file-backed pages of the executable (the dcos-consul
	// binary embeds Consul; an idle scheduler maps about 80 MB of it).
	PeakAnon uint64
	Shared   bool
}

// CPU is user + system time.
func (u Usage) CPU() time.Duration { return u.User + u.System }

// Result is one measurement.
type Result struct {
	Agents, Servers int
	Mode            string // "process" or "in-process"
	CPUs            float64
	// ClusterStart: starting the simulated master and its agents.
	ClusterStart time.Duration
	Deploy       Deploy
	Reconcile    Reconcile
	// SimulatorCPU is this process's CPU during the deploy (process mode:
	// the simulated master and agents, plus the harness's polling).
	SimulatorCPU time.Duration
	// LargestEvent is the largest event record (bytes) the simulated
	// master sent the scheduler: the OFFERS event of a whole allocation
	// cycle, as a real master sends it.
	LargestEvent int64
}

// Targets of issue 4.
const (
	TargetDeploy    = 10 * time.Second
	TargetReconcile = 10 * time.Second
	TargetPeakMem   = 256 << 20
)

// Run starts a simulated cluster, deploys the scheduler onto every agent,
// restarts it and measures the reconciliation. It fails unless every agent
// ends with exactly one RUNNING task (the servers on distinct agents) and
// the restarted scheduler relaunches nothing.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.defaults(); err != nil {
		return Result{}, err
	}
	res := Result{Agents: cfg.Agents, Servers: cfg.Servers, Mode: "in-process", CPUs: cfg.CPUs}
	if cfg.Binary != "" {
		res.Mode = "process"
	} else if cfg.CPUs > 0 {
		return res, errors.New("scale: a CPU limit needs the scheduler as its own process (Binary)")
	}
	if cfg.CPUProfile != "" {
		if cfg.Binary != "" {
			return res, errors.New("scale: CPUProfile needs the in-process scheduler")
		}
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return res, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return res, err
		}
		defer pprof.StopCPUProfile()
	}
	simLog := zap.NewNop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t0 := time.Now()
	cluster, err := mesossim.Start(ctx, mesossim.Options{
		MasterIP: cfg.MasterIP, FirstAgentIP: cfg.FirstAgentIP, Agents: cfg.Agents,
		InProcess: true, AllocationInterval: cfg.AllocationInterval, Logger: simLog,
	})
	if err != nil {
		return res, fmt.Errorf("start the simulated cluster: %w", err)
	}
	defer cluster.Close()
	res.ClusterStart = time.Since(t0)
	cfg.Progress("simulated cluster of %d agents started in %v", cfg.Agents, res.ClusterStart.Round(time.Millisecond))

	env := schedulerEnv(cfg, cluster.MasterURL())

	// Deploy.
	self0 := selfCPU()
	sched, err := startScheduler(ctx, cfg, env, filepath.Join(cfg.Dir, "scheduler-1.log"))
	if err != nil {
		return res, err
	}
	final, err := sched.waitFor(ctx, cfg.PhaseTimeout, "every agent runs a task", func(m metricsSample) error {
		if m.running < float64(cfg.Agents) {
			return fmt.Errorf("%.0f of %d tasks RUNNING, %.0f offers received", m.running, cfg.Agents, m.offers)
		}
		return nil
	}, cfg.Progress)
	if err != nil {
		sched.stop()
		return res, err
	}
	res.SimulatorCPU = selfCPU() - self0
	res.Deploy.Usage = sched.usage()
	res.Deploy.OffersReceived, res.Deploy.OffersAccepted, res.Deploy.OffersDeclined = final.offers, final.accepted, final.declined
	res.Deploy.Updates = final.updates
	res.LargestEvent = mesossim.LargestEventBytes()
	if err := sched.stop(); err != nil {
		return res, fmt.Errorf("stop the scheduler: %w", err)
	}
	ev, err := readLog(sched.logPath)
	if err != nil {
		return res, err
	}
	if err := ev.deploy(&res.Deploy, sched.started, cfg.Agents); err != nil {
		return res, err
	}
	if err := checkMaster(ctx, cluster.MasterURL(), cfg.Agents, cfg.Servers); err != nil {
		return res, fmt.Errorf("after the deploy: %w", err)
	}
	cfg.Progress("deploy: %d tasks RUNNING %v after the first offer", cfg.Agents, res.Deploy.FirstOfferToAllRunning.Round(time.Millisecond))

	// Restart on the same state and reconcile.
	sched, err = startScheduler(ctx, cfg, env, filepath.Join(cfg.Dir, "scheduler-2.log"))
	if err != nil {
		return res, err
	}
	final, err = sched.waitFor(ctx, cfg.PhaseTimeout, "the restarted scheduler reconciles every task", func(m metricsSample) error {
		if m.subscribed != 1 || m.subscriptions < 1 || m.pending != 0 {
			return fmt.Errorf("subscribed %.0f, %.0f tasks not reconciled", m.subscribed, m.pending)
		}
		return nil
	}, cfg.Progress)
	if err != nil {
		sched.stop()
		return res, err
	}
	res.Reconcile.Usage = sched.usage()
	res.Reconcile.Relaunched = final.launched
	res.Reconcile.Tasks = int(final.running)
	if err := sched.stop(); err != nil {
		return res, fmt.Errorf("stop the restarted scheduler: %w", err)
	}
	ev, err = readLog(sched.logPath)
	if err != nil {
		return res, err
	}
	if err := ev.reconcile(&res.Reconcile, sched.started); err != nil {
		return res, err
	}
	if res.Reconcile.Relaunched != 0 || res.Reconcile.Tasks != cfg.Agents {
		return res, fmt.Errorf("after the restart: %v tasks relaunched, %d RUNNING (want 0 and %d)", res.Reconcile.Relaunched, res.Reconcile.Tasks, cfg.Agents)
	}
	if err := checkMaster(ctx, cluster.MasterURL(), cfg.Agents, cfg.Servers); err != nil {
		return res, fmt.Errorf("after the restart: %w", err)
	}
	cfg.Progress("restart: %d tasks reconciled %v after SUBSCRIBED", cfg.Agents, res.Reconcile.SubscribedToReconciled.Round(time.Millisecond))
	return res, nil
}

// schedulerEnv is the environment the DC/OS package would give the
// scheduler (package defaults for everything else), pointed at the
// simulator. Both modes load their configuration from it.
func schedulerEnv(cfg Config, master string) map[string]string {
	u := "nobody"
	if cu, err := user.Current(); err == nil {
		u = cu.Username
	}
	return map[string]string{
		config.EnvServiceName: "consul",
		config.EnvUser:        u,
		config.EnvMesosMaster: master,
		config.EnvStateDir:    filepath.Join(cfg.Dir, "state"),
		config.EnvExecutorURI: "http://" + cfg.MasterIP + ":1/dcos-consul", // in-process executors fetch nothing
		config.EnvServerCount: strconv.Itoa(cfg.Servers),
		config.EnvLogLevel:    "info",
	}
}

// runningScheduler is one scheduler run, as a process or in process.
type runningScheduler struct {
	started time.Time
	logPath string
	apiURL  string

	// process mode
	cmd    *exec.Cmd
	done   chan error
	cgroup string // CFS-limited cpu cgroup, removed after the process
	// in-process mode
	cancel    context.CancelFunc
	runErr    chan error
	logFile   *os.File
	cpuStartU time.Duration
	cpuStartS time.Duration

	peakHeap uint64
	peakAnon uint64
}

func startScheduler(ctx context.Context, cfg Config, env map[string]string, logPath string) (*runningScheduler, error) {
	port, err := freePort(cfg.MasterIP)
	if err != nil {
		return nil, err
	}
	env[config.EnvAPIPort] = strconv.Itoa(port)
	r := &runningScheduler{logPath: logPath, apiURL: "http://" + net.JoinHostPort(cfg.MasterIP, strconv.Itoa(port))}
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	if cfg.Binary != "" {
		cmd := exec.Command(cfg.Binary, "scheduler")
		if cfg.CPUs > 0 {
			cg, err := cpuCgroup(cfg.CPUs)
			if err != nil {
				lf.Close()
				return nil, err
			}
			r.cgroup = cg
			// The shell joins the cgroup, then becomes the scheduler: no
			// instant of the scheduler runs unlimited.
			cmd = exec.Command("/bin/sh", "-c", `echo $$ > "$1/cgroup.procs" && exec "$2" scheduler`, "sh", cg, cfg.Binary)
		}
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
		for _, k := range []string{"GOGC", "GOMEMLIMIT", "GODEBUG", "GOMAXPROCS"} { // Go runtime settings to try
			if v, ok := os.LookupEnv(k); ok {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
		}
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Stdout, cmd.Stderr = lf, lf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		r.started = time.Now()
		if err := cmd.Start(); err != nil {
			lf.Close()
			r.removeCgroup()
			return nil, fmt.Errorf("start %s scheduler: %w", cfg.Binary, err)
		}
		lf.Close() // the child has its own descriptor
		r.cmd = cmd
		r.done = make(chan error, 1)
		go func() { r.done <- cmd.Wait() }()
		return r, nil
	}
	c, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		lf.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.MasterIP, strconv.Itoa(port)))
	if err != nil {
		lf.Close()
		return nil, err
	}
	r.logFile = lf
	log := jsonLogger(lf).Named("scheduler")
	sctx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	r.runErr = make(chan error, 1)
	r.cpuStartU, r.cpuStartS = selfUserSys()
	r.started = time.Now()
	go pprof.Do(sctx, pprof.Labels("component", "scheduler"), func(ctx context.Context) {
		r.runErr <- scheduler.RunWith(ctx, c, log, scheduler.Options{Listener: ln})
	})
	return r, nil
}

// jsonLogger logs as the scheduler command does when not on a terminal
// (internal/logging), to w.
func jsonLogger(w io.Writer) *zap.Logger {
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(ec), zapcore.Lock(zapcore.AddSync(w)), zapcore.InfoLevel)
	return zap.New(core, zap.AddCaller())
}

// exited reports the scheduler's end if it ended.
func (r *runningScheduler) exited() (error, bool) {
	ch := r.done
	if ch == nil {
		ch = r.runErr
	}
	select {
	case err := <-ch:
		if err == nil {
			err = errors.New("returned")
		}
		return err, true
	default:
		return nil, false
	}
}

func (r *runningScheduler) stop() error {
	if r.cmd != nil {
		if r.cmd.ProcessState != nil {
			return nil
		}
		defer r.removeCgroup()
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
			<-r.done
			return errors.New("the scheduler did not stop within 30 s of SIGTERM")
		}
		return nil
	}
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	r.cancel = nil
	defer r.logFile.Close()
	select {
	case err := <-r.runErr:
		return err
	case <-time.After(30 * time.Second):
		return errors.New("the scheduler did not stop within 30 s")
	}
}

const cgroupCPU = "/sys/fs/cgroup/cpu"

// cpuCgroup makes a cgroup v1 cpu group limited to cpus with a CFS quota.
func cpuCgroup(cpus float64) (string, error) {
	dir, err := os.MkdirTemp(cgroupCPU, "dcos-consul-scale-")
	if err != nil {
		return "", fmt.Errorf("scale: a CPU limit needs a writable %s: %w", cgroupCPU, err)
	}
	const period = 100000 // µs, Mesos' CFS period
	for _, kv := range [][2]string{
		{"cpu.cfs_period_us", strconv.Itoa(period)},
		{"cpu.cfs_quota_us", strconv.Itoa(int(cpus * period))},
	} {
		if err := os.WriteFile(filepath.Join(dir, kv[0]), []byte(kv[1]), 0o644); err != nil {
			_ = os.Remove(dir)
			return "", fmt.Errorf("scale: cgroup %s: %w", kv[0], err)
		}
	}
	return dir, nil
}

func (r *runningScheduler) removeCgroup() {
	if r.cgroup != "" {
		_ = os.Remove(r.cgroup) // a cgroup directory goes with rmdir once empty
		r.cgroup = ""
	}
}

// usage is the scheduler's CPU and memory since it started.
func (r *runningScheduler) usage() Usage {
	u := Usage{PeakHeap: r.peakHeap, PeakAnon: r.peakAnon}
	if r.cmd != nil {
		u.User, u.System = procCPU(r.cmd.Process.Pid)
		u.PeakRSS, _ = procMem(r.cmd.Process.Pid)
		return u
	}
	// Everything this process did since the start (the simulator too).
	user, sys := selfUserSys()
	u.User, u.System = user-r.cpuStartU, sys-r.cpuStartS
	u.PeakRSS, _ = procMem(os.Getpid())
	u.Shared = true
	return u
}

// metricsSample is what the harness reads from /metrics.
type metricsSample struct {
	running, offers, accepted, declined, launched float64
	subscribed, subscriptions, pending, heap      float64
	updates                                       float64 // status updates received, every state
}

func (r *runningScheduler) sample(ctx context.Context) (metricsSample, error) {
	var m metricsSample
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodGet, r.apiURL+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		name := line[:i]
		switch {
		case strings.HasPrefix(name, "dcos_consul_scheduler_tasks{") && strings.Contains(name, `state="TASK_RUNNING"`):
			m.running += v
		case name == "dcos_consul_scheduler_offers_received_total":
			m.offers = v
		case strings.HasPrefix(name, "dcos_consul_scheduler_status_updates_total{"):
			m.updates += v
		case name == "dcos_consul_scheduler_offers_accepted_total":
			m.accepted = v
		case name == "dcos_consul_scheduler_offers_declined_total":
			m.declined = v
		case strings.HasPrefix(name, "dcos_consul_scheduler_tasks_launched_total"):
			m.launched += v
		case name == "dcos_consul_scheduler_subscribed":
			m.subscribed = v
		case name == "dcos_consul_scheduler_subscriptions_total":
			m.subscriptions = v
		case name == "dcos_consul_scheduler_reconciliation_pending_tasks":
			m.pending = v
		case name == "go_memstats_heap_inuse_bytes":
			m.heap = v
		}
	}
	return m, sc.Err()
}

// waitFor polls /metrics every 100 ms until done accepts a sample.
func (r *runningScheduler) waitFor(ctx context.Context, timeout time.Duration, what string, done func(metricsSample) error,
	progress func(string, ...any)) (metricsSample, error) {
	deadline := time.Now().Add(timeout)
	var last error
	var m metricsSample
	lastReport := time.Now()
	for time.Now().Before(deadline) {
		if err, ok := r.exited(); ok {
			return m, fmt.Errorf("%s: the scheduler stopped: %v (log %s)", what, err, r.logPath)
		}
		s, err := r.sample(ctx)
		if err == nil {
			m = s
			if r.cmd == nil {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				s.heap = float64(ms.HeapInuse)
			}
			if uint64(s.heap) > r.peakHeap {
				r.peakHeap = uint64(s.heap)
			}
			pid := os.Getpid()
			if r.cmd != nil {
				pid = r.cmd.Process.Pid
			}
			if _, anon := procMem(pid); anon > r.peakAnon {
				r.peakAnon = anon
			}
			if last = done(s); last == nil {
				return s, nil
			}
		} else {
			last = err
		}
		if time.Since(lastReport) > 5*time.Second {
			progress("%s: %v", what, last)
			lastReport = time.Now()
		}
		select {
		case <-ctx.Done():
			return m, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return m, fmt.Errorf("%s: not within %v: %v (log %s)", what, timeout, last, r.logPath)
}

// logEvents are the scheduler log lines the measurement needs.
type logEvents struct {
	loaded, subscribed, firstOffer, firstAccept, lastAccept, reconciled time.Time
	accepts                                                             int
	// runningAt[i] is when the (i+1)-th distinct task was first logged
	// TASK_RUNNING.
	runningAt []time.Time
}

func readLog(path string) (*logEvents, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ev := &logEvents{}
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var l struct {
			TS    string `json:"ts"`
			Msg   string `json:"msg"`
			Task  string `json:"task"`
			State string `json:"state"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.TS == "" {
			continue
		}
		ts, err := time.Parse("2006-01-02T15:04:05.000Z0700", l.TS)
		if err != nil {
			return nil, fmt.Errorf("%s: timestamp %q: %w", path, l.TS, err)
		}
		switch l.Msg {
		case "scheduler state loaded":
			ev.loaded = ts
		case "subscribed":
			if ev.subscribed.IsZero() {
				ev.subscribed = ts
			}
		case "offer accepted", "offer declined":
			if ev.firstOffer.IsZero() {
				ev.firstOffer = ts
			}
			if l.Msg == "offer accepted" {
				if ev.firstAccept.IsZero() {
					ev.firstAccept = ts
				}
				ev.lastAccept = ts
				ev.accepts++
			}
		case "task state":
			if l.State == "TASK_RUNNING" && !seen[l.Task] {
				seen[l.Task] = true
				ev.runningAt = append(ev.runningAt, ts)
			}
		case "explicit reconciliation complete; reconciling implicitly":
			if ev.reconciled.IsZero() {
				ev.reconciled = ts
			}
		}
	}
	return ev, sc.Err()
}

func (ev *logEvents) deploy(d *Deploy, started time.Time, agents int) error {
	if ev.subscribed.IsZero() || ev.firstOffer.IsZero() {
		return errors.New("the scheduler log has no \"subscribed\" or no offer line")
	}
	if len(ev.runningAt) < agents {
		return fmt.Errorf("the scheduler log shows %d tasks reaching TASK_RUNNING, want %d", len(ev.runningAt), agents)
	}
	all := ev.runningAt[agents-1]
	d.SubscribeToFirstOffer = ev.firstOffer.Sub(ev.subscribed)
	d.FirstOfferToAllRunning = all.Sub(ev.firstOffer)
	d.StartToAllRunning = all.Sub(started)
	d.FirstToLastAccept = ev.lastAccept.Sub(ev.firstAccept)
	d.Accepted = ev.accepts
	return nil
}

func (ev *logEvents) reconcile(r *Reconcile, started time.Time) error {
	if ev.subscribed.IsZero() || ev.reconciled.IsZero() {
		return errors.New("the restarted scheduler's log has no \"subscribed\" or no \"explicit reconciliation complete\"")
	}
	r.StartToLoaded = ev.loaded.Sub(started)
	r.StartToSubscribed = ev.subscribed.Sub(started)
	r.SubscribedToReconciled = ev.reconciled.Sub(ev.subscribed)
	r.StartToReconciled = ev.reconciled.Sub(started)
	return nil
}

// checkMaster reads the simulated master's state: every agent runs
// exactly one task of the framework, RUNNING, and the servers are on
// distinct agents.
func checkMaster(ctx context.Context, master string, agents, servers int) error {
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodGet, master+"/master/state", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var st struct {
		Frameworks []struct {
			Name  string `json:"name"`
			Tasks []struct {
				Name    string `json:"name"`
				State   string `json:"state"`
				SlaveID string `json:"slave_id"`
			} `json:"tasks"`
		} `json:"frameworks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return fmt.Errorf("master state: %w", err)
	}
	perAgent := map[string]int{}
	serverAgents := map[string]bool{}
	nServers, notRunning := 0, 0
	for _, fw := range st.Frameworks {
		if fw.Name != "consul" {
			continue
		}
		for _, t := range fw.Tasks {
			perAgent[t.SlaveID]++
			if t.State != "TASK_RUNNING" {
				notRunning++
			}
			if strings.HasPrefix(t.Name, "consul-server-") {
				nServers++
				serverAgents[t.SlaveID] = true
			}
		}
	}
	if len(perAgent) != agents || notRunning != 0 {
		return fmt.Errorf("master: tasks on %d agents (want %d), %d not RUNNING", len(perAgent), agents, notRunning)
	}
	for a, n := range perAgent {
		if n != 1 {
			return fmt.Errorf("master: agent %s runs %d tasks", a, n)
		}
	}
	if nServers != servers || len(serverAgents) != servers {
		return fmt.Errorf("master: %d servers on %d agents, want %d on distinct agents", nServers, len(serverAgents), servers)
	}
	return nil
}

func freePort(ip string) (int, error) {
	return freeport.One(ip)
}

func selfCPU() time.Duration {
	u, s := selfUserSys()
	return u + s
}

func selfUserSys() (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// clockTick is USER_HZ, 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// procCPU reads utime and stime of pid from /proc/<pid>/stat.
func procCPU(pid int) (user, sys time.Duration) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut) * clockTick, time.Duration(st) * clockTick
}

// procMem reads VmHWM (peak resident set) and RssAnon (anonymous
// resident memory now) of pid from /proc/<pid>/status, in bytes.
func procMem(pid int) (hwm, anon uint64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseUint(f[1], 10, 64)
		switch f[0] {
		case "VmHWM:":
			hwm = kb << 10
		case "RssAnon:":
			anon = kb << 10
		}
	}
	return hwm, anon
}

var buildOnce struct {
	sync.Once
	path string
	err  error
}

// Build builds the dcos-consul binary into dir (once per process).
func Build(dir string) (string, error) {
	buildOnce.Do(func() {
		p := filepath.Join(dir, "dcos-consul")
		cmd := exec.Command("go", "build", "-o", p, "github.com/dcos-consul/dcos-consul/cmd/dcos-consul")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %w\n%s", err, out)
			return
		}
		buildOnce.path = p
	})
	return buildOnce.path, buildOnce.err
}
