package universe

import (
	"bytes"
	"embed"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/dcos-consul/dcos-consul/internal/cosmos"
)

// The Universe and Marathon schemas (see schemas/README.md for where each
// comes from).
//
//go:embed schemas/*.json
var schemaFiles embed.FS

// Schema names.
const (
	SchemaPackage      = "package-schema.json"
	SchemaConfig       = "config-schema.json" // the draft-4 meta-schema
	SchemaResource     = "v3-resource-schema.json"
	SchemaRepoV4       = "v4-repo-schema.json"
	SchemaMarathonApp  = "AppDefinition.json"        // strict, Marathon 1.7
	SchemaMarathonRAML = "App.from-raml.schema.json" // complete, permissive
)

var (
	schemasOnce sync.Once
	schemas     map[string]*jsonschema.Schema
	schemasErr  error
)

// compileSchemas compiles every embedded schema as draft 4, each under
// file:///schemas/<name> so that the repo schemas' relative $refs to
// vX-repo-definitions.json resolve.
func compileSchemas() (map[string]*jsonschema.Schema, error) {
	schemasOnce.Do(func() {
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft4)
		entries, err := schemaFiles.ReadDir("schemas")
		if err != nil {
			schemasErr = err
			return
		}
		for _, e := range entries {
			b, err := schemaFiles.ReadFile("schemas/" + e.Name())
			if err != nil {
				schemasErr = err
				return
			}
			doc, err := cosmos.DecodeJSON(bytes.NewReader(b))
			if err != nil {
				schemasErr = fmt.Errorf("universe: schema %s: %w", e.Name(), err)
				return
			}
			if m, ok := doc.(map[string]any); ok {
				// AppDefinition.json says "http://json-schema.org/schema#"
				// (whatever is newest); it is a draft-4 schema.
				delete(m, "$schema")
			}
			if err := c.AddResource("file:///schemas/"+e.Name(), doc); err != nil {
				schemasErr = fmt.Errorf("universe: schema %s: %w", e.Name(), err)
				return
			}
		}
		out := map[string]*jsonschema.Schema{}
		for _, e := range entries {
			sch, err := c.Compile("file:///schemas/" + e.Name())
			if err != nil {
				schemasErr = fmt.Errorf("universe: schema %s: %w", e.Name(), err)
				return
			}
			out[e.Name()] = sch
		}
		schemas = out
	})
	return schemas, schemasErr
}

// Validate checks a JSON document against one of the embedded schemas and
// returns the schema's error.
func Validate(schema string, doc []byte) error {
	v, err := cosmos.DecodeJSON(bytes.NewReader(doc))
	if err != nil {
		return err
	}
	return ValidateValue(schema, v)
}

// ValidateValue is Validate for a decoded document (cosmos.DecodeJSON).
func ValidateValue(schema string, v any) error {
	all, err := compileSchemas()
	if err != nil {
		return err
	}
	sch, ok := all[schema]
	if !ok {
		return fmt.Errorf("universe: no schema %s", schema)
	}
	return sch.Validate(v)
}
