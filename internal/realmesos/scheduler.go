package realmesos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

// Scheduler is the `dcos-consul scheduler` process, run with the
// environment the DC/OS package gives it (marathon.json), pointed at the
// real cluster: MESOS_MASTER=zk://.../mesos, its state in ZooKeeper.
type Scheduler struct {
	URL       string // http://ip:port of its API
	tokenFile string // where it writes its operator token
	env       []string
	proc      *proc
}

// SchedulerOptions configure the scheduler process.
type SchedulerOptions struct {
	Binary string // the dcos-consul executable; also the executor the agents fetch
	// StateZK is the scheduler's ZooKeeper state store: host:port/chroot.
	StateZK string
	// ExtraEnv is added after the harness's settings (e.g.
	// SERVER_REPLACE_AFTER=10s).
	ExtraEnv []string
	LogPath  string
}

// NewScheduler prepares (does not start) the scheduler process for c.
func (c *Cluster) NewScheduler(o SchedulerOptions) (*Scheduler, error) {
	// The API listens on every address, as under Marathon (no API_HOST).
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		return nil, fmt.Errorf("choosing a port for the scheduler API: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	// The executor channel (TLS) on a port of its own, kept across the
	// scheduler's restarts as under Marathon (PORT_EXECUTOR).
	el, err := net.Listen("tcp", ":0")
	if err != nil {
		return nil, fmt.Errorf("choosing a port for the scheduler's executor channel: %w", err)
	}
	eport := el.Addr().(*net.TCPAddr).Port
	el.Close()
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		config.EnvServiceName + "=consul",
		// root: the agents run as root here and the executor's sandbox,
		// fetched binary and volume are the framework user's.
		config.EnvUser + "=root",
		// Marathon's HOST: the address executors reach the API at.
		"HOST=" + c.MasterIP(),
		config.EnvMesosMaster + "=" + c.MasterZK(),
		config.EnvZK + "=" + o.StateZK,
		config.EnvAPIPort + "=" + strconv.Itoa(port),
		config.EnvExecutorPort + "=" + strconv.Itoa(eport),
		config.EnvExecutorURI + "=file://" + o.Binary,
		config.EnvExecutorDNSServer + "=" + c.DNSAddr(),
		config.EnvServerCount + "=3",
		// Small tasks, as dev: a 2-core machine runs them all.
		config.EnvServerCPUs + "=0.2",
		config.EnvServerMem + "=256",
		config.EnvServerDisk + "=256",
		config.EnvClientCPUs + "=0.1",
		config.EnvClientMem + "=128",
		// The operator token, for the mutating routes and the ACL
		// management token (ManagementToken).
		config.EnvOperatorTokenFile + "=" + filepath.Join(c.opts.Dir, "operator-token"),
	}
	env = append(env, o.ExtraEnv...)
	logPath := o.LogPath
	if logPath == "" {
		logPath = filepath.Join(c.opts.Dir, "scheduler.log")
	}
	return &Scheduler{
		URL:       "http://" + net.JoinHostPort(c.MasterIP(), strconv.Itoa(port)),
		tokenFile: filepath.Join(c.opts.Dir, "operator-token"),
		env:       env,
		proc: &proc{
			name: "dcos-consul scheduler", path: o.Binary, args: []string{"scheduler"},
			env: env, logPath: logPath,
		},
	}, nil
}

// Start starts the scheduler process; extra env (e.g. SDK_UNINSTALL=true)
// is added for this start only.
func (s *Scheduler) Start(extra ...string) error {
	s.proc.env = append(append([]string(nil), s.env...), extra...)
	return s.proc.start()
}

// Stop SIGTERMs the scheduler (as Marathon does when it restarts or moves
// the app) and waits for it to exit (SIGKILL after grace).
func (s *Scheduler) Stop(grace time.Duration) { s.proc.stop(syscall.SIGTERM, grace) }

// Running reports whether the process runs.
func (s *Scheduler) Running() bool { return s.proc.running() }

// ExitErr is the process's exit error once it has exited.
func (s *Scheduler) ExitErr() error { return s.proc.err }

// LogPath is the scheduler's log file.
func (s *Scheduler) LogPath() string { return s.proc.logPath }

// Health is the scheduler's GET /v1/health.
type Health struct {
	Deploy     string `json:"deploy"`
	Recovery   string `json:"recovery"`
	Subscribed bool   `json:"subscribed"`
	Error      string `json:"error"`
}

// Health reads GET /v1/health (its body; the status code says healthy or
// not and is not an error here).
func (s *Scheduler) Health(ctx context.Context) (Health, error) {
	var h Health
	err := s.getJSON(ctx, "/v1/health", &h)
	return h, err
}

// get reads GET path of the scheduler's API: its body and status code.
func (s *Scheduler) get(ctx context.Context, path string) ([]byte, int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return b, resp.StatusCode, err
}

func (s *Scheduler) getJSON(ctx context.Context, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s (%s): %w", path, resp.Status, err)
	}
	return nil
}

// ManagementToken reads the service's Consul ACL management token from the
// scheduler's API with its operator token, as `dcos-consul consul acl
// management-token` does.
func (s *Scheduler) ManagementToken(ctx context.Context) (string, error) {
	op, err := os.ReadFile(s.tokenFile)
	if err != nil {
		return "", fmt.Errorf("the operator token: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/v1/acl/management-token", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("X-Dcos-Consul-Token", strings.TrimSpace(string(op)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		SecretID string `json:"secret_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.SecretID == "" {
		return "", fmt.Errorf("GET /v1/acl/management-token: %s (%v)", resp.Status, err)
	}
	return out.SecretID, nil
}
