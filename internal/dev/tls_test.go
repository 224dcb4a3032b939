package dev

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/dcos-consul/dcos-consul/scheduler/pki"
)

// TestDevTLS: with the defaults (security.tls.enabled) a dev cluster comes up with TLS:
// every server's HTTPS API presents a certificate that verifies against
// the CA the scheduler serves at /v1/tls/ca (as server.dc1.consul and as
// its address); plain HTTP is off; a plaintext RPC connection to a
// server's RPC port is closed; the clients joined (their certificates came
// through auto_encrypt) and a KV write through a client is read back
// through a server; the scheduler reaches Consul over HTTPS (its UI
// proxy); gRPC is served over TLS only (checkDevGRPCTLS); and neither
// the CA key nor any private key shows up anywhere an observer can read.
func TestDevTLS(t *testing.T) {
	besideOthers(t)
	if testing.Short() {
		t.Skip("runs a whole dev cluster with real Consul")
	}
	workDir := t.TempDir()
	opts := Options{
		Agents: 5, Servers: 3, WorkDir: workDir, Binary: binary,
		MasterIP: "127.8.0.1", MasterPort: 5050, AgentPort: 5051, DNSPort: 61053,
		DNSRefresh: time.Second, Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Named("dev"),
	}
	ctx := context.Background()
	c, _, stop := startLeading(t, opts, 4*time.Minute)
	tasks := checkCluster(t, c)
	srv := servers(tasks)

	caPEM, err := c.FetchCA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pki.Pool(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range srv {
		checkServerCertificate(t, pool, s.AgentIP)
		if conn, err := net.DialTimeout("tcp", net.JoinHostPort(s.AgentIP, "8500"), 2*time.Second); err == nil {
			conn.Close()
			t.Errorf("plain HTTP answers on %s:8500", s.AgentIP)
		}
		if !plainRPCClosed(t, net.JoinHostPort(s.AgentIP, "8300")) {
			t.Errorf("server %s keeps a plaintext RPC connection open", s.AgentIP)
		}
	}

	var clientIP string
	for _, tk := range tasks {
		if !isServerTask(tk) {
			clientIP = tk.AgentIP
		}
	}
	client := tlsConsul(t, c, clientIP)
	server := tlsConsul(t, c, srv[0].AgentIP)
	eventually(t, 2*time.Minute, "every agent alive as a member", func() error {
		ms, err := server.Agent().Members(false)
		if err != nil {
			return err
		}
		alive := 0
		for _, m := range ms {
			if m.Status == 1 {
				alive++
			}
		}
		if alive != 5 {
			return fmt.Errorf("%d alive members, want 5", alive)
		}
		return nil
	})
	eventually(t, time.Minute, "a KV write through a client (its RPC to the servers over TLS)", func() error {
		_, err := client.KV().Put(&consul.KVPair{Key: "tls-test", Value: []byte("over-tls")}, nil)
		return err
	})
	p, _, err := server.KV().Get("tls-test", nil)
	if err != nil || p == nil || string(p.Value) != "over-tls" {
		t.Fatalf("KV read through a server over HTTPS: %v %v", p, err)
	}

	// The scheduler's own Consul client: its UI proxy reads through a
	// server over HTTPS verified against the CA.
	eventually(t, time.Minute, "the scheduler's UI proxy reaches Consul over HTTPS", func() error {
		resp, err := http.Get(c.SchedulerURL + "/consul/v1/catalog/datacenters")
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", resp.Status, b)
		}
		return nil
	})
	checkDevGRPCTLS(t, c, tasks, pool, client)

	collected := collectObservable(t, c)
	stop()
	sec := storedSecrets(t, workDir)
	if sec.CA.CertPEM != caPEM {
		t.Fatal("the CA the scheduler serves is not the one it stored")
	}
	scanForSecrets(t, workDir, collected, sec, tasks, nil)
}

func isServerTask(tk masterTask) bool {
	for _, s := range []string{"consul-server-"} {
		if len(tk.Name) >= len(s) && tk.Name[:len(s)] == s {
			return true
		}
	}
	return false
}

// tlsConsul is a Consul client for the agent at ip of a TLS dev cluster.
func tlsConsul(t *testing.T, c *Cluster, ip string) *consul.Client {
	t.Helper()
	if !c.ConsulTLS() {
		t.Fatal("the dev cluster runs without TLS")
	}
	return consulClient(t, c, ip)
}

// checkServerCertificate: the HTTPS API of the server at ip presents a
// certificate that verifies against pool as server.dc1.consul and as ip,
// and not against the system roots alone.
func checkServerCertificate(t *testing.T, pool *x509.CertPool, ip string) {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", net.JoinHostPort(ip, "8501"),
		&tls.Config{InsecureSkipVerify: true}) //nolint:gosec // verified below, against the CA
	if err != nil {
		t.Fatalf("HTTPS on %s:8501: %v", ip, err)
	}
	defer conn.Close()
	chain := conn.ConnectionState().PeerCertificates
	if len(chain) == 0 {
		t.Fatalf("%s presents no certificate", ip)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	for _, name := range []string{"server.dc1.consul", ip} {
		if _, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: name}); err != nil {
			t.Errorf("the certificate of %s does not verify as %s against the scheduler's CA: %v", ip, name, err)
		}
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Intermediates: inter, DNSName: ip}); err == nil {
		t.Errorf("the certificate of %s verifies without the service's CA", ip)
	}
}

// plainRPCClosed sends the byte that opens a plain (non-TLS) Consul RPC
// connection and reports whether the server closes the connection; a
// server that accepts plain RPC keeps it open, waiting for a request.
func plainRPCClosed(t *testing.T, addr string) bool {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte{0x00}); err != nil { // pool.RPCConsul
		return true
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return err != nil
}
