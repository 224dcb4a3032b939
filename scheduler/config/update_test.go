package config

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCheckUpdate(t *testing.T) {
	base := Defaults()
	for _, tc := range []struct {
		name    string
		change  func(*Config)
		effects []Effect // allowed: the effects, in rule order
		refused []string // refused: the variables named
		why     string   // refused: part of the message
	}{
		{name: "no change", change: func(c *Config) {}},
		{name: "scale up 3 to 5", change: func(c *Config) { c.ServerCount = 5 }, effects: []Effect{EffectScaleServers}},
		{name: "scale down 3 to 1", change: func(c *Config) { c.ServerCount = 1 }, effects: []Effect{EffectScaleServers}},
		{name: "scale 3 to 7", change: func(c *Config) { c.ServerCount = 7 }, effects: []Effect{EffectScaleServers}},
		{name: "server resources", change: func(c *Config) { c.ServerCPUs, c.ServerMem = 1, 1024 },
			effects: []Effect{EffectServers, EffectServers}},
		{name: "clients", change: func(c *Config) {
			c.ClientsEnabled, c.ClientCPUs, c.ClientMem, c.ClientsOnPublic = false, 0.5, 512, true
		}, effects: []Effect{EffectClientSet, EffectClients, EffectClients, EffectClientSet}},
		{name: "log level and timeouts", change: func(c *Config) {
			c.LogLevel, c.FailoverTimeout, c.ReplaceAfter = "debug", time.Hour, time.Minute
		}, effects: []Effect{EffectScheduler, EffectScheduler, EffectScheduler}},
		{name: "consul settings", change: func(c *Config) {
			c.RaftMultiplier, c.UI, c.ExtraConfig = 5, false, []byte(`{"log_json":true}`)
		}, effects: []Effect{EffectServers, EffectAllTasks, EffectAllTasks}},
		{name: "client-facing ports", change: func(c *Config) {
			c.Ports.HTTPS, c.Ports.GRPC, c.Ports.DNS = 9501, 8502, -1
		}, effects: []Effect{EffectAllTasks, EffectAllTasks, EffectAllTasks}},
		// Plain HTTP is off with TLS: its port changes nothing.
		{name: "http port with TLS", change: func(c *Config) { c.Ports.HTTP = 9500 }},
		{name: "placement", change: func(c *Config) { c.ServerPlacement = `[["@zone","GROUP_BY","3"]]` },
			effects: []Effect{EffectNewPlacements}},
		{name: "package upgrade (executor URI)", change: func(c *Config) { c.ExecutorURI = "http://h/0.2.0/dcos-consul" },
			effects: []Effect{EffectAllTasks}},
		{name: "service account secret", change: func(c *Config) {
			c.ServiceAccountSecret, c.ServiceAccountCredential = "consul/sa", "secrets/service-account.json"
		}, effects: []Effect{EffectScheduler, EffectScheduler}},
		{name: "api port moves with Marathon", change: func(c *Config) { c.APIPort = 31234 }, effects: []Effect{EffectScheduler}},

		{name: "service name", change: func(c *Config) { c.ServiceName = "consul2" }, refused: []string{EnvServiceName}, why: "Marathon app id"},
		{name: "user", change: func(c *Config) { c.User = "root" }, refused: []string{EnvUser}, why: "persistent volumes belongs"},
		{name: "role", change: func(c *Config) { c.Role = "other" }, refused: []string{EnvRole}, why: "reserved resources"},
		{name: "principal", change: func(c *Config) { c.Principal = "other" }, refused: []string{EnvPrincipal}, why: "only it release"},
		{name: "datacenter", change: func(c *Config) { c.Datacenter = "dc2" }, refused: []string{EnvDatacenter}, why: "raft data"},
		{name: "domain", change: func(c *Config) { c.Domain = "other" }, refused: []string{EnvDomain}, why: "alt_domain"},
		{name: "server port", change: func(c *Config) { c.Ports.Server = 9300 }, refused: []string{EnvPortServer}, why: "lose its leader"},
		{name: "serf ports", change: func(c *Config) { c.Ports.SerfLAN, c.Ports.SerfWAN = 9301, -1 },
			refused: []string{EnvPortSerfLAN, EnvPortSerfWAN}, why: "two pools"},
		{name: "disk size", change: func(c *Config) { c.ServerDisk = 2048 }, refused: []string{EnvServerDisk}, why: "cannot resize"},
		{name: "disk type", change: func(c *Config) { c.ServerDiskType = "MOUNT" }, refused: []string{EnvServerDiskType}, why: "disk type"},
		{name: "state store", change: func(c *Config) { c.ZK = "zk2:2181" }, refused: []string{EnvZK}, why: "not find its own tasks"},
		{name: "refused and allowed together: only the refusal", change: func(c *Config) {
			c.ServerCount, c.Datacenter = 5, "dc2"
		}, refused: []string{EnvDatacenter}, why: "Instead"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := base
			tc.change(&next)
			ch, err := CheckUpdate(base, next)
			if len(tc.refused) > 0 {
				var ue *UpdateError
				if !errors.As(err, &ue) {
					t.Fatalf("want *UpdateError, got %v (change %v)", err, ch)
				}
				var envs []string
				for _, r := range ue.Refused {
					envs = append(envs, r.Env)
					if r.Why == "" || r.Instead == "" {
						t.Errorf("%s: refusal without why or instead", r.Env)
					}
				}
				if !reflect.DeepEqual(envs, tc.refused) {
					t.Errorf("refused %v, want %v", envs, tc.refused)
				}
				msg := err.Error()
				if !strings.Contains(msg, tc.why) || !strings.Contains(msg, "Instead:") || !strings.Contains(msg, "keeps its current configuration") {
					t.Errorf("message lacks %q / advice: %s", tc.why, msg)
				}
				if opt := OptionOf(tc.refused[0]); opt != "" && !strings.Contains(msg, opt) {
					t.Errorf("message does not name option %s: %s", opt, msg)
				}
				if !ch.None() {
					t.Errorf("refused update returned a change: %v", ch)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			var effects []Effect
			for _, f := range ch.Fields {
				effects = append(effects, f.Effect)
				if f.Old == f.New {
					t.Errorf("%s listed with equal values %q", f.Env, f.Old)
				}
			}
			if !reflect.DeepEqual(effects, tc.effects) {
				t.Errorf("effects %v, want %v (%v)", effects, tc.effects, ch)
			}
			if ch.ServersFrom != base.ServerCount || ch.ServersTo != next.ServerCount {
				t.Errorf("servers %d->%d, want %d->%d", ch.ServersFrom, ch.ServersTo, base.ServerCount, next.ServerCount)
			}
		})
	}
}

func TestChangeRestarts(t *testing.T) {
	base := Defaults()
	next := base
	next.ServerMem = 1024
	ch, err := CheckUpdate(base, next)
	if err != nil {
		t.Fatal(err)
	}
	if !ch.RestartServers() || ch.RestartClients() {
		t.Errorf("server mem: restart servers %v clients %v", ch.RestartServers(), ch.RestartClients())
	}
	next = base
	next.UI = false
	ch, _ = CheckUpdate(base, next)
	if !ch.RestartServers() || !ch.RestartClients() {
		t.Errorf("ui: restart servers %v clients %v", ch.RestartServers(), ch.RestartClients())
	}
	next = base
	next.LogLevel = "debug"
	ch, _ = CheckUpdate(base, next)
	if ch.RestartServers() || ch.RestartClients() || ch.None() {
		t.Errorf("log level: %v", ch)
	}
	if !strings.Contains(ch.String(), `service.log_level "info" -> "debug" (scheduler)`) {
		t.Errorf("String: %s", ch)
	}
}

func TestExtraConfigReformattingIsNoChange(t *testing.T) {
	a, b := Defaults(), Defaults()
	a.ExtraConfig = []byte(`{"log_json": true}`)
	b.ExtraConfig = []byte("{\n  \"log_json\":true\n}")
	if ch, err := CheckUpdate(a, b); err != nil || !ch.None() {
		t.Fatalf("reformatted extra config: %v %v", ch, err)
	}
}

// TestEveryFieldIsClassified changes each field of Config in turn and
// checks that CheckUpdate notices: a field added to Config without an
// update rule fails here.
func TestEveryFieldIsClassified(t *testing.T) {
	// Each field must be noticed from one of the bases: ports.http is
	// ignored with TLS (plain HTTP off), so it counts with TLS off.
	noTLS := Defaults()
	noTLS.TLS, noTLS.Ports.HTTPS = false, -1
	noticed, fields := map[string]bool{}, []string{}
	for _, base := range []Config{Defaults(), noTLS} {
		walkFields(t, base, noticed, &fields)
	}
	for _, name := range fields {
		if !noticed[name] {
			t.Errorf("changing %s is not noticed by CheckUpdate", name)
		}
	}
}

// TestHTTPPortWithTLSIsNoChange: with TLS plain HTTP is off, so changing
// ports.http restarts nothing (the tasks' configuration IDs do not change
// either: state.TargetFrom drops the port).
func TestHTTPPortWithTLSIsNoChange(t *testing.T) {
	base := Defaults()
	base.TLS, base.Ports.HTTPS = true, DefaultHTTPSPort
	next := base
	next.Ports.HTTP = 9500
	if ch, err := CheckUpdate(base, next); err != nil || !ch.None() {
		t.Fatalf("ports.http with TLS: %v %v, want no change", ch, err)
	}
	base.TLS, base.Ports.HTTPS = false, -1
	next = base
	next.Ports.HTTP = 9500
	if ch, err := CheckUpdate(base, next); err != nil || !ch.RestartServers() || !ch.RestartClients() {
		t.Fatalf("ports.http without TLS: %v %v, want every task restarted", ch, err)
	}
}

func walkFields(t *testing.T, base Config, noticed map[string]bool, fields *[]string) {
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			name := path + v.Type().Field(i).Name
			if name == "Uninstall" {
				continue // not a configuration change (see CheckUpdate)
			}
			if f.Kind() == reflect.Struct {
				walk(f, name+".")
				continue
			}
			next := base
			nv := reflect.ValueOf(&next).Elem().FieldByName(v.Type().Field(i).Name)
			if path != "" {
				nv = reflect.ValueOf(&next).Elem().FieldByName(strings.TrimSuffix(path, ".")).FieldByName(v.Type().Field(i).Name)
			}
			switch nv.Kind() {
			case reflect.String:
				nv.SetString(nv.String() + "x")
			case reflect.Int, reflect.Int64:
				nv.SetInt(nv.Int() + 2)
			case reflect.Float64:
				nv.SetFloat(nv.Float() + 1)
			case reflect.Bool:
				nv.SetBool(!nv.Bool())
			case reflect.Slice:
				nv.SetBytes([]byte(`{"x":1}`))
			default:
				t.Fatalf("%s: kind %s not handled by this test", name, nv.Kind())
			}
			if _, seen := noticed[name]; !seen {
				*fields = append(*fields, name)
			}
			ch, err := CheckUpdate(base, next)
			noticed[name] = noticed[name] || err != nil || !ch.None()
		}
	}
	walk(reflect.ValueOf(base), "")
}

// TestStoredConfigRoundTrips: a Config stored as JSON (as the scheduler
// keeps its target) and read back is valid and equal for CheckUpdate.
func TestStoredConfigRoundTrips(t *testing.T) {
	for _, c := range []Config{Defaults(), func() Config {
		c := Defaults()
		c.ExtraConfig = json.RawMessage(`{"log_json": true}`)
		c.ServerPlacement = `[["hostname","UNIQUE"]]`
		return c
	}()} {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var back Config
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("stored config no longer valid: %v", err)
		}
		if ch, err := CheckUpdate(back, c); err != nil || !ch.None() {
			t.Fatalf("round trip changed the config: %v %v", ch, err)
		}
	}
}

// TestCheckUpdateTLSOff: turning TLS off on a running cluster is refused,
// saying that turning it on is what works.
func TestCheckUpdateTLSOff(t *testing.T) {
	on := Defaults()
	on.ServiceName, on.TLS, on.Ports.HTTPS = "consul", true, DefaultHTTPSPort
	off := on
	off.TLS = false
	_, err := CheckUpdate(on, off)
	var ue *UpdateError
	if !errors.As(err, &ue) || len(ue.Refused) != 1 || ue.Refused[0].Env != EnvTLS {
		t.Fatalf("want the TLS change refused, got %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "turning it on is supported") || !strings.Contains(msg, "keep security.tls.enabled on") {
		t.Errorf("the refusal does not say what works: %s", msg)
	}
}

// TestInstallWithoutTLSUpgradedToTheNewDefault: a service installed while
// TLS was off by default, whose scheduler restarts with a package where it
// is on (and the option not set to false), gets TLS turned on: the change
// is accepted and rolled out (state.TLSRollout phases it), not refused.
func TestInstallWithoutTLSUpgradedToTheNewDefault(t *testing.T) {
	old := Defaults()
	old.TLS, old.Ports.HTTPS, old.Ports.GRPCTLS = false, -1, -1
	if err := old.Validate(); err != nil {
		t.Fatal(err)
	}
	ch, err := CheckUpdate(old, Defaults())
	if err != nil {
		t.Fatalf("turning TLS on refused: %v", err)
	}
	found := false
	for _, f := range ch.Fields {
		if f.Env == EnvTLS {
			found = f.Old == "false" && f.New == "true" && f.Effect == EffectAllTasks
		}
	}
	if !found {
		t.Fatalf("change %v does not turn TLS on for every task", ch)
	}
}

// TestCheckUpdateACL: turning ACLs on in a running cluster is accepted
// (every task restarts: state.ACLFor phases it); off is refused, saying
// what works; on in a secondary datacenter of a federation is refused.
func TestCheckUpdateACL(t *testing.T) {
	off := Defaults()
	off.ServiceName, off.ACL = "consul", false
	on := off
	on.ACL = true
	ch, err := CheckUpdate(off, on)
	if err != nil {
		t.Fatalf("turning ACLs on refused: %v", err)
	}
	if len(ch.Fields) != 1 || ch.Fields[0].Env != EnvACL || ch.Fields[0].Old != "false" || ch.Fields[0].New != "true" ||
		ch.Fields[0].Effect != EffectAllTasks {
		t.Fatalf("turning ACLs on: %v, want security.acl.enabled false -> true restarting every task", ch)
	}
	_, err = CheckUpdate(on, off)
	var ue *UpdateError
	if !errors.As(err, &ue) || len(ue.Refused) != 1 || ue.Refused[0].Env != EnvACL {
		t.Fatalf("turning ACLs off: want it refused, got %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "turning ACLs off on a running cluster is not supported") ||
		!strings.Contains(msg, "turning them on is supported") || !strings.Contains(msg, "keep security.acl.enabled") {
		t.Errorf("the refusal does not say why and what works: %s", msg)
	}
	sOff := off
	sOff.Datacenter, sOff.PrimaryDatacenter = "dc2", "dc1"
	sOn := sOff
	sOn.ACL = true
	_, err = CheckUpdate(sOff, sOn)
	if !errors.As(err, &ue) || len(ue.Refused) != 1 || ue.Refused[0].Env != EnvACL || !strings.Contains(err.Error(), "secondary datacenter") {
		t.Fatalf("turning ACLs on in a secondary datacenter: want it refused naming why, got %v", err)
	}
	if ch, err := CheckUpdate(sOn, sOn); err != nil || !ch.None() {
		t.Fatalf("a secondary with ACLs, unchanged: %v %v", ch, err)
	}
}
