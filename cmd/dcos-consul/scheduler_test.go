package main

import (
	"bytes"
	"strings"
	"testing"
)

// The scheduler started with a bad option stops before doing anything,
// with an error naming the variable, the option and what is allowed (main
// exits non-zero on it).
func TestSchedulerRefusesBadOptions(t *testing.T) {
	for _, tc := range []struct{ env, value, option, allowed string }{
		{"SERVER_CPUS", "NaN", "servers.cpus", "a finite number"},
		{"CLIENT_MEM", "+Inf", "clients.mem", "a finite number"},
		{"SERVER_PLACEMENT", `[["hostname","LIKE","("]]`, "servers.placement_constraint", "regular expression"},
		{"SERVER_PLACEMENT", `[["@rack","GROUP_BY"]]`, "servers.placement_constraint", "@zone"},
		{"SDK_UNINSTALL", "yes", "", "true or false"},
	} {
		t.Run(tc.env+"="+tc.value, func(t *testing.T) {
			t.Setenv("STATE_DIR", t.TempDir())
			t.Setenv(tc.env, tc.value)
			root := newRootCommand()
			var out, errOut bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&errOut)
			root.SetArgs([]string{"scheduler"})
			err := root.Execute()
			if err == nil {
				t.Fatal("scheduler started")
			}
			msg := err.Error()
			for _, want := range []string{tc.env, tc.option, tc.allowed} {
				if !strings.Contains(msg, want) {
					t.Errorf("error does not say %q: %v", want, err)
				}
			}
		})
	}
}
