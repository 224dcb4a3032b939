package operator

import (
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mapEnv(m map[string]string) LookupEnv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestServiceName(t *testing.T) {
	for _, c := range []struct {
		flag, env, want string
	}{
		{"", "", "consul"},
		{"consul-b", "other", "consul-b"},
		{"", "/prod/consul", "prod/consul"},
		{"/dev/consul/", "", "dev/consul"},
		{"/", "", "consul"},
	} {
		if got := ServiceName(c.flag, mapEnv(map[string]string{EnvServiceName: c.env})); got != c.want {
			t.Errorf("ServiceName(%q, env %q) = %q, want %q", c.flag, c.env, got, c.want)
		}
	}
}

func TestLocateOrder(t *testing.T) {
	empty := t.TempDir() // a DCOS_DIR with no cluster
	for _, c := range []struct {
		name string
		flag string
		env  map[string]string
		want Location
		err  string
	}{
		{name: "flag first", flag: "http://127.0.0.1:4000/", env: map[string]string{EnvURL: "http://x:1", EnvDCOSURL: "https://dcos"},
			want: Location{BaseURL: "http://127.0.0.1:4000", From: "--url"}},
		{name: "DCOS_CONSUL_URL", env: map[string]string{EnvURL: "http://127.0.0.1:4000", EnvDCOSURL: "https://dcos", EnvDCOSToken: "t"},
			want: Location{BaseURL: "http://127.0.0.1:4000", Token: "t", From: EnvURL}},
		{name: "plugin env", env: map[string]string{EnvDCOSURL: "https://dcos.example.com", EnvDCOSToken: "tok", EnvDCOSTLSInsecure: "1"},
			want: Location{BaseURL: "https://dcos.example.com/service/consul", Token: "tok", Insecure: true, Service: "consul", From: EnvDCOSURL}},
		{name: "plugin env with CA", env: map[string]string{EnvDCOSURL: "https://dcos.example.com", EnvDCOSTLSCAPath: "/ca.crt"},
			want: Location{BaseURL: "https://dcos.example.com/service/consul", CAPath: "/ca.crt", Service: "consul", From: EnvDCOSURL}},
		{name: "nothing", env: map[string]string{EnvDCOSDir: empty}, err: "no scheduler address: pass --url"},
		{name: "bad flag", flag: "127.0.0.1:4000", err: `--url: bad URL "127.0.0.1:4000"`},
		{name: "bad env", env: map[string]string{EnvDCOSURL: "ftp://x"}, err: `DCOS_URL: bad URL "ftp://x"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Locate(c.flag, "consul", mapEnv(c.env))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %+v, %v\nwant %+v", got, err, c.want)
			}
		})
	}
}

func writeCluster(t *testing.T, dir, id, toml string, attached bool) string {
	t.Helper()
	d := filepath.Join(dir, "clusters", id)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(d, "dcos.toml")
	if err := os.WriteFile(p, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	if attached {
		if err := os.WriteFile(filepath.Join(d, "attached"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// The DC/OS CLI's own configuration, as `dcos cluster setup` writes it.
func TestLocateFromDCOSConfig(t *testing.T) {
	dir := t.TempDir()
	p1 := writeCluster(t, dir, "79893270-f9f1-4293-9225-e6e3900043a9", `[core]
dcos_url = "https://dcos-a.example.com"
dcos_acs_token = "token-a"
ssl_verify = "false"

[cluster]
name = "cluster-a"
`, false)
	env := map[string]string{EnvDCOSDir: dir}
	loc, err := Locate("", "prod/consul", mapEnv(env))
	want := Location{BaseURL: "https://dcos-a.example.com/service/prod/consul", Token: "token-a", Insecure: true, Service: "prod/consul", From: p1}
	if err != nil || loc != want {
		t.Fatalf("single cluster: %+v %v", loc, err)
	}

	// A second cluster: the attached one is used.
	p2 := writeCluster(t, dir, "97193161-f7f1-2295-2514-a6b3918043b6", `[core]
dcos_url = "https://dcos-b.example.com"
dcos_acs_token = "token-b"
ssl_verify = "/home/op/.dcos/clusters/97193161/dcos_ca.crt"
[cluster]
name = "cluster-b"
`, false)
	if _, err := Locate("", "consul", mapEnv(env)); err == nil || !strings.Contains(err.Error(), "2 DC/OS clusters are configured") {
		t.Fatalf("none attached: %v", err)
	}
	_ = os.WriteFile(filepath.Join(filepath.Dir(p2), "attached"), nil, 0o644)
	loc, err = Locate("", "consul", mapEnv(env))
	want = Location{BaseURL: "https://dcos-b.example.com/service/consul", Token: "token-b", CAPath: "/home/op/.dcos/clusters/97193161/dcos_ca.crt", Service: "consul", From: p2}
	if err != nil || loc != want {
		t.Fatalf("attached: %+v %v", loc, err)
	}

	// DCOS_CLUSTER picks by name or ID; DCOS_SSL_VERIFY overrides.
	env[EnvDCOSCluster] = "cluster-a"
	env[EnvDCOSSSLVerify] = "true"
	loc, err = Locate("", "consul", mapEnv(env))
	if err != nil || loc.Token != "token-a" || loc.Insecure {
		t.Fatalf("DCOS_CLUSTER by name: %+v %v", loc, err)
	}
	env[EnvDCOSSSLVerify] = "0"
	if loc, err = Locate("", "consul", mapEnv(env)); err != nil || !loc.Insecure {
		t.Fatalf("DCOS_SSL_VERIFY=0: %+v %v", loc, err)
	}
	delete(env, EnvDCOSSSLVerify)
	env[EnvDCOSCluster] = "97193161-f7f1-2295-2514-a6b3918043b6"
	if loc, err = Locate("", "consul", mapEnv(env)); err != nil || loc.Token != "token-b" {
		t.Fatalf("DCOS_CLUSTER by id: %+v %v", loc, err)
	}
	env[EnvDCOSCluster] = "nope"
	if _, err = Locate("", "consul", mapEnv(env)); err == nil || !strings.Contains(err.Error(), "no such cluster") || !strings.Contains(err.Error(), "cluster-a") {
		t.Fatalf("unknown DCOS_CLUSTER: %v", err)
	}
	// The plugin env wins over the configuration.
	env[EnvDCOSURL] = "https://from-env"
	if loc, err = Locate("", "consul", mapEnv(env)); err != nil || loc.BaseURL != "https://from-env/service/consul" {
		t.Fatalf("DCOS_URL over config: %+v %v", loc, err)
	}
}

func TestDCOSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	writeCluster(t, dir, "a", "[core\nbroken", false)
	if _, err := Locate("", "consul", mapEnv(map[string]string{EnvDCOSDir: dir})); err == nil || !strings.Contains(err.Error(), "dcos.toml") {
		t.Fatalf("broken toml: %v", err)
	}
	dir = t.TempDir()
	writeCluster(t, dir, "a", "[core]\nssl_verify = false\n", true)
	if _, err := Locate("", "consul", mapEnv(map[string]string{EnvDCOSDir: dir})); err == nil || !strings.Contains(err.Error(), "no core.dcos_url") {
		t.Fatalf("no url: %v", err)
	}
	dir = t.TempDir()
	writeCluster(t, dir, "a", "[core]\ndcos_url = \"https://a\"\n", true)
	writeCluster(t, dir, "b", "[core]\ndcos_url = \"https://b\"\n", true)
	if _, err := Locate("", "consul", mapEnv(map[string]string{EnvDCOSDir: dir})); err == nil || !strings.Contains(err.Error(), "more than one DC/OS cluster is attached") {
		t.Fatalf("two attached: %v", err)
	}
}

// TLS: DCOS_TLS_INSECURE skips verification; DCOS_TLS_CA_PATH verifies
// against the cluster's CA; neither: the system's CAs, which refuse a
// self-signed cluster.
func TestTLS(t *testing.T) {
	s := startScheduler(t)
	srv := httptest.NewTLSServer(s.Config.Handler)
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "dcos_ca.crt")
	cert := srv.Certificate()
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		loc  Location
		ok   bool
	}{
		{"system CAs", Location{BaseURL: srv.URL}, false},
		{"insecure", Location{BaseURL: srv.URL, Insecure: true}, true},
		{"cluster CA", Location{BaseURL: srv.URL, CAPath: ca}, true},
	} {
		cl, err := NewClient(c.loc, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_, err = cl.Get(ctx, "/v1/pod")
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
		if !c.ok && !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if _, err := NewClient(Location{BaseURL: srv.URL, CAPath: filepath.Join(t.TempDir(), "none")}, time.Second); err == nil {
		t.Fatal("missing CA bundle accepted")
	}
}
