package dev

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// ConsulHTTPPort is the Consul HTTP port dev's scheduler uses (the default).
const ConsulHTTPPort = 8500

// Run starts a dev cluster, tells the user where everything is, waits for
// a Consul leader, and runs until ctx ends; then it stops everything.
func Run(ctx context.Context, o Options, out io.Writer, readyTimeout time.Duration) error {
	start := time.Now()
	c, err := Start(ctx, o)
	if err != nil {
		return err
	}
	defer c.Stop()
	fmt.Fprintf(out, "Mesos master:     %s\n", c.Sim.MasterURL())
	for _, a := range c.Sim.Agents() {
		fmt.Fprintf(out, "Mesos agent:      %s  %s:%d\n", a.ID, a.IP, a.Port)
	}
	fmt.Fprintf(out, "Mesos-DNS:        %s  (dig @%s -p %s consul-server-0.consul.mesos)\n", c.DNS.Addr(), hostOf(c.DNS.Addr()), portOf(c.DNS.Addr()))
	fmt.Fprintf(out, "Scheduler API:    %s/v1/plans/deploy\n", c.SchedulerURL)
	fmt.Fprintf(out, "Operator CLI:     export DCOS_CONSUL_URL=%s; dcos-consul consul plan show\n", c.SchedulerURL)
	if cosmosURL, stopCosmos, err := c.ServeCosmos(); err == nil {
		defer stopCosmos()
		fmt.Fprintf(out, "Option updates:   export DCOS_CONSUL_COSMOS_URL=%s; dcos-consul consul update start --options new.json\n", cosmosURL)
	} else {
		fmt.Fprintf(out, "Option updates:   not available (%v)\n", err)
	}
	fmt.Fprintf(out, "Work dir:         %s (scheduler log: scheduler.log)\n", c.opts.WorkDir)
	fmt.Fprintln(out, "Waiting for Consul to elect a leader ...")

	readyCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	addr, leader, err := c.WaitForLeader(readyCtx)
	cancel()
	switch {
	case err == nil:
		fmt.Fprintf(out, "Consul is up after %s: leader %s\n", time.Since(start).Round(100*time.Millisecond), leader)
		fmt.Fprintf(out, "Consul HTTP/UI:   http://%s/ui\n", addr)
		fmt.Fprintf(out, "Consul DNS:       dig @%s -p 8600 consul.service.consul\n", hostOf(addr))
	case ctx.Err() != nil:
		return nil
	default:
		fmt.Fprintf(out, "No Consul leader after %s (%v): see %s/v1/plans/deploy and the scheduler log; still running.\n", readyTimeout, err, c.SchedulerURL)
	}
	fmt.Fprintln(out, "Ctrl-C stops everything.")
	select {
	case <-ctx.Done():
	case err := <-c.SchedulerExited():
		return fmt.Errorf("the scheduler exited (%v): see %s/scheduler.log", err, c.opts.WorkDir)
	}
	fmt.Fprintln(out, "Stopping ...")
	return nil
}

// WaitForLeader polls the Consul HTTP API on every agent until one reports
// a leader. It returns that agent's HTTP address and the leader's address.
func (c *Cluster) WaitForLeader(ctx context.Context) (httpAddr, leader string, err error) {
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, a := range c.Sim.Agents() {
			addr := net.JoinHostPort(a.IP, strconv.Itoa(ConsulHTTPPort))
			if l, err := consulLeader(ctx, client, addr); err == nil && l != "" {
				return addr, l, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", "", fmt.Errorf("waiting for a Consul leader: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

func consulLeader(ctx context.Context, client *http.Client, addr string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/status/leader", nil)
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
