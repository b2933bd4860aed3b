// Package checkout carries the demo shop's checkout service, a Python
// program (standard library only, checkout.py), so that the demo's
// launcher can write it out and run it wherever it was built.
package checkout

import _ "embed"

// Source is checkout.py.
//
//go:embed checkout.py
var Source []byte
