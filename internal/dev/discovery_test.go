package dev

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dcos-consul/dcos-consul/internal/universe"
)

func resolveSRV(server, name string) ([]string, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeSRV)
	r, err := dns.Exchange(m, server)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range r.Answer {
		if s, ok := rr.(*dns.SRV); ok {
			out = append(out, fmt.Sprintf("%s:%d", s.Target, s.Port))
		}
	}
	sort.Strings(out)
	return out, nil
}

// startRealMesosDNS runs the real Mesos-DNS (/opt/mesos/bin/mesos-dns)
// against the dev cluster's master, with dev's settings (domain mesos,
// DC/OS's IP sources), and returns its DNS address; "" when it is not
// installed.
func startRealMesosDNS(t *testing.T, c *Cluster, ip string) string {
	bin := "/opt/mesos/bin/mesos-dns"
	if _, err := os.Stat(bin); err != nil {
		t.Logf("no real Mesos-DNS at %s: comparing with it is skipped", bin)
		return ""
	}
	port, err := freePort(ip)
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{
		"masters": []string{strings.TrimPrefix(c.Sim.MasterURL(), "http://")}, "zk": "", "refreshSeconds": 1,
		"stateTimeoutSeconds": 10, "ttl": 60, "domain": "mesos", "port": port, "listener": ip,
		"dnson": true, "httpon": false, "externalon": false, "recurseon": false,
		"SOAMname": "ns1.mesos", "SOARname": "root.ns1.mesos", "IPSources": []string{"host", "netinfo"},
	}
	b, _ := json.Marshal(cfg)
	f := filepath.Join(t.TempDir(), "mesos-dns.json")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config="+f)
	log, _ := os.Create(filepath.Join(t.TempDir(), "mesos-dns.log"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return net.JoinHostPort(ip, fmt.Sprint(port))
}

// TestDevStableNames: the Consul tasks carry DiscoveryInfo with named ports
// and the SDK's VIP labels; the simulated Mesos-DNS answers the SRV queries
// of the named ports (_https._consul-server-0._tcp.consul.mesos) exactly as
// the real Mesos-DNS does on the same master state; /v1/endpoints gives the
// load balancer's names.
//
// The agents fetch the executor as the package publishes it: a .tar.gz
// that the fetcher extracts.
func TestDevStableNames(t *testing.T) {
	besideOthers(t)
	if testing.Short() {
		t.Skip("runs a whole dev cluster with real Consul")
	}
	archive := filepath.Join(t.TempDir(), universe.ExecutorAsset)
	if err := universe.ExecutorArchive(archive, binary); err != nil {
		t.Fatal(err)
	}
	fc := startFaultCluster(t, 91, 2, 1, "EXECUTOR_URI=file://"+archive)
	tasks, _ := fc.healthy(t, 1, 4*time.Minute)
	realDNS := startRealMesosDNS(t, fc.Cluster, "127.5.91.1")

	// The master's state shows the DiscoveryInfo the scheduler set.
	resp, err := http.Get(fc.Sim.MasterURL() + "/master/state")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Frameworks []struct {
			Tasks []struct {
				Name      string `json:"name"`
				Discovery struct {
					Name  string `json:"name"`
					Ports struct {
						Ports []struct {
							Number int    `json:"number"`
							Name   string `json:"name"`
							Labels struct {
								Labels []struct{ Key, Value string } `json:"labels"`
							} `json:"labels"`
						} `json:"ports"`
					} `json:"ports"`
				} `json:"discovery"`
			} `json:"tasks"`
		} `json:"frameworks"`
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	vips := map[string]string{} // task/port → VIP label
	for _, f := range st.Frameworks {
		for _, task := range f.Tasks {
			if task.Discovery.Name != task.Name {
				t.Errorf("task %s: DiscoveryInfo name %q, want the task name", task.Name, task.Discovery.Name)
			}
			for _, p := range task.Discovery.Ports.Ports {
				for _, l := range p.Labels.Labels {
					if strings.HasPrefix(l.Key, "VIP_") {
						vips[task.Name+"/"+p.Name] = l.Value
					}
				}
			}
		}
	}
	client := tasks[0].Name
	if strings.HasPrefix(client, "consul-server-") {
		client = tasks[len(tasks)-1].Name
	}
	for k, want := range map[string]string{
		// TLS (the default): the API is HTTPS only, on 8501.
		"consul-server-0/https": "consul:8501", "consul-server-0/rpc": "consul-server:8300",
		client + "/https": "consul:8501", client + "/dns": "consul:8600",
	} {
		if vips[k] != want {
			t.Errorf("VIP label of %s = %q, want %q (all: %v)", k, vips[k], want, vips)
		}
	}

	queries := []string{
		"_https._consul-server-0._tcp.consul.mesos",
		"_rpc._consul-server-0._tcp.consul.mesos",
		"_serf-lan._consul-server-0._udp.consul.mesos",
		"_serf-wan._consul-server-0._tcp.consul.mesos",
		"_dns._consul-server-0._udp.consul.mesos",
		"_consul-server-0._tcp.consul.mesos",
		"_consul-server-0._tcp.consul.slave.mesos",
		"_https._" + client + "._tcp.consul.mesos",
		"_rpc._" + client + "._tcp.consul.mesos",
	}
	eventually(t, time.Minute, "SRV records of the named ports", func() error {
		for _, q := range queries {
			got, err := resolveSRV(fc.DNS.Addr(), q)
			if err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
			if len(got) == 0 && !strings.HasPrefix(q, "_rpc._"+client) {
				return fmt.Errorf("%s: no answer from the simulated Mesos-DNS", q)
			}
			if realDNS == "" {
				continue
			}
			want, err := resolveSRV(realDNS, q)
			if err != nil {
				return fmt.Errorf("real Mesos-DNS, %s: %w", q, err)
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				return fmt.Errorf("%s: simulated Mesos-DNS %v, real Mesos-DNS %v", q, got, want)
			}
		}
		return nil
	})
	got, _ := resolveSRV(fc.DNS.Addr(), "_https._consul-server-0._tcp.consul.mesos")
	if len(got) != 1 || !strings.HasSuffix(got[0], ".consul.mesos.:8501") {
		t.Fatalf("_https._consul-server-0._tcp.consul.mesos = %v", got)
	}
	if ips, err := resolveA(fc.DNS.Addr(), strings.TrimSuffix(got[0], ":8501")); err != nil || len(ips) != 1 || ips[0] != tasks[0].AgentIP && ips[0] != tasks[len(tasks)-1].AgentIP {
		t.Errorf("the SRV target %s resolves to %v %v", got[0], ips, err)
	}

	// /v1/endpoints/https names the load balancer's address.
	var ep struct {
		VIP string `json:"vip"`
	}
	resp, err = http.Get(fc.SchedulerURL + "/v1/endpoints/https")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&ep)
	resp.Body.Close()
	if ep.VIP != "consul.consul.l4lb.thisdcos.directory:8501" {
		t.Errorf("/v1/endpoints/https vip = %q", ep.VIP)
	}
}
