package consulagent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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

	consulconfig "github.com/hashicorp/consul/agent/config"
	"github.com/hashicorp/consul/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

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
	got := decodeTLSConfig(t, doc)
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
	// A spec without a gRPC TLS port (from a scheduler before it) keeps
	// the listener off, Consul's 8503 default included.
	if got.Ports["grpc_tls"] != -1 || got.Ports["grpc"] != -1 {
		t.Errorf("ports %v: gRPC on without a gRPC TLS port in the spec", got.Ports)
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

type tlsConfigDoc struct {
	Ports       map[string]int `json:"ports"`
	AutoEncrypt map[string]any `json:"auto_encrypt"`
	TLS         struct {
		Defaults    map[string]any `json:"defaults"`
		InternalRPC map[string]any `json:"internal_rpc"`
		GRPC        map[string]any `json:"grpc"`
	} `json:"tls"`
}

func decodeTLSConfig(t *testing.T, doc []byte) tlsConfigDoc {
	t.Helper()
	var got tlsConfigDoc
	if err := json.Unmarshal(doc, &got); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestConfigGRPCTLS: with a gRPC TLS port in the spec, gRPC is served on
// it over TLS and nowhere in plaintext; callers need no certificate;
// a client, which has only its auto_encrypt certificate, serves that one.
// The configuration passes Consul 1.16's own builder, which refuses TLS
// on ports.grpc.
func TestConfigGRPCTLS(t *testing.T) {
	server := tlsSpec(serverSpec("consul-server-0", 1, testPorts([]int{8300, 8301, 8500})), 8501)
	server.Ports.GRPCTLS = 8503
	sbox := t.TempDir()
	env := Env{BindIP: "127.3.0.40", Sandbox: sbox, TLSCACert: "ca", TLSCert: "cert", TLSKey: "key"}
	doc, err := Config(server, env)
	if err != nil {
		t.Fatal(err)
	}
	got := decodeTLSConfig(t, doc)
	if got.Ports["grpc_tls"] != 8503 || got.Ports["grpc"] != -1 {
		t.Errorf("server ports %v: want grpc_tls 8503 and plaintext grpc off", got.Ports)
	}
	if got.TLS.GRPC["verify_incoming"] != false || got.TLS.GRPC["use_auto_cert"] != nil {
		t.Errorf("server tls.grpc %v: want verify_incoming false, its own certificate (tls.defaults)", got.TLS.GRPC)
	}
	if got.TLS.Defaults["cert_file"] == nil {
		t.Error("the server has no certificate for gRPC TLS")
	}
	if rt := checkWithConsulBuilder(t, doc); rt.GRPCTLSPort != 8503 || rt.GRPCPort > 0 {
		t.Errorf("Consul's runtime configuration: grpc_tls %d, grpc %d", rt.GRPCTLSPort, rt.GRPCPort)
	}

	client := tlsSpec(taskspec.Spec{Version: taskspec.Version, Role: taskspec.RoleClient, NodeName: "c", Datacenter: "dc1",
		Ports: testPorts([]int{8300, 8301, 8500}), DataDir: "d"}, 8501)
	client.Ports.GRPCTLS = 8503
	doc, err = Config(client, Env{BindIP: "127.3.0.41", Sandbox: sbox, TLSCACert: "ca", AutoEncryptHosts: []string{"127.3.0.40:8301"}})
	if err != nil {
		t.Fatal(err)
	}
	got = decodeTLSConfig(t, doc)
	if got.Ports["grpc_tls"] != 8503 || got.Ports["grpc"] != -1 {
		t.Errorf("client ports %v", got.Ports)
	}
	if got.TLS.GRPC["use_auto_cert"] != true || got.TLS.GRPC["verify_incoming"] != false {
		t.Errorf("client tls.grpc %v: want use_auto_cert (its only certificate is auto_encrypt's)", got.TLS.GRPC)
	}
	if rt := checkWithConsulBuilder(t, doc); rt.GRPCTLSPort != 8503 || rt.GRPCPort > 0 || !rt.TLS.GRPC.UseAutoCert || !rt.AutoEncryptTLS {
		t.Errorf("Consul's runtime configuration: grpc_tls %d, grpc %d, use_auto_cert %v, auto_encrypt %v",
			rt.GRPCTLSPort, rt.GRPCPort, rt.TLS.GRPC.UseAutoCert, rt.AutoEncryptTLS)
	}

	// Without TLS there is no gRPC TLS listener, whatever the spec says.
	plain := serverSpec("consul-server-0", 1, testPorts([]int{8300, 8301, 8500}))
	plain.Ports.GRPCTLS = 8503
	doc, err = Config(plain, Env{BindIP: "127.3.0.40", Sandbox: "/sb"})
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeTLSConfig(t, doc); got.Ports["grpc_tls"] != -1 {
		t.Errorf("ports %v: gRPC TLS without TLS", got.Ports)
	}
}

// TestTLSClusterRefusesPlainRPC forms a TLS cluster: a server with a
// certificate from the service's CA and a client that gets its own through
// auto_encrypt. The server's HTTPS API verifies against the CA under
// server.dc1.consul and its address; a plaintext RPC connection is closed;
// the TLS files are gone from the sandbox once the agents run. Both
// agents answer gRPC over TLS on the gRPC TLS port (the server with the
// CA's certificate, the client with its auto_encrypt one) and refuse
// plaintext gRPC there.
func TestTLSClusterRefusesPlainRPC(t *testing.T) {
	if testing.Short() {
		t.Skip("forms a real Consul cluster")
	}
	ips := []string{"127.3.0.80", "127.3.0.81"}
	p := freePorts(t, ips, 5)
	ports := testPorts(p)
	ports.GRPCTLS = p[4]
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
	checkGRPCTLS(ctx, t, addr(ips[0], ports.GRPCTLS), pool, "server.dc1.consul")

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
	// The client's gRPC TLS certificate is its auto_encrypt one, from
	// Consul's own CA.
	roots, _, err := c.Connect().CARoots(nil)
	if err != nil {
		t.Fatal(err)
	}
	consulCA := x509.NewCertPool()
	for _, r := range roots.Roots {
		consulCA.AppendCertsFromPEM([]byte(r.RootCertPEM))
	}
	checkGRPCTLS(ctx, t, addr(ips[1], ports.GRPCTLS), consulCA, ips[1])
}

// checkGRPCTLS: a gRPC call over TLS to addr, verifying the agent's
// certificate against roots under serverName, reaches Consul's gRPC
// server (which answers the health service, one it does not register,
// with Unimplemented: a gRPC answer, over TLS); the same call in
// plaintext gets no answer at all.
func checkGRPCTLS(ctx context.Context, t *testing.T, addr string, roots *x509.CertPool, serverName string) {
	t.Helper()
	cfg := &tls.Config{RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS12}
	call := func(creds credentials.TransportCredentials) error {
		conn, err := grpc.Dial(addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			return err
		}
		defer conn.Close()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err = healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(false))
		return err
	}
	if err := call(credentials.NewTLS(cfg)); status.Code(err) != codes.Unimplemented && err != nil {
		t.Errorf("gRPC over TLS to %s as %s: %v", addr, serverName, err)
	}
	if err := call(insecure.NewCredentials()); err == nil || status.Code(err) == codes.Unimplemented {
		t.Errorf("plaintext gRPC to the gRPC TLS port %s got an answer (%v)", addr, err)
	}
	wrong := cfg.Clone()
	wrong.RootCAs = x509.NewCertPool()
	if err := call(credentials.NewTLS(wrong)); err == nil || status.Code(err) == codes.Unimplemented {
		t.Errorf("gRPC over TLS to %s verified without the CA (%v)", addr, err)
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

// checkWithConsulBuilder loads doc through Consul 1.16's configuration
// builder, as the agent does at start, and returns the result.
func checkWithConsulBuilder(t *testing.T, doc []byte) consulconfig.RuntimeConfig {
	t.Helper()
	res, err := consulconfig.Load(consulconfig.LoadOpts{
		Overrides: []consulconfig.Source{consulconfig.FileSource{Name: "spec.json", Format: "json", Data: string(doc)}},
	})
	if err != nil {
		t.Fatalf("Consul refuses the configuration: %v\n%s", err, doc)
	}
	return *res.RuntimeConfig
}

// TestConfigTLSRollout: while TLS is turned on in a running cluster plain
// HTTP stays on beside HTTPS and servers accept plaintext RPC; in the
// accept phase a server does not send TLS yet (the others may have no
// certificate), in the outgoing phase it does and checks servers' names.
func TestConfigTLSRollout(t *testing.T) {
	env := Env{BindIP: "127.3.0.40", Sandbox: "/sb", TLSCACert: "ca", TLSCert: "cert", TLSKey: "key"}
	for _, tc := range []struct {
		phase     string
		role      taskspec.Role
		outgoing  bool
		incoming  any
		hostname  bool
		wantError bool
	}{
		{phase: taskspec.TLSAccept, role: taskspec.RoleServer, outgoing: false, incoming: false, hostname: false},
		{phase: taskspec.TLSOutgoing, role: taskspec.RoleServer, outgoing: true, incoming: false, hostname: true},
		{phase: taskspec.TLSOutgoing, role: taskspec.RoleClient, outgoing: true, incoming: nil, hostname: true},
		{phase: taskspec.TLSAccept, role: taskspec.RoleClient, wantError: true},
	} {
		spec := tlsSpec(serverSpec("consul-server-0", 1, testPorts([]int{8300, 8301, 8500})), 8501)
		if tc.role == taskspec.RoleClient {
			spec.Role, spec.BootstrapExpect, spec.NodeName = taskspec.RoleClient, 0, "consul-client-a"
		}
		spec.TLSRollout, spec.Ports.HTTP = tc.phase, 8500
		doc, err := Config(spec, env)
		if tc.wantError {
			if err == nil {
				t.Errorf("%s %s: accepted", tc.phase, tc.role)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s %s: %v", tc.phase, tc.role, err)
		}
		checkWithConsulBuilder(t, doc)
		var got struct {
			Ports map[string]int `json:"ports"`
			TLS   struct {
				Defaults    map[string]any `json:"defaults"`
				InternalRPC map[string]any `json:"internal_rpc"`
			} `json:"tls"`
		}
		if err := json.Unmarshal(doc, &got); err != nil {
			t.Fatal(err)
		}
		if got.Ports["http"] != 8500 || got.Ports["https"] != 8501 {
			t.Errorf("%s %s: ports %v, want http 8500 and https 8501", tc.phase, tc.role, got.Ports)
		}
		if got.TLS.Defaults["verify_outgoing"] != tc.outgoing || got.TLS.InternalRPC["verify_incoming"] != tc.incoming ||
			got.TLS.InternalRPC["verify_server_hostname"] != tc.hostname {
			t.Errorf("%s %s: tls.defaults %v, tls.internal_rpc %v", tc.phase, tc.role, got.TLS.Defaults, got.TLS.InternalRPC)
		}
	}
}

// TestCAFileHoldsTheTrustedCAs: a server's ca_file holds its service's CA
// and then the other datacenters' (spec.TLSTrustedCAs); a client's only
// its service's.
func TestCAFileHoldsTheTrustedCAs(t *testing.T) {
	server := tlsSpec(serverSpec("consul-server-0", 1, testPorts([]int{8300, 8301, 8500})), 8501)
	server.TLSTrustedCAs = "OTHER-DC-CA\n"
	env := Env{BindIP: "127.3.0.40", Sandbox: t.TempDir(), TLSCACert: "OWN-CA", TLSCert: "cert", TLSKey: "key"}
	if err := writeTLSFiles(server, env); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(tlsFiles(env.Sandbox).CA); err != nil || string(b) != "OWN-CA\nOTHER-DC-CA\n" {
		t.Fatalf("server ca_file %q %v", b, err)
	}
	client := tlsSpec(taskspec.Spec{Version: taskspec.Version, Role: taskspec.RoleClient, NodeName: "c", Datacenter: "dc1",
		Ports: testPorts([]int{8300, 8301, 8500}), DataDir: "d"}, 8501)
	client.TLSTrustedCAs = "OTHER-DC-CA\n" // refused by Validate; ignored here all the same
	env.Sandbox = t.TempDir()
	if err := writeTLSFiles(client, env); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(tlsFiles(env.Sandbox).CA); err != nil || string(b) != "OWN-CA" {
		t.Fatalf("client ca_file %q %v", b, err)
	}
}
