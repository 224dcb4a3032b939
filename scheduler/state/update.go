package state

import (
	"encoding/json"
	"errors"
	"sort"

	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

// StartDecision is what a starting scheduler runs: the stored
// configuration, the new one, or a mix when part of the change is refused.
type StartDecision struct {
	// Target is what the scheduler runs from now on.
	Target Target
	// Config is the configuration Target was derived from, stored beside
	// it when Write is set.
	Config config.Config
	// Write: store Config and Target (always, unless the change is
	// refused as a whole).
	Write bool
	// Change lists what changed and what it takes (accepted changes only).
	Change config.Change
	// Refused explains, one line each, the changes not applied; they are
	// shown in the deploy plan's errors and by /v1/health until the
	// options are set back.
	Refused []string
	// Err is the *config.UpdateError of a refused change (nil otherwise).
	Err error
}

// DecideStart compares the configuration a scheduler starts with (next)
// with what is stored: stored is the configuration of the running
// service, storedTarget its target (either may be nil: a first install,
// or state written before the configuration was stored). It never exits
// the scheduler: a refused change keeps the stored target running, so
// that Marathon does not restart-loop the scheduler and the Consul
// cluster is not harmed.
func DecideStart(stored *config.Config, storedTarget *Target, next config.Config) StartDecision {
	if stored == nil && storedTarget == nil {
		return StartDecision{Target: TargetFrom(next), Config: next, Write: true}
	}
	legacy := stored == nil
	var old config.Config
	if legacy {
		old = ConfigFromTarget(next, *storedTarget)
	} else {
		old = *stored
	}
	// The running target: derived from the stored configuration (the
	// target is written after it, so the configuration is the newer of
	// the two if a start stopped between the writes).
	running := TargetFrom(old)
	if legacy {
		running = *storedTarget
	}
	running = carryRollouts(storedTarget, running, old.Ports.HTTP)
	ch, err := config.CheckUpdate(old, next)
	if err != nil {
		d := StartDecision{Target: running, Config: old, Err: err}
		var ue *config.UpdateError
		if errors.As(err, &ue) {
			for _, r := range ue.Refused {
				d.Refused = append(d.Refused, r.String())
			}
		} else {
			d.Refused = []string{err.Error()}
		}
		return d
	}
	d := StartDecision{Config: next, Change: ch, Write: true}
	d.Target = carryRollouts(storedTarget, TargetFrom(d.Config), next.Ports.HTTP)
	return d
}

// carryRollouts carries every rollout (TLS, gossip encryption, ACLs) from
// the stored target over to t, or starts one that t turns on.
func carryRollouts(stored *Target, t Target, httpPort int) Target {
	return carryACLRollout(stored, carryGossipRollout(stored, carryTLSRollout(stored, t, httpPort)))
}

// ConfigFromTarget rebuilds the configuration of a target stored before
// the configuration itself was: base (the new configuration) with every
// setting the target records, so that CheckUpdate sees those changes.
// Settings a target does not record (the state store, security toggles,
// timeouts of the scheduler) are taken from base.
func ConfigFromTarget(base config.Config, t Target) config.Config {
	c := base
	c.ServiceName, c.Role, c.Principal, c.User = t.ServiceName, t.Role, t.Principal, t.User
	c.ServerCount = t.Servers
	c.ServerCPUs, c.ServerMem, c.ServerDisk, c.ServerDiskType = t.Server.CPUs, t.Server.Mem, t.Server.Disk, t.Server.DiskType
	c.ClientCPUs, c.ClientMem = t.Client.CPUs, t.Client.Mem
	c.ClientsEnabled, c.ClientsOnPublic = t.ClientsEnabled, t.ClientsOnPublic
	c.ServerPlacement = ""
	if len(t.Placement) > 0 {
		b, _ := json.Marshal(t.Placement)
		c.ServerPlacement = string(b)
		if base.ServerPlacement != "" {
			var p [][]string
			if json.Unmarshal([]byte(base.ServerPlacement), &p) == nil && samePlacement(p, t.Placement) {
				c.ServerPlacement = base.ServerPlacement // same constraints, other spelling
			}
		}
	}
	c.Ports = config.Ports{Server: t.Ports.Server, SerfLAN: t.Ports.SerfLAN, SerfWAN: t.Ports.SerfWAN,
		HTTP: t.Ports.HTTP, HTTPS: t.Ports.HTTPS, GRPC: t.Ports.GRPC, DNS: t.Ports.DNS, GRPCTLS: t.Ports.GRPCTLS}
	if c.Ports.GRPCTLS == 0 {
		c.Ports.GRPCTLS = -1 // absent from the target: off
	}
	c.Datacenter, c.Domain, c.RaftMultiplier, c.UI = t.Datacenter, t.Domain, t.RaftMultiplier, t.UI
	c.LogLevel = t.LogLevel
	c.ExtraConfig = t.ExtraConfig
	c.MesosDNSDomain, c.ExecutorDNSServer, c.ExecutorURI = t.MesosDNSDomain, t.DNSServer, t.ExecutorURI
	c.ReplaceAfter = t.ReplaceAfter
	c.TLSTrustedCACerts = t.TLSTrustedCAs
	return c
}

func samePlacement(a, b [][]string) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// UpgradeConfigIDs carries records over from a target stored before the
// per-role configuration IDs: such a target has only ConfigID, and a
// record launched with it is up to date. It returns the target with its
// IDs computed now and the names of the records given their role's ID,
// so that upgrading the scheduler does not by itself restart every task.
// A target in the current format is returned as it is, with no names.
func UpgradeConfigIDs(stored Target, tasks Tasks) (Target, []string) {
	if stored.ServerConfigID != "" || stored.ClientConfigID != "" {
		return stored, nil
	}
	legacy := stored.ConfigID
	now := stored.WithConfigID()
	var names []string
	for n, t := range tasks {
		if t.ConfigID != "" && t.ConfigID == legacy {
			t.ConfigID = now.ConfigIDOf(t.Role)
			tasks[n] = t
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return now, names
}
