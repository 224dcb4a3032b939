// Package cosmos renders a DC/OS Universe package's Marathon app the way
// Cosmos (the DC/OS package manager) does on `dcos package install`:
//
//  1. the defaults of config.json's properties (a property's "default", or
//     for an object without one, its children's defaults);
//  2. the user's options deep-merged over them (objects key by key, any
//     other value replaces);
//  3. the result validated against config.json (JSON Schema draft 4);
//  4. the mustache context: the options deep-merged with
//     {"resource": <resource.json>};
//  5. marathon.json.mustache rendered without HTML escaping, with Cosmos's
//     value conversions (see context.go), and the output parsed as a JSON
//     object whose labels are a string map.
//
// The source is dcos/cosmos cosmos-common
// render/PackageDefinitionRenderer.scala and jsonschema/JsonSchema.scala
// (0.6.3); the mustache engine there is mustache.java 0.9.6. Cosmos then
// adds its DCOS_PACKAGE_* labels; that step is not done here.
package cosmos

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Package is what Cosmos uses of a package to render its Marathon app.
type Package struct {
	// Config is config.json decoded with DecodeJSON; nil if the package has
	// none.
	Config map[string]any
	// Resource is resource.json decoded with DecodeJSON; nil if none.
	Resource map[string]any
	// Template is marathon.json.mustache.
	Template string

	schema *jsonschema.Schema
}

// NewPackage decodes and checks a package's files. config and resource may
// be nil (absent). config must compile as a draft-4 JSON Schema.
func NewPackage(config, resource []byte, template string) (*Package, error) {
	p := &Package{Template: template}
	if config != nil {
		v, err := DecodeJSON(bytes.NewReader(config))
		if err != nil {
			return nil, fmt.Errorf("cosmos: config.json: %w", err)
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, errors.New("cosmos: config.json is not a JSON object")
		}
		p.Config = obj
		if p.schema, err = CompileDraft4("config.json", obj); err != nil {
			return nil, fmt.Errorf("cosmos: config.json: %w", err)
		}
	}
	if resource != nil {
		v, err := DecodeJSON(bytes.NewReader(resource))
		if err != nil {
			return nil, fmt.Errorf("cosmos: resource.json: %w", err)
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, errors.New("cosmos: resource.json is not a JSON object")
		}
		p.Resource = obj
	}
	return p, nil
}

// CompileDraft4 compiles a JSON Schema document (decoded with DecodeJSON)
// as draft 4, the draft Cosmos and Universe use. name only labels errors.
func CompileDraft4(name string, doc any) (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	url := "file:///" + name
	if err := c.AddResource(url, doc); err != nil {
		return nil, err
	}
	return c.Compile(url)
}

// OptionsError is the schema's verdict on options that do not match
// config.json; Cosmos answers it as JsonSchemaMismatch.
type OptionsError struct {
	Err error // *jsonschema.ValidationError, or why options are not allowed
}

func (e *OptionsError) Error() string {
	return "cosmos: the options do not match the package's config.json: " + e.Err.Error()
}

func (e *OptionsError) Unwrap() error { return e.Err }

// Options returns the package's effective options: its defaults with the
// user's options deep-merged over them, validated against config.json.
// user may be nil.
func (p *Package) Options(user map[string]any) (map[string]any, error) {
	merged := map[string]any{}
	if p.Config != nil {
		merged = Defaults(p.Config)
	}
	if user != nil {
		merged = Merge(merged, user)
	}
	switch {
	case len(merged) == 0:
	case p.Config == nil:
		return nil, &OptionsError{Err: errors.New("the package has no config.json, so it takes no options")}
	default:
		if err := p.schema.Validate(any(merged)); err != nil {
			return nil, &OptionsError{Err: err}
		}
	}
	return merged, nil
}

// Render renders the package's Marathon app for the user's options (nil:
// none) and returns the rendered JSON text, exactly as the template
// produced it (a JSON object; use json.Indent to pretty-print it).
func (p *Package) Render(user map[string]any) ([]byte, error) {
	opts, err := p.Options(user)
	if err != nil {
		return nil, err
	}
	ctx := opts
	if p.Resource != nil {
		ctx = Merge(opts, map[string]any{"resource": p.Resource})
	}
	return RenderTemplate(p.Template, ctx)
}

// RenderApp is Render decoded into a map (numbers as json.Number).
func (p *Package) RenderApp(user map[string]any) (map[string]any, error) {
	out, err := p.Render(user)
	if err != nil {
		return nil, err
	}
	v, err := DecodeJSON(bytes.NewReader(out))
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

// Defaults collects the defaults of a schema's properties the way Cosmos
// does (JsonSchema.extractDefaultsFromSchema): a property with "default"
// contributes it; an object property without one but with "properties"
// contributes its children's defaults, unless there are none. Properties
// without a default are absent.
func Defaults(schema map[string]any) map[string]any {
	props, _ := schema["properties"].(map[string]any)
	return filterDefaults(props)
}

func filterDefaults(props map[string]any) map[string]any {
	out := map[string]any{}
	for name, raw := range props {
		prop, ok := raw.(map[string]any)
		if !ok {
			continue
		}
		if d, ok := prop["default"]; ok {
			out[name] = deepCopy(d)
			continue
		}
		if sub, ok := prop["properties"].(map[string]any); ok {
			if d := filterDefaults(sub); len(d) > 0 {
				out[name] = d
			}
		}
	}
	return out
}

// Merge deep-merges fragment over target (circe's deepMerge, as Cosmos's
// JsonUtil.merge): where both values are objects they are merged key by
// key, otherwise fragment's value wins. Neither argument is modified.
func Merge(target, fragment map[string]any) map[string]any {
	out := make(map[string]any, len(target)+len(fragment))
	for k, v := range target {
		out[k] = deepCopy(v)
	}
	for k, fv := range fragment {
		tm, tok := out[k].(map[string]any)
		fm, fok := fv.(map[string]any)
		if tok && fok {
			out[k] = Merge(tm, fm)
			continue
		}
		out[k] = deepCopy(fv)
	}
	return out
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = deepCopy(e)
		}
		return out
	default:
		return v
	}
}

// DecodeJSON decodes one JSON document with numbers as json.Number (what
// the schema validator needs and what keeps 1.0 apart from 1) and refuses
// trailing data.
func DecodeJSON(r io.Reader) (any, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON document")
	}
	return v, nil
}
