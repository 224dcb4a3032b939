package dev

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/pki"
)

// startSecondScheduler runs another install (its own service name, state
// and ports) on the same simulated cluster, stopped when the test ends,
// and returns its API's URL.
func (fc *faultCluster) startSecondScheduler(t *testing.T, service string, env ...string) string {
	t.Helper()
	url, _ := fc.runSecondScheduler(t, service, env...)
	return url
}

// runSecondScheduler is startSecondScheduler, with a stop (SIGTERM, as
// Marathon's) the test may call before its end. Its log is appended to,
// so that a restarted scheduler's lines follow the first one's.
func (fc *faultCluster) runSecondScheduler(t *testing.T, service string, env ...string) (string, func()) {
	t.Helper()
	port, err := freePort(fc.opts.MasterIP)
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(filepath.Join(fc.opts.WorkDir, service+"-scheduler.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "scheduler")
	cmd.Env = append(fc.SchedulerEnv(port), append([]string{
		config.EnvServiceName + "=" + service,
		config.EnvStateDir + "=" + filepath.Join(fc.opts.WorkDir, "scheduler-"+service),
		// Its own operator token file: the first install's stays its own.
		config.EnvOperatorTokenFile + "=" + filepath.Join(fc.opts.WorkDir, "operator-token-"+service),
	}, env...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// No Pdeathsig: it follows the OS thread that started the process, not
	// the test; the cleanup below and the isolated namespace end it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	t.Cleanup(func() {
		stop()
		logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logf.Name()); err == nil {
				t.Logf("%s scheduler log (tail):\n%s", service, tail(string(b), 400))
			}
		}
	})
	return "http://" + net.JoinHostPort(fc.opts.MasterIP, strconv.Itoa(port)), stop
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// tlsCAOf is the CA certificate of the install whose scheduler is at
// url, as an operator gets it: `dcos-consul consul --url <url> tls ca`
// (GET /v1/tls/ca).
func tlsCAOf(t *testing.T, url string) string {
	t.Helper()
	var ca string
	eventually(t, 2*time.Minute, "the CA of "+url+" (tls ca)", func() error {
		out, err := exec.Command(binary, "consul", "--url", url, "tls", "ca").CombinedOutput()
		if err != nil {
			return fmt.Errorf("tls ca: %v: %s", err, out)
		}
		ca = string(out)
		return nil
	})
	return ca
}

// tlsConsulAt is a client of the Consul agent at ip:port over HTTPS,
// verified against caPEM (the agent's install's CA), with token ("":
// anonymous).
func tlsConsulAt(t *testing.T, caPEM, ip string, port int, token string) *consul.Client {
	t.Helper()
	cfg := consul.DefaultNonPooledConfig()
	cfg.Address, cfg.Scheme, cfg.Token = net.JoinHostPort(ip, strconv.Itoa(port)), "https", token
	cfg.TLSConfig = consul.TLSConfig{CAPem: []byte(caPEM)}
	cl, err := consul.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// trustOther updates the install of fc to trust caPEM (another
// datacenter's CA) as docs/operations.md says:
// `dcos-consul consul update start --options` with
// security.tls.trusted_ca_certs (through dev's stand-in for Cosmos, as the
// rolling update tests do), then waits for every server of fc to be
// relaunched (the rolling restart of the servers) and the update plan to
// be complete; each server relaunched in place (the same agent).
func trustOther(t *testing.T, fc *faultCluster, caPEM string) {
	t.Helper()
	before := map[string]masterTask{}
	for _, s := range servers(runningTasks(t, fc.Cluster)) {
		before[s.Name] = s
	}
	cosmosURL, stop, err := fc.ServeCosmos()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	opts, _ := json.Marshal(map[string]any{"security": map[string]any{"tls": map[string]any{"trusted_ca_certs": caPEM}}})
	f := filepath.Join(t.TempDir(), "options.json")
	if err := os.WriteFile(f, opts, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("update start: %s", strings.TrimSpace(fc.operatorCmd(t, "update", "start", "--options", f, "--cosmos", cosmosURL)))
	eventually(t, 8*time.Minute, "every server relaunched with the other datacenter's CA and the update plan complete", func() error {
		running := map[string]masterTask{}
		for _, s := range servers(runningTasks(t, fc.Cluster)) {
			running[s.Name] = s
		}
		for name, old := range before {
			now, ok := running[name]
			if !ok || now.ID == old.ID {
				return fmt.Errorf("%s not relaunched yet", name)
			}
			if now.AgentID != old.AgentID {
				t.Fatalf("%s relaunched on agent %s, not in place on %s", name, now.AgentIP, old.AgentIP)
			}
		}
		var plan struct {
			Status string `json:"status"`
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(fc.SchedulerURL + "/v1/plans/update")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&plan); err != nil {
			return fmt.Errorf("update plan (%s): %w", resp.Status, err)
		}
		if plan.Status != "COMPLETE" {
			return fmt.Errorf("update plan %s", plan.Status)
		}
		return nil
	})
}

// TestWANFederationTwoDatacenters: two installs on one simulated cluster,
// with the secure defaults (ACLs, gossip encryption, and TLS with a CA
// each, as installed): "consul" (dc1, the ACL primary, 3 servers) and
// "consul-dc2" (dc2, a secondary, 1 server, other ports), each told of
// the other's servers by their Mesos-DNS names (consul.wan_join), both
// given the same gossip key from a file
// (security.gossip_encryption.key_file), dc2 the ACL replication token an
// operator creates in dc1 (security.acl.replication_token_file). TLS in
// the runbook's order (docs/operations.md, section 7): dc2 is installed
// trusting dc1's CA (`tls ca` of dc1), then dc1 is updated to trust dc2's
// (security.tls.trusted_ca_certs through the update, a rolling restart
// of dc1's servers). Then the WAN pool lists both sets of servers, a KV
// read and write sent to dc1 for dc2 are answered by dc2,
// catalog/datacenters lists both, anonymous requests are refused in
// both, and dc2's scheduler made its own (local) tokens. Three agents:
// dc2's server shares an agent with a dc1 server (only their ports
// differ).
func TestWANFederationTwoDatacenters(t *testing.T) {
	sharedKey := newGossipKey(t)
	keyFile := writeSecret(t, "gossip-key", sharedKey)
	fc := startFaultCluster(t, 23, 3, 3, config.EnvWANJoin+"=consul-server-0.consul-dc2.mesos:8312",
		config.EnvGossipKeyFile+"="+keyFile)
	tasks, _ := fc.healthy(t, 3, 3*time.Minute)
	dc1IP := servers(tasks)[0].AgentIP
	dc1 := consulClient(t, fc.Cluster, dc1IP)
	// The operator's part in the primary: the replication token
	// (docs/operations.md, Federating datacenters), into a file.
	repl := replicationToken(t, dc1)
	replFile := writeSecret(t, "replication-token", repl)
	dc1CA := tlsCAOf(t, fc.SchedulerURL)

	dc2Env := []string{config.EnvDatacenter + "=dc2", config.EnvServerCount + "=1", config.EnvClientsEnabled + "=false",
		config.EnvPortServer + "=8310", config.EnvPortSerfLAN + "=8311", config.EnvPortSerfWAN + "=8312",
		config.EnvPortHTTP + "=8510", config.EnvPortHTTPS + "=8511", config.EnvPortGRPCTLS + "=8513", config.EnvPortDNS + "=8610",
		config.EnvWANJoin + "=consul-server-0.consul.mesos:8302,consul-server-1.consul.mesos:8302",
		config.EnvPrimaryDatacenter + "=dc1", config.EnvGossipKeyFile + "=" + keyFile,
		config.EnvACLReplicationTokenFile + "=" + replFile, config.EnvTLSTrustedCACerts + "=" + dc1CA}
	dc2URL, stopDC2 := fc.runSecondScheduler(t, "consul-dc2", dc2Env...)
	dc2CA := tlsCAOf(t, dc2URL)
	start := time.Now()
	trustOther(t, fc, dc2CA)
	t.Logf("FEDERATION dc1 updated to trust dc2's CA: every dc1 server restarted, update plan complete, %s", time.Since(start).Round(100*time.Millisecond))

	var dc2IP string
	eventually(t, 3*time.Minute, "dc2's server running", func() error {
		ips, err := resolveA(fc.DNS.Addr(), "consul-server-0.consul-dc2.mesos")
		if err != nil || len(ips) != 1 {
			return fmt.Errorf("consul-server-0.consul-dc2.mesos: %v %v", ips, err)
		}
		dc2IP = ips[0]
		leader, err := tlsConsulAt(t, dc2CA, dc2IP, 8511, "").Status().Leader()
		if err != nil || leader == "" {
			return fmt.Errorf("dc2 leader %q: %v", leader, err)
		}
		return nil
	})
	// dc1's management token is global: replicated to dc2, it works there.
	dc1Mgmt, err := readManagementToken(fc.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	dc2 := tlsConsulAt(t, dc2CA, dc2IP, 8511, dc1Mgmt)
	dc2Log := filepath.Join(fc.opts.WorkDir, "consul-dc2-scheduler.log")
	eventually(t, 3*time.Minute, "dc2's scheduler sets up its ACL tokens with the replication token", func() error {
		if countInFile(dc2Log, secondaryACLLine) < 1 {
			return fmt.Errorf("no %q in %s", secondaryACLLine, dc2Log)
		}
		return nil
	})
	start = time.Now()
	eventually(t, 3*time.Minute, "the WAN pool lists every server of both datacenters", func() error {
		ms, err := dc1.Agent().Members(true)
		if err != nil {
			return err
		}
		var alive []string
		for _, m := range ms {
			if m.Status == memberAlive {
				alive = append(alive, m.Name)
			}
		}
		sort.Strings(alive)
		want := "consul-server-0.dc1,consul-server-0.dc2,consul-server-1.dc1,consul-server-2.dc1"
		if strings.Join(alive, ",") != want {
			return fmt.Errorf("alive WAN members %v, want %s", alive, want)
		}
		dcs, err := dc1.Catalog().Datacenters()
		if err != nil {
			return err
		}
		sort.Strings(dcs) // Consul lists them nearest first
		if strings.Join(dcs, ",") != "dc1,dc2" {
			return fmt.Errorf("datacenters %v", dcs)
		}
		return nil
	})
	t.Logf("FEDERATION WAN pool complete and both datacenters listed %s after both were running", time.Since(start).Round(100*time.Millisecond))

	// Written in dc2, read through dc1; written through dc1, read in dc2.
	if _, err := dc2.KV().Put(&consul.KVPair{Key: "x", Value: []byte("from-dc2")}, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "dc2's key read through dc1", func() error {
		p, _, err := dc1.KV().Get("x", &consul.QueryOptions{Datacenter: "dc2", RequireConsistent: true})
		if err != nil {
			return err
		}
		if p == nil || string(p.Value) != "from-dc2" {
			return fmt.Errorf("x in dc2 via dc1: %+v", p)
		}
		if p, _, _ := dc1.KV().Get("x", nil); p != nil {
			return fmt.Errorf("x exists in dc1 too: %q", p.Value)
		}
		return nil
	})
	if _, err := dc1.KV().Put(&consul.KVPair{Key: "y", Value: []byte("via-dc1")}, &consul.WriteOptions{Datacenter: "dc2"}); err != nil {
		t.Fatal(err)
	}
	if p, _, err := dc2.KV().Get("y", &consul.QueryOptions{RequireConsistent: true}); err != nil || p == nil || string(p.Value) != "via-dc1" {
		t.Fatalf("y written for dc2 through dc1, read in dc2: %+v %v", p, err)
	}

	// Anonymous requests are refused in both datacenters, directly and
	// across.
	for _, c := range []struct {
		at *consul.Client
		dc string
	}{{aclClientAt(t, fc.Cluster, dc1IP, 8500, ""), ""}, {tlsConsulAt(t, dc2CA, dc2IP, 8511, ""), ""}, {aclClientAt(t, fc.Cluster, dc1IP, 8500, ""), "dc2"}} {
		if _, _, err := c.at.KV().Get("x", &consul.QueryOptions{Datacenter: c.dc}); !isStatus(err, 403) {
			t.Fatalf("anonymous KV read (dc %q): %v, want 403", c.dc, err)
		}
	}
	// dc2's own management token (made by its scheduler, local to dc2)
	// works in dc2 and nowhere else.
	dc2Mgmt := managementTokenAt(t, dc2URL, filepath.Join(fc.opts.WorkDir, "operator-token-consul-dc2"))
	if _, err := tlsConsulAt(t, dc2CA, dc2IP, 8511, dc2Mgmt).KV().Put(&consul.KVPair{Key: "z", Value: []byte("dc2")}, nil); err != nil {
		t.Fatalf("dc2's management token in dc2: %v", err)
	}
	if _, _, err := aclClientAt(t, fc.Cluster, dc1IP, 8500, dc2Mgmt).KV().Get("z", nil); !isStatus(err, 403) {
		t.Fatalf("dc2's management token in dc1: %v, want 403 (a local token)", err)
	}

	out := fc.operatorCmd(t, "members", "--wan")
	for _, n := range []string{"consul-server-0.dc1", "consul-server-0.dc2"} {
		if !strings.Contains(out, n) {
			t.Fatalf("members --wan does not list %s:\n%s", n, out)
		}
	}
	t.Logf("members --wan:\n%s", out)

	// The files' secrets are nowhere an observer reads: the master's and
	// agents' state, both schedulers' API answers and logs, every
	// executor's output.
	scanFederationSecrets(t, fc, dc2URL, map[string]string{"shared gossip key": sharedKey, "replication token": repl})

	// dc2 uninstalled (its scheduler restarted with SDK_UNINSTALL=true,
	// as Cosmos does): its server leaves the WAN pool gracefully, so dc1
	// forgets dc2 at once instead of keeping a failed member and a
	// datacenter whose every request fails for reconnect_timeout_wan.
	stopDC2()
	start = time.Now()
	dc2Uninstall, _ := fc.runSecondScheduler(t, "consul-dc2", append(dc2Env, config.EnvUninstall+"=true")...)
	eventually(t, 3*time.Minute, "dc2's server left dc1's WAN pool and dc1 lists only itself", func() error {
		ms, err := dc1.Agent().Members(true)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if m.Name == "consul-server-0.dc2" && m.Status != memberLeft {
				return fmt.Errorf("%s has WAN status %d, want %d (left)", m.Name, m.Status, memberLeft)
			}
		}
		dcs, err := dc1.Catalog().Datacenters()
		if err != nil {
			return err
		}
		if strings.Join(dcs, ",") != "dc1" {
			return fmt.Errorf("datacenters %v, want dc1 only", dcs)
		}
		return nil
	})
	t.Logf("FEDERATION dc2 uninstalled: its server left the WAN pool, dc1 lists only itself, %s after the uninstall started", time.Since(start).Round(100*time.Millisecond))
	eventually(t, 3*time.Minute, "dc2's uninstall complete (its deploy plan 200)", func() error { return getOK(dc2Uninstall + "/v1/plans/deploy") })
	if n := countInFile(dc2Log, "asking a server that goes away for good to leave"); n < 1 {
		t.Errorf("dc2's scheduler never asked its server to leave (%d lines)", n)
	}
}

func scanFederationSecrets(t *testing.T, fc *faultCluster, dc2URL string, needles map[string]string) {
	t.Helper()
	collected := map[string][]byte{"/master/state": httpBody(t, fc.Sim.MasterURL()+"/master/state")}
	for _, a := range fc.Sim.Agents() {
		u := "http://" + net.JoinHostPort(a.IP, strconv.Itoa(a.Port)) + "/state"
		collected[u] = httpBody(t, u)
	}
	for _, base := range []string{fc.SchedulerURL, dc2URL} {
		for _, path := range []string{"/v1/plans/deploy", "/v1/pod/status", "/v1/endpoints", "/v1/health", "/metrics"} {
			collected[base+path] = httpBody(t, base+path)
		}
	}
	err := filepath.WalkDir(fc.opts.WorkDir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if n := d.Name(); d.Type().IsRegular() && (n == "stdout" || n == "stderr" || strings.HasSuffix(n, ".log")) {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			collected[path] = b
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for where, b := range collected {
		for what, v := range needles {
			if strings.Contains(string(b), v) {
				t.Errorf("the %s shows in %s", what, where)
			}
		}
	}
	t.Logf("%d documents and logs scanned for the shared gossip key and the replication token", len(collected))
}

// TestWANFederationTwoClusters: dc1 on one simulated cluster, the ACL
// primary; dc2 on another, a secondary told dc1's server addresses
// (consul.wan_join), with the replication token made in dc1; both with
// one gossip key file, ACLs on and TLS with a CA each (the defaults),
// dc2 installed trusting dc1's CA and dc1 then updated to trust dc2's
// (security.tls.trusted_ca_certs): both datacenters' servers in one WAN
// pool, cross-datacenter KV both ways (with dc1's management token,
// which is global), catalog/datacenters lists both, as seen from either
// side.
func TestWANFederationTwoClusters(t *testing.T) {
	federateTwoClusters(t, 27, 26, nil)
}

// TestWANFederationOneCA: as TestWANFederationTwoClusters, with the other
// way docs/operations.md gives for TLS: both installs given the same CA
// at install (security.tls.ca_cert_file, ca_key_file) and no trusted CAs.
func TestWANFederationOneCA(t *testing.T) {
	ca, err := pki.NewCA(nil, "federation", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	caFiles := []string{config.EnvTLSCACertFile + "=" + writeSecret(t, "ca.pem", ca.CertPEM),
		config.EnvTLSCAKeyFile + "=" + writeSecret(t, "ca-key.pem", ca.KeyPEM)}
	federateTwoClusters(t, 44, 45, caFiles)
}

// federateTwoClusters federates dc1 on one simulated cluster (n1) with dc2
// on another (n2). With oneCA (the CA options) both are installed with
// that CA; without, each generates its own, and dc2 is installed trusting
// dc1's, dc1 then updated to trust dc2's.
func federateTwoClusters(t *testing.T, n1, n2 int, oneCA []string) {
	keyFile := writeSecret(t, "gossip-key", newGossipKey(t))
	a := startFaultCluster(t, n1, 3, 3, append([]string{config.EnvGossipKeyFile + "=" + keyFile}, oneCA...)...)
	tasksA, _ := a.healthy(t, 3, 3*time.Minute)
	dc1 := consulClient(t, a.Cluster, servers(tasksA)[0].AgentIP)
	replFile := writeSecret(t, "replication-token", replicationToken(t, dc1))
	var join []string
	for _, s := range servers(tasksA) {
		join = append(join, net.JoinHostPort(s.AgentIP, "8302"))
	}
	envB := []string{config.EnvDatacenter + "=dc2", config.EnvWANJoin + "=" + strings.Join(join, ","),
		config.EnvPrimaryDatacenter + "=dc1", config.EnvGossipKeyFile + "=" + keyFile, config.EnvACLReplicationTokenFile + "=" + replFile}
	if oneCA == nil {
		envB = append(envB, config.EnvTLSTrustedCACerts+"="+tlsCAOf(t, a.SchedulerURL))
	}
	b := startFaultCluster(t, n2, 3, 3, append(envB, oneCA...)...)
	if oneCA == nil {
		// dc2's servers cannot replicate dc1's ACLs (WAN RPC, verified
		// both ways) until dc1 trusts dc2's CA too.
		start := time.Now()
		trustOther(t, a, tlsCAOf(t, b.SchedulerURL))
		t.Logf("FEDERATION dc1 updated to trust dc2's CA: every dc1 server restarted, update plan complete, %s", time.Since(start).Round(100*time.Millisecond))
	} else if ca1, ca2 := tlsCAOf(t, a.SchedulerURL), tlsCAOf(t, b.SchedulerURL); ca1 != ca2 {
		t.Fatalf("the two installs given one CA serve different CAs:\n%s\n%s", ca1, ca2)
	}
	tasksB, _ := b.healthy(t, 3, 3*time.Minute)
	dc1Token, err := readManagementToken(a.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	dc2 := aclClientAt(t, b.Cluster, servers(tasksB)[0].AgentIP, 8500, dc1Token)

	eventually(t, 3*time.Minute, "six servers in the WAN pool, seen from both clusters", func() error {
		for dc, c := range map[string]*consul.Client{"dc1": dc1, "dc2": dc2} {
			ms, err := c.Agent().Members(true)
			if err != nil {
				return err
			}
			alive := 0
			for _, m := range ms {
				if m.Status == memberAlive {
					alive++
				}
			}
			if alive != 6 {
				return fmt.Errorf("%d alive WAN members seen from %s", alive, dc)
			}
			dcs, err := c.Catalog().Datacenters()
			sort.Strings(dcs) // Consul lists them nearest first
			if err != nil || strings.Join(dcs, ",") != "dc1,dc2" {
				return fmt.Errorf("datacenters seen from %s: %v %v", dc, dcs, err)
			}
		}
		return nil
	})
	eventually(t, 3*time.Minute, "KV written across clusters both ways", func() error {
		if _, err := dc1.KV().Put(&consul.KVPair{Key: "from-a", Value: []byte("1")}, &consul.WriteOptions{Datacenter: "dc2"}); err != nil {
			return err
		}
		if _, err := dc2.KV().Put(&consul.KVPair{Key: "from-b", Value: []byte("2")}, &consul.WriteOptions{Datacenter: "dc1"}); err != nil {
			return err
		}
		for _, c := range []struct {
			via  *consul.Client
			key  string
			want string
		}{{dc2, "from-a", "1"}, {dc1, "from-b", "2"}} {
			p, _, err := c.via.KV().Get(c.key, &consul.QueryOptions{RequireConsistent: true})
			if err != nil || p == nil || string(p.Value) != c.want {
				return fmt.Errorf("%s written across clusters: %+v %v", c.key, p, err)
			}
		}
		return nil
	})
	for _, c := range []struct {
		cl *Cluster
		ip string
	}{{a.Cluster, servers(tasksA)[0].AgentIP}, {b.Cluster, servers(tasksB)[0].AgentIP}} {
		if _, _, err := aclClientAt(t, c.cl, c.ip, 8500, "").KV().Get("from-a", nil); !isStatus(err, 403) {
			t.Fatalf("anonymous KV read at %s: %v, want 403", c.ip, err)
		}
	}
}

// managementTokenAt asks the scheduler at url for its management token
// with the operator token in opFile.
func managementTokenAt(t *testing.T, url, opFile string) string {
	t.Helper()
	var tok string
	eventually(t, time.Minute, "the management token from "+url, func() error {
		op, err := os.ReadFile(opFile)
		if err != nil {
			return err
		}
		req, _ := http.NewRequest(http.MethodGet, url+"/v1/acl/management-token", nil)
		req.Header.Set("X-Dcos-Consul-Token", strings.TrimSpace(string(op)))
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var out struct {
			SecretID string `json:"secret_id"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.SecretID == "" {
			return fmt.Errorf("%s %v", resp.Status, err)
		}
		tok = out.SecretID
		return nil
	})
	return tok
}

const secondaryACLLine = "Consul ACLs set up in secondary datacenter"

// writeSecret writes v to a file only its owner reads, as an operator
// (or DC/OS's file-based secrets) would.
func writeSecret(t *testing.T, name, v string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(f, []byte(v+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func newGossipKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// replicationToken creates, with the primary's management token, the
// policy and token of docs/operations.md for a secondary's ACL
// replication, and returns the token's secret.
func replicationToken(t *testing.T, primary *consul.Client) string {
	t.Helper()
	var secret string
	eventually(t, time.Minute, "the replication policy and token created in the primary", func() error {
		p, _, err := primary.ACL().PolicyReadByName("acl-replication", nil)
		if err != nil && !strings.Contains(err.Error(), "not found") {
			return err
		}
		if p == nil {
			if _, _, err := primary.ACL().PolicyCreate(&consul.ACLPolicy{Name: "acl-replication", Rules: ReplicationPolicyRules}, nil); err != nil {
				return err
			}
		}
		tok, _, err := primary.ACL().TokenCreate(&consul.ACLToken{Description: "ACL replication of dc2",
			Policies: []*consul.ACLTokenPolicyLink{{Name: "acl-replication"}}}, nil)
		if err != nil {
			return err
		}
		secret = tok.SecretID
		return nil
	})
	return secret
}

// ReplicationPolicyRules are the rules of the replication token's policy
// that docs/operations.md tells operators to create (Consul's documented
// policy for ACL replication).
const ReplicationPolicyRules = `acl = "write"
operator = "write"
service_prefix "" {
  policy = "read"
  intentions = "read"
}
`

// aclClientAt is a client of the agent at ip:port with token ("":
// anonymous).
func aclClientAt(t *testing.T, c *Cluster, ip string, port int, token string) *consul.Client {
	t.Helper()
	cfg, err := c.ConsulConfig(context.Background(), ip, "")
	if err != nil {
		t.Fatal(err)
	}
	if !c.ConsulTLS() {
		cfg.Address = net.JoinHostPort(ip, strconv.Itoa(port))
	}
	cfg.Token = token
	cl, err := consul.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// noGossipKey turns gossip encryption off (tests of other features that
// predate it).
const noGossipKey = config.EnvGossipKey + "=false"

// noACL turns ACLs off (the adoption tests: lost state loses the
// management token; the UI test of the ACLs-off rules).
const noACL = config.EnvACL + "=false"

// noTLS turns TLS off. The adoption tests use it: the CA is lost with the
// scheduler's state (docs/security.md, "TLS after lost scheduler state").
const noTLS = config.EnvTLS + "=false"
