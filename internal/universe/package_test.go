package universe

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/dcos-consul/dcos-consul/internal/cosmos"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

const root = "../.."

func source(t *testing.T) *Source {
	t.Helper()
	s, err := ReadSource(root)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func decode(t *testing.T, b []byte) any {
	t.Helper()
	v, err := cosmos.DecodeJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return v
}

func obj(t *testing.T, s string) map[string]any {
	t.Helper()
	return decode(t, []byte(s)).(map[string]any)
}

// TestPackageFilesFollowUniverseRules checks the files as Universe's CI
// does: valid JSON, ASCII only, no \u escapes, and each against its schema.
func TestPackageFilesFollowUniverseRules(t *testing.T) {
	s := source(t)
	for name, b := range map[string][]byte{
		"universe/package.json": s.Package, "config.json": s.Config, "universe/resource.json": s.Resource,
		"universe/marathon.json.mustache": []byte(s.Template),
	} {
		for i, c := range b {
			if c > 0x7f {
				t.Errorf("%s: non-ASCII byte at %d", name, i)
				break
			}
		}
		if bytes.Contains(b, []byte(`\u`)) {
			t.Errorf(`%s contains a \u escape, which Universe refuses`, name)
		}
	}
	for _, tc := range []struct {
		schema string
		doc    []byte
	}{
		{SchemaPackage, s.Package},
		{SchemaConfig, s.Config},
		{SchemaResource, s.Resource},
	} {
		if err := Validate(tc.schema, tc.doc); err != nil {
			t.Errorf("does not match %s: %v", tc.schema, err)
		}
	}
	var pkg struct {
		PackagingVersion, Name, MinDcosReleaseVersion string
		Framework                                     bool
		UpgradesFrom, DowngradesTo                    []string
		PreInstallNotes, PostInstallNotes             string
	}
	if err := json.Unmarshal(s.Package, &pkg); err != nil {
		t.Fatal(err)
	}
	if pkg.PackagingVersion != "4.0" || pkg.Name != "consul" || !pkg.Framework || pkg.MinDcosReleaseVersion == "" ||
		pkg.UpgradesFrom == nil || pkg.DowngradesTo == nil || pkg.PreInstallNotes == "" || pkg.PostInstallNotes == "" {
		t.Errorf("package.json misses a required field: %+v", pkg)
	}
	if !regexp.MustCompile(`^[a-z][a-z0-9-]*[a-z0-9]$`).MatchString(pkg.Name) {
		t.Errorf("package name %q is not a Universe name", pkg.Name)
	}
	// A schema that does not accept the meta-schema's rule is caught: the
	// check can fail.
	if err := Validate(SchemaConfig, []byte(`{"type": "object", "required": true}`)); err == nil {
		t.Error("the draft-4 meta-schema accepted required: true")
	}
}

// TestEveryOptionHasTitleDescriptionDefault walks config.json.
func TestEveryOptionHasTitleDescriptionDefault(t *testing.T) {
	s := source(t)
	cfg := decode(t, s.Config).(map[string]any)
	leaves := optionLeaves(cfg)
	if len(leaves) < 30 {
		t.Fatalf("only %d options found", len(leaves))
	}
	var walk func(props map[string]any, path string)
	walk = func(props map[string]any, path string) {
		for name, raw := range props {
			p := raw.(map[string]any)
			full := strings.TrimPrefix(path+"."+name, ".")
			for _, k := range []string{"title", "description", "type"} {
				if v, _ := p[k].(string); v == "" {
					t.Errorf("%s has no %s", full, k)
				}
			}
			if sub, ok := p["properties"].(map[string]any); ok {
				if p["additionalProperties"] != false {
					t.Errorf("%s accepts unknown keys: a misspelt option would be ignored silently", full)
				}
				walk(sub, full)
				continue
			}
			if _, ok := p["default"]; !ok {
				t.Errorf("%s has no default", full)
			}
		}
	}
	walk(cfg["properties"].(map[string]any), "")
}

// optionLeaves maps each leaf option path to its schema.
func optionLeaves(schema map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	var walk func(props map[string]any, path string)
	walk = func(props map[string]any, path string) {
		for name, raw := range props {
			p := raw.(map[string]any)
			full := strings.TrimPrefix(path+"."+name, ".")
			if sub, ok := p["properties"].(map[string]any); ok {
				walk(sub, full)
				continue
			}
			out[full] = p
		}
	}
	walk(schema["properties"].(map[string]any), "")
	return out
}

// The option sets below together set every option to a non-default value
// (TestOptionSetsExerciseEveryOption checks it). Each comes with the
// Config the scheduler must load from the rendered app.
type optionSet struct {
	name    string
	options string
	want    func(c *config.Config)
}

const testBaseURL = "http://10.0.0.5:8080/universe"

var optionSets = []optionSet{
	{name: "defaults", options: `{}`, want: func(c *config.Config) {}},
	{name: "TLS off", options: `{"security": {"tls": {"enabled": false}}}`, want: func(c *config.Config) {
		c.TLS, c.Ports.HTTPS, c.Ports.GRPCTLS = false, -1, -1
	}},
	{name: "TLS on other ports", options: `{"security": {"tls": {"enabled": true}}, "ports": {"https": 9501, "grpc_tls": 9503}}`, want: func(c *config.Config) {
		c.TLS, c.Ports.HTTPS, c.Ports.GRPCTLS = true, 9501, 9503
	}},
	{
		name: "five servers in another datacenter on other ports",
		options: `{
		  "service": {"name": "dev/consul-east", "user": "root", "role": "consul-east", "service_account": "consul-east-principal",
		              "service_account_secret": "consul/east-sa", "zookeeper_credentials_secret": "consul/east-zk",
		              "log_level": "debug", "failover_timeout_seconds": 3600,
		              "dcos_jwks_url": "http://master.mesos/acs/api/v1/auth/jwks"},
		  "servers": {"count": 5, "cpus": 1.5, "mem": 2048, "disk": 10240, "disk_type": "MOUNT",
		              "placement_constraint": "[[\"@zone\", \"GROUP_BY\", \"3\"]]", "replace_after_seconds": 120},
		  "clients": {"enabled": false, "cpus": 0.1, "mem": 128, "public_agents": true, "update_batch_percent": 10},
		  "consul": {"datacenter": "east_1", "domain": "consul.example", "raft_multiplier": 5, "ui": false,
		             "extra_config": "{\"log_json\": true, \"telemetry\": {\"disable_hostname\": true}}"},
		  "ports": {"server": 9300, "serf_lan": 9301, "serf_wan": -1, "http": 9500, "https": 9501, "grpc": 8502, "dns": -1},
		  "security": {"gossip_encryption": {"enabled": false}, "acl": {"enabled": false}},
		  "backup": {"target": "https://backups.example.com/consul-east/", "interval_minutes": 60, "keep": 24}
		}`,
		want: func(c *config.Config) {
			c.ServiceName, c.User, c.Role, c.Principal = "dev/consul-east", "root", "consul-east", "consul-east-principal"
			c.ServiceAccountSecret, c.ServiceAccountCredential = "consul/east-sa", "secrets/service-account.json"
			c.ZKCredentialsSecret, c.ZKCredentialsFile = "consul/east-zk", "secrets/zookeeper-credentials"
			c.LogLevel, c.FailoverTimeout = "debug", time.Hour
			c.DCOSJWKSURL = "http://master.mesos/acs/api/v1/auth/jwks"
			c.ServerCount, c.ServerCPUs, c.ServerMem, c.ServerDisk, c.ServerDiskType = 5, 1.5, 2048, 10240, "MOUNT"
			c.ServerPlacement, c.ReplaceAfter = `[["@zone", "GROUP_BY", "3"]]`, 2*time.Minute
			c.ClientsEnabled, c.ClientCPUs, c.ClientMem, c.ClientsOnPublic, c.ClientBatchPercent = false, 0.1, 128, true, 10
			c.Datacenter, c.Domain, c.RaftMultiplier, c.UI = "east_1", "consul.example", 5, false
			c.ExtraConfig = json.RawMessage(`{"log_json": true, "telemetry": {"disable_hostname": true}}`)
			c.Ports = config.Ports{Server: 9300, SerfLAN: 9301, SerfWAN: -1, HTTP: 9500, HTTPS: 9501, GRPC: 8502, DNS: -1, GRPCTLS: config.DefaultGRPCTLSPort}
			c.GossipEncryption, c.ACL = false, false
			c.BackupTarget, c.BackupInterval, c.BackupKeep = "https://backups.example.com/consul-east/", time.Hour, 24
		},
	},
	{
		name: "one server, strings that need escaping",
		options: `{
		  "servers": {"count": 1, "placement_constraint": "[[\"hostname\", \"LIKE\", \"10\\\\.0\\\\.[0-9]+\\\\.[0-9]+\"]]"},
		  "consul": {"extra_config": "{\"node_meta\": {\"note\": \"a \\\"quoted\\\" <value> & more\\\\path\"}}",
		             "wan_join": "consul-server-0.consul-west.mesos, 10.1.0.7:8302"}
		}`,
		want: func(c *config.Config) {
			c.ServerCount = 1
			c.ServerPlacement = `[["hostname", "LIKE", "10\\.0\\.[0-9]+\\.[0-9]+"]]`
			c.ExtraConfig = json.RawMessage(`{"node_meta": {"note": "a \"quoted\" <value> & more\\path"}}`)
			c.WANJoin = "consul-server-0.consul-west.mesos, 10.1.0.7:8302"
		},
	},
	{
		name: "a secondary datacenter of a federation, with the shared gossip key and the replication token from DC/OS secrets",
		options: `{
		  "consul": {"datacenter": "dc2", "primary_datacenter": "dc1", "wan_join": "consul-server-0.consul.mesos"},
		  "security": {"gossip_encryption": {"key_secret": "consul/gossip-key"}, "acl": {"replication_token_secret": "consul-dc2/acl-replication"}},
		  "service": {"zookeeper_credentials_secret": "consul-dc2/zk"}
		}`,
		want: func(c *config.Config) {
			c.ZKCredentialsSecret, c.ZKCredentialsFile = "consul-dc2/zk", "secrets/zookeeper-credentials"
			c.Datacenter, c.PrimaryDatacenter, c.WANJoin = "dc2", "dc1", "consul-server-0.consul.mesos"
			c.GossipKeySecret, c.GossipKeyFile = "consul/gossip-key", mountedSecret("secrets/gossip-key")
			c.ACLReplicationTokenSecret, c.ACLReplicationTokenFile = "consul-dc2/acl-replication", mountedSecret("secrets/acl-replication-token")
		},
	},
	{
		name:    "TLS trusting another datacenter's CA (a PEM bundle in a string)",
		options: `{"security": {"tls": {"trusted_ca_certs": ` + jsonString(otherDCCA) + `}}}`,
		want: func(c *config.Config) {
			c.TLSTrustedCACerts = otherDCCA
		},
	},
	{
		name:    "ZooKeeper credentials alone, from a DC/OS secret",
		options: `{"service": {"zookeeper_credentials_secret": "consul/zk-digest"}}`,
		want: func(c *config.Config) {
			c.ZKCredentialsSecret, c.ZKCredentialsFile = "consul/zk-digest", "secrets/zookeeper-credentials"
		},
	},
	{
		name:    "seven servers",
		options: `{"servers": {"count": 7, "mem": 1024.5}, "service": {"log_level": "warn"}}`,
		want: func(c *config.Config) {
			c.ServerCount, c.ServerMem, c.LogLevel = 7, 1024.5, "warn"
		},
	},
}

// dcosConfig is the Config the scheduler loads on DC/OS from the default
// options: config.Defaults with the template's fixed DC/OS settings.
func dcosConfig(t *testing.T, s *Source) config.Config {
	dir, err := s.ArtifactDir(testBaseURL)
	if err != nil {
		t.Fatal(err)
	}
	c := config.Defaults()
	c.MesosMaster = "zk://master.mesos:2181/mesos"
	c.ZK = "master.mesos:2181"
	c.MesosDNSDomain = "mesos"
	c.ExecutorURI = dir + "/" + ExecutorAsset
	c.APIPort = 31000
	c.ExecutorPort = 31001
	return c
}

// mountedSecret is where a file-based DC/OS secret the template mounts at
// rel (sandbox-relative: the scheduler's working directory) is found in
// this test: a sandbox holding a gossip key and a token, as Marathon
// would mount them.
func mountedSecret(rel string) string {
	sandboxOnce.Do(func() {
		dir, err := os.MkdirTemp("", "universe-sandbox-")
		if err != nil {
			panic(err)
		}
		_ = os.MkdirAll(filepath.Join(dir, "secrets"), 0o700)
		_ = os.WriteFile(filepath.Join(dir, "secrets", "gossip-key"), []byte("pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=\n"), 0o600)
		_ = os.WriteFile(filepath.Join(dir, "secrets", "acl-replication-token"), []byte("6a1e33a6-8d57-4b39-a5b3-0f7e3f1c2d11\n"), 0o600)
		sandboxDir = dir
	})
	if filepath.IsAbs(rel) {
		return rel
	}
	return filepath.Join(sandboxDir, rel)
}

var (
	sandboxOnce sync.Once
	sandboxDir  string
)

// marathonEnv is what Marathon adds to the app's env for the task.
var marathonEnv = map[string]string{"PORT_API": "31000", "PORT0": "31000", "PORT_EXECUTOR": "31001", "PORT1": "31001", "MESOS_SANDBOX": "/mnt/mesos/sandbox"}

func render(t *testing.T, s *Source, options string) map[string]any {
	t.Helper()
	dir, err := s.ArtifactDir(testBaseURL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Cosmos(dir)
	if err != nil {
		t.Fatal(err)
	}
	app, err := p.RenderApp(obj(t, options))
	if err != nil {
		t.Fatalf("render %s: %v", options, err)
	}
	return app
}

func appEnv(t *testing.T, app map[string]any) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range app["env"].(map[string]any) {
		s, ok := v.(string)
		if !ok {
			t.Fatalf("env %s is %#v, not a string", k, v)
		}
		out[k] = s
	}
	return out
}

// loadEnv runs the scheduler's own configuration loader on the app's env,
// as the scheduler does at start, and records what it reads.
func loadEnv(env map[string]string) (config.Config, map[string]bool, error) {
	read := map[string]bool{}
	c, err := config.Load(func(k string) (string, bool) {
		read[k] = true
		if v, ok := env[k]; ok {
			if k == config.EnvGossipKeyFile || k == config.EnvACLReplicationTokenFile {
				return mountedSecret(v), true
			}
			return v, true
		}
		v, ok := marathonEnv[k]
		return v, ok
	})
	return c, read, err
}

// TestRenderedAppLoadsIntoTheSchedulerConfig renders each option set the
// way Cosmos does, feeds the app's env to config.Load and compares the
// result with the Config the options mean.
func TestRenderedAppLoadsIntoTheSchedulerConfig(t *testing.T) {
	s := source(t)
	for _, set := range optionSets {
		t.Run(set.name, func(t *testing.T) {
			app := render(t, s, set.options)
			got, _, err := loadEnv(appEnv(t, app))
			if err != nil {
				t.Fatalf("config.Load refused the rendered env: %v", err)
			}
			want := dcosConfig(t, s)
			set.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("config.Load(rendered env)\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestEnvContract: a variable the template passes that config.Load does
// not read fails, and so does one config.Load reads that the template does
// not pass (except those Marathon sets and the documented dev-only ones).
func TestEnvContract(t *testing.T) {
	s := source(t)
	passed := map[string]bool{}
	read := map[string]bool{}
	for _, set := range optionSets {
		env := appEnv(t, render(t, s, set.options))
		_, r, err := loadEnv(env)
		if err != nil {
			t.Fatalf("%s: %v", set.name, err)
		}
		for k := range env {
			passed[k] = true
			if !r[k] {
				t.Errorf("%s: the template passes %s but config.Load does not read it", set.name, k)
			}
		}
		for k := range r {
			read[k] = true
		}
	}
	source := map[string]config.Source{}
	for _, o := range config.Options {
		source[o.Env] = o.Source
	}
	for k := range read {
		if passed[k] {
			continue
		}
		switch source[k] {
		case config.FromMarathon, config.FromCosmos, config.DevOnly:
		default:
			t.Errorf("config.Load reads %s but the template never passes it", k)
		}
	}
	for k := range passed {
		if src := source[k]; src != config.FromOption && src != config.FromTemplate {
			t.Errorf("the template passes %s, which config.Options says comes from %q", k, src)
		}
	}
}

// TestOptionsMatchConfigJSON: every config.json option is wired to a
// variable in config.Options and back, and the template passes it.
func TestOptionsMatchConfigJSON(t *testing.T) {
	s := source(t)
	leaves := optionLeaves(decode(t, s.Config).(map[string]any))
	byPath := map[string]string{}
	for _, o := range config.Options {
		if o.Path != "" {
			byPath[o.Path] = o.Env
			if _, ok := leaves[o.Path]; !ok {
				t.Errorf("config.Options maps %s to option %s, which config.json does not have", o.Env, o.Path)
			}
		}
	}
	for path := range leaves {
		env, ok := byPath[path]
		if !ok {
			t.Errorf("option %s has no variable in config.Options", path)
			continue
		}
		if !strings.Contains(s.Template, `"`+env+`": "{{`+path+`}}`) {
			t.Errorf("the template does not pass option %s as %s", path, env)
		}
	}
}

// TestOptionSetsExerciseEveryOption: every option that can take another
// value than its default does so in some option set (or, for values the
// scheduler refuses until later issues, in the refusal table below).
func TestOptionSetsExerciseEveryOption(t *testing.T) {
	s := source(t)
	cfg := decode(t, s.Config).(map[string]any)
	leaves := optionLeaves(cfg)
	exercised := map[string]bool{}
	var mark func(v any, path string)
	mark = func(v any, path string) {
		if m, ok := v.(map[string]any); ok && leaves[path] == nil {
			for k, e := range m {
				mark(e, strings.TrimPrefix(path+"."+k, "."))
			}
			return
		}
		if leaf := leaves[path]; leaf != nil && !reflect.DeepEqual(v, leaf["default"]) {
			exercised[path] = true
		}
	}
	for _, set := range optionSets {
		mark(obj(t, set.options), "")
	}
	for _, r := range loadRefused {
		mark(obj(t, r.options), "")
	}
	for path, leaf := range leaves {
		if enum, ok := leaf["enum"].([]any); ok && len(enum) == 1 {
			continue // fixed until the security issue; refused by the schema (TestBadOptionsAreRejected)
		}
		if !exercised[path] {
			t.Errorf("no option set changes %s", path)
		}
	}
}

// TestRenderedAppMatchesMarathonSchemas validates every rendered option set
// against the strict Marathon 1.7 AppDefinition.json (with the newer keys
// it does not know set aside) and the schema derived from Marathon's RAML.
func TestRenderedAppMatchesMarathonSchemas(t *testing.T) {
	s := source(t)
	for _, set := range optionSets {
		t.Run(set.name, func(t *testing.T) {
			app := render(t, s, set.options)
			if err := ValidateValue(SchemaMarathonRAML, app); err != nil {
				t.Errorf("%s: %v", SchemaMarathonRAML, err)
			}
			if err := ValidateValue(SchemaMarathonApp, strictView(app)); err != nil {
				t.Errorf("%s: %v", SchemaMarathonApp, err)
			}
			checkMarathonRules(t, app)
		})
	}
	// The strict schema does catch a misspelt key.
	app := render(t, s, `{}`)
	app["upgradeStrategie"] = map[string]any{}
	if ValidateValue(SchemaMarathonApp, strictView(app)) == nil {
		t.Error("AppDefinition.json accepted an unknown key")
	}
}

// strictView sets aside what Marathon 1.8+ accepts but AppDefinition.json
// (Marathon 1.7) does not know: top-level check, role, resourceLimits,
// tty, and file-based secret volumes (container.volumes[].secret).
func strictView(app map[string]any) map[string]any {
	out := cosmos.Merge(app, nil)
	for _, k := range []string{"check", "role", "resourceLimits", "tty"} {
		delete(out, k)
	}
	if c, ok := out["container"].(map[string]any); ok {
		if vols, ok := c["volumes"].([]any); ok {
			var kept []any
			for _, v := range vols {
				if m, ok := v.(map[string]any); ok && m["secret"] != nil {
					continue
				}
				kept = append(kept, v)
			}
			c["volumes"] = kept
			if kept == nil {
				delete(c, "volumes")
			}
		}
	}
	return out
}

// checkMarathonRules are what Marathon, the DC/OS UI, Admin Router and
// Cosmos need beyond the schema (dcos-packaging.md sections 4-6).
func checkMarathonRules(t *testing.T, app map[string]any) {
	t.Helper()
	labels := map[string]string{}
	for k, v := range app["labels"].(map[string]any) {
		labels[k] = v.(string)
	}
	env := appEnv(t, app)
	id := app["id"].(string)
	for k, want := range map[string]string{
		"DCOS_PACKAGE_FRAMEWORK_NAME":  env[config.EnvServiceName],
		"DCOS_SERVICE_NAME":            id,
		"DCOS_SERVICE_PORT_INDEX":      "0",
		"DCOS_SERVICE_SCHEME":          "http",
		"DCOS_MIGRATION_API_VERSION":   "v1",
		"DCOS_COMMONS_API_VERSION":     "v1",
		"DCOS_COMMONS_UNINSTALL":       "true",
		"MARATHON_SINGLE_INSTANCE_APP": "true",
	} {
		if labels[k] != want {
			t.Errorf("label %s = %q, want %q", k, labels[k], want)
		}
	}
	if labels["DCOS_MIGRATION_API_PATH"] == "" || labels["DCOS_PACKAGE_FRAMEWORK_NAME"] == "" {
		t.Error("Marathon requires DCOS_MIGRATION_API_PATH and DCOS_PACKAGE_FRAMEWORK_NAME with DCOS_MIGRATION_API_VERSION")
	}
	if id != env[config.EnvServiceName] {
		t.Errorf("app id %q differs from the framework name %q", id, env[config.EnvServiceName])
	}
	if app["instances"] != json.Number("1") {
		t.Errorf("instances %v: MARATHON_SINGLE_INSTANCE_APP needs 1", app["instances"])
	}
	us := app["upgradeStrategy"].(map[string]any)
	if us["minimumHealthCapacity"] != json.Number("0") || us["maximumOverCapacity"] != json.Number("0") {
		t.Errorf("upgradeStrategy %v: MARATHON_SINGLE_INSTANCE_APP needs 0/0", us)
	}
	ports := app["portDefinitions"].([]any)
	if p := ports[0].(map[string]any); p["name"] != "api" || p["port"] != json.Number("0") {
		t.Errorf("port 0 is %v, want a dynamic port named api (PORT_API)", p)
	}
	// The executor channel (TLS): PORT_EXECUTOR / PORT1.
	if len(ports) != 2 {
		t.Fatalf("%d port definitions, want the API and the executor channel", len(ports))
	}
	if p := ports[1].(map[string]any); p["name"] != "executor" || p["port"] != json.Number("0") {
		t.Errorf("port 1 is %v, want a dynamic port named executor (PORT_EXECUTOR)", p)
	}
	hc := app["healthChecks"].([]any)[0].(map[string]any)
	if hc["path"] != "/v1/health" || hc["portIndex"] != json.Number("0") || hc["protocol"] != "MESOS_HTTP" {
		t.Errorf("health check %v", hc)
	}
	if !strings.HasPrefix(app["cmd"].(string), "exec ./dcos-consul scheduler") {
		t.Errorf("cmd %q", app["cmd"])
	}
	fetch := app["fetch"].([]any)[0].(map[string]any)
	// The archive holds ./dcos-consul: extracted, and cached on the agent.
	if fetch["uri"] != env[config.EnvExecutorURI] || fetch["extract"] != true || fetch["cache"] != true || fetch["executable"] == true ||
		!strings.HasSuffix(env[config.EnvExecutorURI], ".tar.gz") {
		t.Errorf("fetch %v does not fetch and extract the archive %s", fetch, env[config.EnvExecutorURI])
	}
	// Each file-based secret given is mounted where the env says, and
	// there is no secrets block without one.
	secretEnvs := []struct{ name, file string }{
		{config.EnvServiceAccountSecret, config.EnvServiceAccountCredential},
		{config.EnvGossipKeySecret, config.EnvGossipKeyFile},
		{config.EnvACLReplicationTokenSecret, config.EnvACLReplicationTokenFile},
		{config.EnvZKCredentialsSecret, config.EnvZKCredentialsFile},
	}
	mounted := map[string]string{} // secret source -> container path
	if secrets, ok := app["secrets"].(map[string]any); ok {
		for _, v := range app["container"].(map[string]any)["volumes"].([]any) {
			vol := v.(map[string]any)
			ref, _ := vol["secret"].(string)
			src := secrets[ref].(map[string]any)["source"].(string)
			mounted[src] = vol["containerPath"].(string)
		}
		if len(secrets) == 0 {
			t.Error("an empty secrets block")
		}
	}
	given := 0
	for _, s := range secretEnvs {
		if env[s.name] == "" {
			if env[s.file] != "" {
				t.Errorf("%s is set without %s", s.file, s.name)
			}
			continue
		}
		given++
		if mounted[env[s.name]] == "" || mounted[env[s.name]] != env[s.file] {
			t.Errorf("secret %s mounted at %q, env %s says %q", env[s.name], mounted[env[s.name]], s.file, env[s.file])
		}
	}
	if given != len(mounted) {
		t.Errorf("%d secrets mounted, %d given", len(mounted), given)
	}
}

// TestBadOptionsAreRejected: options config.json does not allow are
// refused with the schema's error, pointing at the option.
func TestBadOptionsAreRejected(t *testing.T) {
	s := source(t)
	p, err := s.Cosmos(testBaseURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ options, at string }{
		{`{"servers": {"count": 4}}`, "/servers/count"},
		{`{"servers": {"count": "3"}}`, "/servers/count"},
		{`{"servers": {"disk_type": "PATH"}}`, "/servers/disk_type"},
		{`{"servers": {"cpus": 0.01}}`, "/servers/cpus"},
		{`{"servers": {"replace_after_seconds": 1.5}}`, "/servers/replace_after_seconds"},
		{`{"servers": {"countt": 3}}`, "/servers"},
		{`{"server": {"count": 3}}`, "at ''"},
		{`{"clients": {"mem": "256"}}`, "/clients/mem"},
		{`{"clients": {"enabled": "yes"}}`, "/clients/enabled"},
		{`{"service": {"name": "Consul_1"}}`, "/service/name"},
		{`{"service": {"name": "consul-"}}`, "/service/name"},
		{`{"service": {"user": "a b"}}`, "/service/user"},
		{`{"service": {"role": "*"}}`, "/service/role"},
		{`{"service": {"log_level": "trace"}}`, "/service/log_level"},
		{`{"service": {"failover_timeout_seconds": 30}}`, "/service/failover_timeout_seconds"},
		{`{"consul": {"datacenter": "DC 1"}}`, "/consul/datacenter"},
		{`{"consul": {"domain": "-bad"}}`, "/consul/domain"},
		{`{"consul": {"raft_multiplier": 11}}`, "/consul/raft_multiplier"},
		{`{"consul": {"extra_config": {"log_json": true}}}`, "/consul/extra_config"},
		{`{"ports": {"http": 0}}`, "/ports/http"},
		{`{"ports": {"grpc": 0}}`, "/ports/grpc"},
		{`{"ports": {"server": -1}}`, "/ports/server"},
		{`{"ports": {"dns": 70000}}`, "/ports/dns"},
		{`{"security": {"tls": {"enabled": 1}}}`, "/security/tls/enabled"},
	} {
		_, err := p.Render(obj(t, tc.options))
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%s: want the schema's error, got %v", tc.options, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.at) {
			t.Errorf("%s: error does not point at %s: %v", tc.options, tc.at, err)
		}
	}
}

// loadRefused are options the schema cannot judge (draft 4 has no way to
// say "all ports differ") that the scheduler refuses at start with an error
// naming the option and what is allowed.
var loadRefused = []struct{ options, env, allowed string }{
	{`{"ports": {"http": 8300}}`, config.EnvPortHTTP, "CONSUL_PORT_SERVER already uses it"},
	{`{"ports": {"https": 8501}, "security": {"tls": {"enabled": false}}}`, config.EnvPortHTTPS, "needs TLS"},
	{`{"ports": {"grpc_tls": 8503}, "security": {"tls": {"enabled": false}}}`, config.EnvPortGRPCTLS, "needs TLS"},
	{`{"servers": {"placement_constraint": "[[\"hostname\", \"UNIQ\"]]"}}`, config.EnvServerPlacement, "not one of UNIQUE"},
	{`{"servers": {"placement_constraint": "hostname:UNIQUE"}}`, config.EnvServerPlacement, "JSON list"},
	{`{"consul": {"extra_config": "{\"datacenter\": \"x\"}"}}`, config.EnvExtraConfig, "consul.datacenter option"},
	{`{"consul": {"extra_config": "log_json = true"}}`, config.EnvExtraConfig, "JSON object"},
	{`{"service": {"role": "a/../b"}}`, config.EnvRole, "'..'"},
	{`{"security": {"tls": {"enabled": true, "ca_cert_file": "/nonexistent/ca.pem", "ca_key_file": "/nonexistent/ca-key.pem"}}}`,
		config.EnvTLSCACertFile, "a readable PEM file"},
	{`{"consul": {"datacenter": "dc2", "primary_datacenter": "dc1"}}`, config.EnvACLReplicationTokenSecret, "created in the primary datacenter dc1"},
	{`{"security": {"acl": {"replication_token_secret": "consul/acl-replication"}}}`, config.EnvACLReplicationTokenSecret, "secondary datacenter"},
	{`{"security": {"tls": {"trusted_ca_certs": "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"}}}`,
		config.EnvTLSTrustedCACerts, "PEM CA certificates"},
	{`{"security": {"tls": {"enabled": false, "trusted_ca_certs": ` + jsonString(otherDCCA) + `}}}`, config.EnvTLSTrustedCACerts, "empty while TLS is off"},
}

func TestSchedulerRefusesWhatTheSchemaCannotCheck(t *testing.T) {
	s := source(t)
	for _, tc := range loadRefused {
		env := appEnv(t, render(t, s, tc.options))
		_, _, err := loadEnv(env)
		if err == nil {
			t.Errorf("%s: config.Load accepted it", tc.options)
			continue
		}
		if !strings.Contains(err.Error(), tc.env) || !strings.Contains(err.Error(), "(option "+config.OptionOf(tc.env)+")") ||
			!strings.Contains(err.Error(), tc.allowed) {
			t.Errorf("%s: error should name %s, its option and %q: %v", tc.options, tc.env, tc.allowed, err)
		}
	}
}

// TestSchemaBoundsAreAcceptedByTheScheduler: every enum value and every
// minimum/maximum config.json allows renders an env config.Load accepts,
// so the schema never lets through what the scheduler then refuses.
func TestSchemaBoundsAreAcceptedByTheScheduler(t *testing.T) {
	s := source(t)
	leaves := optionLeaves(decode(t, s.Config).(map[string]any))
	paths := make([]string, 0, len(leaves))
	for p := range leaves {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	tried := 0
	for _, path := range paths {
		leaf := leaves[path]
		var values []any
		if enum, ok := leaf["enum"].([]any); ok {
			values = append(values, enum...)
		}
		for _, k := range []string{"minimum", "maximum"} {
			if v, ok := leaf[k]; ok {
				values = append(values, v)
			}
		}
		for _, v := range values {
			if strings.HasPrefix(path, "ports.") && v == json.Number("1") && path != "ports.server" {
				continue // port 1 would clash with ports.server set below; ports are checked pairwise by Load
			}
			opts := nest(path, v)
			if strings.HasPrefix(path, "ports.") && path != "ports.server" {
				opts = cosmos.Merge(opts, map[string]any{"ports": map[string]any{"server": json.Number("1")}})
			}
			b, _ := json.Marshal(opts)
			app := render(t, s, string(b))
			if _, _, err := loadEnv(appEnv(t, app)); err != nil {
				t.Errorf("%s = %v passes config.json but config.Load refuses it: %v", path, v, err)
			}
			tried++
		}
	}
	if tried < 20 {
		t.Fatalf("only %d bound values tried", tried)
	}
}

func nest(path string, v any) map[string]any {
	parts := strings.Split(path, ".")
	out := map[string]any{parts[len(parts)-1]: v}
	for i := len(parts) - 2; i >= 0; i-- {
		out = map[string]any{parts[i]: out}
	}
	return out
}

// TestDefaultsAgree: config.json's defaults mean config.Defaults() (with
// the DC/OS settings the template fixes).
func TestDefaultsAgree(t *testing.T) {
	s := source(t)
	got, _, err := loadEnv(appEnv(t, render(t, s, `{}`)))
	if err != nil {
		t.Fatal(err)
	}
	if want := dcosConfig(t, s); !reflect.DeepEqual(got, want) {
		t.Fatalf("defaults\n got %+v\nwant %+v", got, want)
	}
}

// TestMarathonJSONIsTheDefaultRender keeps the top-level marathon.json
// identical to the template rendered with the defaults.
func TestMarathonJSONIsTheDefaultRender(t *testing.T) {
	s := source(t)
	want, err := s.RenderMarathon(DefaultBaseURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "marathon.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("marathon.json is not the template rendered with the defaults; regenerate it with\n"+
			"  go run ./cmd/universe-repo -marathon marathon.json\nwant:\n%s", want)
	}
	if !strings.Contains(string(got), DefaultBaseURL+"/"+s.Version()+"/"+ExecutorAsset) {
		t.Error("marathon.json does not fetch the binary from the documented placeholder URL")
	}
}

func TestResolve(t *testing.T) {
	s := source(t)
	dir, _ := s.ArtifactDir(testBaseURL)
	res, err := s.Resolve(dir, map[string]string{ExecutorAsset: "cd", "dcos-consul-cli-linux-amd64": strings.Repeat("ab", 32),
		"dcos-consul-cli-darwin-arm64": "ef"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res)
	if err := Validate(SchemaResource, b); err != nil {
		t.Fatal(err)
	}
	uris := res["assets"].(map[string]any)["uris"].(map[string]any)
	if got := uris["dcos-consul-linux"]; got != dir+"/"+ExecutorAsset {
		t.Errorf("asset URI %v", got)
	}
	// CLI binaries not published are not listed: only darwin-arm64 is.
	if _, ok := uris["dcos-consul-cli-linux-arm64"]; ok || uris["dcos-consul-cli-darwin-arm64"] != dir+"/dcos-consul-cli-darwin-arm64" {
		t.Errorf("arm64 CLI assets %v", uris)
	}
	bins := res["cli"].(map[string]any)["binaries"].(map[string]any)
	if _, ok := bins["darwin"]; ok || len(bins) != 1 {
		t.Errorf("CLI binaries %v, want linux only (the others were not published)", bins)
	}
	cli := bins["linux"].(map[string]any)["x86-64"].(map[string]any)
	if cli["url"] != dir+"/dcos-consul-cli-linux-amd64" || cli["kind"] != "executable" ||
		cli["contentHash"].([]any)[0].(map[string]any)["value"] != strings.Repeat("ab", 32) {
		t.Errorf("linux CLI %v", cli)
	}
	// Without the binary's hash, the CLI is not published.
	res, err = s.Resolve(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res["cli"]; ok {
		t.Error("a CLI without a hash was kept")
	}
	if _, err := s.ArtifactDir("ftp://x"); err == nil {
		t.Error("ftp base URL accepted")
	}
	if _, err := s.ArtifactDir(`http://x/"a`); err == nil {
		t.Error("a base URL with a quote accepted")
	}
}

// TestDocsListEveryOption keeps docs/dcos-install.md's option table in step
// with config.json: each option's row shows its default and its variable.
func TestDocsListEveryOption(t *testing.T) {
	s := source(t)
	doc, err := os.ReadFile(filepath.Join(root, "docs", "dcos-install.md"))
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]string{}
	for _, o := range config.Options {
		byPath[o.Path] = o.Env
	}
	for path, leaf := range optionLeaves(decode(t, s.Config).(map[string]any)) {
		def, _ := json.Marshal(leaf["default"])
		row := "| `" + path + "` | `" + string(def) + "` |"
		i := bytes.Index(doc, []byte(row))
		if i < 0 {
			t.Errorf("docs/dcos-install.md has no row %s", row)
			continue
		}
		line := doc[i:]
		if j := bytes.IndexByte(line, '\n'); j >= 0 {
			line = line[:j]
		}
		if !bytes.Contains(line, []byte("`"+byPath[path]+"`")) {
			t.Errorf("the docs row of %s does not name %s: %s", path, byPath[path], line)
		}
	}
}

// TestVersionNamesTheConsulItEmbeds: the package version is
// <framework version>-<Consul version> (the DC/OS SDK convention), and the
// Consul part is the one go.mod builds in.
func TestVersionNamesTheConsulItEmbeds(t *testing.T) {
	s := source(t)
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*github\.com/hashicorp/consul v([0-9.]+)\s*$`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod does not require github.com/hashicorp/consul")
	}
	if !strings.HasSuffix(s.Version(), "-"+string(m[1])) {
		t.Errorf("package version %s does not end in the Consul version %s", s.Version(), m[1])
	}
}

// otherDCCA is a CA certificate another install generated (public: a
// certificate, no key), as its scheduler's GET /v1/tls/ca serves it.
const otherDCCA = `-----BEGIN CERTIFICATE-----
MIIBtzCCAV2gAwIBAgIQMsY3rpjMr6VJBkxPPuAMKDAKBggqhkjOPQQDAjA6MRQw
EgYDVQQKEwtkY29zLWNvbnN1bDEiMCAGA1UEAxMZZGNvcy1jb25zdWwgQ0EgY29u
c3VsLWRjMjAeFw0yNjEyMDMyMzEzMjhaFw0zNjExMzAyMzE4MjhaMDoxFDASBgNV
BAoTC2Rjb3MtY29uc3VsMSIwIAYDVQQDExlkY29zLWNvbnN1bCBDQSBjb25zdWwt
ZGMyMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEQtjCHU8P64vMd6QWUdPLUH6E
hj+4sYojf1h0idfp8Y9qgEDHaGpki0mCB7l1T5/BJL1Wk00B+eCXZEJR8zI6d6NF
MEMwDgYDVR0PAQH/BAQDAgGGMBIGA1UdEwEB/wQIMAYBAf8CAQAwHQYDVR0OBBYE
FDKRaUCtyXsMWMawC7iHsQApiN9MMAoGCCqGSM49BAMCA0gAMEUCIQDw2IYwYXrN
ywRyQse96/3LslVj4+nz5WCyGYm7SBiSYwIgSZDIfP20fmiRJyYQp5ya6VD9n237
pdwVjB5BHzQlop4=
-----END CERTIFICATE-----
`

// jsonString is s as a JSON string literal.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
