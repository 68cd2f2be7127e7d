//go:build tools

// The kwok controller, imported so that `go mod tidy` keeps its module.
package kwok

import _ "sigs.k8s.io/kwok/cmd/kwok"
