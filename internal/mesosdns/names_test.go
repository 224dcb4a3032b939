package mesosdns

import (
	"strings"
	"testing"
)

func TestRFC1123(t *testing.T) {
	long77 := "consul-server-with-a-very-long-name-that-goes-on-and-on-and-on-past-the-limit"
	if len(long77) != 77 {
		t.Fatalf("fixture is %d chars", len(long77))
	}
	for in, want := range map[string]string{
		// dcos-packaging.md section 9
		"Consul_Client.web": "consul-client-web",
		// cut at 63; the cut fell on a '-', so Mesos-DNS's trimCut refills
		// from what follows the cut instead of ending in '-'
		long77:                         "consul-server-with-a-very-long-name-that-goes-on-and-on-and-onp",
		strings.Repeat("abcdefghi", 9): strings.Repeat("abcdefghi", 7),
		// Mesos-DNS records/labels/labels_test.go
		"":                              "",
		"a":                             "a",
		"-":                             "",
		"a---":                          "a",
		"---a---":                       "a",
		"---a---b":                      "a---b",
		"a.b.c.d.e":                     "a-b-c-d-e",
		"a.c.d_de.":                     "a-c-d-de",
		"4abc123":                       "4abc123",
		"-4abc123":                      "4abc123",
		"89fdgsf---gs7-fgs--d7fddg-123": "89fdgsf---gs7-fgs--d7fddg-123",
		"89fdgsf---gs7-fgs--d7fddg-":    "89fdgsf---gs7-fgs--d7fddg",
		"fd%gsf---gs7-f$gs--d7fddg-123": "fdgsf---gs7-fgs--d7fddg-123",
		"fd%gsf---gs7-f$gs--d7fddg123456789012345678901234567890123456789-123":   "fdgsf---gs7-fgs--d7fddg1234567890123456789012345678901234567891",
		"%%fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789---123": "fdgsf---gs7-fgs--d7fddg1234567890123456789012345678901234567891",
		"##fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789-":      "fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789",
		"hello--------------------------------------------------------f":         "hello--------------------------------------------------------f",
		"consul-server-0": "consul-server-0",
		"Ünïcode Näme":    "ncodenme",
	} {
		if got := RFC1123(in); got != want {
			t.Errorf("RFC1123(%q) = %q, want %q", in, got, want)
		}
		if got := RFC1123(in); len(got) > 63 || strings.HasPrefix(got, "-") || strings.HasSuffix(got, "-") {
			t.Errorf("RFC1123(%q) = %q is not a valid label", in, got)
		}
	}
}

func TestRFC952(t *testing.T) {
	for in, want := range map[string]string{
		"4abc123":                       "abc123",
		"-4abc123":                      "abc123",
		"fd%gsf---gs7-f$gs--d7fddg-123": "fdgsf---gs7-fgs--d7fddg1",
		"89fdgsf---gs7-fgs--d7fddg-":    "fdgsf---gs7-fgs--d7fddg",
		"chronos with a space AND MIXED CASE-2.0.1":                      "chronoswithaspaceandmixe",
		"hello--------------------------------------------------------f": "hellof",
	} {
		if got := RFC952(in); got != want {
			t.Errorf("RFC952(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFrameworkFragment(t *testing.T) {
	for in, want := range map[string]string{
		"Prod.Consul_DC1":                      "prod.consul-dc1",
		"consul":                               "consul",
		"pod_123$abc.marathon-0.6.0-dev.mesos": "pod-123abc.marathon-0.6.0-dev.mesos",
		"":                                     "",
		"..":                                   "",
		"a..c.e":                               "a.c.e",
		"(@ host . com":                        "host.com",
		"MiXeDcase.CoM":                        "mixedcase.com",
		"space space.com":                      "spacespace.com",
		// A DC/OS service in a folder: Marathon app /prod/consul runs a
		// scheduler that names its framework "prod/consul".
		"prod/consul": "prodconsul",
	} {
		if got := FrameworkFragment(in); got != want {
			t.Errorf("FrameworkFragment(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTaskHostAndSRVNames(t *testing.T) {
	cases := []struct {
		task, fw, domain                   string
		host, slave, srv, slaveSRV, fwHost string
	}{
		{"consul-server-0", "consul", "mesos",
			"consul-server-0.consul.mesos", "consul-server-0.consul.slave.mesos",
			"_consul-server-0._tcp.consul.mesos", "_consul-server-0._tcp.consul.slave.mesos", "consul.mesos"},
		{"Consul_Client.web", "Prod.Consul_DC1", "",
			"consul-client-web.prod.consul-dc1.mesos", "consul-client-web.prod.consul-dc1.slave.mesos",
			"_consul-client-web._tcp.prod.consul-dc1.mesos", "_consul-client-web._tcp.prod.consul-dc1.slave.mesos", "prod.consul-dc1.mesos"},
		{"consul-server-1", "consul", ".Example.MESOS.",
			"consul-server-1.consul.example.mesos", "consul-server-1.consul.slave.example.mesos",
			"_consul-server-1._tcp.consul.example.mesos", "_consul-server-1._tcp.consul.slave.example.mesos", "consul.example.mesos"},
	}
	for _, c := range cases {
		if got := TaskHost(c.task, c.fw, c.domain); got != c.host {
			t.Errorf("TaskHost(%q,%q,%q) = %q, want %q", c.task, c.fw, c.domain, got, c.host)
		}
		if got := SlaveTaskHost(c.task, c.fw, c.domain); got != c.slave {
			t.Errorf("SlaveTaskHost = %q, want %q", got, c.slave)
		}
		if got := TaskSRV(c.task, "tcp", c.fw, c.domain); got != c.srv {
			t.Errorf("TaskSRV = %q, want %q", got, c.srv)
		}
		if got := SlaveTaskSRV(c.task, "tcp", c.fw, c.domain); got != c.slaveSRV {
			t.Errorf("SlaveTaskSRV = %q, want %q", got, c.slaveSRV)
		}
		if got := FrameworkHost(c.fw, c.domain); got != c.fwHost {
			t.Errorf("FrameworkHost = %q, want %q", got, c.fwHost)
		}
	}
	if got := LeaderHost(""); got != "leader.mesos" {
		t.Errorf("LeaderHost = %q", got)
	}
	if got := MasterHost("mesos"); got != "master.mesos" {
		t.Errorf("MasterHost = %q", got)
	}
	if got := SlaveHost("mesos."); got != "slave.mesos" {
		t.Errorf("SlaveHost = %q", got)
	}
}

func TestTaskIDHash(t *testing.T) {
	// Values from Mesos-DNS's own tests (records/generator_test.go): the
	// canonical names of its fake.json tasks.
	for id, want := range map[string]string{
		"test": "iffe9",
		"liquor-store.b8db9f73-562f-11e4-a088-c20493233aa5": "4dfjd",
		"liquor-store.b71166c1-562f-11e4-a088-c20493233aa5": "zasmd",
		"car-store.43758382-562f-11e4-a088-c20493233aa5":    "zinaz",
	} {
		if got := TaskIDHash(id); got != want {
			t.Errorf("TaskIDHash(%q) = %q, want %q", id, got, want)
		}
	}
}

func TestZbase32(t *testing.T) {
	// Vectors of tv42/zbase32 (its example and tests).
	for in, want := range map[string]string{
		"":                 "",
		"\x00":             "yy",
		"\xf0\xbf\xc7":     "6n9hq",
		"\xd4\x7a\x04":     "4t7ye",
		"\xff\xff\xff\xff": "999999a",
	} {
		if got := zbase32([]byte(in)); got != want {
			t.Errorf("zbase32(%x) = %q, want %q", in, got, want)
		}
	}
}

func TestCanonicalNames(t *testing.T) {
	const agent = "d10602e3-409b-4ff3-a8c2-2ac0bdb8a688-S0"
	if got := AgentIDTail(agent); got != "s0" {
		t.Errorf("AgentIDTail = %q", got)
	}
	if got := AgentIDTail("20140803-125133-3041283216-5050-2410-0"); got != "0" {
		t.Errorf("AgentIDTail = %q", got)
	}
	h := TaskIDHash("consul-server-0")
	if got, want := CanonicalTaskLabel("consul-server-0", "consul-server-0", agent), "consul-server-0-"+h+"-s0"; got != want {
		t.Errorf("CanonicalTaskLabel = %q, want %q", got, want)
	}
	if got, want := CanonicalTaskHost("liquor.store", "liquor-store.b8db9f73-562f-11e4-a088-c20493233aa5",
		"20140803-125133-3041283216-5050-2410-0", "marathon", "mesos"), "liquor-store-4dfjd-0.marathon.mesos"; got != want {
		t.Errorf("CanonicalTaskHost = %q, want %q", got, want)
	}
	if got, want := CanonicalSlaveTaskHost("car.store", "car-store.43758382-562f-11e4-a088-c20493233aa5",
		"20140803-125133-3041283216-5050-2410-0", "marathon", "mesos"), "car-store-zinaz-0.marathon.slave.mesos"; got != want {
		t.Errorf("CanonicalSlaveTaskHost = %q, want %q", got, want)
	}
}
