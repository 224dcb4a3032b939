// Package dcosconsul holds the DC/OS package's files (config.json and
// universe/), embedded so that `dcos-consul dev` can render options
// exactly as Cosmos would without the source tree.
package dcosconsul

import "embed"

// PackageFiles are config.json and the universe/ package files, at the
// paths internal/universe.ReadSourceFS reads.
//
//go:embed config.json universe/package.json universe/resource.json universe/marathon.json.mustache
var PackageFiles embed.FS
