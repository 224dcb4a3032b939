package universe

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dcos-consul/dcos-consul/internal/cosmos"
)

// TestPublishedPackagesRenderAndValidate renders the published DC/OS
// packages in testdata/examples (verbatim from mesosphere/universe:
// hello-world, kafka, cassandra and the community consul package) with
// their defaults, and validates the apps against both Marathon schemas: a
// check of the renderer and of the schema handling on packages known to
// install.
func TestPublishedPackagesRenderAndValidate(t *testing.T) {
	for _, name := range []string{"hello-world", "kafka", "cassandra", "consul"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", "examples", name)
			read := func(f string) []byte {
				b, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			for schema, f := range map[string]string{SchemaPackage: "package.json", SchemaConfig: "config.json", SchemaResource: "resource.json"} {
				if err := Validate(schema, read(f)); err != nil {
					t.Errorf("%s: %v", f, err)
				}
			}
			p, err := cosmos.NewPackage(read("config.json"), read("resource.json"), string(read("marathon.json.mustache")))
			if err != nil {
				t.Fatal(err)
			}
			app, err := p.RenderApp(nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := ValidateValue(SchemaMarathonRAML, app); err != nil {
				t.Errorf("%s: %v", SchemaMarathonRAML, err)
			}
			if err := ValidateValue(SchemaMarathonApp, strictView(app)); err != nil {
				t.Errorf("%s: %v", SchemaMarathonApp, err)
			}
		})
	}
}
