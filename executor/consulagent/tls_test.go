package consulagent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/pki"
)

func tlsSpec(s taskspec.Spec, https int) taskspec.Spec {
	s.TLS = true
	s.Secrets = &taskspec.SecretsRef{URL: "http://127.0.0.1:1", Token: "t"}
	s.Ports.HTTP, s.Ports.HTTPS = -1, https
	return s
}

func TestConfigTLS(t *testing.T) {
	server := tlsSpec(serverSpec("consul-server-0", 1, testPorts([]int{8300, 8301, 8500})), 8501)
	env := Env{BindIP: "127.3.0.40", Sandbox: "/sb", TLSCACert: "ca", TLSCert: "cert", TLSKey: "SECRETKEY"}
	if _, err := Config(server, Env{BindIP: "127.3.0.40", Sandbox: "/sb", TLSCACert: "ca"}); err == nil {
		t.Fatal("a TLS server without a certificate")
	}
	doc, err := Config(server, env)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(doc), "SECRETKEY") {
		t.Fatal("the configuration holds the key itself")
	}
	var got struct {
		Ports       map[string]int `json:"ports"`
		AutoEncrypt map[string]any `json:"auto_encrypt"`
		TLS         struct {
			Defaults    map[string]any `json:"defaults"`
			InternalRPC map[string]any `json:"internal_rpc"`
		} `json:"tls"`
	}
	if err := json.Unmarshal(doc, &got); err != nil {
		t.Fatal(err)
	}
	f := tlsFiles("/sb")
	if got.TLS.Defaults["ca_file"] != f.CA || got.TLS.Defaults["cert_file"] != f.Cert || got.TLS.Defaults["key_file"] != f.Key ||
		got.TLS.Defaults["verify_outgoing"] != true {
		t.Errorf("tls.defaults %v", got.TLS.Defaults)
	}
	if got.TLS.InternalRPC["verify_incoming"] != true || got.TLS.InternalRPC["verify_server_hostname"] != true {
		t.Errorf("tls.internal_rpc %v", got.TLS.InternalRPC)
	}
	if got.Ports["http"] != -1 || got.Ports["https"] != 8501 || got.AutoEncrypt["allow_tls"] != true {
		t.Errorf("ports %v auto_encrypt %v", got.Ports, got.AutoEncrypt)
	}
	if s := fmt.Sprint(env) + fmt.Sprintf("%#v", env); strings.Contains(s, "SECRETKEY") {
		t.Errorf("Env prints the key: %s", s)
	}
	client := tlsSpec(taskspec.Spec{Version: taskspec.Version, Role: taskspec.RoleClient, NodeName: "c", Datacenter: "dc1",
		Ports: testPorts([]int{8300, 8301, 8500}), DataDir: "d"}, 8501)
	doc, err = Config(client, Env{BindIP: "127.3.0.41", Sandbox: "/sb", TLSCACert: "ca", AutoEncryptHosts: []string{"127.3.0.40:8301"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), `"tls": true`) || strings.Contains(string(doc), "cert_file") || !strings.Contains(string(doc), "127.3.0.40:8301") {
		t.Errorf("client configuration:\n%s", doc)
	}
}

// TestTLSClusterRefusesPlainRPC forms a TLS cluster: a server with a
// certificate from the service's CA and a client that gets its own through
// auto_encrypt. The server's HTTPS API verifies against the CA under
// server.dc1.consul and its address; a plaintext RPC connection is closed;
// the TLS files are gone from the sandbox once the agents run.
func TestTLSClusterRefusesPlainRPC(t *testing.T) {
	if testing.Short() {
		t.Skip("forms a real Consul cluster")
	}
	ips := []string{"127.3.0.80", "127.3.0.81"}
	p := freePorts(t, ips, 4)
	ports := testPorts(p)
	log := testLogger(t)
	now := time.Now()
	ca, err := pki.NewCA(nil, "test", now)
	if err != nil {
		t.Fatal(err)
	}
	parsed, _ := ca.Parse(now)
	cert, err := pki.IssueServer(parsed, pki.ServerRequest{Datacenter: "dc1", Hosts: []string{ips[0]}}, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	var agents []*Agent
	t.Cleanup(func() {
		for _, a := range agents {
			a.Stop()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sbox := t.TempDir()
	server, err := Start(ctx, tlsSpec(serverSpec("tls-server", 1, ports), p[3]),
		Env{BindIP: ips[0], Sandbox: sbox, TLSCACert: ca.CertPEM, TLSCert: cert.CertPEM, TLSKey: cert.KeyPEM}, log)
	if err != nil {
		t.Fatal(err)
	}
	agents = append(agents, server)
	if err := server.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tlsFiles(sbox).Key); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the server key file is still in the sandbox: %v", err)
	}
	pool, _ := pki.Pool(ca.CertPEM)
	for _, name := range []string{"server.dc1.consul", ips[0]} {
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: name}}}
		resp, err := hc.Get("https://" + addr(ips[0], p[3]) + "/v1/status/leader")
		if err != nil {
			t.Fatalf("HTTPS as %s: %v", name, err)
		}
		resp.Body.Close()
	}
	if c, err := net.DialTimeout("tcp", addr(ips[0], ports.HTTP), 2*time.Second); err == nil {
		c.Close()
		t.Errorf("plain HTTP answers on %s", addr(ips[0], ports.HTTP))
	}
	if !plainRPCRefused(t, addr(ips[0], ports.Server)) {
		t.Error("a plaintext RPC connection to the server stays open")
	}

	cl := tlsSpec(taskspec.Spec{Version: taskspec.Version, Role: taskspec.RoleClient, NodeName: "tls-client", Datacenter: "dc1",
		Ports: ports, DataDir: "consul-data", JoinAddrs: []string{addr(ips[0], ports.SerfLAN)}, LogLevel: "INFO"}, p[3])
	client, err := Start(ctx, cl, Env{BindIP: ips[1], Sandbox: t.TempDir(), TLSCACert: ca.CertPEM}, log)
	if err != nil {
		t.Fatal(err)
	}
	agents = append(agents, client)
	if err := client.Ready(ctx); err != nil {
		t.Fatalf("the client did not join over TLS: %v", err)
	}
	// The client's RPC to the servers works: a KV write through it.
	ccfg := api.DefaultConfig()
	ccfg.Address, ccfg.Scheme = addr(ips[1], p[3]), "https"
	ccfg.TLSConfig.InsecureSkipVerify = true // the client's HTTPS certificate is from Consul's own CA
	c, err := api.NewClient(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		_, err = c.KV().Put(&api.KVPair{Key: "tls", Value: []byte("ok")}, nil)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		t.Fatalf("KV write through the client: %v", err)
	}
}

// plainRPCRefused opens a TCP connection to a Consul server's RPC port,
// sends the byte of a plain (non-TLS) RPC connection and reports whether
// the server closes it. A server that accepts plain RPC keeps it open,
// waiting for a request.
func plainRPCRefused(t *testing.T, rpcAddr string) bool {
	t.Helper()
	c, err := net.DialTimeout("tcp", rpcAddr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", rpcAddr, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte{0x00}); err != nil { // pool.RPCConsul
		return true
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return err == io.EOF || err != nil
}
