package config

import (
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

func env(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := kv[k]
		return v, ok
	}
}

func TestLoadEmptyEnvironmentIsDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Defaults()) {
		t.Fatalf("Load(empty) = %+v\nwant Defaults() = %+v", c, Defaults())
	}
	if err := Defaults().Validate(); err != nil {
		t.Fatalf("Defaults() is not valid: %v", err)
	}
}

func TestRoleAndPrincipalDefaultPerService(t *testing.T) {
	for _, tc := range []struct{ name, role, principal string }{
		{"consul", "consul-role", "consul-principal"},
		{"consul-b", "consul-b-role", "consul-b-principal"},
		{"/dev/consul", "dev__consul-role", "dev__consul-principal"},
	} {
		c, err := Load(env(map[string]string{EnvServiceName: tc.name, EnvRole: "", EnvPrincipal: ""}))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if c.Role != tc.role || c.Principal != tc.principal {
			t.Errorf("%s: role %q principal %q, want %q %q", tc.name, c.Role, c.Principal, tc.role, tc.principal)
		}
	}
	c, err := Load(env(map[string]string{EnvServiceName: "consul-b", EnvRole: "shared/consul", EnvPrincipal: "sa-consul"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Role != "shared/consul" || c.Principal != "sa-consul" {
		t.Errorf("explicit role/principal not kept: %q %q", c.Role, c.Principal)
	}
}

func TestLoadReadsEveryVariable(t *testing.T) {
	vars := map[string]string{
		EnvServiceName: "dev/consul-x", EnvUser: "root", EnvRole: "r1", EnvPrincipal: "p1",
		EnvServiceAccountSecret: "consul/sa", EnvServiceAccountCredential: "secrets/service-account.json",
		EnvLogLevel: "debug", EnvMesosMaster: "zk://master.mesos:2181/mesos", EnvZK: "master.mesos:2181",
		EnvStateDir: "st", EnvAPIPort: "31000", EnvAPIPort0: "31001", EnvExecutorURI: "http://h/dcos-consul",
		EnvMesosDNSDomain: "mesos.example", EnvExecutorDNSServer: "127.0.0.1:53",
		EnvServerCount: "5", EnvServerCPUs: "1.5", EnvServerMem: "2048", EnvServerDisk: "4096",
		EnvServerDiskType: "MOUNT", EnvServerPlacement: `[["@zone","GROUP_BY","3"]]`,
		EnvClientsEnabled: "false", EnvClientCPUs: "0.3", EnvClientMem: "300", EnvClientsOnPublic: "true", EnvClientBatch: "20",
		EnvDatacenter: "east_1", EnvDomain: "consul.example", EnvRaftMultiplier: "5", EnvUI: "false",
		EnvExtraConfig: ` {"log_json": true} `,
		EnvPortServer:  "9300", EnvPortSerfLAN: "9301", EnvPortSerfWAN: "-1", EnvPortHTTP: "9500",
		EnvPortHTTPS: "-1", EnvPortGRPC: "9502", EnvPortDNS: "-1", EnvPortGRPCTLS: "-1",
		EnvTLS: "false", EnvACL: "false", EnvGossipKey: "false",
		EnvFailover: "48h", EnvReplaceAft: "90s", EnvUninstall: "true",
		EnvBackupTarget: "file:///var/backups/consul", EnvBackupInterval: "30m", EnvBackupKeep: "3",
		EnvZKCredentialsFile: "zk-creds", EnvZKCredentialsSecret: "consul/zk", EnvDCOSJWKSURL: "http://master.mesos/acs/api/v1/auth/jwks",
	}
	seen := map[string]bool{}
	c, err := Load(func(k string) (string, bool) {
		seen[k] = true
		v, ok := vars[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		ServiceName: "dev/consul-x", User: "root", Role: "r1", Principal: "p1",
		ServiceAccountSecret: "consul/sa", ServiceAccountCredential: "secrets/service-account.json",
		LogLevel: "debug", MesosMaster: "zk://master.mesos:2181/mesos", ZK: "master.mesos:2181",
		StateDir: "st", APIPort: 31000, ExecutorURI: "http://h/dcos-consul",
		MesosDNSDomain: "mesos.example", ExecutorDNSServer: "127.0.0.1:53",
		ServerCount: 5, ServerCPUs: 1.5, ServerMem: 2048, ServerDisk: 4096, ServerDiskType: "MOUNT",
		ServerPlacement: `[["@zone","GROUP_BY","3"]]`,
		ClientsEnabled:  false, ClientCPUs: 0.3, ClientMem: 300, ClientsOnPublic: true, ClientBatchPercent: 20,
		Datacenter: "east_1", Domain: "consul.example", RaftMultiplier: 5, UI: false,
		ExtraConfig:     []byte(`{"log_json": true}`),
		Ports:           Ports{Server: 9300, SerfLAN: 9301, SerfWAN: -1, HTTP: 9500, HTTPS: -1, GRPC: 9502, DNS: -1, GRPCTLS: -1},
		FailoverTimeout: 48 * time.Hour, ReplaceAfter: 90 * time.Second,
		BackupTarget: "file:///var/backups/consul", BackupInterval: 30 * time.Minute, BackupKeep: 3,
		Uninstall:         true,
		ZKCredentialsFile: "zk-creds", ZKCredentialsSecret: "consul/zk", DCOSJWKSURL: "http://master.mesos/acs/api/v1/auth/jwks",
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("Load\n got %+v\nwant %+v", c, want)
	}
	// Every variable Load reads is in the Options contract, and back.
	var inOptions []string
	for _, o := range Options {
		inOptions = append(inOptions, o.Env)
		if !seen[o.Env] {
			t.Errorf("Options lists %s but Load does not read it", o.Env)
		}
	}
	for k := range seen {
		if OptionOf(k) == "" && !contains(inOptions, k) {
			t.Errorf("Load reads %s, which Options does not list", k)
		}
	}
	// PORT_API wins over PORT0.
	c, _ = Load(env(map[string]string{EnvAPIPort0: "31001"}))
	if c.APIPort != 31001 {
		t.Errorf("PORT0 alone: APIPort %d", c.APIPort)
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func TestBadValuesNameTheVariableOptionAndAllowedValues(t *testing.T) {
	for _, tc := range []struct {
		env, value string
		allowed    string // part of the message
	}{
		{EnvServiceName, "Consul", "lower-case letters"},
		{EnvServiceName, "consul-", "not ending with '-'"},
		{EnvUser, "a b", "Linux user"},
		{EnvRole, "*", "other than '*'"},
		{EnvRole, "a/../b", "'..'"},
		{EnvPrincipal, "a b", "principal"},
		{EnvServiceAccountSecret, "consul/sa", "set together with"},
		{EnvLogLevel, "verbose", "one of debug, info, warn, error"},
		{EnvMesosMaster, "leader.mesos:5050", "zk://"},
		{EnvZK, "master.mesos", "host:port"},
		{EnvExecutorDNSServer, "127.0.0.1", "ip:port"},
		{EnvAPIPort, "70000", "0-65535"},
		{EnvAPIPort, "api", "an integer"},
		{EnvMesosDNSDomain, "", "DNS domain"},
		{EnvServerCount, "4", "1, 3, 5 or 7"},
		{EnvServerCount, "three", "an integer"},
		{EnvServerCPUs, "0.05", "at least 0.1"},
		{EnvServerCPUs, "lots", "a finite number"},
		{EnvServerMem, "64", "at least 128"},
		{EnvServerDisk, "10", "at least 64"},
		{EnvServerDiskType, "PATH", "ROOT or MOUNT"},
		{EnvServerPlacement, "hostname:UNIQUE", "JSON list of Marathon constraints"},
		{EnvServerPlacement, `[["hostname","UNIQ"]]`, "UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER, IS"},
		{EnvServerPlacement, `[["hostname","UNIQUE","1"]]`, "takes no value"},
		{EnvServerPlacement, `[["rack","LIKE"]]`, "needs a value"},
		{EnvServerPlacement, `[["hostname","MAX_PER","zero"]]`, "whole number from 1"},
		{EnvServerPlacement, `[["hostname","LIKE","("]]`, "regular expression"},
		{EnvServerPlacement, `[["rack","UNLIKE","a[b"]]`, "regular expression"},
		{EnvServerPlacement, `[["@rack","UNIQUE"]]`, "@hostname, @zone and @region"},
		{EnvServerPlacement, `[["","UNIQUE"]]`, "empty field"},
		{EnvServerPlacement, `[["@zone","GROUP_BY","0"]]`, "whole number from 1"},
		{EnvServerPlacement, `[["hostname"]]`, "[field, operator]"},
		{EnvServerCPUs, "NaN", "a finite number"},
		{EnvServerCPUs, "+Inf", "a finite number"},
		{EnvServerMem, "Inf", "a finite number"},
		{EnvServerDisk, "-Inf", "a finite number"},
		{EnvClientCPUs, "nan", "a finite number"},
		{EnvClientMem, "+Inf", "a finite number"},
		{EnvUninstall, "yes please", "true or false"},
		{EnvUninstall, "maybe", "true or false"},
		{EnvClientsEnabled, "yes", "true or false"},
		{EnvClientCPUs, "0.01", "at least 0.05"},
		{EnvClientMem, "32", "at least 64"},
		{EnvClientsOnPublic, "maybe", "true or false"},
		{EnvDatacenter, "DC1", "lower-case letters, digits, '-' and '_'"},
		{EnvDatacenter, "dc.1", "lower-case letters, digits, '-' and '_'"},
		{EnvDomain, "Consul", "DNS domain"},
		{EnvDomain, "a..b", "DNS domain"},
		{EnvRaftMultiplier, "0", "1-10"},
		{EnvRaftMultiplier, "11", "1-10"},
		{EnvUI, "on", "true or false"},
		{EnvExtraConfig, "[1]", "JSON object of Consul agent configuration"},
		{EnvWANJoin, "10.0.0.1:0", "ports 1-65535"},
		{EnvWANJoin, "consul/server", "host or host:port"},
		{EnvExtraConfig, `{"datacenter": "x"}`, `without "datacenter": it is set by the consul.datacenter option`},
		{EnvExtraConfig, `{"ports": {"http": 1}}`, "the ports options"},
		{EnvExtraConfig, `{"encrypt": "k"}`, "generates and keeps the key"},
		{EnvPortServer, "-1", "1-65535"},
		{EnvPortSerfLAN, "0", "1-65535"},
		{EnvPortSerfWAN, "0", "1-65535, or -1 to disable"},
		{EnvPortHTTP, "8300", "CONSUL_PORT_SERVER already uses it"},
		{EnvPortGRPC, "65536", "or -1 to disable"},
		{EnvPortDNS, "8500", "already uses it"},
		{EnvTLSCACertFile, "/nonexistent/ca.pem", "give both files"},
		{EnvFailover, "10s", "at least 1m"},
		{EnvFailover, "10", "a duration"},
		{EnvReplaceAft, "5s", "at least 10s"},
	} {
		_, err := Load(env(map[string]string{tc.env: tc.value}))
		if err == nil {
			t.Errorf("%s=%q: accepted", tc.env, tc.value)
			continue
		}
		msg := err.Error()
		wantEnv := tc.env
		if tc.env == EnvServiceAccountSecret {
			wantEnv = EnvServiceAccountCredential // the pair is reported on the credential
		}
		if !strings.Contains(msg, wantEnv+" ") && !strings.Contains(msg, wantEnv+"=") {
			t.Errorf("%s=%q: error does not name the variable: %v", tc.env, tc.value, err)
		}
		if opt := OptionOf(wantEnv); opt != "" && !strings.Contains(msg, "(option "+opt+")") {
			t.Errorf("%s=%q: error does not name the option %s: %v", tc.env, tc.value, opt, err)
		}
		if !strings.Contains(msg, tc.allowed) {
			t.Errorf("%s=%q: error does not say what is allowed (%q): %v", tc.env, tc.value, tc.allowed, err)
		}
		var ve *ValueError
		if !errors.As(err, &ve) {
			t.Errorf("%s=%q: not a *ValueError: %T", tc.env, tc.value, err)
		}
	}
}

func TestEveryProblemIsReported(t *testing.T) {
	_, err := Load(env(map[string]string{EnvServerCount: "2", EnvDatacenter: "DC", EnvUI: "maybe"}))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, e := range []string{EnvServerCount, EnvDatacenter, EnvUI} {
		if !strings.Contains(err.Error(), e) {
			t.Errorf("%s not reported in %v", e, err)
		}
	}
}

func TestGoodValuesAreAccepted(t *testing.T) {
	for _, vars := range []map[string]string{
		{EnvServerPlacement: `[["hostname","UNIQUE"],["@zone","GROUP_BY"],["rack","LIKE","r-.*"],["rack","MAX_PER","2"],["@region","IS","us-east"],["type","CLUSTER"]]`},
		{EnvServerPlacement: "  "},
		{EnvServerPlacement: "[]"},
		{EnvExtraConfig: `{"log_json": true, "alt_domain": "consul.example", "telemetry": {"disable_hostname": true}}`},
		{EnvDomain: "consul."},
		{EnvServiceName: "/consul"},
		{EnvPortSerfWAN: "-1", EnvPortGRPC: "8502", EnvPortDNS: "-1"},
		{EnvMesosMaster: "http://127.0.0.1:5050"},
		{EnvMesosMaster: "zk://10.0.0.1:2181,10.0.0.2:2181/mesos", EnvZK: "10.0.0.1:2181,10.0.0.2:2181"},
		{EnvLogLevel: "WARN"},
		{EnvServerCount: "1"}, {EnvServerCount: "7"},
	} {
		if _, err := Load(env(vars)); err != nil {
			t.Errorf("%v: %v", vars, err)
		}
	}
}

func TestParsePlacement(t *testing.T) {
	got, err := ParsePlacement(`[["@zone","group_by","3"],["hostname","UNIQUE"]]`)
	if err != nil {
		t.Fatal(err)
	}
	var gotRules [][3]string
	for _, c := range got {
		gotRules = append(gotRules, [3]string{c.Field, c.Operator, c.Value})
	}
	want := [][3]string{{"@zone", "GROUP_BY", "3"}, {"hostname", "UNIQUE", ""}}
	if !reflect.DeepEqual(gotRules, want) {
		t.Fatalf("got %+v want %+v", gotRules, want)
	}
	if got, err := ParsePlacement(""); err != nil || got != nil {
		t.Fatalf("empty: %v %v", got, err)
	}
}

func TestOptionsHaveUniqueEnvAndPath(t *testing.T) {
	envs, paths := map[string]bool{}, map[string]bool{}
	for _, o := range Options {
		if envs[o.Env] {
			t.Errorf("%s listed twice", o.Env)
		}
		envs[o.Env] = true
		if o.Path != "" {
			if paths[o.Path] {
				t.Errorf("option %s listed twice", o.Path)
			}
			paths[o.Path] = true
			if o.Source != FromOption {
				t.Errorf("%s has an option but source %s", o.Env, o.Source)
			}
		} else if o.Source == FromOption {
			t.Errorf("%s comes from an option but has no path", o.Env)
		}
	}
	var list []string
	for p := range paths {
		list = append(list, p)
	}
	sort.Strings(list)
	if len(list) == 0 {
		t.Fatal("no options")
	}
}

func TestUninstallFlag(t *testing.T) {
	// strconv.ParseBool: empty is false (uninstalling destroys every volume,
	// so it takes an explicit true); unparsable values are refused by
	// TestBadValuesNameTheVariableOptionAndAllowedValues.
	for v, want := range map[string]bool{"true": true, "TRUE": true, "1": true, "": false, "false": false, " FALSE ": false, "0": false} {
		c, err := Load(env(map[string]string{EnvUninstall: v}))
		if err != nil {
			t.Fatal(err)
		}
		if c.Uninstall != want {
			t.Errorf("SDK_UNINSTALL=%q: Uninstall %v, want %v", v, c.Uninstall, want)
		}
	}
	if c, _ := Load(env(nil)); c.Uninstall {
		t.Error("Uninstall without SDK_UNINSTALL")
	}
}

func TestWANJoin(t *testing.T) {
	c := Defaults()
	c.ExecutorURI = "http://h/dcos-consul"
	c.WANJoin = "consul-server-0.consul-dc2.mesos:8302, 10.0.0.9,consul-server-1.consul-dc2.mesos"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := WANJoinList(c.WANJoin); len(got) != 3 || got[1] != "10.0.0.9" {
		t.Fatalf("list %q", got)
	}
	c.Ports.SerfWAN = -1
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "serf WAN port is disabled") {
		t.Fatalf("WAN join without the WAN port: %v", err)
	}
}

func TestAuthenticationSettings(t *testing.T) {
	c, err := Load(env(map[string]string{EnvFrameworkSecretFile: "/run/secret"}))
	if err != nil || c.FrameworkSecretPath() != "/run/secret" {
		t.Fatalf("FRAMEWORK_SECRET_FILE: %q, %v", c.FrameworkSecretPath(), err)
	}
	c, err = Load(env(map[string]string{EnvServiceAccountSecret: "consul/sa", EnvServiceAccountCredential: "secrets/service-account.json"}))
	if err != nil || c.FrameworkSecretPath() != "secrets/service-account.json" {
		t.Fatalf("DC/OS secret: %q, %v", c.FrameworkSecretPath(), err)
	}
	if c, _ := Load(env(nil)); c.FrameworkSecretPath() != "" {
		t.Fatalf("no secret: %q", c.FrameworkSecretPath())
	}
	for _, tc := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{EnvFrameworkSecretFile: "/a", EnvServiceAccountSecret: "consul/sa", EnvServiceAccountCredential: "secrets/sa.json"},
			EnvFrameworkSecretFile + `="/a"`},
		{map[string]string{EnvZKCredentialsFile: "/zk"}, "with the file store"},
		{map[string]string{EnvZK: "zk:2181", EnvZKCredentialsSecret: "consul/zk"}, EnvZKCredentialsFile + `="" is not allowed: set together with ` + EnvZKCredentialsSecret},
		{map[string]string{EnvDCOSJWKSURL: "master.mesos/acs/api/v1/auth/jwks"}, "an http(s) URL"},
		{map[string]string{EnvDCOSJWKSURL: "ftp://master.mesos/jwks"}, "an http(s) URL"},
	} {
		_, err := Load(env(tc.vars))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q", tc.vars, err, tc.want)
		}
	}
}
