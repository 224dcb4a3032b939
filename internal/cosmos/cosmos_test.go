package cosmos

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	v, err := DecodeJSON(strings.NewReader(s))
	if err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return v.(map[string]any)
}

func TestDefaultsFollowCosmos(t *testing.T) {
	schema := decode(t, `{
	  "type": "object",
	  "properties": {
	    "a": {"type": "string", "default": "x"},
	    "nodefault": {"type": "string"},
	    "obj": {"type": "object", "properties": {
	        "n": {"type": "number", "default": 1.5},
	        "deep": {"type": "object", "properties": {"b": {"type": "boolean", "default": false}}},
	        "emptyobj": {"type": "object", "properties": {"x": {"type": "string"}}}
	    }},
	    "objdefault": {"type": "object", "default": {"k": "v"}, "properties": {"k": {"type": "string", "default": "ignored"}}},
	    "arr": {"type": "array", "default": []},
	    "nul": {"default": null}
	  }
	}`)
	got := Defaults(schema)
	want := decode(t, `{"a": "x", "obj": {"n": 1.5, "deep": {"b": false}}, "objdefault": {"k": "v"}, "arr": [], "nul": null}`)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("defaults\n got %#v\nwant %#v", got, want)
	}
}

func TestMergeIsCirceDeepMerge(t *testing.T) {
	target := decode(t, `{"a": {"b": 1, "c": [1, 2], "d": {"e": "x"}}, "f": "keep", "g": {"h": 1}}`)
	fragment := decode(t, `{"a": {"c": [3], "d": {"z": "y"}, "n": null}, "g": "replaced", "new": true}`)
	got := Merge(target, fragment)
	want := decode(t, `{"a": {"b": 1, "c": [3], "d": {"e": "x", "z": "y"}, "n": null}, "f": "keep", "g": "replaced", "new": true}`)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("merge\n got %#v\nwant %#v", got, want)
	}
	if !reflect.DeepEqual(target, decode(t, `{"a": {"b": 1, "c": [1, 2], "d": {"e": "x"}}, "f": "keep", "g": {"h": 1}}`)) {
		t.Fatal("Merge modified its target")
	}
}

func TestOptionsAreValidatedAgainstConfig(t *testing.T) {
	p, err := NewPackage([]byte(`{
	  "type": "object",
	  "properties": {
	    "service": {"type": "object", "additionalProperties": false, "properties": {
	      "count": {"type": "integer", "enum": [1, 3, 5], "default": 3},
	      "name": {"type": "string", "default": "svc"}
	    }}
	  }
	}`), nil, `{"id": "{{service.name}}", "instances": {{service.count}}}`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Render(decode(t, `{"service": {"count": 5}}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"id": "svc", "instances": 5}` {
		t.Fatalf("render: %s", out)
	}
	for _, tc := range []struct{ opts, where string }{
		{`{"service": {"count": 4}}`, "/service/count"},
		{`{"service": {"count": "3"}}`, "/service/count"},
		{`{"service": {"cuont": 3}}`, "/service"},
		{`{"service": {"name": null}}`, "/service/name"},
	} {
		_, err := p.Render(decode(t, tc.opts))
		var oe *OptionsError
		var ve *jsonschema.ValidationError
		if !errors.As(err, &oe) || !errors.As(err, &ve) {
			t.Fatalf("%s: want the schema's validation error, got %v", tc.opts, err)
		}
		if !strings.Contains(err.Error(), tc.where) {
			t.Fatalf("%s: error does not point at %s: %v", tc.opts, tc.where, err)
		}
	}
}

func TestOptionsWithoutConfigAreRefused(t *testing.T) {
	p, err := NewPackage(nil, nil, `{"id": "x"}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Render(nil); err != nil {
		t.Fatalf("no options: %v", err)
	}
	var oe *OptionsError
	if _, err := p.Render(map[string]any{"a": "b"}); !errors.As(err, &oe) {
		t.Fatalf("options for a package without config.json: want OptionsError, got %v", err)
	}
}

func TestRenderConversions(t *testing.T) {
	ctx := decode(t, `{
	  "s": "a\"b\\c\nd\t<&>/é\u0001",
	  "empty": "",
	  "space": " ",
	  "strs": ["x", "y\"z"],
	  "nums": [1, 2.5, 1.0],
	  "nested": [["hostname", "UNIQUE"], ["zone", "GROUP_BY", "3"]],
	  "emptylist": [],
	  "mixed": [true, null, {"k": "v"}],
	  "zero": 0,
	  "whole": 512.0,
	  "half": 0.5,
	  "small": 0.0001,
	  "big": 12345678.5,
	  "huge": 1e21,
	  "neg": -2.25,
	  "t": true,
	  "f": false,
	  "nul": null,
	  "obj": {"b": 2, "a": "x"},
	  "emptyobj": {},
	  "top": "raw \"json\"",
	  "num": 3
	}`)
	for _, tc := range []struct{ tmpl, want string }{
		{`{{s}}`, `a\"b\\c\nd\t<&>/é\u0001`},
		{`{{{s}}}`, `a\"b\\c\nd\t<&>/é\u0001`},
		{`{{&s}}`, `a\"b\\c\nd\t<&>/é\u0001`},
		{`{{strs}}`, `["x", "y\"z"]`},
		{`{{nums}}`, `[1, 2.5, 1]`},
		{`{{nested}}`, `[["hostname", "UNIQUE"], ["zone", "GROUP_BY", "3"]]`},
		{`{{emptylist}}`, `[]`},
		{`{{mixed}}`, `[true, null, {k=v}]`},
		{`{{zero}} {{whole}} {{half}} {{small}} {{big}} {{huge}} {{neg}}`, `0 512 0.5 1.0E-4 1.23456785E7 1000000000000000000000 -2.25`},
		{`{{t}} {{f}}`, `true false`},
		{`[{{nul}}][{{missing}}][{{missing.deep}}]`, `[][][]`},
		{`{{obj}}`, `{a=x, b=2}`},
		// Sections: mustache.java truthiness.
		{`{{#zero}}zero{{/zero}}`, `zero`},
		{`{{#empty}}no{{/empty}}{{^empty}}empty{{/empty}}`, `empty`},
		{`{{#space}}space{{/space}}`, `space`},
		{`{{#emptylist}}no{{/emptylist}}{{^emptylist}}none{{/emptylist}}`, `none`},
		{`{{#emptyobj}}obj{{/emptyobj}}{{^emptyobj}}no{{/emptyobj}}`, `obj`},
		{`{{#nul}}no{{/nul}}{{^nul}}null{{/nul}}`, `null`},
		{`{{#missing}}no{{/missing}}{{^missing}}missing{{/missing}}`, `missing`},
		{`{{#f}}no{{/f}}{{^f}}false{{/f}}{{#t}}true{{/t}}`, `falsetrue`},
		{`{{#strs}}<{{.}}>{{/strs}}`, `<"x"><"y\"z">`},
		{`{{#nested}}({{.}}){{/nested}}`, `(["hostname", "UNIQUE"])(["zone", "GROUP_BY", "3"])`},
		{`{{#obj}}{{a}}-{{b}}-{{num}}{{/obj}}`, `x-2-3`},
		{`{{#s}}{{num}}{{/s}}`, `3`},
		// The asJson lambda: a top-level string, unescaped.
		{`{{#asJson}}top{{/asJson}} {{#asJson}}num{{/asJson}} {{#asJson}}obj.a{{/asJson}}`, `raw "json" null null`},
	} {
		tmpl := `{"out": "` + strings.ReplaceAll(tc.tmpl, `"`, `\"`) + `"}`
		// Render through the raw path so that the output need not be JSON.
		got, err := renderRaw(tc.tmpl, ctx)
		if err != nil {
			t.Fatalf("%s: %v", tmpl, err)
		}
		if got != tc.want {
			t.Errorf("%s\n got %s\nwant %s", tc.tmpl, got, tc.want)
		}
	}
}

func TestRenderChecksTheApp(t *testing.T) {
	for _, tc := range []struct{ tmpl, want string }{
		{`[1, 2]`, "must be a JSON object"},
		{`{"id": "x",}`, "not JSON"},
		{`{"labels": {"A": 1}}`, `label "A" must be a string`},
		{`{"labels": ["A"]}`, "labels must be an object"},
		{`{"id": "{{> part}}"}`, "partial"},
	} {
		_, err := RenderTemplate(tc.tmpl, map[string]any{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want an error with %q, got %v", tc.tmpl, tc.want, err)
		}
	}
}

// TestRendersHelloWorldLikeCosmos renders the published hello-world
// package (testdata/hello-world, verbatim from mesosphere/universe) with
// its defaults and checks the values Cosmos's conversions produce.
func TestRendersHelloWorldLikeCosmos(t *testing.T) {
	p := loadDir(t, "testdata/hello-world")
	app, err := p.RenderApp(decode(t, `{"service": {"name": "/dev/hello", "service_account_secret": "hello/secret"}}`))
	if err != nil {
		t.Fatal(err)
	}
	env := app["env"].(map[string]any)
	for k, want := range map[string]string{
		"FRAMEWORK_NAME":                  "/dev/hello",
		"HELLO_CPUS":                      "0.1",
		"HELLO_GPUS":                      "1",
		"HELLO_MEM":                       "252",
		"HELLO_PLACEMENT":                 `[["hostname", "UNIQUE"]]`,
		"HELLO_KILL_GRACE_PERIOD":         "0",
		"FRAMEWORK_BACKOFF_FACTOR":        "1.15",
		"SLEEP_DURATION":                  "1000",
		"HELLO_SECCOMP_UNCONFINED":        "false",
		"DCOS_SERVICE_ACCOUNT_CREDENTIAL": "secrets/service-account.json",
		"JAVA_URI":                        "https://downloads.mesosphere.com/java/openjdk-jre-11.0.3.7-hotspot-linux-x64.tar.gz",
	} {
		if env[k] != want {
			t.Errorf("env %s = %#v, want %q", k, env[k], want)
		}
	}
	if _, ok := env["HELLO_SECRET1"]; ok {
		t.Error(`HELLO_SECRET1 is rendered although its default is ""`)
	}
	if c, ok := app["constraints"].([]any); !ok || len(c) != 0 {
		t.Errorf("constraints = %#v, want []", app["constraints"])
	}
	if app["secrets"] == nil {
		t.Error("the service account secret block is missing")
	}
	if got := app["check"].(map[string]any)["intervalSeconds"]; got != json.Number("60") {
		t.Errorf("check.intervalSeconds = %#v", got)
	}
}

func loadDir(t *testing.T, dir string) *Package {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	p, err := NewPackage(read("config.json"), read("resource.json"), string(read("marathon.json.mustache")))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestJavaDouble(t *testing.T) {
	for in, want := range map[float64]string{
		0.5: "0.5", 0.1: "0.1", 1.15: "1.15", 0.001: "0.001", 0.0009: "9.0E-4",
		1234567.25: "1234567.25", 12345678.5: "1.23456785E7", -0.25: "-0.25",
		1.5e-10: "1.5E-10", 100.5: "100.5",
	} {
		if got := javaDouble(in); got != want {
			t.Errorf("javaDouble(%v) = %s, want %s", in, got, want)
		}
	}
}
