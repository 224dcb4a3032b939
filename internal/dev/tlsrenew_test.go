package dev

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/pki"
)

// TestDevTLSCertRenewal: servers' certificates (3 minutes here instead of
// a year) are renewed before they expire, one server at a time while the
// cluster is healthy, in place: each server's executor is asked (a
// framework MESSAGE) to load a new certificate into the running agent, so
// no server restarts (same task IDs) and no write through a client agent
// fails while every server comes to present a new certificate from the CA.
func TestDevTLSCertRenewal(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole dev cluster with real Consul")
	}
	workDir := t.TempDir()
	opts := Options{
		Agents: 4, Servers: 3, WorkDir: workDir, Binary: binary,
		MasterIP: "127.9.0.1", MasterPort: 5050, AgentPort: 5051, DNSPort: 61053,
		DNSRefresh: time.Second, Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Named("dev"),
		ExtraEnv: []string{config.EnvTLS + "=true", config.EnvTLSServerCertLifetime + "=3m"},
	}
	ctx := context.Background()
	c, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		c.Stop()
		if t.Failed() {
			dumpLogs(t, workDir)
		}
	}()
	waitCtx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	_, _, err = c.WaitForLeader(waitCtx)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	var tasks []masterTask
	eventually(t, 3*time.Minute, "3 servers and 1 client RUNNING", func() error {
		tasks = runningTasks(t, c)
		if len(tasks) != 4 || len(servers(tasks)) != 3 {
			return fmt.Errorf("running tasks: %+v", tasks)
		}
		return nil
	})
	caPEM, err := c.FetchCA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pool, _ := pki.Pool(caPEM)
	serial := func(ip string) (string, error) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", net.JoinHostPort(ip, "8501"),
			&tls.Config{RootCAs: pool, ServerName: ip})
		if err != nil {
			return "", err
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
	}
	srv := servers(tasks)
	taskIDs := map[string]string{}
	for _, s := range srv {
		taskIDs[s.Name] = s.ID
	}
	first := map[string]string{}
	for _, s := range srv {
		if first[s.AgentIP], err = serial(s.AgentIP); err != nil {
			t.Fatal(err)
		}
	}
	var clientIP string
	for _, tk := range tasks {
		if !isServerTask(tk) {
			clientIP = tk.AgentIP
		}
	}
	client := tlsConsul(t, c, clientIP)
	eventually(t, time.Minute, "a first write through the client", func() error {
		_, err := client.KV().Put(&consul.KVPair{Key: "renew", Value: []byte("0")}, nil)
		return err
	})

	wctx, stopWriter := context.WithCancel(ctx)
	var mu sync.Mutex
	writes, failed := 0, []string{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; wctx.Err() == nil; i++ {
			_, err := client.KV().Put(&consul.KVPair{Key: "renew", Value: []byte(fmt.Sprint(i))}, nil)
			mu.Lock()
			writes++
			if err != nil {
				failed = append(failed, time.Now().Format(time.TimeOnly)+" "+err.Error())
			}
			mu.Unlock()
			time.Sleep(200 * time.Millisecond)
		}
	}()
	eventually(t, 9*time.Minute, "every server presents a renewed certificate", func() error {
		for ip, s := range first {
			now, err := serial(ip)
			if err != nil {
				return fmt.Errorf("%s: %w", ip, err)
			}
			if now == s {
				return fmt.Errorf("%s still presents its first certificate", ip)
			}
		}
		return nil
	})
	stopWriter()
	<-done
	mu.Lock()
	defer mu.Unlock()
	t.Logf("writer during the renewals: %d writes, %d failed", writes, len(failed))
	if len(failed) > 0 {
		t.Errorf("writes failed during the certificate renewals: %v", failed)
	}
	if writes < 50 {
		t.Errorf("only %d writes", writes)
	}
	// In place: the same server tasks run, each renewed by a reload.
	for _, tk := range servers(runningTasks(t, c)) {
		if id, ok := taskIDs[tk.Name]; !ok || id != tk.ID {
			t.Errorf("server %s runs as task %s, was %s: restarted instead of renewed in place", tk.Name, tk.ID, id)
		}
	}
	logPath := filepath.Join(workDir, "scheduler.log")
	if n := countInFile(logPath, "TLS certificate renewed in place"); n < 3 {
		t.Errorf("%d in-place renewals reported in the scheduler log, want at least 3", n)
	}
	if n := countInFile(logPath, "renewing a Consul server's TLS certificate: restarting it"); n > 0 {
		t.Errorf("%d renewals fell back to a restart", n)
	}
}
