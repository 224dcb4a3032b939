package config

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestExtraConfigBlocklistAsConsulReadsIt(t *testing.T) {
	const secret = "s3cr3t-value-9f8e7d"
	for _, tc := range []struct{ extra, want string }{
		{`{"encrypt": "` + secret + `"}`, `"encrypt"`},
		{`{"Encrypt": "` + secret + `"}`, `"encrypt"`},
		{`{"ENCRYPT_VERIFY_INCOMING": false}`, `"encrypt_verify_incoming"`},
		{`{"ACL": {"Enabled": true, "tokens": {"initial_management": "` + secret + `"}}}`, `"acl"`},
		{`{"acl_master_token": "` + secret + `"}`, `"acl_master_token"`},
		{`{"ACL_Datacenter": "dc1"}`, `"ACL_Datacenter"`},
		{`{"acl_default_policy": "allow"}`, `"acl_default_policy"`},
		{`{"verify_incoming": false}`, `"verify_incoming"`},
		{`{"Key_File": "/tmp/k"}`, `"Key_File"`},
		{`{"tls": {"defaults": {"verify_incoming": false}}}`, `"tls"`},
		{`{"auto_encrypt": {"allow_tls": true}}`, `"auto_encrypt"`},
		{`{"enable_script_checks": true}`, `"enable_script_checks"`},
		{`{"Enable_Local_Script_Checks": true}`, `"enable_local_script_checks"`},
		{`{"disable_remote_exec": false}`, `"disable_remote_exec"`},
		{`{"watches": [{"type": "key", "key": "x", "handler_type": "script", "args": ["sh"]}]}`, `"watches"`},
		{`{"enable_debug": true}`, `"enable_debug"`},
		{`{"Data_Dir": "/tmp/elsewhere"}`, `"data_dir"`},
		{`{"Bind_Addr": "0.0.0.0"}`, `"bind_addr"`},
		{`{"client_addr": "0.0.0.0"}`, `"client_addr"`},
		{`{"addresses": {"http": "0.0.0.0"}}`, `"addresses"`},
		{`{"start_join": ["10.0.0.1"]}`, `"start_join"`},
		{`{"ui_config": {"enabled": false}}`, `"ui_config.enabled"`},
		{`{"Ports": {"HTTP": 1}}`, `"ports"`},
		{`{"primary_datacenter": "dc0"}`, `"primary_datacenter"`},
		{`{"log_levle": "debug"}`, "unknown: log_levle"},
		{`{"log_json": "` + secret + `"}`, "log_json must be bool"},
		{`[1, 2]`, "JSON object"},
	} {
		err := validExtraConfig(json.RawMessage(tc.extra))
		if err == nil {
			t.Errorf("%s: accepted", tc.extra)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error does not name %s: %v", tc.extra, tc.want, err)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "/tmp/") || strings.Contains(err.Error(), "0.0.0.0") {
			t.Errorf("%s: the error shows a value: %v", tc.extra, err)
		}
	}
	for _, ok := range []string{
		`{"log_json": true}`,
		`{"telemetry": {"disable_hostname": true}, "node_meta": {"rack": "r1"}}`,
		`{"ui_config": {"dashboard_url_templates": {"service": "https://grafana/{{Service}}"}}}`,
		`{"alt_domain": "other.example", "recursors": ["8.8.8.8"], "retry_join_wan": ["10.0.0.9"]}`,
		`{"performance": {"leave_drain_time": "3s"}, "Log_Level": "debug"}`,
	} {
		if err := validExtraConfig(json.RawMessage(ok)); err != nil {
			t.Errorf("%s: refused: %v", ok, err)
		}
	}
}

// TestExtraConfigChangesShowNoValue: a change of extra configuration is
// logged and planned with fingerprints, never its values.
func TestExtraConfigChangesShowNoValue(t *testing.T) {
	old := Defaults()
	old.ExecutorURI = "http://h/x"
	next := old
	next.ExtraConfig = json.RawMessage(`{"node_meta": {"password": "hunter2-xyz"}}`)
	ch, err := CheckUpdate(old, next)
	if err != nil || ch.None() {
		t.Fatalf("%v %v", ch, err)
	}
	if s := ch.String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "sha256:") {
		t.Fatalf("change line: %s", s)
	}
	bad := next
	bad.ExtraConfig = json.RawMessage(`{"node_meta": {"password": "hunter2-xyz"}, "encrypt": "k"}`)
	if err := bad.Validate(); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("validation error: %v", err)
	}
}
