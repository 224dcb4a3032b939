package mesosdns

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

func loadState(t *testing.T, name string) *State {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseState(b)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func ipStrings(ips []net.IP) []string {
	var out []string
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	sort.Strings(out)
	return out
}

func srvStrings(s []SRV) []string {
	var out []string
	for _, r := range s {
		out = append(out, r.Target+":"+strconv.Itoa(int(r.Port)))
	}
	sort.Strings(out)
	return out
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// The real Mesos 1.12 master state: what Mesos-DNS on DC/OS would serve.
func TestGenerateFromRealMasterState(t *testing.T) {
	st := loadState(t, "master-state.json")
	r := Generate(st, Options{Domain: "mesos"})
	const (
		s0 = "d10602e3-409b-4ff3-a8c2-2ac0bdb8a688-S0"
		s1 = "d10602e3-409b-4ff3-a8c2-2ac0bdb8a688-S1"
	)
	srvCanon := CanonicalSlaveTaskHost("consul-server-0", "consul-server-0", s0, "consul-fixture", "mesos") + "."
	cliCanon := CanonicalSlaveTaskHost("consul-client-0", "consul-client-0", s1, "consul-fixture", "mesos") + "."
	wantA := map[string][]string{
		"consul-server-0.consul-fixture.mesos.":                                                      {"127.0.0.21"},
		"consul-server-0.consul-fixture.slave.mesos.":                                                {"127.0.0.21"},
		"consul-client-0.consul-fixture.mesos.":                                                      {"127.0.0.22"},
		"consul-client-0.consul-fixture.slave.mesos.":                                                {"127.0.0.22"},
		CanonicalTaskHost("consul-server-0", "consul-server-0", s0, "consul-fixture", "mesos") + ".": {"127.0.0.21"},
		srvCanon: {"127.0.0.21"},
		CanonicalTaskHost("consul-client-0", "consul-client-0", s1, "consul-fixture", "mesos") + ".": {"127.0.0.22"},
		cliCanon:          {"127.0.0.22"},
		"leader.mesos.":   {"127.0.0.1"},
		"master.mesos.":   {"127.0.0.1"},
		"master0.mesos.":  {"127.0.0.1"},
		"slave.mesos.":    {"127.0.0.21", "127.0.0.22"},
		"ns1.mesos.":      nil,
		"consul-fixture.": nil,
	}
	for name, want := range wantA {
		if got := ipStrings(r.A[name]); !reflect.DeepEqual(got, sorted(want)) {
			t.Errorf("A %s = %v, want %v", name, got, want)
		}
	}
	// The framework is an HTTP framework with hostname "": no framework record.
	if r.Known("consul-fixture.mesos.") {
		t.Errorf("consul-fixture.mesos. has records, want none (HTTP framework, empty hostname)")
	}
	// Completed tasks (probe-4a, dup-first) get nothing.
	for _, name := range []string{"dup-first.consul-fixture.mesos.", "probe-4a.consul-fixture.mesos."} {
		if r.Known(name) {
			t.Errorf("%s has records; only TASK_RUNNING tasks should", name)
		}
	}
	wantSRV := map[string][]string{
		"_consul-server-0._tcp.consul-fixture.mesos.":       {srvCanon + ":8300", srvCanon + ":8301", srvCanon + ":8302"},
		"_consul-server-0._udp.consul-fixture.mesos.":       {srvCanon + ":8300", srvCanon + ":8301", srvCanon + ":8302"},
		"_consul-server-0._tcp.consul-fixture.slave.mesos.": {srvCanon + ":8300", srvCanon + ":8301", srvCanon + ":8302"},
		"_consul-client-0._tcp.consul-fixture.mesos.":       {cliCanon + ":8500", cliCanon + ":8600"},
		"_leader._tcp.mesos.":                               {"leader.mesos.:5060"},
		"_leader._udp.mesos.":                               {"leader.mesos.:5060"},
		"_slave._tcp.mesos.":                                {"slave.mesos.:5061"},
	}
	for name, want := range wantSRV {
		if got := srvStrings(r.SRV[name]); !reflect.DeepEqual(got, sorted(want)) {
			t.Errorf("SRV %s = %v, want %v", name, got, want)
		}
	}
}

func TestGenerateIPSources(t *testing.T) {
	st := &State{
		Leader: "master@10.0.0.1:5050",
		Slaves: []Slave{{ID: "x-S3", PID: &UPID{ID: "slave(1)", Host: "10.0.0.5", Port: "5051"}}},
		Frameworks: []Framework{{Name: "consul", Tasks: []Task{{
			ID: "t1", Name: "consul-server-0", SlaveID: "x-S3", State: "TASK_RUNNING",
			Statuses: []Status{
				{State: "TASK_RUNNING", Timestamp: 2, ContainerStatus: ContainerStatus{NetworkInfos: []NetworkInfo{{IPAddresses: []IPAddress{{IPAddress: "9.0.0.2"}}}}}},
				{State: "TASK_RUNNING", Timestamp: 1, ContainerStatus: ContainerStatus{NetworkInfos: []NetworkInfo{{IPAddresses: []IPAddress{{IPAddress: "9.0.0.1"}}}}}},
			},
		}}}},
	}
	for _, c := range []struct {
		srcs []string
		want string
	}{
		{nil, "10.0.0.5"}, // DC/OS: host first
		{DCOSIPSources, "10.0.0.5"},
		{MesosDNSIPSources, "9.0.0.2"}, // newest RUNNING status
		{[]string{IPSourceMesos, IPSourceHost}, "10.0.0.5"},
	} {
		r := Generate(st, Options{IPSources: c.srcs})
		if got := ipStrings(r.A["consul-server-0.consul.mesos."]); !reflect.DeepEqual(got, []string{c.want}) {
			t.Errorf("sources %v: A = %v, want %s", c.srcs, got, c.want)
		}
		if got := ipStrings(r.A["consul-server-0.consul.slave.mesos."]); !reflect.DeepEqual(got, []string{"10.0.0.5"}) {
			t.Errorf("sources %v: slave A = %v", c.srcs, got)
		}
	}
}

func TestGenerateOnlyRunningOnKnownAgents(t *testing.T) {
	agent := &UPID{ID: "slave(1)", Host: "10.0.0.5", Port: "5051"}
	st := &State{
		Leader: "master@10.0.0.1:5050",
		Slaves: []Slave{{ID: "a-S0", PID: agent}},
		Frameworks: []Framework{{Name: "consul", Tasks: []Task{
			{ID: "1", Name: "running", SlaveID: "a-S0", State: "TASK_RUNNING"},
			{ID: "2", Name: "staging", SlaveID: "a-S0", State: "TASK_STAGING"},
			{ID: "3", Name: "starting", SlaveID: "a-S0", State: "TASK_STARTING"},
			{ID: "4", Name: "killing", SlaveID: "a-S0", State: "TASK_KILLING"},
			{ID: "5", Name: "lost-agent", SlaveID: "gone-S9", State: "TASK_RUNNING"},
		}}},
	}
	r := Generate(st, Options{})
	if !r.Known("running.consul.mesos.") {
		t.Errorf("running task has no record")
	}
	for _, n := range []string{"staging", "starting", "killing", "lost-agent"} {
		if r.Known(n + ".consul.mesos.") {
			t.Errorf("%s has a record", n)
		}
	}
}

func TestGenerateSameNameSeveralTasks(t *testing.T) {
	st := &State{
		Leader: "master@10.0.0.1:5050",
		Slaves: []Slave{
			{ID: "a-S0", PID: &UPID{ID: "slave(1)", Host: "10.0.0.5", Port: "5051"}},
			{ID: "a-S1", PID: &UPID{ID: "slave(1)", Host: "10.0.0.6", Port: "5051"}},
		},
		Frameworks: []Framework{{Name: "consul", Hostname: "10.0.0.9", Tasks: []Task{
			{ID: "1", Name: "consul-agent", SlaveID: "a-S0", State: "TASK_RUNNING", Resources: Resources{Ports: "[8301-8301]"}},
			{ID: "2", Name: "consul-agent", SlaveID: "a-S1", State: "TASK_RUNNING", Resources: Resources{Ports: "[8301-8301]"}},
			{ID: "3", Name: "consul-agent", SlaveID: "a-S1", State: "TASK_RUNNING"},
		}}},
	}
	r := Generate(st, Options{})
	if got := ipStrings(r.A["consul-agent.consul.mesos."]); !reflect.DeepEqual(got, []string{"10.0.0.5", "10.0.0.6"}) {
		t.Errorf("A = %v", got)
	}
	if got := len(r.SRV["_consul-agent._tcp.consul.mesos."]); got != 2 {
		t.Errorf("SRV count = %d, want one per task and port (2)", got)
	}
	if got := ipStrings(r.A["consul.mesos."]); !reflect.DeepEqual(got, []string{"10.0.0.9"}) {
		t.Errorf("framework A = %v (from hostname)", got)
	}
	if r.Known("_framework._tcp.consul.mesos.") {
		t.Errorf("HTTP framework without pid should have no _framework SRV")
	}
}

func TestParseStateErrors(t *testing.T) {
	for name, doc := range map[string]string{
		"no leader":     `{"leader":"","slaves":[],"frameworks":[]}`,
		"bad leader":    `{"leader":"master-10.0.0.1"}`,
		"bad slave pid": `{"leader":"master@10.0.0.1:5050","slaves":[{"id":"s","pid":"slave(1)10.0.0.2:5051"}]}`,
		"wrong type":    `{"leader":"master@10.0.0.1:5050","frameworks":[{"name":7}]}`,
		"not json":      `<html>`,
	} {
		if _, err := ParseState([]byte(doc)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := ParseState([]byte(`{"leader":""}`)); !errors.Is(err, ErrNoLeader) {
		t.Errorf("empty leader: %v, want ErrNoLeader", err)
	}
}

func TestPortList(t *testing.T) {
	for in, want := range map[string][]int{
		"":                           nil,
		"[]":                         nil,
		"[8300-8302]":                {8300, 8301, 8302},
		"[8500-8500, 8600-8600]":     {8500, 8600},
		"[31000-31001, 31005-31005]": {31000, 31001, 31005},
	} {
		got, err := PortList(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("PortList(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	got, err := PortList("[1-2, x-3, 9-9]")
	if err == nil || !reflect.DeepEqual(got, []int{1, 2, 9}) {
		t.Errorf("PortList with a bad range = %v, %v", got, err)
	}
}

// The expectations of Mesos-DNS's own TestInsertState (records/generator_test.go)
// against its fixture, to check that Generate builds the same records.
func TestGenerateMatchesMesosDNS(t *testing.T) {
	st := loadState(t, "mesos-dns-fake.json")
	st.Leader = "master@144.76.157.37:5050"
	gen := func(srcs []string) *Records {
		return Generate(st, Options{Domain: "mesos", Label: RFC952, IPSources: srcs,
			Masters: []string{"144.76.157.37:5050"}, NS: "mesos-dns.mesos.", ListenerIPs: []net.IP{net.ParseIP("127.0.0.1")}})
	}
	rg := gen([]string{"netinfo", "docker", "mesos", "host"})
	rgSlave := gen([]string{"host"})
	rgMesos := gen([]string{"mesos", "host"})
	rgDocker := gen([]string{"docker", "host"})
	rgNetinfo := gen([]string{"netinfo"})
	type kind int
	const (
		A kind = iota
		AAAA
		SRVk
	)
	get := func(r *Records, k kind, name string) []string {
		switch k {
		case A:
			return ipStrings(r.A[name])
		case AAAA:
			return ipStrings(r.AAAA[name])
		}
		return srvStrings(r.SRV[name])
	}
	for i, tt := range []struct {
		r    *Records
		k    kind
		name string
		want []string
	}{
		{rg, A, "big-dog.marathon.mesos.", []string{"10.3.0.1"}},
		{rg, A, "liquor-store.marathon.mesos.", []string{"10.3.0.1", "10.3.0.2"}},
		{rg, A, "liquor-store.marathon.slave.mesos.", []string{"1.2.3.11", "1.2.3.12"}},
		{rg, A, "car-store.marathon.slave.mesos.", []string{"1.2.3.11"}},
		{rg, A, "nginx.marathon.mesos.", []string{"10.3.0.3"}},
		{rg, A, "poseidon.marathon.mesos.", nil},
		{rg, A, "poseidon.marathon.slave.mesos.", nil},
		{rg, A, "master.mesos.", []string{"144.76.157.37"}},
		{rg, A, "master0.mesos.", []string{"144.76.157.37"}},
		{rg, A, "leader.mesos.", []string{"144.76.157.37"}},
		{rg, A, "slave.mesos.", []string{"1.2.3.10", "1.2.3.11", "1.2.3.12"}},
		{rg, A, "some-box.chronoswithaspaceandmixe.mesos.", []string{"1.2.3.11"}},
		{rg, A, "marathon.mesos.", []string{"1.2.3.11"}},
		{rg, A, "mesos-dns.mesos.", []string{"127.0.0.1"}},
		{rg, AAAA, "toy-store.ipv6-framework.mesos.", []string{"fd01:b::1:8000:2"}},
		{rg, AAAA, "toy-store.ipv6-framework.slave.mesos.", []string{"2001:db8::1"}},
		{rg, AAAA, "ipv6-framework.mesos.", []string{"2001:db8::1"}},
		{rg, AAAA, "slave.mesos.", []string{"2001:db8::1"}},
		{rg, SRVk, "_big-dog._tcp.marathon.mesos.", []string{"big-dog-4dfjd-0.marathon.mesos.:80", "big-dog-4dfjd-0.marathon.mesos.:443"}},
		{rg, SRVk, "_poseidon._tcp.marathon.mesos.", nil},
		{rg, SRVk, "_leader._tcp.mesos.", []string{"leader.mesos.:5050"}},
		{rg, SRVk, "_liquor-store._tcp.marathon.mesos.", []string{
			"liquor-store-4dfjd-0.marathon.mesos.:80", "liquor-store-4dfjd-0.marathon.mesos.:443",
			"liquor-store-zasmd-1.marathon.mesos.:80", "liquor-store-zasmd-1.marathon.mesos.:443"}},
		{rg, SRVk, "_liquor-store._udp.marathon.mesos.", nil},
		{rg, SRVk, "_liquor-store.marathon.mesos.", nil},
		{rg, SRVk, "_https._liquor-store._tcp.marathon.mesos.", []string{"liquor-store-4dfjd-0.marathon.mesos.:443", "liquor-store-zasmd-1.marathon.mesos.:443"}},
		{rg, SRVk, "_http._liquor-store._tcp.marathon.mesos.", []string{"liquor-store-4dfjd-0.marathon.mesos.:80", "liquor-store-zasmd-1.marathon.mesos.:80"}},
		{rg, SRVk, "_car-store._tcp.marathon.mesos.", []string{"car-store-zinaz-0.marathon.slave.mesos.:31364", "car-store-zinaz-0.marathon.slave.mesos.:31365"}},
		{rg, SRVk, "_car-store._udp.marathon.mesos.", []string{"car-store-zinaz-0.marathon.slave.mesos.:31364", "car-store-zinaz-0.marathon.slave.mesos.:31365"}},
		{rg, SRVk, "_slave._tcp.mesos.", []string{"slave.mesos.:5051"}},
		{rg, SRVk, "_framework._tcp.marathon.mesos.", []string{"marathon.mesos.:25501"}},
		{rgSlave, A, "liquor-store.marathon.mesos.", []string{"1.2.3.11", "1.2.3.12"}},
		{rgSlave, A, "nginx.marathon.mesos.", []string{"1.2.3.11"}},
		{rgSlave, AAAA, "toy-store.ipv6-framework.mesos.", []string{"2001:db8::1"}},
		{rgMesos, A, "liquor-store.marathon.mesos.", []string{"1.2.3.11", "1.2.3.12"}},
		{rgMesos, A, "nginx.marathon.mesos.", []string{"10.3.0.3"}},
		{rgMesos, AAAA, "toy-store.ipv6-framework.mesos.", []string{"2001:db8::1"}},
		{rgNetinfo, A, "toy-store.ipv6-framework.mesos.", []string{"12.0.1.2", "12.0.1.3"}},
		{rgNetinfo, AAAA, "toy-store.ipv6-framework.mesos.", []string{"fd01:b::1:8000:2"}},
		{rgNetinfo, AAAA, "toy-store.ipv6-framework.slave.mesos.", []string{"2001:db8::1"}},
		{rgDocker, A, "liquor-store.marathon.mesos.", []string{"10.3.0.1", "10.3.0.2"}},
		{rgDocker, A, "nginx.marathon.mesos.", []string{"1.2.3.11"}},
		{rgDocker, AAAA, "toy-store.ipv6-framework.mesos.", []string{"2001:db8::1"}},
	} {
		got := get(tt.r, tt.k, tt.name)
		if !reflect.DeepEqual(got, sorted(tt.want)) {
			t.Errorf("case %d %s: got %v, want %v", i+1, tt.name, got, tt.want)
		}
	}
	// The raw DiscoveryInfo name is published too (Mesos-DNS legacy path).
	if !rg.Known("liquor.store.marathon.mesos.") {
		t.Errorf("raw DiscoveryInfo name liquor.store.marathon.mesos. missing")
	}
	for name := range rg.A {
		if !strings.HasSuffix(name, ".mesos.") {
			t.Errorf("name %q outside the domain", name)
		}
	}
}
