package state

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

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
		{name: "scale down refused, the rest applied", stored: ptr(with(func(c *config.Config) { c.ServerCount = 5 })),
			storedTarget: tgt(with(func(c *config.Config) { c.ServerCount = 5 })),
			next:         with(func(c *config.Config) { c.ServerCount, c.ClientMem = 3, 512 }),
			want:         with(func(c *config.Config) { c.ServerCount, c.ClientMem = 5, 512 }),
			write:        true, restartCl: true,
			refused: []string{`servers.count (SERVER_COUNT) cannot change from "5" to "3"`, "set servers.count back to 5"}},
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
