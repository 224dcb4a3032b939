package config

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// FuzzLoad: any environment is either refused with an error or gives a
// configuration that validates, is stored as JSON (no NaN or Inf) and
// reads back valid; SDK_UNINSTALL uninstalls only when it parses as true.
// The environment is one variable set to any value (idx picks it, among
// every variable Load reads and one it does not) plus any KEY=VALUE lines.
func FuzzLoad(f *testing.F) {
	f.Add(uint8(0), "", "")
	f.Add(uint8(1), "NaN", "SERVER_CPUS=+Inf\nCLIENT_MEM=1e400")
	f.Add(uint8(2), `[["hostname","LIKE","("]]`, "SERVER_PLACEMENT=[[\"@zone\",\"GROUP_BY\",\"3\"]]")
	f.Add(uint8(3), "yes", "SDK_UNINSTALL=\nSERVER_COUNT=5")
	f.Add(uint8(4), "-1", "CONSUL_PORT_HTTP=8300\nCONSUL_EXTRA_CONFIG={\"datacenter\":1}")
	f.Add(uint8(5), "0x1p-2", "SERVER_MEM=1e3\nFRAMEWORK_FAILOVER_TIMEOUT=-5m")
	f.Fuzz(func(t *testing.T, idx uint8, value, lines string) {
		names := fuzzEnvNames()
		vars := map[string]string{}
		for _, l := range strings.Split(lines, "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				vars[k] = v
			}
		}
		vars[names[int(idx)%len(names)]] = value
		c, err := Load(env(vars))
		if err != nil {
			if c.ServiceName != "" {
				t.Fatalf("refused, yet a configuration came back: %+v", c)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Load accepted what Validate refuses: %v (%q)", err, vars)
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("an accepted configuration cannot be stored: %v", err)
		}
		var back Config
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("a stored configuration does not read back: %v", err)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("a stored configuration reads back invalid: %v", err)
		}
		if _, err := ParsePlacement(c.ServerPlacement); err != nil {
			t.Fatalf("accepted placement does not parse: %v", err)
		}
		if u, set := vars[EnvUninstall]; c.Uninstall {
			if b, err := strconv.ParseBool(strings.TrimSpace(u)); !set || err != nil || !b {
				t.Fatalf("uninstall with SDK_UNINSTALL=%q (set %v)", u, set)
			}
		}
	})
}

func fuzzEnvNames() []string {
	names := []string{EnvAPIPort0, EnvUninstall, "NOT_READ"}
	for _, o := range Options {
		names = append(names, o.Env)
	}
	return names
}
