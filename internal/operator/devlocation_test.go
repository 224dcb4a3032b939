package operator

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dcos-consul/dcos-consul/internal/devstate"
)

// TestLocateRunningDev: with no flag, no export and no DC/OS cluster, the
// commands find a running `dcos-consul dev` from the file it writes; a file
// of a dev that has ended is ignored; --url and DCOS_URL still come first.
func TestLocateRunningDev(t *testing.T) {
	home := t.TempDir()
	file := filepath.Join(home, ".dcos-consul", devstate.FileName)
	env := map[string]string{"HOME": home, EnvDCOSDir: t.TempDir()}
	if _, err := Locate("", "consul", mapEnv(env)); !errors.Is(err, ErrNoLocation) {
		t.Fatalf("no dev, no cluster: %v, want ErrNoLocation", err)
	}
	if err := devstate.Write(devstate.State{PID: os.Getpid(), SchedulerURL: "http://127.0.0.1:4242/"}, file); err != nil {
		t.Fatal(err)
	}
	loc, err := Locate("", "consul", mapEnv(env))
	if err != nil || loc.BaseURL != "http://127.0.0.1:4242" {
		t.Fatalf("running dev: %+v %v", loc, err)
	}
	env[EnvDCOSURL] = "https://dcos.example"
	if loc, _ := Locate("", "consul", mapEnv(env)); loc.BaseURL != "https://dcos.example/service/consul" {
		t.Errorf("DCOS_URL must win over dev: %+v", loc)
	}
	delete(env, EnvDCOSURL)
	if err := devstate.Write(devstate.State{PID: 1 << 30, SchedulerURL: "http://127.0.0.1:4242"}, file); err != nil {
		t.Fatal(err)
	}
	if _, err := Locate("", "consul", mapEnv(env)); !errors.Is(err, ErrNoLocation) {
		t.Errorf("ended dev: %v, want ErrNoLocation", err)
	}
}
