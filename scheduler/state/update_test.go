package state

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

func TestDecideStart(t *testing.T) {
	base := config.Defaults()
	base.ExecutorURI = "http://h/0.1.0/dcos-consul"
	with := func(f func(*config.Config)) config.Config { c := base; f(&c); return c }
	ptr := func(c config.Config) *config.Config { return &c }
	tgt := func(c config.Config) *Target { t := TargetFrom(c); return &t }

	for _, tc := range []struct {
		name         string
		stored       *config.Config
		storedTarget *Target
		next         config.Config

		want      config.Config // the configuration the target must come from
		write     bool
		refused   []string // parts of the refusal lines, in order
		restartSv bool
		restartCl bool
	}{
		{name: "first install", next: base, want: base, write: true},
		{name: "no change", stored: ptr(base), storedTarget: tgt(base), next: base, want: base, write: true},
		{name: "server memory: servers restart", stored: ptr(base), storedTarget: tgt(base),
			next: with(func(c *config.Config) { c.ServerMem = 1024 }), want: with(func(c *config.Config) { c.ServerMem = 1024 }),
			write: true, restartSv: true},
		{name: "UI: everything restarts", stored: ptr(base), storedTarget: tgt(base),
			next: with(func(c *config.Config) { c.UI = false }), want: with(func(c *config.Config) { c.UI = false }),
			write: true, restartSv: true, restartCl: true},
		{name: "scale up", stored: ptr(base), storedTarget: tgt(base),
			next: with(func(c *config.Config) { c.ServerCount = 5 }), want: with(func(c *config.Config) { c.ServerCount = 5 }), write: true},
		{name: "datacenter refused: the stored target runs", stored: ptr(base), storedTarget: tgt(base),
			next: with(func(c *config.Config) { c.Datacenter = "dc2" }), want: base,
			refused: []string{`consul.datacenter (CONSUL_DATACENTER) cannot change from "dc1" to "dc2"`}},
		{name: "a refusal takes the allowed changes with it", stored: ptr(base), storedTarget: tgt(base),
			next: with(func(c *config.Config) { c.Datacenter, c.ServerMem, c.Ports.SerfLAN = "dc2", 1024, 9301 }), want: base,
			refused: []string{"consul.datacenter", "CONSUL_PORT_SERF_LAN"}},
		{name: "scale down (servers are removed one at a time)", stored: ptr(with(func(c *config.Config) { c.ServerCount = 5 })),
			storedTarget: tgt(with(func(c *config.Config) { c.ServerCount = 5 })),
			next:         with(func(c *config.Config) { c.ServerCount, c.ClientMem = 3, 512 }),
			want:         with(func(c *config.Config) { c.ServerCount, c.ClientMem = 3, 512 }),
			write:        true, restartCl: true},
		{name: "legacy state (target only): a datacenter change is still refused", storedTarget: tgt(base),
			next: with(func(c *config.Config) { c.Datacenter = "dc2" }), want: base, refused: []string{"consul.datacenter"}},
		{name: "legacy state: disk type and role refused", storedTarget: tgt(base),
			next:    with(func(c *config.Config) { c.ServerDiskType, c.Role = "MOUNT", "other" }),
			want:    base,
			refused: []string{"FRAMEWORK_ROLE", "SERVER_DISK_TYPE"}},
		{name: "legacy state: allowed change applied and the configuration stored", storedTarget: tgt(base),
			next: with(func(c *config.Config) { c.ServerCPUs = 1 }), want: with(func(c *config.Config) { c.ServerCPUs = 1 }),
			write: true, restartSv: true},
		{name: "legacy state with placement: same constraints are no change",
			storedTarget: tgt(with(func(c *config.Config) { c.ServerPlacement = `[["hostname", "UNIQUE"]]` })),
			next:         with(func(c *config.Config) { c.ServerPlacement = `[["hostname", "UNIQUE"]]` }),
			want:         with(func(c *config.Config) { c.ServerPlacement = `[["hostname", "UNIQUE"]]` }), write: true},
		{name: "stopped between the two writes: the stored configuration wins over the older target",
			stored: ptr(with(func(c *config.Config) { c.ServerMem = 1024 })), storedTarget: tgt(base),
			next: with(func(c *config.Config) { c.ServerMem = 1024 }), want: with(func(c *config.Config) { c.ServerMem = 1024 }), write: true},
		{name: "stopped between the writes, then a refused change: the stored configuration runs",
			stored: ptr(with(func(c *config.Config) { c.ServerMem = 1024 })), storedTarget: tgt(base),
			next: with(func(c *config.Config) { c.ServerMem, c.Domain = 1024, "other" }), want: with(func(c *config.Config) { c.ServerMem = 1024 }),
			refused: []string{"consul.domain", "alt_domain"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := DecideStart(tc.stored, tc.storedTarget, tc.next)
			want := TargetFrom(tc.want)
			if d.Target.ConfigID != want.ConfigID || d.Target.Servers != want.Servers || d.Target.Datacenter != want.Datacenter ||
				d.Target.Role != want.Role || d.Target.Server != want.Server || d.Target.Client != want.Client {
				t.Errorf("target %+v\nwant   %+v", d.Target, want)
			}
			if d.Write != tc.write {
				t.Errorf("write %v, want %v", d.Write, tc.write)
			}
			if d.Write {
				if ch, err := config.CheckUpdate(d.Config, tc.want); err != nil || !ch.None() {
					t.Errorf("stores a configuration other than the target's: %v %v", ch, err)
				}
				if TargetFrom(d.Config).ConfigID != d.Target.ConfigID {
					t.Errorf("stored configuration does not derive the target")
				}
			}
			all := strings.Join(d.Refused, "\n")
			if len(tc.refused) == 0 {
				if d.Err != nil || len(d.Refused) > 0 {
					t.Errorf("refused: %v %q", d.Err, all)
				}
			} else {
				var ue *config.UpdateError
				if !errors.As(d.Err, &ue) {
					t.Fatalf("want *config.UpdateError, got %v", d.Err)
				}
				pos := 0
				for _, part := range tc.refused {
					i := strings.Index(all[pos:], part)
					if i < 0 {
						t.Fatalf("refusals lack %q (in order):\n%s", part, all)
					}
					pos += i
				}
				if !strings.Contains(all, "Instead:") {
					t.Errorf("no advice: %s", all)
				}
			}
			if d.Change.RestartServers() != tc.restartSv || d.Change.RestartClients() != tc.restartCl {
				t.Errorf("restart servers %v clients %v, want %v %v (%v)", d.Change.RestartServers(), d.Change.RestartClients(),
					tc.restartSv, tc.restartCl, d.Change)
			}
		})
	}
}

// TestStoredConfigDerivesTheSameTarget: the configuration read back from
// the store (ExtraConfig null, not absent) derives the same ConfigID, so a
// restart without a change restarts nothing.
func TestStoredConfigDerivesTheSameTarget(t *testing.T) {
	c := config.Defaults()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back config.Config
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if a, b := TargetFrom(c).ConfigID, TargetFrom(back).ConfigID; a != b {
		t.Fatalf("ConfigID %s before the store, %s after", a, b)
	}
	d := DecideStart(&back, nil, c)
	if d.Err != nil || !d.Change.None() || d.Target.ConfigID != TargetFrom(c).ConfigID {
		t.Fatalf("restart without a change: %v %v %s", d.Err, d.Change, d.Target.ConfigID)
	}
}

// TestConfigIDsFollowCheckUpdate: for every change config.CheckUpdate
// allows, the servers' configuration ID changes exactly when it says
// servers restart, and the clients' likewise, so the rolling restart does
// what the change was classified as.
func TestConfigIDsFollowCheckUpdate(t *testing.T) {
	base := config.Defaults()
	base.ExecutorURI = "http://h/0.1.0/dcos-consul"
	for name, f := range map[string]func(*config.Config){
		"server cpus":         func(c *config.Config) { c.ServerCPUs = 2 },
		"server mem":          func(c *config.Config) { c.ServerMem = 2048 },
		"client cpus":         func(c *config.Config) { c.ClientCPUs = 1 },
		"client mem":          func(c *config.Config) { c.ClientMem = 1024 },
		"raft multiplier":     func(c *config.Config) { c.RaftMultiplier = 5 },
		"ui":                  func(c *config.Config) { c.UI = false },
		"extra config":        func(c *config.Config) { c.ExtraConfig = json.RawMessage(`{"log_json":true}`) },
		"extra reformatted":   func(c *config.Config) {},
		"http port":           func(c *config.Config) { c.Ports.HTTP = 9500 },
		"dns port":            func(c *config.Config) { c.Ports.DNS = -1 },
		"executor uri":        func(c *config.Config) { c.ExecutorURI = "http://h/0.2.0/dcos-consul" },
		"mesos dns domain":    func(c *config.Config) { c.MesosDNSDomain = "mesos2" },
		"dns server":          func(c *config.Config) { c.ExecutorDNSServer = "10.0.0.1:53" },
		"log level":           func(c *config.Config) { c.LogLevel = "debug" },
		"server count":        func(c *config.Config) { c.ServerCount = 5 },
		"placement":           func(c *config.Config) { c.ServerPlacement = `[["hostname","UNIQUE"]]` },
		"replace after":       func(c *config.Config) { c.ReplaceAfter = 1 },
		"clients off":         func(c *config.Config) { c.ClientsEnabled = false },
		"failover timeout":    func(c *config.Config) { c.FailoverTimeout = 1 },
		"api port":            func(c *config.Config) { c.APIPort = 1234 },
		"mesos master":        func(c *config.Config) { c.MesosMaster = "zk://master.mesos:2181/mesos" },
		"service acct secret": func(c *config.Config) { c.ServiceAccountSecret = "consul/sa" },
	} {
		old := base
		old.ExtraConfig = json.RawMessage(`{"a": 1}`)
		next := old
		if name == "extra reformatted" {
			next.ExtraConfig = json.RawMessage("{\n  \"a\":1\n}")
		}
		f(&next)
		ch, err := config.CheckUpdate(old, next)
		if err != nil {
			t.Fatalf("%s: refused: %v", name, err)
		}
		a, b := TargetFrom(old), TargetFrom(next)
		if got := a.ServerConfigID != b.ServerConfigID; got != ch.RestartServers() {
			t.Errorf("%s: servers' config ID changed %v, CheckUpdate says restart servers %v (%v)", name, got, ch.RestartServers(), ch)
		}
		if got := a.ClientConfigID != b.ClientConfigID; got != ch.RestartClients() {
			t.Errorf("%s: clients' config ID changed %v, CheckUpdate says restart clients %v (%v)", name, got, ch.RestartClients(), ch)
		}
	}
}

// TestUpgradeConfigIDs: records of a target stored with one ConfigID keep
// running after the scheduler is upgraded; stale ones still restart.
func TestUpgradeConfigIDs(t *testing.T) {
	tg := TargetFrom(config.Defaults())
	legacy := tg
	legacy.ServerConfigID, legacy.ClientConfigID, legacy.ConfigID = "", "", "0123456789abcdef"
	ts := Tasks{
		"consul-server-0":  {Name: "consul-server-0", Role: "server", ConfigID: legacy.ConfigID},
		"consul-server-1":  {Name: "consul-server-1", Role: "server", ConfigID: "older"},
		"consul-client-s1": {Name: "consul-client-s1", Role: "client", ConfigID: legacy.ConfigID},
		"consul-server-2":  {Name: "consul-server-2", Role: "server"},
	}
	up, names := UpgradeConfigIDs(legacy, ts)
	if up.ServerConfigID != tg.ServerConfigID || up.ClientConfigID != tg.ClientConfigID {
		t.Fatalf("upgraded target %+v", up)
	}
	if strings.Join(names, ",") != "consul-client-s1,consul-server-0" {
		t.Fatalf("names %v", names)
	}
	if ts["consul-server-0"].ConfigID != tg.ServerConfigID || ts["consul-client-s1"].ConfigID != tg.ClientConfigID ||
		ts["consul-server-1"].ConfigID != "older" || ts["consul-server-2"].ConfigID != "" {
		t.Fatalf("records %+v", ts)
	}
	if again, n := UpgradeConfigIDs(up, ts); n != nil || again.ConfigID != up.ConfigID {
		t.Fatalf("a current target was changed: %v", n)
	}
}

func TestStatusMessageIsTruncatedBeforeItIsStored(t *testing.T) {
	for _, n := range []int{0, 10, MaxMessage, MaxMessage + 1, 2 << 20} {
		msg := strings.Repeat("é", n/2) + strings.Repeat("x", n%2) // two-byte runes: cuts land mid-rune
		got := TruncateMessage(msg)
		if len(got) > MaxMessage {
			t.Errorf("%d bytes: kept %d", len(msg), len(got))
		}
		if !utf8.ValidString(got) {
			t.Errorf("%d bytes: not valid UTF-8 after the cut", len(msg))
		}
		if len(msg) <= MaxMessage && got != msg {
			t.Errorf("%d bytes: changed a message within the bound", len(msg))
		}
		if len(msg) > MaxMessage && !strings.Contains(got, "bytes truncated]") {
			t.Errorf("%d bytes: the cut is not noted: %q", len(msg), got[len(got)-40:])
		}
	}
}
