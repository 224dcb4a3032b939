package dev

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/dcos-consul/dcos-consul/internal/operator"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

// operatorCmd runs `dcos-consul consul --url <scheduler> args...`.
func (fc *faultCluster) operatorCmd(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"consul", "--url", fc.SchedulerURL}, args...)...)
	// The scheduler's mutating routes need its operator token; the
	// commands that ask Consul directly (members, raft peers, recover
	// status) a Consul token, which an operator puts in a file as here.
	cmd.Env = append(os.Environ(), operator.EnvTokenFile+"="+fc.OperatorTokenFile(),
		"CONSUL_HTTP_TOKEN_FILE="+consulTokenFile(t, fc.Cluster))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dcos-consul consul %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// consulTokenFile writes c's management token to a file only the owner
// reads, as `dcos-consul consul acl management-token > file` would.
func consulTokenFile(t *testing.T, c *Cluster) string {
	t.Helper()
	tok, err := readManagementToken(c)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "consul-token")
	if err := os.WriteFile(f, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

type snapshotEntry struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

func (fc *faultCluster) snapshotList(t *testing.T) []snapshotEntry {
	t.Helper()
	var es []snapshotEntry
	if err := json.Unmarshal([]byte(fc.operatorCmd(t, "--json", "snapshot", "list")), &es); err != nil {
		t.Fatal(err)
	}
	return es
}

// TestSnapshotSaveDeleteRestore: keys written, a snapshot saved, the keys
// deleted, the snapshot restored into the running cluster: every key is
// back. The backup plan then takes snapshots on its schedule and keeps the
// newest BACKUP_KEEP.
func TestSnapshotSaveDeleteRestore(t *testing.T) {
	fc := startFaultCluster(t, 22, 4, 3, config.EnvBackupInterval+"=20s", config.EnvBackupKeep+"=2")
	tasks, _ := fc.healthy(t, 3, 3*time.Minute)
	writeThroughClient(t, fc.Cluster, tasks, "snap", 40)
	written := map[string]int{"snap": 40}

	out := fc.operatorCmd(t, "snapshot", "save")
	t.Logf("%s", strings.TrimSpace(out))
	es := fc.snapshotList(t)
	var name string
	for _, e := range es {
		if strings.Contains(out, e.Name) {
			name = e.Name
		}
	}
	if name == "" {
		t.Fatalf("the saved snapshot is not listed: %s, list %+v", out, es)
	}

	kv := consulClient(t, fc.Cluster, servers(tasks)[0].AgentIP).KV()
	if _, err := kv.DeleteTree("snap/", nil); err != nil {
		t.Fatal(err)
	}
	pairs, _, err := kv.List("snap/", &consul.QueryOptions{RequireConsistent: true})
	if err != nil || len(pairs) != 0 {
		t.Fatalf("after delete: %d keys, %v", len(pairs), err)
	}
	start := time.Now()
	t.Logf("%s", strings.TrimSpace(fc.operatorCmd(t, "snapshot", "restore", name)))
	checkAllKeys(t, fc.Cluster, tasks, written)
	t.Logf("RESTORE every key back %s after the restore began", time.Since(start).Round(100*time.Millisecond))

	// The schedule: two more snapshots 20 s apart; the manual one is pruned.
	eventually(t, 3*time.Minute, "two scheduled snapshots, the older ones pruned", func() error {
		es := fc.snapshotList(t)
		if len(es) != 2 {
			return fmt.Errorf("%d snapshots: %+v", len(es), es)
		}
		for _, e := range es {
			if e.Name == name {
				return fmt.Errorf("the manual snapshot %s is still kept: %+v", name, es)
			}
		}
		return nil
	})
	var msg string
	eventually(t, time.Minute, "the backup plan complete", func() error {
		status, m, err := backupPlan(fc)
		msg = m
		if err == nil && (status != "COMPLETE" || !strings.Contains(msg, "last snapshot")) {
			err = fmt.Errorf("backup plan %s: %s", status, msg)
		}
		return err
	})
	t.Logf("backup plan: %s", msg)
	if !strings.Contains(msg, "the snapshot restore kept Consul's CA roots") {
		t.Errorf("the backup plan does not say the restore of this cluster's own snapshot kept its CA (no client restart)")
	}
}

// backupPlan reads the backup plan's status and its step's message.
func backupPlan(fc *faultCluster) (string, string, error) {
	resp, err := http.Get(fc.SchedulerURL + "/v1/plans/backup")
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	var p struct {
		Status string `json:"status"`
		Phases []struct {
			Steps []struct {
				Message string `json:"message"`
			} `json:"steps"`
		} `json:"phases"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		return "", "", err
	}
	if len(p.Phases) != 1 || len(p.Phases[0].Steps) != 1 {
		return "", "", fmt.Errorf("backup plan %+v", p)
	}
	return p.Status, p.Phases[0].Steps[0].Message, nil
}

// TestSnapshotRestoreIntoAFreshInstall is issue 12's "writes keys, takes a
// snapshot, uninstalls, installs again and restores: every key back, with
// ACLs on": a snapshot taken by one install is restored into a fresh
// install of the same datacenter (another simulated cluster, empty
// servers, its own ACL tokens) that uses the same backup target. The
// restore replaces the ACL state with the snapshot's; the new install's
// tokens work again afterwards (re-created with the first install's
// management token stored beside the snapshot): every key is back, read
// with the new install's management token, its agents keep writing with
// its agent token, and anonymous reads are still refused.
func TestSnapshotRestoreIntoAFreshInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs two dev clusters with real Consul")
	}
	target := "file://" + t.TempDir()
	written := map[string]int{"fresh": 25}
	var name string
	t.Run("first install", func(t *testing.T) {
		fc := startFaultCluster(t, 24, 4, 3, config.EnvBackupTarget+"="+target)
		tasks, _ := fc.healthy(t, 3, 3*time.Minute)
		writeThroughClient(t, fc.Cluster, tasks, "fresh", written["fresh"])
		out := fc.operatorCmd(t, "--json", "snapshot", "save")
		var e snapshotEntry
		if err := json.Unmarshal([]byte(out), &e); err != nil {
			t.Fatal(err)
		}
		name = e.Name
	})
	if name == "" {
		t.Fatal("no snapshot from the first install")
	}
	fc := startFaultCluster(t, 25, 4, 3, config.EnvBackupTarget+"="+target)
	tasks, _ := fc.healthy(t, 3, 3*time.Minute)
	pairs, _, err := consulClient(t, fc.Cluster, servers(tasks)[0].AgentIP).KV().List("fresh/", nil)
	if err != nil || len(pairs) != 0 {
		t.Fatalf("the fresh install has %d keys already (%v)", len(pairs), err)
	}
	listed := false
	for _, e := range fc.snapshotList(t) {
		listed = listed || e.Name == name
	}
	if !listed {
		t.Fatalf("the fresh install does not list %s", name)
	}
	if fi, err := os.Stat(filepath.Join(strings.TrimPrefix(target, "file://"), name+".acl")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the snapshot's ACL companion: %v %v, want mode 0600", fi, err)
	}
	t.Logf("%s", strings.TrimSpace(fc.operatorCmd(t, "snapshot", "restore", name)))
	restored := time.Now()
	certs := watchClientCerts(t, fc.Cluster, tasks, 10*time.Minute)
	for prefix, n := range written {
		for _, s := range servers(tasks) {
			checkKeys(t, fc.Cluster, s.AgentIP, prefix, n)
		}
	}
	t.Logf("RESTORE every key back on every server %s after the restore", time.Since(restored).Round(100*time.Millisecond))
	// With TLS the restore replaced Consul's CA (the Connect CA that signs
	// the client agents' auto_encrypt HTTPS certificates) with the first
	// install's. The reads through a client below trust every Consul CA
	// root the test has seen (Cluster.seenRoots): the clients keep their
	// certificate of the replaced CA (docs/operations.md, section 5).
	logClientCertificates(t, fc.Cluster, tasks)
	checkAllKeys(t, fc.Cluster, tasks, written)
	// The snapshot's ACL state replaced the fresh install's: its
	// management token is the one re-created from the companion.
	self, _, err := consulClient(t, fc.Cluster, servers(tasks)[0].AgentIP).ACL().TokenReadSelf(nil)
	if err != nil || !strings.Contains(self.Description, "re-created after a snapshot restore") {
		t.Fatalf("the management token after the restore: %+v %v", self, err)
	}
	writeThroughClient(t, fc.Cluster, tasks, "after-restore", 5)
	if p, _, err := aclClient(t, fc.Cluster, servers(tasks)[0].AgentIP, "").KV().Get("fresh/0", nil); !isStatus(err, 403) || p != nil {
		t.Fatalf("anonymous KV read after the restore: %v %v, want 403", p, err)
	}
	eventually(t, 2*time.Minute, "every agent registered in the catalog with the new install's agent token", func() error {
		nodes, _, err := consulClient(t, fc.Cluster, servers(tasks)[0].AgentIP).Catalog().Nodes(nil)
		if err != nil {
			return err
		}
		if len(nodes) != 4 {
			return fmt.Errorf("%d catalog nodes, want 4", len(nodes))
		}
		return nil
	})
	t.Logf("RESTORE %s after the restore:", time.Since(restored).Round(time.Second))
	logClientCertificates(t, fc.Cluster, tasks)
	if !fc.ConsulTLS() {
		return
	}
	// The scheduler restarts the client agents in place after a restore
	// that replaced Consul's CA roots (in batches, as a configuration
	// change would): with no `pod restart`, every client presents a
	// certificate of the restored CA, and the scheduler's log says why.
	for range clientNames(tasks) {
		b := <-certs
		if b.err != nil {
			t.Fatalf("%s not restarted with a certificate of the restored CA: %v", b.name, b.err)
		}
		t.Logf("RESTORE %s presents a certificate of the restored CA %s after the restore, restarted by the scheduler",
			b.name, b.at.Sub(restored).Round(time.Second))
	}
	_, msg, err := backupPlan(fc)
	if err != nil || !strings.Contains(msg, "client agent(s) queued for a restart in place") {
		t.Fatalf("the backup plan does not say the clients were queued for a restart: %q %v", msg, err)
	}
	t.Logf("RESTORE backup plan: %s", msg)
	logged, err := os.ReadFile(filepath.Join(fc.opts.WorkDir, "scheduler.log"))
	if err != nil || !strings.Contains(string(logged), "the snapshot restore replaced Consul's CA roots") {
		t.Fatalf("the scheduler's log does not say why the clients were restarted (%v)", err)
	}
}

type certBack struct {
	name string
	at   time.Time
	err  error
}

func clientNames(tasks []masterTask) []masterTask {
	var out []masterTask
	for _, task := range tasks {
		if strings.HasPrefix(task.Name, "consul-client-") {
			out = append(out, task)
		}
	}
	return out
}

// watchClientCerts polls, from now on, each client agent's HTTPS
// certificate until it verifies against Consul's CA roots as the leader
// lists them, and sends when (or the last error after timeout). With TLS
// off it sends at once.
func watchClientCerts(t *testing.T, c *Cluster, tasks []masterTask, timeout time.Duration) <-chan certBack {
	t.Helper()
	clients := clientNames(tasks)
	out := make(chan certBack, len(clients))
	if !c.ConsulTLS() {
		for _, task := range clients {
			out <- certBack{name: task.Name, at: time.Now()}
		}
		return out
	}
	leader := consulClient(t, c, servers(tasks)[0].AgentIP)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	for _, task := range clients {
		addr := net.JoinHostPort(task.AgentIP, strconv.Itoa(c.consulHTTPSPort()))
		go func(name string) {
			deadline := time.Now().Add(timeout)
			for {
				err := clientCertVerifies(leader, addr)
				if err == nil || time.Now().After(deadline) {
					out <- certBack{name: name, at: time.Now(), err: err}
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(500 * time.Millisecond):
				}
			}
		}(task.Name)
	}
	return out
}

// logClientCertificates says, for each client agent, whether its HTTPS
// certificate verifies against Consul's CA roots as the leader lists them
// now (with TLS).
func logClientCertificates(t *testing.T, c *Cluster, tasks []masterTask) {
	t.Helper()
	if !c.ConsulTLS() {
		return
	}
	leader := consulClient(t, c, servers(tasks)[0].AgentIP)
	for _, task := range tasks {
		if !strings.HasPrefix(task.Name, "consul-client-") {
			continue
		}
		addr := net.JoinHostPort(task.AgentIP, strconv.Itoa(c.consulHTTPSPort()))
		if err := clientCertVerifies(leader, addr); err != nil {
			t.Logf("RESTORE %s's HTTPS certificate is not of the restored CA: %v", task.Name, err)
		} else {
			t.Logf("RESTORE %s's HTTPS certificate is of the restored CA", task.Name)
		}
	}
}

// clientCertVerifies: the certificate the agent at addr presents verifies
// against the CA roots Consul's leader lists now; the error names the
// certificate's issuer key and the roots.
func clientCertVerifies(leader *consul.Client, addr string) error {
	roots, _, err := leader.Connect().CARoots(nil)
	if err != nil {
		return fmt.Errorf("Consul's CA roots from the leader: %w", err)
	}
	pool := x509.NewCertPool()
	var keys []string
	for _, r := range roots.Roots {
		pool.AppendCertsFromPEM([]byte(r.RootCertPEM))
		keys = append(keys, fmt.Sprintf("%s (active %v)", r.ID, r.Active))
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) // verified below, against pool
	if err != nil {
		return err
	}
	defer conn.Close()
	certs := conn.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return errors.New("no certificate presented")
	}
	inter := x509.NewCertPool()
	for _, ic := range certs[1:] {
		inter.AddCert(ic)
	}
	host, _, _ := net.SplitHostPort(addr)
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: host}); err != nil {
		return fmt.Errorf("issuer key %x, roots %v: %w", certs[0].AuthorityKeyId, keys, err)
	}
	return nil
}

type locatedSnapshot struct {
	Name      string   `json:"name"`
	SHA256    string   `json:"sha256"`
	Locations []string `json:"locations"`
}

// TestSnapshotCopiesOnServerVolumes: a snapshot taken by the scheduler is
// copied by every server's executor onto its persistent volume (with its
// checksum); `snapshot list` says where each copy is; with the backup
// target's copy gone, a restore reads a server's volume copy and every
// key is back.
func TestSnapshotCopiesOnServerVolumes(t *testing.T) {
	fc := startFaultCluster(t, 23, 4, 3, config.EnvBackupInterval+"=1h", config.EnvBackupKeep+"=2")
	tasks, _ := fc.healthy(t, 3, 3*time.Minute)
	writeThroughClient(t, fc.Cluster, tasks, "vol", 25)
	out := fc.operatorCmd(t, "snapshot", "save")
	t.Logf("%s", strings.TrimSpace(out))
	var snap locatedSnapshot
	start := time.Now()
	eventually(t, 2*time.Minute, "the saved snapshot on the target and on the 3 servers' volumes", func() error {
		var es []locatedSnapshot
		if err := json.Unmarshal([]byte(fc.operatorCmd(t, "--json", "snapshot", "list")), &es); err != nil {
			return err
		}
		for _, e := range es {
			if !strings.Contains(out, e.Name) {
				continue
			}
			snap = e
			vols := 0
			for _, l := range e.Locations {
				if strings.HasPrefix(l, "volume of consul-server-") {
					vols++
				}
			}
			if vols != 3 || !strings.HasPrefix(e.Locations[0], "file://") {
				return fmt.Errorf("%s is in %v", e.Name, e.Locations)
			}
			return nil
		}
		return fmt.Errorf("not listed: %+v", es)
	})
	t.Logf("VOLUMES snapshot on every server's volume %s after it was taken: %v", time.Since(start).Round(100*time.Millisecond), snap.Locations)
	t.Logf("%s", fc.operatorCmd(t, "snapshot", "list"))
	// The copies really are on the volumes, with their checksums.
	copies := findFiles(t, filepath.Join(fc.opts.WorkDir, "mesos"), snap.Name)
	if len(copies) != 3 {
		t.Fatalf("copies on disk: %v", copies)
	}
	for _, c := range copies {
		b, err := os.ReadFile(c + ".sha256")
		if err != nil || !strings.HasPrefix(string(b), snap.SHA256) {
			t.Fatalf("%s.sha256: %q %v", c, b, err)
		}
	}

	// The target's copy goes; the keys are deleted; the restore reads a
	// volume copy.
	target := strings.TrimPrefix(snap.Locations[0], "file://")
	for _, f := range []string{snap.Name, snap.Name + ".sha256"} {
		if err := os.Remove(filepath.Join(target, f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(filepath.Join(fc.opts.WorkDir, "scheduler", "snapshot-staging")); err != nil {
		t.Fatal(err)
	}
	kv := consulClient(t, fc.Cluster, servers(tasks)[0].AgentIP).KV()
	if _, err := kv.DeleteTree("vol/", nil); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	t.Logf("%s", strings.TrimSpace(fc.operatorCmd(t, "snapshot", "restore", snap.Name)))
	checkAllKeys(t, fc.Cluster, tasks, map[string]int{"vol": 25})
	t.Logf("VOLUMES restore from a volume copy: every key back %s after the restore began", time.Since(start).Round(100*time.Millisecond))
}

func findFiles(t *testing.T, root, name string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == name && filepath.Base(filepath.Dir(p)) == "snapshots" {
			out = append(out, p)
		}
		return nil
	})
	return out
}
