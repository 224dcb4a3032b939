// Package dev runs the embedded default of dcos-consul: a simulated Mesos
// cluster on loopback (master, agents, fetcher, volumes, Mesos-DNS), the real
// scheduler as its own process and, through the simulated agents, the real
// executor processes, so that one command gives a real Consul cluster.
//
// It is a development harness like the simulator it drives: the production
// scheduler and executor never import it.
package dev

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/freeport"
	"github.com/dcos-consul/dcos-consul/internal/mesosdns/server"
	"github.com/dcos-consul/dcos-consul/internal/mesossim"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

// Options configure a dev cluster. Zero values take the defaults of the
// `dcos-consul dev` command.
type Options struct {
	Agents  int    // simulated agents, default 5
	Servers int    // Consul servers, default 3
	WorkDir string // state of the simulator, the scheduler and the volumes; required
	// Binary is the dcos-consul executable that the scheduler runs from and
	// the agents fetch as the executor; default: this process's executable.
	Binary string
	// MasterIP is the master's loopback address (default 127.0.0.1); agents
	// take the following addresses (127.0.0.2, ...).
	MasterIP   string
	MasterPort int // default 5050
	AgentPort  int // default 5051
	DNSPort    int // the simulated Mesos-DNS, default 61053 on MasterIP
	APIPort    int // the scheduler's HTTP API on MasterIP, default 0: any free port
	// DNSRefresh is the Mesos-DNS refresh interval (Mesos-DNS's default is
	// 60 s, DC/OS's 30 s); dev uses 2 s so a new user is not kept waiting.
	DNSRefresh time.Duration
	// ExtraEnv is added to the scheduler's environment (option overrides,
	// e.g. CONSUL_DATACENTER=dc2), after dev's own settings.
	ExtraEnv []string
	// SchedulerOutput receives the scheduler process's stderr (its logs);
	// default: <WorkDir>/scheduler.log.
	SchedulerOutput *os.File
	Logger          *zap.Logger
}

func (o *Options) setDefaults() error {
	if o.Agents == 0 {
		o.Agents = 5
	}
	if o.Servers == 0 {
		o.Servers = 3
	}
	if o.WorkDir == "" {
		return errors.New("dev: a work directory is required")
	}
	if o.Servers > o.Agents {
		return fmt.Errorf("dev: %d servers need at least %d agents, have %d", o.Servers, o.Servers, o.Agents)
	}
	if o.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("dev: finding the dcos-consul executable: %w", err)
		}
		o.Binary = exe
	}
	if o.MasterIP == "" {
		o.MasterIP = "127.0.0.1"
	}
	if o.MasterPort == 0 {
		o.MasterPort = 5050
	}
	if o.AgentPort == 0 {
		o.AgentPort = 5051
	}
	if o.DNSPort == 0 {
		o.DNSPort = 61053
	}
	if o.DNSRefresh == 0 {
		o.DNSRefresh = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return nil
}

// Cluster is a running dev cluster.
type Cluster struct {
	Sim          *mesossim.Cluster
	DNS          *server.Server
	SchedulerURL string // http://ip:port of the scheduler's API
	opts         Options
	sched        *exec.Cmd
	// executorPort is the scheduler's executor channel (TLS) port on
	// MasterIP, chosen once and kept across restarts as the API port is.
	executorPort int
	schedDone    chan error
	logFile      *os.File
	upd          updater // options applied by Update (Cosmos's service update)
	transports   transportCache
	seenRoots    seenRoots
}

// Start brings up the simulator, its Mesos-DNS and the scheduler process.
// The Consul tasks come up afterwards, as the scheduler places them.
func Start(ctx context.Context, o Options) (_ *Cluster, err error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(o.WorkDir)
	if err != nil {
		return nil, fmt.Errorf("dev: work dir %q: %w", o.WorkDir, err)
	}
	o.WorkDir = abs
	if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("dev: creating work dir: %w", err)
	}
	c := &Cluster{opts: o}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()

	firstAgent, err := nextIP(o.MasterIP)
	if err != nil {
		return nil, err
	}
	c.Sim, err = mesossim.Start(ctx, mesossim.Options{
		MasterIP:     o.MasterIP,
		MasterPort:   o.MasterPort,
		Agents:       o.Agents,
		FirstAgentIP: firstAgent,
		AgentPort:    o.AgentPort,
		WorkDir:      filepath.Join(o.WorkDir, "mesos"),
		Logger:       o.Logger.Named("mesos"),
	})
	if err != nil {
		return nil, fmt.Errorf("dev: starting the simulated Mesos cluster: %w", err)
	}

	c.DNS, err = server.New(server.Config{
		Addr:    net.JoinHostPort(o.MasterIP, strconv.Itoa(o.DNSPort)),
		Domain:  "mesos",
		Refresh: o.DNSRefresh,
		Source:  server.HTTPSource(http.DefaultClient, c.Sim.MasterURL()),
		Logger:  o.Logger.Named("mesos-dns"),
	})
	if err != nil {
		return nil, fmt.Errorf("dev: configuring Mesos-DNS: %w", err)
	}
	if err := c.DNS.Start(ctx); err != nil {
		return nil, fmt.Errorf("dev: starting Mesos-DNS on %s:%d: %w", o.MasterIP, o.DNSPort, err)
	}

	if err := c.resumeOptions(); err != nil {
		return nil, err
	}
	if err := c.startScheduler(); err != nil {
		return nil, err
	}
	return c, nil
}

// SchedulerEnv is the environment dev gives the scheduler: what the DC/OS
// package template would set, pointed at the simulator.
func (c *Cluster) SchedulerEnv(apiPort int) []string {
	o := c.opts
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		config.EnvServiceName + "=consul",
		config.EnvUser + "=" + currentUser(),
		config.EnvMesosMaster + "=" + c.Sim.MasterURL(),
		config.EnvStateDir + "=" + filepath.Join(o.WorkDir, "scheduler"),
		config.EnvAPIPort + "=" + strconv.Itoa(apiPort),
		// Everything dev runs listens on loopback, the scheduler API too.
		config.EnvAPIHost + "=" + o.MasterIP,
		config.EnvOperatorTokenFile + "=" + c.OperatorTokenFile(),
		config.EnvExecutorURI + "=file://" + o.Binary,
		config.EnvExecutorDNSServer + "=" + c.DNS.Addr(),
		config.EnvServerCount + "=" + strconv.Itoa(o.Servers),
		// Small tasks: a laptop runs them all.
		config.EnvServerCPUs + "=0.2",
		config.EnvServerMem + "=256",
		config.EnvServerDisk + "=256",
		config.EnvClientCPUs + "=0.1",
		config.EnvClientMem + "=128",
	}
	return append(env, o.ExtraEnv...)
}

// OperatorTokenFile is where the scheduler writes its operator token (mode
// 0600): what `dcos-consul consul` commands send for mutating calls
// (DCOS_CONSUL_TOKEN_FILE).
func (c *Cluster) OperatorTokenFile() string {
	return filepath.Join(c.opts.WorkDir, "operator-token")
}

func (c *Cluster) startScheduler() error {
	o := c.opts
	apiPort := o.APIPort
	if u, err := url.Parse(c.SchedulerURL); apiPort == 0 && c.SchedulerURL != "" && err == nil {
		// A restart (an option update) keeps the address users were given.
		apiPort, _ = strconv.Atoi(u.Port())
	}
	if apiPort == 0 {
		p, err := freePort(o.MasterIP)
		if err != nil {
			return fmt.Errorf("dev: choosing a port for the scheduler API: %w", err)
		}
		apiPort = p
		// Kept for restarts: executors launched by one scheduler fetch
		// their secrets from the API address in their task spec, and the
		// next scheduler answers there (on DC/OS a moved scheduler has
		// another address: such a task fails after its fetch timeout and
		// is relaunched; see docs/security.md).
		c.opts.APIPort = p
	}
	c.SchedulerURL = "http://" + net.JoinHostPort(o.MasterIP, strconv.Itoa(apiPort))
	if c.executorPort == 0 {
		// Kept for restarts, as the API port: task specs name it.
		p, err := freePort(o.MasterIP)
		if err != nil {
			return fmt.Errorf("dev: choosing a port for the scheduler's executor channel: %w", err)
		}
		c.executorPort = p
	}
	out := o.SchedulerOutput
	if out == nil {
		f, err := os.OpenFile(filepath.Join(o.WorkDir, "scheduler.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("dev: opening the scheduler log: %w", err)
		}
		c.logFile, out = f, f
	}
	cmd := exec.Command(o.Binary, "scheduler")
	cmd.Env = append(c.SchedulerEnv(apiPort), config.EnvExecutorPort+"="+strconv.Itoa(c.executorPort))
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("dev: starting the scheduler %s: %w", o.Binary, err)
	}
	c.sched = cmd
	c.schedDone = make(chan error, 1)
	go func() { c.schedDone <- cmd.Wait() }()
	o.Logger.Info("scheduler started", zap.Int("pid", cmd.Process.Pid), zap.String("api", c.SchedulerURL))
	return nil
}

// SchedulerExited is closed-over by callers that want to notice the
// scheduler process dying: it yields the process's exit error once.
func (c *Cluster) SchedulerExited() <-chan error { return c.schedDone }

// RestartScheduler stops the scheduler process (SIGTERM, as Marathon does
// when it moves or restarts an app) and starts a new one with the same
// state directory: the failover path of a real deployment.
func (c *Cluster) RestartScheduler() error {
	c.stopScheduler(15 * time.Second)
	return c.startScheduler()
}

// KillScheduler SIGKILLs the scheduler process without restarting it.
func (c *Cluster) KillScheduler() {
	if c.sched != nil && c.sched.Process != nil {
		_ = syscall.Kill(-c.sched.Process.Pid, syscall.SIGKILL)
		<-c.schedDone
		c.sched = nil
	}
}

func (c *Cluster) stopScheduler(grace time.Duration) {
	if c.sched == nil || c.sched.Process == nil {
		return
	}
	pid := c.sched.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-c.schedDone:
	case <-time.After(grace):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-c.schedDone
	}
	c.sched = nil
}

// Stop ends the scheduler, the simulator (and with it every executor
// process) and Mesos-DNS. Nothing is left running; the work dir stays.
func (c *Cluster) Stop() {
	c.stopScheduler(15 * time.Second)
	if c.DNS != nil {
		_ = c.DNS.Close()
	}
	if c.Sim != nil {
		if err := c.Sim.Close(); err != nil {
			c.opts.Logger.Warn("stopping the simulated cluster", zap.Error(err))
		}
	}
	if c.logFile != nil {
		_ = c.logFile.Close()
	}
}

func nextIP(ip string) (string, error) {
	p := net.ParseIP(ip).To4()
	if p == nil || p[0] != 127 {
		return "", fmt.Errorf("dev: master address %q: want an IPv4 loopback address such as 127.0.0.1", ip)
	}
	q := make(net.IP, 4)
	copy(q, p)
	q[3]++
	if q[3] == 0 {
		return "", fmt.Errorf("dev: no room for agents after %s", ip)
	}
	return q.String(), nil
}

func freePort(ip string) (int, error) {
	return freeport.One(ip)
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if os.Geteuid() == 0 {
		return "root"
	}
	return "nobody"
}
