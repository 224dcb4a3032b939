package dev

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dcos-consul/dcos-consul/internal/devstate"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

// ConsulHTTPPort is the Consul HTTP port dev's scheduler uses by default.
const ConsulHTTPPort = 8500

// Console is where dev talks to the person who started it.
type Console struct {
	Out io.Writer
	// Live: Out is a terminal; the status is one line redrawn in place,
	// with a spinner. Otherwise a status line is printed when it changes.
	Live bool
	// Width truncates the live line (0: no limit), so that it never wraps.
	Width int
	// Quiet: no status view; only the summary once Consul is up (and
	// problems).
	Quiet bool
	// WellKnown is the well-known state file ("" : only the work dir's).
	WellKnown string
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// Run starts a dev cluster, says where it is (the state files that the
// other dcos-consul commands read), shows its status until Consul is up,
// then a summary, then keeps the status up to date until ctx ends or
// `dev stop`; then it stops everything.
func Run(ctx context.Context, o Options, con Console, readyTimeout time.Duration) error {
	start := time.Now()
	out := con.Out
	c, err := Start(ctx, o)
	if err != nil {
		return err
	}
	defer c.Stop()
	files := []string{devstate.InWorkDir(c.opts.WorkDir)}
	if con.WellKnown != "" {
		files = append(files, con.WellKnown)
	}
	st := devstate.State{PID: os.Getpid(), WorkDir: c.opts.WorkDir, SchedulerURL: c.SchedulerURL,
		MasterURL: c.Sim.MasterURL(), MesosDNS: c.DNS.Addr(), Started: start.UTC(), TokenFile: c.OperatorTokenFile()}
	// dev's stand-in for Cosmos's service update: `dcos-consul consul
	// update start --options FILE` finds it in the state file.
	if cosmosURL, stopCosmos, err := c.ServeCosmos(); err == nil {
		defer stopCosmos()
		st.CosmosURL = cosmosURL
	} else if !con.Quiet {
		fmt.Fprintf(out, "dev: option updates are not available: %v\n", err)
	}
	if err := devstate.Write(st, files...); err != nil {
		return fmt.Errorf("dev: saying where the cluster is: %w", err)
	}
	defer devstate.Remove(st.PID, files...)
	if !con.Quiet {
		fmt.Fprintf(out, "dev: %s, %s; work dir %s\n", plural(len(c.Sim.Agents()), "simulated Mesos agent"), plural(c.opts.Servers, "Consul server"), c.opts.WorkDir)
		fmt.Fprintf(out, "dev: logs in %s/dev.log and %s/scheduler.log\n", c.opts.WorkDir, c.opts.WorkDir)
	}

	reader := newStatusReader(c.Sim.MasterURL(), c.SchedulerURL)
	tick := 500 * time.Millisecond
	if !con.Live {
		tick = time.Second
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	v := &view{con: con, start: start, readyTimeout: readyTimeout,
		summary: func(s Status) string {
			return Summary(s, c.SchedulerURL, c.Sim.MasterURL(), c.DNS.Addr(), c.opts.WorkDir)
		},
		notReady: fmt.Sprintf("see %s/v1/plans/deploy and %s/scheduler.log; still running", c.SchedulerURL, c.opts.WorkDir)}
	for {
		v.update(time.Now(), reader.Read(ctx))
		select {
		case <-ctx.Done():
			v.clear()
			fmt.Fprintln(out, "Stopping ...")
			return nil
		case err := <-c.SchedulerExited():
			v.clear()
			return fmt.Errorf("the scheduler exited (%v): see %s/scheduler.log", err, c.opts.WorkDir)
		case <-t.C:
		}
	}
}

// view is dev's console: what it prints for each status read.
type view struct {
	con          Console
	start        time.Time
	readyTimeout time.Duration
	summary      func(Status) string
	notReady     string // what to look at when Consul is not up in time

	last               string
	frame              int
	summarized, warned bool
	leaderAt           time.Time
}

// update shows status s read at now: the live line redrawn (terminal), or a
// line when it changed (piped), or nothing (quiet); the summary once Consul
// is up (deployed, or a leader for 30 s while a client is still on its
// way); a warning once if it is not up after readyTimeout.
func (v *view) update(now time.Time, s Status) {
	out := v.con.Out
	if s.Leader != "" && v.leaderAt.IsZero() {
		v.leaderAt = now
	}
	line := s.Line()
	switch {
	case v.con.Quiet:
	case v.con.Live:
		l := spinner[v.frame%len(spinner)] + " " + line
		v.frame++
		if v.con.Width > 1 && len([]rune(l)) >= v.con.Width {
			l = string([]rune(l)[:v.con.Width-2]) + "…"
		}
		fmt.Fprint(out, "\r\033[K"+l)
	case line != v.last:
		fmt.Fprintf(out, "%6.1fs  %s\n", now.Sub(v.start).Seconds(), line)
	}
	v.last = line
	if !v.summarized && (s.Ready() || (!v.leaderAt.IsZero() && now.Sub(v.leaderAt) > 30*time.Second)) {
		v.summarized = true
		v.clear()
		fmt.Fprintf(out, "\n%s\n", strings.Replace(v.summary(s), "Consul is up:",
			fmt.Sprintf("Consul is up after %s:", now.Sub(v.start).Round(100*time.Millisecond)), 1))
	}
	if !v.summarized && !v.warned && now.Sub(v.start) > v.readyTimeout {
		v.warned = true
		v.clear()
		fmt.Fprintf(out, "No Consul leader after %s: %s.\n", v.readyTimeout, v.notReady)
	}
}

// clear erases the live line.
func (v *view) clear() {
	if v.con.Live && !v.con.Quiet {
		fmt.Fprint(v.con.Out, "\r\033[K")
	}
}

// consulHTTPPort is the Consul HTTP port the scheduler was told to use
// (dev --env CONSUL_PORT_HTTP=...), else the default.
func (c *Cluster) consulHTTPPort() int {
	port := ConsulHTTPPort
	for _, kv := range c.opts.ExtraEnv {
		if v, ok := strings.CutPrefix(kv, config.EnvPortHTTP+"="); ok {
			if p, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && p > 0 {
				port = p
			}
		}
	}
	return port
}

// WaitForLeader polls the Consul HTTP API on every agent until one reports
// a leader. It returns that agent's HTTP address and the leader's address.
func (c *Cluster) WaitForLeader(ctx context.Context) (httpAddr, leader string, err error) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, a := range c.Sim.Agents() {
			cfg, err := c.ConsulConfig(ctx, a.IP, "")
			if err != nil {
				break // with TLS: the scheduler does not answer yet
			}
			client := cfg.HttpClient
			if client == nil {
				client = &http.Client{}
			}
			client.Timeout = 2 * time.Second
			base := cfg.Scheme + "://" + cfg.Address
			if l, err := consulLeader(ctx, client, base); err == nil && l != "" {
				return cfg.Address, l, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", "", fmt.Errorf("waiting for a Consul leader: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

func consulLeader(ctx context.Context, client *http.Client, base string) (string, error) {
	addr := base
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/status/leader", nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", addr, resp.Status)
	}
	var leader string
	if err := json.NewDecoder(resp.Body).Decode(&leader); err != nil {
		return "", fmt.Errorf("%s: decoding the leader: %w", addr, err)
	}
	return leader, nil
}

func hostOf(hp string) string {
	h, _, err := net.SplitHostPort(hp)
	if err != nil {
		return hp
	}
	return h
}

func portOf(hp string) string {
	_, p, err := net.SplitHostPort(hp)
	if err != nil {
		return ""
	}
	return p
}

// StatusOf reads the status of the dev cluster a state file describes,
// for `dcos-consul dev status`.
func StatusOf(ctx context.Context, st devstate.State) Status {
	return newStatusReader(st.MasterURL, st.SchedulerURL).Read(ctx)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
